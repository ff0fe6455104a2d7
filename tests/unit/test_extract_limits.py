"""A 200-page PDF and a 50,000-row XLSX go through within the default limits, memory bounded.

Each runs in a spawned child, a direct child of this process, so RUSAGE_CHILDREN sees it;
but Linux keeps `ru_maxrss` across exec, so that figure is at least this test process's
size when it spawned. The child's own peak (`VmHWM`, `Extraction.peak_rss_kb`) is the
one asserted. The figures are printed (`pytest -s`).
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from documents.extract import ExtractionLimits
from documents.runner import run_extraction
from tests.fixtures import documents as docs

LIMITS = ExtractionLimits()
#: resident memory a child may peak at for these files (measured: 55-115 MB)
MAX_PEAK_RSS_MB = 300


@pytest.fixture(scope="module")
def big_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("big")
    started = time.perf_counter()
    files = {"pdf": docs.make_big_pdf(folder), "xlsx": docs.make_big_xlsx(folder)}
    print(f"\nbuilt 200-page PDF and 50,000-row XLSX in {time.perf_counter() - started:.1f} s")
    return files


def children_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


async def test_200_page_pdf_within_limits(big_files: dict[str, Path]) -> None:
    started = time.perf_counter()

    extraction = await run_extraction(
        big_files["pdf"],
        content_type="application/pdf",
        file_name="big.pdf",
        limits=LIMITS,
        ocr_factory=None,
        timeout=120,
        start_method="spawn",
    )

    wall = time.perf_counter() - started
    peak_mb = (extraction.peak_rss_kb or 0) / 1024
    print(
        f"200-page PDF: {len(extraction.text):,} chars, extract {extraction.seconds:.2f} s, "
        f"with child start {wall:.2f} s, child peak RSS {peak_mb:.0f} MB "
        f"(RUSAGE_CHILDREN max so far {children_peak_mb():.0f} MB)"
    )
    assert (extraction.status, extraction.truncated) == ("ok", False), extraction.reason
    assert extraction.metadata["pageCount"] == 200
    assert "--- page 200 ---\nPage 200 marker." in extraction.text
    assert len(extraction.text) > 1_000_000
    assert peak_mb < MAX_PEAK_RSS_MB


async def test_50000_row_xlsx_within_limits(big_files: dict[str, Path]) -> None:
    started = time.perf_counter()

    extraction = await run_extraction(
        big_files["xlsx"],
        content_type=None,
        file_name="big.xlsx",
        limits=LIMITS,
        ocr_factory=None,
        timeout=120,
        start_method="spawn",
    )

    wall = time.perf_counter() - started
    peak_mb = (extraction.peak_rss_kb or 0) / 1024
    print(
        f"50,000-row XLSX: {len(extraction.text):,} chars, extract {extraction.seconds:.2f} s, "
        f"with child start {wall:.2f} s, child peak RSS {peak_mb:.0f} MB "
        f"(RUSAGE_CHILDREN max so far {children_peak_mb():.0f} MB)"
    )
    assert (extraction.status, extraction.truncated) == ("ok", False), extraction.reason
    assert extraction.metadata["rowCount"] == 50_001
    assert extraction.text.endswith("\n50000\tP0\t45\t2\tAPAC\t0\tok\t6\t2\tY")
    assert peak_mb < MAX_PEAK_RSS_MB


async def test_over_the_page_and_character_limits_both_are_cut(
    big_files: dict[str, Path],
) -> None:
    extraction = await run_extraction(
        big_files["pdf"],
        content_type="application/pdf",
        file_name="big.pdf",
        limits=ExtractionLimits(max_pages=150, max_chars=500_000),
        ocr_factory=None,
        timeout=120,
    )

    assert (extraction.status, extraction.truncated) == ("ok", True)
    assert len(extraction.text) <= 500_000
    assert extraction.reason == "first 150 of 200 pages read; text cut at 500,000 characters"
