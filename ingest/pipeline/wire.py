"""Decode and encode mod_wsgi 6.1 telemetry datagrams.

A datagram is a 24-byte header (magic ``WSGI``, version, kind, flags, pid,
seq, stamp) followed by TLV records up to its last byte: ``field id u16``,
``type tag u8``, a ``u16`` length or element count for variable types, then
the value. Field names come from :mod:`ingest.model.fields`.

Why the layout cache: one mod_wsgi process sends the same record layout
tick after tick (same fields, same string lengths, same slot count). The
first datagram of a layout is walked record by record; the walk is then
compiled into one ``struct`` format plus a generated function that builds
the field dict. Later datagrams of that layout decode with a single
``unpack_from`` and one tuple comparison that proves every id, tag and
length is where the layout says, so a hostile or changed datagram can
never be read through the wrong layout.

The field table is the contract (``contract``): a known field must carry
its table type and length, text must be UTF-8, floats finite and bounded,
counts non-negative; unknown ids pass, within a bound on their number and
size. Types and lengths are checked by the walk, so a compiled layout
inherits them; values are checked per datagram by a few expressions the
layout compiles too (see ``_Layout``), and a datagram that fails them is
decoded once more the precise way, which names the field and its offset.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, NamedTuple

from ..model import contract
from ..model.fields import (
    BY_ID,
    BY_NAME,
    FLOAT_LIMIT,
    MAX_SLOTS,
    MAX_UNKNOWN_BYTES,
    MAX_UNKNOWN_FIELDS,
    SLOT_FIELDS,
    STAMP_LIMIT,
    U64_LIMIT,
    Tag,
    field_name,
    kind_name,
)

MAGIC = b"WSGI"
VERSION = 1
HEADER = struct.Struct("<4sBBHIId")
HEADER_SIZE = HEADER.size  # 24
MAX_DATAGRAM = 65536
U32_MAX = 0xFFFFFFFF

_TLV = struct.Struct("<HB")
_U16 = struct.Struct("<H")
_FIXED = {Tag.U64: "Q", Tag.F64: "d", Tag.I64: "q"}
_ARRAY = {Tag.I32_ARRAY: ("i", 4), Tag.F64_ARRAY: ("d", 8)}
_TAGS = {int(t): t for t in Tag}
_BIG_ENDIAN = sys.byteorder == "big"
_ARRAY_MAKER = "_array" if _BIG_ENDIAN else "array"  # wire order is little-endian

Value = int | float | str | bytes | array


class DecodeError(ValueError):
    """A datagram that cannot be decoded; names the problem and the offset.

    ``pid`` is set when the header was readable, so the loss can be
    counted against the process that sent it.
    """

    def __init__(self, problem: str, offset: int | None = None, pid: int | None = None):
        self.problem = problem
        self.offset = offset
        self.pid = pid
        where = f" at offset {offset}" if offset is not None else ""
        super().__init__(f"{problem}{where}")


class UnsupportedVersion(DecodeError):
    """A header version other than 1: a new version may change the layout."""


@dataclass(slots=True)
class Datagram:
    version: int
    kind: int
    flags: int
    pid: int
    seq: int
    stamp: float
    fields: dict[str, Value]
    size: int

    @property
    def kind_name(self) -> str:
        return kind_name(self.kind)


class Record(NamedTuple):
    """One TLV record as found on the wire (``count`` is None for fixed tags)."""

    id: int
    tag: int
    count: int | None  # type: ignore[assignment]  # shadows tuple.count, which nobody calls on a Record
    offset: int


def text(raw: bytes) -> str | bytes:
    """UTF-8 text stays text; anything else keeps its exact bytes."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


def _array(code: str, raw: bytes) -> array:
    values = array(code, raw)
    if _BIG_ENDIAN:
        values.byteswap()
    return values


def display(value: Any) -> str:
    """A printable form of a field value that never hides or invents bytes."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, array):
        return str(value.tolist())
    return str(value)


def jsonable(value: Any) -> Any:
    """The JSON convention of tests/data/wire-vectors/vectors.jsonl: bytes become ``{"hex": ...}``."""
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, array):
        values = value.tolist()
        if value.typecode == "d" and not all(map(math.isfinite, values)):
            return [v if math.isfinite(v) else repr(v) for v in values]
        return values
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


# -- header ------------------------------------------------------------------

def _header(data: bytes) -> tuple[int, int, int, int, int, float]:
    if len(data) < HEADER_SIZE:
        raise DecodeError(f"datagram too short: {len(data)} bytes, header needs {HEADER_SIZE}", 0)
    magic, version, kind, flags, pid, seq, stamp = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise DecodeError(f"bad magic {magic!r}, expected {MAGIC!r}", 0)
    if version != VERSION:
        raise UnsupportedVersion(f"unsupported version {version} (this decoder reads {VERSION})", 4, pid)
    if not 0 <= stamp < STAMP_LIMIT:  # also NaN
        raise DecodeError(f"header stamp {stamp!r} is not a time (epoch seconds below 2^33)", 16, pid)
    return version, kind, flags, pid, seq, stamp


# -- the record walk (first sighting of a layout, and the reference path) ----

def walk(data: bytes, start: int = HEADER_SIZE, pid: int | None = None) -> list[Record]:
    """Walk the TLV records of ``data`` from ``start`` to its exact end."""
    end = len(data)
    records = []
    pos = start
    unknown = unknown_bytes = 0
    slots: int | None = None
    while pos < end:
        if end - pos < _TLV.size:
            raise DecodeError(f"truncated TLV header: {end - pos} stray byte(s)", pos, pid)
        fid, tag = _TLV.unpack_from(data, pos)
        at = pos
        pos += _TLV.size
        if tag in _FIXED:
            count, size = None, 8
        elif tag == Tag.BYTES or tag in _ARRAY:
            if end - pos < 2:
                raise DecodeError(f"field {fid}: truncated length", pos, pid)
            (count,) = _U16.unpack_from(data, pos)
            pos += 2
            size = count if tag == Tag.BYTES else count * _ARRAY[tag][1]
        else:
            raise DecodeError(f"field {fid}: unknown type tag 0x{tag:02x}", at + 2, pid)
        if end - pos < size:
            raise DecodeError(
                f"field {fid} ({_TAGS[tag].name}): value needs {size} bytes, {end - pos} left", pos, pid
            )
        pos += size
        field = BY_ID.get(fid)
        if field is None:
            unknown, unknown_bytes = unknown + 1, unknown_bytes + size
            if unknown > MAX_UNKNOWN_FIELDS or unknown_bytes > MAX_UNKNOWN_BYTES:
                raise DecodeError(f"field {fid}: over the bound of {MAX_UNKNOWN_FIELDS} unknown fields "
                                  f"and {MAX_UNKNOWN_BYTES} bytes of them", at, pid)
        else:
            problem = contract.record_problem(field, tag, count)
            if problem is None and field.name in SLOT_FIELDS:
                if slots is not None and count != slots:
                    problem = f"{count} slots where an earlier slot array has {slots}"
                slots = count
            if problem is not None:
                raise DecodeError(f"field {fid} ({field.name}): {problem}", at, pid)
        records.append(Record(fid, tag, count, at))
    return records


# -- compiled layouts ----------------------------------------------------------

#: Every float's top byte (sign and high exponent bits) mapped to 0x80 when
#: the float is not finite or not below FLOAT_LIMIT (2**49: exponent > 1071),
#: so ``raw[7::8].translate(_FLOAT_TOP).isascii()`` checks a whole F64 array in C.
_FLOAT_TOP = bytes(0x80 if (b & 0x7F) > (1023 + 48) >> 4 else 0 for b in range(256))
_SUSPECT: Any = object()  # a value check failed: decode the precise way, which names the field


class _Layout:
    """One record layout compiled to a struct format and a dict builder.

    Each record's header (id, tag and, for variable types, the length) is
    unpacked as one short bytes item and compared as a whole with the header
    the layout was built from; arrays are unpacked as raw bytes and turned
    into compact ``array.array`` values, far cheaper than one int per slot.

    The builder first checks the values in a handful of C-speed expressions:
    the sum of ``abs`` of all floats is below FLOAT_LIMIT only if each is
    (NaN fails any comparison); the OR of all U64s is at most U64_LIMIT only
    if each is; a negative I32 has its top byte's high bit set. Any failure,
    or text that is not UTF-8, returns ``_SUSPECT``.
    """

    __slots__ = ("build", "expected", "shape", "struct")

    def __init__(self, records: Iterable[Record]):
        fmt = ["<"]
        shape_positions: list[int] = []
        expected: list[bytes] = []
        body: list[str] = []
        floats: list[str] = []
        checks: list[str] = []
        ints: list[str] = []
        slots = threads = None
        for rec in records:
            tag = _TAGS[rec.tag]
            head = _TLV.pack(rec.id, rec.tag)
            if tag in _FIXED:
                fmt.append(f"3s{_FIXED[tag]}")
            else:
                head += _U16.pack(rec.count)
                # operator: count is None only for the fixed tags, handled above
                size = rec.count if tag == Tag.BYTES else rec.count * _ARRAY[tag][1]  # type: ignore[operator]
                fmt.append(f"5s{size}s")
            pos = 2 * len(expected)
            shape_positions.append(pos)
            expected.append(head)
            u = f"u[{pos + 1}]"
            field = BY_ID.get(rec.id)
            if tag in _FIXED:
                value = u
            elif tag == Tag.BYTES:
                value = f"{u}.decode()"
            else:
                value = f"{_ARRAY_MAKER}({_ARRAY[tag][0]!r}, {u})"
            if tag == Tag.F64:
                floats.append(f"abs({u})")
                if field is not None and field.high != FLOAT_LIMIT:
                    checks.append(f"{field.low!r} <= {u} <= {field.high!r}")
            elif tag == Tag.F64_ARRAY:
                checks.append(f"{u}[7::8].translate(_FLOAT_TOP).isascii()")
            elif field is not None and tag == Tag.U64:
                ints.append(u)
                threads = u if field.name == "request_threads_maximum" else threads
            elif field is not None and tag == Tag.I32_ARRAY:
                checks.append(f"{u}[3::4].isascii()")
            if field is not None and field.name in SLOT_FIELDS:
                slots = rec.count
            body.append(f"{field_name(rec.id)!r}: {value}")
        if floats:
            checks.append(f"{' + '.join(floats)} < {FLOAT_LIMIT!r}")
        if ints:
            checks.append(f"({' | '.join(ints)}) <= {U64_LIMIT}")
        if threads and slots is not None:
            checks.append(f"min({threads}, {MAX_SLOTS}) == {slots}")
        self.struct = struct.Struct("".join(fmt))
        self.shape = itemgetter(*shape_positions, 0)  # always a tuple, even for one record
        self.expected = (*expected, expected[0])
        source = (
            "def build(u):\n"
            f"    if not ({' and '.join(checks) or 'True'}):\n        return _SUSPECT\n"
            "    try:\n        return {" + ", ".join(body) + "}\n"
            "    except UnicodeDecodeError:\n        return _SUSPECT\n"
        )
        namespace: dict[str, Any] = {"_array": _array, "array": array, "_FLOAT_TOP": _FLOAT_TOP,
                                     "_SUSPECT": _SUSPECT}
        exec(compile(source, "<wire layout>", "exec"), namespace)  # noqa: S102 - generated above
        self.build: Callable[[tuple], dict[str, Value]] = namespace["build"]

    def decode(self, data: bytes) -> dict[str, Value] | None:
        """The fields if ``data`` really has this layout (``_SUSPECT`` if a value fails), else None."""
        u = self.struct.unpack_from(data, HEADER_SIZE)
        if self.shape(u) != self.expected:
            return None
        return self.build(u)


_cache: dict[tuple[int, int], list[_Layout]] = {}
_CACHE_KEYS = 2048
_LAYOUTS_PER_KEY = 4
#: Layouts walked once and not compiled yet. Compiling costs ~0.5 ms with
#: the GIL held, long enough to overflow the kernel's 10-datagram queue, so
#: a layout is only compiled once it comes a second time: one-offs (a slow
#: request with a URL of a new length) are simply walked.
_seen_once: set[tuple[Record, ...]] = set()


def _read_records(data: bytes, records: list[Record], pid: int) -> dict[str, Value]:
    """Field values straight from a walk, checked against the table (the precise path)."""
    fields: dict[str, Value] = {}
    for rec in records:
        tag = _TAGS[rec.tag]
        start = rec.offset + 3
        if tag in _FIXED:
            value: Value = struct.unpack_from("<" + _FIXED[tag], data, start)[0]
        elif tag == Tag.BYTES:  # operator (below): count is None only for the fixed tags
            value = text(data[start + 2:start + 2 + rec.count])  # type: ignore[operator]
        else:
            code, width = _ARRAY[tag]
            value = _array(code, data[start + 2:start + 2 + rec.count * width])  # type: ignore[operator]
        fields[field_name(rec.id)] = value
    breach = contract.fields_problem(fields)
    if breach is not None:
        at = next((r.offset for r in reversed(records) if field_name(r.id) == breach.field), HEADER_SIZE)
        raise DecodeError(f"field {BY_NAME[breach.field].id if breach.field in BY_NAME else breach.field} "
                          f"({breach.field}): {breach.problem}", at, pid)
    return fields


def decode(data: bytes) -> Datagram:
    """Decode one datagram; raise :class:`DecodeError` for anything malformed."""
    version, kind, flags, pid, seq, stamp = _header(data)
    size = len(data)
    if size == HEADER_SIZE:
        return Datagram(version, kind, flags, pid, seq, stamp, {}, size)
    key = (kind, size)
    layouts = _cache.get(key)
    if layouts:
        for layout in layouts:
            fields = layout.decode(data)
            if fields is _SUSPECT:
                break
            if fields is not None:
                return Datagram(version, kind, flags, pid, seq, stamp, fields, size)
        else:
            fields = None
        if fields is _SUSPECT:  # a value the fast check doubts: the precise path decides
            return Datagram(version, kind, flags, pid, seq, stamp,
                            _read_records(data, walk(data, pid=pid), pid), size)
    records = walk(data, pid=pid)
    shape = tuple(Record(r.id, r.tag, r.count, 0) for r in records)
    if shape not in _seen_once:
        if len(_seen_once) >= _CACHE_KEYS:
            _seen_once.clear()
        _seen_once.add(shape)
        return Datagram(version, kind, flags, pid, seq, stamp, _read_records(data, records, pid), size)
    _seen_once.discard(shape)
    fields = _read_records(data, records, pid)  # values checked before the layout is kept
    layout = _Layout(records)
    if layouts is None:
        if len(_cache) >= _CACHE_KEYS:
            _cache.clear()
        _cache[key] = [layout]
    else:
        if len(layouts) >= _LAYOUTS_PER_KEY:
            layouts.pop(0)
        layouts.append(layout)
    return Datagram(version, kind, flags, pid, seq, stamp, fields, size)


def peek_pid(data: bytes) -> int | None:
    """The sender's pid when the header is readable, for counting bad datagrams."""
    if len(data) >= HEADER_SIZE and data[:4] == MAGIC:
        return HEADER.unpack_from(data)[4]
    return None


# -- encoding (tests, simulate, fuzzing) ---------------------------------------

def _infer_tag(value: Any) -> Tag:
    if isinstance(value, bool | int):
        return Tag.U64 if value >= 0 else Tag.I64
    if isinstance(value, float):
        return Tag.F64
    if isinstance(value, str | bytes):
        return Tag.BYTES
    if isinstance(value, array):
        return Tag.F64_ARRAY if value.typecode == "d" else Tag.I32_ARRAY
    if isinstance(value, list | tuple):
        return Tag.F64_ARRAY if any(isinstance(v, float) for v in value) else Tag.I32_ARRAY
    raise TypeError(f"cannot encode {type(value).__name__}")


def _field_id(name: str, value: Any) -> tuple[int, Tag]:
    field = BY_NAME.get(name)
    if field is not None:
        return field.id, field.tag
    if name.startswith("id") and name[2:].isdigit():
        fid = int(name[2:])
        known = BY_ID.get(fid)
        return fid, known.tag if known else _infer_tag(value)
    raise KeyError(f"unknown field name {name!r}")


_FIXED_STRUCTS = {int(tag): struct.Struct("<HB" + code) for tag, code in _FIXED.items()}
_VAR_HEAD = struct.Struct("<HBH")


def encode_record(fid: int, tag: int, value: Any) -> bytes:
    """One TLV record; the tag decides the value's encoding."""
    fixed = _FIXED_STRUCTS.get(tag)
    if fixed is not None:
        return fixed.pack(fid, tag, value)
    if tag == Tag.BYTES:
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return _VAR_HEAD.pack(fid, tag, len(raw)) + raw
    code = _ARRAY[_TAGS[tag]][0]
    if isinstance(value, array) and value.typecode == code and not _BIG_ENDIAN:
        body = value.tobytes()
    else:
        body = struct.pack(f"<{len(value)}{code}", *value)
    return _VAR_HEAD.pack(fid, tag, len(value)) + body


_ids: dict[str, tuple[int, int]] = {f.name: (f.id, int(f.tag)) for f in BY_NAME.values()}


def encode(kind: int, pid: int, seq: int, stamp: float, fields: Mapping[str, Any],
           *, version: int = VERSION, flags: int = 0) -> bytes:
    """Build a datagram from named fields, in the mapping's order."""
    parts = [HEADER.pack(MAGIC, version, kind, flags, pid, seq, stamp)]
    append, ids = parts.append, _ids
    for name, value in fields.items():
        known = ids.get(name)
        fid, tag = known if known is not None else _field_id(name, value)
        append(encode_record(fid, tag, value))
    return b"".join(parts)


def encode_datagram(d: Datagram) -> bytes:
    return encode(d.kind, d.pid, d.seq, d.stamp, d.fields, version=d.version, flags=d.flags)


def to_json(d: Datagram) -> dict[str, Any]:
    """The dump/JSON form: header values plus fields as in vectors.jsonl."""
    return {
        "kind": d.kind,
        "kind_name": d.kind_name,
        "pid": d.pid,
        "seq": d.seq,
        "stamp": jsonable(d.stamp),
        "size": d.size,
        "fields": {name: jsonable(value) for name, value in d.fields.items()},
    }


__all__ = [
    "HEADER_SIZE", "MAGIC", "MAX_DATAGRAM", "VERSION", "Datagram", "DecodeError", "Record",
    "UnsupportedVersion", "decode", "display", "encode", "encode_datagram", "encode_record",
    "jsonable", "peek_pid", "text", "to_json", "walk",
]
