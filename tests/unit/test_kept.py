"""`Kept`: bounded by its entries and by their weight, the weight counted as kept."""

from __future__ import annotations

from core.kept import Kept


def test_past_either_bound_everything_kept_is_dropped_and_the_weight_follows() -> None:
    kept: Kept[str, list[int]] = Kept(entries=3, weight=5, size=len)
    kept.keep("a", [1, 2])
    kept.keep("b", [1, 2])
    assert kept.held == 4 and list(kept) == ["a", "b"]
    kept.keep("a", [1, 2, 3])  # in place of its old value: 2 + 3 = 5, within the bound
    assert kept.held == 5 and list(kept) == ["a", "b"]
    kept.keep("c", [1])  # 6 would pass the weight: dropped first
    assert kept.held == 1 and list(kept) == ["c"]
    kept.keep("d", [])
    kept.keep("e", [])
    kept.keep("f", [])  # a fourth entry: dropped first
    assert list(kept) == ["f"] and kept.held == 0
