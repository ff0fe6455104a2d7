"""Dead letters read back: the original bytes, the selection, `--since`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.dead_letter_records import DeadLetterSelection, StoredDeadLetter, parse_since
from streams.dead_letters import DeadLetter, original_value


def stored(letter: DeadLetter, offset: int = 0) -> StoredDeadLetter:
    headers = {k: v.decode() for k, v in letter.headers()}
    return StoredDeadLetter("integration.dlq", 1, offset, letter.key, letter.wire_value(), headers)


@given(
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4),
    st.sampled_from(["", " ", "\n", "  \r\n"]),
    st.booleans(),
)
def test_the_original_bytes_come_back(body: dict, trailing: str, indent: bool) -> None:
    raw = (json.dumps(body, indent=2 if indent else None, ensure_ascii=False) + trailing).encode()
    letter = DeadLetter.of(raw, b"t:1", ValueError("ü"), "map", sourceTopic="integration.raw.crm")
    value = json.loads(letter.wire_value())
    assert value["error"] == "ü" and value["stage"] == "map"
    assert {k: value[k] for k in body if k not in ("error", "errorType", "stage", "failedAt")} == {
        k: v for k, v in body.items() if k not in ("error", "errorType", "stage", "failedAt")
    }
    assert stored(letter).original() == raw


def test_a_dead_letter_of_a_dead_letter_carries_the_newer_reason() -> None:
    first = DeadLetter.of(b'{"a": 1}', None, ValueError("old"), "map")
    second = DeadLetter.of(first.wire_value(), None, KeyError("new"), "validate")
    assert json.loads(second.wire_value())["errorType"] == "KeyError"
    assert stored(second).original() == first.wire_value()


def test_old_dead_letters_without_a_span_lose_only_the_reason_fields() -> None:
    reason = b'"error":"x","errorType":"E","stage":"map","failedAt":"2026-01-01T00:00:00Z"'
    value = b'{"tenantId":"t",' + reason + b"}"
    assert original_value(value, {}) == b'{"tenantId":"t"}'
    assert original_value(b"\xffnot json", {}) == b"\xffnot json"


def test_selection_and_source_topics() -> None:
    crm = stored(
        DeadLetter.of(
            b'{"tenantId":"t-a"}', b"t-a:1", KeyError("x"), "map", sourceTopic="integration.raw.crm"
        )
    )
    bridge = stored(
        DeadLetter.of(b"nope", None, ValueError("x"), "bridge", routingKey="integration.raw.mail")
    )
    assert crm.tenant_id == "t-a" and crm.source_topic == "integration.raw.crm"
    assert bridge.tenant_id == "" and bridge.source_topic is None  # no such data type
    assert DeadLetterSelection.of(stages=["map"], tenants=["t-a"]).matches(crm)
    assert not DeadLetterSelection.of(error_types=["ValueError"]).matches(crm)
    assert DeadLetterSelection.of(since=datetime.now(UTC) - timedelta(minutes=1)).matches(crm)
    assert not DeadLetterSelection.of(since=datetime.now(UTC) + timedelta(minutes=1)).matches(crm)


def test_since_takes_a_time_or_an_age() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    assert parse_since("1d 2h", now) == now - timedelta(hours=26)
    assert parse_since("2026-12-01T08:00:00Z") == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert parse_since("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_since(None) is None
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday")
