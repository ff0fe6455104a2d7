"""Azure Blob Storage as the blob store, through the async `azure-storage-blob` client.

Only the account of the connection string is read: a reference that names another
account, or a URL to another host or blob, is refused. Downloads stream in ranged
requests of `download_chunk_size` bytes; the size from the first response's
properties is checked before anything more is read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry

from blobs.errors import (
    BlobNotFoundError,
    BlobRefusedError,
    BlobUnavailableError,
)
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
from core.exceptions import ConfigurationError, ProcessorsError
from streams.models import BlobRef

__all__ = ["AzureBlobStore"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
# 4xx answers that say nothing about the blob itself: credentials, throttling, a blob
# that changed between two ranges of one download. Worth a retry, not a dead letter.
_TRANSIENT_4XX = frozenset({401, 403, 408, 412, 429})


class AzureBlobStore:
    """A `BlobStore` on one Azure Storage account (or Azurite)."""

    def __init__(
        self,
        connection_string: str,
        *,
        api_version: str | None = None,
        retries: int = 2,
        connection_timeout: float = 10.0,
        read_timeout: float = 60.0,
        download_chunk_size: int = 4 << 20,
    ) -> None:
        """Build the store; nothing connects before `start()`.

        Args:
            connection_string: the account's connection string (a secret: never logged).
            api_version: the storage REST version to send; None: the SDK's newest.
            retries: the SDK's own retries of a request (1 s, 3 s, ... apart); callers
                retry `BlobUnavailableError` on top with their own backoff.
            connection_timeout: seconds to connect.
            read_timeout: seconds to wait for each read from the socket.
            download_chunk_size: bytes per ranged GET, and the most held in memory at once.
        """
        self._connection_string = connection_string
        self._api_version = api_version
        self._retries = retries
        self._connection_timeout = connection_timeout
        self._read_timeout = read_timeout
        self._download_chunk_size = download_chunk_size
        self._service: BlobServiceClient | None = None

    def __repr__(self) -> str:
        account = self._service.account_name if self._service else "not started"
        return f"AzureBlobStore({account})"

    async def __aenter__(self) -> AzureBlobStore:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._service is not None:
            return
        try:
            self._service = BlobServiceClient.from_connection_string(
                self._connection_string,
                api_version=self._api_version,
                retry_policy=ExponentialRetry(
                    initial_backoff=1, increment_base=2, retry_total=self._retries
                ),
                connection_timeout=self._connection_timeout,
                read_timeout=self._read_timeout,
                max_single_get_size=self._download_chunk_size,
                max_chunk_get_size=self._download_chunk_size,
            )
        except ValueError as e:
            # The SDK's message never quotes the string; the string is a secret.
            message = f"AZURE_BLOB_CONNECTION_STRING is not usable: {e}"
            raise ConfigurationError(message) from None

    async def stop(self) -> None:
        service, self._service = self._service, None
        if service is not None:
            await service.close()

    async def ping(self) -> None:
        try:
            await self._started().get_account_information()
        except (AzureError, OSError, TimeoutError) as e:
            raise _translate(e, None) from e

    async def read(self, ref: BlobRef, *, max_bytes: int) -> bytes:
        return await collect(self.chunks(ref, max_bytes=max_bytes))

    async def chunks(
        self, ref: BlobRef, *, max_bytes: int, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        check_limits(ref, max_bytes, chunk_size)
        self._check_ref(ref)
        blob = self._started().get_blob_client(ref.container, ref.path)
        try:
            # The first answer carries the blob's properties and at most one chunk.
            downloader = await blob.download_blob()
        except (AzureError, OSError, TimeoutError) as e:
            raise _translate(e, ref) from e
        size = downloader.properties.size
        if size > max_bytes:
            raise too_large(ref, size, max_bytes)
        pieces = downloader.chunks()
        total = 0
        while True:
            try:
                piece = await anext(pieces)
            except StopAsyncIteration:
                return
            except (AzureError, OSError, TimeoutError) as e:
                raise _translate(e, ref) from e
            total += len(piece)
            if total > max_bytes:  # the blob grew past its properties
                raise too_large(ref, max_bytes, max_bytes, at_least=True)
            if len(piece) <= chunk_size:
                yield piece
                continue
            for start in range(0, len(piece), chunk_size):
                yield piece[start : start + chunk_size]

    async def spool(self, ref: BlobRef, *, max_bytes: int, folder: Path) -> Path:
        return await spool_into(self.chunks(ref, max_bytes=max_bytes), ref, folder)

    def _started(self) -> BlobServiceClient:
        if self._service is None:
            message = "the blob store is not started"
            raise BlobUnavailableError(message)
        return self._service

    def _check_ref(self, ref: BlobRef) -> None:
        """Refuse a reference to another account, host or blob than the one it names."""
        check_ref(ref)
        service = self._started()
        urls, accounts = locations_named(ref)
        own_account = (service.account_name or "").lower()
        for account in accounts:
            if account.lower() != own_account:
                message = f"blob {describe(ref)}: account {account!r} is not the configured one"
                raise BlobRefusedError(message)
        for url in urls:
            reason = _url_mismatch(url, service.url, ref)
            if reason is not None:
                message = f"blob {describe(ref)}: url {url[:200]!r} {reason}"
                raise BlobRefusedError(message)


def _url_mismatch(url: str, account_url: str, ref: BlobRef) -> str | None:
    """Why `url` is not this ref's blob in the account at `account_url`; None if it is."""
    try:
        given, own = urlsplit(url), urlsplit(account_url)
        given_port, own_port = given.port, own.port
    except ValueError:
        return "is not a valid URL"
    scheme = given.scheme.lower()
    if scheme not in _DEFAULT_PORTS or given.username is not None or given.password is not None:
        return "is not a plain http(s) URL"
    given_host = (given.hostname or "", given_port or _DEFAULT_PORTS[scheme])
    own_host = (own.hostname or "", own_port or _DEFAULT_PORTS.get(own.scheme.lower(), 0))
    if given_host != own_host:
        return "points at another host than the configured account"
    prefix = own.path if own.path.endswith("/") else own.path + "/"
    if not given.path.startswith(prefix):
        return "points at another account than the configured one"
    if unquote(given.path[len(prefix) :]) != f"{ref.container}/{ref.path}":
        return "names another blob than container and path"
    return None


def _translate(e: BaseException, ref: BlobRef | None) -> ProcessorsError:
    """The project's error for an SDK or network error."""
    where = f"blob {describe(ref)}" if ref is not None else "blob storage"
    code = getattr(e, "error_code", None)  # set by the storage SDK on its HTTP errors
    if isinstance(e, ResourceNotFoundError):
        message = f"{where}: not found ({code or e.status_code})"
        return BlobNotFoundError(message)
    if isinstance(e, HttpResponseError):
        status = e.status_code
        detail = f"{status} {code or e.reason or ''}".strip()
        if status is not None and 400 <= status < 500 and status not in _TRANSIENT_4XX:
            message = f"{where}: the storage refuses it ({detail})"
            return BlobRefusedError(message)
        message = f"{where}: the storage failed ({detail})"
        return BlobUnavailableError(message)
    message = f"{where}: the storage did not answer ({type(e).__name__}: {e})"
    return BlobUnavailableError(message)
