"""One record taken from a topic, as the processing code needs it (no Faust types)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.dead_letters import DeadLetter, Stage

__all__ = ["IncomingEvent"]


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """A record's bytes and where it came from."""

    value: bytes
    key: bytes | None
    topic: str
    partition: int
    offset: int

    @classmethod
    def of(cls, event: Any) -> IncomingEvent:
        """The record of a Faust event (`EventT`: its value and its message's position)."""
        message = event.message
        return cls(event.value, event.key, message.topic, message.partition, message.offset)

    def where(self) -> dict[str, str]:
        """Where it came from, for logs and the `source*` fields of its dead letter."""
        return {
            "sourceTopic": self.topic,
            "sourcePartition": str(self.partition),
            "sourceOffset": str(self.offset),
        }

    def letter(self, exc: BaseException, stage: Stage) -> DeadLetter:
        """The dead letter of this record, failed with `exc` at `stage`."""
        return DeadLetter.of(self.value, self.key, exc, stage, **self.where())
