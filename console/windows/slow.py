"""Slow requests as a backend keeps them, and as ``aslow`` shows them.

An active request is silent for as long as the agent's stream went on
without it (the stream's newest stamp past the request's latest record, in
the agent's own stamps) plus the time the console has not heard a batch.
Never a stamp's age on the console's clock: the spool is sent oldest
first, so a backlog replayed minutes late is old by that measure and yet
every active record in it was still being repeated when it was stamped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from ingest.model.sample import SILENT_INTERVALS, Sample

from .samples import unpack_sample


class SlowRecords(NamedTuple):
    """What a backend keeps of a host's slow requests."""

    #: (stamp of the latest record, packed record) of each request not ended
    active: list[tuple[float, bytes]]
    #: packed records of the newest ended requests (completed, or expired), newest first;
    #: one per request: a completion replaces the copy that expired
    ended: list[bytes]
    #: the newest stamp of the host's latest batch: how far the agent's stream has come
    stream_at: float | None
    #: console time of the host's latest batch
    last_batch: float | None


def views(records: SlowRecords, intervals: Mapping[str, float], now: float) -> Iterator[dict[str, Any]]:
    """Each request's view; an active one is expired once silent for SILENT_INTERVALS of its
    process's interval (``intervals`` by "pid:incarnation", 1 s when unknown), plus 1 s."""
    unheard = 0.0 if records.last_batch is None else max(0.0, now - records.last_batch)
    for last_seen, blob in records.active:
        sample = unpack_sample(blob)
        behind = 0.0 if records.stream_at is None else max(0.0, records.stream_at - last_seen)
        bound = SILENT_INTERVALS * intervals.get(f"{sample['p']}:{sample['i']}", 1.0) + 1.0
        yield view(sample, "expired" if behind + unheard > bound else "active")
    for blob in records.ended:
        sample = unpack_sample(blob)
        yield view(sample, "completed" if sample["f"].get("slow_record_state") == 1 else "expired")


def view(sample: Sample, state: str) -> dict[str, Any]:
    f = sample["f"]
    return {"state": state, "pid": sample["p"], "incarnation": sample["i"], "group": sample["g"],
            "stamp": sample["t"], "log_id": f.get("slow_log_id"), "start": f.get("slow_start_stamp"),
            "duration": f.get("slow_duration"), "fields": f}
