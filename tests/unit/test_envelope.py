import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.routing import Routed, route
from core.exceptions import BadEventError
from shards.model import WriteKind, WriteOutcome, merge
from streams.channels import to_json
from streams.dead_letters import DeadLetter
from streams.models import (
    LinkEvent,
    RelinkRequest,
    ShardEvent,
    parse_raw_event,
    shard_event,
    shard_event_value,
)
from tests.fixtures import salesforce as sf
from tests.fixtures.shards import draft


def body(event: dict) -> bytes:
    return json.dumps(event).encode()


def test_good_event_is_routed_unchanged_with_tenant_key() -> None:
    raw = body(sf.account("t1"))
    routed = route("integration.raw.crm", raw)
    assert isinstance(routed, Routed)
    assert routed.topic == "integration.raw.crm"
    assert routed.key == f"t1:{sf.ACCOUNT_ID}".encode()
    assert routed.value == raw


def test_unknown_keys_are_kept() -> None:
    event = sf.account("t1")
    event["somethingNew"] = {"x": 1}
    parsed = parse_raw_event(body(event), "crm")
    assert parsed.model_extra == {"somethingNew": {"x": 1}}


@pytest.mark.parametrize(
    ("routing_key", "raw", "reason"),
    [
        ("integration.raw.crm", b"{not json", "not valid JSON"),
        ("integration.raw.crm", b"[1, 2]", "JSON list, not an object"),
        ("integration.raw.email", body(sf.account("t1")), "does not match routing key"),
        ("integration.raw.fax", body(sf.account("t1")), "names no known data type"),
    ],
)
def test_bad_messages_become_dead_letters_with_a_reason(
    routing_key: str, raw: bytes, reason: str
) -> None:
    letter = route(routing_key, raw)
    assert isinstance(letter, DeadLetter)
    assert reason in letter.error
    assert letter.stage == "bridge"
    assert letter.value == raw


def test_missing_tenant_names_the_field() -> None:
    event = sf.account("t1")
    del event["tenantId"]
    letter = route("integration.raw.crm", body(event))
    assert isinstance(letter, DeadLetter)
    assert "tenantId: Field required" in letter.error
    assert letter.key is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"eventType": "something.else"}, "eventType"),
        ({"occurredAt": "2026-11-02T09:15:00"}, "time zone"),
        ({"payload": "text"}, "payload"),
        ({"externalId": ""}, "externalId"),
    ],
)
def test_envelope_rules(change: dict, reason: str) -> None:
    with pytest.raises(BadEventError, match=reason):
        parse_raw_event(body({**sf.account("t1"), **change}), "crm")


def test_crm_event_needs_an_entity_type() -> None:
    event = sf.account("t1")
    del event["entityType"]
    del event["payload"]["attributes"]
    with pytest.raises(BadEventError, match="entityType"):
        parse_raw_event(body(event), "crm")


def test_dead_letter_keeps_the_event_and_adds_the_reason() -> None:
    raw = body(sf.account("t1"))
    letter = DeadLetter.of(raw, b"k", ValueError("boom"), "map", sourceTopic="integration.raw.crm")
    value = json.loads(letter.wire_value())
    original = json.loads(raw)
    assert {k: value[k] for k in original} == original
    assert value["error"] == "boom"
    assert value["errorType"] == "ValueError"
    assert value["stage"] == "map"
    assert value["failedAt"].endswith("Z")
    headers = dict(letter.headers())
    assert headers["error"] == b"boom"
    assert headers["sourceTopic"] == b"integration.raw.crm"


def test_dead_letter_of_non_json_is_byte_for_byte() -> None:
    letter = DeadLetter.of(b"\xff\x00garbage", None, ValueError("x"), "bridge")
    assert letter.wire_value() == b"\xff\x00garbage"


def test_wire_events_are_their_wire_documents_as_compact_json() -> None:
    """`to_json` (pydantic's serialiser) sends what `to_wire` says: camelCase, no nulls."""
    at = datetime(2026, 11, 2, 9, 14, 3, 500000, tzinfo=UTC)
    events = [
        ShardEvent(type="shard.created", event_id="s1:v1", tenant_id="t1", shard_id="s1",
                   shard_type="Email", version=1, changed_fields=["subject"], occurred_at=at),
        LinkEvent(type="link.suggested", event_id="l1", tenant_id="t1", shard_id="s1",
                  target_shard_id="o1", target_shard_type="Opportunity", confidence=0.62,
                  method="name — Fabrikam", status="pending_review", occurred_at=at),
        RelinkRequest(tenant_id="t1", shard_id="s1", reason="contact changed: Zoë"),
    ]  # fmt: skip
    for event in events:
        sent = to_json(event)
        # byte for byte what `json.dumps` of the wire document wrote before
        wire = event.to_wire()
        assert sent == json.dumps(wire, ensure_ascii=False, separators=(",", ":")).encode()
    assert json.loads(to_json(events[0]))["occurredAt"] == "2026-11-02T09:14:03.500000Z"
    assert "sourceEventId" not in json.loads(to_json(events[0]))


@given(
    version=st.integers(min_value=1, max_value=10**6),
    changed=st.lists(st.text(min_size=1, max_size=12), max_size=6),
    at=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))])),
    name=st.text(min_size=1, max_size=20),
)
def test_a_writes_event_bytes_are_its_shard_events_bytes(
    version: int, changed: list[str], at: datetime, name: str
) -> None:
    """The announcement written without the model is byte for byte what the model of the
    event says (`to_json`), and `shard_event` reads it as that model: created and updated,
    any changed fields, times with and without fractions or UTC."""
    written = merge(None, draft("t1", "salesforce", "Account", "Account", "001A", {"name": name}))
    shard = written.shard.model_copy(update={"version": version, "updated_at": at})
    outcome = WriteOutcome(WriteKind.UPDATED, shard, tuple(changed))
    expected = ShardEvent(
        type="shard.created" if version == 1 else "shard.updated",
        event_id=f"{shard.id}:v{version}", tenant_id="t1", shard_id=shard.id,
        shard_type="Account", version=version, source_event_id=shard.source.event_id,
        changed_fields=changed, occurred_at=at,
    )  # fmt: skip
    assert shard_event_value(outcome) == to_json(expected)
    assert shard_event(outcome) == expected
