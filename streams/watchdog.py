"""Defence in depth for the worker's consumer: a progress watchdog (issue 11).

Every few seconds the watchdog reads, for each topic partition the worker's streams
consume, the fetch high-watermark (right on Tansu, whose ListOffsets is not), the
committed offset, the acknowledged offsets not yet committed, and the records streams
hold (taken by an agent, or queued for one). It sets
`integration_consumer_lag{topic, partition}` (high-watermark - committed offset).

A partition is *stalled* when it has lag and its committed offset has not moved for
`STALL_TIMEOUT` seconds while no stream holds a record the next commit waits for (one
before the first acknowledged offset) and no full stream buffer holds it back: nothing
in the worker will move it. Faust commits only up to the first offset never
acknowledged, so a hole of records never delivered (issue 11) freezes the committed
offset while the records after it are processed; a partition left paused or held back,
or a fetcher that stopped, look the same. A partition whose next records an agent is
still working on is busy, not stalled (Faust's `stream_processing_timeout` warnings
cover an agent that hangs on one).

A stall is logged with the consumer's state of the partition, counted in
`integration_consumer_stalls_total`, shown by `/ready` (503, the partition named) and
repaired: the partition is made fetchable again and re-read from its committed offset
(`integration_consumer_stall_repairs_total{action="reseek"}`); records already
processed come again (at-least-once; every effect is idempotent). If its committed
offset still has not moved `STALL_TIMEOUT` seconds later, the worker exits non-zero
(`action="exit"`) so its supervisor restarts it, and a restart re-reads everything
uncommitted. Re-seeking first was chosen by measurement (docs/decisions.md, issue 11).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from faust.types import TP, AppT

from core.exceptions import ProcessorsError
from core.metrics import CONSUMER_LAG, STALL_REPAIRS, STALLS

__all__ = [
    "ConsumerWatchdog",
    "PartitionState",
    "StallDetector",
    "StalledPartitionError",
    "partition_name",
]

logger = logging.getLogger(__name__)


class StalledPartitionError(ProcessorsError):
    """A partition made no progress even after it was re-read: the worker must restart."""


def partition_name(tp: TP) -> str:
    """`topic[partition]`, as logs, `/ready` and the docs name a partition."""
    return f"{tp.topic}[{tp.partition}]"


@dataclass(frozen=True, slots=True)
class PartitionState:
    """What the consumer knows of one partition at one moment."""

    highwater: int | None  # fetch high-watermark: the offset the next record will get
    committed: int | None  # the group's committed offset (the next record to process)
    acked: int | None = None  # highest offset the streams acknowledged, not yet committed
    delivered: int | None = None  # offset last handed to a stream
    waiting: int = 0  # records held by streams that the next commit waits for
    position: int | None = None  # aiokafka's fetch position (lag before the first commit)

    @property
    def lag(self) -> int:
        """Records between the committed offset (before any commit: the fetch position)
        and the high-watermark."""
        if self.highwater is None:
            return 0
        start = self.committed if self.committed is not None else self.position
        return max(0, self.highwater - (start or 0))


@dataclass(slots=True)
class _Track:
    committed: int | None
    since: float  # when the committed offset last moved (or there was no lag, or work)
    stalled_at: float | None = None
    repaired_at: float | None = None


@dataclass(slots=True)
class Verdict:
    """What one look at the partitions found."""

    stalled: list[TP] = field(default_factory=list)  # newly stalled: report and re-seek
    unrepaired: list[TP] = field(default_factory=list)  # no progress even after a re-seek
    recovered: list[TP] = field(default_factory=list)  # moving again


class StallDetector:
    """Which partitions stalled, recovered, or stayed stalled after a repair (no I/O)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._tracks: dict[TP, _Track] = {}

    def update(self, states: Mapping[TP, PartitionState], now: float) -> Verdict:
        """Take a new look at `states` (every assigned partition) at time `now`."""
        verdict = Verdict()
        for tp in list(self._tracks):
            if tp not in states:  # revoked
                del self._tracks[tp]
        for tp, state in states.items():
            track = self._tracks.get(tp)
            if track is None:
                self._tracks[tp] = _Track(state.committed, now)
                continue
            if state.committed != track.committed or state.lag == 0 or state.waiting > 0:
                if track.stalled_at is not None:
                    verdict.recovered.append(tp)
                self._tracks[tp] = _Track(state.committed, now)
                continue
            if track.stalled_at is None:
                if now - track.since >= self.timeout:
                    track.stalled_at = now
                    verdict.stalled.append(tp)
            elif track.repaired_at is not None and now - track.repaired_at >= self.timeout:
                verdict.unrepaired.append(tp)
        return verdict

    def repaired(self, tp: TP, now: float) -> None:
        """`tp` was re-read at `now`: it has `timeout` seconds to move again."""
        track = self._tracks.get(tp)
        if track is not None:
            track.repaired_at = now

    def forget(self) -> None:
        """Start over (a rebalance moves and re-positions every partition)."""
        self._tracks.clear()

    @property
    def stalled(self) -> list[TP]:
        """Partitions found stalled and not moving since."""
        return sorted(tp for tp, t in self._tracks.items() if t.stalled_at is not None)


class ConsumerWatchdog:
    """The watchdog of one worker's Faust consumer; `check()` is its periodic step."""

    def __init__(
        self,
        app: AppT,
        timeout: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        read: Callable[[AppT], dict[TP, PartitionState] | None] | None = None,
    ) -> None:
        self.app = app
        self.detector = StallDetector(timeout)
        self._clock = clock
        self._read = read or read_states
        self._lag_labels: set[tuple[str, str]] = set()

    @property
    def interval(self) -> float:
        """How often `check` should run."""
        return max(0.5, min(5.0, self.detector.timeout / 4))

    def stalled(self) -> list[str]:
        """Names of the partitions stalled right now (for `/ready`)."""
        return [partition_name(tp) for tp in self.detector.stalled]

    async def check(self) -> None:
        """Look at every partition: lag metrics, stalls, repairs."""
        app = self.app
        if app.rebalancing or app.in_recovery:
            self.detector.forget()  # partitions move and are re-positioned: start over
            return
        states = self._read(app)
        if states is None:
            return
        self._publish_lag(states)
        verdict = self.detector.update(states, self._clock())
        for tp in verdict.recovered:
            logger.warning("partition %s is moving again", partition_name(tp))
        for tp in verdict.stalled:
            STALLS.labels(tp.topic, str(tp.partition)).inc()
            logger.error(
                "partition %s stalled: lag %d and no progress for %.0f s; %s; re-reading it "
                "from its committed offset",
                partition_name(tp), states[tp].lag, self.detector.timeout,
                describe(app, tp, states[tp]),
            )  # fmt: skip
            await self._reseek(tp, states[tp])
        if verdict.unrepaired:
            names = ", ".join(partition_name(tp) for tp in verdict.unrepaired)
            STALL_REPAIRS.labels("exit").inc()
            logger.critical("no progress on %s even after re-reading: exiting", names)
            await app.crash(StalledPartitionError(f"stalled partitions: {names}"))

    async def _reseek(self, tp: TP, state: PartitionState) -> None:
        consumer: Any = self.app.consumer
        consumer._buffered_partitions.discard(tp)
        if tp not in consumer._active_partitions or tp in consumer._paused_partitions:
            consumer.resume_partitions({tp})
        if state.committed:
            await consumer.seek_wait({tp: state.committed})
        else:  # nothing committed yet: from the start (consumer_auto_offset_reset earliest)
            await consumer._thread.seek_to_beginning(TopicPartition(tp.topic, tp.partition))
            consumer._read_offset.pop(tp, None)
        STALL_REPAIRS.labels("reseek").inc()
        self.detector.repaired(tp, self._clock())

    def _publish_lag(self, states: Mapping[TP, PartitionState]) -> None:
        labels = {(tp.topic, str(tp.partition)) for tp in states}
        for gone in self._lag_labels - labels:
            CONSUMER_LAG.remove(*gone)
        for tp, state in states.items():
            CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(state.lag)
        self._lag_labels = labels


def read_states(app: AppT) -> dict[TP, PartitionState] | None:
    """The state of every partition the worker's streams consume; None before the
    consumer runs. Reads Faust's and aiokafka's bookkeeping (faust-streaming 0.15)."""
    consumer: Any = getattr(app, "_consumer", None)
    if consumer is None:
        return None
    try:
        assigned = consumer.assignment()
        client = consumer._thread._ensure_consumer()
    except Exception:  # noqa: BLE001  # not started yet
        return None
    changelogs = app.tables.changelog_topics
    tps = [
        t for t in assigned if t.topic not in changelogs and app.topics.acks_enabled_for(t.topic)
    ]
    held, queued = _held(app, consumer)
    subscription = client._fetcher._subscriptions.subscription
    states: dict[TP, PartitionState] = {}
    for tp in tps:
        acked = consumer._acked.get(tp) or []
        # the next commit waits for the records before the first acknowledged one
        first_acked = min(acked) if acked else None
        waiting = sum(1 for o in held[tp] if first_acked is None or o < first_acked)
        if tp in consumer._buffered_partitions:  # held back until a stream buffer drains
            waiting += queued[tp.topic]
        position = None
        if subscription is not None and subscription.assignment is not None:
            tp_state = subscription.assignment.state_value(TopicPartition(tp.topic, tp.partition))
            if tp_state is not None and tp_state.has_valid_position:
                position = tp_state.position
        states[tp] = PartitionState(
            highwater=client.highwater(TopicPartition(tp.topic, tp.partition)),
            committed=consumer._committed_offset.get(tp),
            acked=max(acked) if acked else None,
            delivered=consumer._read_offset.get(tp),
            waiting=waiting,
            position=position,
        )
    return states


def _held(app: AppT, consumer: Any) -> tuple[dict[TP, list[int]], Counter[str]]:
    """Offsets per partition that streams hold (taken and not acknowledged, or queued),
    and records queued per topic."""
    held: dict[TP, list[int]] = defaultdict(list)
    for message in list(consumer._unacked_messages):
        if not message.acked:
            held[message.tp].append(message.offset)
    queued: Counter[str] = Counter()
    for channel in list(getattr(app.topics, "_topics", ())):
        queue = getattr(channel, "_queue", None)  # created when a stream iterates it
        if queue is None or not queue.qsize():
            continue
        for event in list(queue._queue):
            message = getattr(event, "message", None)
            if message is not None:
                held[message.tp].append(message.offset)
        for topic in getattr(channel, "topics", ()):
            queued[topic] += queue.qsize()
    return held, queued


def describe(app: AppT, tp: TP, state: PartitionState) -> str:
    """The consumer's state of one partition, for the log."""
    text = (
        f"high-watermark {state.highwater}, committed {state.committed}, acked up to "
        f"{state.acked}, delivered up to {state.delivered}, fetch position {state.position}, "
        f"records the commit waits for {state.waiting}"
    )
    consumer: Any = getattr(app, "_consumer", None)
    if consumer is None:
        return text
    flags = [
        name
        for name, where in (
            ("active", consumer._active_partitions or ()),
            ("paused", consumer._paused_partitions),
            ("buffered", consumer._buffered_partitions),
        )
        if tp in where
    ]
    flow = "on" if consumer.flow_active else "off"
    return f"{text}, flow {flow}, partition {'/'.join(flags) or 'inactive'}"
