"""Count arrays travel sparse (``{index: count, -1: length}``, docs/agent-protocol.md):
what the agent sends must mean exactly what the dense array meant, and a hostile
map must be refused before it reaches the store."""

from __future__ import annotations

import asyncio
import time
from array import array

import msgpack
import pytest

from console.live import protocol
from console.live.protocol import ProtocolError
from console.windows import get_store
from ingest.model.frames import frame_add
from ingest.model.sample import dense_counts, sparse_counts
from ingest.pipeline.spool import encode

HISTOGRAM = [0] * 65
HISTOGRAM[3], HISTOGRAM[17], HISTOGRAM[64] = 5, 2, 1


def tick(buckets, completed) -> dict:
    return {"k": 2, "p": 10, "i": 1, "s": 1, "t": 1795378200.5, "g": "app", "n": None,
            "f": {"sample_period": 1.0, "request_count": 8, "request_threads_maximum": 4,
                  "request_time_buckets": buckets, "request_threads_completed": completed,
                  "request_time": 0.01}}


def over_the_wire(sample: dict) -> dict:
    """Encoded as the agent encodes it, decoded and validated as the console does."""
    [blob] = encode([sample])
    message = protocol.unpack(msgpack.packb({"t": "batch", "instance": "a", "id": 1, "samples": []})[:-1]
                              + b"\x91" + blob)
    return protocol.validate_batch(message)[2][0]


def test_the_agent_sends_mostly_empty_count_arrays_sparse_and_they_mean_the_same():
    sample = tick(array("i", HISTOGRAM), array("i", [3, 0, 0, 0]))
    received = over_the_wire(sample)
    assert received["f"]["request_time_buckets"] == {3: 5, 17: 2, 64: 1, -1: 65}
    assert received["f"]["request_threads_completed"] == [3, 0, 0, 0] or \
        dense_counts(received["f"]["request_threads_completed"]) == [3, 0, 0, 0]
    dense = tick(HISTOGRAM, [3, 0, 0, 0])
    assert frame_add({}, received) == frame_add({}, dense)
    assert sparse_counts(array("i", [0] * 65)) == {-1: 65}
    assert sparse_counts(array("i", [1, 2, 3])) == [1, 2, 3]  # dense is smaller


def test_a_sparse_array_is_stored_and_read_back_as_the_list_it_stands_for():
    store = get_store(None)
    received = over_the_wire(tick(array("i", HISTOGRAM), array("i", [0, 0, 0, 0])))
    now = received["t"] = time.time()

    async def run():
        await store.awrite_batch(1, "a", 1, [received], now=now)
        return await store.araw(1, now - 1, now + 1)

    [back] = asyncio.run(run())
    assert back["f"]["request_time_buckets"] == HISTOGRAM
    assert back["f"]["request_threads_completed"] == [0, 0, 0, 0]


@pytest.mark.parametrize("bad", [
    {3: 1},  # no length
    {-1: 10**9, 3: 1},  # a length that would allocate gigabytes when read back
    {-1: 65, 65: 1},  # index past the end
    {-1: 65, -5: 1},
    {-1: 65, "3": 1},
    {-1: 65, 3.0: 1},
    {-1: 65, 3: "many"},
    {-1: True, 0: 1},
])
def test_a_hostile_sparse_array_is_refused(bad):
    with pytest.raises(ProtocolError):
        protocol.validate_sample(tick(bad, [0, 0, 0, 0]))
