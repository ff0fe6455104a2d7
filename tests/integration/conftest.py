"""Session fixtures of the integration tests: Azurite, and factories for its containers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from blobs.azure import AzureBlobStore
from tests.integration.azurite import Azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One Azurite blob server for the session (memory only; npm-installed on first use)."""
    with Azurite() as running:
        yield running


@pytest.fixture
async def blob_service(azurite: Azurite) -> AsyncIterator[BlobServiceClient]:
    """An SDK client of Azurite's account, to put test blobs in place."""
    async with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        yield service


@pytest.fixture
async def blob_container(blob_service: BlobServiceClient) -> AsyncIterator[ContainerClient]:
    """A uuid-named container, deleted afterwards."""
    container = await blob_service.create_container(f"test-{uuid.uuid4().hex[:12]}")
    yield container
    await container.delete_container()


@pytest.fixture
async def azure_store(azurite: Azurite) -> AsyncIterator[AzureBlobStore]:
    """An `AzureBlobStore` on Azurite: small download ranges, no SDK retries."""
    async with AzureBlobStore(
        azurite.connection_string, retries=0, download_chunk_size=1 << 20
    ) as store:
        yield store
