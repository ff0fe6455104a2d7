"""Blob storage: where integration-sync put file bytes, read in bounded streams."""

from __future__ import annotations

from blobs.errors import (
    BlobNotFoundError,
    BlobRefusedError,
    BlobTooLargeError,
    BlobUnavailableError,
)
from blobs.factory import blob_store_from
from blobs.store import BlobStore

__all__ = [
    "BlobNotFoundError",
    "BlobRefusedError",
    "BlobStore",
    "BlobTooLargeError",
    "BlobUnavailableError",
    "blob_store_from",
]
