"""Window stores made by tests: gone without a trace afterwards."""

from __future__ import annotations

import contextlib
from typing import Any

from redis.exceptions import RedisError


async def drop_store(store: Any) -> None:
    """Delete a Redis store's keys (its private prefix) and close it; the in-process one just closes."""
    redis = getattr(store, "redis", None)
    if redis is not None:
        with contextlib.suppress(RedisError, OSError):  # a test may have stopped that Redis
            keys = [k async for k in redis.scan_iter(match=store.prefix + "*", count=1000)]
            if keys:
                await redis.delete(*keys)
    await store.aclose()
