"""Documents per second per type in one heavy worker's code path, and where the time goes.

    .venv/bin/python benchmarks/documents.py [--files 20] [--concurrency 2]

Each file goes the way the document agent takes it: spooled from the local blob store,
extracted (and OCRed) in a child process, turned into a Document draft. Printed per
type: files/s with `--concurrency` at once, and the share of the wall time spent inside
extraction itself (the child's own `Extraction.seconds`) against spooling, process
start-up and the draft.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from blobs.local import LocalBlobStore
from documents.extract import ExtractionLimits
from documents.ocr import TesseractOcr
from documents.runner import run_extraction
from normalisers.document import document_draft
from streams.models import BlobRef, RawEvent

OOXML = "application/vnd.openxmlformats-officedocument"


def file_types() -> dict[str, tuple[Any, str]]:
    # Imported here, not at the top: extraction children re-run this module, and the
    # worker's own main module is light once `processors.cli` is preloaded.
    from tests.fixtures import documents as docs

    return {
    "pdf (3 pages, text)": (docs.make_text_pdf, "application/pdf"),
    "pdf (scanned, OCR)": (docs.make_scanned_pdf, "application/pdf"),
    "docx": (docs.make_docx, f"{OOXML}.wordprocessingml.document"),
    "xlsx (2 sheets)": (docs.make_xlsx, f"{OOXML}.spreadsheetml.sheet"),
    "png (OCR)": (docs.make_png, "image/png"),
        "html": (docs.make_html, "text/html"),
    }  # fmt: skip


async def one(store: LocalBlobStore, ref: BlobRef, spool: Path, content_type: str) -> float:
    folder = Path(tempfile.mkdtemp(dir=spool))
    try:
        path = await store.spool(ref, max_bytes=100 << 20, folder=folder)
        extraction = await run_extraction(
            path, content_type=content_type, file_name=path.name, limits=ExtractionLimits(),
            ocr_factory=TesseractOcr, timeout=120,
        )  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    event = RawEvent.model_validate({
        "eventId": "e", "eventType": "integration.data.raw", "dataType": "document",
        "tenantId": "t", "integrationId": "i", "provider": "bench", "externalId": ref.path,
        "payload": {"fileName": path.name}, "blob": ref.to_wire(),
    })  # fmt: skip
    document_draft(event, extraction)
    return extraction.seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, spool = Path(tmp) / "blobs", Path(tmp) / "spool"
        spool.mkdir()
        store = LocalBlobStore(root)
        await store.start()
        slots = asyncio.Semaphore(args.concurrency)
        print(f"{'type':22} {'files/s':>8} {'in extraction':>14}  ({args.files} files, "
              f"{args.concurrency} at once)")  # fmt: skip
        for name, (make, content_type) in file_types().items():
            made = make(Path(tmp))
            target = root / "bench" / made.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(made, target)
            ref = BlobRef(container="bench", path=made.name)

            async def limited(ref: BlobRef = ref, content_type: str = content_type) -> float:
                async with slots:
                    return await one(store, ref, spool, content_type)

            await limited()  # warm the forkserver and caches
            started = time.perf_counter()
            inside = await asyncio.gather(*(limited() for _ in range(args.files)))
            wall = time.perf_counter() - started
            share = sum(inside) / (wall * args.concurrency)
            print(f"{name:22} {args.files / wall:8.1f} {share:13.0%}")
        await store.stop()


if __name__ == "__main__":
    asyncio.run(main())
