"""The project's commands beside Faust's own (CONTRACT §6): bridge, broker, dev, publish,
token, and the ML-field commands (recalculate, rebuild)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import faust
from faust.cli import AppCommand, argument, option
from mode import Service
from prometheus_client import start_http_server

from bridge.publisher import RawEventPublisher, read_jsonl
from core.settings import Settings
from processors.bootstrap import Adapters
from processors.embedded_broker import EmbeddedBroker
from processors.operations import register_operations_commands
from processors.progress import on_terminal, progress_bar, tracked
from processors.services import BridgeService, DevService
from processors.upgrades import register_upgrade_command
from streams.channels import StreamWriter
from streams.models import RecalculateRequest
from tables.features import compute_features
from tables.state import rebuild_state
from tables.timers import active_opportunities, queue_recalculations
from tables.writeback import write_ml_fields
from web.auth import issue_token

__all__ = ["register_commands"]

logger = logging.getLogger(__name__)


def register_commands(
    app: faust.App, settings: Settings, adapters: Adapters, writer: StreamWriter
) -> None:
    """Add the project's commands to `app`'s command line."""
    register_operations_commands(app, settings, adapters)

    def bridge_service(self: AppCommand, loop: object, *args: object, **kw: object) -> Service:
        if settings.BRIDGE_METRICS_PORT:
            start_http_server(settings.BRIDGE_METRICS_PORT, addr="127.0.0.1")
        return BridgeService(settings, adapters.broker_url)

    @app.command(as_service=bridge_service, daemon=True)
    async def bridge(self: AppCommand) -> None:
        """Run the RabbitMQ-to-stream bridge until stopped."""

    @app.command(option("--port", type=int, default=0, help="0: a free port"))
    async def broker(self: AppCommand, port: int) -> None:
        """Run the embedded Kafka-compatible broker (memory only) in the foreground."""
        with EmbeddedBroker(port or None, settings.broker_url_file) as embedded:
            self.say(embedded.url)
            code = await embedded.wait_stopped()
        sys.exit(code or 1)

    @app.command(as_service=lambda self, loop, *a, **kw: DevService(settings), daemon=True)
    async def dev(self: AppCommand) -> None:
        """Broker, bridge and an `all` worker on the embedded defaults; Ctrl-C stops them."""

    @app.command(
        argument("file", type=Path),
        option("--declare/--no-declare", default=True, help="declare the bridge's queues too"),
    )
    async def publish(self: AppCommand, file: Path, declare: bool) -> None:
        """Publish raw envelopes from a JSONL file to RabbitMQ, as integration-sync does."""
        prefix = settings.BRIDGE_QUEUE_PREFIX if declare else None
        total = _count_lines(file) if on_terminal() else None  # a second read, for the bar only
        bodies = tracked(read_jsonl(file), f"publishing {file.name}", total=total, unit="event")
        async with RawEventPublisher(settings.RABBITMQ_URL, queue_prefix=prefix) as publisher:
            count = await publisher.publish_events(bodies)
        self.say(f"published {count} events from {file}")

    @app.command(
        option("--tenant", required=True, help="the tenant id (claim tid)"),
        option("--user", required=True, help="the user id (claim sub)"),
        option("--ttl", type=int, default=None, help="seconds; default TOKEN_TTL"),
    )
    async def token(self: AppCommand, tenant: str, user: str, ttl: int | None) -> None:
        """Print a development API token for a tenant and user."""
        print(  # noqa: T201  # the token is the command's output
            issue_token(
                secret=settings.JWT_SECRET.get_secret_value(),
                tenant_id=tenant,
                user_id=user,
                ttl=timedelta(seconds=ttl or settings.TOKEN_TTL),
                algorithm=settings.JWT_ALGORITHM,
            )
        )

    register_upgrade_command(app, adapters)

    @app.command(
        option("--tenant", default=None, help="one tenant (default: every tenant)"),
        option("--opportunity", default=None, help="one opportunity shard id (needs --tenant)"),
        option("--all/--active", default=False, help="closed opportunities too"),
    )
    async def ml_fields_recalculate(
        self: AppCommand, tenant: str | None, opportunity: str | None, all: bool
    ) -> None:
        """Queue ML-field recalculations (the daily timer's work, now) on the stream."""
        if opportunity and not tenant:
            raise SystemExit("--opportunity needs --tenant")
        store = adapters.store
        await store.start()
        await app.maybe_start_producer()
        try:
            if opportunity:
                await writer.recalculate(
                    RecalculateRequest(
                        tenant_id=str(tenant),
                        opportunity_shard_id=opportunity,
                        reason="command",
                        requested_at=datetime.now(UTC),
                    )
                )
                count = 1
            else:
                with progress_bar("queueing recalculations", unit="opportunity") as bar:

                    async def queue(request: RecalculateRequest) -> None:
                        await writer.recalculate(request)
                        bar.update(1)

                    count = await queue_recalculations(
                        store,
                        adapters.tenants,
                        queue,
                        reason="command",
                        tenant_id=tenant,
                        include_closed=all,
                    )
            await app.producer.flush()
        finally:
            await store.stop()
        self.say(f"queued {count} recalculations")

    @app.command(
        option("--tenant", default=None, help="one tenant (default: every tenant)"),
        option("--dry-run", is_flag=True, default=False, help="compute and compare only"),
    )
    async def ml_fields_rebuild(self: AppCommand, tenant: str | None, dry_run: bool) -> None:
        """Recompute every opportunity's ML fields from the store alone and write them."""
        store, tenants = adapters.store, adapters.tenants
        await store.start()
        same = written = 0
        bar = progress_bar("rebuilding ML fields", unit="opportunity")
        try:
            now = datetime.now(UTC)
            async for shard in active_opportunities(
                store, tenants, now, tenant_id=tenant, include_closed=True
            ):
                bar.update(1)
                state = await rebuild_state(store, tenants, shard.tenant_id, shard.id)
                if state is None:
                    continue
                fields = compute_features(state, now, tenants.of(shard.tenant_id).zone)
                if shard.ml_fields == fields:
                    same += 1
                elif not dry_run:
                    await write_ml_fields(store, shard.tenant_id, shard.id, fields, now)
                    written += 1
                else:
                    written += 1
        finally:
            bar.close()
            await store.stop()
        verb = "differ" if dry_run else "rewritten"
        self.say(f"{same + written} opportunities: {same} already equal, {written} {verb}")


def _count_lines(file: Path) -> int:
    with file.open("rb") as lines:
        return sum(1 for line in lines if line.strip())
