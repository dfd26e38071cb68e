"""Fixtures of the browser tests (browser_support.py): one console with its agents for the
whole session, one Chromium per test module, a fresh browser context per test."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import CHROMIUM, FLAGS, Console, Tab
from support.required import missing


@pytest.fixture(scope="session")
def console() -> Iterator[Console]:
    work = Path(tempfile.mkdtemp(prefix="wf-br-", dir="/tmp"))  # short: AF_UNIX paths
    site = Console(work)
    try:
        tokens = site.tokens = site.prepare()
        site.start_console()
        site.start_agents(tokens)
        yield site
    finally:
        site.stop()
        shutil.rmtree(work, ignore_errors=True)


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is started, and the plain asyncio tests that run after these modules need it gone.
@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing: run scripts/setup, which installs Debian's chromium"
        missing(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def tab(console, browser) -> Iterator[Tab]:
    """A fresh context (no cookies, no saved theme) per test; fails the test on any JS error."""
    console.check_alive()
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
    context.set_default_timeout(15_000)
    opened = Tab(context.new_page(), console.url, console.fed_since)
    try:
        yield opened
    finally:
        context.close()
    assert opened.errors == [], "JavaScript errors in the browser"
    assert opened.dialogs == [], "the page opened dialogs"


