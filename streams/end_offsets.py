"""End offsets a table recovery can trust, on a broker whose ListOffsets may be wrong.

Tansu 0.6.0 (the embedded broker) answers ListOffsets(latest) with the first offset of
a partition's last record batch + 1 when that batch holds more than one record;
Faust takes that answer as the recovery target of a changelog, stops early, and a
restarted worker's table silently misses its tail (PLATFORM-NOTES). The high-watermark
in a fetch response is right, so: seek each partition to (reported end - 1), fetch
once, and take the larger of the two. Kafka and Redpanda answer ListOffsets correctly;
the fetch then confirms the reported end at the cost of one small read per partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

import aiokafka
from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

__all__ = ["TrueEndConsumer", "TrueEndTransport", "fetch_high_watermarks"]

logger = logging.getLogger(__name__)

FETCH_TIMEOUT = 10.0


async def fetch_high_watermarks(
    bootstrap: str | list[str], reported: Mapping[TP, int], *, wait: float = FETCH_TIMEOUT
) -> dict[TP, int]:
    """`reported` corrected by the fetch high-watermark of each non-empty partition."""
    result = dict(reported)
    wanted = {tp: end for tp, end in reported.items() if end and end > 0}
    if not wanted:
        return result
    consumer = aiokafka.AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=64 * 1024,
    )
    await consumer.start()
    try:
        parts = {tp: TopicPartition(tp.topic, tp.partition) for tp in wanted}
        consumer.assign(list(parts.values()))
        for tp, end in wanted.items():
            consumer.seek(parts[tp], end - 1)
        deadline = time.monotonic() + wait
        missing = set(wanted)
        while missing and time.monotonic() < deadline:
            await consumer.getmany(*(parts[tp] for tp in missing), timeout_ms=500)
            for tp in list(missing):
                high = consumer.highwater(parts[tp])
                if high is not None:
                    if high != wanted[tp]:
                        logger.info(
                            "end offset of %s:%d: ListOffsets said %d, fetch says %d",
                            tp.topic, tp.partition, wanted[tp], high,
                        )  # fmt: skip
                    result[tp] = max(wanted[tp], high)
                    missing.discard(tp)
        if missing:
            message = f"no fetch high-watermark for {sorted(missing)} within {wait}s"
            raise TimeoutError(message)
    finally:
        await consumer.stop()
    return result


class TrueEndConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose `highwaters` (recovery targets) are fetch-checked."""

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        reported = await super().highwaters(*partitions)
        servers = [f"{u.host}:{u.port or 9092}" for u in self.app.conf.broker_consumer]
        for attempt in range(3):
            try:
                return await fetch_high_watermarks(servers, reported)
            except (TimeoutError, aiokafka.errors.KafkaError):
                logger.warning("fetching end offsets failed (attempt %d)", attempt + 1)
                await asyncio.sleep(1)
        return await fetch_high_watermarks(servers, reported)


class TrueEndTransport(faust_aiokafka.Transport):
    """The aiokafka transport with `TrueEndConsumer`."""

    Consumer = TrueEndConsumer
