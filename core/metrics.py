"""Prometheus metrics of every process (one registry per process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "AGENT_BATCH_SECONDS",
    "BRIDGE_BATCH_SECONDS",
    "BRIDGE_MESSAGES",
    "CONSUMER_LAG",
    "CONSUMER_PARTITIONS",
    "DEAD_LETTERS",
    "EVENTS_PROCESSED",
    "LINK_EVALUATIONS",
    "ML_CHANGES",
    "ML_RECALCULATIONS",
    "ML_WRITEBACKS",
    "RECONNECTS",
    "SHARD_WRITES",
    "STALLS",
    "STALL_REPAIRS",
    "observe_consumer",
]

EVENTS_PROCESSED = Counter(
    "integration_events_processed_total",
    "Raw events an agent finished, by agent and outcome.",
    ["agent", "outcome"],
)
SHARD_WRITES = Counter(
    "integration_shard_writes_total",
    "Shard upserts, by shard type and what they did (created, updated, unchanged, stale).",
    ["shard_type", "kind"],
)
DEAD_LETTERS = Counter(
    "integration_dead_letters_total",
    "Events sent to integration.dlq, by stage and error type.",
    ["stage", "error_type"],
)
AGENT_BATCH_SECONDS = Histogram(
    "integration_agent_batch_seconds",
    "Time an agent spent on one batch of events.",
    ["agent"],
)
BRIDGE_MESSAGES = Counter(
    "integration_bridge_messages_total",
    "RabbitMQ messages the bridge moved, by data type and outcome (forwarded, dead_lettered).",
    ["data_type", "outcome"],
)
BRIDGE_BATCH_SECONDS = Histogram(
    "integration_bridge_batch_seconds",
    "Time from a batch's first delivery to its acknowledgement.",
)
ML_CHANGES = Counter(
    "integration_ml_field_changes_total",
    "Snapshots (activity or opportunity) applied to the ML-field table.",
)
ML_WRITEBACKS = Counter(
    "integration_ml_field_writebacks_total",
    "ML-field write-backs to opportunity shards, by outcome (written, unchanged).",
    ["outcome"],
)
ML_RECALCULATIONS = Counter(
    "integration_ml_field_recalculations_total",
    "Recalculation requests queued, by origin (schedule, api, command).",
    ["origin"],
)
CONSUMER_PARTITIONS = Gauge(
    "integration_consumer_partitions",
    "The worker's topic partitions by flow state: assigned, fetching (active), held back "
    "because a stream's buffer is full (buffered), paused (rebalance, recovery).",
    ["state"],
)

CONSUMER_LAG = Gauge(
    "integration_consumer_lag",
    "Records between the worker's position and the fetch high-watermark, per assigned "
    "topic partition.",
    ["topic", "partition"],
)
STALLS = Counter(
    "integration_consumer_stalls_total",
    "Assigned partitions found with lag and no progress for STALL_TIMEOUT seconds.",
    ["topic", "partition"],
)
STALL_REPAIRS = Counter(
    "integration_consumer_stall_repairs_total",
    "Times the watchdog acted on a stalled partition, by action.",
    ["action"],
)
LINK_EVALUATIONS = Counter(
    "integration_link_evaluations_total",
    "Linking evaluations of an activity, by what asked: the activity's own shard event "
    "(activity), a CRM change (crm), an earlier message of its thread (thread), a person "
    "or a replay (other).",
    ["trigger"],
)
RECONNECTS = Counter(
    "integration_reconnects_total",
    "Connections re-established after a loss, by process and peer (rabbitmq, kafka).",
    ["component", "peer"],
)


def observe_consumer(app: Any) -> None:
    """Set `CONSUMER_PARTITIONS` from the Faust consumer (read at each scrape)."""
    consumer = getattr(app, "_consumer", None)
    if consumer is None:
        return
    try:
        assigned = consumer.assignment()
    except Exception:  # noqa: BLE001  # not started yet: nothing to report
        return
    CONSUMER_PARTITIONS.labels("assigned").set(len(assigned))
    CONSUMER_PARTITIONS.labels("active").set(len(consumer._active_partitions or ()))
    CONSUMER_PARTITIONS.labels("buffered").set(len(consumer._buffered_partitions))
    CONSUMER_PARTITIONS.labels("paused").set(len(consumer._paused_partitions))
