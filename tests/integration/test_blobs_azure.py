"""The Azure blob store against Azurite, and against a storage that fails or is gone."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import pytest
from aiohttp import web
from azure.storage.blob.aio import ContainerClient

from blobs import (
    BlobNotFoundError,
    BlobRefusedError,
    BlobTooLargeError,
    BlobUnavailableError,
)
from blobs.azure import AzureBlobStore
from core.exceptions import ConfigurationError
from streams.models import BlobRef
from tests.integration.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite


def ref(container: ContainerClient | str, path: str, **extra: object) -> BlobRef:
    name = container if isinstance(container, str) else container.container_name
    return BlobRef.model_validate({"container": name, "path": path, **extra})


def connection_string(blob_endpoint: str) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={blob_endpoint};"
    )


async def test_reads_streams_and_spools_a_blob(
    azure_store: AzureBlobStore, blob_container: ContainerClient, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 123)  # four ranged GETs of 1 MiB
    await blob_container.upload_blob("t-demo/meetings/mtg-1/recording.wav", data)
    blob = ref(blob_container, "t-demo/meetings/mtg-1/recording.wav", size=len(data))

    assert await azure_store.read(blob, max_bytes=len(data)) == data

    chunks = [c async for c in azure_store.chunks(blob, max_bytes=len(data), chunk_size=300_000)]
    assert max(len(c) for c in chunks) <= 300_000
    assert b"".join(chunks) == data

    spooled = await azure_store.spool(blob, max_bytes=len(data), folder=tmp_path)
    assert spooled.parent == tmp_path
    assert spooled.suffix == ".wav"
    assert spooled.read_bytes() == data


async def test_names_with_spaces_and_unicode_and_empty_blobs(
    azure_store: AzureBlobStore, blob_container: ContainerClient
) -> None:
    name = "t1/Angebot für Kunde #2 (final).docx"
    await blob_container.upload_blob(name, b"PK\x03\x04 bytes")
    await blob_container.upload_blob("t1/empty.txt", b"")
    assert await azure_store.read(ref(blob_container, name), max_bytes=100) == b"PK\x03\x04 bytes"
    assert await azure_store.read(ref(blob_container, "t1/empty.txt"), max_bytes=0) == b""


async def test_the_size_limit_holds_by_declared_and_by_real_size(
    azure_store: AzureBlobStore, blob_container: ContainerClient, tmp_path: Path
) -> None:
    await blob_container.upload_blob("big.bin", b"x" * 5000)
    with pytest.raises(BlobTooLargeError, match="9999 bytes, over the limit of 4999"):
        await azure_store.read(ref(blob_container, "big.bin", size=9999), max_bytes=4999)
    # Declared small (or not at all), but the blob's properties say otherwise.
    for blob in (ref(blob_container, "big.bin", size=10), ref(blob_container, "big.bin")):
        with pytest.raises(BlobTooLargeError, match="5000 bytes, over the limit of 4999"):
            await azure_store.read(blob, max_bytes=4999)
    with pytest.raises(BlobTooLargeError):
        await azure_store.spool(ref(blob_container, "big.bin"), max_bytes=4999, folder=tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert len(await azure_store.read(ref(blob_container, "big.bin"), max_bytes=5000)) == 5000


async def test_a_blob_replaced_during_a_download_is_a_retryable_failure(
    azure_store: AzureBlobStore, blob_container: ContainerClient
) -> None:
    await blob_container.upload_blob("changing.bin", os.urandom(3 * 1024 * 1024))
    with pytest.raises(BlobUnavailableError, match="412"):
        async with aclosing(
            azure_store.chunks(ref(blob_container, "changing.bin"), max_bytes=10 << 20)
        ) as chunks:
            async for _ in chunks:
                await blob_container.upload_blob(
                    "changing.bin", os.urandom(5 * 1024 * 1024), overwrite=True
                )


async def test_missing_blobs_and_containers_are_not_found(
    azure_store: AzureBlobStore, blob_container: ContainerClient
) -> None:
    with pytest.raises(BlobNotFoundError, match="BlobNotFound"):
        await azure_store.read(ref(blob_container, "nope.pdf"), max_bytes=100)
    with pytest.raises(BlobNotFoundError, match="ContainerNotFound"):
        await azure_store.read(ref("no-such-container", "nope.pdf"), max_bytes=100)


@pytest.mark.parametrize(
    ("extra", "path", "reason"),
    [
        ({}, "../other/x.txt", "'..' segment"),
        ({}, "/x.txt", "absolute"),
        ({"account": "someoneelse"}, "x.txt", "account 'someoneelse'"),
        ({"accountName": "devstoreaccount2"}, "x.txt", "is not the configured one"),
        ({"url": "https://evil.example.com/devstoreaccount1/{c}/x.txt"}, "x.txt", "another host"),
        ({"url": "http://127.0.0.1:{port}/devstoreaccount2/{c}/x.txt"}, "x.txt", "another account"),
        ({"url": "http://127.0.0.1:{port}/devstoreaccount1/{c}/y.txt"}, "x.txt", "another blob"),
        ({"url": "http://me@127.0.0.1:{port}/devstoreaccount1/{c}/x.txt"}, "x.txt", "plain"),
        ({"url": "file:///etc/passwd"}, "x.txt", "plain http"),
        ({"blobUrl": 42}, "x.txt", "not a string"),
    ],
)
async def test_references_outside_the_account_are_refused(
    azure_store: AzureBlobStore,
    blob_container: ContainerClient,
    azurite: Azurite,
    extra: dict[str, object],
    path: str,
    reason: str,
) -> None:
    await blob_container.upload_blob("x.txt", b"mine")
    port = azurite.url.rsplit(":", 1)[1]
    c = blob_container.container_name
    filled = {k: v.format(c=c, port=port) if isinstance(v, str) else v for k, v in extra.items()}
    with pytest.raises(BlobRefusedError, match=reason):
        await azure_store.read(ref(blob_container, path, **filled), max_bytes=100)


async def test_a_url_or_account_that_names_this_blob_is_accepted(
    azure_store: AzureBlobStore, blob_container: ContainerClient, azurite: Azurite
) -> None:
    name = "t1/a file.txt"
    await blob_container.upload_blob(name, b"mine")
    url = f"{azurite.blob_endpoint}/{blob_container.container_name}/t1/a%20file.txt?sv=sas"
    blob = ref(blob_container, name, url=url, account=ACCOUNT_NAME.upper())
    assert await azure_store.read(blob, max_bytes=100) == b"mine"


async def test_a_container_name_azure_rejects_is_refused_before_any_request(
    azure_store: AzureBlobStore,
) -> None:
    with pytest.raises(BlobRefusedError, match="not a valid container name"):
        await azure_store.read(ref("Bad_Container", "x.txt"), max_bytes=100)


async def test_ping_answers_and_an_explicit_api_version_works(azurite: Azurite) -> None:
    async with AzureBlobStore(azurite.connection_string, api_version="2025-11-05") as store:
        await store.ping()


async def test_a_stopped_azurite_is_unavailable_not_a_bad_event(tmp_path: Path) -> None:
    with Azurite() as own:
        store = AzureBlobStore(own.connection_string, retries=0, connection_timeout=2)
        await store.start()
        async with ContainerClient.from_connection_string(
            own.connection_string, "files"
        ) as container:
            await container.create_container()
            await container.upload_blob("x.txt", b"here")
        assert await store.read(ref("files", "x.txt"), max_bytes=100) == b"here"
    # Azurite is gone now.
    with pytest.raises(BlobUnavailableError, match="did not answer"):
        await store.ping()
    with pytest.raises(BlobUnavailableError):
        await store.read(ref("files", "x.txt"), max_bytes=100)
    with pytest.raises(BlobUnavailableError):
        await store.spool(ref("files", "x.txt"), max_bytes=100, folder=tmp_path)
    assert list(tmp_path.iterdir()) == []
    await store.stop()
    await store.stop()


async def test_an_unreachable_endpoint_is_unavailable() -> None:
    with socket.socket() as probe:  # a port that nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/{ACCOUNT_NAME}"
    async with AzureBlobStore(connection_string(endpoint), retries=0) as store:
        with pytest.raises(BlobUnavailableError):
            await store.ping()
        with pytest.raises(BlobUnavailableError):
            await store.read(ref("files", "x.txt"), max_bytes=100)


@pytest.fixture
async def failing_storage() -> AsyncIterator[tuple[str, dict[str, int]]]:
    """An HTTP server answering every blob request with the status the test sets."""
    answer = {"status": 503, "delay": 0}

    async def handle(request: web.Request) -> web.Response:
        await asyncio.sleep(answer["delay"])
        code = {500: "InternalError", 503: "ServerBusy", 409: "BlobArchived"}.get(
            answer["status"], "Other"
        )
        return web.Response(
            status=answer["status"],
            headers={"x-ms-error-code": code, "Content-Type": "application/xml"},
            text=f'<?xml version="1.0"?><Error><Code>{code}</Code><Message>m</Message></Error>',
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)  # a delayed answer is not awaited
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/{ACCOUNT_NAME}", answer
    await runner.cleanup()


async def test_5xx_and_timeouts_are_unavailable_other_4xx_refused(
    failing_storage: tuple[str, dict[str, int]],
) -> None:
    endpoint, answer = failing_storage
    blob = ref("files", "x.txt")
    async with AzureBlobStore(connection_string(endpoint), retries=0, read_timeout=0.5) as store:
        for status in (500, 503, 429, 403):
            answer["status"] = status
            with pytest.raises(BlobUnavailableError, match=str(status)):
                await store.read(blob, max_bytes=100)
        answer["status"] = 409
        with pytest.raises(BlobRefusedError, match="409 BlobArchived"):
            await store.read(blob, max_bytes=100)
        answer["status"], answer["delay"] = 503, 3
        with pytest.raises(BlobUnavailableError, match="did not answer"):
            await store.read(blob, max_bytes=100)


async def test_a_malformed_connection_string_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="AZURE_BLOB_CONNECTION_STRING"):
        await AzureBlobStore("this is not one").start()
