"""What every tab module shares: the request it answers and display-safe values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ingest.model import records

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
#: Processes one message describes at most: the model's bound (``ingest.model.records``),
#: shared with ``top``'s frames and the agent's local view.
MAX_PROCESSES: Final = records.MAX_PROCESSES
#: Process groups one message describes at most (each costs a store read a second).
MAX_GROUPS = 64


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


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _option_ok(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_OPTION
    return value is None or isinstance(value, bool) or _finite(value)


