"""The agent: socket -> receive thread -> decode thread -> process table.

The receive thread (``receiver.Receiver``) only moves bytes from the kernel
into a queue. This module's decode thread takes them off, decodes, updates
the process table, hands every datagram to the listeners (``dump``'s
printer now, the console forwarder next) and writes the periodic log line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import capture, wire
from .receiver import DEFAULT_RCVBUF, Receiver, bind_socket
from .state import Process, ProcessTable

log = logging.getLogger("ingest.agent")

Listener = Callable[[wire.Datagram, Process], None]
ErrorListener = Callable[[bytes, wire.DecodeError], None]

#: While the agent runs, let the receive thread take the GIL back within
#: 0.5 ms: with the kernel's default queue of 10 datagrams, the interpreter's
#: usual 5 ms switch interval is long enough to overflow it at 4,000/s.
SWITCH_INTERVAL = 0.0005
_IDLE: Any = object()  # "nothing arrived for a while": time for housekeeping


@dataclass
class AgentConfig:
    socket: str
    socket_mode: int = 0o660
    socket_group: str | int | None = None
    rcvbuf: int = DEFAULT_RCVBUF
    max_queue: int = 100_000
    log_interval: float = 60.0
    capture: str | None = None
    stats_file: str | None = None


class Agent:
    """Owns the socket and the two threads; ``state`` is safe to read anytime."""

    def __init__(self, config: AgentConfig):
        self.config = config
        self.state = ProcessTable()
        self.listeners: list[Listener] = []
        self.error_listeners: list[ErrorListener] = []
        self.receiver: Receiver | None = None
        self._decoder: threading.Thread | None = None
        self._capture: capture.Writer | None = None
        self._done = threading.Event()
        self._old_switch = sys.getswitchinterval()
        self._last_log = (0.0, 0)

    # -- life cycle -------------------------------------------------------------

    def start(self) -> None:
        """Bind and start both threads; raises SocketSetupError with a clear message."""
        sock = bind_socket(self.config.socket, mode=self.config.socket_mode,
                           group=self.config.socket_group, rcvbuf=self.config.rcvbuf)
        if self.config.capture:
            self._capture = capture.Writer(self.config.capture)
        sys.setswitchinterval(SWITCH_INTERVAL)
        self.receiver = Receiver(sock, self.config.max_queue)
        self._decoder = threading.Thread(target=self._decode_loop, name="telemetry-decode", daemon=True)
        self.receiver.start()
        self._decoder.start()
        self._last_log = (time.monotonic(), 0)  # the first status line's rate covers the first interval
        log.info("listening on %s (mode %04o%s)", self.config.socket, self.config.socket_mode,
                 f", group {self.config.socket_group}" if self.config.socket_group is not None else "")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking datagrams, decode what was received, remove the socket."""
        if self.receiver is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.config.socket)  # senders now fail fast instead of queueing
        self.receiver.stop()
        self.receiver.join(timeout)
        if self._decoder is not None:
            self._decoder.join(timeout)
        self.receiver.sock.close()
        if self._capture is not None:
            self._capture.close()
        sys.setswitchinterval(self._old_switch)
        self.log_status()
        if self.config.stats_file:
            self.write_stats(self.config.stats_file)
        self.receiver = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the decode thread has finished (after ``stop``)."""
        return self._done.wait(timeout)

    # -- the decode thread ----------------------------------------------------------

    def _decode_loop(self) -> None:
        assert self.receiver is not None
        receiver = self.receiver
        get = receiver.queue.get
        add, add_malformed = self.state.add, self.state.add_malformed
        decode, DecodeError = wire.decode, wire.DecodeError
        listeners, error_listeners = self.listeners, self.error_listeners
        writer = self._capture
        interval = self.config.log_interval
        next_log = time.monotonic() + interval
        next_expire = time.monotonic() + 1.0
        try:
            while True:
                try:
                    data = get(timeout=0.5)
                except queue.Empty:  # time for housekeeping
                    data = _IDLE
                if data is None:
                    break
                if data is not _IDLE:
                    receiver.handled += len(data)
                    for raw in data:
                        if writer is not None:
                            writer.write(raw)
                        try:
                            datagram = decode(raw)
                        except DecodeError as exc:
                            add_malformed(raw, exc)
                            for on_error in error_listeners:
                                on_error(raw, exc)
                        else:
                            proc = add(datagram)
                            for listener in listeners:
                                listener(datagram, proc)
                now = time.monotonic()
                if now >= next_expire:
                    self.state.expire()
                    next_expire = now + 1.0
                if interval and now >= next_log:
                    self.log_status()
                    next_log = now + interval
        finally:
            self._done.set()

    # -- reporting ---------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """The agent's own counters (also sent as heartbeats to the console)."""
        t = self.state.totals
        rs = self.receiver.stats if self.receiver else None
        return {
            "received": rs.received if rs else t.received,
            "decoded": t.decoded,
            "malformed": t.malformed,
            "lost": t.lost,
            "queue_drops": rs.queue_drops if rs else 0,
            "recv_errors": rs.recv_errors if rs else 0,
            "processes": len(self.state.current),
            "late_joins": t.late_joins,
            "incarnations": t.incarnations,
        }

    def write_stats(self, path: str) -> None:
        """Counters and per-process summaries as JSON, for scripts and benchmarks."""
        report = {"counters": self.counters(),
                  "processes": [p.summary() for p in self.state.processes()]}
        with open(path, "w") as fh:
            json.dump(report, fh, indent=1, default=wire.jsonable)

    def log_status(self) -> None:
        c = self.counters()
        then, count = self._last_log
        now = time.monotonic()
        rate = (c["received"] - count) / (now - then) if then else 0.0
        self._last_log = (now, c["received"])
        worst = ", ".join(f"{p.pid}#{p.incarnation}: lost {p.lost} malformed {p.malformed}"
                          for p in self.state.lossy())
        log.info(
            "%d processes; received %d (%.0f/s), decoded %d, malformed %d, lost by sequence %d, "
            "queue drops %d%s", c["processes"], c["received"], rate, c["decoded"], c["malformed"],
            c["lost"], c["queue_drops"], f"; worst: {worst}" if worst else "",
        )
