"""Which agents a worker runs (`CONSUMER_TYPE`, narrowed by `AGENTS`) and the consumer group
that set of agents joins."""

from __future__ import annotations

from typing import Final

from agents import AGENT_NAMES as AGENTS_PACKAGE
from core.exceptions import ConfigurationError
from core.settings import ConsumerType, Settings
from tables.ml_fields import AGENT_NAMES as TABLES_PACKAGE

#: The agent that holds the ML-field table (and its changelog, standbys included).
TABLE_AGENT: Final = "ml_fields"

__all__ = ["ROLE_AGENTS", "consumer_group", "select_agents"]

_HEAVY: Final = ("process_documents", "process_meetings")
_LIGHT: Final = tuple(n for n in AGENTS_PACKAGE if n not in _HEAVY) + TABLES_PACKAGE

#: Every agent of each role, in the order they are defined.
ROLE_AGENTS: Final[dict[ConsumerType, tuple[str, ...]]] = {
    ConsumerType.LIGHT: _LIGHT,
    ConsumerType.HEAVY: _HEAVY,
    ConsumerType.ALL: _LIGHT + _HEAVY,
}


def select_agents(settings: Settings) -> tuple[str, ...]:
    """The agents of `CONSUMER_TYPE` that `AGENTS` names (all of them when it is empty), or
    all but those it excludes (`-name`); a name that is unknown or outside the role, a mix
    of names and exclusions, or nothing left is a configuration error."""
    role = settings.CONSUMER_TYPE
    candidates = ROLE_AGENTS[role]
    chosen = settings.AGENTS
    if not chosen:
        return candidates
    excluded = {name.removeprefix("-") for name in chosen if name.startswith("-")}
    included = {name for name in chosen if not name.startswith("-")}
    if excluded and included:
        message = f"AGENTS {','.join(chosen)!r}: either names or exclusions (-name), not both"
        raise ConfigurationError(message)
    for name in sorted(excluded | included):
        if name not in candidates:
            known = ", ".join(candidates)
            message = f"AGENTS: {name!r} is not an agent of CONSUMER_TYPE={role} ({known})"
            raise ConfigurationError(message)
    selected = tuple(n for n in candidates if (n in included if included else n not in excluded))
    if not selected:
        message = f"AGENTS {','.join(chosen)!r} leaves no agent to run"
        raise ConfigurationError(message)
    return selected


def consumer_group(settings: Settings, agents: tuple[str, ...]) -> str:
    """The Faust app id (consumer group, prefix of the tables' changelogs) of a worker
    running `agents`: `APP_ID` for a whole role that holds the ML-field table (`light`,
    `all`), `APP_ID.<agents, sorted, dot-separated>` for a selection and for a role
    without the table (`heavy`), so that workers with different sets never share a
    group's rebalances and workers with the same set share the work.

    A table-less member must never lead a group of table holders: Faust's assignor
    computes a member's changelog partitions with the leader's tables, the member checks
    them against its own (standby replicas included) and asserts; aiokafka's coordinator
    routine dies on that assertion and the worker never fetches again (found by the long
    chaos run: a heavy worker led after a kill, 323 shards never written)."""
    if not settings.AGENTS and TABLE_AGENT in agents:
        return settings.APP_ID
    return ".".join([settings.APP_ID, *sorted(agents)])
