"""The OpenAPI description and the app's routes cannot drift apart."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from core.settings import Settings
from processors.app import create_app
from web import suggestions, views
from web.http import MAX_BODY_BYTES
from web.openapi import MAX_SHARD_LIMIT, OPENAPI_PATH, openapi

#: Served for people, not part of the API (CONTRACT §4 does not list it).
NOT_API = re.compile(r"^/review(/|$)")
METHODS = {"get", "post", "put", "patch", "delete"}


def routes(tmp_path: Path, role: str) -> set[tuple[str, str]]:
    """(method, path template) of every route the app of `role` registers, less HEAD."""
    settings = Settings(
        CONSUMER_TYPE=role, DATA_DIR=tmp_path, BROKER_URL="kafka://127.0.0.1:1", APP_ID=f"o-{role}"
    )
    app = create_app(settings)
    found = set()
    for route in app.web.web_app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method != "HEAD" and not NOT_API.match(path):
            found.add((route.method.lower(), path))
    return found


def described() -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in openapi()["paths"].items()
        for method in item
        if method in METHODS
    }


@pytest.mark.parametrize("role", ["light", "heavy", "all"])
def test_every_route_is_described_and_nothing_else(tmp_path: Path, role: str) -> None:
    registered = routes(tmp_path, role)
    assert {r for r in registered if r[1].startswith("/api/v1/")}, "no API routes found"
    assert registered == described(), (
        f"registered only: {sorted(registered - described())}; "
        f"described only: {sorted(described() - registered)}"
    )


def test_the_contract_paths_are_there() -> None:
    paths = set(openapi()["paths"])
    for path in (
        "/health",
        "/ready",
        "/metrics",
        "/api/v1/suggested-links",
        "/api/v1/suggested-links/{suggestion_id}/approve",
        "/api/v1/suggested-links/{suggestion_id}/reject",
        "/api/v1/shards",
        "/api/v1/shards/{shard_id}",
        "/api/v1/opportunities/{opportunity_id}/ml-fields",
        "/api/v1/opportunities/{opportunity_id}/ml-fields/recalculate",
        OPENAPI_PATH,
    ):
        assert path in paths


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        _, *parts = node["$ref"].split("/")
        found: Any = spec
        for part in parts:
            found = found[part]
        node = found
    return node


def test_api_operations_need_a_token_and_say_so() -> None:
    spec = openapi()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "claims `tid` (tenant), `sub` (user), `exp`",
    }
    error = spec["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["code", "message"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            api = path.startswith("/api/v1/") and path != OPENAPI_PATH
            assert operation["security"] == ([{"bearerAuth": []}] if api else []), path
            statuses = operation["responses"]
            if api:
                unauthorized = _resolve(spec, statuses["401"])
                schema = unauthorized["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path)
            # every {name} of the path is a declared path parameter, and nothing more
            names = set(re.findall(r"{(\w+)}", path))
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert names == declared, (method, path)
            if names:
                assert "404" in statuses, (method, path)


def test_limits_are_the_views_limits() -> None:
    spec = openapi()
    paths = spec["paths"]

    def limit(path: str) -> dict[str, Any]:
        (found,) = [p for p in paths[path]["get"]["parameters"] if p["name"] == "limit"]
        return found["schema"]

    assert limit("/api/v1/shards")["maximum"] == MAX_SHARD_LIMIT == views.MAX_LIMIT
    assert limit("/api/v1/suggested-links")["maximum"] == suggestions.MAX_LIMIT
    statuses = paths["/api/v1/suggested-links"]["get"]["parameters"][0]
    assert statuses["name"] == "status"
    assert statuses["schema"]["enum"] == ["", *suggestions.STATUSES]  # empty: every state
    reason = spec["components"]["schemas"]["Decision"]["properties"]["reason"]
    assert reason["maxLength"] == suggestions.MAX_REASON_CHARS == 2000
    assert str(MAX_BODY_BYTES) in json.dumps(spec["components"]["responses"]["PayloadTooLarge"])


def test_it_is_a_valid_openapi_document_for_schemathesis() -> None:
    spec = openapi()
    json.dumps(spec)  # plain JSON data
    schema = schemathesis.openapi.from_dict(spec)
    schema.validate()  # against the OpenAPI 3.1 meta-schema
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) == len(described())
