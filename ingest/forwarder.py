"""Forward decoded samples to the console (docs/agent-protocol.md).

The forwarder is an agent listener: it is called on the decode thread for
every datagram, and that thread must never wait on the network, so the call
only appends a small dict to the open batch under a lock. Everything else
runs on a thread of its own with an asyncio loop: every ``batch_interval``
the open batch is sealed, encoded once and put in the bounded spool
(``spool.py``, on disk when a directory is given), and ``uplink.Uplink``
delivers the spool over the WebSocket.

Use::

    forwarder = Forwarder(url, token, spool_dir=..., counters=agent.counters)
    agent.listeners.append(forwarder)
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

from websockets.uri import parse_uri

from .frames import sample_from
from .spool import Spool, encode
from .state import Process
from .uplink import CLOSE_TIMEOUT, MAX_BATCH, Uplink
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
                 ssl: ssl_module.SSLContext | None = None, reconnect_min: float = 0.5,
                 reconnect_max: float = 30.0, open_timeout: float = 10.0,
                 compression: str | None = "deflate", max_batch_bytes: int = MAX_BATCH):
        parse_uri(url)  # a bad URL fails here, in the agent's start-up, not in the loop thread
        self.batch_interval = batch_interval
        self.max_batch_samples = max_batch_samples
        self.spool = Spool(spool_dir, max_bytes=spool_max_bytes, max_age=spool_max_age)
        self.uplink = Uplink(url, token.strip(), self.spool, hostname=hostname or socket.gethostname(),
                             counters=counters or dict, heartbeat_interval=heartbeat_interval, ssl=ssl,
                             reconnect_min=reconnect_min, reconnect_max=reconnect_max,
                             open_timeout=open_timeout, compression=compression,
                             max_batch=max_batch_bytes)
        # Shared with the decode thread, under _lock.
        self._lock = threading.Lock()
        self._open: list[dict[str, Any]] = []
        self._sealed: list[list[dict[str, Any]]] = []
        self.samples = 0
        self.overflow = 0  # samples dropped because the loop thread fell behind
        self.lost_at_stop = self.lost_samples_at_stop = 0  # undelivered at stop, with no spool directory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._delivery: asyncio.Task[None] | None = None

    # -- the decode thread -------------------------------------------------------------

    def __call__(self, datagram: Datagram, proc: Process) -> None:
        """Add one sample to the open batch; never blocks beyond a short lock."""
        sample = sample_from(datagram, proc)  # the decoder never changes a dict it returned
        with self._lock:
            self.samples += 1
            batch = self._open
            batch.append(sample)
            if len(batch) < self.max_batch_samples:
                return
            self._sealed.append(batch)
            self._open = []
            if len(self._sealed) > MAX_SEALED:  # the loop thread is stuck: bound the memory
                self.overflow += len(self._sealed.pop(0))
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed: stop() keeps the rest
                loop.call_soon_threadsafe(self._seal, False)

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

    def stats(self) -> dict[str, Any]:
        """Counters for logs, the agent's stats file and tests (read from any thread)."""
        up = self.uplink
        return {
            "samples": self.samples, "sent": up.sent, "acked": up.acked, "duplicates": up.duplicates,
            "spooled": len(self.spool), "spool_bytes": self.spool.bytes, "dropped": self.spool.dropped,
            "dropped_samples": self.spool.dropped_samples + self.overflow, "rejected": up.rejected,
            "oversized": up.oversized, "refused_samples": up.refused_samples, "slowed": up.slowed,
            "connections": up.connections, "reconnects": up.reconnects,
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
                self._open = []
            self._sealed = []
        for samples in ready:
            try:
                encoded = encode(samples)
            except (TypeError, ValueError, OverflowError) as exc:  # not from the wire decoder; still
                log.error("cannot encode a batch of %d samples, dropped: %s", len(samples), exc)
                self.uplink.rejected += 1
                continue
            for data, count in self.uplink.fit(encoded):
                self.spool.add(data, count)
        self.spool.enforce()  # the age bound holds while the console is away
        if ready:
            self.uplink.wake.set()
