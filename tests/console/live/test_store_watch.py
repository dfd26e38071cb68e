"""A page is told when the window store stops answering, even when its check hangs.

With a Redis that dies the wrong way, a ping can outlive every timeout the
client library sets; the page must still be told within its check timeout,
and told again once the store answers.
"""

from __future__ import annotations

import asyncio

import pytest
from live_helpers import Page, make_host, make_member, of

from console.live import pages
from console.live.store import window_store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def test_a_ping_that_never_returns_is_a_store_that_does_not_answer(monkeypatch):
    monkeypatch.setattr(pages, "STORE_CHECK_INTERVAL", 0.05)
    monkeypatch.setattr(pages, "CHECK_TIMEOUT", 0.3)
    host, _ = await make_host("web-a")
    token = await make_member("ann", host)
    store = window_store()
    answering = asyncio.Event()
    answering.set()
    real_ping = store.aping

    async def ping() -> bool:
        if not answering.is_set():
            await asyncio.Event().wait()  # hangs until cancelled
        return await real_ping()

    monkeypatch.setattr(store, "aping", ping)
    page = Page(token)
    try:
        await page.start()
        await page.send({"type": "subscribe", "scope": "host", "host": host.pk})
        await page.until(of("host.snapshot", host=host.pk))
        answering.clear()
        down = await page.until(of("status", store_ok=False))
        assert "does not answer" in down["reason"]
        answering.set()  # the stuck check is given up and a new one finds the store again
        up = await page.until(of("status", store_ok=True))
        assert up["reason"] is None
        assert page.closed is None
    finally:
        await page.close()
