"""What the web views are given by the app that registers them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from blobs.store import BlobStore
from core.settings import Settings
from shards.store import ShardStore
from streams.admin import BrokerAdmin
from streams.channels import StreamWriter

__all__ = ["MlFieldsSource", "WebDeps"]


class MlFieldsSource(Protocol):
    """Where the ML-field views read an opportunity's fields (the worker's table, or the
    store on a worker without it)."""

    @property
    def table_name(self) -> str | None:
        """The partitioned table that holds the fields (requests go to its owner), or None."""

    def route_key(self, tenant_id: str, opportunity_id: str) -> bytes:
        """The opportunity's key in that table."""

    async def fields(
        self, tenant_id: str, opportunity_id: str, now: datetime
    ) -> tuple[dict[str, Any], str] | None:
        """The fields at `now` and their source ("table", "store"); None when unknown."""


@dataclass(frozen=True, slots=True)
class WebDeps:
    """Settings and the adapters the views use; nothing is looked up on the app."""

    settings: Settings
    store: ShardStore
    writer: StreamWriter
    admin: BrokerAdmin
    blobs: BlobStore
    ml_fields: MlFieldsSource
    agent_names: tuple[str, ...]
    #: partitions the consumer's watchdog finds stalled right now (`/ready` check "consumer")
    consumer_stalls: Callable[[], Sequence[str]] = tuple
