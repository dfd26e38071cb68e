"""The one list of the host page's tabs, and the view-state bounds the page obeys.

Before this table the tab list lived in four places (the dashboard's nav,
the live dispatch, and two tables in host.js) that nothing compared. Now the
dispatch (``console.live.tabs.TABS``), the subscribe validation
(``TabRequest.from_message`` is handed that mapping), the host page's nav,
panels, stylesheets and keyboard help (``console.dashboard.views``) and
host.js (through ``page_config``, sent as a ``json_script``) all read it.
host.js keeps one table of its own, key -> tab factory, because a browser
module can only import what is named in its source;
tests/console/dashboard/test_tab_registry.py checks that it names exactly
the tabs here, and that each tab has its module, template, script and
stylesheet. docs/adding-a-tab.md walks through adding one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import Any

from ingest.model.fields import PHASES

from . import base, capacity, gc, overview, processes, slow
from .base import DEFAULT_TAB


@dataclass(frozen=True)
class TabOption:
    """One subscribe option a tab's module reads, with the values it accepts.

    ``choices`` empty means free-form (the module validates it). The values
    come from the tab's module, so the page and the template offer what the
    server accepts without a copy of their own.
    """

    default: Any = None
    choices: tuple[Any, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"default": self.default, "choices": list(self.choices)}


@dataclass(frozen=True)
class TabSpec:
    """One tab: its URL key, its label and key, the module that feeds it.

    ``params`` are the URL query parameters the tab keeps while it is shown
    (host.js drops them when the user switches tab); the test checks that
    the tab's scripts use no other. ``options`` are those of them that also
    travel in the subscribe message and have bounds worth sharing.
    """

    key: str
    label: str
    shortcut: str
    module: ModuleType
    params: tuple[str, ...] = ()
    options: Mapping[str, TabOption] = field(default_factory=dict)

    @property
    def template(self) -> str:
        return f"dashboard/tabs/{self.key}.html"

    @property
    def script(self) -> str:
        return f"console/tabs/{self.key}.js"

    @property
    def stylesheet(self) -> str:
        return f"console/tabs/{self.key}.css"

    def as_json(self) -> dict[str, Any]:
        """What the page needs of the tab: no module, no file names (host.js imports by key)."""
        return {"key": self.key, "label": self.label, "shortcut": self.shortcut,
                "params": list(self.params),
                "options": {name: option.as_json() for name, option in self.options.items()}}


#: In nav order; the shortcut is the key that shows the tab (the page's keyboard help lists them).
REGISTRY: tuple[TabSpec, ...] = (
    TabSpec("overview", "Overview", "1", overview, params=("phase", "scale"),
            options={"phase": TabOption(overview.DEFAULT_PHASE, tuple(PHASES))}),
    TabSpec("capacity", "Capacity", "2", capacity, params=("span", "threshold"),
            options={"span": TabOption(capacity.DEFAULT_SPAN, tuple(capacity.SPANS))}),
    TabSpec("processes", "Processes", "3", processes, params=("pid", "hide")),
    TabSpec("gc", "GC", "4", gc, params=("pid", "interp"),
            options={"pid": TabOption(), "interp": TabOption()}),
    # ``req`` (the request drill-down open on a Slow or Capacity tab) is the dialog's own
    # (static/console/drilldown.js), not a tab's.
    TabSpec("slow", "Slow requests", "5", slow, params=("sort", "state", "per", "q", "since")),
)

BY_KEY: Mapping[str, TabSpec] = MappingProxyType({spec.key: spec for spec in REGISTRY})


def view_bounds() -> dict[str, Any]:
    """The view state's limits as the page reads them (``base`` holds the values).

    The server clamps or resets anything outside them anyway; the page uses
    them so that what it asks for, and what its URL says, is what it gets.
    """
    return {
        "window": {"min": base.WINDOW_MIN, "max": base.WINDOW_MAX, "default": base.DEFAULT_WINDOW},
        "group_max": base.MAX_GROUP,
        "points": {"min": base.POINTS_MIN, "max": base.POINTS_MAX, "default": base.DEFAULT_POINTS,
                   "page_min": base.PAGE_POINTS_MIN},
        "options": {"max": base.MAX_OPTIONS, "length": base.MAX_OPTION, "name": base.MAX_OPTION_NAME},
    }


def page_config() -> dict[str, Any]:
    """The host page's tab list and bounds, for ``json_script`` (host.js reads nothing else)."""
    return {"tabs": [spec.as_json() for spec in REGISTRY], "default_tab": DEFAULT_TAB,
            "bounds": view_bounds()}


__all__ = ["BY_KEY", "DEFAULT_TAB", "REGISTRY", "TabOption", "TabSpec", "page_config", "view_bounds"]
