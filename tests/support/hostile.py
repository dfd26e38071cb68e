"""Hostile telemetry for the whole-path fuzz (bench/fuzz_pipeline.py and its test).

Why crafted cases next to random mutation: mutating real datagrams finds
what nobody thought of, but it reaches a given field with a given wrong
type only by luck. So every field of the table (``ingest.model.fields.FIELDS``)
is also re-encoded with every wrong wire type and with the values the
table forbids (NaN, inf, 2**64-1, negative counts, non-UTF-8 text,
over-long strings, wrong array lengths), and with the extreme values it
allows, each twice: alone after a header, and in place of its record in a
real captured datagram of its kind (so the breach comes from a real
process, in a layout the agent has already compiled).

The expected fate of every datagram is decided here by ``ingest.pipeline.wire.decode``
itself (``Expectation``): the agent must then count exactly as many decoded
and malformed datagrams, whatever its layout cache did in between. A
rejection is tallied by the kind of breach its ``DecodeError`` names.
"""

from __future__ import annotations

import math
import re
import struct
import threading
import traceback
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ingest.model.fields import (
    BY_NAME,
    FIELDS,
    FLOAT_LIMIT,
    MAX_SLOTS,
    MAX_UNKNOWN_BYTES,
    U64_LIMIT,
    Field,
    Kind,
    Tag,
)
from ingest.pipeline import capture, wire
from support.paths import RAW

#: ``wire.decode`` keeps a module-wide layout cache: the sender and the clean feed decode
#: from two threads, one at a time.
DECODE_LOCK = threading.Lock()
#: What the agent reads of a datagram at most (its recv buffer): a longer one arrives cut.
RECV_LIMIT = wire.MAX_DATAGRAM
#: One plausible value of each wire type, to re-encode a field with a type it does not have.
VALUE_OF_TAG: dict[Tag, Any] = {
    Tag.U64: 1, Tag.F64: 1.0, Tag.I64: -1, Tag.BYTES: b"x", Tag.I32_ARRAY: [1], Tag.F64_ARRAY: [1.0],
}
XSS = "<img src=x onerror=alert(1)>"
_STAMP = struct.Struct("<d")
_WIDTH = {Tag.I32_ARRAY: 4, Tag.F64_ARRAY: 8}


class Case(NamedTuple):
    """One crafted datagram and what it is (for the findings when it breaks something)."""

    label: str
    data: bytes


# -- seeds -------------------------------------------------------------------------------


def capture_seeds() -> list[tuple[str, bytes]]:
    """Every datagram of the real captures (tests/data/wire-vectors/raw), with its capture's name."""
    seeds = []
    for path in sorted(RAW.glob("*.dgrams.gz")):
        seeds += [(path.name.split(".")[0], data) for data in capture.read(str(path))]
    return seeds


def restamp(seeds: list[tuple[str, bytes]], now: float) -> list[bytes]:
    """The seeds with header stamps moved so that each capture ends at ``now``.

    The captures are days old; restamped, their samples land in the windows
    the tabs read (300 s of raw data), spread over the minutes they spanned.
    """
    last: dict[str, float] = {}
    for name, data in seeds:
        last[name] = max(last.get(name, 0.0), _STAMP.unpack_from(data, 16)[0])
    out = []
    for name, data in seeds:
        stamp = _STAMP.unpack_from(data, 16)[0] + now - last[name]
        out.append(data[:16] + _STAMP.pack(round(stamp, 6)) + data[24:])
    return out


# -- crafted cases -----------------------------------------------------------------------


def hostile_values(f: Field) -> list[Any]:
    """Values of the field's own wire type that its table entry forbids."""
    if f.tag == Tag.U64:
        return [2**64 - 1, 2**63, U64_LIMIT + 1]
    if f.tag == Tag.F64:
        values = [math.nan, -math.nan, math.inf, -math.inf, 1e300, -1e300, FLOAT_LIMIT, -FLOAT_LIMIT]
        return values + ([f.high * 2, -1.0] if f.high != FLOAT_LIMIT else [])
    if f.tag == Tag.BYTES:
        values: list[Any] = [b"a" * (int(f.high) + 1), b"b" * 60_000]
        if f.text:
            values += [b"caf\xc3\xa9\xff", b"\xed\xa0\x80", b"\xc0\x80", b"\xff" * int(f.high)]
        return values
    low, high = int(f.low), int(f.high)
    if f.tag == Tag.I32_ARRAY:
        values = [[0] * (low - 1) + [-1], [-2**31] * low, [0] * (high + 1), [0] * 4096]
        return values + ([[0] * (low - 1)] if low > 1 else [[]])
    return [[0.0] * (low - 1) + [math.nan], [math.inf] * low, [-1e300] * low, [0.0] * (MAX_SLOTS + 1), []]


def edge_values(f: Field) -> list[Any]:
    """Extreme values the table allows: they must pass the agent and not trouble the console."""
    if f.tag == Tag.U64:
        return [0, U64_LIMIT, 2**32]
    if f.tag == Tag.F64:
        top = f.high if f.high != FLOAT_LIMIT else FLOAT_LIMIT * 0.999
        return [-top if f.low == -FLOAT_LIMIT else f.low, top, -0.0, 5e-324]
    if f.tag == Tag.BYTES:
        high = int(f.high)
        texts = ["", XSS[:high], "\u202egroup\u0000\t\n", "é" * (high // 2), "x" * high]
        return [t.encode() for t in texts] + ([b"\xff\xfe/\x00"] if not f.text else [])
    low, high = int(f.low), int(f.high)
    if f.tag == Tag.I32_ARRAY:
        return [[2**31 - 1] * low, [0] * high] if low != high else [[2**31 - 1] * low]
    return [[FLOAT_LIMIT * 0.999] * low, [0.0] * high, [5e-324] * low]


def record_end(data: bytes, rec: wire.Record) -> int:
    """Where a walked record ends."""
    if rec.count is None:
        return rec.offset + 11
    size = rec.count if rec.tag == Tag.BYTES else rec.count * _WIDTH[Tag(rec.tag)]
    return rec.offset + 5 + size


class Placer:
    """Puts one record into real datagrams: in place of the field's own record, else appended."""

    def __init__(self, seeds: Iterable[bytes]):
        self.by_kind: dict[int, list[tuple[bytes, list[wire.Record]]]] = {}
        self.by_field: dict[int, list[tuple[bytes, list[wire.Record]]]] = {}
        for data in seeds:
            try:
                records = wire.walk(data)
            except wire.DecodeError:
                continue
            self.by_kind.setdefault(data[5], []).append((data, records))
            for fid in {r.id for r in records}:
                self.by_field.setdefault(fid, []).append((data, records))
        self.turn = 0

    def embed(self, f: Field, encoded: bytes) -> bytes:
        having = self.by_field.get(f.id) or [c for kind in f.kinds for c in self.by_kind.get(kind, [])]
        self.turn += 1
        data, records = having[self.turn % len(having)]
        rec = next((r for r in records if r.id == f.id), None)
        if rec is None:
            return data + encoded
        return data[:rec.offset] + encoded + data[record_end(data, rec):]


def lone(kind: int, pid: int, seq: int, stamp: float, *records: bytes) -> bytes:
    return wire.encode(kind, pid, seq, stamp, {}) + b"".join(records)


def crafted_cases(seeds: list[bytes], stamp: float, pid: int = 4242) -> list[Case]:
    """Every field x every wrong type, every forbidden and every extreme value, each alone and
    inside a real datagram; plus whole-datagram oddities (empty, header only, over the agent's
    receive buffer, a flood of unknown fields)."""
    placer = Placer(seeds)
    cases: list[Case] = []
    seq = 0

    def add(label: str, f: Field, encoded: bytes) -> None:
        nonlocal seq
        seq += 1
        cases.append(Case(f"{label} alone", lone(f.kinds[0], pid, seq, stamp, encoded)))
        cases.append(Case(f"{label} in a real datagram", placer.embed(f, encoded)))

    for f in FIELDS:
        for tag in Tag:
            if tag != f.tag:
                add(f"{f.name} as {tag.name}", f, wire.encode_record(f.id, tag, VALUE_OF_TAG[tag]))
        for value in hostile_values(f):
            add(f"{f.name} = {_short(value)}", f, wire.encode_record(f.id, f.tag, value))
        for value in edge_values(f):
            add(f"{f.name} = {_short(value)} (allowed)", f, wire.encode_record(f.id, f.tag, value))
    tick = BY_NAME["request_count"]
    cases += [
        Case("empty datagram", b""),
        Case("header only", lone(int(Kind.REQUEST_METRICS), pid, seq + 1, stamp)),
        Case("70,000 bytes: cut by the agent's receive buffer",
             placer.embed(tick, wire.encode_record(tick.id, Tag.U64, 1))
             + wire.encode_record(1999, Tag.BYTES, b"z" * 65_000) + b"\x00" * 4000),
        Case("unknown fields over their bound", lone(6, pid, seq + 2, stamp, *(
            wire.encode_record(1000 + n, Tag.U64, n) for n in range(2000)))),
        Case("unknown bytes over their bound", lone(6, pid, seq + 3, stamp,
                                                     wire.encode_record(1000, Tag.BYTES,
                                                                        b"u" * (MAX_UNKNOWN_BYTES + 1)))),
    ]
    return cases


def _short(value: Any) -> str:
    if isinstance(value, bytes | list):
        head = value[:8]
        return f"{head!r}{'...' if len(value) > 8 else ''} ({len(value)} items)"
    return repr(value)


# -- the expected fate of a datagram --------------------------------------------------------

#: (pattern on DecodeError.problem, kind of breach), first match wins.
BREACHES = [
    (r"^datagram too short", "too short for a header"),
    (r"^bad magic", "bad magic"),
    (r"^unsupported version", "unsupported version"),
    (r"^header stamp", "header stamp not a time"),
    (r"^truncated TLV header", "truncated record header"),
    (r"truncated length$", "truncated length"),
    (r"unknown type tag", "unknown type tag"),
    (r"value needs \d+ bytes", "value past the end"),
    (r"unknown fields", "too many unknown fields"),
    (r"^field (id)?\d+ \(id\d+\)", "unknown field value out of bounds"),
    (r"the field table says", "wrong wire type"),
    (r"bytes, at most", "too long"),
    (r"items, expected", "wrong array length"),
    (r"slot|threads but", "slot arrays disagree"),
    (r"expected an integer", "integer out of bounds"),
    (r"expected a finite number", "float not finite or out of bounds"),
    (r"UTF-8", "text not UTF-8"),
    (r"must be counts", "count array item negative or huge"),
    (r"must be finite", "float array item not finite"),
]


def breach_kind(exc: wire.DecodeError) -> str:
    """A short name for what a rejected datagram breached, for the figures."""
    for pattern, kind in BREACHES:
        if re.search(pattern, exc.problem):
            return kind
    return "other: " + re.sub(r"\d+", "N", exc.problem)[:60]


@dataclass
class Expectation:
    """What the agent must count: every datagram sent, decoded by ``wire.decode`` here first."""

    sent: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    crashes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, data: bytes, label: str = "") -> wire.Datagram | None:
        self.sent += 1
        with DECODE_LOCK:
            try:
                decoded = wire.decode(data[:RECV_LIMIT])
            except wire.DecodeError as exc:
                self.rejected[breach_kind(exc)] += 1
                return None
            except Exception as exc:  # the decoder's bug: DecodeError is its contract
                self.rejected["decoder crash"] += 1
                if len(self.crashes) < 10:
                    self.crashes.append({"label": label, "error": f"{type(exc).__name__}: {exc}",
                                         "traceback": traceback.format_exc(), "hex": data.hex()})
                return None
        self.accepted += 1
        return decoded

    @property
    def malformed(self) -> int:
        return sum(self.rejected.values())


# -- valid datagrams -------------------------------------------------------------------------


def busy_tick(seeds: Iterable[bytes]) -> wire.Datagram:
    """A real tick with requests, to build valid datagrams from."""
    for data in seeds:
        if data[5] == Kind.REQUEST_METRICS:
            d = wire.decode(data)
            if d.fields.get("request_count") and d.fields.get("process_group"):
                return d
    raise LookupError("no busy tick in the captures")


def valid_tick(template: wire.Datagram, *, pid: int, seq: int, stamp: float, group: str,
               requests: int) -> bytes:
    """``template`` as process ``pid`` of ``group`` with ``requests`` requests, all 2xx."""
    fields = dict(template.fields, process_group=group, request_count=requests)
    fields.update({f"status_{c}xx_total": 0 for c in range(1, 6)}, status_2xx_total=requests)
    data = wire.encode(int(Kind.REQUEST_METRICS), pid, seq, stamp, fields)
    with DECODE_LOCK:
        wire.decode(data)  # a valid datagram, or this raises
    return data


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
