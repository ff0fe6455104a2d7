"""The local blob store: reads, limits, and references that try to leave the folder."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import pytest

from blobs import (
    BlobNotFoundError,
    BlobRefusedError,
    BlobTooLargeError,
    BlobUnavailableError,
    blob_store_from,
)
from blobs.azure import AzureBlobStore
from blobs.local import LocalBlobStore
from core.exceptions import BadEventError, TransientError
from streams.models import BlobRef

CONTAINER = "integration-files"


def ref(path: str, container: str = CONTAINER, **extra: object) -> BlobRef:
    return BlobRef.model_validate({"container": container, "path": path, **extra})


def put(root: Path, path: str, data: bytes, container: str = CONTAINER) -> Path:
    file = root / container / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(data)
    return file


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
async def store(root: Path) -> AsyncIterator[LocalBlobStore]:
    async with LocalBlobStore(root) as s:
        yield s


async def test_reads_a_file_under_container_and_path(store: LocalBlobStore, root: Path) -> None:
    put(root, "t-demo/documents/doc-88/msa.pdf", b"%PDF-1.7 hello")
    assert await store.read(ref("t-demo/documents/doc-88/msa.pdf"), max_bytes=100) == (
        b"%PDF-1.7 hello"
    )
    put(root, "empty.txt", b"")
    assert await store.read(ref("empty.txt"), max_bytes=0) == b""


async def test_chunks_are_at_most_chunk_size_and_join_to_the_file(
    store: LocalBlobStore, root: Path
) -> None:
    data = os.urandom(10_000)
    put(root, "a/b.bin", data)
    chunks = [c async for c in store.chunks(ref("a/b.bin"), max_bytes=10_000, chunk_size=4096)]
    assert [len(c) for c in chunks] == [4096, 4096, 1808]
    assert b"".join(chunks) == data


async def test_real_size_over_the_limit_is_refused_before_reading(
    store: LocalBlobStore, root: Path
) -> None:
    put(root, "big.bin", b"x" * 1001)
    with pytest.raises(BlobTooLargeError, match="1001 bytes, over the limit of 1000"):
        await store.read(ref("big.bin"), max_bytes=1000)
    assert await store.read(ref("big.bin"), max_bytes=1001) == b"x" * 1001


async def test_streaming_stops_as_soon_as_the_total_passes_the_limit(
    store: LocalBlobStore, root: Path
) -> None:
    # The file grows after it was opened (and its size checked): the running total catches it.
    file = put(root, "growing.log", b"a" * 100)
    received: list[bytes] = []
    with pytest.raises(BlobTooLargeError, match="more than 250 bytes"):
        async with aclosing(
            store.chunks(ref("growing.log"), max_bytes=250, chunk_size=100)
        ) as chunks:
            async for chunk in chunks:
                received.append(chunk)
                with file.open("ab") as f:
                    f.write(b"b" * 100)
    assert [len(c) for c in received] == [100, 100]


async def test_nonsense_limits_are_a_programming_error(store: LocalBlobStore, root: Path) -> None:
    put(root, "x.txt", b"x")
    with pytest.raises(ValueError, match="chunk_size"):
        await store.read(ref("x.txt"), max_bytes=-1)
    with pytest.raises(ValueError, match="chunk_size"):
        await anext(store.chunks(ref("x.txt"), max_bytes=10, chunk_size=0))


async def test_declared_size_over_the_limit_is_refused_without_io(
    store: LocalBlobStore, root: Path
) -> None:
    put(root, "small.txt", b"tiny")
    with pytest.raises(BlobTooLargeError, match="5000 bytes, over the limit of 100"):
        await store.read(ref("small.txt", size=5000), max_bytes=100)
    with pytest.raises(BlobTooLargeError):  # even when the file does not exist
        await store.read(ref("missing.txt", size=5000), max_bytes=100)


@pytest.mark.parametrize(
    "path",
    [
        "../outside.txt",
        "a/../../outside.txt",
        "a/../b.txt",
        "./b.txt",
        "a//b.txt",
        "a/b/",
        "a\\..\\b.txt",
        "a/\x00b.txt",
    ],
)
async def test_paths_that_climb_or_are_ambiguous_are_refused(
    store: LocalBlobStore, root: Path, path: str
) -> None:
    (root.parent / "outside.txt").write_text("secret")
    with pytest.raises(BlobRefusedError):
        await store.read(ref(path), max_bytes=100)


async def test_an_absolute_path_is_refused(store: LocalBlobStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    with pytest.raises(BlobRefusedError, match="absolute"):
        await store.read(ref(str(secret)), max_bytes=100)
    with pytest.raises(BlobRefusedError, match="absolute"):
        await store.read(ref("/etc/passwd"), max_bytes=100_000)


async def test_a_symlink_out_of_the_folder_is_refused(
    store: LocalBlobStore, root: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (root / CONTAINER).mkdir(parents=True)
    (root / CONTAINER / "link.txt").symlink_to(secret)
    (root / CONTAINER / "dir").symlink_to(tmp_path)
    with pytest.raises(BlobRefusedError, match="outside the blob folder"):
        await store.read(ref("link.txt"), max_bytes=100)
    with pytest.raises(BlobRefusedError, match="outside the blob folder"):
        await store.read(ref("dir/secret.txt"), max_bytes=100)
    # A container that is itself a symlink out of the folder.
    (root / "escape").symlink_to(tmp_path)
    with pytest.raises(BlobRefusedError, match="outside the blob folder"):
        await store.read(ref("secret.txt", container="escape"), max_bytes=100)


async def test_a_symlink_inside_the_folder_is_followed(store: LocalBlobStore, root: Path) -> None:
    target = put(root, "t1/original.txt", b"same bytes", container="other-container")
    (root / CONTAINER).mkdir(parents=True)
    (root / CONTAINER / "alias.txt").symlink_to(target)
    assert await store.read(ref("alias.txt"), max_bytes=100) == b"same bytes"


async def test_a_root_reached_through_a_symlink_still_works(tmp_path: Path) -> None:
    real = tmp_path / "real-blobs"
    put(real, "x.txt", b"through a link")
    (tmp_path / "linked").symlink_to(real)
    async with LocalBlobStore(tmp_path / "linked") as store:
        assert await store.read(ref("x.txt"), max_bytes=100) == b"through a link"


async def test_a_missing_file_a_folder_and_a_fifo_are_not_found(
    store: LocalBlobStore, root: Path
) -> None:
    with pytest.raises(BlobNotFoundError, match="no such file"):
        await store.read(ref("nope.pdf"), max_bytes=100)
    with pytest.raises(BlobNotFoundError):
        await store.read(ref("nope.pdf", container="no-such-container"), max_bytes=100)
    (root / CONTAINER / "folder").mkdir(parents=True)
    with pytest.raises(BlobNotFoundError, match="folder"):
        await store.read(ref("folder"), max_bytes=100)
    os.mkfifo(root / CONTAINER / "pipe")
    with pytest.raises(BlobNotFoundError, match="not a regular file"):  # and does not hang
        await store.read(ref("pipe"), max_bytes=100)


@pytest.mark.parametrize(
    "container",
    ["Files", "ab", "a" * 64, "-files", "files-", "my--files", "my_files", "..", "$root"],
)
async def test_a_container_that_azure_would_not_accept_is_refused(
    store: LocalBlobStore, root: Path, container: str
) -> None:
    with pytest.raises(BlobRefusedError, match="not a valid container name"):
        await store.read(ref("x.txt", container=container), max_bytes=100)


async def test_a_reference_naming_a_url_or_an_account_is_refused(
    store: LocalBlobStore, root: Path
) -> None:
    put(root, "x.txt", b"local")
    with pytest.raises(BlobRefusedError, match="URL or storage account"):
        await store.read(
            ref("x.txt", url="https://evil.example/integration-files/x.txt"), max_bytes=100
        )
    with pytest.raises(BlobRefusedError, match="URL or storage account"):
        await store.read(ref("x.txt", accountName="someoneelse"), max_bytes=100)
    # Other extra keys are kept and harmless.
    assert await store.read(ref("x.txt", etag="0x1"), max_bytes=100) == b"local"


async def test_spool_writes_a_new_file_in_the_folder(
    store: LocalBlobStore, root: Path, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    put(root, "t1/rec/recording.wav", data)
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    first = await store.spool(ref("t1/rec/recording.wav"), max_bytes=len(data), folder=spool_dir)
    second = await store.spool(ref("t1/rec/recording.wav"), max_bytes=len(data), folder=spool_dir)
    assert first != second
    assert first.parent == spool_dir
    assert first.suffix == ".wav"
    assert first.read_bytes() == data


async def test_spool_leaves_nothing_behind_when_it_fails(
    store: LocalBlobStore, root: Path, tmp_path: Path
) -> None:
    put(root, "big.bin", b"x" * 2000)
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    with pytest.raises(BlobTooLargeError):
        await store.spool(ref("big.bin"), max_bytes=1000, folder=spool_dir)
    with pytest.raises(BlobNotFoundError):
        await store.spool(ref("missing.bin"), max_bytes=1000, folder=spool_dir)
    assert list(spool_dir.iterdir()) == []
    with pytest.raises(BlobUnavailableError):
        await store.spool(ref("big.bin"), max_bytes=5000, folder=tmp_path / "no-such-folder")


async def test_start_creates_the_folder_ping_checks_it_stop_is_safe_twice(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "new" / "blobs")
    with pytest.raises(BlobUnavailableError, match="not started"):
        await store.read(ref("x.txt"), max_bytes=1)
    await store.start()
    assert (tmp_path / "new" / "blobs").is_dir()
    await store.ping()
    (tmp_path / "new" / "blobs").rmdir()
    with pytest.raises(BlobUnavailableError):
        await store.ping()
    await store.stop()
    await store.stop()


def test_errors_are_dead_lettered_or_retried_by_kind() -> None:
    for error in (BlobRefusedError, BlobNotFoundError, BlobTooLargeError):
        assert issubclass(error, BadEventError)
    assert issubclass(BlobUnavailableError, TransientError)


def test_the_factory_picks_azure_only_with_a_connection_string(tmp_path: Path) -> None:
    assert isinstance(blob_store_from(None, tmp_path), LocalBlobStore)
    assert isinstance(blob_store_from("  ", tmp_path), LocalBlobStore)
    connection_string = (
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=a2V5;"
        "EndpointSuffix=core.windows.net"
    )
    azure = blob_store_from(connection_string, tmp_path)
    assert isinstance(azure, AzureBlobStore)
    assert "a2V5" not in repr(azure)
