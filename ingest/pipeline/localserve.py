"""The agent's local view served on a UNIX socket: ``top --local`` with no console at all.

A WebSocket server (``websockets``' asyncio ``unix_serve``) on a thread and
event loop of its own speaks the console's ``/ws/live/`` messages for the
``top`` tab, built by ``localview.LocalView`` (docs/live-protocol.md, "The
agent's local view"). Owner-only (0600) by default. Nothing here can stall
the agent: the decode thread only appends to the view's inbox; a client is
read MAX_MESSAGE bytes and RATE messages a second at most, and one that does
not keep up with its bounded send queue is closed, never waited for. A fault
is logged (rate limited), counted in ``stats``, and costs that message only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Final

from websockets.asyncio.server import ServerConnection, unix_serve
from websockets.exceptions import ConnectionClosed

from ..model.records import display
from .agent import Agent
from .faults import Throttle, describe
from .localview import MAX_GROUPS, PUBLISH_DELAY, HostRequest, LocalView
from .receiver import SocketSetupError
from .state import ProcessTable

log = logging.getLogger("ingest.localview")
_library_log = logging.getLogger("ingest.localview.websockets")
_library_log.setLevel(logging.WARNING)

#: What the local view's socket adds to the telemetry socket's name: ``telemetry.sock`` serves
#: ``telemetry.top.sock``, so agents whose sockets share a directory each have their own.
SUFFIX: Final = ".top.sock"
#: ``serve``'s default telemetry socket (``cli.DEFAULT_SOCKET``; a test keeps them equal).
DEFAULT_SOCKET: Final = "/run/wsgi-fleet/telemetry.sock"
DEFAULT_MODE: Final = 0o600
#: What a client may send: bytes a message, messages a second (with a burst of as many), and
#: refused messages (refilled at the same rate) before it is closed with 4429.
MAX_MESSAGE: Final = 64 * 1024
RATE: Final = 20
FLOOD_CLOSE: Final = 100
#: Messages, and their bytes, waiting for one client before it is closed as too slow (1008).
SEND_QUEUE: Final = 64
SEND_QUEUE_BYTES: Final = 8 << 20
CLOSE_TIMEOUT: Final = 2.0


def default_path(socket_path: str | None = None) -> str:
    """The local view's socket for the telemetry socket ``socket_path`` (None: the agent's default
    ``--socket``, /run/wsgi-fleet/telemetry.sock): beside it, named after it (``SUFFIX``)."""
    base, _ = os.path.splitext(socket_path or DEFAULT_SOCKET)
    return base + SUFFIX


def dumps(message: Mapping[str, Any]) -> str:
    """Strict JSON: wire text as display text, numbers that are not finite as null."""
    return json.dumps(display(message), allow_nan=False, separators=(",", ":"))


def bind_listener(path: str, mode: int = DEFAULT_MODE) -> socket.socket:
    """A stream socket bound at ``path`` with ``mode`` before anyone can connect (not listening
    yet): a dead agent's socket is replaced, a live one's or any other file is refused."""
    where = f"the local view's socket {path}"
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise SocketSetupError(f"cannot bind {where}: its directory does not exist")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise SocketSetupError(f"cannot bind {where}: it exists and is not a socket; remove it yourself "
                                   "or give another --local-socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect(path)
            except ConnectionRefusedError:
                log.info("removing stale socket %s left by an agent that is gone", path)
                os.unlink(path)
            except OSError as exc:
                raise SocketSetupError(f"cannot probe {where}: {exc.strerror or exc}") from None
            else:
                raise SocketSetupError(f"cannot bind {where}: another agent serves its local view there; "
                                       "stop it first, or give another --local-socket")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(0o077)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, mode)
    except OSError as exc:
        sock.close()
        raise SocketSetupError(f"cannot bind {where}: {exc.strerror or exc}") from None
    return sock


class _Bucket:
    """A token bucket: ``rate`` a second, at most ``burst`` at once."""
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens, self.at = rate, burst, float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class _Client:
    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.queued = 0  # characters waiting
        self.scope: str | None = None  # "host" or "fleet" once subscribed
        self.closing = False
        self.messages, self.refusals = _Bucket(RATE, RATE), _Bucket(RATE, FLOOD_CLOSE)
        self.writer: asyncio.Task[None] | None = None


class LocalServer:
    """Serves ``view`` on ``path``; ``start`` binds (SocketSetupError), ``stop`` closes and unlinks."""

    def __init__(self, view: LocalView, path: str, mode: int = DEFAULT_MODE, *, send_queue: int = SEND_QUEUE,
                 send_queue_bytes: int = SEND_QUEUE_BYTES, clock: Callable[[], float] = time.time,
                 listeners: list[Any] | None = None, required: bool = True) -> None:
        self.view, self.path, self.mode, self.clock = view, path, mode, clock
        #: the agent's listeners, which the view joins once it is served; ``required`` False: a
        #: path that cannot be bound (the default one, taken by another agent) is a warning
        self.listeners, self.required = listeners, required
        self.send_queue, self.send_queue_bytes = send_queue, send_queue_bytes
        #: connections, closed_slow, closed_flood, refused (messages), errors (sent), faults
        self.stats: Counter[str] = Counter()
        self._clients: set[_Client] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._log = Throttle(log)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._inode: int | None = None

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        try:
            sock = bind_listener(self.path, self.mode)
        except SocketSetupError as exc:
            if self.required:
                raise
            log.warning("%s; the local view is not served (--local-socket chooses another path)", exc)
            return
        self._inode = os.stat(self.path).st_ino
        self._thread = threading.Thread(target=self._run, args=(sock,), name="local-view", daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0) or self._loop is None:
            self.stop()
            raise SocketSetupError(f"the local view on {self.path} did not start (logged)")
        if self.listeners is not None:
            self.listeners.append(self.view)
        log.info("local view on %s (mode %04o)", self.path, self.mode)

    def stop(self, timeout: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            loop, stopping = self._loop, self._stopping
            if loop is not None and stopping is not None:
                with contextlib.suppress(RuntimeError):  # the loop ended already
                    loop.call_soon_threadsafe(stopping.set)
            thread.join(timeout)
        with contextlib.suppress(OSError):
            if self._inode is not None and os.lstat(self.path).st_ino == self._inode:
                os.unlink(self.path)  # ours still, not a later agent's
        self._inode = None

    def _run(self, sock: socket.socket) -> None:
        try:
            asyncio.run(self._main(sock))
        except Exception as exc:
            self.stats["faults"] += 1
            log.error("the local view on %s failed: %s", self.path, describe(exc), exc_info=exc)
        finally:
            self._loop = None
            self._ready.set()
            sock.close()

    async def _main(self, sock: socket.socket) -> None:
        self._stopping = asyncio.Event()
        async with unix_serve(self._connection, sock=sock, max_size=MAX_MESSAGE, max_queue=4,
                              compression=None, close_timeout=CLOSE_TIMEOUT, logger=_library_log):
            self._loop = asyncio.get_running_loop()
            self._ready.set()
            ticker = asyncio.create_task(self._ticker())
            await self._stopping.wait()
            ticker.cancel()

    # -- every second ----------------------------------------------------------------------------

    async def _ticker(self) -> None:
        while True:
            now = self.clock()
            await asyncio.sleep(math.ceil(now) - now + 0.05)
            try:
                self.publish(self.clock())
            except Exception as exc:  # a bug here must cost one second, never the view
                self._fault("publishing a second", exc)
            self._log.flush()

    def publish(self, now: float) -> None:
        """The seconds due now to every subscriber (the loop's thread)."""
        view = self.view
        seconds = view.tick(now)
        live = view.tab_frame(now)  # taken every second, subscribed or not
        hosts = [c for c in self._clients if c.scope == "host"]
        fleets = [c for c in self._clients if c.scope == "fleet"]
        if not hosts and not fleets:
            return
        records = view.records(now)
        if live is not None:
            self._broadcast(hosts, live)
        for second in seconds:
            recent = view.recent(second, view.groups(records)[:MAX_GROUPS])
            if hosts:
                self._broadcast(hosts, view.host_frame(second, now, records, recent))
            if fleets:
                self._broadcast(fleets, view.fleet("fleet.update", second, now, records, recent))

    def _broadcast(self, clients: list[_Client], message: Mapping[str, Any]) -> None:
        text = dumps(message)
        for client in clients:
            self._push(client, text)

    # -- connections -----------------------------------------------------------------------------

    async def _connection(self, ws: ServerConnection) -> None:
        client = _Client(ws)
        self._clients.add(client)
        self.stats["connections"] += 1
        client.writer = asyncio.create_task(self._write(client))
        try:
            self._push(client, dumps(self.view.hello(self.clock())))
            async for message in ws:
                self._message(client, message)
        except ConnectionClosed:
            pass
        except Exception as exc:
            self._fault("a connection", exc)
        finally:
            self._clients.discard(client)
            client.writer.cancel()

    async def _write(self, client: _Client) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                text = await client.queue.get()
                client.queued -= len(text)
                await client.ws.send(text)

    def _push(self, client: _Client, text: str) -> None:
        if client.closing:
            return
        if client.queue.qsize() >= self.send_queue or client.queued + len(text) > self.send_queue_bytes:
            self.stats["closed_slow"] += 1
            self._log("slow", f"local view: closed a client that did not keep up ({client.queue.qsize()} "
                              f"messages, {client.queued} characters waiting)")
            self._close(client, 1008, "too slow: messages were waiting")
            return
        client.queue.put_nowait(text)
        client.queued += len(text)

    def _close(self, client: _Client, code: int, reason: str) -> None:
        client.closing = True
        task = asyncio.create_task(self._closing(client, code, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _closing(client: _Client, code: int, reason: str) -> None:
        if client.writer is not None:
            client.writer.cancel()
        try:  # a client that reads nothing may never take the close frame either
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.ws.close(code, reason), CLOSE_TIMEOUT)
        finally:
            client.ws.transport.abort()

    def _error(self, client: _Client, reason: str, **more: Any) -> None:
        self.stats["errors"] += 1
        self._push(client, dumps({"type": "error", "reason": reason, **more}))

    def _message(self, client: _Client, message: str | bytes) -> None:
        if not client.messages.take():
            self.stats["refused"] += 1
            if not client.refusals.take():
                self.stats["closed_flood"] += 1
                self._log("flood", "local view: closed a client that kept sending over its limit")
                self._close(client, 4429, "too many messages")
            elif client.queue.qsize() < self.send_queue // 2:  # answers it does not read: not slow, a flood
                self._error(client, f"too many messages: at most {RATE} a second")
            return
        if isinstance(message, bytes):
            return self._error(client, "messages are JSON text")
        try:
            data = json.loads(message)
        except (ValueError, RecursionError):
            return self._error(client, "not JSON")
        if not isinstance(data, dict):
            return self._error(client, "a message is a JSON object")
        kind, scope = data.get("type"), data.get("scope")
        if kind == "unsubscribe":
            client.scope = None
        elif kind != "subscribe":
            self._error(client, "unknown message type (subscribe or unsubscribe)")
        elif scope == "fleet":
            self._subscribe(client, "fleet", None)
        elif scope == "host":
            try:
                request = HostRequest.from_message(data)
            except ValueError as exc:
                return self._error(client, str(exc))
            self._subscribe(client, "host", request)
        else:
            self._error(client, "unknown scope (fleet or host)")

    def _subscribe(self, client: _Client, scope: str, request: HostRequest | None) -> None:
        """The snapshots, then this client's share of every second from the next one on."""
        view, now = self.view, self.clock()
        client.scope = None
        try:
            if request is None:
                records = view.records(now)
                texts = [dumps(view.fleet("fleet.snapshot", math.floor(now) - PUBLISH_DELAY, now, records))]
            else:
                texts = [dumps(view.host_snapshot(request, now)), dumps(view.tab_snapshot(request, now))]
        except Exception as exc:
            self._fault(f"a {scope} snapshot", exc)
            return self._error(client, "the agent could not build the snapshot (internal error, logged)",
                               about=f"{scope}.snapshot")
        for text in texts:
            self._push(client, text)
        client.scope = scope

    def _fault(self, what: str, exc: BaseException) -> None:
        self.stats["faults"] += 1
        self.view.faults += 1
        self._log(what, f"local view: {what} failed: {describe(exc)}", exc)


def process_records(table: ProcessTable, now: float) -> list[dict[str, Any]]:
    """The agent's process table as registry records, read off the decode thread: a copy
    that a change interrupts is taken again; ``last_seen`` on the wall clock."""
    for _ in range(3):
        try:
            procs = list(table.ended) + list(table.current.values())
            break
        except RuntimeError:  # changed while copied
            continue
    else:
        return []
    mono = table.clock()
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for p in procs:
        threads = p.last_tick.get("request_threads_maximum")
        out[p.key] = {"pid": p.pid, "incarnation": p.incarnation, "group": display(p.group), "state": p.state,
                      "last_seen": now - max(mono - p.last_seen, 0.0), "interval": p.interval,
                      "threads": threads if type(threads) is int else 0}
    return list(out.values())


def attach(agent: Agent, path: str | None, mode: int = DEFAULT_MODE,
           hostname: str | None = None) -> LocalServer:
    """The local view of ``agent`` and its server, on ``path`` (None: ``default_path`` of the
    agent's socket, given up with a warning when it cannot be bound); start it after the agent."""
    view = LocalView(hostname or socket.gethostname(), counters=lambda: {**agent.counters(), **agent.more()},
                     processes=lambda now: process_records(agent.state, now))
    return LocalServer(view, path or default_path(agent.config.socket), mode, listeners=agent.listeners,
                       required=path is not None)
