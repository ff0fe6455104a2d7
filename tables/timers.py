"""The daily recalculation: a leader-only Faust crontab that queues active opportunities.

At `ML_RECALC_CRON` in `ML_RECALC_TIME_ZONE` (default 02:00 UTC) one worker — the
group's leader, Faust's `on_leader=True` — lists each tenant's open opportunities
whose close date is today or later (or not set) and sends one `ml_fields.recalculate`
per opportunity; the `ml_fields` agent recomputes the time-dependent fields and writes
them back. The same queueing serves the API and the `ml-fields-recalculate` command.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import faust

from core.metrics import ML_RECALCULATIONS
from core.settings import Settings
from core.tenants import TenantDirectory
from shards.model import Shard
from shards.store import ShardStore
from streams.channels import StreamWriter
from streams.models import RecalculateRequest
from tables.facts import opportunity_facts

__all__ = ["active_opportunities", "queue_recalculations", "register_timers"]

logger = logging.getLogger(__name__)

Send = Callable[[RecalculateRequest], Awaitable[None]]


async def active_opportunities(
    store: ShardStore,
    tenants: TenantDirectory,
    now: datetime,
    *,
    tenant_id: str | None = None,
    include_closed: bool = False,
) -> AsyncIterator[Shard]:
    """Open opportunities whose close date (in the tenant's zone) is not past."""
    for tenant in [tenant_id] if tenant_id else await store.tenant_ids("Opportunity"):
        today = now.astimezone(tenants.of(tenant).zone).date().isoformat()
        cursor = None
        while True:
            page = await store.query(
                tenant, shard_type="Opportunity", limit=500, continuation=cursor
            )
            for shard in page.items:
                facts = opportunity_facts(shard)
                if include_closed or (
                    facts["status"] == "open"
                    and not facts["deleted"]
                    and (facts["closeDate"] is None or facts["closeDate"] >= today)
                ):
                    yield shard
            cursor = page.continuation
            if not cursor:
                break


async def queue_recalculations(
    store: ShardStore,
    tenants: TenantDirectory,
    send: Send,
    *,
    reason: str,
    tenant_id: str | None = None,
    include_closed: bool = False,
) -> int:
    """Send a recalculation request for each active opportunity; how many were sent."""
    now = datetime.now(UTC)
    count = 0
    async for shard in active_opportunities(
        store, tenants, now, tenant_id=tenant_id, include_closed=include_closed
    ):
        await send(
            RecalculateRequest(
                tenant_id=shard.tenant_id,
                opportunity_shard_id=shard.id,
                reason=reason,
                requested_at=now,
            )
        )
        count += 1
    ML_RECALCULATIONS.labels(reason).inc(count)
    return count


def register_timers(
    app: faust.App,
    settings: Settings,
    store: ShardStore,
    tenants: TenantDirectory,
    writer: StreamWriter,
) -> None:
    """The daily crontab, run by the leader only."""

    @app.crontab(
        settings.ML_RECALC_CRON,
        timezone=ZoneInfo(settings.ML_RECALC_TIME_ZONE),
        on_leader=True,
    )
    async def ml_fields_daily_recalculation() -> None:
        try:
            count = await queue_recalculations(
                store, tenants, writer.recalculate, reason="schedule"
            )
        except Exception:  # a crontab that raises never runs again
            logger.exception("the scheduled ML-field recalculation failed")
            return
        logger.info("queued the ML-field recalculation of %d active opportunities", count)
