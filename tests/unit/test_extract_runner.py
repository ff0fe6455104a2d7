"""The child-process runner: same results, a hung file killed at its deadline, crashes contained."""

from __future__ import annotations

import asyncio
import functools
import signal
import time
from pathlib import Path

import pytest

from documents.extract import ExtractionLimits, extract
from documents.ocr import OcrUnavailableError, TesseractOcr
from documents.runner import ExtractionRunner, run_extraction
from tests.fixtures import documents as docs

LIMITS = ExtractionLimits()


async def test_child_extracts_what_extract_does_in_process(tmp_path: Path) -> None:
    path = docs.make_docx(tmp_path)

    extraction = await run_extraction(
        path,
        content_type=None,
        file_name="plan.docx",
        limits=LIMITS,
        ocr_factory=None,
        timeout=30,
    )

    expected = extract(path, file_name="plan.docx")
    assert (extraction.status, extraction.text, extraction.metadata) == (
        expected.status,
        expected.text,
        expected.metadata,
    )
    assert extraction.peak_rss_kb is not None and extraction.peak_rss_kb > 0


async def test_ocr_engine_is_built_in_the_child_from_its_factory(tmp_path: Path) -> None:
    extraction = await run_extraction(
        docs.make_png(tmp_path),
        content_type="image/png",
        file_name="page.png",
        limits=LIMITS,
        ocr_factory=TesseractOcr,
        timeout=60,
    )

    assert (extraction.status, extraction.ocr_pages) == ("ok", 1)
    assert docs.word_accuracy(docs.OCR_TEXT, extraction.text) >= 0.9


async def test_a_hung_file_is_killed_at_the_deadline_with_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    started = time.monotonic()

    extraction = await run_extraction(
        docs.make_png(tmp_path, dpi=100),
        content_type="image/png",
        file_name="page.png",
        limits=LIMITS,
        ocr_factory=functools.partial(docs.SleepingOcr, str(pid_file)),
        timeout=2,
    )

    elapsed = time.monotonic() - started
    print(f"hung extraction stopped after {elapsed:.2f} s (timeout 2 s)")
    assert (extraction.status, extraction.kind) == ("timeout", "image")
    assert extraction.reason == "extraction took longer than 2 s and was stopped"
    assert 2 <= elapsed < 4
    sleeper = int(pid_file.read_text())
    await asyncio.sleep(0.2)
    assert docs.pids_alive(sleeper) == []


async def test_a_crashing_parser_is_a_corrupt_file_not_a_dead_worker(tmp_path: Path) -> None:
    extraction = await run_extraction(
        docs.make_png(tmp_path, dpi=100),
        content_type="image/png",
        file_name="page.png",
        limits=LIMITS,
        ocr_factory=functools.partial(docs.CrashingOcr, signal.SIGSEGV),
        timeout=30,
    )

    assert (extraction.status, extraction.kind) == ("corrupt", "image")
    assert extraction.reason == "the extraction process died (signal SIGSEGV)"


async def test_memory_past_the_limit_is_too_large(tmp_path: Path) -> None:
    extraction = await run_extraction(
        docs.make_png(tmp_path, dpi=100),
        content_type="image/png",
        file_name="page.png",
        limits=ExtractionLimits(max_memory_bytes=768 * 1024 * 1024),
        ocr_factory=functools.partial(docs.HungryOcr, 1024),
        timeout=30,
    )

    assert (extraction.status, extraction.reason) == (
        "too_large",
        "extraction ran out of its memory limit",
    )


async def test_unavailable_ocr_is_raised_in_the_parent(tmp_path: Path) -> None:
    with pytest.raises(OcrUnavailableError, match="503 five times"):
        await run_extraction(
            docs.make_png(tmp_path, dpi=100),
            content_type="image/png",
            file_name="page.png",
            limits=LIMITS,
            ocr_factory=docs.UnavailableOcr,
            timeout=30,
        )


async def test_a_missing_file_is_raised_in_the_parent(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await run_extraction(
            tmp_path / "gone.pdf",
            content_type=None,
            file_name=None,
            limits=LIMITS,
            ocr_factory=None,
            timeout=30,
        )


async def test_runner_bounds_how_many_children_run_at_once(tmp_path: Path) -> None:
    runner = ExtractionRunner(
        limits=LIMITS, ocr_factory=functools.partial(docs.SlowOcr, 1.0), timeout=30, concurrency=2
    )
    image = docs.make_png(tmp_path, dpi=100)
    await runner.warm_up()
    started = time.monotonic()

    results = await asyncio.gather(
        *(runner.run(image, content_type="image/png", file_name="p.png") for _ in range(4))
    )

    elapsed = time.monotonic() - started
    print(f"4 files of 1 s each, 2 at a time: {elapsed:.2f} s")
    assert [r.text for r in results] == ["slow but sure"] * 4
    assert 2 <= elapsed < 3.5


async def test_the_event_loop_keeps_running_during_a_long_file(tmp_path: Path) -> None:
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    beating = asyncio.create_task(heartbeat())
    await run_extraction(
        docs.make_png(tmp_path, dpi=100),
        content_type="image/png",
        file_name="page.png",
        limits=LIMITS,
        ocr_factory=functools.partial(docs.SlowOcr, 1.0),
        timeout=30,
    )
    beating.cancel()

    assert ticks >= 15


async def test_spawn_works_as_well_as_forkserver(tmp_path: Path) -> None:
    extraction = await run_extraction(
        docs.make_csv(tmp_path),
        content_type="text/csv",
        file_name="pipeline.csv",
        limits=LIMITS,
        ocr_factory=None,
        timeout=30,
        start_method="spawn",
    )

    assert (extraction.status, extraction.kind) == ("ok", "csv")


async def test_cancelling_the_caller_kills_the_child(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    task = asyncio.create_task(
        run_extraction(
            docs.make_png(tmp_path, dpi=100),
            content_type="image/png",
            file_name="page.png",
            limits=LIMITS,
            ocr_factory=functools.partial(docs.SleepingOcr, str(pid_file)),
            timeout=60,
        )
    )
    while not pid_file.exists():
        await asyncio.sleep(0.05)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await asyncio.sleep(0.2)
    assert docs.pids_alive(int(pid_file.read_text())) == []


async def test_warm_up_leaves_a_small_cost_per_file(tmp_path: Path) -> None:
    runner = ExtractionRunner(limits=LIMITS, ocr_factory=None, timeout=30)
    await runner.warm_up()
    path = docs.make_csv(tmp_path)

    started = time.perf_counter()
    for _ in range(10):
        extraction = await runner.run(path, content_type="text/csv", file_name="p.csv")
    per_file = (time.perf_counter() - started) / 10

    print(f"small CSV through a forkserver child: {per_file * 1000:.1f} ms a file")
    assert extraction.status == "ok"
    assert per_file < 0.5
