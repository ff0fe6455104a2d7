"""No message can kill a process: fuzzing every per-message path with hostile input.

Arbitrary bytes, nesting deeper than any parser goes, huge numbers and strings, odd
Unicode and wrong types in every envelope field go through the bridge's routing, each
light agent's pipeline (parse, normalise or map, write to a real SQLite store) and the
parsing of the linking and ML agents. The property: nothing raises, and every message
ends as exactly one shard write or one dead letter.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agents.pipeline import ShardPipeline
from bridge.routing import Routed, route
from core.tenants import TenantConfig
from mappings.crm import map_crm_event, shipped_mappings
from normalisers.email import normalise_email
from normalisers.event import normalise_calendar_event
from normalisers.message import normalise_message
from processors.startup import ensure_shard_types
from shards.sqlite import SqliteShardStore
from streams.consuming import parse_each
from streams.dead_letters import DeadLetter
from streams.incoming import IncomingEvent
from streams.models import LinkEvent, RecalculateRequest, ShardEvent, parse_raw_event
from tests.fixtures import generic_chat, generic_email
from tests.fixtures import salesforce as sf

TENANT = TenantConfig()
DEEP = 100_000
ENVELOPE_FIELDS = (
    "eventId", "eventType", "dataType", "tenantId", "integrationId", "provider",
    "entityType", "externalId", "syncTaskId", "occurredAt", "payload", "blob",
)  # fmt: skip

#: JSON values of every shape, with huge numbers, long and odd strings.
odd_text = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from('\u0000\u202e\ud7ff\ufeff\U0001f600\u00e9\u0301<>&"\\')),
    st.just("x" * 200_000),
)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.floats(allow_nan=False),
        odd_text,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def deep(prefix: bytes = b"") -> bytes:
    """A value nested `DEEP` arrays deep inside a JSON object."""
    return prefix + b'{"x":' + b"[" * DEEP + b"]" * DEEP + b"}"


def deep_envelope(good: dict[str, Any]) -> bytes:
    head = json.dumps({k: v for k, v in good.items() if k != "payload"})[:-1]
    return head.encode() + b', "payload": ' + deep() + b"}"


def good_events() -> dict[str, dict[str, Any]]:
    return {
        "crm": sf.opportunity("t1"),
        "email": generic_email.sample(),
        "message": generic_chat.message(),
        "event": generic_chat.calendar_event(),
    }


NORMALISE: dict[str, Callable[[Any], Any]] = {
    "crm": lambda e: map_crm_event(e, shipped_mappings()),
    "email": lambda e: normalise_email(e, TENANT),
    "message": lambda e: normalise_message(e, TENANT),
    "event": lambda e: normalise_calendar_event(e, TENANT),
}


@st.composite
def hostile_bodies(draw: st.DrawFn, data_type: str) -> bytes:
    """A good event of `data_type` damaged one way, or plain garbage."""
    good = good_events()[data_type]
    how = draw(st.sampled_from(("bytes", "field", "payload", "deep", "drop", "good")))
    if how == "bytes":
        return draw(st.binary(max_size=300))
    if how == "deep":
        return deep_envelope(good)
    event = json.loads(json.dumps(good))
    if how == "field":
        event[draw(st.sampled_from(ENVELOPE_FIELDS))] = draw(json_values)
    elif how == "payload":
        payload = event["payload"]
        if payload:
            payload[draw(st.sampled_from(sorted(payload)))] = draw(json_values)
    elif how == "drop":
        event.pop(draw(st.sampled_from(ENVELOPE_FIELDS)), None)
    return json.dumps(event).encode()


class RecordingWriter:
    """The topics, as far as the pipeline writes them: what it emits, recorded."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def announce(self, events: Any) -> None:
        list(events)

    async def dead_letter(self, letters: Any) -> None:
        self.letters.extend(letters)

    async def send_raw(self, events: Any) -> None:
        list(events)


def test_the_deep_nesting_repro_is_one_dead_letter_at_the_bridge() -> None:
    body = deep_envelope(generic_email.sample())
    letter = route("integration.raw.email", body)
    assert isinstance(letter, DeadLetter)
    assert letter.stage == "bridge" and "recursion" in letter.error
    assert letter.wire_value() == body  # not an object it can decode: kept as it came
    assert isinstance(
        route("integration.raw.email", json.dumps(generic_email.sample()).encode()), Routed
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(("crm", "email", "message", "event", "document", "meeting", "x")),
    st.data(),
)
def test_the_bridge_routes_or_dead_letters_anything(routing: str, data: st.DataObject) -> None:
    data_type = routing if routing in good_events() else "email"
    body = data.draw(hostile_bodies(data_type))
    result = route(f"integration.raw.{routing}", body)
    assert isinstance(result, Routed | DeadLetter)
    if isinstance(result, DeadLetter):
        result.headers()
        result.wire_value()
    else:  # routed on pydantic's JSON parser alone: the long way agrees, key and all
        decoded = json.loads(body)
        parse_raw_event(decoded, routing)
        assert result.key == f"{decoded['tenantId']}:{decoded['externalId']}".encode()
        assert result.value == body


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(NORMALISE)), st.data())
@example("email", None)  # the deep-nesting repro beside a good event
def test_each_agent_pipeline_writes_or_dead_letters_every_event(
    data_type: str, data: st.DataObject | None
) -> None:
    if data is None:
        bodies = [deep_envelope(good_events()[data_type]), json.dumps(good_events()[data_type])]
        batch = [b if isinstance(b, bytes) else b.encode() for b in bodies]
    else:
        batch = data.draw(st.lists(hostile_bodies(data_type), min_size=1, max_size=6))
    with tempfile.TemporaryDirectory() as folder:
        outcomes, letters = asyncio.run(_process(data_type, batch, Path(folder)))
    assert len(outcomes) + len(letters) == len(batch)
    assert sorted(int(letter.source["sourceOffset"]) for letter in letters) == sorted(
        {int(letter.source["sourceOffset"]) for letter in letters}
    )
    if data is None:
        assert len(letters) == 1 and letters[0].stage == "validate"
        assert len(outcomes) == 1  # the next good event is processed


async def _process(data_type: str, batch: list[bytes], folder: Path) -> tuple[list[Any], list[Any]]:
    async with SqliteShardStore(folder / "shards.db") as store:
        await ensure_shard_types(store)
        writer = RecordingWriter()
        pipeline = ShardPipeline(
            agent=data_type,
            data_type=data_type,
            to_draft=NORMALISE[data_type],
            store=store,
            writer=writer,  # type: ignore[arg-type]
            retries=2,
            retry_max_delay=0.01,
        )
        events = [
            IncomingEvent(body, b"k", f"integration.raw.{data_type}", 0, offset)
            for offset, body in enumerate(batch)
        ]
        outcomes = await pipeline.process(events)
        return outcomes, writer.letters


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from((ShardEvent, LinkEvent, RecalculateRequest)),
    st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.just(deep()),
    ),
)
def test_stream_events_parse_or_dead_letter(model: Any, value: bytes) -> None:
    incoming = IncomingEvent(value, None, "shard.events", 1, 7)
    parsed, letters = parse_each([incoming], model, "link")
    assert len(parsed) + len(letters) == 1
    for letter in letters:
        assert letter.source == {
            "sourceTopic": "shard.events",
            "sourcePartition": "1",
            "sourceOffset": "7",
        }
