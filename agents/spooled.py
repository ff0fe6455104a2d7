"""Heavy work on a blob: fetched into a temporary file, worked on, retried when transient."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from blobs.store import BlobStore
from core.exceptions import TransientError
from streams.models import BlobRef

__all__ = ["on_spooled_blob"]

T = TypeVar("T")


async def on_spooled_blob(
    blobs: BlobStore,
    ref: BlobRef,
    work: Callable[[Path], Awaitable[T]],
    *,
    max_bytes: int,
    spool_dir: Path,
    attempts: int,
) -> T:
    """`work(path)` on the blob spooled into a temporary file, deleted afterwards.

    Transient failures (storage down, an OCR service or a worker child that died) are
    retried with backoff, the fetch included; anything else propagates at once.
    """
    await asyncio.to_thread(spool_dir.mkdir, parents=True, exist_ok=True)
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(TransientError),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.5, max=10),
        reraise=True,
    ):
        with attempt, tempfile.TemporaryDirectory(dir=spool_dir) as folder:
            path = await blobs.spool(ref, max_bytes=max_bytes, folder=Path(folder))
            return await work(path)
    raise AssertionError("unreachable")  # pragma: no cover
