"""Raw samples as the window stores keep them: compact msgpack that restores exactly.

A busy tick is ~2.2 KB on the wire and would be ~2 KB as msgpack with
its field names; stored at full resolution for an hour, that is most of
the window's memory. So a stored sample is the array
``[k, p, i, s, t, g, n, {field id: value}]`` where

- field names are replaced by their numeric ids (1-2 bytes instead of ~18);
- a field the table marks *always present* for the sample's kind is left
  out when it is zero (zeros, empty strings, all-zero slot arrays): its
  absence can only mean zero, so ``unpack_sample`` puts it back;
- arrays that are mostly zeros (histograms, slot arrays of a process with
  many idle threads) are sparse ``{index: value}`` maps.

Fields that are *conditionally* present (queue/daemon times, min/max,
process group) are kept even when zero, because there absence means "not
measured", and that must survive the round trip.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from typing import Any

import msgpack

from ingest.model.fields import BY_ID, BY_NAME, FIELDS, HISTOGRAM_BUCKETS, MAX_SLOTS, Field, Kind, Tag
from ingest.model.sample import Sample

_ALWAYS: dict[int, tuple[Field, ...]] = {
    int(kind): tuple(f for f in FIELDS if f.presence == "always" and kind in f.kinds) for kind in Kind
}
#: per kind: field name -> (id, always present for that kind), for the hot path
_COMPACT = {kind: {f.name: (f.id, kind in f.kinds and f.presence == "always") for f in FIELDS}
            for kind in map(int, Kind)}
_COMPACT_ANY = {f.name: (f.id, False) for f in FIELDS}
_HISTOGRAMS = frozenset(f.name for f in FIELDS if f.name.endswith("_buckets"))
_FLOAT_ARRAYS = frozenset(f.name for f in FIELDS if f.tag == Tag.F64_ARRAY)


def _field_key(name: str) -> int | str:
    field = BY_NAME.get(name)
    if field is not None:
        return field.id
    if name.startswith("id") and name[2:].isdigit():
        return int(name[2:])  # an unknown id the decoder kept
    return name


def _field_name(key: int | str) -> str:
    if isinstance(key, int):
        field = BY_ID.get(key)
        return field.name if field else f"id{key}"
    return key


Array = list[Any] | tuple[Any, ...]


def _sparse(values: Array, expected: int) -> dict[int, Any] | Array:
    """``{index: value}`` of the non-zero entries when that is the smaller form.

    Histograms are mostly empty buckets, and a 128-slot process that runs
    four requests sends 124 zeros per slot array. Key -1 records a length
    other than the expected one (65 buckets, or one slot per thread up to 128).
    """
    nonzero = {i: v for i, v in enumerate(values) if v}
    if len(nonzero) * 2 > len(values):
        return values
    if len(values) != expected:
        nonzero[-1] = len(values)
    return nonzero


def _expected_length(name: str, fields: Mapping[str, Any]) -> int:
    if name in _HISTOGRAMS:
        return HISTOGRAM_BUCKETS
    return min(int(fields.get("request_threads_maximum") or 0), MAX_SLOTS)


def compact_fields(kind: int, fields: Mapping[str, Any]) -> dict[int | str, Any]:
    """The fields of a sample keyed by id, zeros of always-present fields left out."""
    table = _COMPACT.get(kind, _COMPACT_ANY)
    out: dict[int | str, Any] = {}
    for name, value in fields.items():
        entry = table.get(name)
        key, always = entry if entry is not None else (_field_key(name), False)
        kind_of = type(value)
        if kind_of in _SCALARS:  # most fields: checked first, by exact type (this runs per field)
            if always and not value and value is not False:
                continue
        elif kind_of is dict:  # already sparse (the agent's form): {index: value, -1: length}
            if always and len(value) <= 1:
                continue
            if value.get(-1) == _expected_length(name, fields):
                value = dict(value)
                del value[-1]
        elif isinstance(value, array | list | tuple):
            if always and not any(value):
                continue
            items = value.tolist() if isinstance(value, array) else value
            value = _sparse(items, _expected_length(name, fields))
        elif always and not value and value is not False:
            continue
        out[key] = value
    return out


_SCALARS = frozenset({int, float, str, bytes, bool})


def restore_fields(kind: int, packed: Mapping[int | str, Any]) -> dict[str, Any]:
    """Field names, dense arrays and the zeros ``compact_fields`` left out."""
    fields = {_field_name(key): value for key, value in packed.items()}
    for name, value in fields.items():
        if isinstance(value, dict):
            dense = [0.0 if name in _FLOAT_ARRAYS else 0] * value.pop(-1, _expected_length(name, fields))
            for index, item in value.items():
                dense[index] = item
            fields[name] = dense
    slots = _expected_length("", fields)
    for field in _ALWAYS.get(kind, ()):
        if field.name not in fields:
            fields[field.name] = _zero(field, slots)
    return fields


def _zero(field: Field, slots: int) -> Any:
    if field.tag == Tag.I32_ARRAY:
        return [0] * (HISTOGRAM_BUCKETS if field.name in _HISTOGRAMS else slots)
    if field.tag == Tag.F64_ARRAY:
        return [0.0] * slots
    if field.tag == Tag.F64:
        return 0.0
    if field.tag == Tag.BYTES:
        return ""
    return 0


def pack_sample(sample: Mapping[str, Any]) -> bytes:
    """The stored form of one sample (see the module docstring)."""
    kind = sample["k"]
    packed: bytes = msgpack.packb([kind, sample["p"], sample["i"], sample["s"], sample["t"], sample.get("g"),
                                   sample.get("n"), compact_fields(kind, sample["f"])])
    return packed


def _sample(packed: list[Any]) -> Sample:
    k, p, i, s, t, g, n, fields = packed
    return {"k": k, "p": p, "i": i, "s": s, "t": t, "g": g, "n": n, "f": restore_fields(k, fields)}


def unpack_sample(blob: bytes) -> Sample:
    """The sample ``pack_sample`` stored, as the agent sent it."""
    return _sample(msgpack.unpackb(blob, strict_map_key=False))


def unpack_samples(blobs: bytes) -> list[Sample]:
    """Every sample of concatenated ``pack_sample`` blobs (msgpack is self-delimiting)."""
    unpacker = msgpack.Unpacker(strict_map_key=False)
    unpacker.feed(blobs)
    return [_sample(packed) for packed in unpacker]
