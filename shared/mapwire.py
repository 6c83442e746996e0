"""How the process map travels on `routing.processmap.v1`: compressed, in parts, under a manifest.

One Kafka record per map stopped working at the size of a real organisation (a 2,463-route map
is 1.26 MB of JSON, over the producer's 1 MiB request limit). Each published version is now:

- `map/<version>/<n>`: part n (0-based) of the map's JSON compressed with zlib, cut into
  parts of at most `part_bytes` (512 KiB by default), so no record nears Kafka's 1 MiB limits
  (producer max.request.size, broker message.max.bytes, consumer fetch sizes) whatever the
  map's size and without any topic setting of the broker's;
- `version/<version>`: its manifest (`MapManifestV1`: who, when, from where, which revision,
  how many parts, sizes, the JSON's sha256, what changed);
- `current`: the same manifest, written last: what is in force.

All on the topic's one partition, in that order, so a reader that sees `current` has already
seen its parts. The topic is compacted: only the last `current` is kept, and `map/...` and
`version/...` keys are never reused, so every published version stays readable (the history).

A `current` record holding a whole ProcessMapV1 (the format before parts) is still read.
Pure: records in, maps out; publishing and reading Kafka are the services' adapters.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from shared.contracts import MapChangesV1, MapManifestV1, ProcessMapV1
from shared.heap import gc_paused

CURRENT_KEY = b"current"
PART_BYTES = 512 * 1024
"""Default part size: half of Kafka's default 1 MiB record limits, headers and batch overhead
included with room to spare."""
MAX_PARTS = 1024
MAX_JSON_BYTES = 512 * 1024 * 1024
"""What a reader accepts as a map's JSON (the size a manifest announces): far above the
largest map routing can read (its file limit), so only a corrupt manifest hits it."""
ENCODING = "zlib+json"
_PART = re.compile(rb"^map/(\d+)/(\d+)$")
_VERSION = re.compile(rb"^version/(\d+)$")


class CorruptMap(ValueError):
    """A map record that cannot be read back: a bad manifest, a missing or damaged part."""


class MapTooLarge(ValueError):
    """A map that needs more parts than a reader accepts: refused before anything is sent."""


@dataclass(frozen=True)
class WireRecord:
    """One record to write to the map topic, in order."""

    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def part_key(version: int, index: int) -> bytes:
    """The key of part `index` of a version."""
    return b"map/%010d/%04d" % (version, index)


def version_key(version: int) -> bytes:
    """The key of a version's manifest (kept for every version)."""
    return b"version/%010d" % version


def encode_map(
    pmap: ProcessMapV1, changes: MapChangesV1 | None = None, part_bytes: int = PART_BYTES
) -> tuple[MapManifestV1, list[WireRecord]]:
    """The records that publish `pmap`: its parts, its manifest, then `current`."""
    with gc_paused():
        text = pmap.model_dump_json(by_alias=True).encode()
    packed = zlib.compress(text, 6)
    parts = [packed[i : i + part_bytes] for i in range(0, len(packed), part_bytes)] or [b""]
    if len(parts) > MAX_PARTS:
        raise MapTooLarge(
            f"the map is {len(packed)} bytes compressed ({len(text)} bytes of JSON): "
            f"{len(parts)} parts of {part_bytes} bytes, over the {MAX_PARTS} a reader accepts"
        )
    manifest = MapManifestV1(
        version=pmap.version,
        published_at=pmap.published_at,
        source=pmap.source,
        revision=pmap.revision,
        author=pmap.author,
        encoding=ENCODING,
        parts=len(parts),
        size=len(text),
        compressed=len(packed),
        sha256=hashlib.sha256(text).hexdigest(),
        processes=len(pmap.processes),
        groups=len(pmap.groups),
        routes=len(pmap.routes),
        changes=changes or MapChangesV1(new=len(pmap.routes)),
    )
    version = str(pmap.version).encode()
    part_headers = (("baton_schema", b"ProcessMapV1.part"), ("baton_map_version", version))
    records = [
        WireRecord(part_key(pmap.version, i), part, part_headers) for i, part in enumerate(parts)
    ]
    manifest_value = manifest.model_dump_json().encode()
    manifest_headers = (
        ("content-type", b"application/json"),
        ("baton_schema", b"MapManifestV1"),
        ("baton_map_version", version),
    )
    records.append(WireRecord(version_key(pmap.version), manifest_value, manifest_headers))
    records.append(WireRecord(CURRENT_KEY, manifest_value, manifest_headers))
    return manifest, records


def read_manifest(value: bytes) -> MapManifestV1 | ProcessMapV1:
    """A `current` or `version/...` record: a manifest, or a whole map (the format before
    parts). Raises CorruptMap."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise CorruptMap(f"not JSON: {exc}") from None
    try:
        if isinstance(document, dict) and "parts" in document:
            return MapManifestV1.model_validate(document)
        with gc_paused():
            return ProcessMapV1.model_validate(document)
    except ValidationError as exc:
        raise CorruptMap(str(exc)[:500]) from None


def assemble(manifest: MapManifestV1, parts: Mapping[int, bytes]) -> ProcessMapV1:
    """The map a manifest describes, from its parts (index -> bytes); raises CorruptMap."""
    text = assemble_json(manifest, parts)
    try:
        with gc_paused():
            pmap = ProcessMapV1.model_validate_json(text)
    except ValidationError as exc:
        raise CorruptMap(f"map version {manifest.version}: {str(exc)[:500]}") from None
    if pmap.version != manifest.version:
        raise CorruptMap(f"manifest version {manifest.version} holds map {pmap.version}")
    return pmap


def assemble_json(manifest: MapManifestV1, parts: Mapping[int, bytes]) -> bytes:
    """The JSON of the map a manifest describes, checked against it; raises CorruptMap."""
    if manifest.encoding != ENCODING:
        raise CorruptMap(f"map version {manifest.version}: unknown encoding {manifest.encoding!r}")
    if manifest.size > MAX_JSON_BYTES or manifest.parts > MAX_PARTS:
        raise CorruptMap(f"map version {manifest.version}: announces {manifest.size} bytes")
    missing = [i for i in range(manifest.parts) if i not in parts]
    if missing:
        raise CorruptMap(
            f"map version {manifest.version}: part(s) {', '.join(map(str, missing[:10]))} "
            f"of {manifest.parts} missing"
        )
    unpack = zlib.decompressobj()
    try:
        text = b"".join(
            unpack.decompress(parts[i], manifest.size + 1) for i in range(manifest.parts)
        )
        text += unpack.flush()
    except zlib.error as exc:
        raise CorruptMap(f"map version {manifest.version}: damaged part ({exc})") from None
    if len(text) != manifest.size or hashlib.sha256(text).hexdigest() != manifest.sha256:
        raise CorruptMap(f"map version {manifest.version}: parts do not match the manifest")
    return text


def parts_of(table: Mapping[bytes, bytes | None], version: int) -> dict[int, bytes]:
    """The parts of one version found in a table read to its end (key -> last value)."""
    out: dict[int, bytes] = {}
    index = 0
    while True:
        value = table.get(part_key(version, index))
        if value is None:
            return out
        out[index] = value
        index += 1


def current_map(table: Mapping[bytes, bytes | None]) -> ProcessMapV1 | None:
    """The map in force in a table read to its end; None when none was published."""
    value = table.get(CURRENT_KEY)
    if value is None:
        return None
    found = read_manifest(value)
    if isinstance(found, ProcessMapV1):
        return found
    return assemble(found, parts_of(table, found.version))


def manifests(table: Mapping[bytes, bytes | None]) -> list[MapManifestV1]:
    """Every version's manifest in a table read to its end, oldest first (corrupt ones and
    maps published before manifests existed are left out)."""
    found: list[MapManifestV1] = []
    for key, value in table.items():
        if value is None or _VERSION.match(key) is None:
            continue
        try:
            manifest = read_manifest(value)
        except CorruptMap:
            continue
        if isinstance(manifest, MapManifestV1):
            found.append(manifest)
    return sorted(found, key=lambda m: m.version)


class MapAssembler:
    """Follows the map topic record by record (a TableReader callback's view) and hands back
    each map put in force. Parts are held until their manifest arrives; then those of that
    version and older ones are dropped (older manifests may have been compacted away)."""

    def __init__(self) -> None:
        self._parts: dict[int, dict[int, bytes]] = {}

    def feed(self, key: bytes, value: bytes | None) -> ProcessMapV1 | None:
        """One record; the map when it is a `current` one. Raises CorruptMap."""
        part = _PART.match(key)
        if part is not None:
            version, index = int(part.group(1)), int(part.group(2))
            if value is None:
                self._parts.get(version, {}).pop(index, None)
            else:
                self._parts.setdefault(version, {})[index] = value
            return None
        if key != CURRENT_KEY or value is None:
            return None  # a version's manifest (history), a tombstone, a foreign key
        found = read_manifest(value)
        try:
            if isinstance(found, ProcessMapV1):
                return found
            return assemble(found, self._parts.get(found.version, {}))
        finally:
            version = found.version
            for held in [v for v in self._parts if v <= version]:
                del self._parts[held]

    def held(self) -> int:
        """Bytes of parts waiting for their manifest."""
        return sum(len(p) for parts in self._parts.values() for p in parts.values())


def records_of(pmap: ProcessMapV1, part_bytes: int = PART_BYTES) -> Iterable[tuple[bytes, bytes]]:
    """(key, value) of every record that publishes `pmap` (for tests and tools)."""
    return [(r.key, r.value) for r in encode_map(pmap, part_bytes=part_bytes)[1]]
