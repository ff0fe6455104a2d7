"""Where one RabbitMQ message goes on the stream: plain code, no I/O."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from core.exceptions import BadEventError
from streams.dead_letters import DeadLetter
from streams.models import RawEvent, parse_raw_event
from streams.topics import DATA_TYPES, RAW_PREFIX, event_key, raw_topic

__all__ = ["Routed", "oversize_letter", "route"]


@dataclass(frozen=True, slots=True)
class Routed:
    """A message bound for its raw topic, bytes unchanged."""

    topic: str
    key: bytes
    value: bytes
    data_type: str


def route(routing_key: str, body: bytes) -> Routed | DeadLetter:
    """The raw topic and key of a message, or the dead letter that says why it has none.

    Never raises: whatever a message provokes (a parser's recursion limit included) is
    that message's dead letter, so one poison message cannot stop its queue.

    A valid envelope is parsed once, by pydantic's JSON parser; anything it refuses goes
    the long way (`json` first, then the model), which decides and says why.
    """
    if routing_key.startswith(RAW_PREFIX):
        try:
            event = RawEvent.model_validate_json(body)
        except Exception:  # noqa: BLE001, S110  # the long way below decides and says why
            pass
        else:
            if event.data_type == routing_key.removeprefix(RAW_PREFIX):
                return _routed(event, body)
    decoded: object = None
    try:
        data_type = _data_type_of(routing_key)
        decoded = _json_object(body)
        event = parse_raw_event(decoded, data_type, where=f"routing key {routing_key!r}")
    except Exception as e:  # noqa: BLE001  # BadEventError, or anything a hostile body provokes
        return DeadLetter.of(body, _key_of(decoded), e, "bridge", routingKey=routing_key)
    return _routed(event, body)


def _routed(event: RawEvent, body: bytes) -> Routed:
    key = event_key(event.tenant_id, event.external_id).encode()
    return Routed(raw_topic(event.data_type), key, body, event.data_type)


def _data_type_of(routing_key: str) -> str:
    data_type = routing_key.removeprefix(RAW_PREFIX)
    if not routing_key.startswith(RAW_PREFIX) or data_type not in DATA_TYPES:
        message = f"routing key {routing_key!r} names no known data type"
        raise BadEventError(message)
    return data_type


def _json_object(body: bytes) -> dict[str, object]:
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        message = f"not valid JSON: {e}"
        raise BadEventError(message) from e
    if not isinstance(decoded, dict):
        message = f"the event is a JSON {type(decoded).__name__}, not an object"
        raise BadEventError(message)
    return decoded


def _key_of(decoded: object) -> bytes | None:
    """`<tenantId>:<externalId>` when the message carries both, so a DLQ entry keeps its key."""
    if not isinstance(decoded, dict):
        return None
    tenant, external = decoded.get("tenantId"), decoded.get("externalId")
    if isinstance(tenant, str) and isinstance(external, str):
        return event_key(tenant, external).encode()
    return None


def oversize_letter(routing_key: str, body: bytes, limit: int, parked_in: str) -> DeadLetter:
    """A stand-in dead letter for a message too large for the stream.

    The stream gets a small JSON record that says what happened and where the bytes
    are: the bridge rejects the message to RabbitMQ's dead-letter exchange, whose queue
    `parked_in` keeps it.
    """
    error = BadEventError(
        f"message of {len(body)} bytes exceeds BRIDGE_MAX_MESSAGE_BYTES ({limit}); "
        f"kept in RabbitMQ queue {parked_in}"
    )
    stub = json.dumps({"size": len(body), "routingKey": routing_key, "parkedIn": parked_in})
    letter = DeadLetter.of(stub.encode(), None, error, "bridge", routingKey=routing_key)
    return dataclasses.replace(letter, error_type="MessageTooLarge")
