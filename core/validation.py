"""One line per pydantic validation error, naming every bad field."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["describe_validation_error"]


def describe_validation_error(e: ValidationError, *, root: str = "(envelope)") -> str:
    """`tenantId: Field required; payload.x: ...`; `root` names an error of the whole value."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or root}: {err['msg']}"
        for err in e.errors(include_url=False)
    )
