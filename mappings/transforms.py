"""Value transforms a field mapping can name; plain functions, no I/O.

Each takes the source value (or values, for several sources) and a context with the
record's tenant and provider, and returns a JSON-ready value. A value that cannot be
transformed raises `MappingError` naming what was wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from urllib.parse import urlsplit

from dateutil import parser as date_parser

from processors.exceptions import MappingError
from shards.ids import shard_id

__all__ = ["TRANSFORMS", "TransformContext", "apply_transform"]


@dataclass(frozen=True, slots=True)
class TransformContext:
    """What a transform may know besides the value."""

    tenant_id: str
    provider: str
    options: dict[str, Any]


Transform = Callable[[Any, TransformContext], Any]

_TRUE: Final = {"true", "yes", "y", "1", "t", "on"}
_FALSE: Final = {"false", "no", "n", "0", "f", "off", ""}
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _string(value: Any, ctx: TransformContext) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _number(value: Any, ctx: TransformContext) -> float | int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        message = f"not a number: {value!r}"
        raise MappingError(message)
    if isinstance(value, int | float):
        return value
    try:
        number = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation as e:
        message = f"not a number: {value!r}"
        raise MappingError(message) from e
    return int(number) if number == number.to_integral_value() else float(number)


def _integer(value: Any, ctx: TransformContext) -> int | None:
    number = _number(value, ctx)
    return None if number is None else int(number)


def _boolean(value: Any, ctx: TransformContext) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    message = f"not a boolean: {value!r}"
    raise MappingError(message)


def _parse_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    text = str(value)
    try:
        return datetime.fromisoformat(text)  # C-fast; 3.11 reads most of ISO 8601
    except ValueError:
        pass
    try:
        return date_parser.isoparse(text)
    except (ValueError, OverflowError) as e:
        message = f"not an ISO 8601 date or time: {value!r}"
        raise MappingError(message) from e


def _datetime(value: Any, ctx: TransformContext) -> str | None:
    """To UTC RFC 3339 (`2025-03-11T14:02:11Z`); a value without a zone is taken as UTC."""
    if value in (None, ""):
        return None
    parsed = _parse_datetime(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    utc = parsed.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds" if utc.microsecond else "seconds").replace(
        "+00:00", "Z"
    )


def _date(value: Any, ctx: TransformContext) -> str | None:
    """To `YYYY-MM-DD`; a date-time keeps its own calendar date."""
    if value in (None, ""):
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return _parse_datetime(value).date().isoformat()


def _email(value: Any, ctx: TransformContext) -> str | None:
    text = _string(value, ctx)
    if text is None:
        return None
    address = text.lower()
    if not _EMAIL.match(address):
        message = f"not an email address: {value!r}"
        raise MappingError(message)
    return address


def _domain(value: Any, ctx: TransformContext) -> str | None:
    """A website or address to its host: `https://www.Acme.co.uk/x` → `acme.co.uk`."""
    text = _string(value, ctx)
    if text is None:
        return None
    if "@" in text and "/" not in text:
        text = text.rsplit("@", 1)[1]
    host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
    host = host.strip(".").lower()
    host = host.removeprefix("www.")
    if "." not in host:
        message = f"no domain in {value!r}"
        raise MappingError(message)
    return host


def _reference(value: Any, ctx: TransformContext) -> str | None:
    """A provider id of another record to that record's shard id."""
    text = _string(value, ctx)
    if text is None:
        return None
    entity_type = ctx.options.get("entityType")
    if not entity_type:
        message = "the reference transform needs options.entityType"
        raise MappingError(message)
    return shard_id(ctx.tenant_id, ctx.provider, str(entity_type), text)


def _concat(values: Any, ctx: TransformContext) -> str | None:
    separator = str(ctx.options.get("separator", " "))
    parts = [str(v).strip() for v in _as_list(values) if v not in (None, "")]
    return separator.join(p for p in parts if p) or None


def _lowercase(value: Any, ctx: TransformContext) -> str | None:
    text = _string(value, ctx)
    return None if text is None else text.lower()


def _value_map(value: Any, ctx: TransformContext) -> Any:
    """Look the value up in `options.values`; `options.default` when absent."""
    table = ctx.options.get("values", {})
    key = value if isinstance(value, str) else str(value).lower()
    return table.get(key, ctx.options.get("default", value))


def _salesforce_status(values: Any, ctx: TransformContext) -> str:
    """`[IsClosed, IsWon]` to `open` / `closed_won` / `closed_lost`."""
    is_closed, is_won = (_boolean(v, ctx) for v in _as_list(values)[:2])
    if not is_closed:
        return "open"
    return "closed_won" if is_won else "closed_lost"


def _identity(value: Any, ctx: TransformContext) -> Any:
    return value


def _as_list(values: Any) -> Sequence[Any]:
    return values if isinstance(values, list | tuple) else [values]


TRANSFORMS: Final[dict[str, Transform]] = {
    "none": _identity,
    "string": _string,
    "number": _number,
    "integer": _integer,
    "boolean": _boolean,
    "datetime": _datetime,
    "date": _date,
    "email": _email,
    "domain": _domain,
    "reference": _reference,
    "concat": _concat,
    "lowercase": _lowercase,
    "map": _value_map,
    "salesforce_status": _salesforce_status,
}


def apply_transform(name: str, value: Any, ctx: TransformContext) -> Any:
    """Apply the named transform."""
    return TRANSFORMS[name](value, ctx)
