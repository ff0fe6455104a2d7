"""The dead-letter record: the failed event as it came, plus why it failed.

The reason travels twice: as Kafka headers (`error`, `errorType`, `stage`,
`failedAt`), which leave the bytes untouched, and, when the event is a JSON object,
as the same four top-level fields beside its own keys, so a console shows it and a
replay of the value still parses as the original envelope.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["DeadLetter", "Stage"]

Stage = str  # "bridge", "validate", "map", "store", ...


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One event that cannot be processed, and why."""

    value: bytes
    key: bytes | None
    error: str
    error_type: str
    stage: Stage
    failed_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    source: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        value: bytes,
        key: bytes | None,
        exc: BaseException,
        stage: Stage,
        **source: str,
    ) -> DeadLetter:
        """A dead letter for `value` that failed with `exc` at `stage`."""
        return cls(
            value=value,
            key=key,
            error=str(exc) or repr(exc),
            error_type=type(exc).__name__,
            stage=stage,
            source=source,
        )

    def reason(self) -> dict[str, str]:
        """The four reason fields of CONTRACT §2."""
        return {
            "error": self.error[:4000],
            "errorType": self.error_type,
            "stage": self.stage,
            "failedAt": self.failed_at.isoformat().replace("+00:00", "Z"),
        }

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers: the reason, then where the event came from."""
        items = {**self.reason(), **self.source}
        return [(k, v.encode()) for k, v in items.items()]

    def wire_value(self) -> bytes:
        """The event unchanged, with the reason fields added when it is a JSON object."""
        try:
            decoded = json.loads(self.value)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return self.value
        if not isinstance(decoded, dict):
            return self.value
        decoded.update(self.reason())  # a replayed dead letter gets the newer reason
        return json.dumps(decoded, ensure_ascii=False, separators=(",", ":")).encode()
