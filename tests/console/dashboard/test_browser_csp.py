"""The Content-Security-Policy in a real browser: the fleet page and every tab of a host draw
with no violation (nothing inline, nothing from elsewhere), and the policy is in force.

A violation fires ``securitypolicyviolation``, recorded by a script Playwright adds to every
document before the page's own (not subject to the page's policy); Chromium also says it on
the console, which the ``tab`` fixture fails a test on anyway.
"""

from __future__ import annotations

import re

import pytest
from browser_support import ANN_HOSTS, wait_live, wait_message, wait_readout

from console.live.tabs.registry import REGISTRY

pytestmark = pytest.mark.browser

RECORD = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e =>
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + e.sourceFile + ':' +
                    e.lineNumber));
"""


def violations(tab) -> list[str]:
    return tab.page.evaluate("window.__csp")


def test_the_fleet_page_and_every_tab_keep_the_policy(tab):
    tab.page.add_init_script(RECORD)
    tab.goto("/")
    assert violations(tab) == []  # the login page
    tab.login("ann")
    wait_live(tab.page, ANN_HOSTS)
    assert violations(tab) == []
    for spec in REGISTRY:
        since = len(tab.frames)
        tab.goto(f"/hosts/web-3/?tab={spec.key}")
        wait_message(tab, lambda m, key=spec.key: m.get("type") == "tab.snapshot" and m.get("tab") == key,
                     since, 20, f"the {spec.key} tab's snapshot")
        if spec.key == "overview":
            wait_readout(tab.page)
        tab.page.wait_for_timeout(1500)  # a few live seconds drawn on top of the snapshot
        assert violations(tab) == [], spec.key


def test_inline_script_and_style_are_refused(tab):
    """The control: the policy is there and the recorder sees what it refuses."""
    tab.page.add_init_script(RECORD)
    tab.login("ann")
    tab.tolerate = re.compile("Content Security Policy")
    tab.page.evaluate("""() => {
        const script = document.createElement('script');
        script.textContent = 'window.__ran = true';
        document.body.appendChild(script);
        const div = document.createElement('div');
        div.innerHTML = '<span style="color: red">x</span>';
        document.body.appendChild(div);
    }""")
    tab.page.wait_for_function("() => window.__csp.length >= 2")
    assert tab.page.evaluate("window.__ran === undefined")
    found = " | ".join(violations(tab))
    assert "script-src" in found and "style-src" in found, found
