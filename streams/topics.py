"""Topic names and keys of CONTRACT §2."""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "DATA_TYPES",
    "DLQ_REPLAYS_TOPIC",
    "DLQ_TOPIC",
    "LINKING_REQUESTS_TOPIC",
    "LINK_EVENTS_TOPIC",
    "ML_FIELDS_CHANGES_TOPIC",
    "ML_FIELDS_RECALCULATE_TOPIC",
    "SHARD_EVENTS_TOPIC",
    "DataType",
    "all_topics",
    "event_key",
    "internal_topics",
    "raw_topic",
]

#: The data types of CONTRACT §1 (routing keys, raw topics, the envelope's `dataType`).
DataType = Literal["crm", "document", "email", "message", "meeting", "event"]
DATA_TYPES: Final[tuple[str, ...]] = get_args(DataType)
RAW_PREFIX: Final = "integration.raw."
DLQ_TOPIC: Final = "integration.dlq"
#: The project's own: one record per dead letter `dlq replay` sent back, keyed by the
#: dead letter's `<topic>:<partition>:<offset>`, so a second replay skips it.
DLQ_REPLAYS_TOPIC: Final = "integration.dlq.replays"
SHARD_EVENTS_TOPIC: Final = "shard.events"
LINK_EVENTS_TOPIC: Final = "link.events"
ML_FIELDS_RECALCULATE_TOPIC: Final = "ml_fields.recalculate"
#: The project's own repartition topic: ML-field snapshots keyed by opportunity.
ML_FIELDS_CHANGES_TOPIC: Final = "ml_fields.changes"
#: The project's own: requests to re-evaluate one activity's links, keyed like its shard
#: events, so every evaluation of an activity runs in the worker (and agent) that owns
#: its partition, one after another, never two at once on two workers.
LINKING_REQUESTS_TOPIC: Final = "linking.requests"


def raw_topic(data_type: str) -> str:
    """The topic (and RabbitMQ routing key) of one data type's raw events."""
    return f"{RAW_PREFIX}{data_type}"


def event_key(tenant_id: str, object_id: str) -> str:
    """`<tenantId>:<id>`: the key that keeps one entity's events in order."""
    return f"{tenant_id}:{object_id}"


def all_topics() -> list[str]:
    """Every topic the contract names."""
    return [
        *(raw_topic(t) for t in DATA_TYPES),
        DLQ_TOPIC,
        SHARD_EVENTS_TOPIC,
        LINK_EVENTS_TOPIC,
        ML_FIELDS_RECALCULATE_TOPIC,
    ]


def internal_topics() -> list[str]:
    """Topics of the processors' own, beside the contract's (Faust's are Faust's)."""
    return [ML_FIELDS_CHANGES_TOPIC, LINKING_REQUESTS_TOPIC]
