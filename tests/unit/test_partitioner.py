"""Baton's partitioner is Kafka's: the same partition as aiokafka (and the Java client)."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.partitioner import murmur2, partition_for


@settings(max_examples=2000)
@given(st.binary(max_size=300))
def test_murmur2_equals_kafkas_for_any_key(key: bytes) -> None:
    assert murmur2(key) == reference(key) & 0xFFFFFFFF


@given(st.binary(min_size=1, max_size=200), st.integers(min_value=1, max_value=1000))
def test_a_key_lands_where_the_default_partitioner_puts_it(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert partition_for(key, count) == DefaultPartitioner()(key, partitions, partitions)


def test_known_java_client_values() -> None:
    # Kafka's own Utils.murmur2 test vectors (clients/src/test/.../UtilsTest.java).
    assert murmur2(b"21") & 0x7FFFFFFF == -973932308 & 0x7FFFFFFF
    assert murmur2(b"foobar") & 0x7FFFFFFF == -790332482 & 0x7FFFFFFF
    assert murmur2(b"a-little-bit-long-string") & 0x7FFFFFFF == -985981536 & 0x7FFFFFFF
