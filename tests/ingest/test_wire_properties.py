"""Property tests for ingest.pipeline.wire: round trips over the field table, and mutated datagrams."""

from __future__ import annotations

import contextlib
import json
import struct
from array import array
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from wire_reference import BAD, Rejected, canonical, canonical_value, reference_decode, vector_bytes

from ingest.model.fields import (
    BY_ID,
    BY_NAME,
    FIELDS,
    FLOAT_LIMIT,
    MAX_SLOTS,
    SLOT_FIELDS,
    U64_LIMIT,
    Field,
    Tag,
)
from ingest.pipeline import wire

FAST = settings(deadline=None, max_examples=250, suppress_health_check=[HealthCheck.too_slow])
MUTANTS = settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])

U16_MAX, U32_MAX, U64_MAX = 2**16 - 1, 2**32 - 1, 2**64 - 1
ARRAY_CODE = {Tag.I32_ARRAY: "i", Tag.F64_ARRAY: "d"}
UNKNOWN_IDS = st.integers(0, U16_MAX).filter(lambda fid: fid not in BY_ID)

u64s = st.integers(0, U64_MAX)
negative_i64s = st.integers(-(2**63), -1)  # a non-negative int would be re-encoded as U64
f64s = st.floats(-FLOAT_LIMIT, FLOAT_LIMIT, exclude_min=True, exclude_max=True)  # what the table allows
i32s = st.integers(-(2**31), 2**31 - 1)
non_utf8 = st.tuples(st.binary(max_size=20), st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"]),
                     st.binary(max_size=20)).map(b"".join)
byte_strings = st.one_of(st.text(max_size=60), st.binary(max_size=60), non_utf8)


def array_values(tag: Tag, min_size: int = 0, max_size: int = 200) -> st.SearchStrategy[list[Any]]:
    items = st.integers(0, 2**31 - 1) if tag == Tag.I32_ARRAY else f64s
    return st.lists(items, min_size=min_size, max_size=max_size)


def known_value(field: Field, slots: int) -> st.SearchStrategy[Any]:
    """A value the field table allows for ``field``, shaped as the encoder takes it."""
    if field.name in SLOT_FIELDS:
        return array_values(field.tag, slots, slots)
    if field.tag in ARRAY_CODE:
        return array_values(field.tag, int(field.low), int(field.high))
    if field.tag == Tag.U64:
        return st.integers(0, U64_LIMIT)
    if field.tag == Tag.F64:
        return st.floats(field.low, field.high, exclude_min=field.low == -FLOAT_LIMIT,
                         exclude_max=field.high == FLOAT_LIMIT)
    return st.text(max_size=60) if field.text else byte_strings


def unknown_value() -> st.SearchStrategy[Any]:
    """A value for an unknown id: its Python type alone decides the tag it is encoded with."""
    return st.one_of(
        u64s, negative_i64s, f64s, byte_strings,
        *(array_values(tag, max_size=60).map(lambda v, code=code: array(code, v))
          for tag, code in ARRAY_CODE.items()),
    )


@st.composite
def field_dicts(draw: st.DrawFn) -> dict[str, Any]:
    known = draw(st.lists(st.sampled_from(FIELDS), unique_by=lambda f: f.id, max_size=12))
    unknown = draw(st.lists(UNKNOWN_IDS, unique=True, max_size=4))
    slots = draw(st.integers(1, MAX_SLOTS))
    items = [(f.name, draw(known_value(f, slots))) for f in known]
    if any(f.name in SLOT_FIELDS for f in known):  # the thread maximum agrees with the slot arrays
        threads = slots if slots < MAX_SLOTS else draw(st.integers(MAX_SLOTS, 4096))
        items = [(n, threads if n == "request_threads_maximum" else v) for n, v in items]
    items += [(f"id{fid}", draw(unknown_value())) for fid in unknown]
    return dict(draw(st.permutations(items)))


headers = st.fixed_dictionaries({
    "kind": st.integers(0, 255),
    "pid": st.integers(0, U32_MAX),
    "seq": st.integers(0, U32_MAX),
    "stamp": st.floats(0, 2.0**33, exclude_max=True),  # epoch seconds, as the table bounds them
    "flags": st.integers(0, U16_MAX),
})


def encode(header: dict[str, Any], fields: dict[str, Any]) -> bytes:
    return wire.encode(header["kind"], header["pid"], header["seq"], header["stamp"], fields,
                       flags=header["flags"])


def expected_value(name: str, value: Any) -> Any:
    """What decode gives back for ``value`` sent under ``name``, in canonical form."""
    if isinstance(value, bytes):
        with contextlib.suppress(UnicodeDecodeError):
            value = value.decode("utf-8")
    elif isinstance(value, list):
        value = array(ARRAY_CODE[BY_NAME[name].tag], value)
    return canonical_value(value)


# -- round trips ----------------------------------------------------------------------

@FAST
@given(headers, field_dicts())
def test_any_fields_from_the_table_survive_encode_then_decode(header: dict[str, Any],
                                                              fields: dict[str, Any]) -> None:
    data = encode(header, fields)
    for _ in range(2):  # the second decode goes through the cached layout
        d = wire.decode(data)
        assert (d.version, d.kind, d.flags, d.pid, d.seq, d.size) == (
            1, header["kind"], header["flags"], header["pid"], header["seq"], len(data))
        assert canonical_value(d.stamp) == canonical_value(header["stamp"])  # NaN-aware: by bits
        assert list(d.fields) == list(fields)
        assert {n: canonical_value(v) for n, v in d.fields.items()} == {
            n: expected_value(n, v) for n, v in fields.items()}


@FAST
@given(headers, field_dicts())
def test_encoding_a_decoded_datagram_gives_back_its_exact_bytes(header: dict[str, Any],
                                                                fields: dict[str, Any]) -> None:
    data = encode(header, fields)
    assert wire.encode_datagram(wire.decode(data)) == data


@FAST
@given(headers, field_dicts())
def test_to_json_of_any_decoded_datagram_can_be_dumped(header: dict[str, Any],
                                                       fields: dict[str, Any]) -> None:
    json.dumps(wire.to_json(wire.decode(encode(header, fields))))


@FAST
@given(st.floats(0, 2.0**33, exclude_max=True), st.lists(f64s, min_size=1, max_size=20), byte_strings)
def test_to_json_of_finite_values_is_strict_json(stamp: float, values: list[float], raw: Any) -> None:
    data = wire.encode(4, 1, 1, stamp, {"slow_path_info": raw, "request_threads_busy_time": values})
    json.dumps(wire.to_json(wire.decode(data)), allow_nan=False)


@FAST
@given(st.one_of(st.binary(max_size=80), non_utf8))
def test_display_of_any_bytes_is_a_utf8_safe_str_that_escapes_what_is_not_utf8(raw: bytes) -> None:
    shown = wire.display(raw)
    assert isinstance(shown, str)
    shown.encode("utf-8")  # no lone surrogates that would break a terminal or a log line
    decoded = wire.text(raw)
    if isinstance(decoded, str):
        assert shown == decoded
    else:
        assert "\\x" in shown


# -- mutations ------------------------------------------------------------------------

SEEDS = vector_bytes() + [
    (BAD / name).read_bytes()
    for name in ("unknown-field-u64.bin", "unknown-field-bytes.bin", "unknown-field-middle.bin",
                 "unknown-kind.bin", "nonzero-flags.bin", "header-only.bin", "duplicate-field.bin")
]

valid_datagrams = st.one_of(st.sampled_from(SEEDS), st.builds(encode, headers, field_dicts()))

Mutation = Callable[[st.DataObject, bytes], bytes]


def position(data: st.DataObject, dgram: bytes, *, end: bool = False) -> int:
    """An offset in ``dgram`` (``end``: up to its length), in the TLV body four times out of five."""
    last = len(dgram) if end else max(len(dgram) - 1, 0)
    first = wire.HEADER_SIZE if last >= wire.HEADER_SIZE and data.draw(st.integers(0, 4)) else 0
    return data.draw(st.integers(first, last))


def record_offsets(dgram: bytes) -> list[wire.Record]:
    try:
        return wire.walk(dgram)
    except wire.DecodeError:
        return []


def flip_bits(data: st.DataObject, dgram: bytes) -> bytes:
    out = bytearray(dgram)
    for _ in range(data.draw(st.integers(1, 8))):
        out[position(data, dgram)] ^= 1 << data.draw(st.integers(0, 7))
    return bytes(out)


def overwrite_bytes(data: st.DataObject, dgram: bytes) -> bytes:
    at = position(data, dgram)
    new = data.draw(st.binary(min_size=1, max_size=8))[: len(dgram) - at]
    return dgram[:at] + new + dgram[at + len(new):]


def truncate(data: st.DataObject, dgram: bytes) -> bytes:
    return dgram[: position(data, dgram)]


def extend_with_junk(data: st.DataObject, dgram: bytes) -> bytes:
    return dgram + data.draw(st.binary(min_size=1, max_size=64))


def splice(data: st.DataObject, dgram: bytes) -> bytes:
    other = data.draw(valid_datagrams)
    return dgram[: position(data, dgram, end=True)] + other[position(data, other, end=True):]


def insert_bytes(data: st.DataObject, dgram: bytes) -> bytes:
    at = position(data, dgram, end=True)
    return dgram[:at] + data.draw(st.binary(min_size=1, max_size=16)) + dgram[at:]


def remove_bytes(data: st.DataObject, dgram: bytes) -> bytes:
    at = position(data, dgram)
    return dgram[:at] + dgram[at + data.draw(st.integers(1, 16)):]


def extreme_u16_length(data: st.DataObject, dgram: bytes) -> bytes:
    variable = [r for r in record_offsets(dgram) if r.count is not None]
    if variable:
        record = data.draw(st.sampled_from(variable))
        at, count = record.offset + 3, record.count or 0
    else:
        at, count = position(data, dgram), 0
    new = data.draw(st.sampled_from([0, 1, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF, count + 1, max(count - 1, 0)]))
    return dgram[:at] + struct.pack("<H", new)[: len(dgram) - at] + dgram[at + 2:]


def change_record_head(data: st.DataObject, dgram: bytes) -> bytes:
    """A new id or tag for one record: same length, so the cached layout key still matches."""
    records = record_offsets(dgram)
    if not records:
        return flip_bits(data, dgram)
    record = data.draw(st.sampled_from(records))
    at = record.offset + data.draw(st.integers(0, 2))
    new = data.draw(st.one_of(st.integers(0, 7), st.integers(0, 255)))
    return dgram[:at] + bytes([new]) + dgram[at + 1:]


def change_header(data: st.DataObject, dgram: bytes) -> bytes:
    at = data.draw(st.sampled_from([4, 5, 6, 7, 0, 3]))  # version, kind, flags, a magic byte
    if at >= len(dgram):
        return dgram
    return dgram[:at] + bytes([data.draw(st.integers(0, 255))]) + dgram[at + 1:]


MUTATIONS: dict[str, Mutation] = {
    "flip_bits": flip_bits,
    "overwrite_bytes": overwrite_bytes,
    "truncate": truncate,
    "extend_with_junk": extend_with_junk,
    "splice": splice,
    "insert_bytes": insert_bytes,
    "remove_bytes": remove_bytes,
    "extreme_u16_length": extreme_u16_length,
    "change_record_head": change_record_head,
    "change_header": change_header,
}
GROWING = ("extend_with_junk", "splice", "insert_bytes")


def mutate(data: st.DataObject, dgram: bytes) -> bytes:
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        names = list(MUTATIONS) if dgram else list(GROWING)
        dgram = MUTATIONS[data.draw(st.sampled_from(names), label="mutation")](data, dgram)
    return dgram


def decode_or_reject(dgram: bytes) -> wire.Datagram | wire.DecodeError:
    """The decoder's answer; any exception other than DecodeError escapes and fails the test."""
    try:
        return wire.decode(dgram)
    except wire.DecodeError as exc:
        return exc


@MUTANTS
@given(valid_datagrams, st.data())
def test_a_mutated_datagram_is_either_decoded_or_rejected_with_decode_error(original: bytes,
                                                                           data: st.DataObject) -> None:
    wire.decode(original)  # puts the original's layout in the cache first
    answer = decode_or_reject(mutate(data, original))
    if isinstance(answer, wire.DecodeError):
        assert isinstance(answer.offset, int)
        assert str(answer)


@MUTANTS
@given(valid_datagrams, st.data())
def test_a_mutated_datagram_decodes_exactly_as_a_plain_record_walk_would(original: bytes,
                                                                        data: st.DataObject) -> None:
    wire.decode(original)
    mutant = mutate(data, original)
    answer = decode_or_reject(mutant)
    try:
        want = reference_decode(mutant)
    except Rejected as rejected:
        event(f"rejected: {rejected}")
        assert isinstance(answer, wire.DecodeError), f"accepted a malformed datagram: {mutant.hex()}"
        assert isinstance(answer, wire.UnsupportedVersion) == rejected.version
    else:
        event("accepted")
        assert not isinstance(answer, wire.DecodeError), f"{answer} for {mutant.hex()}"
        assert canonical(answer) == want, mutant.hex()


@pytest.mark.parametrize("name", sorted(MUTATIONS))
@settings(deadline=None, max_examples=25)
@given(original=st.sampled_from(SEEDS), data=st.data())
def test_each_mutation_alone_gives_a_datagram_that_is_decoded_or_rejected(
    name: str, original: bytes, data: st.DataObject,
) -> None:
    mutated = MUTATIONS[name](data, original)
    assert isinstance(mutated, bytes)
    decode_or_reject(mutated)
