"""What every tab module shares: the request it answers and display-safe values."""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Seconds after a second starts that the console publishes it complete (``host.frame``
#: without ``partial``: every agent batch of it has come). The Overview's page model keeps
#: a copy (static/console/tabs/overview_model.js, pure for node's tests), held equal to
#: this by tests/console/dashboard/test_tab_registry.py.
PUBLISH_DELAY = 2
#: Tab options a page may send (each tab reads the ones it knows); values
#: are strings or numbers, at most this many, each at most MAX_OPTION long.
MAX_OPTIONS = 16
MAX_OPTION = 256
#: The longest option name.
MAX_OPTION_NAME = 64
#: The tab a subscribe (or the host page's URL) without a known ``tab`` gets.
DEFAULT_TAB = "overview"
#: Window bounds in seconds and the default (the host page's URL uses the same).
WINDOW_MIN, WINDOW_MAX, DEFAULT_WINDOW = 60, 14 * 86400, 300
#: Points a snapshot's series may be cut to, and the default; the host page asks for
#: one per pixel of its panel, but never fewer than PAGE_POINTS_MIN.
POINTS_MIN, POINTS_MAX, DEFAULT_POINTS = 10, 2000, 300
PAGE_POINTS_MIN = 100
#: The longest group name a page may ask for.
MAX_GROUP = 256
#: Processes one message describes at most (registry records, heatmap rows, per-process
#: ticks, GC series...): the largest host the console is benchmarked with (bench/console_load/).
#: A flood of datagrams from fake pids made host frames of 10-36 MB; with this bound the
#: per-process part of a message stays near half of jsontext.MAX_TEXT, and the processes
#: left out are counted so the page can say "and 12,345 more processes".
MAX_PROCESSES = 1000
#: Process groups one message describes at most (each costs a store read a second).
MAX_GROUPS = 64
#: Registry states of a process that is still there.
LIVE_STATES = frozenset({"running", "stopping"})


@dataclass(frozen=True)
class TabRequest:
    """A page's subscribe message, validated: which tab, group, window and points."""

    tab: str = DEFAULT_TAB
    group: str = "*"
    window: int = DEFAULT_WINDOW
    points: int = DEFAULT_POINTS
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_message(cls, message: Mapping[str, Any], tabs: Mapping[str, Any]) -> TabRequest:
        """``tabs``: the tabs a page may name (``console.live.tabs.TABS``, from the registry);
        the bounds are this module's, the same the host page gets (``registry.view_bounds``)."""
        tab = message.get("tab", DEFAULT_TAB)
        group = message.get("group", "*")
        window, points = message.get("window", DEFAULT_WINDOW), message.get("points", DEFAULT_POINTS)
        raw = message.get("options")
        options = {}
        if isinstance(raw, Mapping):
            for key, value in list(raw.items())[:MAX_OPTIONS]:
                if isinstance(key, str) and len(key) <= MAX_OPTION_NAME and _option_ok(value):
                    options[key] = value
        return cls(
            tab=tab if isinstance(tab, str) and tab in tabs else DEFAULT_TAB,
            group=group if isinstance(group, str) and len(group) <= MAX_GROUP else "*",
            window=min(max(int(window), WINDOW_MIN), WINDOW_MAX) if _finite(window) else DEFAULT_WINDOW,
            points=min(max(int(points), POINTS_MIN), POINTS_MAX) if _finite(points) else DEFAULT_POINTS,
            options=options,
        )

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)

    def wants(self, group: str | None) -> bool:
        """True when a process of ``group`` (None: embedded) belongs to the requested group."""
        return self.group == "*" or (group or "") == self.group


def first_processes(records: Sequence[Mapping[str, Any]], limit: int = MAX_PROCESSES) -> list[Any]:
    """At most ``limit`` registry records, order kept: live processes first, then the most
    recently seen (a real process ticks every second; a fake pid is seen once)."""
    if len(records) <= limit:
        return list(records)

    def rank(i: int) -> tuple[bool, float]:
        seen: Any = records[i].get("last_seen")  # a stored record's: checked by _finite
        return records[i].get("state") not in LIVE_STATES, -(seen if _finite(seen) else 0.0)

    return [records[i] for i in sorted(heapq.nsmallest(limit, range(len(records)), key=rank))]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _option_ok(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_OPTION
    return value is None or isinstance(value, bool) or _finite(value)


