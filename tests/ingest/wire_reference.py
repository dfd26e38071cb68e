"""Test helpers for ingest.pipeline.wire: the captured data, and a second decoder to compare with.

``reference_decode`` is a deliberately plain TLV walk (no layout cache, no generated
code) written from docs only. Comparing ``wire.decode`` against it on arbitrary,
mutated input proves the layout cache never reads a datagram through the wrong layout.
"""

from __future__ import annotations

import gzip
import json
import math
import struct
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.model.fields import BY_ID, BY_NAME, field_name
from ingest.pipeline.wire import Datagram

VECTORS = Path(__file__).resolve().parents[1] / "data" / "wire-vectors"
BAD = VECTORS / "bad"
RAW = VECTORS / "raw"
SCENARIOS = ("A", "B", "C", "D", "E")

#: A canonical, exactly comparable form of a datagram: floats by their bits, so
#: NaN == NaN and -0.0 != 0.0; str and bytes stay apart; arrays by typecode and bytes.
Canonical = tuple[Any, ...]


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def vector_entries() -> list[dict[str, Any]]:
    return load_jsonl(VECTORS / "vectors.jsonl")


def vector_bytes() -> list[bytes]:
    return [(VECTORS / entry["file"]).read_bytes() for entry in vector_entries()]


def raw_datagrams(scenario: str) -> list[bytes]:
    """Split ``raw/X.dgrams.gz``: repeated u32-LE length + datagram."""
    blob = gzip.decompress((RAW / f"{scenario}.dgrams.gz").read_bytes())
    return list(_split_frames(blob))


def _split_frames(blob: bytes) -> Iterator[bytes]:
    pos = 0
    while pos < len(blob):
        (size,) = struct.unpack_from("<I", blob, pos)
        pos += 4
        frame = blob[pos:pos + size]
        if len(frame) != size:
            raise ValueError(f"raw capture truncated at offset {pos}")
        yield frame
        pos += size


# -- the plain reference decoder ---------------------------------------------

class Rejected(Exception):
    """The reference decoder refuses the datagram; ``version`` when only the version is wrong."""

    def __init__(self, why: str, *, version: bool = False):
        super().__init__(why)
        self.version = version


_FIXED = {1: "<Q", 2: "<d", 3: "<q"}
_ARRAYS = {5: ("i", 4), 6: ("d", 8)}


def reference_decode(data: bytes) -> Canonical:
    """Decode ``data`` by the protocol notes alone; raise :class:`Rejected` when malformed."""
    if len(data) < 24:
        raise Rejected("short")
    magic, version, kind, flags, pid, seq, stamp = struct.unpack_from("<4sBBHIId", data)
    if magic != b"WSGI":
        raise Rejected("magic")
    if version != 1:
        raise Rejected("version", version=True)
    fields: dict[str, Any] = {}
    records: list[tuple[int, int, int | None]] = []
    pos = 24
    while pos < len(data):
        if pos + 3 > len(data):
            raise Rejected("tlv header")
        fid, tag = struct.unpack_from("<HB", data, pos)
        pos += 3
        if tag in _FIXED:
            if pos + 8 > len(data):
                raise Rejected("fixed value")
            (value,) = struct.unpack_from(_FIXED[tag], data, pos)
            pos += 8
        elif tag in (4, 5, 6):
            if pos + 2 > len(data):
                raise Rejected("length")
            (count,) = struct.unpack_from("<H", data, pos)
            pos += 2
            size = count if tag == 4 else count * _ARRAYS[tag][1]
            if pos + size > len(data):
                raise Rejected("value past end")
            raw = data[pos:pos + size]
            pos += size
            value = text_or_bytes(raw) if tag == 4 else array(_ARRAYS[tag][0], raw)
        else:
            raise Rejected("tag")
        records.append((fid, tag, None if tag in _FIXED else count))
        fields[field_name(fid)] = value  # a repeated id keeps its first place and its last value
    breach = contract_breach(stamp, records, fields)
    if breach:
        raise Rejected(breach)
    return (version, kind, flags, pid, seq, canonical_value(stamp), canonical_fields(fields))


# -- the field table's bounds, restated plainly from docs/wire-fields.md ------------

HISTOGRAM_IDS = range(90, 98)
SLOT_IDS = range(110, 115)
PERIODS = {10: 3600.0, 11: 3600.0, 13: 1.0, 201: 2.0**33, 320: 2.0**33}  # seconds, epoch stamps


def _bad_float(value: float) -> bool:
    return not math.isfinite(value) or abs(value) >= 2.0**49


def contract_breach(stamp: float, records: list[tuple[int, int, int | None]], fields: dict[str, Any]) -> str:
    """Why the datagram breaks the field table ("" when it does not), without the decoder's code."""
    if not 0 <= stamp < 2.0**33:
        return "stamp"
    unknown = unknown_bytes = 0
    slot_lengths = set()
    for fid, tag, count in records:
        field = BY_ID.get(fid)
        if field is None:
            unknown += 1
            unknown_bytes += 8 if count is None else count * {4: 1, 5: 4, 6: 8}[tag]
            continue
        if tag != field.tag:
            return "type"
        if tag == 4 and count > (1024 if fid >= 200 else 256):
            return "text length"
        if fid in HISTOGRAM_IDS and count != 65:
            return "histogram length"
        if fid in SLOT_IDS:
            if not 1 <= count <= 128:
                return "slot length"
            slot_lengths.add(count)
    if unknown > 32 or unknown_bytes > 4096:
        return "unknown fields"
    if len(slot_lengths) > 1:
        return "slot lengths differ"
    for name, value in fields.items():
        field = BY_NAME.get(name)
        tag = field.tag if field else None
        if isinstance(value, float) and _bad_float(value):
            return "float"
        if isinstance(value, array) and value.typecode == "d" and any(map(_bad_float, value)):
            return "float array"
        if field is None:
            continue
        if tag == 1 and value > 2**53 - 1:
            return "u64"
        if field.id in PERIODS and not 0 <= value <= PERIODS[field.id]:
            return "period"
        if field.unit == "text" and isinstance(value, bytes):
            return "text"
        if tag == 5 and any(v < 0 for v in value):
            return "negative count"
    threads = fields.get("request_threads_maximum")
    if threads is not None and slot_lengths and min(threads, 128) not in slot_lengths:
        return "threads"
    return ""


def text_or_bytes(raw: bytes) -> str | bytes:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def canonical_value(value: Any) -> Any:
    if isinstance(value, float):
        return ("f64", struct.pack("<d", value))
    if isinstance(value, array):
        return ("array", value.typecode, value.tobytes())
    if isinstance(value, bytes):
        return ("bytes", value)
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, int):
        return ("int", value)
    raise TypeError(f"unexpected field value type {type(value).__name__}")


def canonical_fields(fields: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple((name, canonical_value(value)) for name, value in fields.items())


def canonical(d: Datagram) -> Canonical:
    return (d.version, d.kind, d.flags, d.pid, d.seq, canonical_value(d.stamp), canonical_fields(d.fields))

