"""Forward decoded samples to the console (docs/agent-protocol.md).

The forwarder is an agent listener: it is called on the decode thread for
every datagram, and that thread must never wait on the network, so the call
only appends a small dict to the open batch under a lock. Everything else
runs on a thread of its own with an asyncio loop: every ``batch_interval``
the open batch is sealed and put in the bounded spool (``spool.py``, on disk
when a directory is given), and ``uplink.Uplink`` delivers the spool over
the WebSocket. Each sample is encoded as it is accepted: with a spool
directory the open batch is on disk before it is considered sent
(``journal.py``), and the agent's counters and process marks are kept there
too (``ledger.py``), so neither a restart nor a SIGKILL loses a sample or
forgets a loss.

Use::

    forwarder = Forwarder(url, token, spool_dir=..., counters=agent.counters, marks=agent.state.marks)
    agent.listeners.append(forwarder)
    agent.resume(forwarder.ledger)   # the counters and processes of its last run
    forwarder.start(); agent.start()
    ...
    agent.stop(); forwarder.stop(timeout=10)   # the agent first: its last samples go too
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import ssl as ssl_module
import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack
from websockets.uri import parse_uri

from . import journal
from .journal import Pending
from .ledger import Ledger
from .resume import Mark
from .samples import sample_from
from .spool import Spool, packer
from .state import Process
from .uplink import CLOSE_TIMEOUT, MAX_BATCH, OVERHEAD, Uplink
from .wire import Datagram

log = logging.getLogger("ingest.forwarder")

MAX_SEALED = 64  # full batches waiting for the loop thread before the decode thread drops one


class Forwarder:
    """Agent listener that delivers every sample to the console at least once."""

    def __init__(self, url: str, token: str, *, hostname: str | None = None,
                 spool_dir: str | None = None, spool_max_bytes: int = 64 << 20,
                 spool_max_age: float = 3600.0, batch_interval: float = 0.1,
                 max_batch_samples: int = 5000, heartbeat_interval: float = 5.0,
                 counters: Callable[[], dict[str, int]] | None = None,
                 marks: Callable[[float], list[Mark]] | None = None,
                 ssl: ssl_module.SSLContext | None = None, reconnect_min: float = 0.5,
                 reconnect_max: float = 30.0, open_timeout: float = 10.0,
                 compression: str | None = "deflate", max_batch_bytes: int = MAX_BATCH):
        parse_uri(url)  # a bad URL fails here, in the agent's start-up, not in the loop thread
        self.batch_interval = batch_interval
        self.max_batch_samples = max_batch_samples
        self.spool = Spool(spool_dir, max_bytes=spool_max_bytes, max_age=spool_max_age)
        self.ledger = Ledger(self.spool.dir)
        self._outer = counters or dict
        self._marks = marks
        self.uplink = Uplink(url, token.strip(), self.spool, hostname=hostname or socket.gethostname(),
                             counters=self.checkpoint, heartbeat_interval=heartbeat_interval, ssl=ssl,
                             reconnect_min=reconnect_min, reconnect_max=reconnect_max,
                             open_timeout=open_timeout, compression=compression,
                             max_batch=max_batch_bytes)
        # Shared with the decode thread, under _lock.
        self._lock = threading.Lock()
        self._pack = packer().pack
        self._journals = 0  # the number of the latest journal file
        self._sealed: list[Pending] = []
        self._recover()
        self._open = self._pending()
        self.samples = 0
        self.overflow = 0  # samples dropped because the loop thread fell behind
        self.lost_at_stop = self.lost_samples_at_stop = 0  # undelivered at stop, with no spool directory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._delivery: asyncio.Task[None] | None = None

    # -- the decode thread -------------------------------------------------------------

    def __call__(self, datagram: Datagram, proc: Process) -> None:
        """Add one sample to the open batch (and its journal); never blocks beyond a short lock."""
        sample = self._pack(sample_from(datagram, proc))  # the decoder never changes a dict it returned
        cap = self.uplink.limit - OVERHEAD
        if len(sample) + journal.HEADER > cap:
            self.uplink.oversized += 1
            log.warning("dropped a sample of %d bytes: over the limit of %d bytes for one message",
                        len(sample), cap + OVERHEAD)
            return
        with self._lock:
            self.samples += 1
            full = self._open.size + len(sample) > cap
            if full:
                self._set_aside()
            self._open.add(sample)
            if len(self._open) >= self.max_batch_samples:
                self._set_aside()
                full = True
        if not full:
            return
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed: stop() keeps the rest
                loop.call_soon_threadsafe(self._seal, False)

    def _pending(self) -> Pending:
        if self.spool.dir is None:
            return Pending()
        self._journals += 1
        return Pending(self.spool.dir / f"open-{self._journals}{journal.SUFFIX}")

    def _set_aside(self) -> None:
        """The open batch is full: it waits for the loop thread, a new one opens (under _lock)."""
        self._sealed.append(self._open)
        self._open = self._pending()
        if len(self._sealed) > MAX_SEALED:  # the loop thread is stuck: bound the memory
            lost = self._sealed.pop(0)
            self.overflow += len(lost)
            lost.discard()

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._thread_main, name="console-forwarder", daemon=True)
        self._thread.start()
        self._ready.wait()

    def stop(self, timeout: float = 10.0) -> bool:
        """Seal the open batch and try to deliver everything for ``timeout`` seconds.

        Returns True when nothing is left; otherwise the rest stays in the
        spool directory for the next run or, without one, is lost and
        counted (``lost_at_stop``, ``lost_samples_at_stop`` in ``stats``).
        """
        if self._thread is not None:
            loop = self._loop
            if loop is not None:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._begin_stop, time.monotonic() + timeout)
            self._thread.join(timeout + CLOSE_TIMEOUT + 2.0)
            if self._thread.is_alive():
                log.error("forwarder thread did not stop in time")
            self._thread = None
        else:
            self._seal()
        self.checkpoint()
        left = len(self.spool)
        if left:
            samples = sum(b.count for b in self.spool)
            if self.spool.dir is None:
                self.lost_at_stop, self.lost_samples_at_stop = left, samples
            where = f"kept in {self.spool.dir}" if self.spool.dir else "lost (no spool directory)"
            log.warning("stopping with %d undelivered batches (%d samples, %d bytes): %s",
                        left, samples, self.spool.bytes, where)
        self.spool.close()
        return left == 0

    def counters(self) -> dict[str, int]:
        """The heartbeat's counters: the agent's, then the forwarder's own."""
        try:
            outer = dict(self._outer())
        except Exception as exc:  # the agent's counters must not take the connection down
            log.warning("agent counters failed: %s", exc)
            outer = {}
        return {**outer, **self.own_counters()}

    def own_counters(self) -> dict[str, int]:
        """The forwarder's counters, those that add up continuing the earlier runs' (ledger.py)."""
        up, spool = self.uplink, self.spool
        return {"spooled": len(spool), "spool_bytes": spool.bytes, "batch_bytes": up.batch_bytes,
                "wire_bytes": up.wire_bytes, **self.ledger.total({
            "dropped": spool.dropped, "dropped_samples": spool.dropped_samples + self.overflow,
            "dropped_seconds": spool.dropped_seconds, "rejected": up.rejected, "oversized": up.oversized,
            "frame_drops": up.frame_drops, "refused_samples": up.refused_samples, "slowed": up.slowed})}

    def checkpoint(self) -> dict[str, int]:
        """Save the counters and process marks in the spool directory (if any); the counters.

        Called before each heartbeat reports them (a restarted agent never
        reports less than the console saw), before sealed journals become
        batches, and at stop.
        """
        counters = self.counters()
        if self.spool.dir is None:
            return counters
        wall = time.time()
        try:
            marks = self._marks(wall) if self._marks else list(self.ledger.marks.values())
        except Exception as exc:  # marks read across threads: a failure costs only this save
            log.warning("process marks failed: %s", exc)
            return counters
        self.ledger.save(counters, marks)
        return counters

    def _recover(self) -> None:
        """Turn the journals a killed agent left into batches, and its marks up to their samples.

        The ledger's marks and counters were read together (the process
        table moves both as it takes a datagram): a journal's sample above
        its process's mark came after the last save, so it moves the mark and
        is counted as received and decoded, which that save could not do.
        """
        if self.spool.dir is None:
            return
        for number, path in journal.journals(self.spool.dir):
            self._journals = max(self._journals, number)
            try:
                pending = journal.read(path)
            except OSError as exc:
                log.warning("cannot read the journal %s: %s", path, exc)
                continue
            heard = path.stat().st_mtime
            later = sum(self.ledger.advance(msgpack.unpackb(sample, raw=False, strict_map_key=False), heard)
                        for sample in pending.samples)
            for name in ("received", "decoded"):
                self.ledger.count(name, later)
            log.info("journal %s: %d samples accepted by the last run, sent now", path.name, len(pending))
            self._spool(pending)

    def _spool(self, pending: Pending) -> None:
        if len(pending):
            self.spool.add(pending.data(), len(pending), source=pending.seal())
        else:
            pending.discard()

    def stats(self) -> dict[str, Any]:
        """Counters for logs, the agent's stats file and tests (read from any thread)."""
        up = self.uplink
        return {
            "samples": self.samples, "sent": up.sent, "acked": up.acked, "duplicates": up.duplicates,
            **self.own_counters(), "connections": up.connections, "reconnects": up.reconnects,
            "connected": up.connected, "last_error": up.last_error, "instance": self.spool.instance,
            "max_batch_bytes": up.limit, "frame_drops": up.frame_drops,
            "lost_at_stop": self.lost_at_stop, "lost_samples_at_stop": self.lost_samples_at_stop,
        }

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:  # logged, never raised into the agent: the spool keeps the batches
            log.exception("the console forwarder failed")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        sealer = asyncio.create_task(self._seal_loop())
        self._delivery = asyncio.create_task(self.uplink.run())
        self._ready.set()
        try:
            await self._delivery
        except asyncio.CancelledError:  # stop()'s deadline passed
            log.debug("delivery cut short by the stop deadline")
        finally:
            self.uplink.connected = False
            sealer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sealer
            self._loop = None
            self._seal()  # samples that came in while closing: spooled for the next run

    def _begin_stop(self, deadline: float) -> None:
        self._seal()
        self.uplink.begin_stop(deadline)
        if self._loop is not None and self._delivery is not None:
            # A send blocked on a stalled console must not outlive stop().
            self._loop.call_at(deadline, self._delivery.cancel)

    # -- sealing ----------------------------------------------------------------------------

    async def _seal_loop(self) -> None:
        # Also seal just after each whole second: a batch then rarely holds two
        # seconds' ticks, and the console shows each second with one message.
        while True:
            now = time.time()
            to_second = math.ceil(now) - now + 0.005
            await asyncio.sleep(to_second if to_second < self.batch_interval else self.batch_interval)
            self._seal()

    def _seal(self, open_batch: bool = True) -> None:
        """Move the full (and the open) batches into the spool (loop thread)."""
        with self._lock:
            ready = self._sealed
            if open_batch and self._open:
                ready.append(self._open)
                self._open = self._pending()
            self._sealed = []
        if ready and self.spool.dir is not None:
            self.checkpoint()  # before the journals become batches: their samples are in these marks
        for pending in ready:
            self._spool(pending)
        self.spool.enforce()  # the age bound holds while the console is away
        if ready:
            self.uplink.wake.set()
