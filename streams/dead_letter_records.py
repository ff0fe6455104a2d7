"""Dead letters as read back from `integration.dlq`, and the selection `dlq list`/`replay` take.

Plain code, no I/O: what a stored dead letter says (stage, error type, tenant, time),
where its event came from, and the bytes to send back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.dead_letters import original_value
from streams.topics import DATA_TYPES, RAW_PREFIX

__all__ = ["DeadLetterSelection", "StoredDeadLetter", "parse_since"]

#: A stand-in the bridge writes for a message too large for the stream: its bytes are
#: in RabbitMQ's dead-letter queue, not here, so there is nothing to send back.
_STAND_IN_ERROR_TYPE = "MessageTooLarge"
_RELATIVE = re.compile(r"([0-9]+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """One record of the dead-letter topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_record(cls, record: Any) -> StoredDeadLetter:
        """From an aiokafka `ConsumerRecord`."""
        headers = {
            k: v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            for k, v in (record.headers or ())
        }
        return cls(
            record.topic, record.partition, record.offset, record.key, record.value or b"", headers
        )

    @property
    def position(self) -> str:
        """`<topic>:<partition>:<offset>`: the dead letter's identity (and ledger key)."""
        return f"{self.topic}:{self.partition}:{self.offset}"

    def _field(self, name: str) -> str:
        if name in self.headers:
            return self.headers[name]
        value = self._decoded().get(name)
        return value if isinstance(value, str) else ""

    def _decoded(self) -> dict[str, Any]:
        try:
            decoded = json.loads(self.value)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return {}
        return decoded if isinstance(decoded, dict) else {}

    @property
    def stage(self) -> str:
        return self._field("stage")

    @property
    def error_type(self) -> str:
        return self._field("errorType")

    @property
    def error(self) -> str:
        return self._field("error")

    @property
    def failed_at(self) -> datetime | None:
        raw = self._field("failedAt")
        try:
            when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=UTC)

    @property
    def tenant_id(self) -> str:
        """From the key `<tenantId>:<id>`, else the event's `tenantId`."""
        if self.key:
            tenant, sep, _ = self.key.decode("utf-8", "replace").partition(":")
            if sep and tenant:
                return tenant
        from_value = self._decoded().get("tenantId")
        return from_value if isinstance(from_value, str) else ""

    @property
    def source_topic(self) -> str | None:
        """The topic the event is sent back to; None when it cannot be replayed."""
        if self.error_type == _STAND_IN_ERROR_TYPE:
            return None
        if topic := self.headers.get("sourceTopic"):
            return topic
        routing_key = self.headers.get("routingKey", "")
        if routing_key.removeprefix(RAW_PREFIX) in DATA_TYPES and routing_key != RAW_PREFIX:
            return routing_key  # the raw topic is named like the routing key (CONTRACT §2)
        return None

    def original(self) -> bytes:
        """The bytes of the event that failed."""
        return original_value(self.value, self.headers)


@dataclass(frozen=True, slots=True)
class DeadLetterSelection:
    """Which dead letters a command takes: every given filter must match (values: any of)."""

    stages: frozenset[str] = frozenset()
    error_types: frozenset[str] = frozenset()
    tenants: frozenset[str] = frozenset()
    since: datetime | None = None

    @classmethod
    def of(
        cls,
        stages: Iterable[str] = (),
        error_types: Iterable[str] = (),
        tenants: Iterable[str] = (),
        since: datetime | None = None,
    ) -> DeadLetterSelection:
        return cls(frozenset(stages), frozenset(error_types), frozenset(tenants), since)

    def matches(self, letter: StoredDeadLetter) -> bool:
        if self.stages and letter.stage not in self.stages:
            return False
        if self.error_types and letter.error_type not in self.error_types:
            return False
        if self.tenants and letter.tenant_id not in self.tenants:
            return False
        if self.since is not None:
            failed_at = letter.failed_at
            return failed_at is not None and failed_at >= self.since
        return True

    def describe(self) -> str:
        parts = [
            f"{name} {', '.join(sorted(values))}"
            for name, values in (
                ("stage", self.stages),
                ("error type", self.error_types),
                ("tenant", self.tenants),
            )
            if values
        ]
        if self.since is not None:
            parts.append(f"since {self.since.isoformat()}")
        return "; ".join(parts) or "every dead letter"


def parse_since(raw: str | None, now: datetime | None = None) -> datetime | None:
    """`--since`: an RFC 3339 time (UTC when it names no zone) or an age like `90m`, `2h`, `7d`."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    parts: Sequence[tuple[str, str]] = _RELATIVE.findall(text)
    if parts and _RELATIVE.sub("", text).strip() == "":
        age = timedelta()
        for amount, unit in parts:
            age += timedelta(**{_UNITS[unit]: int(amount)})
        return (now or datetime.now(UTC)) - age
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        message = f"--since takes an RFC 3339 time or an age like 2h or 7d, not {raw!r}"
        raise ValueError(message) from e
    return when if when.tzinfo else when.replace(tzinfo=UTC)
