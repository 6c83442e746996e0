"""The process map on the wire: compressed parts under a manifest, read back by every reader."""

from __future__ import annotations

import hashlib

import pytest

import builders as b
from shared.contracts import MapChangesV1
from shared.mapwire import (
    CURRENT_KEY,
    CorruptMap,
    MapAssembler,
    MapTooLarge,
    current_map,
    encode_map,
    manifests,
    part_key,
    version_key,
)

PAIRS = [(f"team-{i:03d}", f"team-{(i + 1) % 60:03d}") for i in range(60)]


def big_map(version: int = 1) -> b.ProcessMapV1:
    return b.process_map(PAIRS, version=version)


def test_a_map_is_cut_into_parts_none_larger_than_the_part_size() -> None:
    manifest, records = encode_map(big_map(), part_bytes=1024)
    parts = [r for r in records if r.key.startswith(b"map/")]
    assert manifest.parts == len(parts) > 1
    assert all(len(r.value) <= 1024 for r in parts)
    assert [r.key for r in records[-2:]] == [version_key(1), CURRENT_KEY]
    assert manifest.routes == 60 and manifest.processes == 60
    assert (
        manifest.sha256
        == hashlib.sha256(big_map().model_dump_json(by_alias=True).encode()).hexdigest()
    )


def test_the_assembler_hands_back_the_map_when_its_manifest_arrives() -> None:
    assembler = MapAssembler()
    seen = [assembler.feed(key, value) for key, value in b.map_records(big_map(), 1024)]
    assert seen[:-1] == [None] * (len(seen) - 1)
    assert seen[-1] == big_map()
    assert assembler.held() == 0  # parts are dropped once their map is assembled


def test_parts_of_a_version_whose_manifest_was_compacted_away_are_dropped_later() -> None:
    assembler = MapAssembler()
    first = [r for r in b.map_records(big_map(1), 1024) if r[0] != CURRENT_KEY]
    for key, value in first:
        assembler.feed(key, value)
    assert assembler.held() > 0
    for key, value in b.map_records(big_map(2), 1024):
        found = assembler.feed(key, value)
    assert found is not None and found.version == 2
    assert assembler.held() == 0


def test_a_missing_or_damaged_part_is_reported_not_applied() -> None:
    records = b.map_records(big_map(), 1024)
    missing = MapAssembler()
    for key, value in records:
        if key == part_key(1, 1):
            continue
        if key == CURRENT_KEY:
            with pytest.raises(CorruptMap, match="part\\(s\\) 1 of"):
                missing.feed(key, value)
        else:
            missing.feed(key, value)
    damaged = MapAssembler()
    with pytest.raises(CorruptMap):
        for key, value in records:
            damaged.feed(
                key, value[:-1] + bytes([value[-1] ^ 0xFF]) if key == part_key(1, 0) else value
            )


def test_a_whole_map_in_one_record_the_format_before_parts_is_still_read() -> None:
    assert MapAssembler().feed(CURRENT_KEY, b.map_bytes(big_map())) == big_map()
    assert current_map({CURRENT_KEY: b.map_bytes(big_map())}) == big_map()


def test_tombstones_and_foreign_keys_change_nothing() -> None:
    assembler = MapAssembler()
    assert assembler.feed(CURRENT_KEY, None) is None
    assert assembler.feed(b"something-else", b"{}") is None


def test_every_version_stays_readable_from_the_table() -> None:
    table: dict[bytes, bytes | None] = {}
    for version in (1, 2, 3):
        changes = MapChangesV1(changed=version)
        for record in encode_map(big_map(version), changes, part_bytes=1024)[1]:
            table[record.key] = record.value
    assert [m.version for m in manifests(table)] == [1, 2, 3]
    assert [m.changes.changed for m in manifests(table)] == [1, 2, 3]
    found = current_map(table)
    assert found is not None and found.version == 3


def test_a_map_needing_more_parts_than_readers_accept_is_refused_before_sending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest, _ = encode_map(big_map(), part_bytes=1024)
    monkeypatch.setattr("shared.mapwire.MAX_PARTS", manifest.parts - 1)
    with pytest.raises(MapTooLarge, match=f"over the {manifest.parts - 1} a reader accepts"):
        encode_map(big_map(), part_bytes=1024)
