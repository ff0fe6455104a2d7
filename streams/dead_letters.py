"""The dead-letter record: the failed event as it came, plus why it failed.

The reason travels twice: as Kafka headers (`error`, `errorType`, `stage`,
`failedAt`), which leave the bytes untouched, and, when the event is a JSON object,
as the same four top-level fields beside its own keys, so a console shows it and a
replay of the value still parses as the original envelope.

The fields are spliced into the event's own text, before its closing brace, and the
header `reasonSpan` ("start:end") names the bytes added, so `dlq replay` sends back
exactly the bytes that failed (`original_value`). A field the event already had is
given twice; JSON readers take the last, the newer reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["REASON_FIELDS", "REASON_SPAN_HEADER", "DeadLetter", "Stage", "original_value"]

Stage = str  # "bridge", "validate", "map", "store", ...

REASON_FIELDS = ("error", "errorType", "stage", "failedAt")
REASON_SPAN_HEADER = "reasonSpan"


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
        span = self._splice()[1]
        if span is not None:
            items[REASON_SPAN_HEADER] = f"{span[0]}:{span[1]}"
        return [(k, v.encode()) for k, v in items.items()]

    def wire_value(self) -> bytes:
        """The event unchanged, with the reason fields added when it is a JSON object."""
        return self._splice()[0]

    def _splice(self) -> tuple[bytes, tuple[int, int] | None]:
        """The value with the reason fields inserted before its closing brace, and where."""
        try:
            text = self.value.decode("utf-8")
            decoded = json.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return self.value, None
        if not isinstance(decoded, dict):
            return self.value, None
        reason = json.dumps(self.reason(), ensure_ascii=False, separators=(",", ":"))
        added = (("," if decoded else "") + reason[1:-1]).encode()
        at = len(text[: text.rindex("}")].encode())
        return self.value[:at] + added + self.value[at:], (at, at + len(added))


def original_value(value: bytes, headers: dict[str, str]) -> bytes:
    """The bytes of the event that failed, from a dead letter's value and headers.

    Without `reasonSpan` (dead letters written before it existed) the reason fields
    are taken out of the JSON object, which keeps its content but not its spacing.
    """
    span = headers.get(REASON_SPAN_HEADER)
    if span is not None:
        start, _, end = span.partition(":")
        if start.isdigit() and end.isdigit() and int(start) <= int(end) <= len(value):
            return value[: int(start)] + value[int(end) :]
    try:
        decoded = json.loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return value
    if not isinstance(decoded, dict) or not set(REASON_FIELDS) <= decoded.keys():
        return value
    for name in REASON_FIELDS:
        decoded.pop(name)
    return json.dumps(decoded, ensure_ascii=False, separators=(",", ":")).encode()
