"""ML fields in a Faust table keyed by opportunity: two agents, a write-back timer.

- `ml_route` (on `link.events`) and `link_activities` (after linking a batch of
  `shard.events`: one agent per topic) send snapshots (`tables.state.Change`) to
  `ml_fields.changes`, keyed
  `<tenantId>:<opportunityShardId>`: the repartition step that brings every change
  of one opportunity to the worker that owns it.
- `ml_fields` reads `ml_fields.changes` and `ml_fields.recalculate` (same key, same
  partitions), keeps `{"opp": facts, "acts": {activityId: facts}}` per opportunity
  in the table `ml_fields` (changelog-backed; RocksDB or memory by `TABLE_STORE`),
  coalescing a batch's changes into one table write per key.
- a timer writes the fields back onto the opportunity shard, at most once per
  `ML_WRITEBACK_DELAY` per opportunity (`tables.writeback.Pending`).

Fields are computed from the facts when written or read (`tables.features`), so time
passing needs no event; the daily crontab (`tables.timers`) only refreshes the
written-back copy.
"""

from __future__ import annotations

import logging
import weakref
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import faust
from faust.streams import _current_event  # the context a table write takes its partition from
from faust.types import TP, EventT, StreamT
from pydantic import ValidationError

from core.exceptions import ConcurrencyError, StoreError
from core.metrics import ML_CHANGES, ML_WRITEBACKS
from core.retries import retry_store
from core.settings import Settings
from core.tenants import TenantDirectory
from shards.model import WriteKind, WriteOutcome
from shards.store import ShardStore
from streams.batched_send import partition_of
from streams.channels import StreamWriter, Topics
from streams.consuming import batches, event_batches, parse_each, records_of
from streams.dead_letters import DeadLetter
from streams.incoming import IncomingEvent
from streams.models import LinkEvent, RecalculateRequest, ShardEvent
from streams.topics import ML_FIELDS_CHANGES_TOPIC, ML_FIELDS_RECALCULATE_TOPIC
from tables.features import OpportunityState, compute_features
from tables.state import Change, ChangeRouter, apply_changes, rebuild_state, table_key
from tables.timers import register_timers
from tables.writeback import Pending, write_ml_fields

__all__ = [
    "AGENT_NAMES",
    "TABLE_NAME",
    "MlFields",
    "MlRouting",
    "StoreMlFields",
    "TableDeps",
    "register",
]

logger = logging.getLogger(__name__)

TABLE_NAME: Final = "ml_fields"
#: The names of the agents this module defines.
AGENT_NAMES: Final = ("ml_route", "ml_fields")
_WRITEBACK_BATCH: Final = 200


@dataclass(frozen=True, slots=True)
class TableDeps:
    """What the ML-field table and its agents are given by the app."""

    settings: Settings
    topics: Topics
    writer: StreamWriter
    store: ShardStore
    tenants: TenantDirectory


class StoreMlFields:
    """ML fields computed from the store alone: where no worker table is at hand."""

    table_name: str | None = None

    def __init__(self, store: ShardStore, tenants: TenantDirectory) -> None:
        self._store = store
        self._tenants = tenants

    def route_key(self, tenant_id: str, opportunity_id: str) -> bytes:
        """The table key of an opportunity (unused without a table)."""
        return table_key(tenant_id, opportunity_id).encode()

    async def fields(
        self, tenant_id: str, opportunity_id: str, now: datetime
    ) -> tuple[dict[str, Any], str] | None:
        """The fields at `now` and where they came from; None without such an opportunity."""
        state = await rebuild_state(self._store, self._tenants, tenant_id, opportunity_id)
        if state is None:
            return None
        return compute_features(state, now, self._tenants.of(tenant_id).zone), "store"


class MlRouting:
    """Sends shard and link events on as snapshots to `ml_fields.changes`: what a worker
    runs where `link_activities` or `ml_route` run, with or without the table."""

    def __init__(self, app: faust.App, deps: TableDeps) -> None:
        self.deps = deps
        self.changes_topic = app.topic(
            ML_FIELDS_CHANGES_TOPIC,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=deps.settings.TOPIC_PARTITIONS,
        )

    async def route(self, events: Sequence[ShardEvent | LinkEvent]) -> None:
        """Turn shard and link events into snapshots on `ml_fields.changes` (retried)."""
        deps = self.deps
        router = ChangeRouter(deps.store, deps.tenants)
        changes = await retry_store(
            lambda: router.route(events),
            attempts=deps.settings.AGENT_RETRIES,
            max_delay=deps.settings.AGENT_RETRY_MAX_DELAY,
        )
        await deps.writer.send(
            self.changes_topic, ((change.key.encode(), change.to_json()) for change in changes)
        )


class MlFields:
    """The table and what reads it: the agents, the write-back, the API."""

    table_name: str | None = TABLE_NAME

    def __init__(self, app: faust.App, deps: TableDeps) -> None:
        self.app = app
        self.deps = deps
        settings = deps.settings
        self.table = app.Table(
            TABLE_NAME,
            default=None,
            # bytes keys are sent as they are ("raw"): the same bytes, so the same
            # partition, as the source topics' keys (what routing and `owns` rely on)
            key_type=bytes,
            partitions=settings.TOPIC_PARTITIONS,
            help="per opportunity: its facts and its linked activities' facts",
        )
        self.pending = Pending(settings.ML_WRITEBACK_DELAY)

    # --- reading ---------------------------------------------------------------------------

    def owns(self, key: str) -> bool:
        """True when this worker holds `key`'s partition as active."""
        partitions = list(range(self.deps.settings.TOPIC_PARTITIONS))
        partition = partition_of(key.encode(), partitions)
        return TP(ML_FIELDS_CHANGES_TOPIC, partition) in self.app.assignor.assigned_actives()

    async def state(self, tenant_id: str, opportunity_id: str) -> OpportunityState | None:
        """The opportunity's state from the table; from the store when the table has none."""
        value = self.table.get(table_key(tenant_id, opportunity_id).encode())
        if value is not None:
            return OpportunityState.from_value(value)
        deps = self.deps
        return await rebuild_state(deps.store, deps.tenants, tenant_id, opportunity_id)

    def features(self, tenant_id: str, state: OpportunityState, now: datetime) -> dict[str, Any]:
        """The fields at `now`, days counted in the tenant's time zone."""
        return compute_features(state, now, self.deps.tenants.of(tenant_id).zone)

    def route_key(self, tenant_id: str, opportunity_id: str) -> bytes:
        """The table key of an opportunity: requests about it go to its partition's owner."""
        return table_key(tenant_id, opportunity_id).encode()

    async def fields(
        self, tenant_id: str, opportunity_id: str, now: datetime
    ) -> tuple[dict[str, Any], str] | None:
        """The fields at `now` from this worker's table (the store when it has none)."""
        state = await self.state(tenant_id, opportunity_id)
        if state is None:
            return None
        return self.features(tenant_id, state, now), "table"

    # --- writing back ------------------------------------------------------------------------

    async def write_back(self, limit: int = _WRITEBACK_BATCH) -> int:
        """Write the due opportunities' fields to the store; how many were written."""
        deps = self.deps
        written = []
        for key in self.pending.take_due(limit):
            if not self.owns(key):
                continue  # another worker owns it now and sweeps it after its recovery
            tenant_id, _, opportunity_id = key.partition(":")
            value = self.table.get(key.encode())
            if value is None:
                continue
            now = datetime.now(UTC)
            fields = self.features(tenant_id, OpportunityState.from_value(value), now)
            try:
                shard = await write_ml_fields(
                    deps.store,
                    tenant_id,
                    opportunity_id,
                    fields,
                    now,
                    force=self.pending.forced(key),
                )
            except (StoreError, ConcurrencyError):
                logger.warning("ML fields of %s not written; retried later", key, exc_info=True)
                self.pending.mark([key])
                continue
            ML_WRITEBACKS.labels("written" if shard else "unchanged").inc()
            if shard is not None:
                written.append(WriteOutcome(WriteKind.UPDATED, shard, ("mlFields",)))
        await deps.writer.announce(written)
        return len(written)

    def sweep(self) -> None:
        """After a recovery: every opportunity this worker now owns is due for a check."""
        keys = [k.decode() for k in list(self.table.keys())]
        self.pending.mark([k for k in keys if self.owns(k)], now=True)

    # --- applying changes --------------------------------------------------------------------

    async def apply(self, events: list[EventT[Any]]) -> None:
        """One batch of `ml_fields.changes` and `ml_fields.recalculate` events: records,
        or chunks of them (`streams.batch_delivery`)."""
        deps = self.deps
        by_partition: dict[int, tuple[EventT[Any], list[IncomingEvent]]] = {}
        for event in events:
            _, records = by_partition.setdefault(event.message.partition, (event, []))
            records.extend(records_of(event))
        letters: list[DeadLetter] = []
        for partition_event, records in by_partition.values():
            changes: dict[str, list[Change]] = defaultdict(list)
            recalculate: dict[str, tuple[str, str]] = {}
            for e in records:
                try:
                    if e.topic == ML_FIELDS_RECALCULATE_TOPIC:
                        r = RecalculateRequest.model_validate_json(e.value)
                        key = table_key(r.tenant_id, r.opportunity_shard_id)
                        recalculate[key] = (r.tenant_id, r.opportunity_shard_id)
                    else:
                        change = Change.from_json(e.value)
                        changes[change.key].append(change)
                except (ValidationError, ValueError, KeyError, TypeError, RecursionError) as exc:
                    letters.append(e.letter(exc, "ml_fields"))
            # Table writes take their partition (changelog and RocksDB) from the current
            # event: the batch's events of this partition, so set it to one of them.
            token = _current_event.set(weakref.ref(partition_event))
            try:
                for key, key_changes in changes.items():
                    before = self.table.get(key.encode())
                    after = apply_changes(before, key_changes)
                    ML_CHANGES.inc(len(key_changes))
                    if after != before:
                        self.table[key.encode()] = after
                        self.pending.mark([key])
                for key, (tenant_id, opportunity_id) in recalculate.items():
                    if self.table.get(key.encode()) is None:
                        state = await rebuild_state(
                            deps.store, deps.tenants, tenant_id, opportunity_id
                        )
                        if state is None:
                            continue
                        self.table[key.encode()] = {
                            "opp": state.opportunity,
                            "oppv": 0,
                            "acts": dict(state.activities),
                            "ver": {},
                        }
                    self.pending.mark([key], now=True, force=True)
            finally:
                _current_event.reset(token)
        await deps.writer.dead_letter(letters)


def register(
    app: faust.App, deps: TableDeps, names: Collection[str] = AGENT_NAMES
) -> tuple[MlRouting, MlFields | None, list[str]]:
    """Define the agents among `names` (`ml_route`; `ml_fields` with the table and its
    timers) on `app`; the router that follows shard events after linking, the table's
    reader (None without `ml_fields`) and the agents' names."""
    settings = deps.settings
    routing = MlRouting(app, deps)
    defined: list[str] = []
    if "ml_route" in names:

        @app.agent(deps.topics.link_events_topic, name="ml_route")
        async def ml_route(stream: StreamT[bytes]) -> None:
            """Link events → per-opportunity snapshots on `ml_fields.changes` (shard events
            come through `link_activities`, the one agent on `shard.events`)."""
            async for batch in batches(
                stream, settings.AGENT_BATCH_SIZE, settings.AGENT_BATCH_WINDOW
            ):
                parsed, letters = parse_each(batch, LinkEvent, "ml_route")
                try:
                    await routing.route([event for _, event in parsed])
                except Exception as exc:  # never let one batch stop the agent
                    logger.exception("ML-field routing failed for a batch of %d", len(batch))
                    letters.extend(incoming.letter(exc, "ml_route") for incoming, _ in parsed)
                await deps.writer.dead_letter(letters)

        defined.append(str(ml_route.name))
    if "ml_fields" not in names:
        return routing, None, defined
    ml = MlFields(app, deps)
    inputs = app.topic(
        ML_FIELDS_CHANGES_TOPIC,
        ML_FIELDS_RECALCULATE_TOPIC,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    @app.agent(inputs, name="ml_fields")
    async def ml_fields(stream: StreamT[bytes]) -> None:
        """Snapshots and recalculation requests → the table, and write-backs due."""
        async for batch in event_batches(
            stream, settings.AGENT_BATCH_SIZE, settings.AGENT_BATCH_WINDOW
        ):
            try:
                await ml.apply(batch)
            except Exception as exc:  # never let one batch stop the agent
                logger.exception("ML-field table update failed for a batch of %d", len(batch))
                await deps.writer.dead_letter(
                    r.letter(exc, "ml_fields") for e in batch for r in records_of(e)
                )

    @app.timer(settings.ML_WRITEBACK_TICK)  # type: ignore[untyped-decorator]
    async def ml_fields_write_back() -> None:
        try:
            await ml.write_back()
        except Exception:  # a timer that raises stops for good
            logger.exception("ML-field write-back failed; retried at the next tick")

    @ml.table.on_recover
    async def ml_fields_recovered() -> None:
        ml.sweep()

    register_timers(app, settings, deps.store, deps.tenants, deps.writer)
    defined.append(str(ml_fields.name))
    return routing, ml, defined
