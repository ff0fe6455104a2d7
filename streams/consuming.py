"""Taking a Faust stream in batches, and parsing each record or dead-lettering it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from streams.batch_delivery import RecordBatch, batched_stream, take_records
from streams.dead_letters import DeadLetter, Stage
from streams.incoming import IncomingEvent

__all__ = ["batches", "event_batches", "parse_each", "records_of"]

M = TypeVar("M", bound=BaseModel)


async def event_batches(
    stream: Any, size: int, within: float, *, lag: bool = False
) -> AsyncIterator[list[Any]]:
    """The stream's Faust events (records, or chunks of them: `records_of`), up to `size`
    records at once or what arrived `within` seconds; acknowledged as `batches`."""
    if batched_stream(stream):
        async for events in take_records(stream, size, within, lag=lag):
            yield events
    elif lag:
        message = "a lagging acknowledgement needs a stream delivered in chunks"
        raise ValueError(message)
    else:
        async for events in stream.take_events(size, within=within):
            yield events


async def batches(
    stream: Any, size: int, within: float, *, lag: bool = False
) -> AsyncIterator[list[IncomingEvent]]:
    """The stream's records, up to `size` at once or what arrived `within` seconds.

    On a stream delivered in chunks (`streams.batch_delivery`) the count is of records,
    not chunks (`take_records`); a chunk is never split. Offsets are acknowledged by
    Faust after the loop body that took the batch returns (`lag`: after the body that
    took the next one, `take_records`), so that body must not raise (it dead-letters
    instead).
    """
    async for events in event_batches(stream, size, within, lag=lag):
        yield [record for e in events for record in records_of(e)]


def records_of(event: Any) -> RecordBatch | tuple[IncomingEvent]:
    """The records a Faust event holds: a chunk's, or the event's own."""
    value = event.value
    return value if isinstance(value, RecordBatch) else (IncomingEvent.of(event),)


def parse_each(
    batch: Sequence[IncomingEvent], model: type[M], stage: Stage
) -> tuple[list[tuple[IncomingEvent, M]], list[DeadLetter]]:
    """Each record's value as `model`, or its dead letter when it is not one."""
    parsed: list[tuple[IncomingEvent, M]] = []
    letters: list[DeadLetter] = []
    for incoming in batch:
        try:
            parsed.append((incoming, model.model_validate_json(incoming.value)))
        except (ValidationError, ValueError, RecursionError) as exc:
            letters.append(incoming.letter(exc, stage))
    return parsed, letters
