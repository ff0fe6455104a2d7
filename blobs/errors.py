"""Errors of blob storage: the event's fault (dead-lettered) or the storage's (retried)."""

from __future__ import annotations

from core.exceptions import BadEventError, TransientError

__all__ = [
    "BlobNotFoundError",
    "BlobRefusedError",
    "BlobTooLargeError",
    "BlobUnavailableError",
]


class BlobRefusedError(BadEventError):
    """The reference points outside the configured storage, or the storage refuses it for good."""


class BlobNotFoundError(BadEventError):
    """No blob (or no container) at the reference."""


class BlobTooLargeError(BadEventError):
    """The blob is larger than the limit, by its declared or its real size."""


class BlobUnavailableError(TransientError):
    """The storage did not answer (down, 5xx, timeout, throttled, credentials refused)."""
