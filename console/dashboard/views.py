"""The console's pages: the fleet and one host with its tabs.

Views stay thin: they check who may see what (``Host.objects.visible_to``),
read the view state from the query string, and render the first paint.
Everything live arrives over ``/ws/live/`` (docs/live-protocol.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, render

from console.fleet.models import Host
from console.live.tabs.base import DEFAULT_TAB, DEFAULT_WINDOW, MAX_GROUP, WINDOW_MAX, WINDOW_MIN
from console.live.tabs.registry import BY_KEY, REGISTRY, page_config
from ingest.model import metrics as metric_table

#: Window presets in seconds; any other value inside the protocol's range
#: (docs/live-protocol.md) is kept and shown as a custom entry.
WINDOWS = (
    (60, "1 min"),
    (300, "5 min"),
    (900, "15 min"),
    (3600, "1 hour"),
    (21600, "6 hours"),
    (86400, "24 hours"),
    (604800, "7 days"),
    (1209600, "14 days"),
)


@dataclass(frozen=True)
class HostView:
    """What a host page shows; all of it lives in the URL so a link reproduces it."""

    tab: str = DEFAULT_TAB
    group: str = "*"
    window: int = DEFAULT_WINDOW
    #: What the URL asked for that the page cannot show, in words: the page says so above
    #: the tabs instead of showing something else without a word.
    problems: tuple[str, ...] = ()

    @classmethod
    def from_query(cls, query: QueryDict) -> HostView:
        """Read the state, falling back to the default for anything malformed (and saying
        so in ``problems``); the bounds are the subscribe's (``console.live.tabs.base``), so
        the URL asks for what it gets."""
        problems = []
        tab = query.get("tab", DEFAULT_TAB)
        if tab not in BY_KEY:
            problems.append(f"There is no tab “{tab[:40]}”: showing {BY_KEY[DEFAULT_TAB].label}.")
            tab = DEFAULT_TAB
        group = query.get("group", "*")
        if len(group) > MAX_GROUP:
            problems.append(f"A process group name is at most {MAX_GROUP} characters: showing all groups.")
            group = "*"
        raw = query.get("window", str(DEFAULT_WINDOW))
        try:
            window = int(raw)
        except ValueError:
            window = 0
        if not WINDOW_MIN <= window <= WINDOW_MAX:
            problems.append(f"The window “{raw[:20]}” is not a number of seconds from {WINDOW_MIN} to "
                            f"{WINDOW_MAX:,}: showing {dict(WINDOWS).get(DEFAULT_WINDOW, DEFAULT_WINDOW)}.")
            window = DEFAULT_WINDOW
        return cls(tab=tab, group=group, window=window, problems=tuple(problems))

    def query(self, **changes: Any) -> str:
        query = QueryDict(mutable=True)
        query.update({"tab": self.tab, "group": self.group, "window": str(self.window), **changes})
        return query.urlencode()


def label_pairs(labels: Any) -> list[str]:
    """Labels as ``key=value`` strings; the JSON field may hold anything an admin typed."""
    if isinstance(labels, dict):
        return [f"{key}={value}" for key, value in sorted(labels.items(), key=lambda item: str(item[0]))]
    if labels in (None, "", [], {}):
        return []
    return [str(labels)]


def window_choices(current: int) -> list[tuple[int, str]]:
    choices = list(WINDOWS)
    if current not in dict(choices):
        choices.append((current, f"{current} s"))
        choices.sort()
    return choices


#: The fleet table's metric columns: the metric table's fleet set, with its labels.
FLEET_COLUMNS = tuple(
    {"name": name, "title": metric_table.BY_NAME[name].description,
     "label": (metric_table.BY_NAME[name].label or name)
     + (f" ({metric_table.RESTARTS_SPAN // 3600} h)" if name == "restarts" else "")}
    for name in metric_table.FLEET)


@login_required
def fleet(request: HttpRequest) -> HttpResponse:
    hosts = Host.objects.visible_to(request.user).select_related("team")
    rows = [{"host": host, "labels": label_pairs(host.labels)} for host in hosts]
    return render(request, "dashboard/fleet.html", {
        "rows": rows,
        "metric_columns": FLEET_COLUMNS,
        "host_count": len(rows),
        "lost_total": sum(row["host"].datagrams_lost for row in rows),
    })


@login_required
def host(request: HttpRequest, name: str) -> HttpResponse:
    # Someone else's host answers exactly like one that does not exist.
    host = get_object_or_404(Host.objects.visible_to(request.user).select_related("team"), name=name)
    view = HostView.from_query(request.GET)
    # Nav, panels, stylesheets and the keyboard help are all this list (the registry's).
    tabs = [{"key": spec.key, "label": spec.label, "shortcut": spec.shortcut,
             "query": view.query(tab=spec.key), "template": spec.template,
             "stylesheet": spec.stylesheet, "options": spec.options}
            for spec in REGISTRY]
    visible = list(Host.objects.visible_to(request.user).order_by("name").values_list("name", flat=True))
    return render(request, "dashboard/host.html", {
        "host": host,
        "labels": label_pairs(host.labels),
        "view": view,
        "tabs": tabs,
        "page_config": page_config(),
        "windows": window_choices(view.window),
        "host_names": visible,
        "host_count": len(visible),
        "empty": empty_state(host),
        "console_url": request.build_absolute_uri("/"),
    })


def empty_state(host: Host) -> str | None:
    """Why a host may show nothing yet: which setup step the user is missing.

    ``no-agent``: no agent ever connected with this host's token.
    ``no-datagrams``: the agent connects, but mod_wsgi's datagrams do not
    reach its socket (directive missing, or the socket's permissions).
    """
    if host.last_seen is None:
        return "no-agent"
    if host.datagrams_received == 0:
        return "no-datagrams"
    return None
