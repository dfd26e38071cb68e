"""The Slow requests tab: active, expired and completed slow requests of one host.

``tab.snapshot`` carries the records of the page's window and group, newest
first and bounded (the count left out is stated, so the page can say so);
``tab.frame`` carries the records its agent wrote during one second. An
active request repeats once per tick with a growing duration; its completed
record replaces it on the page by ``key`` (docs/live-protocol.md,
"### slow").

A record keeps only what the table and the drill-down show: the fields that
``slow_record`` already lifts to the top (method, URL parts, status, log id,
thread, start, duration, state) are dropped from ``fields``, and long texts
are cut: about 0.9 KB a record, so a full snapshot stays under half a megabyte.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from console.windows.store import BaseWindowStore
from ingest.model.kinds import SLOW
from ingest.model.records import slow_record
from ingest.model.sample import Sample

from .base import TabRequest

#: Records in a snapshot, newest first (active ones always first).
SNAPSHOT_LIMIT = 500
#: Records read from the store before the window and group cut them.
STORE_LIMIT = 2000
#: Records in one second's frame; the rest are counted in ``omitted``.
FRAME_LIMIT = 300
#: Longest text kept (URLs, User-Agents); datagrams allow far longer.
MAX_TEXT = 2048

#: Fields ``slow_record`` already shows at the top level of a record.
_LIFTED = frozenset({
    "slow_record_state", "slow_start_stamp", "slow_duration", "slow_thread_id", "slow_log_id",
    "slow_method", "slow_scheme", "slow_hostname", "slow_script_name", "slow_path_info", "slow_status",
})


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + "…"
    return value


def compact(record: Mapping[str, Any]) -> dict[str, Any]:
    """``slow_record``'s shape without the duplicated fields and with long texts cut."""
    out = {name: _cut(value) for name, value in record.items() if name != "fields"}
    out["fields"] = {name: _cut(value) for name, value in record["fields"].items() if name not in _LIFTED}
    return out


def _records(views: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Views (store records or raw samples) as compact records; a malformed one is skipped,
    because one bad datagram must not hide every other slow request."""
    out = []
    for view in views:
        try:
            out.append(compact(slow_record(view)))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return out


def _in_window(record: Mapping[str, Any], since: float) -> bool:
    stamp = record.get("stamp")
    return record["state"] == "active" or (isinstance(stamp, int | float) and stamp >= since)


async def snapshot(store: BaseWindowStore, host: dict[str, Any], request: TabRequest,
                   now: float) -> dict[str, Any]:
    """The window's slow requests of the requested group, newest first (active ones first)."""
    views = await store.aslow(host["id"], limit=STORE_LIMIT, now=now)
    since = now - request.window
    records = [r for r in _records(views) if request.wants(r["group"]) and _in_window(r, since)]
    counts = {state: 0 for state in ("active", "expired", "completed")}
    for record in records:
        counts[record["state"]] = counts.get(record["state"], 0) + 1
    return {"records": records[:SNAPSHOT_LIMIT], "counts": counts,
            "omitted": max(0, len(records) - SNAPSHOT_LIMIT), "limit": SNAPSHOT_LIMIT}


def live(samples: Sequence[Sample], second: int) -> dict[str, Any] | None:
    """The second's slow-request records, completed ones first when there are too many
    (they are final; an active request repeats next tick). Only the records sent are built."""
    slow = [s for s in samples if s.get("k") == SLOW]
    if not slow:
        return None
    omitted = max(0, len(slow) - FRAME_LIMIT)
    if omitted:
        slow.sort(key=_not_completed)
        slow = slow[:FRAME_LIMIT]
    records = _records(slow)
    return {"records": records, "omitted": omitted + len(slow) - len(records)} if records else None


def _not_completed(sample: Mapping[str, Any]) -> bool:
    fields = sample.get("f")
    return not (isinstance(fields, Mapping) and fields.get("slow_record_state") == 1)
