"""The field table as a contract: what a value of each field may be, checked anywhere.

The decoder checks datagrams against the table (``wire``); the console
checks every sample an agent forwards against the same table before it
writes anything, because a token proves which host is talking, not that
its agent is ours or sane. Both report the first breach in words.

Samples travel in the agent's forwarded form (docs/agent-protocol.md):
text as ``str``, other bytes as ``bytes``, float arrays as lists and count
arrays as lists or sparse ``{index: count, -1: length}`` maps.

Why a generated checker: a busy tick has about a hundred fields and the
console checks every one of them. One field layout repeats tick after
tick, so its check is compiled once into a few summed expressions (the sum
of ``abs`` of every float is finite and below the limit only if each one
is; the bitwise OR of non-negative ints is at most 2**53-1 only if each one
is, and raises for anything that is not an int). Only a sample that fails
them takes the precise path, which names the field.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Mapping
from typing import Any, Final

from .fields import (
    BY_ID,
    BY_NAME,
    FLOAT_LIMIT,
    MAX_SLOTS,
    MAX_UNKNOWN_BYTES,
    MAX_UNKNOWN_FIELDS,
    SLOT_FIELDS,
    U64_LIMIT,
    Field,
    Tag,
)

I32_MAX: Final = 2**31 - 1
_NUMBERS = (int, float)


class Breach(ValueError):
    """A value the field table does not allow; ``field`` names it."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"field {field}: {problem}")


def _float_ok(value: Any, field: Field | None) -> bool:
    # A table float is a float (the decoder never makes anything else); array
    # items and unknown fields may be ints. Never a bool: msgpack's true is not a number in Lua.
    if (type(value) is not float) if field is not None else (type(value) not in _NUMBERS):
        return False
    if not abs(value) < FLOAT_LIMIT:  # also NaN
        return False
    return field is None or field.low <= value <= field.high


def _items(value: Any) -> tuple[list[Any], int] | None:
    """The items and the length of an array in any of its forms; None when not an array."""
    if isinstance(value, array | list | tuple):
        return list(value), len(value)
    if isinstance(value, dict):  # sparse: {index: item, -1: length}
        length = value.get(-1)
        if type(length) is not int or length < 0:
            raise Breach("?", "a sparse array needs its length under key -1")
        keys = [k for k in value if k != -1]
        if any(type(k) is not int or not 0 <= k < length for k in keys):
            raise Breach("?", f"sparse indexes must be integers below the length {length}")
        return [value[k] for k in keys], length
    return None


def value_problem(field: Field, value: Any) -> str | None:
    """Why ``value`` breaks ``field``'s entry in the table, or None when it does not."""
    tag = field.tag
    if tag == Tag.U64:
        if type(value) is not int or not field.low <= value <= field.high:
            return f"expected an integer 0 to 2^53-1 (U64), got {_show(value)}"
        return None
    if tag == Tag.F64:
        if not _float_ok(value, field):
            default = field.high == FLOAT_LIMIT
            bounds = "below 2^49 in magnitude" if default else f"{field.low:g} to {field.high:g}"
            return f"expected a finite number {bounds} (F64), got {_show(value)}"
        return None
    if tag == Tag.BYTES:
        if field.text and not isinstance(value, str):
            return f"expected UTF-8 text, got {_show(value)}"
        if not isinstance(value, str | bytes):
            return f"expected bytes, got {_show(value)}"
        if len(value) > field.high:
            return f"{len(value)} bytes, at most {field.high:g} allowed"
        return None
    try:
        found = _items(value)
    except Breach as exc:
        return exc.problem
    if found is None:
        return f"expected an array ({tag.name}), got {_show(value)}"
    items, length = found
    if not field.low <= length <= field.high:
        upper = "" if field.low == field.high else f"-{field.high:g}"
        return f"{length} items, expected {field.low:g}{upper}"
    if tag == Tag.I32_ARRAY:
        if not all(type(v) is int and 0 <= v <= I32_MAX for v in items):
            return "array items must be counts (integers 0 to 2^31-1)"
    elif not all(_float_ok(v, None) for v in items):
        return "array items must be finite numbers below 2^49 in magnitude"
    return None


def _unknown_problem(name: str, value: Any) -> str | None:
    # The decoder names an unknown id ``idN``; any other name, or the id of a
    # known field, would be stored as that field without its checks.
    digits = name[2:]
    if not (name.startswith("id") and digits.isdigit() and digits.isascii() and int(digits) < 65536
            and int(digits) not in BY_ID):
        return "not a field of the table, nor the idN name of an unknown field id"
    if isinstance(value, str | bytes):
        too_long = len(value) > MAX_UNKNOWN_BYTES
        return f"{len(value)} bytes, at most {MAX_UNKNOWN_BYTES} allowed" if too_long else None
    if type(value) is int:
        return None if -2**63 <= value < 2**64 else "integer out of the 64-bit range"
    if type(value) is bool:
        return "unexpected bool"
    if type(value) is float:
        return None if abs(value) < FLOAT_LIMIT else f"got {_show(value)}"
    if isinstance(value, array | list | tuple | dict):
        size = len(value)
        items = value.values() if isinstance(value, dict) else value
        if size * 8 > MAX_UNKNOWN_BYTES or not all(type(v) is int or _float_ok(v, None) for v in items):
            return "unknown arrays hold at most 512 finite numbers"
        return None
    return f"unexpected {type(value).__name__}"


def _show(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def record_problem(field: Field, tag: int, count: int | None) -> str | None:
    """What is wrong with a record's type or length (known before its value is read)."""
    if tag != field.tag:
        return f"type {Tag(tag).name}, the field table says {field.tag.name}"
    if count is None:
        return None
    if field.tag == Tag.BYTES:
        return f"{count} bytes, at most {field.high:g} allowed" if count > field.high else None
    if not field.low <= count <= field.high:
        upper = "" if field.low == field.high else f"-{field.high:g}"
        return f"{count} items, expected {field.low:g}{upper}"
    return None


def fields_problem(fields: Mapping[str, Any]) -> Breach | None:
    """The first breach of the table in a sample's fields (the precise path)."""
    unknown = 0
    slots: set[int] = set()
    for name, value in fields.items():
        field = BY_NAME.get(name)
        if field is None:
            unknown += 1
            problem = _unknown_problem(name, value)
            if unknown > MAX_UNKNOWN_FIELDS:
                problem = f"more than {MAX_UNKNOWN_FIELDS} unknown fields"
        else:
            problem = value_problem(field, value)
            if problem is None and name in SLOT_FIELDS:
                found = _items(value)
                slots.add(found[1] if found else 0)
        if problem is not None:
            return Breach(name, problem)
    if len(slots) > 1:
        return Breach("request_threads_completed", f"slot arrays of different lengths {sorted(slots)}")
    threads = fields.get("request_threads_maximum")
    if slots and type(threads) is int and min(threads, MAX_SLOTS) not in slots:
        return Breach("request_threads_maximum", f"{threads} threads but slot arrays of {slots.pop()} "
                      f"(expected min(threads, {MAX_SLOTS}))")
    return None


# -- the compiled fast path ------------------------------------------------------------------

Checker = Callable[[Mapping[str, Any]], bool]
_checkers: dict[tuple[str, ...], Checker] = {}
_MAX_CHECKERS = 2048


def _compile(names: tuple[str, ...]) -> Checker:
    """A function that is True when fields with exactly these names are surely fine."""
    floats, ints, terms, typed, types = [], [], [], [], []
    for i, name in enumerate(names):
        field = BY_NAME.get(name)
        v = f"f[n[{i}]]"
        if field is None:
            return lambda f: False  # unknown fields: always the precise path (they are rare)
        if field.tag in (Tag.F64, Tag.U64):
            typed.append(f"type({v})")
            types.append(float if field.tag == Tag.F64 else int)
        if field.tag == Tag.F64:
            floats.append(f"abs({v})")
            if field.high != FLOAT_LIMIT:
                terms.append(f"{field.low!r} <= {v} <= {field.high!r}")
        elif field.tag == Tag.U64:
            ints.append(v)
        elif field.tag == Tag.BYTES:
            terms.append(f"type({v}) is str and len({v}) <= {int(field.high)}")
        else:  # arrays: rare enough in fast form to check one by one, and cheap in C
            kind = "counts" if field.tag == Tag.I32_ARRAY else "floats"
            terms.append(f"{kind}({v}, {int(field.low)}, {int(field.high)})")
    if typed:  # exact types first: bools and ints posing as floats take the precise path
        terms.insert(0, f"({', '.join(typed)},) == types")
    if floats:
        terms.append(f"{' + '.join(floats)} < {FLOAT_LIMIT!r}")
    if ints:
        terms.append(f"0 <= ({' | '.join(ints)}) <= {U64_LIMIT}")
    source = f"def check(f):\n    return {' and '.join(terms) or 'True'}\n"
    namespace: dict[str, Any] = {"n": names, "counts": _counts_ok, "floats": _floats_ok,
                                 "types": tuple(types)}
    exec(compile(source, "<field check>", "exec"), namespace)  # noqa: S102 - generated above from the table
    check: Callable[[Mapping[str, Any]], bool] = namespace["check"]
    return check


def _counts_ok(value: Any, low: int, high: int) -> bool:
    # Sums of ints stay ints (a float item makes a float, a string raises), and
    # items that are all >= 0 with a sum within 32 bits are each within it: C loops only.
    if type(value) is dict:
        length = value.get(-1)
        if type(length) is not int or not low <= length <= high or len(value) > length + 1:
            return False
        if len(value) == 1:  # all zeros: idle ticks send eight of these
            return True
        if type(sum(value)) is not int or min(value) < -1 or max(value) >= length:
            return False
        if bool in set(map(type, value)):
            return False
        items: Any = value.values()
    elif type(value) is list:
        if not low <= len(value) <= high:
            return False
        items = value
    else:
        return False
    total = sum(items)
    if type(total) is not int or total > I32_MAX or (items and min(items) < 0):
        return False
    return bool not in set(map(type, items))


def _floats_ok(value: Any, low: int, high: int) -> bool:
    if type(value) is not list or not low <= len(value) <= high or not sum(map(abs, value)) < FLOAT_LIMIT:
        return False
    return bool not in set(map(type, value))


def check_fields(fields: Mapping[str, Any]) -> None:
    """Raise :class:`Breach` for the first value the table does not allow."""
    names = tuple(fields)
    checker = _checkers.get(names)
    if checker is None:
        if len(_checkers) >= _MAX_CHECKERS:
            _checkers.clear()
        checker = _checkers[names] = _compile(names)
    try:
        if checker(fields) and _slots_agree(fields):
            return
    except (TypeError, ValueError, OverflowError):
        pass
    breach = fields_problem(fields)
    if breach is not None:
        raise breach


def _slots_agree(fields: Mapping[str, Any]) -> bool:
    """Slot arrays share one length, the thread maximum capped at MAX_SLOTS (ticks only)."""
    threads = fields.get("request_threads_maximum")
    if threads is None:
        return not any(name in fields for name in SLOT_FIELDS)
    expected = min(threads, MAX_SLOTS)
    for name in SLOT_FIELDS:
        value = fields.get(name)
        if value is not None:
            length = value.get(-1) if type(value) is dict else len(value)
            if length != expected:
                return False
    return True


__all__ = ["Breach", "check_fields", "fields_problem", "record_problem", "value_problem"]
