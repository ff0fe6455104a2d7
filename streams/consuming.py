"""Taking a Faust stream in batches, and parsing each record or dead-lettering it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from streams.batch_delivery import RecordBatch, batched_stream, take_records
from streams.dead_letters import DeadLetter, Stage
from streams.incoming import IncomingEvent

__all__ = ["batches", "parse_each"]

M = TypeVar("M", bound=BaseModel)


async def batches(stream: Any, size: int, within: float) -> AsyncIterator[list[IncomingEvent]]:
    """The stream's records, up to `size` at once or what arrived `within` seconds.

    On a stream delivered in chunks (`streams.batch_delivery`) the count is of records,
    not chunks (`take_records`); a chunk is never split. Offsets are acknowledged by
    Faust after the loop body that took the batch returns, so that body must not raise
    (it dead-letters instead).
    """
    if batched_stream(stream):
        async for events in take_records(stream, size, within):
            yield [record for e in events for record in _records(e)]
    else:
        async for events in stream.take_events(size, within=within):
            yield [IncomingEvent.of(e) for e in events]


def _records(event: Any) -> RecordBatch | tuple[IncomingEvent]:
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
