"""The local blob store: a blob `{container, path}` is the file `root/<container>/<path>`.

The embedded default (CONTRACT §5 `BLOB_DIR`). Every path is resolved, symlinks
included, and must stay inside the root; file I/O runs in threads, off the event loop.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from blobs.errors import BlobNotFoundError, BlobRefusedError, BlobUnavailableError
from blobs.store import (
    DEFAULT_CHUNK_SIZE,
    check_limits,
    check_ref,
    collect,
    describe,
    locations_named,
    spool_into,
    too_large,
)
from streams.models import BlobRef

__all__ = ["LocalBlobStore"]

# O_NONBLOCK: opening a FIFO planted in the folder must not hang the worker.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


class LocalBlobStore:
    """A `BlobStore` on a folder of the local file system."""

    def __init__(self, root: Path) -> None:
        self._configured_root = root
        self._root: Path | None = None

    async def __aenter__(self) -> LocalBlobStore:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def root(self) -> Path:
        """The resolved root folder (after `start()`)."""
        return self._started()

    async def start(self) -> None:
        if self._root is not None:
            return
        self._root = await asyncio.to_thread(self._prepare_root)

    async def stop(self) -> None:
        self._root = None

    async def ping(self) -> None:
        root = self._started()
        if not await asyncio.to_thread(_is_readable_folder, root):
            message = f"blob folder {root} is not a readable folder"
            raise BlobUnavailableError(message)

    async def read(self, ref: BlobRef, *, max_bytes: int) -> bytes:
        return await collect(self.chunks(ref, max_bytes=max_bytes))

    async def chunks(
        self, ref: BlobRef, *, max_bytes: int, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        check_limits(ref, max_bytes, chunk_size)
        file = await asyncio.to_thread(self._open, ref, max_bytes)
        try:
            total = 0
            while True:
                chunk = await asyncio.to_thread(_read_chunk, file, ref, chunk_size)
                if not chunk:
                    return
                total += len(chunk)
                if total > max_bytes:
                    raise too_large(ref, max_bytes, max_bytes, at_least=True)
                yield chunk
        finally:
            file.close()

    async def spool(self, ref: BlobRef, *, max_bytes: int, folder: Path) -> Path:
        return await spool_into(self.chunks(ref, max_bytes=max_bytes), ref, folder)

    def _started(self) -> Path:
        if self._root is None:
            message = "the blob store is not started"
            raise BlobUnavailableError(message)
        return self._root

    def _prepare_root(self) -> Path:
        try:
            self._configured_root.mkdir(parents=True, exist_ok=True)
            return self._configured_root.resolve(strict=True)
        except OSError as e:
            message = f"blob folder {self._configured_root}: {e}"
            raise BlobUnavailableError(message) from e

    def _locate(self, ref: BlobRef) -> Path:
        """The resolved file of a reference, refused unless it stays inside the root."""
        check_ref(ref)
        urls, accounts = locations_named(ref)
        if urls or accounts:
            # A URL or an account names remote storage, which this folder is not.
            message = f"blob {describe(ref)}: names a URL or storage account; the store is local"
            raise BlobRefusedError(message)
        root = self._started()
        try:
            target = (root / ref.container / ref.path).resolve()
        except (OSError, RuntimeError) as e:  # a symlink loop (RuntimeError before 3.13)
            message = f"blob {describe(ref)}: the path cannot be resolved: {e}"
            raise BlobRefusedError(message) from e
        if not target.is_relative_to(root):
            message = f"blob {describe(ref)}: resolves outside the blob folder"
            raise BlobRefusedError(message)
        return target

    def _open(self, ref: BlobRef, max_bytes: int) -> BinaryIO:
        target = self._locate(ref)
        try:
            # NOFOLLOW: a symlink swapped in after the check above is not followed.
            fd = os.open(target, _OPEN_FLAGS)
        except FileNotFoundError as e:
            message = f"blob {describe(ref)}: no such file"
            raise BlobNotFoundError(message) from e
        except IsADirectoryError as e:
            message = f"blob {describe(ref)}: is a folder, not a file"
            raise BlobNotFoundError(message) from e
        except OSError as e:
            if e.errno == errno.ELOOP:
                message = f"blob {describe(ref)}: changed into a symlink while opened"
                raise BlobRefusedError(message) from e
            message = f"blob {describe(ref)}: cannot open: {e}"
            raise BlobUnavailableError(message) from e
        try:
            _check_opened(fd, ref, max_bytes)
            os.set_blocking(fd, True)
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise


def _check_opened(fd: int, ref: BlobRef, max_bytes: int) -> None:
    """Refuse what is not a regular file, or a file already larger than the limit."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        message = f"blob {describe(ref)}: not a regular file"
        raise BlobNotFoundError(message)
    if info.st_size > max_bytes:
        raise too_large(ref, info.st_size, max_bytes)


def _read_chunk(file: BinaryIO, ref: BlobRef, size: int) -> bytes:
    try:
        return file.read(size)
    except OSError as e:
        message = f"blob {describe(ref)}: read failed: {e}"
        raise BlobUnavailableError(message) from e


def _is_readable_folder(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.R_OK | os.X_OK)
