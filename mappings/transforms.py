"""Value transforms a field mapping can name; plain functions, no I/O.

Each takes the source value (or values, for several sources) and a context with the
record's tenant and provider, and returns a JSON-ready value. A value that cannot be
transformed raises `MappingError` naming what was wrong. Options come from the field
mapping's `options`; each transform's docstring names the ones it reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from itertools import zip_longest
from typing import Any, Final
from urllib.parse import urlsplit

from dateutil import parser as date_parser

from core.addresses import FREE_MAIL_DOMAINS
from core.exceptions import MappingError
from shards.ids import shard_id

__all__ = [
    "REFERENCE_TRANSFORMS",
    "TRANSFORMS",
    "Transform",
    "TransformContext",
    "apply_transform",
]


@dataclass(frozen=True, slots=True)
class TransformContext:
    """What a transform may know besides the value."""

    tenant_id: str
    provider: str
    options: dict[str, Any]
    #: references give the provider's ids of the records they pick, not their shard ids
    #: (the mapper keeps both: `accountId` and `accountExternalId`)
    provider_ids: bool = False


Transform = Callable[[Any, TransformContext], Any]

_TRUE: Final = {"true", "yes", "y", "1", "t", "on"}
_FALSE: Final = {"false", "no", "n", "0", "f", "off", ""}
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LIST_SEPARATORS: Final = re.compile(r"[;,\s]+")
#: Ten or more digits: epoch time, never an ISO date (`20261218` is eight).
_EPOCH: Final = re.compile(r"^-?\d{10,}(\.\d+)?$")
_STATUSES: Final = ("open", "closed_won", "closed_lost")
#: Dynamics opportunity `statecode`: values and their formatted (invariant) names.
_DYNAMICS_STATES: Final = {
    "0": "open",
    "open": "open",
    "1": "closed_won",
    "won": "closed_won",
    "2": "closed_lost",
    "lost": "closed_lost",
}


def _string(value: Any, ctx: TransformContext) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _decimal(value: Any) -> Decimal | int | float | None:
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
    if not number.is_finite():
        message = f"not a finite number: {value!r}"
        raise MappingError(message)
    return number


def _number(value: Any, ctx: TransformContext) -> float | int | None:
    """A number, also from text (`"1,250.50"`); an integral value becomes an int.

    Options: `scale` multiplies (HubSpot's 0 to 1 probability by 100), `divide` divides
    (Salesforce call seconds by 60 for minutes), `digits` rounds.
    """
    number = _decimal(value)
    if number is None:
        return None
    scale, divide = ctx.options.get("scale"), ctx.options.get("divide")
    digits = ctx.options.get("digits")
    if scale is not None or divide is not None or digits is not None or isinstance(number, float):
        number = Decimal(str(number)) if isinstance(number, float) else Decimal(number)
        if scale is not None:
            number *= Decimal(str(scale))
        if divide is not None:
            number /= Decimal(str(divide))
        if digits is not None:
            number = round(number, int(digits))
    if isinstance(number, int):
        return number
    return int(number) if number == number.to_integral_value() else float(number)


def _integer(value: Any, ctx: TransformContext) -> int | None:
    number = _number(value, ctx)
    return None if number is None else int(number)


def _boolean(value: Any, ctx: TransformContext) -> bool | None:
    """`true`/`false` and their spellings; option `not: true` inverts (Dynamics `isdisabled`)."""
    if value is None:
        return None
    if isinstance(value, bool):
        result = value
    else:
        text = str(value).strip().lower()
        if text in _TRUE:
            result = True
        elif text in _FALSE:
            result = False
        else:
            message = f"not a boolean: {value!r}"
            raise MappingError(message)
    return not result if ctx.options.get("not") else result


def _parse_datetime(value: Any, ctx: TransformContext) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, bool):
        message = f"not a date or time: {value!r}"
        raise MappingError(message)
    if isinstance(value, int | float) or (isinstance(value, str) and _EPOCH.match(value)):
        return _from_epoch(value, ctx)
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


def _from_epoch(value: Any, ctx: TransformContext) -> datetime:
    """Epoch milliseconds (HubSpot's legacy and webhook values); `epoch: s` for seconds."""
    divisor = 1 if ctx.options.get("epoch") == "s" else 1000
    try:
        return datetime.fromtimestamp(float(value) / divisor, tz=UTC)
    except (ValueError, OverflowError, OSError) as e:
        message = f"not an epoch time: {value!r}"
        raise MappingError(message) from e


def _datetime(value: Any, ctx: TransformContext) -> str | None:
    """To UTC RFC 3339 (`2025-03-11T14:02:11Z`); a value without a zone is taken as UTC.

    Reads ISO 8601 text and epoch milliseconds (a number, or ten or more digits).
    """
    if value in (None, ""):
        return None
    parsed = _parse_datetime(value, ctx)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    utc = parsed.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds" if utc.microsecond else "seconds").replace(
        "+00:00", "Z"
    )


def _date(value: Any, ctx: TransformContext) -> str | None:
    """To `YYYY-MM-DD`; a date-time keeps its own calendar date, epoch times their UTC date."""
    if value in (None, ""):
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return _parse_datetime(value, ctx).date().isoformat()


def _email(value: Any, ctx: TransformContext) -> str | None:
    text = _string(value, ctx)
    if text is None:
        return None
    address = text.lower()
    if not _EMAIL.match(address):
        message = f"not an email address: {value!r}"
        raise MappingError(message)
    return address


def _email_list(values: Any, ctx: TransformContext) -> list[str] | None:
    """Every address in the sources, lower-cased, first occurrence kept, in source order.

    A source may hold one address, several separated by `;` or `,` (HubSpot
    `hs_additional_emails`), or a list. Text that is not an address is left out: a
    malformed secondary address must not cost the whole record. No text in any source
    (a tombstone) gives nothing; text without an address an empty list.
    """
    texts = list(_texts(values))
    if not texts:
        return None
    found: dict[str, None] = {}
    for text in texts:
        address = text.lower()
        if _EMAIL.match(address):
            found.setdefault(address)
    return list(found)


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


def _domain_list(values: Any, ctx: TransformContext) -> list[str] | None:
    """Every company domain in the sources (websites, domains, addresses), first kept.

    Sources split like `email_list` (HubSpot `hs_additional_domains` is `;`-separated).
    Free-mail domains (an account's `gmail.com` address) and text without a domain are
    left out; no text in any source gives nothing.
    """
    texts = list(_texts(values))
    if not texts:
        return None
    found: dict[str, None] = {}
    for text in texts:
        try:
            domain = _domain(text, ctx)
        except MappingError:
            continue
        if domain and domain not in FREE_MAIL_DOMAINS:
            found.setdefault(domain)
    return list(found)


def _reference(value: Any, ctx: TransformContext) -> str | None:
    """A provider id of another record to that record's shard id.

    Option `entityType` is the target's object name as the provider names it. With
    several sources as `[id, type, id, type, ...]` (a polymorphic lookup and its
    Dynamics `@Microsoft.Dynamics.CRM.lookuplogicalname`), the first id whose type is
    `entityType` is used, and a record of another type references nothing. A single pair
    without its type is taken to be of `entityType`.
    """
    entity_type = ctx.options.get("entityType")
    if not entity_type:
        message = "the reference transform needs options.entityType"
        raise MappingError(message)
    if isinstance(value, list | tuple):
        value = _pick_typed(value, str(entity_type))
    text = _string(value, ctx)
    if text is None or ctx.provider_ids:
        return text
    return shard_id(ctx.tenant_id, ctx.provider, str(entity_type), text)


def _references(values: Any, ctx: TransformContext) -> list[str] | None:
    """A list of provider ids (`associations.contacts.results[].id`) to shard ids.

    Option `entityType` as for `reference`; blanks are skipped and repeats dropped. An
    absent source gives nothing (unknown), an empty list an empty list.
    """
    if values is None:
        return None
    found: dict[str, None] = {}
    for value in _as_list(values):
        if (ref := _reference(value, ctx)) is not None:
            found.setdefault(ref)
    return list(found)


def _salesforce_polymorphic(values: Any, ctx: TransformContext) -> list[str] | None:
    """The ids of a Salesforce polymorphic field that point at `entityType`, as shard ids.

    For a Task's `WhatId` and `WhoId`: a list of shard ids, or nothing when no id is of
    the wanted object. Salesforce tells the object by the id's first three characters,
    its key prefix: option `prefix` (or a list of them) names the target's, e.g. `006`
    for Opportunity, `001` Account, `003` Contact (a `00Q` lead or `500` case is none of
    them). Several sources (`[AccountId, WhatId]`) are read in order; repeats dropped.
    """
    prefixes = ctx.options.get("prefix")
    if not prefixes or not ctx.options.get("entityType"):
        message = "the salesforce_polymorphic transform needs options.prefix and entityType"
        raise MappingError(message)
    wanted = tuple(str(p) for p in _as_list(prefixes))
    ids = (_string(v, ctx) for v in _as_list(values))
    return _reference_list([i for i in ids if i is not None and i.startswith(wanted)], ctx)


def _dynamics_polymorphic(values: Any, ctx: TransformContext) -> list[str] | None:
    """The ids of a Dynamics polymorphic lookup that point at `entityType`, as shard ids.

    For a task's `regardingobjectid`: sources `[id, logical name, ...]` (the lookup and
    its `@Microsoft.Dynamics.CRM.lookuplogicalname`), giving a list of the shard ids of
    those whose logical name is `options.entityType`, or nothing when none is. Unlike
    `reference`, an id without its logical name matches nothing: a regarding object's
    type cannot be guessed.
    """
    entity_type = ctx.options.get("entityType")
    if not entity_type:
        message = "the dynamics_polymorphic transform needs options.entityType"
        raise MappingError(message)
    items = _as_list(values)
    if len(items) % 2:
        message = f"expected [id, logical name] pairs, got {len(items)} values"
        raise MappingError(message)
    wanted = str(entity_type).casefold()
    ids = [
        value
        for value, kind in zip(items[::2], items[1::2], strict=True)
        if kind is not None and str(kind).casefold() == wanted
    ]
    return _reference_list(ids, ctx)


def _reference_list(ids: Sequence[Any], ctx: TransformContext) -> list[str] | None:
    """Provider ids to their shard ids, as `reference` makes them; no id: nothing, not `[]`."""
    found: dict[str, None] = {}
    for value in ids:
        if (ref := _reference(value, ctx)) is not None:
            found.setdefault(ref)
    return list(found) or None


def _contact_roles(values: Any, ctx: TransformContext) -> list[dict[str, Any]] | None:
    """An opportunity's contacts as `[{contactId, role?, isPrimary?}]`.

    One source: the contact ids (a `[]` path, or a single id). Several sources: lists
    read in step, `[ids, roles, primary flags]`. Options: `entityType` of the contacts
    (as for `reference`); `primary: true` marks every contact primary. One entry per
    contact: the first, primary if any repeat is. An absent source gives nothing.
    """
    columns = _columns(values)
    if columns is None:
        return None
    ids, roles, primaries = columns
    entries: dict[str, dict[str, Any]] = {}
    for contact, role, primary in zip_longest(ids, roles, primaries):
        if contact is None or (contact_id := _reference(contact, ctx)) is None:
            continue
        entry = entries.get(contact_id)
        if entry is None:
            entry = entries[contact_id] = {"contactId": contact_id}
            if (text := _string(role, ctx)) is not None:
                entry["role"] = text
        is_primary = True if ctx.options.get("primary") else _boolean(primary, ctx)
        if is_primary is not None:
            entry["isPrimary"] = bool(entry.get("isPrimary")) or is_primary
    return list(entries.values())


def _columns(values: Any) -> tuple[list[Any], list[Any], list[Any]] | None:
    """`[ids]`, or `[ids, roles, flags]` when every source is a list (or absent)."""
    if values is None:
        return None
    items = list(_as_list(values))
    if not items:
        return [], [], []
    if all(v is None for v in items):
        return None
    if all(v is None or isinstance(v, list | tuple) for v in items):
        lists = [list(v) if v is not None else [] for v in items]
    else:
        lists = [items]
    lists += [[], []]
    return lists[0], lists[1], lists[2]


def _select_by_type(values: Any, ctx: TransformContext) -> Any:
    """From sources `[value, type, value, type, ...]`, the value whose type is `options.type`.

    For a Dynamics connection: the role on the contact's side, whichever side that is.
    """
    wanted = ctx.options.get("type")
    if not wanted:
        message = "the select_by_type transform needs options.type"
        raise MappingError(message)
    return _pick_typed(_as_list(values), str(wanted))


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


#: Words of an account type, in the order they are tried, and the relationship they mean.
_RELATIONSHIP_WORDS: Final = (
    (("reseller", "distributor", "var"), "reseller"),
    (("partner", "consultant", "integrator", "alliance"), "partner"),
    (("vendor", "supplier"), "vendor"),
    (("competitor",), "competitor"),
    (("customer", "client"), "customer"),
    (("prospect", "lead"), "prospect"),
)


def _account_relationship(values: Any, ctx: TransformContext) -> str | None:
    """An account's type to what it is to the tenant: `customer`, `prospect`, `partner`,
    `reseller`, `vendor`, `competitor` or `other`.

    Sources are read in order; the first that tells wins. A value listed in
    `options.values` (Dynamics `customertypecode` numbers) means what it names; other text
    is read by its words (Salesforce `Channel Partner / Reseller` → reseller, `Customer -
    Channel` → customer, HubSpot `RESELLER`); a true flag (Salesforce `IsPartner`) means
    partner. Text that names none of them is `other`; nothing at all, nothing.
    """
    table = {str(k).lower(): str(v) for k, v in (ctx.options.get("values") or {}).items()}
    found: str | None = None
    for value in _as_list(values):
        if value is None or value == "" or value is False:
            continue
        if value is True:
            return "partner"
        text = str(value).strip().lower()
        if text in table:
            return table[text]
        if text in _TRUE or text in _FALSE:
            if text in _TRUE and not text.isdigit():
                return "partner"
            continue
        words = set(re.split(r"[^a-z]+", text))
        for keys, relationship in _RELATIONSHIP_WORDS:
            if words & set(keys):
                return relationship
        found = found or "other"
    return found


def _salesforce_status(values: Any, ctx: TransformContext) -> str | None:
    """`[IsClosed, IsWon]` to `open` / `closed_won` / `closed_lost`; neither known: nothing."""
    is_closed, is_won = (_boolean(v, ctx) for v in (*_as_list(values), None, None)[:2])
    if is_closed is None and is_won is None:
        return None
    if not is_closed:
        return "open"
    return "closed_won" if is_won else "closed_lost"


def _hubspot_status(values: Any, ctx: TransformContext) -> str | bool | None:
    """HubSpot `[dealstage, hs_is_closed?, hs_is_closed_won?]` to the deal's status.

    HubSpot's own flags decide when present (they follow custom pipelines); otherwise
    the stage: `options.won` (default `[closedwon]`) and `options.lost` (default
    `[closedlost]`) list the closing stage ids, anything else is open. Option `output`:
    `status` (default), `isClosed` or `isWon`.
    """
    stage, is_closed, is_won = (*_as_list(values), None, None)[:3]
    closed, won = _boolean(is_closed, ctx), _boolean(is_won, ctx)
    if closed is not None:
        status = ("closed_won" if won else "closed_lost") if closed else "open"
    elif (stage_id := _string(stage, ctx)) is None:
        return None
    elif stage_id.lower() in _lowered(ctx.options.get("won", ["closedwon"])):
        status = "closed_won"
    elif stage_id.lower() in _lowered(ctx.options.get("lost", ["closedlost"])):
        status = "closed_lost"
    else:
        status = "open"
    return _status_output(status, ctx)


def _dynamics_status(value: Any, ctx: TransformContext) -> str | bool | None:
    """Dynamics opportunity `statecode` (0 Open, 1 Won, 2 Lost, or those names) to status.

    Option `output` as for `hubspot_status`.
    """
    text = _string(value, ctx)
    if text is None:
        return None
    status = _DYNAMICS_STATES.get(text.lower())
    if status is None:
        message = f"not a Dynamics opportunity statecode (0, 1, 2): {value!r}"
        raise MappingError(message)
    return _status_output(status, ctx)


def _dynamics_deleted(values: Any, ctx: TransformContext) -> bool:
    """Sources `["@odata.context", "@removed", reason, statecode?]` to whether it is deleted.

    Deleted: a change-tracking tombstone (`@odata.context` ending `$deletedEntity`, or
    OData 4.01 `@removed`) whose reason is not `changed` (left the result set but still
    exists), or a `statecode` listed in `options.inactive` (a deactivated account or
    contact: Dynamics' soft delete, hidden from every default view).
    """
    context, removed, reason, state = (*_as_list(values), None, None, None, None)[:4]
    if isinstance(removed, dict):
        reason = removed.get("reason", reason)
    tombstone = bool(removed) or str(context or "").endswith("$deletedEntity")
    if tombstone:
        return str(reason or "deleted").lower() != "changed"
    inactive = {str(s).lower() for s in _as_list(ctx.options.get("inactive", []))}
    return state is not None and str(state).lower() in inactive


def _identity(value: Any, ctx: TransformContext) -> Any:
    return value


def _status_output(status: str, ctx: TransformContext) -> str | bool:
    output = ctx.options.get("output", "status")
    if output == "status":
        return status
    if output == "isClosed":
        return status != "open"
    if output == "isWon":
        return status == "closed_won"
    message = f"unknown output {output!r}; known: status, isClosed, isWon"
    raise MappingError(message)


def _pick_typed(values: Sequence[Any], wanted: str) -> Any:
    if len(values) % 2:
        message = f"expected [value, type] pairs, got {len(values)} values"
        raise MappingError(message)
    pairs = list(zip(values[::2], values[1::2], strict=True))
    for value, kind in pairs:
        if kind is None and len(pairs) == 1:
            return value
        if kind is not None and str(kind).casefold() == wanted.casefold():
            return value
    return None


def _texts(values: Any) -> Iterator[str]:
    """Every non-blank piece of text in a value, a list of them, or `;`/`,`-separated text."""
    for value in _as_list(values):
        if isinstance(value, list | tuple):
            yield from _texts(value)
        elif value is not None:
            yield from (p for p in _LIST_SEPARATORS.split(str(value)) if p)


def _lowered(values: Any) -> set[str]:
    return {str(v).lower() for v in _as_list(values)}


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
    "email_list": _email_list,
    "domain": _domain,
    "domain_list": _domain_list,
    "reference": _reference,
    "references": _references,
    "salesforce_polymorphic": _salesforce_polymorphic,
    "dynamics_polymorphic": _dynamics_polymorphic,
    "contact_roles": _contact_roles,
    "select_by_type": _select_by_type,
    "concat": _concat,
    "lowercase": _lowercase,
    "map": _value_map,
    "account_relationship": _account_relationship,
    "salesforce_status": _salesforce_status,
    "hubspot_status": _hubspot_status,
    "dynamics_status": _dynamics_status,
    "dynamics_deleted": _dynamics_deleted,
}


def apply_transform(name: str, value: Any, ctx: TransformContext) -> Any:
    """Apply the named transform."""
    return TRANSFORMS[name](value, ctx)


#: The transforms whose values are references to other records (shard ids), each of which
#: the mapper keeps with the provider's id beside it; `contact_roles` entries carry theirs.
REFERENCE_TRANSFORMS: Final = frozenset(
    {"reference", "references", "salesforce_polymorphic", "dynamics_polymorphic"}
)
