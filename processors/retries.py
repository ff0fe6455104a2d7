"""The retry policy of agents' store work: unavailable store, lost optimistic races."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from processors.exceptions import ConcurrencyError, StoreError
from processors.settings import Settings

__all__ = ["retry_store"]

T = TypeVar("T")


async def retry_store(settings: Settings, work: Callable[[], Awaitable[T]]) -> T:
    """`await work()`, again with exponential backoff (`AGENT_RETRIES` attempts, at most
    `AGENT_RETRY_MAX_DELAY` apart) while it raises `StoreError` or `ConcurrencyError`."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type((StoreError, ConcurrencyError)),
        stop=stop_after_attempt(settings.AGENT_RETRIES),
        wait=wait_exponential(multiplier=0.2, max=settings.AGENT_RETRY_MAX_DELAY),
        reraise=True,
    ):
        with attempt:
            return await work()
    raise AssertionError("unreachable")  # pragma: no cover  # reraise=True
