"""The decoder holds every datagram to the field table: type, length, text, finite bounded numbers."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from support.paths import VECTORS

from ingest.model.fields import (
    BY_NAME,
    FIELDS,
    FLOAT_LIMIT,
    MAX_SLOTS,
    MAX_UNKNOWN_FIELDS,
    U64_LIMIT,
    Field,
    Tag,
)
from ingest.pipeline import wire
from ingest.pipeline.wire import DecodeError

#: One plausible value of each wire type, to re-encode a field with a type it does not have.
VALUE_OF_TAG: dict[Tag, Any] = {
    Tag.U64: 1, Tag.F64: 1.0, Tag.I64: -1, Tag.BYTES: b"x", Tag.I32_ARRAY: [1], Tag.F64_ARRAY: [1.0],
}
WRONG_TYPES = [(f, tag) for f in FIELDS for tag in Tag if tag != f.tag]


def record(field: Field, tag: Tag, value: Any) -> bytes:
    return wire.encode_record(field.id, tag, value)


def datagram(kind: int, *records: bytes, stamp: float = 1795378194.5) -> bytes:
    return wire.encode(kind, 4242, 9, stamp, {}) + b"".join(records)


def vector(prefix: str) -> bytes:
    return next(VECTORS.glob(f"{prefix}*.bin")).read_bytes()


def rejects(data: bytes, field: Field) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        wire.decode(data)
    assert f"({field.name})" in str(caught.value), str(caught.value)
    assert caught.value.pid == wire.peek_pid(data) and isinstance(caught.value.offset, int)
    return caught.value


def test_every_field_re_encoded_with_every_wrong_type_is_rejected_naming_the_field() -> None:
    assert len(WRONG_TYPES) == 5 * len(FIELDS)
    for field, tag in WRONG_TYPES:
        error = rejects(datagram(field.kinds[0], record(field, tag, VALUE_OF_TAG[tag])), field)
        assert f"type {tag.name}, the field table says {field.tag.name}" in error.problem
        assert error.offset == wire.HEADER_SIZE


@pytest.mark.parametrize("prefix", ["05-", "16-", "10-", "12-", "27-"])
def test_a_wrong_type_inside_a_real_datagram_is_rejected_after_its_layout_is_cached(prefix: str) -> None:
    real = vector(prefix)
    for _ in range(3):
        wire.decode(real)  # compiled layout in the cache
    for rec in wire.walk(real)[:12]:
        field = wire.BY_ID[rec.id]
        for tag in (Tag.U64, Tag.F64, Tag.I64):
            if tag != field.tag and rec.count is None:  # same length: the cached layout's key matches
                mutant = real[:rec.offset + 2] + bytes([tag]) + real[rec.offset + 3:]
                assert rejects(mutant, field).offset == rec.offset
    assert wire.decode(real).fields  # the real one still decodes


def hostile_values(field: Field) -> list[Any]:
    """Values of the field's own type that the table does not allow."""
    if field.tag == Tag.U64:
        return [2**64 - 1, U64_LIMIT + 1]
    if field.tag == Tag.F64:
        values = [math.nan, math.inf, -math.inf, 1e300, -FLOAT_LIMIT]
        return values + ([field.high * 2, -1.0] if field.high != FLOAT_LIMIT else [])
    if field.tag == Tag.BYTES:
        too_long = b"a" * (int(field.high) + 1)
        return [too_long, b"caf\xc3\xa9\xff"] if field.text else [too_long]
    if field.tag == Tag.I32_ARRAY:
        length = int(field.low)
        shorter = [0] * (length - 1) if length > 1 else []
        return [[0] * (length - 1) + [-1], [0] * (int(field.high) + 1), shorter]
    return [[0.0, math.nan], [math.inf], [1e300], [0.0] * (MAX_SLOTS + 1), []]


HOSTILE = [(f, v) for f in FIELDS for v in hostile_values(f)]


@pytest.mark.parametrize(("field", "value"), HOSTILE, ids=lambda x: getattr(x, "name", None) or "")
def test_a_hostile_value_is_rejected_naming_the_field(field: Field, value: Any) -> None:
    encoded = record(field, field.tag, value)
    rejects(datagram(field.kinds[0], encoded), field)


def replace_value(data: bytes, name: str, fmt: str, value: Any) -> bytes:
    rec = next(r for r in wire.walk(data) if r.id == BY_NAME[name].id)
    at = rec.offset + (3 if rec.count is None else 5)
    return data[:at] + struct.pack(fmt, value) + data[at + struct.calcsize(fmt):]


@pytest.mark.parametrize(("name", "fmt", "value"), [
    ("request_time_min", "<d", math.nan), ("sample_period", "<d", 1e308),
    ("cpu_utilization", "<d", -math.inf),
    ("telemetry_interval", "<d", 1e9), ("request_count", "<Q", 2**64 - 1), ("memory_rss", "<Q", 2**60),
    ("request_time_buckets", "<i", -5), ("request_threads_busy_time", "<d", math.nan),
    ("request_threads_maximum", "<Q", 7),
])
def test_a_hostile_value_in_a_cached_real_tick_is_rejected_at_its_offset(name: str, fmt: str,
                                                                        value: Any) -> None:
    real = vector("05-")
    for _ in range(3):
        wire.decode(real)
    mutant = replace_value(real, name, fmt, value)
    error = rejects(mutant, BY_NAME[name])
    assert error.offset == next(r.offset for r in wire.walk(real) if r.id == BY_NAME[name].id)
    assert wire.decode(real).fields["request_count"] > 0


def test_non_utf8_is_kept_as_bytes_where_the_table_says_bytes() -> None:
    path = BY_NAME["slow_path_info"]
    for _ in range(3):
        d = wire.decode(datagram(4, record(path, Tag.BYTES, b"/caf\xc3\xa9/\xff")))
    assert d.fields["slow_path_info"] == b"/caf\xc3\xa9/\xff"


def test_slot_arrays_must_agree_with_each_other_and_with_the_thread_maximum() -> None:
    completed, busy = BY_NAME["request_threads_completed"], BY_NAME["request_threads_busy_time"]
    threads = BY_NAME["request_threads_maximum"]
    ok = [record(threads, Tag.U64, 150), record(completed, Tag.I32_ARRAY, [0] * 128),
          record(busy, Tag.F64_ARRAY, [0.0] * 128)]
    for _ in range(3):
        assert len(wire.decode(datagram(2, *ok)).fields["request_threads_busy_time"]) == 128
    rejects(datagram(2, ok[0], ok[1], record(busy, Tag.F64_ARRAY, [0.0] * 4)), busy)
    rejects(datagram(2, record(threads, Tag.U64, 4), ok[1], ok[2]), threads)


def unknown_records(count: int) -> list[bytes]:
    return [wire.encode_record(1000 + n, Tag.U64, n) for n in range(count)]


def test_unknown_fields_pass_within_their_bound_and_a_flood_of_them_is_rejected_early() -> None:
    d = wire.decode(datagram(6, *unknown_records(MAX_UNKNOWN_FIELDS)))
    assert d.fields[f"id{1000 + MAX_UNKNOWN_FIELDS - 1}"] == MAX_UNKNOWN_FIELDS - 1
    flood = datagram(6, *unknown_records(5900))
    with pytest.raises(DecodeError, match="over the bound of 32 unknown fields") as caught:
        wire.decode(flood)
    assert caught.value.offset == wire.HEADER_SIZE + 11 * MAX_UNKNOWN_FIELDS  # stopped at the 33rd
    big = wire.encode_record(1000, Tag.BYTES, b"x" * 5000)
    with pytest.raises(DecodeError, match="unknown fields"):
        wire.decode(datagram(6, big))


@pytest.mark.parametrize("stamp", [math.nan, math.inf, -math.inf, 1e300])
def test_a_header_stamp_that_is_not_a_time_is_rejected(stamp: float) -> None:
    with pytest.raises(DecodeError, match="header stamp"):
        wire.decode(datagram(6, stamp=stamp))
