"""The tab tests' store: each test runs against the in-process store and real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from tab_helpers import STORES, temp_store


@pytest_asyncio.fixture(params=STORES)
async def store(request) -> AsyncIterator:
    async with temp_store(request.param) as made:
        yield made
