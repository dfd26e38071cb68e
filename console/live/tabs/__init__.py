"""The host page's tabs, server side: one module per tab, listed in ``registry``.

A tab module answers two questions, and only for what its tab shows
(docs/live-protocol.md, "Tabs"):

- ``async snapshot(store, host, request, now) -> dict``: the tab's first
  data when a page subscribes with ``tab``, read from the window store and
  cut to the request's window and points.
- ``live(samples, second) -> dict | None``: the tab's share of one second
  of samples, built once per host by the publisher from the samples its
  agent connection wrote that second (no store read), and sent as the same
  text to every page that shows the tab. ``None`` sends nothing. Count
  arrays are lists; the histograms (``*_buckets``) may be sparse maps as the
  agent sends them (``{bucket: count, -1: length}``, read them with
  ``ingest.model.frames``).

Everything a tab sends may hold attacker-controlled strings (URLs, user
agents, hostnames); they travel as JSON text and the pages only ever put
them in with ``textContent``.

Both are guarded here, per host and tab: a snapshot or a second's live data
that raises is counted and logged (``health``), and the page gets an
``error`` naming the host and tab instead, on a connection that lives on;
the other tabs, and every other host, are not touched. Each tab bounds what
one message describes to ``base.MAX_PROCESSES`` processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from console.windows.store import BaseWindowStore
from ingest.model.kinds import TICK
from ingest.model.sample import Sample, dense_counts

from ..groups import tab_group
from ..health import error_message, faults
from ..store import StoreUnavailable
from . import top
from .base import DEFAULT_TAB, TabRequest
from .registry import REGISTRY

#: Tabs no page shows, for token clients: ``top``, the terminal monitor's frames.
CLIENT_TABS: dict[str, ModuleType] = {"top": top}
#: The registry's tabs by key, in nav order, then the client tabs: what a subscribe may name
#: and what a second feeds.
TABS: dict[str, ModuleType] = {**{spec.key: spec.module for spec in REGISTRY}, **CLIENT_TABS}
SLOT_COUNTS = "request_threads_completed"


async def tab_snapshot(store: BaseWindowStore, host: dict[str, Any], request: TabRequest,
                       now: float) -> dict[str, Any]:
    """The tab's first data, or an ``error`` about this host and tab when building it failed."""
    try:
        body = await TABS[request.tab].snapshot(store, host, request, now)
    except StoreUnavailable:
        raise
    except Exception as exc:
        faults.caught(f"the {request.tab} tab's snapshot", host, exc)
        return error_message(f"the console could not build the {request.tab} tab of this host "
                             "(internal error, logged); the other tabs still work",
                             host=host["id"], tab=request.tab, about="tab.snapshot")
    return {"type": "tab.snapshot", "tab": request.tab, "host": host["id"], "group": request.group,
            "window": request.window, "now": now, **body}


def _dense_slots(samples: Sequence[Sample]) -> None:
    """Per-slot completion counts as a list again: the one count array tabs index by slot."""
    for sample in samples:
        value = sample["f"].get(SLOT_COUNTS) if sample["k"] == TICK else None
        if isinstance(value, dict):
            sample["f"][SLOT_COUNTS] = dense_counts(value)


def live_messages(host: dict[str, Any] | int, samples: Sequence[Sample], second: int,
                  now: float) -> list[tuple[str, dict[str, Any]]]:
    """(channel group, message) of every tab with something to say about ``second``; a tab
    whose builder fails says so with an ``error`` (one tab's bug must not silence the others)."""
    host_id = host["id"] if isinstance(host, dict) else host
    out: list[tuple[str, dict[str, Any]]] = []
    try:
        _dense_slots(samples)
    except Exception as exc:
        faults.caught("reading the slot counts", host, exc)
    for name, module in TABS.items():
        try:
            body = module.live(samples, second)
        except Exception as exc:
            faults.caught(f"the {name} tab's live data", host, exc)
            out.append((tab_group(host_id, name), error_message(
                f"the console could not build the {name} tab's data of the second {second} "
                "(internal error, logged)", host=host_id, tab=name, t=second, about="tab.frame")))
            continue
        if body is not None:
            out.append((tab_group(host_id, name),
                        {"type": "tab.frame", "tab": name, "host": host_id, "t": second, "now": now, **body}))
    return out


__all__ = ["CLIENT_TABS", "DEFAULT_TAB", "REGISTRY", "TABS", "TabRequest", "live_messages", "tab_snapshot"]
