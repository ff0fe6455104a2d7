"""Builds the blob store the settings name: Azure with a connection string, else the folder."""

from __future__ import annotations

from pathlib import Path

from blobs.azure import AzureBlobStore
from blobs.local import LocalBlobStore
from blobs.store import BlobStore

__all__ = ["blob_store_from"]


def blob_store_from(connection_string: str | None, blob_dir: Path) -> BlobStore:
    """`AzureBlobStore` when `connection_string` is set (not blank), else `LocalBlobStore`.

    Pass `settings.AZURE_BLOB_CONNECTION_STRING.get_secret_value()` (or None) and
    `settings.blob_dir`. Nothing connects until the store's `start()`.
    """
    if connection_string and connection_string.strip():
        return AzureBlobStore(connection_string.strip())
    return LocalBlobStore(blob_dir)
