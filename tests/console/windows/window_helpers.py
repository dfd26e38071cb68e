"""Shared by the window store tests: real samples, agent-like batches, stores."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

import pytest
from support.paths import RAW, VECTORS
from support.required import missing
from support.stores import drop_store

from console.windows import BaseWindowStore, get_store
from ingest.model import frames
from ingest.model.sample import Sample
from ingest.pipeline import capture
from ingest.pipeline.samples import replay

REDIS_URL = "redis://127.0.0.1:6379/0"


@cache
def _scenario(name: str) -> tuple[Sample, ...]:
    return tuple(replay(capture.read(str(RAW / f"{name}.dgrams.gz"))))


def scenario(name: str) -> list[Sample]:
    """The samples of a real capture, as the agent would forward them (a fresh copy)."""
    return copy.deepcopy(list(_scenario(name)))


def vector(prefix: str, pid: int | None = None, incarnation: int = 1, stamp: float | None = None,
           seq: int | None = None) -> Sample:
    """One wire vector as a sample, optionally moved to another process or time."""
    (path,) = VECTORS.glob(f"{prefix}-*.bin")
    (sample,) = replay([path.read_bytes()])
    moved = {"p": pid, "i": incarnation, "t": stamp, "s": seq}
    sample.update({k: v for k, v in moved.items() if v is not None})  # type: ignore[typeddict-item]
    return sample


def batches(samples: Sequence[Sample], width: float = 0.25) -> list[list[Sample]]:
    """Split like the agent: a batch holds what was decoded within ``width`` seconds."""
    out: list[list[Sample]] = []
    start = None
    for sample in samples:
        if start is None or sample["t"] - start > width:
            out.append([])
            start = sample["t"]
        out[-1].append(sample)
    return out


async def write_all(store: BaseWindowStore, host: int, samples: Sequence[Sample],
                    instance: str = "agent-1", first_id: int = 1, delay: float = 0.05) -> float:
    """Write ``samples`` batch by batch, each at its last stamp + ``delay``; the last ``now``."""
    now = 0.0
    for batch_id, batch in enumerate(batches(samples), first_id):
        now = max(s["t"] for s in batch) + delay
        result = await store.awrite_batch(host, instance, batch_id, batch, now)
        assert result.written == len(batch) and not result.duplicate
    return now


def frame_of(samples: Iterable[Sample]) -> frames.Frame:
    frame: frames.Frame = {}
    for sample in samples:
        frames.frame_add(frame, sample)
    return frame


def assert_same_frame(actual: frames.Frame, expected: frames.Frame) -> None:
    """Equal up to float summation order (and Lua writing 2.0 as 2)."""
    actual, expected = frames.compact(actual), frames.compact(expected)
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


class Stores:
    """Makes stores of one backend, each Redis one under its own random prefix, and
    removes their keys afterwards."""

    def __init__(self, backend: str):
        self.backend = backend
        self.made: list[BaseWindowStore] = []

    async def make(self, **options: Any) -> BaseWindowStore:
        if self.backend == "redis":
            options.setdefault("prefix", f"wftest:{uuid.uuid4().hex[:12]}:")
            store = get_store(options.pop("url", REDIS_URL), **options)
        else:
            store = get_store(None, **options)
        self.made.append(store)
        if not await store.aping():
            missing(f"no Redis at {REDIS_URL}")
        return store

    async def close(self) -> None:
        for store in self.made:
            await drop_store(store)
