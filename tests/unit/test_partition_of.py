"""`streams.batched_send.partition_of` (a C MurmurHash2) places every key where
aiokafka's default partitioner (pure-Python murmur2, as the Java client) does."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from streams.batched_send import partition_of


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=64))
def test_the_partition_of_a_key_is_the_default_partitioners(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert partition_of(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_a_record_without_a_key_goes_to_one_of_the_partitions() -> None:
    assert {partition_of(None, [0, 1, 2]) for _ in range(50)} <= {0, 1, 2}
