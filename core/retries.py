"""The retry policy of store work: an unavailable store, a lost optimistic race."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from core.exceptions import ConcurrencyError, StoreError

__all__ = ["STORE_RETRYABLE", "retry_store"]

T = TypeVar("T")

#: What a retry may cure: the store was briefly unavailable, another writer won a race.
STORE_RETRYABLE: tuple[type[BaseException], ...] = (StoreError, ConcurrencyError)


async def retry_store(
    work: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    max_delay: float,
    retry_on: tuple[type[BaseException], ...] = STORE_RETRYABLE,
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> T:
    """`await work()`, again with exponential backoff (`attempts` tries, at most `max_delay`
    seconds apart) while it raises one of `retry_on`; the last error propagates."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(retry_on),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.2, max=max_delay),
        before_sleep=before_sleep,
        reraise=True,
    ):
        with attempt:
            return await work()
    raise AssertionError("unreachable")  # pragma: no cover  # reraise=True
