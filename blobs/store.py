"""The blob store interface and the reference checks and helpers its implementations share.

A blob reference (`streams.models.BlobRef`, CONTRACT §1 `blob`) names a container and a
path. Both stores accept the same references: an Azure container name and a relative
path without `.`/`..` segments, so an event that works against the local folder works
against Azure Blob Storage and the other way round.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Protocol

from blobs.errors import BlobRefusedError, BlobTooLargeError, BlobUnavailableError
from streams.models import BlobRef

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "BlobStore",
    "check_limits",
    "check_ref",
    "collect",
    "describe",
    "locations_named",
    "spool_into",
    "too_large",
]

DEFAULT_CHUNK_SIZE = 1 << 20

# Azure's rule: 3-63 of [a-z0-9-], starting and ending with a letter or digit, no "--".
# The special `$root`/`$web`/`$logs` containers are refused: integration-sync never uses them.
_CONTAINER = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_PATH = 1024  # Azure's limit on a blob name
_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,16}$")

# Extra keys of a reference that name where the blob lives, compared without case and "_".
_URL_KEYS = frozenset({"url", "uri", "bloburl", "bloburi", "accounturl", "endpoint"})
_ACCOUNT_KEYS = frozenset({"account", "accountname", "storageaccount"})


class BlobStore(Protocol):
    """Where integration-sync put file bytes; every read is bounded by `max_bytes`.

    Errors: `BlobRefusedError` (the reference points outside this storage),
    `BlobNotFoundError`, `BlobTooLargeError` (declared or real size over `max_bytes`)
    are the event's fault; `BlobUnavailableError` is the storage's and worth a retry.
    """

    async def start(self) -> None:
        """Prepare clients or folders; no reads before this."""

    async def stop(self) -> None:
        """Release clients; safe to call twice."""

    async def ping(self) -> None:
        """Return when the storage answers, else raise `BlobUnavailableError`."""

    async def read(self, ref: BlobRef, *, max_bytes: int) -> bytes:
        """The whole blob in memory; for small blobs."""

    def chunks(
        self, ref: BlobRef, *, max_bytes: int, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        """The blob in chunks of at most `chunk_size` bytes.

        Raises as soon as the running total passes `max_bytes`. Close the iterator
        (`contextlib.aclosing`) when stopping early, so the file or connection is freed.
        """

    async def spool(self, ref: BlobRef, *, max_bytes: int, folder: Path) -> Path:
        """Stream the blob into a new temporary file in `folder`; the caller deletes it."""


def describe(ref: BlobRef) -> str:
    """`container/path` for messages, cut short when a hostile reference is long."""
    text = f"{ref.container}/{ref.path}"
    return repr(text if len(text) <= 200 else text[:200] + "...")


def check_ref(ref: BlobRef) -> None:
    """Refuse a container that is not an Azure container name, or a path that can climb."""
    if not _CONTAINER.match(ref.container):
        message = f"blob {describe(ref)}: {ref.container!r} is not a valid container name"
        raise BlobRefusedError(message)
    path = ref.path
    reason = None
    if len(path) > _MAX_PATH:
        reason = f"the path is longer than {_MAX_PATH} characters"
    elif path.startswith("/"):
        reason = "the path is absolute"
    elif "\\" in path:
        reason = "the path contains a backslash"
    elif _CONTROL.search(path):
        reason = "the path contains a control character"
    elif any(part in ("", ".", "..") for part in path.split("/")):
        reason = "the path has an empty, '.' or '..' segment"
    if reason is not None:
        message = f"blob {describe(ref)}: {reason}"
        raise BlobRefusedError(message)


def locations_named(ref: BlobRef) -> tuple[list[str], list[str]]:
    """The URLs and the account names that the reference's extra keys give, if any."""
    urls: list[str] = []
    accounts: list[str] = []
    for key, value in (ref.model_extra or {}).items():
        normal = key.replace("_", "").lower()
        if normal not in _URL_KEYS and normal not in _ACCOUNT_KEYS:
            continue
        if value is None:
            continue
        if not isinstance(value, str):
            message = f"blob {describe(ref)}: {key!r} is not a string"
            raise BlobRefusedError(message)
        (urls if normal in _URL_KEYS else accounts).append(value)
    return urls, accounts


def too_large(
    ref: BlobRef, size: int, max_bytes: int, *, at_least: bool = False
) -> BlobTooLargeError:
    """The error for a blob of `size` bytes (`at_least`: counted while streaming)."""
    counted = "more than " if at_least else ""
    message = f"blob {describe(ref)}: {counted}{size} bytes, over the limit of {max_bytes}"
    return BlobTooLargeError(message)


def check_limits(ref: BlobRef, max_bytes: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
    """`ValueError` for nonsense limits; `BlobTooLargeError` when the ref declares too much."""
    if max_bytes < 0 or chunk_size < 1:
        message = f"need max_bytes >= 0 and chunk_size >= 1, not {max_bytes} and {chunk_size}"
        raise ValueError(message)
    if ref.size is not None and ref.size > max_bytes:
        raise too_large(ref, ref.size, max_bytes)


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    """Every chunk joined; the iterator is closed even when a chunk fails."""
    buffer = bytearray()
    try:
        async for chunk in chunks:
            buffer += chunk
    finally:
        if isinstance(chunks, AsyncGenerator):
            await chunks.aclose()
    return bytes(buffer)


async def spool_into(chunks: AsyncIterator[bytes], ref: BlobRef, folder: Path) -> Path:
    """Write the chunks into a new temporary file in `folder`; removed again on any failure.

    The file keeps the blob's extension (when it is a plain one) for readers that go by it.
    """
    suffix = PurePosixPath(ref.path).suffix
    if not _SUFFIX.match(suffix):
        suffix = ""
    try:
        fd, name = await asyncio.to_thread(
            tempfile.mkstemp, prefix="blob-", suffix=suffix, dir=folder
        )
    except OSError as e:
        message = f"cannot create a spool file in {folder}: {e}"
        raise BlobUnavailableError(message) from e
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:
            async for chunk in chunks:
                try:
                    await asyncio.to_thread(file.write, chunk)
                except OSError as e:
                    message = f"cannot write the spool file {path}: {e}"
                    raise BlobUnavailableError(message) from e
    except BaseException:
        os.unlink(path)  # synchronous: it must run even when cancelled, and it is instant
        raise
    finally:
        if isinstance(chunks, AsyncGenerator):
            await chunks.aclose()
    return path
