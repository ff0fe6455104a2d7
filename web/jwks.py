"""The identity provider's signing keys (JWKS), fetched without blocking the event loop.

Keys are cached by `kid` (at most `max_keys`, the first the document lists) and fetched
again when the cache is older than `ttl` or a token names a `kid` the cache lacks; an
unknown `kid` refreshes at most once per `min_refresh` seconds, so tokens with made-up
key ids cannot turn the API into a flood of requests to the provider. A failed refresh
keeps the keys already known.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import jwt

__all__ = ["DEFAULT_MAX_KEYS", "JwksError", "JwksKeys"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_KEYS = 32
MAX_DOCUMENT_BYTES = 1024 * 1024


class JwksError(Exception):
    """No usable key for a token: unknown `kid`, or the provider cannot be reached."""


class JwksKeys:
    """Signing keys of one JWKS URL, by `kid`."""

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 300.0,
        min_refresh: float = 30.0,
        max_keys: int = DEFAULT_MAX_KEYS,
        timeout: float = 5.0,
    ) -> None:
        self._url = url
        self._ttl = ttl
        self._min_refresh = min_refresh
        self._max_keys = max_keys
        self._timeout = timeout
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # monotonic time of the last good fetch
        self._attempted_at: float | None = None  # ... of the last attempt, good or not
        self._lock = asyncio.Lock()
        self.fetches = 0

    @property
    def kids(self) -> list[str]:
        return list(self._keys)

    async def key(self, kid: str) -> jwt.PyJWK:
        """The key named `kid`; `JwksError` when the provider does not list it."""
        now = time.monotonic()
        stale = self._fetched_at is None or now - self._fetched_at >= self._ttl
        if kid not in self._keys or stale:
            await self._refresh()
        try:
            return self._keys[kid]
        except KeyError:
            message = f"no signing key {kid!r} at the identity provider"
            raise JwksError(message) from None

    async def _refresh(self) -> None:
        """Fetch the document again, unless one was fetched (or tried) too recently."""
        asked = time.monotonic()
        async with self._lock:
            last = self._attempted_at
            if last is not None and last >= asked:
                return  # refreshed while this call waited for the lock
            if last is not None and asked - last < self._min_refresh:
                return  # bounded: an unknown kid waits for the next allowed refresh
            self._attempted_at = time.monotonic()
            self.fetches += 1
            try:
                document = await self._fetch()
            except (aiohttp.ClientError, TimeoutError, ValueError) as e:
                logger.warning("could not refresh signing keys from %s: %r", self._url, e)
                return
            self._keys = self._parse(document)
            self._fetched_at = time.monotonic()
            logger.info("signing keys from %s: %s", self._url, ", ".join(self._keys) or "none")

    async def _fetch(self) -> Mapping[str, Any]:
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(self._url, headers={"Accept": "application/json"}) as response,
        ):
            response.raise_for_status()
            body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
        if len(body) > MAX_DOCUMENT_BYTES:
            message = f"the JWKS document is larger than {MAX_DOCUMENT_BYTES} bytes"
            raise ValueError(message)
        document = json.loads(body)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            message = "the JWKS document has no `keys` list"
            raise ValueError(message)  # noqa: TRY004  # a bad document, caught as ValueError
        return document

    def _parse(self, document: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document["keys"]:
            if len(keys) >= self._max_keys:
                logger.warning("the JWKS lists more than %d keys; the rest ignored", self._max_keys)
                break
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            if entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError as e:
                logger.info("skipping signing key %s: %s", entry.get("kid"), e)
                continue
            keys.setdefault(entry["kid"], key)
        return keys
