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
    seconds apart) while it raises one of `retry_on`; the last error propagates.

    The first try runs outside tenacity: building its machinery for every call cost ~7%
    of linking's time in a chat catch-up, where nearly every first try succeeds. A first
    failure is handed to tenacity as its first attempt's outcome, so the waits, the
    attempt numbers `before_sleep` sees and the number of tries are as before."""
    try:
        return await work()
    except retry_on as exc:
        first: BaseException | None = exc
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(retry_on),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.2, max=max_delay),
        before_sleep=before_sleep,
        reraise=True,
    ):
        with attempt:
            if first is not None:
                failed, first = first, None
                raise failed
            return await work()
    raise AssertionError("unreachable")  # pragma: no cover  # reraise=True
