"""Display-safe records every view shares: slow requests, lifecycle events, worker slots.

The console's tabs and the agent's own local view (``top --local``) build
what they send from the same samples with these functions, so a slow
request, a process's end or a busy slot reads the same wherever it is
shown. Everything here may hold attacker-controlled text (URLs, user
agents, reasons): values come out as strict JSON (bytes as escaped text,
no NaN), for ``textContent`` or a terminal, never for markup.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .fields import MAX_SLOTS
from .kinds import STARTED, STOPPED, STOPPING
from .sample import slow_request

#: largest duration or age believed (s); anything beyond is clamped, not sent as is
LONGEST: Final = 1e7
#: Registry states of a process that is still there.
LIVE_STATES: Final = frozenset({"running", "stopping"})
#: Processes one message describes at most (registry records, heatmap rows, per-process
#: ticks, GC series, top's frames): the largest host the console is benchmarked with
#: (bench/console_load/). A flood of datagrams from fake pids made host frames of 10-36 MB;
#: with this bound the per-process part of a message stays near half of the console's
#: 1 MiB text limit, and the processes left out are counted so a page or ``top`` can say
#: "and 12,345 more processes".
MAX_PROCESSES: Final = 1000

KIND_NAMES = {STARTED: "started", STOPPING: "stopping", STOPPED: "stopped"}

#: Why mod_wsgi stops a daemon process, by what an operator should make of it.
CATEGORIES = {
    **dict.fromkeys(("restart_interval", "maximum_requests", "inactivity_timeout", "script_reload"),
                    "planned"),
    **dict.fromkeys(("request_timeout", "cpu_time_limit", "eviction_signal", "graceful_signal",
                     "startup_timeout"), "tuning"),
}



def display(value: Any) -> Any:
    """A decoded value as strict JSON: bytes as text (undecodable bytes escaped,
    as ``\\xNN``), arrays as lists, NaN and infinities as None."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, array | list | tuple):
        return [display(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): display(v) for k, v in value.items()}
    return value


def display_fields(fields: Mapping[str, Any], names: Any = None) -> dict[str, Any]:
    """``fields`` (only ``names`` when given) made display-safe with ``display``."""
    if names is None:
        return {name: display(value) for name, value in fields.items()}
    return {name: display(fields[name]) for name in names if name in fields}


def request_url(fields: Mapping[str, Any]) -> str:
    """``scheme://host`` + SCRIPT_NAME + PATH_INFO as mod_wsgi reported them (no query string
    on the wire); undecodable bytes escaped, so the text is safe to show but never to follow."""
    text = {name: str(display(fields.get(name) or "")) for name in
            ("slow_scheme", "slow_hostname", "slow_script_name", "slow_path_info")}
    origin = f"{text['slow_scheme']}://{text['slow_hostname']}" if text["slow_hostname"] else ""
    return origin + text["slow_script_name"] + text["slow_path_info"]


def slow_record(view: Mapping[str, Any]) -> dict[str, Any]:
    """One slow request as every tab sends it, from ``store.aslow``'s record or a sample.

    ``key`` names the request across its records: the log id when Apache
    gave one, else the thread and start stamp (same on every record).
    """
    if "f" in view:  # a raw sample, as the agent sent it
        state = "completed" if view["f"].get("slow_record_state") == 1 else "active"
        view = {"state": state, "pid": view["p"], "incarnation": view["i"], "group": view.get("g"),
                "stamp": view["t"], "fields": view["f"]}
    f = view["fields"]
    log_id = display(f.get("slow_log_id")) or None
    thread = f.get("slow_thread_id")
    start = display(f.get("slow_start_stamp"))
    key = f"{view['pid']}:{view['incarnation']}:{slow_request(f)}"
    return {
        "key": key, "state": view["state"], "pid": view["pid"], "incarnation": view["incarnation"],
        "group": display(view.get("group")), "stamp": display(view["stamp"]), "start": start,
        "duration": display(f.get("slow_duration")), "thread": thread,
        "method": display(f.get("slow_method")) or None, "url": request_url(f),
        "status": f.get("slow_status") or None, "log_id": log_id,
        "fields": display_fields(f),
    }


def number(value: Any) -> float | None:
    """A finite number, or None for anything else (missing, NaN, text, bools)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            as_float = float(value)
        except OverflowError:  # an int beyond any float
            return None
        if math.isfinite(as_float):
            return as_float
    return None


def scalar(value: Any) -> Any:
    """``value`` if it is a finite float (the common case, checked fast), else ``_number``."""
    return value if type(value) is float and value - value == 0 else number(value)


def _clamped(value: Any) -> float:
    n = number(value)
    return 0.0 if n is None else min(max(n, 0.0), LONGEST)


def slot_array(values: Any) -> list[Any]:
    """One slot array safe for JSON: ``[]`` when idle, else the values as they are.

    This runs for every process every second, so the common case stays in C
    and copies nothing: ``sum`` finds all-zero arrays, a finite sum proves
    every value is a finite number, ``min`` and ``max`` that all are in
    range. Only hostile arrays (text, NaN, negative or huge values) are
    cleaned one by one.
    """
    if type(values) is not list:
        if not isinstance(values, tuple | array):
            return []
        values = list(values)
    if not values:  # an empty array is idle (and min() of nothing raises)
        return []
    try:
        total = sum(values)
        clean = total - total == 0 and min(values) >= 0 and max(values) <= LONGEST
    except (TypeError, OverflowError):  # text or None among the values, ints beyond a float
        total, clean = 1, False
    if not total:
        return []
    if not clean:
        values = [_clamped(v) for v in values]
    out: list[Any] = values if len(values) <= MAX_SLOTS else values[:MAX_SLOTS]
    return out


def slots_of(f: Mapping[str, Any]) -> int:
    """Worker slots of a tick: its slot array's length (one per thread, at most 128)."""
    busy = f.get("request_threads_busy_time")
    if isinstance(busy, list | tuple | array) and busy:
        return min(len(busy), MAX_SLOTS)
    threads = number(f.get("request_threads_maximum"))
    return int(min(max(threads or 0.0, 0.0), MAX_SLOTS))


def threshold_of(f: Mapping[str, Any]) -> float:
    """WSGISlowRequests in seconds; 0 when off (or unreadable)."""
    value = f.get("slow_requests_threshold")
    if type(value) is float and 0 <= value <= LONGEST:
        return value
    return min(max(number(value) or 0.0, 0.0), LONGEST)


def category(reason: Any) -> str:
    """planned, tuning or unplanned; a missing or unknown reason is unplanned (nobody chose it)."""
    return CATEGORIES.get(reason, "unplanned") if isinstance(reason, str) else "unplanned"


def finite(value: Any) -> float | int | None:
    """A finite number, or None for anything else (missing, NaN, text, bool)."""
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return value
    return None


def text_or_none(value: Any) -> str | None:
    text = display(value)
    return text if isinstance(text, str) and text else None


def compact(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def lifecycle_event(sample: Mapping[str, Any]) -> dict[str, Any] | None:
    """One STARTED / STOPPING / STOPPED sample as the event log shows it (None: not one).

    ``in_flight`` is the requests in flight at the decision to stop
    (STOPPING) or cut off at exit (STOPPED); ``drain`` is True when the
    process drained cleanly.
    """
    kind, pid, inc, stamp = sample.get("k"), sample.get("p"), sample.get("i"), finite(sample.get("t"))
    if kind not in KIND_NAMES or type(pid) is not int or type(inc) is not int or stamp is None:
        return None
    f = sample.get("f")
    f = f if isinstance(f, Mapping) else {}
    out: dict[str, Any] = {"t": stamp, "kind": KIND_NAMES[kind], "pid": pid, "inc": inc,
                           "group": text_or_none(sample.get("g")) or ""}
    if kind == STARTED:
        out["parent"] = finite(f.get("process_parent_pid"))
    else:
        reason = text_or_none(f.get("shutdown_reason"))
        out.update(reason=reason, category=category(reason))
    if kind == STOPPING:
        out["in_flight"] = finite(f.get("active_requests_at_decision"))
    elif kind == STOPPED:
        drain = finite(f.get("graceful_drain"))
        out.update(in_flight=finite(f.get("active_requests_at_exit")), uptime=finite(f.get("process_uptime")),
                   requests=finite(f.get("lifetime_request_count")),
                   drain=None if drain is None else bool(drain))
    return compact(out)


def first_processes(records: Sequence[Mapping[str, Any]], limit: int = MAX_PROCESSES) -> list[Any]:
    """At most ``limit`` registry records, order kept: live processes first, then the most
    recently seen (a real process ticks every second; a fake pid is seen once)."""
    if len(records) <= limit:
        return list(records)

    def rank(i: int) -> tuple[bool, float]:
        seen: Any = records[i].get("last_seen")  # a stored record's: checked by finite
        return records[i].get("state") not in LIVE_STATES, -(seen if finite(seen) is not None else 0.0)

    return [records[i] for i in sorted(heapq.nsmallest(limit, range(len(records)), key=rank))]
