"""What the fault suite needs besides a deployment: a slow link, a skewed clock, and
the console's view of a host read through the window store's own API."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.windows.batch import slow_key
from ingest.model.fields import SLOW
from support.console import ConsoleSite, read_store

SITECUSTOMIZE = '''
import os, time
_offset = float(os.environ.get("WF_CLOCK_OFFSET", "0"))
if _offset:
    _real = time.time
    time.time = lambda: _real() + _offset
    _real_ns = time.time_ns
    time.time_ns = lambda: _real_ns() + int(_offset * 1e9)
'''


def skewed_clock(work: Path, offset: float) -> dict[str, str]:
    """Environment for a child whose wall clock reads ``offset`` seconds off (its monotonic
    clock is untouched), as on a host whose clock is wrong."""
    directory = work / "skewed-clock"
    directory.mkdir(exist_ok=True)
    (directory / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {"PYTHONPATH": str(directory), "WF_CLOCK_OFFSET": repr(offset)}


class SlowLink:
    """A TCP proxy that carries at most ``rate`` bytes a second each way: a thin WAN link
    between an agent and the console."""

    def __init__(self, target_port: int, rate: int):
        self.target_port, self.rate = target_port, rate
        self.port = 0
        self.carried = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="slow-link", daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def __enter__(self) -> SlowLink:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:  # every socket and the loop closed here: nothing left for a later test's GC
            self._server.close()
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.run_until_complete(self._server.wait_closed())
            self._loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer),
                                 return_exceptions=True)
        finally:
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(Exception):
                    await w.wait_closed()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        chunk = max(self.rate // 20, 512)
        try:
            while data := await reader.read(chunk):
                writer.write(data)
                await writer.drain()
                self.carried += len(data)
                await asyncio.sleep(len(data) / self.rate)
        finally:
            with contextlib.suppress(Exception):
                writer.close()


@dataclass
class View:
    """What the console holds of one host."""

    samples: list[dict[str, Any]]
    processes: list[dict[str, Any]]
    slow: list[dict[str, Any]]
    counters: dict[str, Any]
    status: dict[str, Any] = field(default_factory=dict)

    def lives(self) -> set[tuple[int, int]]:
        return {(p["pid"], p["incarnation"]) for p in self.processes}

    def slow_states(self) -> dict[str, int]:
        states: dict[str, int] = {}
        for record in self.slow:
            states[record["state"]] = states.get(record["state"], 0) + 1
        return states


def console_view(site: ConsoleSite, host_id: int, since: float, now: float | None = None) -> View:
    async def read(store: Any) -> View:
        samples = await store.araw(host_id, since, time.time() + 3600, limit=10_000_000)
        processes = await store.aprocesses(host_id, now=now)
        slow = await store.aslow(host_id, limit=100_000, now=now)
        status = (await store.ahost_status([host_id])).get(host_id, {})
        return View(samples, processes, slow, status.get("counters", {}), status)
    return read_store(site, read)


def completed_slow_requests(samples: list[dict[str, Any]]) -> set[str]:
    """The slow requests whose completed record is among the raw samples, by request key."""
    return {slow_key(s) for s in samples if s["k"] == SLOW and s["f"].get("slow_record_state") == 1}


def slow_requests(records: list[dict[str, Any]], state: str) -> set[str]:
    """The request keys of the store's slow list (``aslow``) in ``state``."""
    return {slow_key({"p": r["pid"], "i": r["incarnation"], "f": r["fields"]}) for r in records
            if r["state"] == state}


@contextlib.contextmanager
def stopped(child: Any, seconds: float) -> Iterator[None]:
    """``child`` killed for ``seconds``, then started again."""
    child.kill()
    try:
        time.sleep(seconds)
        yield
    finally:
        child.start()
