"""ingest.pipeline.wire against the real mod_wsgi 6.1.1 captures in tests/data/wire-vectors."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import struct
from array import array
from typing import Any

import pytest
from wire_reference import (
    BAD,
    RAW,
    SCENARIOS,
    VECTORS,
    Rejected,
    canonical,
    load_jsonl,
    raw_datagrams,
    reference_decode,
    vector_entries,
)

from ingest.model.fields import Tag
from ingest.pipeline import wire
from ingest.pipeline.wire import DecodeError, UnsupportedVersion

ENTRIES = vector_entries()
BAD_ENTRIES = load_jsonl(BAD / "expect.jsonl")
RAW_COUNTS = {"A": 2963, "B": 135, "C": 3111, "D": 150, "E": 391}
STOPPING = next(e for e in ENTRIES if e["file"].startswith("25-"))
STOPPING_FIELDS: dict[str, Any] = STOPPING["fields"]


def vector_id(entry: dict[str, Any]) -> str:
    return entry["file"].removesuffix(".bin")


def read_vector(entry: dict[str, Any]) -> bytes:
    return (VECTORS / entry["file"]).read_bytes()


def read_bad(entry: dict[str, Any]) -> bytes:
    return (BAD / entry["file"]).read_bytes()


def typed(value: Any) -> Any:
    """JSON values tagged with their Python type, so 0 and 0.0 (or True and 1) differ."""
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    return (type(value).__name__, value)


def json_fields(d: wire.Datagram) -> dict[str, Any]:
    return {name: wire.jsonable(value) for name, value in d.fields.items()}


def entries_of(expect: str) -> list[Any]:
    return [pytest.param(e, id=e["file"]) for e in BAD_ENTRIES if e["expect"] == expect]


# -- the 68 vectors -------------------------------------------------------------

def test_there_are_68_vectors_and_each_bin_has_its_recorded_size_and_sha256() -> None:
    assert len(ENTRIES) == 68
    for entry in ENTRIES:
        data = read_vector(entry)
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"])


@pytest.mark.parametrize("entry", ENTRIES, ids=vector_id)
def test_each_vector_decodes_to_its_recorded_header(entry: dict[str, Any]) -> None:
    d = wire.decode(read_vector(entry))
    got = (d.version, d.kind, d.kind_name, d.flags, d.pid, d.seq, d.stamp, d.size)
    want = tuple(entry[k] for k in ("version", "kind", "kind_name", "flags", "pid", "seq", "stamp", "size"))
    assert got == want


@pytest.mark.parametrize("entry", ENTRIES, ids=vector_id)
def test_each_vector_decodes_to_exactly_its_recorded_fields(entry: dict[str, Any]) -> None:
    d = wire.decode(read_vector(entry))
    assert list(d.fields) == list(entry["fields"])
    assert typed(json_fields(d)) == typed(entry["fields"])


@pytest.mark.parametrize("entry", ENTRIES, ids=vector_id)
def test_each_vector_walks_to_its_recorded_record_order_tags_and_counts(entry: dict[str, Any]) -> None:
    data = read_vector(entry)
    records = wire.walk(data)
    assert [[r.id, r.tag, r.count] for r in records] == entry["wire"]
    assert records[0].offset == wire.HEADER_SIZE
    assert all(a.offset < b.offset for a, b in itertools.pairwise(records))


def test_non_utf8_bytes_decode_as_bytes_and_utf8_as_str() -> None:
    d = wire.decode(read_vector(next(e for e in ENTRIES if e["file"].startswith("61-"))))
    assert d.fields["slow_path_info"] == b"/caf\xc3\xa9/\xff"
    assert d.fields["slow_user_agent"] == "Agent/ünï"


def test_arrays_decode_as_compact_typed_arrays() -> None:
    d = wire.decode(read_vector(next(e for e in ENTRIES if e["file"].startswith("55-"))))
    assert d.fields["server_time_buckets"].typecode == "i"
    assert len(d.fields["server_time_buckets"]) == 65
    assert d.fields["request_threads_busy_time"].typecode == "d"
    assert len(d.fields["request_threads_busy_time"]) == 128


# -- the complete raw captures (6,750 datagrams) -------------------------------------

def test_the_raw_captures_hold_6750_datagrams_and_as_many_json_lines() -> None:
    counts = {s: len(raw_datagrams(s)) for s in SCENARIOS}
    assert counts == RAW_COUNTS
    assert {s: len(load_jsonl(RAW / f"{s}.jsonl.gz")) for s in SCENARIOS} == RAW_COUNTS
    assert sum(counts.values()) == 6750


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_raw_datagram_of_a_scenario_decodes_to_its_recorded_values(scenario: str) -> None:
    mismatches = []
    for data, line in zip(raw_datagrams(scenario), load_jsonl(RAW / f"{scenario}.jsonl.gz"), strict=True):
        d = wire.decode(data)
        got = {"size": d.size, "kind": d.kind, "pid": d.pid, "seq": d.seq, "stamp": d.stamp,
               "fields": json_fields(d)}
        want = {k: line[k] for k in got}
        if typed(got) != typed(want) or list(d.fields) != list(line["fields"]):
            mismatches.append(line["n"])
    assert mismatches == []


# -- malformed datagrams (bad/) --------------------------------------------------------

#: What the message must name, per rejected file (case-insensitive regex).
REJECT_PROBLEM = {
    "empty.bin": r"too short\b.*\b0 bytes",
    "truncated-header.bin": r"too short\b.*\b20 bytes",
    "bad-magic.bin": r"magic",
    "truncated-tlv-header.bin": r"truncated TLV header",
    "truncated-fixed-value.bin": r"field 133\b.*\b8 bytes",
    "unknown-type-tag.bin": r"field 133\b.*unknown type tag 0x07",
    "bytes-length-past-end.bin": r"field 130\b.*\b56 bytes",
    "array-count-past-end.bin": r"field 114\b.*\b72 bytes",
    "truncated-inside-array.bin": r"field 90\b.*\b260 bytes",
}


def test_every_bad_file_has_an_expectation_and_every_rejection_a_problem_pattern() -> None:
    assert {p.name for p in BAD.glob("*.bin")} == {e["file"] for e in BAD_ENTRIES}
    assert set(REJECT_PROBLEM) == {e["file"] for e in BAD_ENTRIES if e["expect"] == "reject"}
    for entry in BAD_ENTRIES:
        assert len(read_bad(entry)) == entry["size"]


@pytest.mark.parametrize("entry", entries_of("reject"))
def test_a_malformed_datagram_is_rejected_with_our_error_naming_the_problem_and_offset(
    entry: dict[str, Any],
) -> None:
    data = read_bad(entry)
    with pytest.raises(Exception) as caught:  # the exact type is checked below
        wire.decode(data)
    exc = caught.value
    assert type(exc) is DecodeError, f"leaked {type(exc).__name__}: {exc}"
    assert not isinstance(exc, struct.error | IndexError | UnsupportedVersion)
    assert re.search(REJECT_PROBLEM[entry["file"]], str(exc), re.IGNORECASE), str(exc)
    assert isinstance(exc.offset, int) and 0 <= exc.offset <= len(data)
    assert f"offset {exc.offset}" in str(exc)
    header_readable = len(data) >= wire.HEADER_SIZE and data[:4] == wire.MAGIC
    assert exc.pid == (struct.unpack_from("<I", data, 8)[0] if header_readable else None)


#: Expected content of each accepted bad/ file, on top of the header of vector 25.
ACCEPT: dict[str, dict[str, Any]] = {
    "unknown-field-u64.bin": {"fields": {**STOPPING_FIELDS, "id999": 123456789}},
    "unknown-field-bytes.bin": {"fields": {**STOPPING_FIELDS, "id150": "hello"}},
    "unknown-field-middle.bin": {"fields": {**STOPPING_FIELDS, "id4242": 1.5}},
    "unknown-kind.bin": {"kind": 42, "kind_name": "kind42", "fields": STOPPING_FIELDS},
    "nonzero-flags.bin": {"flags": 0x8001, "fields": STOPPING_FIELDS},
    "header-only.bin": {"fields": {}},
    "duplicate-field.bin": {"fields": {**STOPPING_FIELDS, "active_requests_at_decision": 7}},
}


def test_every_accepted_bad_file_has_an_expected_content() -> None:
    assert set(ACCEPT) == {e["file"] for e in BAD_ENTRIES if e["expect"] == "accept"}


@pytest.mark.parametrize("entry", entries_of("accept"))
def test_an_odd_but_walkable_datagram_is_decoded_with_all_its_fields(entry: dict[str, Any]) -> None:
    data = read_bad(entry)
    want = {"kind": 6, "kind_name": "process_stopping", "flags": 0, "pid": STOPPING["pid"],
            "size": entry["size"], **ACCEPT[entry["file"]]}
    d = wire.decode(data)
    got = {"kind": d.kind, "kind_name": d.kind_name, "flags": d.flags, "pid": d.pid,
           "size": d.size, "fields": json_fields(d)}
    assert typed(got) == typed(want)
    if entry["file"] != "duplicate-field.bin":  # fields come in wire order
        assert list(d.fields) == [wire.field_name(r.id) for r in wire.walk(data)]


def test_an_unknown_field_in_the_middle_keeps_its_wire_position() -> None:
    d = wire.decode((BAD / "unknown-field-middle.bin").read_bytes())
    assert list(d.fields) == ["hostname", "process_group", "id4242", "shutdown_reason",
                              "active_requests_at_decision"]


def test_a_repeated_field_keeps_its_last_value() -> None:
    data = (BAD / "duplicate-field.bin").read_bytes()
    assert [r.id for r in wire.walk(data)].count(133) == 2
    assert wire.decode(data).fields["active_requests_at_decision"] == 7


@pytest.mark.parametrize("entry", entries_of("policy"))
def test_another_protocol_version_is_rejected_as_unsupported(entry: dict[str, Any]) -> None:
    data = read_bad(entry)
    with pytest.raises(UnsupportedVersion, match="unsupported version") as caught:
        wire.decode(data)
    assert isinstance(caught.value, DecodeError)
    assert isinstance(caught.value.offset, int)
    assert caught.value.pid == STOPPING["pid"]


# -- the layout cache never reads a datagram through the wrong layout ---------------------

def stopping(hostname: str, group: str, **extra: Any) -> bytes:
    fields = {"hostname": hostname, "process_group": group, "shutdown_reason": "maximum_requests",
              "active_requests_at_decision": 3, **extra}
    return wire.encode(6, 4242, 9, 1.5, fields)


def test_two_layouts_of_one_kind_and_length_decode_correctly_in_alternation() -> None:
    a, b = stopping("vm", "second"), stopping("vmvm", "seco")
    assert len(a) == len(b) and wire.walk(a) != wire.walk(b)
    for _ in range(3):
        assert wire.decode(a).fields["hostname"] == "vm"
        assert wire.decode(a).fields["process_group"] == "second"
        assert wire.decode(b).fields["hostname"] == "vmvm"
        assert wire.decode(b).fields["process_group"] == "seco"


def test_more_same_length_layouts_than_the_cache_keeps_per_length_all_decode_correctly() -> None:
    datagrams = [stopping("h" * n, "g" * (9 - n)) for n in range(1, 9)]
    assert len({len(d) for d in datagrams}) == 1
    for _ in range(3):
        for n, data in enumerate(datagrams, start=1):
            fields = wire.decode(data).fields
            assert (fields["hostname"], fields["process_group"]) == ("h" * n, "g" * (9 - n))


def test_same_length_datagrams_with_fields_in_another_order_decode_in_their_own_order() -> None:
    first = wire.encode(6, 1, 1, 0.0, {"hostname": "vm", "process_group": "second"})
    swapped = wire.encode(6, 1, 1, 0.0, {"process_group": "second", "hostname": "vm"})
    for _ in range(2):
        assert list(wire.decode(first).fields) == ["hostname", "process_group"]
        assert list(wire.decode(swapped).fields) == ["process_group", "hostname"]


@pytest.mark.parametrize("tag", [Tag.F64, Tag.I64])
def test_a_changed_type_tag_after_a_cached_layout_is_rejected_naming_the_field(tag: Tag) -> None:
    data = stopping("vm", "second", active_requests_at_decision=7)
    wire.decode(data)
    wire.decode(data)  # the layout is compiled now
    tag_at = wire.walk(data)[-1].offset + 2
    changed = data[:tag_at] + bytes([tag]) + data[tag_at + 1:]
    with pytest.raises(DecodeError, match=r"field 133 \(active_requests_at_decision\): type") as caught:
        wire.decode(changed)
    assert caught.value.offset == tag_at - 2 and caught.value.pid == 4242
    assert wire.decode(data).fields["active_requests_at_decision"] == 7


def head_byte_mutants(data: bytes) -> list[bytes]:
    """Same-length copies of ``data`` with one byte of one record header (id, tag, length) changed."""
    mutants = []
    for record in wire.walk(data):
        head = 3 if record.count is None else 5
        for at in range(record.offset, record.offset + head):
            is_tag = at == record.offset + 2  # a tag gets every defined tag and two undefined ones
            values = {*range(8), 0xFF} if is_tag else {data[at] ^ 0x01, data[at] ^ 0x80, 0x00, 0xFF}
            mutants += [data[:at] + bytes([new]) + data[at + 1:] for new in sorted(values - {data[at]})]
    return mutants


LAYOUT_VECTORS = ["01-", "03-", "05-", "11-", "14-", "25-", "44-", "56-", "61-"]


@pytest.mark.parametrize("prefix", LAYOUT_VECTORS)
def test_a_record_header_change_after_a_cached_layout_is_rewalked_or_rejected_never_misread(
    prefix: str,
) -> None:
    original = read_vector(next(e for e in ENTRIES if e["file"].startswith(prefix)))
    expected = canonical(wire.decode(original))
    outcomes = {"accepted": 0, "rejected": 0}
    for mutant in head_byte_mutants(original):
        assert canonical(wire.decode(original)) == expected  # the layout is cached now
        try:
            want = reference_decode(mutant)
        except Rejected:
            with pytest.raises(DecodeError):
                wire.decode(mutant)
            outcomes["rejected"] += 1
        else:
            assert canonical(wire.decode(mutant)) == want, mutant.hex()
            outcomes["accepted"] += 1
    assert outcomes["accepted"] and outcomes["rejected"]


def test_decoding_stays_correct_after_the_cache_fills_up_and_is_cleared() -> None:
    datagrams = [wire.encode(6, 7, n, 0.0, {"hostname": "x" * (n % 200), "id999": n}) for n in range(2100)]
    for n, data in enumerate(datagrams):
        assert wire.decode(data).fields["id999"] == n
    assert wire.decode(datagrams[1]).fields["hostname"] == "x"


# -- encoding, display and JSON ---------------------------------------------------------------

@pytest.mark.parametrize("entry", ENTRIES, ids=vector_id)
def test_encoding_a_decoded_vector_gives_back_its_exact_bytes(entry: dict[str, Any]) -> None:
    data = read_vector(entry)
    assert wire.encode_datagram(wire.decode(data)) == data


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_encoding_every_decoded_raw_datagram_gives_back_its_exact_bytes(scenario: str) -> None:
    different = [n for n, data in enumerate(raw_datagrams(scenario), start=1)
                 if wire.encode_datagram(wire.decode(data)) != data]
    assert different == []


def test_encoding_a_decoded_odd_datagram_gives_back_its_exact_bytes() -> None:
    for name in ("unknown-field-u64.bin", "unknown-field-bytes.bin", "unknown-field-middle.bin",
                 "unknown-kind.bin", "nonzero-flags.bin", "header-only.bin"):
        data = (BAD / name).read_bytes()
        assert wire.encode_datagram(wire.decode(data)) == data, name


def test_display_of_a_non_utf8_path_is_a_safe_str_with_backslash_escapes() -> None:
    d = wire.decode(read_vector(next(e for e in ENTRIES if e["file"].startswith("61-"))))
    shown = wire.display(d.fields["slow_path_info"])
    assert isinstance(shown, str)
    assert shown == "/café/\\xff"
    assert shown.encode("utf-8").decode("utf-8") == shown  # no lone surrogates
    assert wire.display(d.fields["slow_user_agent"]) == "Agent/ünï"


def test_display_of_an_array_is_its_list_of_values() -> None:
    d = wire.decode(read_vector(next(e for e in ENTRIES if e["file"].startswith("03-"))))
    assert wire.display(d.fields["request_threads_completed"]) == "[0, 0, 0, 0]"


@pytest.mark.parametrize("entry", ENTRIES, ids=vector_id)
def test_to_json_of_a_vector_is_strict_json_with_the_recorded_values(entry: dict[str, Any]) -> None:
    out = json.loads(json.dumps(wire.to_json(wire.decode(read_vector(entry))), allow_nan=False))
    want = {k: entry[k] for k in ("kind", "kind_name", "pid", "seq", "stamp", "size", "fields")}
    assert typed(out) == typed(want)


def test_to_json_of_every_accepted_odd_datagram_is_strict_json() -> None:
    for entry in BAD_ENTRIES:
        if entry["expect"] == "accept":
            json.dumps(wire.to_json(wire.decode(read_bad(entry))), allow_nan=False)


def test_to_json_writes_a_non_finite_field_value_as_text() -> None:
    # The decoder refuses such values; dump still shows a datagram built by hand.
    d = wire.Datagram(1, 2, 0, 1, 1, 0.0, {"sample_period": float("inf"), "request_time": float("nan")}, 24)
    assert json.loads(json.dumps(wire.to_json(d), allow_nan=False))["fields"] == {
        "sample_period": "inf", "request_time": "nan"}


def test_to_json_of_an_array_holding_nan_is_strict_json() -> None:
    d = wire.Datagram(1, 2, 0, 1, 1, 0.0, {"request_threads_busy_time": array("d", [float("nan"), 1.0])}, 24)
    assert json.loads(json.dumps(wire.to_json(d), allow_nan=False))["fields"] == {
        "request_threads_busy_time": ["nan", 1.0]}


def test_a_datagram_with_an_infinite_stamp_is_rejected() -> None:
    data = bytes.fromhex("57534749010600000100000001000000000000000000f07f")
    with pytest.raises(DecodeError, match="header stamp inf is not a time"):
        wire.decode(data)


