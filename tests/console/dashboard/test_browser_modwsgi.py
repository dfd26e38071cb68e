"""The pages fed by real Apache + mod_wsgi 6.1.1: a known request mix, seen in the browser.

Apache runs as scripts/setup builds it (tests/support/modwsgi.py: root,
www-data daemons), its telemetry goes to a real agent, the agent to the
browser-test console, and a member of the host's team reads the result in
headless Chromium: the Overview's status totals equal the mix, the Slow
requests tab shows the slow request's URL and User-Agent, and Processes
shows Apache's two daemon processes.
"""

from __future__ import annotations

import re

import pytest
from browser_support import PYTHON, wait_for
from support.modwsgi import USER_AGENT, ModWsgiServer, send_mix, skip_unless_available, tally, work_dir

pytestmark = [pytest.mark.browser, pytest.mark.modwsgi]

MIX = {"/slow?secs=2.5": 1, "/": 23, "/nf": 7, "/err": 3}
CODES = {"/slow?secs=2.5": 200, "/": 200, "/nf": 404, "/err": 500}


def test_a_real_modwsgi_request_mix_shows_in_the_tabs(tab, console):
    skip_unless_available()
    with work_dir("wf-br-mw-") as mw:  # www-data must reach the socket
        token_file = mw / "apache-1.token"
        token_file.write_text(console.tokens["apache-1"] + "\n")
        token_file.chmod(0o600)
        sock = mw / "telemetry.sock"
        agent = console.spawn(
            [PYTHON, "-m", "ingest", "serve", "--socket", str(sock), "--socket-mode", "0666",
             "--console", console.url + "/", "--token-file", str(token_file),
             "--hostname", "apache-1", "--log-interval", "0"], "apache-1-agent.log")
        try:
            wait_for(sock.exists, 10, "the agent of apache-1 to bind its socket")
            with ModWsgiServer(mw, telemetry_socket=sock, processes=2, threads=4, interval=0.5,
                               slow_threshold=1.0, capture_user_agent=True) as server:
                responses = send_mix(server.port, MIX, concurrency=8)
                assert tally(responses) == {(path, CODES[path]): n for path, n in MIX.items()}
                tab.login("bob", "/hosts/apache-1/?tab=overview&window=300")
                page = tab.page
                expected = "2xx 24 · 3xx 0 · 4xx 7 · 5xx 3"
                page.wait_for_function(
                    "text => document.querySelector('#status-totals').textContent.includes(text)",
                    arg=expected, timeout=20_000)
                assert page.locator("#status-totals").text_content().startswith("≈ 34 requests")

                page.click("#tab-slow")
                row = page.locator("tbody tr", has_text="/slow").first
                row.wait_for(timeout=15_000)
                assert "200" in row.text_content()
                row.click()
                dialog = page.locator("dialog[open]")
                dialog.wait_for()
                text = dialog.text_content()
                assert "/slow" in text and USER_AGENT in text  # +CaptureUserAgent
                page.keyboard.press("Escape")

                page.click("#tab-processes")
                page.wait_for_function(
                    "() => document.querySelectorAll('#processes tbody tr').length === 2", timeout=15_000)
                states = page.locator("#processes tbody tr .chip.state").all_text_contents()
                assert states == ["running", "running"]
                assert all(re.fullmatch(r"[0-9,]+", pid) for pid in
                           page.locator("#processes tbody tr td:first-child").all_text_contents())
        finally:
            agent.terminate()
            agent.wait(15)
