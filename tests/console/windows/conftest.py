"""Every window-store test runs against both backends: the in-process store and Redis."""

from __future__ import annotations

import pytest_asyncio
from window_helpers import Stores


@pytest_asyncio.fixture(params=["memory", "redis"])
async def stores(request):
    made = Stores(request.param)
    yield made
    await made.close()


@pytest_asyncio.fixture
async def store(stores):
    return await stores.make()
