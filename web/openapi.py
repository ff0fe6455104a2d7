"""The OpenAPI 3.1 description of CONTRACT §4, as data, served at `GET /api/v1/openapi.json`.

A unit test (`tests/unit/test_openapi.py`) checks that every `/api/v1` route the app
registers is described here, and the schemathesis e2e test (`tests/e2e/test_api_schema.py`)
drives the running views from this description: it is what the API does, kept in step.
"""

from __future__ import annotations

import copy
from typing import Any, get_args

import faust
from faust.web import Request, Response, View

from shards.kinds import SHARD_TYPES
from shards.suggestions import SuggestionStatus
from web.http import MAX_BODY_BYTES
from web.suggestions import MAX_LIMIT as MAX_SUGGESTION_LIMIT
from web.suggestions import MAX_REASON_CHARS, STATUSES

__all__ = ["MAX_SHARD_LIMIT", "OPENAPI_PATH", "openapi", "register_openapi"]

OPENAPI_PATH = "/api/v1/openapi.json"
#: `web.views.MAX_LIMIT` (which imports this module); the unit test keeps them equal.
MAX_SHARD_LIMIT = 500


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(name: str) -> dict[str, Any]:
    """A response of `components.responses` (each the error body)."""
    return {"$ref": f"#/components/responses/{name}"}


_SECURED: list[dict[str, list[str]]] = [{"bearerAuth": []}]
_OPEN: list[dict[str, list[str]]] = []
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}


def _path_id(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"the {what}'s id",
        "schema": {"type": "string", "minLength": 1},
    }


def _limit(default: int, maximum: int) -> dict[str, Any]:
    return {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": f"items per page, 1..{maximum}; anything else is 400",
        "schema": {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
    }


_CURSOR = {
    "name": "cursor",
    "in": "query",
    "required": False,
    "description": (
        "`nextCursor` of the previous page, as it was given; a cursor the API did not "
        "produce is 400; empty is the first page"
    ),
    "schema": {"type": "string"},
}

_DECISION_BODY = {
    "required": False,
    "description": "optional; an empty body is no reason",
    "content": {"application/json": {"schema": _ref("Decision")}},
}


def _decide(verb: str, effect: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": f"{verb}SuggestedLink",
            "summary": f"{verb.capitalize()} a suggested link",
            "description": (
                f"{effect} The same decision again is a 200 no-op, the opposite one 409. "
                "Who and when are recorded."
            ),
            "tags": ["suggested links"],
            "security": _SECURED,
            "parameters": [_path_id("suggestion_id", "suggested link")],
            "requestBody": _DECISION_BODY,
            "responses": {
                "200": _json(_ref("SuggestedLink"), "the suggestion as decided"),
                "400": _error("BadRequest"),
                "401": _error("Unauthorized"),
                "404": _error("NotFound"),
                "409": _error("Conflict"),
                "413": _error("PayloadTooLarge"),
            },
        }
    }


_SHARD = {
    "type": "object",
    "description": "one typed record (CONTRACT §3); its `structuredData` follows its shard type",
    "required": [
        "id",
        "tenantId",
        "shardType",
        "schemaVersion",
        "structuredData",
        "unstructuredData",
        "source",
        "links",
        "createdAt",
        "updatedAt",
        "version",
    ],
    "properties": {
        "id": {"type": "string"},
        "tenantId": {"type": "string"},
        "shardType": {"type": "string", "examples": list(SHARD_TYPES)},
        "schemaVersion": {"type": "integer"},
        "structuredData": {"type": "object"},
        "unstructuredData": {"type": "object"},
        "source": {
            "type": "object",
            "required": ["provider", "integrationId", "entityType", "externalId", "eventId"],
            "properties": {
                "provider": {"type": "string"},
                "integrationId": {"type": "string"},
                "entityType": {"type": "string"},
                "externalId": {"type": "string"},
                "eventId": {"type": "string"},
                "syncTaskId": {"type": "string"},
                "occurredAt": {"type": "string", "format": "date-time"},
            },
        },
        "links": {"type": "array", "items": _ref("Link")},
        "mlFields": {"type": "object"},
        "mlFieldsUpdatedAt": {"type": "string", "format": "date-time"},
        "mlFieldsVersion": {"type": "integer"},
        "createdAt": {"type": "string", "format": "date-time"},
        "updatedAt": {"type": "string", "format": "date-time"},
        "version": {"type": "integer", "minimum": 1},
        "_etag": {"type": "string"},
    },
}

_SUGGESTED_LINK = {
    "type": "object",
    "required": [
        "id",
        "tenantId",
        "sourceShardId",
        "sourceShardType",
        "targetShardId",
        "targetShardType",
        "confidence",
        "method",
        "status",
        "createdAt",
    ],
    "properties": {
        "id": {"type": "string"},
        "tenantId": {"type": "string"},
        "sourceShardId": {"type": "string"},
        "sourceShardType": {"type": "string"},
        "targetShardId": {"type": "string"},
        "targetShardType": {"type": "string"},
        "targetName": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "method": {"type": "string"},
        "evidence": {"type": "array", "items": {"type": "object"}},
        "alternatives": {"type": "array", "items": {"type": "object"}},
        "reason": {"type": "string", "description": "why linking proposed it"},
        "sourceSummary": {"type": "object"},
        "status": {"type": "string", "enum": list(get_args(SuggestionStatus))},
        "raisedBy": {
            "type": "string",
            "description": "linking for the linker's own: only those are withdrawn by it",
        },
        "createdAt": {"type": "string", "format": "date-time"},
        "decidedAt": {"type": "string", "format": "date-time"},
        "decidedBy": {"type": "string"},
        "decisionReason": {"type": "string"},
    },
}

_SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "integration-processors",
        "version": "1",
        "description": (
            "The HTTP API of the processors' workers (CONTRACT §4): shards, suggested links "
            "and ML fields of the caller's tenant, and the workers' health. API calls carry "
            "`Authorization: Bearer <JWT>` whose claims name the tenant (`tid`) and the user "
            "(`sub`); a missing or bad token is 401, another tenant's object 404. Errors are "
            '`{"error": {"code", "message"}}`.'
        ),
    },
    "servers": [{"url": "/"}],
    "security": _SECURED,
    "tags": [
        {"name": "operations", "description": "health, readiness, metrics"},
        {"name": "shards"},
        {"name": "suggested links"},
        {"name": "ml fields"},
    ],
    "paths": {
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "The process runs",
                "tags": ["operations"],
                "security": _OPEN,
                "responses": {"200": _json(_ref("Health"), "the process is up")},
            }
        },
        "/ready": {
            "get": {
                "operationId": "ready",
                "summary": "Every dependency answers",
                "tags": ["operations"],
                "security": _OPEN,
                "responses": {
                    "200": _json(_ref("Ready"), "broker, store and blob storage answer"),
                    "503": _json(_ref("Ready"), "a dependency does not answer"),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus text exposition",
                "tags": ["operations"],
                "security": _OPEN,
                "responses": {
                    "200": {
                        "description": "the process's metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        OPENAPI_PATH: {
            "get": {
                "operationId": "openapi",
                "summary": "This description",
                "tags": ["operations"],
                "security": _OPEN,
                "responses": {
                    "200": _json({"type": "object"}, "the OpenAPI 3.1 description of the API")
                },
            }
        },
        "/api/v1/shards": {
            "get": {
                "operationId": "listShards",
                "summary": "The caller's tenant's shards, one page, in id order",
                "tags": ["shards"],
                "security": _SECURED,
                "parameters": [
                    {
                        "name": "shardType",
                        "in": "query",
                        "required": False,
                        "description": "only shards of this type; empty is every type",
                        "schema": {"type": "string", "examples": list(SHARD_TYPES)},
                    },
                    _limit(100, MAX_SHARD_LIMIT),
                    _CURSOR,
                ],
                "responses": {
                    "200": _json(_ref("ShardPage"), "a page of shards"),
                    "400": _error("BadRequest"),
                    "401": _error("Unauthorized"),
                },
            }
        },
        "/api/v1/shards/{shard_id}": {
            "get": {
                "operationId": "getShard",
                "summary": "One shard of the caller's tenant",
                "tags": ["shards"],
                "security": _SECURED,
                "parameters": [_path_id("shard_id", "shard")],
                "responses": {
                    "200": _json(_ref("Shard"), "the shard"),
                    "401": _error("Unauthorized"),
                    "404": _error("NotFound"),
                },
            }
        },
        "/api/v1/suggested-links": {
            "get": {
                "operationId": "listSuggestedLinks",
                "summary": "The caller's tenant's suggested links, one page, in id order",
                "tags": ["suggested links"],
                "security": _SECURED,
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "description": "only suggestions in this state; empty is every state",
                        "schema": {"type": "string", "enum": ["", *STATUSES]},
                    },
                    {
                        "name": "targetShardId",
                        "in": "query",
                        "required": False,
                        "description": "only suggestions of this target (an opportunity ...)",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "sourceShardType",
                        "in": "query",
                        "required": False,
                        "description": "only suggestions for sources of this type (Email ...)",
                        "schema": {"type": "string"},
                    },
                    _limit(50, MAX_SUGGESTION_LIMIT),
                    _CURSOR,
                ],
                "responses": {
                    "200": _json(_ref("SuggestedLinkPage"), "a page of suggestions"),
                    "400": _error("BadRequest"),
                    "401": _error("Unauthorized"),
                },
            }
        },
        "/api/v1/suggested-links/{suggestion_id}/approve": _decide(
            "approve",
            "Writes the link (status `approved`) on the source shard and emits `link.approved`.",
        ),
        "/api/v1/suggested-links/{suggestion_id}/reject": _decide(
            "reject", "Emits `link.rejected`."
        ),
        "/api/v1/opportunities/{opportunity_id}/ml-fields": {
            "get": {
                "operationId": "getMlFields",
                "summary": "The opportunity's ML fields, computed at the moment of the request",
                "description": (
                    "Answered from the table by the worker that owns the opportunity's "
                    "partition (the request is forwarded there); a worker without the table "
                    "computes them from the store. Definitions: `docs/ml-fields.md`."
                ),
                "tags": ["ml fields"],
                "security": _SECURED,
                "parameters": [_path_id("opportunity_id", "opportunity shard")],
                "responses": {
                    "200": _json(_ref("MlFields"), "the fields"),
                    "401": _error("Unauthorized"),
                    "404": _error("NotFound"),
                    "503": _error("Unavailable"),
                },
            }
        },
        "/api/v1/opportunities/{opportunity_id}/ml-fields/recalculate": {
            "post": {
                "operationId": "recalculateMlFields",
                "summary": "Queue a recalculation",
                "description": (
                    "A request on `ml_fields.recalculate`: the owning worker recomputes the "
                    "fields and writes them back at once. A body is ignored."
                ),
                "tags": ["ml fields"],
                "security": _SECURED,
                "parameters": [_path_id("opportunity_id", "opportunity shard")],
                "responses": {
                    "202": _json(_ref("Recalculation"), "queued"),
                    "401": _error("Unauthorized"),
                    "404": _error("NotFound"),
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "claims `tid` (tenant), `sub` (user), `exp`",
            }
        },
        "responses": {
            "BadRequest": _json(_ref("Error"), "a parameter or the body is not valid"),
            "Unauthorized": _json(_ref("Error"), "no token, or not a valid one"),
            "NotFound": _json(_ref("Error"), "no such object in the caller's tenant"),
            "Conflict": _json(_ref("Error"), "the suggestion was decided the other way"),
            "PayloadTooLarge": _json(_ref("Error"), f"a body over {MAX_BODY_BYTES} bytes"),
            "Unavailable": _json(_ref("Error"), "the table is being rebalanced; try again"),
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {
                                "type": "string",
                                "examples": [
                                    "bad_request",
                                    "unauthorized",
                                    "not_found",
                                    "conflict",
                                    "payload_too_large",
                                    "unavailable",
                                ],
                            },
                            "message": {"type": "string"},
                        },
                    }
                },
            },
            "Health": {
                "type": "object",
                "required": ["status", "service", "role", "agents"],
                "properties": {
                    "status": {"const": "healthy"},
                    "service": {"type": "string"},
                    "role": {"type": "string", "enum": ["light", "heavy", "all"]},
                    "agents": {"type": "array", "items": {"type": "string"}},
                },
            },
            "Ready": {
                "type": "object",
                "required": ["status", "checks"],
                "properties": {
                    "status": {"type": "string", "enum": ["ready", "not_ready"]},
                    "checks": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "required": ["ok"],
                            "properties": {
                                "ok": {"type": "boolean"},
                                "error": {"type": "string"},
                            },
                        },
                    },
                },
            },
            "Link": {
                "type": "object",
                "required": [
                    "targetShardId",
                    "targetShardType",
                    "confidence",
                    "method",
                    "status",
                ],
                "properties": {
                    "targetShardId": {"type": "string"},
                    "targetShardType": {"type": "string"},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "method": {"type": "string"},
                    "status": {"type": "string", "examples": ["auto", "approved"]},
                },
            },
            "Shard": _SHARD,
            "ShardPage": {
                "type": "object",
                "required": ["items", "nextCursor"],
                "properties": {
                    "items": {"type": "array", "items": _ref("Shard")},
                    "nextCursor": {
                        "type": ["string", "null"],
                        "description": "the `cursor` of the next page; null on the last",
                    },
                },
            },
            "SuggestedLink": _SUGGESTED_LINK,
            "SuggestedLinkPage": {
                "type": "object",
                "required": ["items", "nextCursor"],
                "properties": {
                    "items": {"type": "array", "items": _ref("SuggestedLink")},
                    "nextCursor": {"type": ["string", "null"]},
                },
            },
            "Decision": {
                "type": "object",
                "description": "other members are ignored",
                "properties": {
                    "reason": {
                        "type": ["string", "null"],
                        "maxLength": MAX_REASON_CHARS,
                        "description": (
                            f"why; at most {MAX_REASON_CHARS} characters (code points), else 400"
                        ),
                    }
                },
            },
            "MlFields": {
                "type": "object",
                "required": ["opportunityId", "asOf", "source", "mlFields", "writtenBack"],
                "properties": {
                    "opportunityId": {"type": "string"},
                    "asOf": {"type": "string", "format": "date-time"},
                    "source": {"type": "string", "enum": ["table", "store"]},
                    "mlFields": {
                        "type": "object",
                        "description": "field name → value, see `docs/ml-fields.md`",
                    },
                    "writtenBack": {
                        "type": "object",
                        "required": ["mlFieldsUpdatedAt", "mlFieldsVersion"],
                        "properties": {
                            "mlFieldsUpdatedAt": _NULLABLE_TIME,
                            "mlFieldsVersion": {"type": ["integer", "null"]},
                        },
                    },
                },
            },
            "Recalculation": {
                "type": "object",
                "required": ["opportunityId", "queued", "requestedAt"],
                "properties": {
                    "opportunityId": {"type": "string"},
                    "queued": {"const": True},
                    "requestedAt": {"type": "string", "format": "date-time"},
                },
            },
        },
    },
}


def openapi() -> dict[str, Any]:
    """The description (a copy: callers may change it)."""
    return copy.deepcopy(_SPEC)


def register_openapi(app: faust.App) -> None:
    """Add `GET /api/v1/openapi.json` to `app` (no token needed)."""

    @app.page(OPENAPI_PATH)
    class OpenApi(View):
        async def get(self, request: Request) -> Response:
            return self.json(_SPEC)
