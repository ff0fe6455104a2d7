"""The app's consumer: recovery end offsets it can trust, and stream positions after a rebalance.

End offsets. Tansu 0.6.0 (the embedded broker) answers ListOffsets(latest) with the
first offset of a partition's last record batch + 1 when that batch holds more than
one record; Faust takes that answer as the recovery target of a changelog, stops early,
and a restarted worker's table silently misses its tail (PLATFORM-NOTES). The
high-watermark in a fetch response is right, so: seek each partition to (reported end
- 1), fetch once, and take the larger of the two. Kafka and Redpanda answer ListOffsets
correctly; the fetch then confirms the reported end at the cost of one small read per
partition.

Stream positions after a rebalance (issue 11, a Faust bug on any broker). When table
recovery completes, Faust resumes the stream partitions, seeks them to their committed
offsets, then clears every stream buffer (`flow_control.resume()`) and only then
resumes the flow; but table recovery had already resumed the flow, so the fetcher
delivers stream records while the seek runs (one OffsetFetch per partition: 0.3-0.9 s
on Tansu). The clear throws those records away. They are never read again when the
partition has no committed offset (aiokafka's `seek_to_committed` leaves such a
partition where it is) or when the delivery loop, still working through a batch
fetched before the seek, moves Faust's read offset past them again (the re-fetched
copies are then dropped as duplicates). The partition goes on after the hole; Faust
commits only up to the first offset never acknowledged, so its committed offset stops
for good and the worker idles with lag until a restart re-reads from there. The fix:
stop the flow before stream partitions are resumed during a rebalance (recovery resumes
it after the clear), and position partitions without a committed offset at the reset
position (`earliest`) instead of leaving them where the discarded deliveries left them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping

import aiokafka
from aiokafka import TopicPartition
from faust.transport.consumer import ensure_TP, ensure_TPset
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

__all__ = ["ShortPollThread", "TrueEndConsumer", "TrueEndTransport", "fetch_high_watermarks"]

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


class ShortPollThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread with the fetch wait from `fetch_max_wait_ms` on the app
    (`CONSUMER_FETCH_MAX_WAIT`) instead of Faust's fixed 1.5 s.

    Tansu answers a fetch only when the wait is over, whatever arrives meanwhile (measured:
    0.55-1.3 s for a record produced onto an idle topic at 1.5 s, 2 ms at 0.1 s), so every
    hop through a topic (a shard event, a linking request, a thread follow-up) cost a
    second. Redpanda and Kafka answer as soon as a record arrives; a short wait costs them
    only more empty fetches.
    """

    def _create_worker_consumer(
        self, transport: faust_aiokafka.Transport
    ) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        wait = getattr(self.app, "fetch_max_wait_ms", None)
        if wait is not None:
            consumer._fetch_max_wait_ms = int(wait)  # read by start(), when the fetcher is made
        return consumer


class TrueEndConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose `highwaters` (recovery targets) are fetch-checked
    and whose stream partitions restart exactly at their committed offsets after a
    rebalance (see the module docstring)."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ShortPollThread(self, loop=self.loop, beacon=self.beacon)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        # A partition held back because a stream buffer was full is not held back after a
        # rebalance: the buffers were cleared. Faust keeps the mark, and a marked partition's
        # records are delivered even while recovery has it paused.
        self._buffered_partitions.clear()
        await super().on_partitions_assigned(assigned, generation_id)

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        tpset = ensure_TPset(tps)
        if self.flow_active and self.app.rebalancing and self._stream_tps(tpset):
            # Recovery seeks these next, clears the stream buffers and then resumes the
            # flow itself: nothing may be delivered in between, it would be thrown away.
            logger.info("stopping the flow until stream partitions are positioned")
            self.stop_flow()
        super().resume_partitions(tpset)

    async def perform_seek(self) -> None:
        """Seek every partition to its committed offset; one without a committed offset to
        the reset position (`earliest`), where aiokafka would leave it where it is."""
        committed = await self.seek_to_committed()
        uncommitted = [
            TopicPartition(tp.topic, tp.partition)
            for tp, offset in committed.items()
            if (offset is None or offset <= 0) and self._stream_tps({tp})
        ]
        if uncommitted and self.app.conf.consumer_auto_offset_reset == "earliest":
            try:
                await self._thread.seek_to_beginning(*uncommitted)
            except aiokafka.errors.IllegalStateError:  # revoked meanwhile: a rebalance is on
                logger.info("not seeking revoked partitions to their beginning")
        self._read_offset.update(
            {ensure_TP(tp): offset if offset is not None and offset >= 0 else None
             for tp, offset in committed.items()}
        )  # fmt: skip
        self._committed_offset.update(
            {ensure_TP(tp): offset if offset else None for tp, offset in committed.items()
             if offset is not None}
        )  # fmt: skip

    def _stream_tps(self, tps: Iterable[TP]) -> list[TP]:
        """The partitions of `tps` that streams read (not table changelogs)."""
        return [tp for tp in tps if not self._is_changelog_tp(tp)]

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
