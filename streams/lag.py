"""What `status` prints: each topic's partitions and end offsets, each consumer group's lag.

End offsets are fetch-checked (the embedded broker's ListOffsets answer is wrong for a
partition whose last batch holds several records, PLATFORM-NOTES), and committed
offsets are asked for partition by partition (the embedded broker cannot answer an
OffsetFetch for "every partition" of a group).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from core.exceptions import BrokerUnavailableError
from streams.admin import bootstrap_servers
from streams.end_offsets import fetch_high_watermarks

__all__ = ["BrokerStatus", "GroupLag", "broker_status"]


@dataclass(frozen=True, slots=True)
class GroupLag:
    """One partition a group has committed on: its committed offset and lag."""

    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


@dataclass
class BrokerStatus:
    """Topics with their partitions' end offsets, and each group's committed positions."""

    ends: dict[str, dict[int, int]] = field(default_factory=dict)
    groups: dict[str, list[GroupLag]] = field(default_factory=dict)

    def group_lag(self, group: str) -> int:
        return sum(g.lag for g in self.groups.get(group, []))

    def topic_lag(self, group: str, topic: str) -> int:
        return sum(g.lag for g in self.groups.get(group, []) if g.topic == topic)


async def broker_status(
    broker_url: str, *, groups: Iterable[str] | None = None, internal: bool = False
) -> BrokerStatus:
    """The status of every topic (`internal`: also those named `__...`) and of `groups`
    (default: every consumer group the broker lists)."""
    bootstrap = bootstrap_servers(broker_url)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        await consumer.start()
        await admin.start()
        names = sorted(t for t in await consumer.topics() if internal or not t.startswith("__"))
        tps = [
            TopicPartition(t, p)
            for t in names
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        reported = await consumer.end_offsets(tps) if tps else {}
        ends = await fetch_high_watermarks(bootstrap, reported)
        status = BrokerStatus()
        for tp in tps:
            status.ends.setdefault(tp.topic, {})[tp.partition] = ends[tp]
        wanted = (
            list(groups)
            if groups is not None
            else [g for g, _ in await admin.list_consumer_groups()]
        )
        for group in sorted(set(wanted)):
            offsets = await admin.list_consumer_group_offsets(group, partitions=tps) if tps else {}
            status.groups[group] = [
                GroupLag(
                    group, tp.topic, tp.partition, meta.offset, status.ends[tp.topic][tp.partition]
                )
                for tp, meta in sorted(offsets.items())
                if meta.offset >= 0
            ]
    except (KafkaError, OSError) as e:
        message = f"broker {bootstrap} does not answer: {e!r}"
        raise BrokerUnavailableError(message) from e
    finally:
        await admin.close()
        await consumer.stop()
    return status
