"""The pages after hostile traffic, in headless Chromium (bench/fuzz_pipeline.py and its test).

Why a browser and not only the live messages: the issue's worst failures
were in the page (``NaN`` in JSON makes the page drop a message and show
"No data"; a text the page would put in as HTML). So every tab of the
hostile host and the fleet page are loaded, and each must receive its
snapshot and raise no JavaScript error, print nothing on the browser's
error console and open no dialog; the clean host's page must still show
live data. Uses Debian's chromium with the browser tests' flags
(tests/console/dashboard/browser_support.py), never a downloaded browser.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import quote

from support.fuzz_rig import TABS, non_finite

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
#: Seconds a page is watched after its snapshot arrived: a few live frames on top.
WATCH = 2.0


class PageLog:
    """Everything one page said: JavaScript errors, console errors, dialogs, live messages."""

    def __init__(self, page: Any):
        self.page = page
        self.errors: list[str] = []
        self.texts: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console.error: {m.text}"))
        page.on("dialog", self._dialog)
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _dialog(self, dialog: Any) -> None:
        self.errors.append(f"dialog {dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _frame(self, payload: Any) -> None:
        self.texts.append(payload if isinstance(payload, str) else payload.decode(errors="replace"))

    def types(self, since: int = 0) -> list[str]:
        return [type_of(text) for text in self.texts[since:]]

    def wait_type(self, kind: str, since: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if kind in self.types(since):
                return True
            self.page.wait_for_timeout(100)  # not time.sleep: Playwright delivers events meanwhile
        return False


def type_of(text: str) -> str:
    try:
        message = json.loads(text)
    except ValueError:
        return "?"
    return str(message.get("type", "?")) if isinstance(message, dict) else "?"


def login(page: Any, base: str, user: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/?next=/")
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


#: Injected before any page script: the longest task the page's main thread ran.
LONG_TASKS = """
window.__longest = 0;
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longest = Math.max(window.__longest, e.duration);
  }).observe({type: "longtask", buffered: true});
} catch (err) { /* no long-task timing */ }
"""


def check_pages(browser: Any, base: str, user: str, password: str, hostile: str, clean: str,
                readout_timeout: float = 20.0) -> dict[str, Any]:
    """Load the fleet page, every tab of ``hostile`` and the overview of ``clean``, each in a
    page of its own (a page that hangs is then the one blamed).

    Returns per page what went wrong (empty lists when nothing did), its
    timings, and the clean host's throughput readout; the caller keeps the
    clean host fed.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    context.add_init_script(LONG_TASKS)
    result: dict[str, Any] = {"pages": {}, "timings": {}, "clean_readout": None}
    try:
        page = context.new_page()
        login(page, base, user, password)
        page.close()
        visits = [("fleet", "/", "fleet.snapshot")]
        visits += [(f"{hostile} {tab}", f"/hosts/{quote(hostile)}/?tab={tab}", "tab.snapshot")
                   for tab in TABS]
        visits.append((f"{clean} overview", f"/hosts/{quote(clean)}/?tab=overview", "tab.snapshot"))
        for name, path, first in visits:
            page = context.new_page()
            try:
                problems, timings = visit(page, base + path, first)
                if name == visits[-1][0]:
                    result["clean_readout"] = clean_readout(page, readout_timeout)
            finally:
                page.close(run_before_unload=False)
            result["pages"][name], result["timings"][name] = problems, timings
    finally:
        context.close()
    return result


def visit(page: Any, url: str, first: str) -> tuple[list[str], dict[str, float | None]]:
    """Open one page: its first data must come, and then nothing may go wrong while it is watched."""
    log = PageLog(page)
    began = time.monotonic()
    timings: dict[str, float | None] = {"loaded": None, "first_data": None, "longest_task_ms": None}
    problems: list[str] = []
    try:
        page.goto(url)
        timings["loaded"] = round(time.monotonic() - began, 2)
        if log.wait_type(first, 0, 30):
            timings["first_data"] = round(time.monotonic() - began, 2)
        else:
            problems.append(f"no {first} within 30 s")
        page.wait_for_timeout(WATCH * 1000)
        page.wait_for_function("() => true", timeout=15_000)  # the main thread still answers
        timings["longest_task_ms"] = page.evaluate("() => window.__longest")
    except Exception as exc:  # a page that does not load or hangs is this page's failure
        problems.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]} "
                        f"(after {time.monotonic() - began:.1f} s)")
    problems += log.errors
    texts = list(log.texts)
    problems += [f"error message: {t[:200]}" for t in texts if type_of(t) == "error"]
    problems += [f"non-finite JSON: {t[:200]}" for t in texts if non_finite(t)]
    return problems, timings


def clean_readout(page: Any, timeout: float) -> float | None:
    """The overview's throughput readout once it shows a rate above 0, else None."""
    try:
        page.wait_for_function(
            "() => parseFloat(document.querySelector('[data-readout=\"throughput\"]').textContent) > 0",
            timeout=timeout * 1000)
    except Exception:
        return None
    text = page.locator('[data-readout="throughput"]').text_content() or ""
    match = re.match(r"\s*([0-9][0-9,]*(?:\.[0-9]+)?)", text)
    return float(match.group(1).replace(",", "")) if match else None


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
