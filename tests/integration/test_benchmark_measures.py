"""What the benchmarks read besides rates: CPU time per process."""

from __future__ import annotations

import os
import time
from pathlib import Path

from benchmarks.stall_repro import process_cpu_seconds
from processors.embedded_broker import EmbeddedBroker


def test_cpu_seconds_count_the_work_a_process_does() -> None:
    before = process_cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    assert process_cpu_seconds(os.getpid()) - before >= 0.15
    assert process_cpu_seconds(None) == 0.0


def test_the_embedded_brokers_pid_is_its_running_process() -> None:
    broker = EmbeddedBroker()
    assert broker.pid is None
    with broker:
        pid = broker.pid
        assert pid is not None
        assert b"tansu" in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert process_cpu_seconds(pid) >= 0.0
    assert broker.pid is None
    assert process_cpu_seconds(pid) == 0.0  # gone: nothing to read
