"""`retry_store`: the first try outside tenacity, the rest as tenacity would run them."""

from __future__ import annotations

import pytest
from tenacity import RetryCallState

from core.exceptions import ConcurrencyError, StoreError
from core.retries import retry_store


class Flaky:
    """Fails with `errors` in turn, then returns "done"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


async def test_a_first_try_that_succeeds_is_the_only_one() -> None:
    work = Flaky()
    assert await retry_store(work, attempts=3, max_delay=0) == "done"
    assert work.calls == 1


async def test_failures_are_retried_with_the_attempt_numbers_tenacity_gives() -> None:
    work = Flaky(StoreError("down"), ConcurrencyError("lost a race"))
    seen: list[tuple[int, str]] = []

    def before_sleep(state: RetryCallState) -> None:
        assert state.outcome is not None
        seen.append((state.attempt_number, str(state.outcome.exception())))

    assert await retry_store(work, attempts=3, max_delay=0, before_sleep=before_sleep) == "done"
    assert work.calls == 3
    assert seen == [(1, "down"), (2, "lost a race")]


async def test_the_last_failure_propagates_after_the_attempts() -> None:
    work = Flaky(StoreError("1"), StoreError("2"), StoreError("3"))
    with pytest.raises(StoreError, match=r"^2$"):
        await retry_store(work, attempts=2, max_delay=0)
    assert work.calls == 2
    once = Flaky(StoreError("only"))
    with pytest.raises(StoreError, match="only"):
        await retry_store(once, attempts=1, max_delay=0)
    assert once.calls == 1


async def test_an_error_it_does_not_retry_propagates_at_once() -> None:
    work = Flaky(ValueError("bad input"))
    with pytest.raises(ValueError, match="bad input"):
        await retry_store(work, attempts=5, max_delay=0)
    assert work.calls == 1
