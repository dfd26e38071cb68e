"""The sample: one decoded datagram as the agent forwards it and the console stores it.

Keys are one letter, for msgpack bytes: ``k`` kind, ``p`` pid, ``i`` the
process's incarnation (pids are reused), ``s`` sequence, ``t`` header
stamp, ``g`` process group, ``n`` interpreter (GC kinds), ``f`` the
fields by name (docs/agent-protocol.md). Count arrays travel sparse.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping
from typing import Any, Final, TypedDict

from .kinds import GC_EVENT


class Sample(TypedDict):
    """One decoded datagram as the agent forwards it (docs/agent-protocol.md)."""

    k: int
    p: int
    i: int
    s: int
    t: float
    g: str | None
    n: str | None
    f: dict[str, Any]


#: The fields of a tick that say who a process is, kept from its first tick on.
IDENTITY_FIELDS: Final = ("hostname", "process_group", "process_parent_pid", "mod_wsgi_version",
                          "python_version", "apache_version", "mpm_name")
#: A process is gone after this many telemetry intervals without a datagram.
SILENT_INTERVALS: Final = 3
_SCALAR = (str, bytes, int, float)


def sample_time(sample: Mapping[str, Any]) -> float:
    """When a sample happened: a GC event's own start stamp, else the header stamp.

    mod_wsgi drains GC events up to seconds after they happened (vector 67:
    3 s late), so their header stamp would put pauses in the wrong second.
    """
    if sample["k"] == GC_EVENT:
        start = sample["f"].get("gc_event_start_stamp")
        if isinstance(start, float) and math.isfinite(start):
            return start
    stamp: float = sample["t"]
    return stamp


def slow_request(fields: Mapping[str, Any]) -> str:
    """Which request a slow record is about, the same on each of its records.

    The log id when Apache gave one; else the thread and the start stamp,
    both repeated unchanged on every record of the request. Values of a
    wrong type (an array where a number belongs) still give a key.
    """
    log_id = fields.get("slow_log_id")
    if log_id and isinstance(log_id, _SCALAR):
        return log_id.hex() if isinstance(log_id, bytes) else str(log_id)
    return f"{fields.get('slow_thread_id')}@{fields.get('slow_start_stamp')!r}"


# -- count arrays as they travel ---------------------------------------------------

def sparse_counts(values: array[int]) -> dict[int, int] | list[int]:
    """A count array (histogram, per-slot completions) as ``{index: count}`` of its
    non-zero entries plus ``{-1: length}``, when that is smaller than the list.

    Histograms are mostly empty buckets: the console would otherwise spend
    its time skipping zeros of eight 65-bucket arrays per tick
    (docs/agent-protocol.md, "Arrays").
    """
    if not any(values):
        return {-1: len(values)}
    nonzero = {i: v for i, v in enumerate(values) if v}
    if len(nonzero) * 2 > len(values):
        return values.tolist()
    nonzero[-1] = len(values)
    return nonzero


def dense_counts(value: dict[int, int]) -> list[int]:
    """The list a ``sparse_counts`` map stands for."""
    dense = [0] * value.get(-1, 0)
    for index, count in value.items():
        if index >= 0:
            dense[index] = count
    return dense
