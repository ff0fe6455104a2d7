"""Schemathesis drives the running views from their own OpenAPI description (issue 11, item 5).

A real light worker (with its broker and bridge), a few seeded shards and suggestions.
`schemathesis run` (its CLI: the pytest plugin of 4.x does not run under pytest 9.2)
loads `GET /api/v1/openapi.json` and runs its four phases (examples, coverage, fuzzing,
stateful) on every operation: once with a valid token, half the path ids drawn from
objects that exist, under every response check but `positive_data_acceptance` (a
cursor is opaque: a schema-valid string the API did not produce is rightly 400); once
without a valid token. Its NDJSON event log is read back: every generated request is
there with its answer, so the counts and the "no 5xx" are asserted here too.
"""

from __future__ import annotations

import base64
import collections
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_api_errors import Api, api_processes
from web.openapi import OPENAPI_PATH, openapi

pytestmark = pytest.mark.e2e

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
#: every check but `positive_data_acceptance` (see the module's docstring)
CHECKS = "all"
EXCLUDED_CHECKS = "positive_data_acceptance"
#: operations schemathesis tests: all but the description itself (it never tests the
#: document it loaded; `test_the_served_description_is_the_module_s` covers that one)
OPERATIONS = {
    f"{method.upper()} {path}": operation
    for path, item in openapi()["paths"].items()
    for method, operation in item.items()
    if path != OPENAPI_PATH
}
SECURED = {label for label, operation in OPERATIONS.items() if operation["security"]}
#: operations that answer 2xx (or 409) only when their path names an object that exists
WITH_IDS = {
    "GET /api/v1/shards/{shard_id}",
    "GET /api/v1/opportunities/{opportunity_id}/ml-fields",
    "POST /api/v1/opportunities/{opportunity_id}/ml-fields/recalculate",
    "POST /api/v1/suggested-links/{suggestion_id}/approve",
    "POST /api/v1/suggested-links/{suggestion_id}/reject",
}


@dataclass
class Run:
    """One `schemathesis run`: its output and every request it made, with the answer."""

    returncode: int
    output: str
    #: operation label → [(method sent, status, response body)] (status None: no answer)
    calls: dict[str, list[tuple[str, int | None, bytes]]] = field(default_factory=dict)

    @property
    def cases(self) -> int:
        return sum(len(c) for c in self.calls.values())

    def check(self) -> None:
        """Fail with schemathesis' report unless every check passed."""
        if self.returncode != 0:
            pytest.fail(f"schemathesis exit code {self.returncode}:\n{self.output[-12000:]}")


@pytest.fixture(scope="module")
def api(tmp_path_factory, rabbitmq_url: str) -> Iterator[Api]:
    with api_processes(tmp_path_factory.mktemp("schema"), rabbitmq_url, heavy=False) as running:
        yield running


def _config(api: Api) -> str:
    """schemathesis.toml: no cache across runs; half the path ids name seeded objects."""
    dictionaries = {
        "opportunities": [api.opportunity],
        "suggestions": api.suggestions,
        "shards": [*api.emails, api.opportunity, api.account],
    }
    lines = ["[cache]", "enabled = false", ""]
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines += [
        "[parameters]",
        '"path.opportunity_id" = { dictionary = "opportunities", probability = 0.5 }',
        '"path.suggestion_id" = { dictionary = "suggestions", probability = 0.5 }',
        '"path.shard_id" = { dictionary = "shards", probability = 0.5 }',
    ]
    return "\n".join(lines) + "\n"


def _body(response: dict[str, Any]) -> bytes:
    content = response.get("content") or {}
    if "$base64" in content:
        return base64.b64decode(content["$base64"])
    return str(content.get("$text", "")).encode()


def schemathesis(
    api: Api, folder: Path, *, token: str | None, max_examples: int, checks: str, exclude: str = ""
) -> Run:
    folder.mkdir()
    config = folder / "schemathesis.toml"
    config.write_text(_config(api))
    events = folder / "events.ndjson"
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(config),
        "run",
        f"{api.light_url}{OPENAPI_PATH}",
        "--checks",
        checks,
        *(["--exclude-checks", exclude] if exclude else []),
        "--max-examples",
        str(max_examples),
        "--request-timeout",
        "30",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(events),
        *(["--header", f"Authorization: Bearer {token}"] if token else []),
    ]
    done = subprocess.run(
        command, cwd=folder, capture_output=True, text=True, timeout=150, check=False
    )
    run = Run(done.returncode, done.stdout + done.stderr)
    calls: dict[str, list[tuple[str, int | None, bytes]]] = collections.defaultdict(list)
    for line in events.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if not finished or "cases" not in finished["recorder"]:
            continue
        recorder = finished["recorder"]
        for case_id, interaction in recorder["interactions"].items():
            case = recorder["cases"][case_id]["value"]
            # an operation's own scenarios (unsupported-method probes too) under its label;
            # the stateful phase's calls under the operation each one is
            label = recorder["label"]
            if label not in OPERATIONS:
                label = f"{case['method'].upper()} {case['path']}"
            response = interaction.get("response")
            calls[label].append(
                (
                    interaction["request"]["method"].upper(),
                    response["status_code"] if response else None,
                    _body(response) if response else b"",
                )
            )
    run.calls = dict(calls)
    return run


def test_the_served_description_is_the_module_s(api: Api) -> None:
    answer = httpx.get(f"{api.light_url}{OPENAPI_PATH}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == openapi()


def test_no_operation_answers_5xx_with_a_valid_token(api: Api, tmp_path: Path) -> None:
    run = schemathesis(
        api,
        tmp_path / "authenticated",
        token=api.pipe.token("t-demo"),
        max_examples=40,
        checks=CHECKS,
        exclude=EXCLUDED_CHECKS,
    )
    print(f"schemathesis with a token: {run.cases} requests")
    run.check()
    server_errors = [
        (label, method, status)
        for label, calls in run.calls.items()
        for method, status, _ in calls
        if status is None or status >= 500
    ]
    assert not server_errors, server_errors
    tested = {label for label in run.calls if label in OPERATIONS}
    assert tested == set(OPERATIONS), set(OPERATIONS) - tested
    for label in OPERATIONS:
        assert len(run.calls[label]) >= 5, (label, len(run.calls[label]))
    assert run.cases >= 300, run.cases
    # the seeded ids were used: each operation on one object reached its own logic
    for label in WITH_IDS:
        method = label.split()[0]
        answered = collections.Counter(s for m, s, _ in run.calls[label] if m == method)
        # (409: a seeded suggestion already decided the other way, found all the same)
        assert any(200 <= (s or 0) < 300 or s == 409 for s in answered), (label, answered)
        assert answered[404], (label, answered)  # and made-up ids were not found


def test_without_a_valid_token_every_api_operation_is_401(api: Api, tmp_path: Path) -> None:
    run = schemathesis(
        api,
        tmp_path / "anonymous",
        token=None,
        max_examples=10,
        checks="not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance",
    )
    print(f"schemathesis without a token: {run.cases} requests")
    run.check()
    assert set(SECURED) <= set(run.calls), SECURED - set(run.calls)
    for label in OPERATIONS:
        method = label.split()[0]
        answers = [(s, b) for m, s, b in run.calls[label] if m == method]
        assert answers, label
        if label not in SECURED:  # health, ready, metrics
            assert {s for s, _ in answers} == {200}, (label, answers[:3])
            continue
        for status, body in answers:
            assert status == 401, (label, status, body[:300])
            assert json.loads(body)["error"]["code"] == "unauthorized", (label, body[:300])
        # any other method: 405 (never 5xx, never a 2xx)
        others = {s for m, s, _ in run.calls[label] if m != method}
        assert others <= {401, 405}, (label, others)
