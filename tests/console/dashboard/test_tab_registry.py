"""The tab registry (console/live/tabs/registry.py) is the only list of tabs.

A tab is five files (module, template, script, stylesheet and an entry in
host.js's FACTORIES) plus its registry entry; these tests fail when one of
them is missing or when a second list of tabs or bounds creeps back in.
docs/adding-a-tab.md points here.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.http import QueryDict
from django.template.loader import get_template
from django.urls import reverse

from console.dashboard.views import HostView
from console.live import tabs
from console.live.tabs import base, capacity
from console.live.tabs.registry import BY_KEY, DEFAULT_TAB, REGISTRY, page_config, view_bounds

pytest_plugins = ["dashboard_fixtures"]

ROOT = Path(__file__).resolve().parents[3]
STATIC = ROOT / "static" / "console"
HOST_JS = (STATIC / "host.js").read_text()
KEYS = [spec.key for spec in REGISTRY]


@pytest.mark.parametrize("spec", REGISTRY, ids=KEYS)
def test_every_tab_has_its_module_template_script_and_stylesheet(spec):
    module = spec.module
    assert module.__name__ == f"console.live.tabs.{spec.key}"
    assert Path(module.__file__) == ROOT / "console" / "live" / "tabs" / f"{spec.key}.py"
    assert inspect.iscoroutinefunction(module.snapshot), "snapshot(store, host, request, now) is async"
    assert callable(module.live)
    get_template(spec.template)  # raises TemplateDoesNotExist
    assert spec.template == f"dashboard/tabs/{spec.key}.html"
    for name, path in ((spec.script, f"console/tabs/{spec.key}.js"),
                       (spec.stylesheet, f"console/tabs/{spec.key}.css")):
        assert name == path
        assert finders.find(name), f"static file {name} is missing"
        assert (ROOT / "static" / name).is_file()


def test_keys_labels_and_shortcuts_are_unique_and_the_default_is_registered():
    assert len(set(KEYS)) == len(KEYS)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", key) for key in KEYS)
    shortcuts = [spec.shortcut for spec in REGISTRY]
    assert len(set(shortcuts)) == len(shortcuts)
    assert all(len(shortcut) == 1 and shortcut not in "gw?" for shortcut in shortcuts)
    assert len({spec.label for spec in REGISTRY}) == len(REGISTRY)
    assert DEFAULT_TAB in BY_KEY
    assert list(BY_KEY) == KEYS


def test_the_live_dispatch_and_the_subscribe_validation_are_the_registry():
    # the page's tabs in nav order, then those only token clients ask for (top's), which no page shows
    assert list(tabs.TABS) == [*KEYS, *tabs.CLIENT_TABS] and list(tabs.CLIENT_TABS) == ["top"]
    assert not set(tabs.CLIENT_TABS) & set(KEYS)
    assert all(tabs.TABS[spec.key] is spec.module for spec in REGISTRY)
    assert tabs.DEFAULT_TAB == DEFAULT_TAB
    for key in KEYS:
        assert tabs.TabRequest.from_message({"tab": key}, tabs.TABS).tab == key
    for other in ("nope", "", None, 3, "Overview", "__class__"):
        assert tabs.TabRequest.from_message({"tab": other}, tabs.TABS).tab == DEFAULT_TAB


def test_the_pages_bounds_are_the_ones_subscribe_and_the_url_enforce():
    bounds = view_bounds()
    window, points = bounds["window"], bounds["points"]
    clamp = tabs.TabRequest.from_message
    assert clamp({"window": 1}, tabs.TABS).window == window["min"]
    assert clamp({"window": 10**9}, tabs.TABS).window == window["max"]
    assert clamp({}, tabs.TABS).window == window["default"] == HostView().window
    assert clamp({"points": 1}, tabs.TABS).points == points["min"]
    assert clamp({"points": 10**9}, tabs.TABS).points == points["max"]
    assert clamp({}, tabs.TABS).points == points["default"]
    assert points["min"] <= points["page_min"] <= points["max"]
    assert clamp({"group": "x" * bounds["group_max"]}, tabs.TABS).group == "x" * bounds["group_max"]
    assert clamp({"group": "x" * (bounds["group_max"] + 1)}, tabs.TABS).group == "*"
    many = {f"o{i}": i for i in range(bounds["options"]["max"] + 5)}
    assert len(clamp({"options": many}, tabs.TABS).options) == bounds["options"]["max"]
    for seconds, kept in ((window["min"], True), (window["max"], True),
                          (window["min"] - 1, False), (window["max"] + 1, False)):
        view = HostView.from_query(QueryDict(f"window={seconds}"))
        assert view.window == (seconds if kept else window["default"])
    assert bounds["window"] == {"min": base.WINDOW_MIN, "max": base.WINDOW_MAX,
                                "default": base.DEFAULT_WINDOW}


def _factories() -> dict[str, str]:
    """host.js's FACTORIES as key -> the file its factory is imported from."""
    imports = dict((name, path) for name, path in re.findall(
        r'import \{ createTab as (\w+) \} from "\./tabs/([\w-]+)\.js";', HOST_JS))
    table = re.search(r"const FACTORIES = \{([^}]*)\};", HOST_JS)
    assert table, "host.js has no FACTORIES table"
    entries = [entry.split(":") for entry in table.group(1).split(",") if entry.strip()]
    return {key.strip(): imports.get(name.strip(), "") for key, name in entries}


def test_host_js_has_a_factory_for_exactly_the_registered_tabs():
    factories = _factories()
    assert list(factories) == KEYS
    assert factories == {key: key for key in KEYS}, "each factory comes from static/console/tabs/<key>.js"
    assert len(re.findall(r"^import \{ createTab", HOST_JS, re.M)) == len(KEYS)


def test_host_js_reads_tabs_shortcuts_and_bounds_from_the_page():
    assert 'getElementById("host-config")' in HOST_JS
    assert re.search(r"const KEYS = Object\.fromEntries\(SPECS\.", HOST_JS)
    # No second copy of the bounds (the window's, the points') or of the shortcuts.
    for literal in ("60", "300", "2000", "1209600", "14 * 86400"):
        assert not re.search(rf"(?<![\w.]){re.escape(literal)}(?![\w.])", HOST_JS), literal
    assert not re.search(r'\b1: "overview"', HOST_JS)


@pytest.mark.parametrize("spec", REGISTRY, ids=KEYS)
def test_each_tabs_scripts_use_exactly_its_registered_url_parameters(spec):
    files = [STATIC / "tabs" / f"{spec.key}.js", *sorted((STATIC / "tabs").glob(f"{spec.key}_*.js"))]
    used = set()
    for path in files:
        used |= set(re.findall(r'\bctx\.(?:param|setParam)\(\s*"([^"]+)"', path.read_text()))
    assert used == set(spec.params)
    assert set(spec.options) <= set(spec.params)
    assert not set(spec.params) & {"tab", "group", "window"}, "the shell's own parameters"


@pytest.mark.django_db
def test_nav_panels_stylesheets_and_keyboard_help_render_from_the_registry(ann_client, hosts):
    body = ann_client.get(reverse("dashboard:host", args=["web-03"])).content.decode()
    nav = re.findall(r'<a role="tab" id="tab-(\w+)" href="[^"]*" data-tab="(\w+)"\s+'
                     r'aria-controls="panel-(\w+)"[^>]*aria-keyshortcuts="([^"]*)" '
                     r'title="([^"]*)">([^<]*)</a>', body)
    assert nav == [(s.key, s.key, s.key, s.shortcut, f"{s.label} (key {s.shortcut})", s.label)
                   for s in REGISTRY]
    assert re.findall(r'<section id="panel-(\w+)" role="tabpanel"', body) == KEYS
    for spec in REGISTRY:
        assert f'href="/static/{spec.stylesheet}"' in body
    help_ = body[body.index('id="keys-help"'):]
    pairs = re.findall(r"<dt><kbd>([^<]+)</kbd></dt><dd>([^<]+)</dd>", help_)
    assert pairs[:len(REGISTRY)] == [(s.shortcut, s.label) for s in REGISTRY]
    config = re.search(r'<script id="host-config" type="application/json">(.*?)</script>', body, re.S)
    assert config and json.loads(config.group(1)) == json.loads(json.dumps(page_config()))
    assert body.index('id="host-config"') < body.index("console/host.js")


@pytest.mark.django_db
def test_the_capacity_span_choices_are_the_modules(ann_client, hosts):
    body = ann_client.get(reverse("dashboard:host", args=["web-03"])).content.decode()
    select = body[body.index('<select id="cap-span"'):]
    select = select[:select.index("</select>")]
    options = re.findall(r'<option value="(\d+)">([^<]+)</option>', select)
    assert options == [("30", "30 s"), ("60", "1 min"), ("120", "2 min"), ("300", "5 min")]
    assert [int(value) for value, _ in options] == list(capacity.SPANS)
    assert BY_KEY["capacity"].options["span"].default == capacity.DEFAULT_SPAN


def test_the_overview_page_model_waits_as_long_as_the_console_publishes():
    """The page leaves out the seconds not yet sent complete: its copy of the delay is the console's."""
    from console.live.tabs.base import PUBLISH_DELAY

    source = (STATIC / "tabs" / "overview_model.js").read_text()
    assert re.search(rf"^export const PUBLISH_DELAY = {PUBLISH_DELAY};$", source, re.M)
