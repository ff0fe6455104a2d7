"""Faust agents, one module per data type or concern; `register_agents` picks a role's."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from processors.settings import ConsumerType

if TYPE_CHECKING:
    from processors.app import ProcessorsApp

__all__ = ["register_agents"]


def register_agents(app: ProcessorsApp, role: ConsumerType) -> list[str]:
    """Define the agents of `role` on `app`; their names."""
    from agents import crm, document, email, event, linking, meeting, message  # need the app

    light: list[Callable[[ProcessorsApp], str]] = [
        crm.register,
        email.register,
        message.register,
        event.register,
        linking.register,
    ]
    heavy: list[Callable[[ProcessorsApp], str]] = [document.register, meeting.register]
    chosen = {
        ConsumerType.LIGHT: light,
        ConsumerType.HEAVY: heavy,
        ConsumerType.ALL: light + heavy,
    }[role]
    names = [register(app) for register in chosen]
    if role in (ConsumerType.LIGHT, ConsumerType.ALL):
        from tables import ml_fields  # needs the app

        names.extend(ml_fields.register(app))
    return names
