"""The host page's tabs in a real browser, as host.js builds them from the registry.

host.js takes the shortcuts, the tab order and the view-state bounds from
the page's ``host-config`` (console/live/tabs/registry.py); these tests
press every registered shortcut and walk the history, so a registry entry
that the page does not honour fails here, not only in
test_tab_registry.py's reading of the source.
"""

from __future__ import annotations

import pytest
from browser_support import query_of, wait_message, wait_readout

from console.live.tabs.registry import DEFAULT_TAB, REGISTRY, view_bounds

pytestmark = pytest.mark.browser

SELECTED = "key => document.getElementById('tab-' + key).getAttribute('aria-selected') === 'true'"


def test_every_registered_shortcut_shows_its_tab_and_the_help_lists_them(tab):
    tab.login("ann", "/hosts/web-2/")
    page = tab.page
    wait_readout(page)
    for spec in reversed(REGISTRY):  # the default tab is shown already: it comes last
        since = len(tab.frames)
        page.keyboard.press(spec.shortcut)
        page.wait_for_function(SELECTED, arg=spec.key)
        assert query_of(page.url)["tab"] == spec.key
        assert page.locator(f"#panel-{spec.key}").is_visible()
        wait_message(tab, lambda m, key=spec.key: m.get("type") == "tab.snapshot" and m.get("tab") == key,
                     since, 15, f"the {spec.key} tab's snapshot")
    page.keyboard.press("?")
    assert page.locator("#keys-help").is_visible()
    labels = page.locator("#keys-help dd").all_text_contents()
    assert labels[:len(REGISTRY)] == [spec.label for spec in REGISTRY]
    page.keyboard.press("Escape")
    assert page.locator("#keys-help").is_hidden()
    # Each shortcut was a history entry: back is the tab pressed before the last one.
    page.go_back()
    page.wait_for_function(SELECTED, arg=REGISTRY[1].key)
    assert query_of(page.url)["tab"] == REGISTRY[1].key


def test_history_outside_the_bounds_falls_back_to_the_registry_defaults(tab):
    tab.login("ann", "/hosts/web-2/?tab=gc&window=900")
    page = tab.page
    page.wait_for_function(SELECTED, arg="gc")
    bounds = view_bounds()["window"]
    since = len(tab.frames)
    page.evaluate("""w => {
        history.pushState(null, "", "?tab=no-such-tab&group=*&window=" + w);
        dispatchEvent(new PopStateEvent("popstate"));
    }""", bounds["min"] - 1)
    page.wait_for_function(SELECTED, arg=DEFAULT_TAB)
    assert page.locator("#window").input_value() == str(bounds["default"])
    assert page.locator(f"#panel-{DEFAULT_TAB}").is_visible()
    snapshot = wait_message(tab, lambda m: m.get("type") == "tab.snapshot" and m.get("tab") == DEFAULT_TAB,
                            since, 15, "the default tab's snapshot")
    assert snapshot["window"] == bounds["default"]
