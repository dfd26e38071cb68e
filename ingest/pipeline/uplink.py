"""The forwarder's link to the console: one WebSocket speaking docs/agent-protocol.md.

``Uplink.run`` connects with the host's token, says ``hello``, applies the
console's ``welcome`` (what it already wrote is forgotten, the rest resent
oldest first), then sends every spooled batch, forgets it when acked, and
sends the agent's counters as heartbeats. Whatever ends a connection, it
reconnects with exponential backoff and full jitter, so a restarted console
is not hit by the whole fleet at once; a refused token is retried at the
longest delay, loudly, and never crashes the agent. It runs on the
forwarder's thread and event loop, and owns no thread of its own.

No batch message is larger than ``limit`` (the smallest of ``MAX_BATCH``,
the console's ``max_message`` and what frame drops taught us): a server in
front of the console may cut smaller frames than the console takes (daphne's
default ``--websocket-max-frame-size`` is 1 MiB) by dropping the connection,
which the agent sees as 1006 without a close frame; see ``_dropped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import ssl as ssl_module
import time
from collections.abc import Callable
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .. import __version__
from . import batchwire
from .spool import Batch, Spool, pack, spans

log = logging.getLogger("ingest.forwarder")

PROTOCOL = 1
AGENT = f"wsgi-fleet-agent {__version__}"
DEFAULT_MAX_MESSAGE = 4 << 20
# The largest batch message built or sent, whatever the console allows: half of
# daphne's default frame limit, ~780 real-capture samples. Measured on a daphne
# worker with Redis: ~90-120 us of CPU per sample plus 2-4 ms per message, so
# this is within ~5% of 3 MB batches, and holds the worker 40-110 ms, not 200-550.
MAX_BATCH = 512 << 10
FRAME_FLOOR = 64 << 10  # a frame drop never lowers the limit below this
RIGHT_AFTER = 5.0  # s: a server's frame limit drops the connection as that frame arrives
ABNORMAL = 1006  # websockets' close code when the connection ended without a close frame
OVERHEAD = 64  # bytes of a batch message besides its samples
CLOSE_TIMEOUT = 2.0
WINDOW = 16  # batches sent and not yet acked, per connection
HEALTHY_AFTER = 30.0  # a connection that lasted this long resets the backoff
#: After 4429 ("slow down": over the console's per-connection rate) wait at least this
#: long, however healthy the connection was: reconnecting at once would flood again.
SLOW_DOWN = 5.0
_TOO_BIG = frozenset((4413, 1009))  # 1009: a WebSocket server's own size limit says the same


#: The uplink's own generator: reconnect jitter leaves the process's global ``random``
#: (which the program embedding the agent, or a test, may have seeded) alone.
_JITTER = random.Random()  # noqa: S311 (jitter, not secrets)


class Uplink:
    """Connection state and protocol; the counters here are read by ``Forwarder.stats``."""

    def __init__(self, url: str, token: str, spool: Spool, *, hostname: str,
                 counters: Callable[[], dict[str, int]], heartbeat_interval: float,
                 ssl: ssl_module.SSLContext | None, reconnect_min: float, reconnect_max: float,
                 open_timeout: float, compression: str | None, max_batch: int = MAX_BATCH):
        self.url, self.token, self.spool, self.hostname = url, token, spool, hostname
        self.counters = counters
        self.heartbeat_interval = heartbeat_interval
        self.ssl = ssl
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        self.open_timeout = open_timeout
        self.compression = compression
        self.started = time.time()
        self.max_message = DEFAULT_MAX_MESSAGE
        self.frame_limit = max_batch  # lowered by frame drops, never below FRAME_FLOOR
        self.sent = self.acked = self.duplicates = self.rejected = self.oversized = 0
        self.slowed = 0  # closes with 4429
        self.refused_samples = 0  # samples the console dropped from acked batches (ack "dropped")
        self.frame_drops = 0  # batches split after the connection was dropped under them
        self.connections = self.reconnects = 0
        self.connected = False
        self.last_error: str | None = None
        self.wake = asyncio.Event()  # new batches or acks: the writer looks again
        self._stopped = asyncio.Event()
        self._stopping = False
        self._deadline = 0.0
        self._sent_upto = 0  # highest id sent on the current connection
        self._suspect: tuple[int, int | None] | None = None  # (batch id, close code) to act on
        self._probe_upto = 0  # after a drop: one batch in flight until every id up to this is written
        self._last_send = 0.0  # monotonic end of the latest batch send
        self._failures = 0
        self._prefix = batchwire.batch_prefix(spool.instance)
        self.zlib = False  # the console's welcome says whether it takes compressed batches
        self.batch_bytes = self.wire_bytes = 0  # batches sent: their size, and what went on the wire

    def begin_stop(self, deadline: float) -> None:
        """Deliver what is spooled until ``deadline``, then end ``run``."""
        self._stopping, self._deadline = True, deadline
        self._stopped.set()
        self.wake.set()

    # -- batches that do not fit ------------------------------------------------------------

    @property
    def limit(self) -> int:
        """The largest batch message to send now (see the module's docstring)."""
        return min(self.max_message, self.frame_limit)

    def fit(self, encoded: list[bytes]) -> list[tuple[bytes, int]]:
        """Join encoded samples into batches that each fit in one message of at most ``limit``."""
        limit = self.limit
        parts, too_big = pack(encoded, limit - OVERHEAD)
        for size in too_big:
            self.oversized += 1
            log.warning("dropped a sample of %d bytes: over the limit of %d bytes for one message",
                        size, limit)
        return parts

    def _split(self, batch: Batch, refused: bool) -> None:
        """Replace a batch too large for the console by smaller ones (a lone sample is dropped)."""
        samples = spans(batch.samples)
        parts = self.fit(samples)
        if refused and len(parts) == 1:  # fits the advertised limit, yet was refused: halve
            half = len(samples) // 2
            parts = self.fit(samples[:half]) + self.fit(samples[half:]) if half else []
            if not half:
                self.oversized += 1
                log.warning("dropped a sample of %d bytes the console refused as too large", batch.size)
        log.info("batch %d (%d samples, %d bytes) too large for the console: sent as %d parts",
                 batch.id, batch.count, batch.size, len(parts))
        if self._probe_upto >= batch.id:  # the batches after it move up by the extra parts
            self._probe_upto += max(0, len(parts) - 1)
        self.spool.replace(batch, parts)

    def _probing(self) -> bool:
        """True while a batch in flight at a suspected frame drop is not yet written."""
        first = self.spool.first()
        if first is None or first.id > self._probe_upto:
            self._probe_upto = 0
            return False
        return True

    def _dropped(self, first: Batch) -> None:
        """A close with no close frame right after a batch: maybe a server's frame limit.

        With several batches in flight, the one dropped cannot be told, and
        the dropped connection's worker may still write the ones before it
        (splitting one of those would renumber batches it then writes): so
        first resend one batch at a time until every batch in flight at the
        drop is written. A batch over ``FRAME_FLOOR`` dropped again while alone
        in flight is split after the next welcome (if still unwritten) and the
        limit lowered to half its size, never below ``FRAME_FLOOR``.
        """
        if self._probing():
            if first.id == self._sent_upto and first.size + OVERHEAD > FRAME_FLOOR:
                self._suspect = (first.id, ABNORMAL)
            return
        inflight = list(itertools.takewhile(lambda b: b.id <= self._sent_upto, self.spool))
        if any(b.size + OVERHEAD > FRAME_FLOOR for b in inflight):
            self._probe_upto = self._sent_upto
            log.warning("console connection dropped (1006) right after %d batches (%d bytes) were sent: "
                        "resending one at a time, in case one is over a frame limit", len(inflight),
                        sum(b.size for b in inflight))

    def _frame_split(self, batch: Batch) -> None:
        """Split a batch dropped twice under us: the server's frame limit is below its size."""
        self.frame_limit = max(FRAME_FLOOR, min(self.limit, (batch.size + OVERHEAD) // 2))
        self.frame_drops += 1
        log.warning("console connection dropped (1006) again under batch %d of %d bytes: taken for a "
                    "WebSocket frame limit below it; batches now at most %d bytes (start daphne with "
                    "--websocket-max-frame-size equal to the console's max_message, %d)",
                    batch.id, batch.size + OVERHEAD, self.frame_limit, self.max_message)
        self._split(batch, refused=True)

    # -- the connection ------------------------------------------------------------------------

    async def run(self) -> None:
        while not (self._stopping and (not self.spool or time.monotonic() >= self._deadline)):
            try:
                delay = await self._attempt()
            except Exception as exc:  # a bug here must cost a reconnect, never the agent's data path
                log.exception("console connection failed unexpectedly")
                self.connected, self.last_error = False, f"{type(exc).__name__}: {exc}"
                delay = self._backoff()
            if self._stopping:
                if not self.spool:
                    return
                await asyncio.sleep(min(delay, max(0.0, self._deadline - time.monotonic())))
            else:  # stop() cuts the wait short: one last try to deliver
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), delay)
            self.reconnects += 1

    def _backoff(self) -> float:
        """Full jitter over an exponential cap: agents of a fleet do not reconnect in step."""
        self._failures += 1
        cap = min(self.reconnect_max, self.reconnect_min * 2 ** min(self._failures - 1, 30))
        return _JITTER.uniform(0, cap)

    async def _attempt(self) -> float:
        """One connection, from handshake to close; returns the delay before the next one."""
        tls: dict[str, Any] = {"ssl": self.ssl} if self.ssl else {}
        try:
            ws = await connect(self.url, additional_headers={"Authorization": f"Bearer {self.token}"},
                               user_agent_header=AGENT, open_timeout=self.open_timeout,
                               close_timeout=CLOSE_TIMEOUT, max_size=1 << 20, compression=self.compression,
                               **tls)
        except InvalidStatus as exc:
            status = exc.response.status_code
            self.last_error = f"HTTP {status}"
            if status in (401, 403):
                log.error("console refused the agent token (HTTP %d from %s): check the token; "
                          "retrying in %.0f s", status, self.url, self.reconnect_max)
                self._failures += 1
                return self.reconnect_max
            self._log_failure(f"console answered HTTP {status} at {self.url}")
            return self._backoff()
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            hint = ("; the console's certificate is not signed by a CA this host trusts: give its CA "
                    "with --ca-file PATH" if isinstance(exc, ssl_module.SSLCertVerificationError) else "")
            self._log_failure(f"cannot connect to the console at {self.url}: {self.last_error}{hint}")
            return self._backoff()
        began = time.monotonic()
        ours = False
        try:
            await self._session(ws)
        except ConnectionClosed:
            pass
        except TimeoutError:
            self.last_error = "no welcome from the console"
            log.warning("%s within %.0f s; reconnecting", self.last_error, self.open_timeout)
            ours = True
        except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
            self.last_error = f"bad message from the console: {exc}"
            log.error("%s; reconnecting", self.last_error)
            ours = True
            await ws.close(4400, "bad message")
        finally:
            self.connected = False
            await ws.close()
        code, reason = ws.close_code, ws.close_reason
        if time.monotonic() - began >= HEALTHY_AFTER and code != 4429:
            self._failures = 0
        if code == 1000 and self._stopping:
            return 0.0
        if not ours:
            self._closed_by_console(code, reason)
        if code == 4429:
            self.slowed += 1
            return SLOW_DOWN + self._backoff()
        return self._backoff()

    def _log_failure(self, message: str) -> None:
        # The first failure of an outage is a warning; repeats every few seconds are noise.
        log.log(logging.WARNING if self._failures == 0 else logging.DEBUG, "%s; spooling", message)

    async def _session(self, ws: ClientConnection) -> None:
        self._sent_upto = 0
        await ws.send(msgpack.packb({"t": "hello", "protocol": PROTOCOL, "agent": AGENT,
                                     "instance": self.spool.instance, "hostname": self.hostname,
                                     "started": self.started}))
        welcome = self._decode(await asyncio.wait_for(ws.recv(), self.open_timeout))
        if welcome.get("t") == "error":
            self.last_error = str(welcome.get("reason"))
            await ws.recv()  # the close that follows ends the session
        if welcome.get("t") != "welcome":
            raise ValueError(f"expected welcome, got {welcome.get('t')!r}")
        self._welcomed(welcome)
        await self._heartbeat(ws)
        reader = asyncio.create_task(self._read(ws))
        writer = asyncio.create_task(self._write(ws))
        done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        if reader not in done:  # let the reader take the acks that arrived before the close
            await asyncio.wait({reader}, timeout=CLOSE_TIMEOUT)
        for task in (reader, writer):
            task.cancel()
        results = await asyncio.gather(reader, writer, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                raise result

    def _welcomed(self, welcome: dict[str, Any]) -> None:
        """Apply ``welcome``: the console's mark decides what is resent, split or dropped."""
        self.max_message = int(welcome.get("max_message") or DEFAULT_MAX_MESSAGE)
        self.zlib = welcome.get("compression") == batchwire.ZLIB
        acked = int(welcome.get("acked") or 0)
        if acked > self.spool.last_id:  # ids we never issued: our id mark was lost, not their data
            log.warning("console has batch %d of instance %s, above our last id %d: renumbering",
                        acked, self.spool.instance, self.spool.last_id)
            self.spool.renumber_above(acked)
        else:
            self.spool.forget_upto(acked)
        suspect, self._suspect = self._suspect, None
        batch = self.spool.batches.get(suspect[0]) if suspect else None
        if suspect and batch is not None:  # still unwritten: it really was the one refused
            if suspect[1] == ABNORMAL:
                self._frame_split(batch)
            elif suspect[1] in _TOO_BIG:
                self._split(batch, refused=True)
            else:
                batch.strikes += 1
                if batch.strikes >= 2:
                    log.error("console refused batch %d twice as a protocol error: dropped", batch.id)
                    self.rejected += 1
                    self.spool.remove(batch)
        self._sent_upto = acked
        self.connected = True
        self.last_error = None
        self.connections += 1
        log.info("connected to the console as host %s (%s); %d batches to send",
                 welcome.get("host"), self.url, len(self.spool))

    @staticmethod
    def _decode(raw: str | bytes) -> dict[str, Any]:
        if isinstance(raw, str):
            raise ValueError("text frame from the console")
        message = msgpack.unpackb(raw, raw=False)
        if not isinstance(message, dict):
            raise ValueError("console message is not a map")
        return message

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            message = self._decode(raw)
            kind = message.get("t")
            if kind == "ack":
                self.acked += 1
                self.duplicates += bool(message.get("duplicate"))
                dropped = message.get("dropped")
                if type(dropped) is int and dropped > 0:  # bad samples the console counted and left out
                    self.refused_samples += dropped
                self.spool.forget_upto(int(message["id"]))  # the mark is at least this id
                self._failures = 0
                self.wake.set()
            elif kind == "error":
                self.last_error = str(message.get("reason"))
                log.warning("console error: %s", self.last_error)
            # other types are ignored: a newer console may say more

    async def _write(self, ws: ClientConnection) -> None:
        next_beat = time.monotonic() + self.heartbeat_interval
        while True:
            self.wake.clear()
            await self._send_batches(ws)
            if self._stopping and not self.spool:
                await ws.close(1000, "agent stopping")
                return
            now = time.monotonic()
            if now >= next_beat:
                await self._heartbeat(ws)
                next_beat = now + self.heartbeat_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), max(0.0, next_beat - time.monotonic()))

    async def _send_batches(self, ws: ClientConnection) -> None:
        """Send, oldest first, the batches not yet sent on this connection, within the window."""
        while True:
            window = 1 if self._probing() else WINDOW
            inflight = 0
            todo: list[Batch] = []
            for batch in self.spool:  # the in-flight ones come first, so this stays short
                if batch.id <= self._sent_upto:
                    inflight += 1
                elif inflight + len(todo) < window:
                    todo.append(batch)
                else:
                    break
            for batch in todo:
                if batch.size + OVERHEAD > self.limit:
                    self._split(batch, refused=False)
                    break  # the ids after it moved: look again
                self._sent_upto = batch.id  # before the send: a drop may come while it is written
                try:
                    message = batchwire.batch_message(self._prefix, batch.id, batch.samples, self.zlib)
                    await ws.send(message)
                finally:
                    self._last_send = time.monotonic()
                self.sent += 1
                self.batch_bytes += len(batch.samples)
                self.wire_bytes += len(message)
            else:
                return

    async def _heartbeat(self, ws: ClientConnection) -> None:
        # ``counters`` (Forwarder.checkpoint) gives the agent's and ours, saved before they go out.
        await ws.send(msgpack.packb({"t": "heartbeat", "instance": self.spool.instance,
                                     "time": time.time(), "counters": self.counters()}))

    def _closed_by_console(self, code: int | None, reason: str | None) -> None:
        """Note the batch a 4413 or 4400 (or a drop, ``_dropped``) was about; it is dealt with
        after the next welcome.

        Waiting for ``welcome.acked`` matters: an ack lost with the connection
        would otherwise make us split or drop a batch the console had written.
        """
        first = self.spool.first()
        if first is not None and first.id <= self._sent_upto:
            if code in (*_TOO_BIG, 4400):
                self._suspect = (first.id, code)
            elif code == ABNORMAL and time.monotonic() - self._last_send <= RIGHT_AFTER:
                self._dropped(first)
        self.last_error = self.last_error or f"closed by the console: {code} {reason or ''}".strip()
        level = logging.INFO if code in (1000, 1001) else logging.WARNING
        log.log(level, "console connection closed (%s%s); %d batches spooled", code,
                f" {reason}" if reason else "", len(self.spool))
