"""What every forwarded sample is held to before the console writes any of it.

An agent token proves which host is talking, not that its agent is ours or
sane, and one value of the wrong type used to make a store write throw (the
whole batch lost, or half of it written on Redis) or, worse, be stored and
break every later read of the host. So each sample of a batch is checked
here, in two parts: its envelope (``k p i s t g n f``, docs/agent-protocol.md)
and then its fields against the field table (``ingest.model.contract``, the same
table the agent's decoder holds datagrams to).

A sample that fails is *dropped*: the rest of its batch is written, and the
store counts the dropped ones against the host (``bad_samples``) with the
reasons of the latest few. One process sending garbage must not cost the
other processes of its host their data.

Plain Python like the rest of ``console.windows``: the agent consumer checks
a batch once (``console.live.protocol.validate_batch``) and hands the store
the :class:`CheckedSamples` it made, which the store does not check again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

from ingest.model import contract
from ingest.model.fields import BY_ID, BY_NAME, MAX_UNKNOWN_FIELDS, STAMP_LIMIT
from ingest.model.kinds import HOST
from ingest.model.sample import Sample

#: Process group and interpreter name: text of at most this many characters.
MAX_TEXT: Final = 256
#: Fields in one sample (the table has ~150, and at most 32 unknown ones pass).
MAX_FIELDS: Final = 512
#: Longest array an unknown field may announce in sparse form.
MAX_ARRAY: Final = 4096
#: Upper bounds of the envelope's integers: the wire header's widths (kind u8,
#: pid and seq u32); the incarnation is the agent's count, exact in a double.
_INT_BOUNDS: Final = (("k", 255), ("p", 2**32 - 1), ("i", 2**53 - 1), ("s", 2**32 - 1))
#: Sample stamps are epoch seconds: 2**33 is the year 2242. A stamp beyond it
#: is no clock, and would only make keys and scores no reader expects.
MAX_STAMP: Final = STAMP_LIMIT
#: A reason is kept for people to read: a hostile value must not make it long.
MAX_REASON: Final = 300
#: Field layouts whose names were checked (one layout repeats tick after tick;
#: a real fleet has a few dozen).
_MAX_LAYOUTS: Final = 512
_layouts: dict[tuple[Any, ...], tuple[str | None, tuple[str, ...]]] = {}


class CheckedSamples(list[Sample]):
    """The samples of a batch that passed, in batch order; ``dropped`` holds
    ``(index in the batch, reason)`` of those that did not."""

    def __init__(self, good: Iterable[Sample] = (), dropped: Iterable[tuple[int, str]] = ()):
        super().__init__(good)
        self.dropped: list[tuple[int, str]] = list(dropped)

    def position(self, index: int) -> int:
        """Where the ``index``-th passed sample was in the batch (for messages)."""
        for dropped, _ in self.dropped:
            if dropped <= index:
                index += 1
        return index


def _unknown_name_problem(name: Any) -> str | None:
    # The decoder names an unknown field id N "idN" (fields.field_name), and the
    # stored form keys it by N again: "id70" or "id070" would come back as field
    # 70 with a value nobody checked, and "id" + 30 digits does not fit msgpack.
    if type(name) is not str:
        return f"field names are text, got {type(name).__name__}"
    digits = name[2:]
    if not (name.startswith("id") and digits.isdecimal() and digits.isascii() and len(digits) <= 5
            and str(int(digits)) == digits and int(digits) <= 0xFFFF):
        return f"unknown field name {name[:40]!r} (unknown fields are named idN, N a field id)"
    if int(digits) in BY_ID:
        return f"field name {name!r} stands for the known field {BY_ID[int(digits)].name}"
    return None


def _names_problem(fields: Mapping[Any, Any]) -> str | None:
    names = tuple(fields)
    layout = _layouts.get(names)
    if layout is None:
        layout = _layout(names)
        # Only layouts that pass, with few unknown names, are kept: hostile names (up
        # to 64 KiB each) must not live on in the cache.
        if layout[0] is None and len(layout[1]) <= MAX_UNKNOWN_FIELDS:
            if len(_layouts) >= _MAX_LAYOUTS:
                _layouts.clear()
            _layouts[names] = layout
    problem, unknown = layout
    if problem is None:
        for name in unknown:  # rare: the decoder's idN fields
            value = fields[name]
            if isinstance(value, dict):
                problem = _sparse_problem(name, value)
                if problem is not None:
                    break
    return problem


def _layout(names: tuple[Any, ...]) -> tuple[str | None, tuple[str, ...]]:
    """(what is wrong with these names, the unknown ones among them)."""
    unknown = tuple(name for name in names if name not in BY_NAME)
    for name in unknown:
        problem = _unknown_name_problem(name)
        if problem is not None:
            return problem, ()
    return None, unknown


def _sparse_problem(name: str, value: dict[Any, Any]) -> str | None:
    """An unknown field's sparse array: ``{index: number, -1: length}`` inside its length.

    (Known fields' arrays are the contract's.) Reading one back makes a list
    of that length: a key that is no index inside it would break the read.
    """
    length = value.get(-1)
    if type(length) is not int or not 0 <= length <= MAX_ARRAY:
        return f"field {name}: a sparse array needs its length under key -1, at most {MAX_ARRAY}"
    if any(type(k) is not int or not -1 <= k < length for k in value):
        return f"field {name}: sparse indexes are integers inside the array"
    return None


def envelope_problem(sample: Any) -> str | None:
    """What is wrong with a sample apart from its fields' values, or None."""
    if type(sample) is not dict:
        return f"a {type(sample).__name__}, not a map"
    for key, high in _INT_BOUNDS:
        value = sample.get(key)
        if type(value) is not int or not 0 <= value <= high:
            return f"{key!r} must be an integer 0 to {high}, got {_show(value)}"
    stamp: Any = sample.get("t")  # anything the agent sent; checked here
    if type(stamp) not in (int, float) or not 0 <= stamp < MAX_STAMP:  # also NaN
        return f"'t' must be a stamp in epoch seconds, got {_show(stamp)}"
    for key in ("g", "n"):
        value = sample.get(key)
        if value is not None and (type(value) is not str or len(value) > MAX_TEXT or value == HOST):
            return f"{key!r} must be text of at most {MAX_TEXT} characters other than {HOST!r}, or null, " \
                   f"got {_show(value)}"
    fields = sample.get("f")
    if type(fields) is not dict or len(fields) > MAX_FIELDS:
        return f"'f' must be a map of at most {MAX_FIELDS} fields"
    return _names_problem(fields)


def sample_problem(sample: Any) -> str | None:
    """Why the console will not write ``sample`` (envelope, then the field table), or None."""
    problem = envelope_problem(sample)
    if problem is not None:
        return problem
    try:
        contract.check_fields(sample["f"])
    except contract.Breach as breach:
        return str(breach)
    return None


def describe(index: int, sample: Any, problem: str) -> str:
    """``sample 12 (kind 2, pid 4242): field ...``: which sample, and why, bounded."""
    who = ""
    if type(sample) is dict and type(sample.get("k")) is int and type(sample.get("p")) is int:
        who = f" (kind {sample['k']}, pid {sample['p']})"
    text = f"sample {index}{who}: {problem}"
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 3] + "..."


def check_samples(samples: Iterable[Any]) -> CheckedSamples:
    """The samples that pass, and the reasons of those that do not; a
    :class:`CheckedSamples` is returned as it is (it was checked when made)."""
    if isinstance(samples, CheckedSamples):
        return samples
    good: list[Sample] = []  # a sample without a problem has a Sample's envelope and fields
    dropped: list[tuple[int, str]] = []
    for index, sample in enumerate(samples):
        problem = sample_problem(sample)
        if problem is None:
            good.append(sample)
        else:
            dropped.append((index, describe(index, sample, problem)))
    return CheckedSamples(good, dropped)


def _show(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


__all__ = ["MAX_TEXT", "CheckedSamples", "check_samples", "describe", "envelope_problem", "sample_problem"]
