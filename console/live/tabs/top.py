"""The terminal monitor's tab (``python -m ingest top``): frames, not figures.

No page shows it, so it is not in the registry's nav (``tabs.CLIENT_TABS``);
a token client subscribes to it like any tab. Its messages are built by
``ingest.model.topview``, the module the agent's local view uses too, and
``top`` derives every figure from them with the metric table
(docs/live-protocol.md, "top").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

from console.windows.store import BaseWindowStore
from ingest.model import frames, topview
from ingest.model.kinds import GC_EVENT, SLOW, STARTED, STOPPED, STOPPING, TICK
from ingest.model.records import MAX_PROCESSES, lifecycle_event, slow_record
from ingest.model.sample import Sample

from .base import PUBLISH_DELAY, TabRequest

#: Slow records and lifecycle events a snapshot carries at most (newest), and how far back.
SLOW_LIMIT: Final = 200
LIFE_LIMIT: Final = 200
LIFE_SPAN: Final = 3600
#: Raw samples read for the process window at most: 1,000 processes ticking twice a second.
RAW_LIMIT: Final = 20 * MAX_PROCESSES


def complete_until(now: float) -> int:
    """The end of the newest complete second (the console publishes a second PUBLISH_DELAY
    after it starts): the snapshot's frames stop there, the live ones go on from it."""
    return math.floor(now) - PUBLISH_DELAY + 1


async def snapshot(store: BaseWindowStore, host: dict[str, Any], request: TabRequest,
                   now: float) -> dict[str, Any]:
    until = complete_until(now)
    group = request.group
    per_group = await store.aseconds(host["id"], until - topview.SECONDS, until)
    seconds = per_group.get(group, [])
    tens = await store.aframes(host["id"], group, until - topview.TENS, until, topview.TENS_POINTS, now=now)
    raw = await store.araw(host["id"], until - topview.SPAN, until,
                           kinds=(TICK, SLOW, GC_EVENT, STARTED, STOPPING, STOPPED), limit=RAW_LIMIT)
    window = topview.process_window((s for s in raw if request.wants(s.get("g"))), until)
    slow = [slow_record(r) for r in await store.aslow(host["id"], limit=SLOW_LIMIT, now=now)
            if request.wants(r.get("group"))]
    life = [e for e in map(lifecycle_event, await store.alifecycle(host["id"], now - LIFE_SPAN))
            if e is not None and request.wants(e["group"])]
    return {
        "until": until,
        # the host frame's ``recent`` of the snapshot's last second: the header of the very
        # seconds ``processes`` covers (the fleet row's numbers, one read shared)
        "recent": frames.recent_of(per_group, until - 1, [group] if group != "*" else None),
        "seconds": [[t, frames.compact(f)] for t, f in seconds],
        "tens": [[int(t), frames.compact(f)] for t, f in tens], "tens_step": tens.step,
        "processes": window,
        "slow": slow, "life": life[-LIFE_LIMIT:], "life_total": len(life),
    }


def live(samples: Sequence[Sample], second: int) -> dict[str, Any] | None:
    return topview.second(samples)
