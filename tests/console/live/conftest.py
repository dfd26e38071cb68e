"""The tab tests' store: each test runs against the in-process store and real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from tab_helpers import STORES, temp_store

from console.live import agents, pages


@pytest_asyncio.fixture(params=STORES)
async def store(request) -> AsyncIterator:
    async with temp_store(request.param) as made:
        yield made


@pytest_asyncio.fixture
async def console_store(store, monkeypatch) -> Any:
    """``store`` as the live consumers' window store (both kinds, as ``store``)."""
    monkeypatch.setattr(agents, "window_store", lambda: store)
    monkeypatch.setattr(pages, "window_store", lambda: store)
    return store
