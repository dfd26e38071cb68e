"""Shared by the live tab tests: samples as the agent forwards them, a real store
(in-process, or the Redis at 127.0.0.1:6379 under a random key prefix, cleaned up)
and agent-like batched writes."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence

from support.required import missing
from support.stores import drop_store

from console.windows import BaseWindowStore, get_store
from console.windows.checks import CheckedSamples

REDIS_URL = "redis://127.0.0.1:6379/0"
STORES = ["memory", "redis"]  # the params of each test file's ``store`` fixture


def sample(kind: int, pid: int, t: float, group: str | None = "app0", inc: int = 1, **fields) -> dict:
    return {"k": kind, "p": pid, "i": inc, "s": 1, "t": t, "g": group, "n": None, "f": fields}


@contextlib.asynccontextmanager
async def temp_store(kind: str) -> AsyncIterator[BaseWindowStore]:
    """A fresh store of ``kind`` (one of STORES); skips the test when there is no Redis."""
    if kind == "memory":
        made = get_store(None)
    else:
        made = get_store(REDIS_URL, prefix=f"wftest:{uuid.uuid4().hex[:12]}:")
        if not await made.aping():
            missing(f"no Redis at {REDIS_URL}")
    try:
        yield made
    finally:
        await drop_store(made)


async def write(store: BaseWindowStore, host: int, samples: Sequence[dict], seconds: float = 5.0,
                *, unchecked: bool = False) -> float:
    """Write in agent-like batches of ``seconds``, each at its last stamp; the last ``now``.

    ``unchecked`` skips the field-table checks, to store what an older console
    may have stored, so that readers are tested against it too.
    """
    now, batch, batch_id = 0.0, [], 0
    for s in [*samples, None]:
        if batch and (s is None or s["t"] - batch[0]["t"] > seconds):
            batch_id += 1
            now = batch[-1]["t"] + 0.05
            await store.awrite_batch(host, "agent-1", batch_id,
                                     CheckedSamples(batch) if unchecked else batch, now)
            batch = []
        if s is not None:
            batch.append(s)
    return now
