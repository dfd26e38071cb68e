"""A console on a Redis that would lose what it acknowledged says so in the status bar, in a
real browser; and after that Redis restarts without its data, the same page (no reload)
says from when the console has data again.

A console of this module's own (daphne, no agents) on a redis-server of its own with
``appendonly no``: the session's console uses the in-process store, and the shared Redis
at 6379 is never restarted.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import OUTAGE_NOISE, Console, Tab
from support.redis_server import OwnRedis

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def redis_console() -> Iterator[tuple[Console, OwnRedis]]:
    work = Path(tempfile.mkdtemp(prefix="wf-brr-", dir="/tmp"))
    server = OwnRedis(work, appendonly="no")
    server.start()
    site = Console(work)
    site.env.update(REDIS_URL=server.url)
    try:
        site.prepare()
        site.start_console()
        yield site, server
    finally:
        site.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def redis_tab(redis_console, browser) -> Iterator[Tab]:
    site, _ = redis_console
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
    context.set_default_timeout(15_000)
    opened = Tab(context.new_page(), site.url, site.fed_since)
    try:
        yield opened
    finally:
        context.close()
    assert opened.errors == [], "JavaScript errors in the browser"


def test_the_status_bar_says_redis_would_lose_data_and_from_when_it_has_data_again(redis_tab,
                                                                                 redis_console):
    _, server = redis_console
    redis_tab.login("ann", "/hosts/web-1/")
    page = redis_tab.page
    status = page.locator("#store-status")
    page.wait_for_function("el => el.textContent.includes('Redis would lose acknowledged data')",
                           arg=status.element_handle(), timeout=20_000)
    assert status.get_attribute("data-kind") == "warn"
    title = status.get_attribute("title")
    assert "appendonly is no" in title and "appendonly yes" in title and "appendfsync everysec" in title

    redis_tab.tolerate = OUTAGE_NOISE
    server.restart()
    page.wait_for_function("el => /history from [0-9]{1,2}:[0-9]{2}:[0-9]{2}/.test(el.textContent)",
                           arg=status.element_handle(), timeout=30_000)
    assert "Redis lost its data (restarted without it" in status.get_attribute("title")
    assert page.locator("#conn").get_attribute("data-state") == "connected", "the same page, no reload"
