"""A cache bounded by its entries and by their size in all (threads of views, kept by the
store and by the linker)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["Kept"]

K = TypeVar("K")
V = TypeVar("V")


class Kept(dict[K, V]):
    """At most `entries` values, of `weight` in all by `size`; a value that would pass
    either bound drops everything kept first (read again when asked). `held`, the weight
    kept, is counted as values are put in (`keep`), not added up on each miss."""

    def __init__(self, entries: int, weight: int, size: Callable[[V], int]) -> None:
        super().__init__()
        self.entries, self.weight, self.size = entries, weight, size
        self.held = 0

    def keep(self, key: K, value: V) -> V:
        """Keep `value` under `key` (in place of what was there); the value."""
        old = self.get(key)
        held = self.held - (0 if old is None else self.size(old))
        added = self.size(value)
        if len(self) >= self.entries or held + added > self.weight:
            self.clear()
            held = 0
        self[key] = value
        self.held = held + added
        return value
