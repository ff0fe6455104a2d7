"""The consumer watchdog on made-up partition states: its stall logic (no broker, no Faust)
and what a check does with a stall (metrics, re-seek, exit)."""

from __future__ import annotations

from faust.types import TP
from prometheus_client import REGISTRY

from core.metrics import STALL_REPAIRS
from streams.watchdog import (
    ConsumerWatchdog,
    PartitionState,
    StallDetector,
    StalledPartitionError,
    partition_name,
)

P0 = TP("shard.events", 0)
P1 = TP("shard.events", 1)
TIMEOUT = 60.0


def state(
    committed: int | None = 10,
    high: int | None = 50,
    *,
    acked: int | None = None,
    waiting: int = 0,
    position: int | None = None,
) -> PartitionState:
    return PartitionState(
        highwater=high, committed=committed, acked=acked, delivered=49, waiting=waiting,
        position=position,
    )  # fmt: skip


def test_lag_is_the_high_watermark_minus_the_committed_offset() -> None:
    assert state(10, 50).lag == 40
    assert state(50, 50).lag == 0
    assert state(10, None).lag == 0  # nothing fetched yet: nothing known
    assert state(None, 50, position=20).lag == 30  # before the first commit
    assert state(None, 50).lag == 50


def test_a_partition_with_lag_and_no_commit_stalls_after_the_timeout() -> None:
    detector = StallDetector(TIMEOUT)
    assert not detector.update({P0: state(), P1: state(50, 50)}, now=0).stalled
    assert not detector.update({P0: state(), P1: state(50, 50)}, now=59).stalled
    verdict = detector.update({P0: state(), P1: state(50, 50)}, now=60)
    assert verdict.stalled == [P0]  # P1 has no lag
    assert detector.stalled == [P0]
    assert not detector.update({P0: state(), P1: state(50, 50)}, now=70).stalled  # reported once


def test_a_commit_restarts_the_clock() -> None:
    detector = StallDetector(TIMEOUT)
    detector.update({P0: state(10)}, now=0)
    detector.update({P0: state(20)}, now=40)
    assert not detector.update({P0: state(20)}, now=99).stalled
    assert detector.update({P0: state(20)}, now=100).stalled == [P0]


def test_records_the_commit_waits_for_mean_busy_not_stalled() -> None:
    # an agent working through one long batch: no commit, but it holds the next records
    detector = StallDetector(TIMEOUT)
    for now in (0, 30, 60, 120, 600):
        assert not detector.update({P0: state(waiting=125)}, now=now).stalled


def test_the_issue_11_hole_is_a_stall_while_the_rest_is_still_processed() -> None:
    # records 11..60 never delivered; an agent is busy with 500.., acknowledging as it goes:
    # none of what it holds is what the commit waits for
    detector = StallDetector(TIMEOUT)
    detector.update({P0: state(committed=11, high=840, acked=61, waiting=0)}, now=0)
    detector.update({P0: state(committed=11, high=840, acked=499, waiting=0)}, now=30)
    verdict = detector.update({P0: state(committed=11, high=840, acked=839)}, now=60)
    assert verdict.stalled == [P0]


def test_a_repaired_partition_that_moves_recovers() -> None:
    detector = StallDetector(TIMEOUT)
    detector.update({P0: state()}, now=0)
    assert detector.update({P0: state()}, now=60).stalled == [P0]
    detector.repaired(P0, now=60)
    verdict = detector.update({P0: state(committed=30)}, now=65)
    assert verdict.recovered == [P0]
    assert detector.stalled == []


def test_a_repaired_partition_that_still_does_not_move_is_unrepaired() -> None:
    detector = StallDetector(TIMEOUT)
    detector.update({P0: state()}, now=0)
    detector.update({P0: state()}, now=60)
    detector.repaired(P0, now=60)
    assert not detector.update({P0: state()}, now=119).unrepaired
    assert detector.update({P0: state()}, now=120).unrepaired == [P0]


def test_a_drained_or_revoked_partition_is_no_longer_stalled() -> None:
    detector = StallDetector(TIMEOUT)
    detector.update({P0: state(), P1: state()}, now=0)
    detector.update({P0: state(), P1: state()}, now=60)
    assert detector.stalled == [P0, P1]
    verdict = detector.update({P0: state(50, 50)}, now=61)  # P0 caught up, P1 revoked
    assert verdict.recovered == [P0]
    assert detector.stalled == []


def test_forget_starts_over() -> None:
    detector = StallDetector(TIMEOUT)
    detector.update({P0: state()}, now=0)
    detector.forget()  # a rebalance
    assert not detector.update({P0: state()}, now=60).stalled
    assert detector.update({P0: state()}, now=120).stalled == [P0]


def test_partition_names() -> None:
    assert partition_name(P1) == "shard.events[1]"


class FakeApp:
    """What `ConsumerWatchdog.check` uses of the app, beside what `read` returns."""

    def __init__(self) -> None:
        self.rebalancing = False
        self.in_recovery = False
        self.crashed: list[BaseException] = []

    async def crash(self, reason: BaseException) -> None:
        self.crashed.append(reason)


class Watchdog(ConsumerWatchdog):
    """Re-seeks by recording, not by touching a consumer."""

    reseeks: list[TP]

    async def _reseek(self, tp: TP, state: PartitionState) -> None:
        self.reseeks.append(tp)
        STALL_REPAIRS.labels("reseek").inc()
        self.detector.repaired(tp, self._clock())


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_the_watchdog_reports_repairs_and_then_exits() -> None:
    app = FakeApp()
    clock = [0.0]
    states = {P0: state(committed=11, high=840, acked=839), P1: state(50, 50)}
    watchdog = Watchdog(app, 60, clock=lambda: clock[0], read=lambda _: states)  # type: ignore[arg-type]
    watchdog.reseeks = []
    stalls = sample("integration_consumer_stalls_total", topic="shard.events", partition="0")
    reseeks = sample("integration_consumer_stall_repairs_total", action="reseek")
    exits = sample("integration_consumer_stall_repairs_total", action="exit")

    await watchdog.check()
    assert sample("integration_consumer_lag", topic="shard.events", partition="0") == 829
    assert sample("integration_consumer_lag", topic="shard.events", partition="1") == 0
    assert watchdog.stalled() == []

    clock[0] = 60
    await watchdog.check()  # stalled: reported, counted, re-read
    assert watchdog.stalled() == ["shard.events[0]"]
    assert watchdog.reseeks == [P0]
    assert sample("integration_consumer_stalls_total", topic="shard.events", partition="0") == (
        stalls + 1
    )
    assert sample("integration_consumer_stall_repairs_total", action="reseek") == reseeks + 1

    clock[0] = 120
    await watchdog.check()  # the re-read changed nothing: exit for the supervisor
    assert [type(e) for e in app.crashed] == [StalledPartitionError]
    assert sample("integration_consumer_stall_repairs_total", action="exit") == exits + 1

    app.rebalancing = True  # a rebalance: partitions move, the watch starts over
    await watchdog.check()
    assert watchdog.stalled() == []


async def test_a_repaired_partition_leaves_ready_when_it_moves() -> None:
    app = FakeApp()
    clock = [0.0]
    states = {P0: state()}
    watchdog = Watchdog(app, 10, clock=lambda: clock[0], read=lambda _: states)  # type: ignore[arg-type]
    watchdog.reseeks = []
    await watchdog.check()
    clock[0] = 10
    await watchdog.check()
    assert watchdog.stalled() == ["shard.events[0]"]
    states[P0] = state(committed=30)  # the re-read records are processed
    clock[0] = 12
    await watchdog.check()
    assert watchdog.stalled() == []
    assert not app.crashed
    states.clear()  # revoked: its lag series goes
    await watchdog.check()
    assert (
        REGISTRY.get_sample_value(
            "integration_consumer_lag", {"topic": "shard.events", "partition": "0"}
        )
        is None
    )
