"""The agent: socket -> receive thread -> decode thread -> process table.

The receive thread (``receiver.Receiver``) only moves bytes from the kernel
into a queue. This module's decode thread takes them off, decodes, updates
the process table, hands every datagram to the listeners (``dump``'s
printer, the console forwarder) and writes the periodic log line.

Nothing a datagram does may end the decode thread: each step of handling
one (decode, process table, every listener) and each housekeeping pass is
its own unit, and an unexpected exception in it is an internal error
(``faults.py``): counted, logged sparingly, the datagram quarantined, and
the loop goes on. Should a thread end anyway, ``failure`` says so and the
process exits non-zero for its supervisor to restart it, rather than stay
up receiving what nobody decodes.
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
from .faults import QUARANTINE_BYTES, Faults, Quarantine, describe
from .ledger import Ledger
from .receiver import (
    DEFAULT_QUEUE,
    DEFAULT_QUEUE_BYTES,
    DEFAULT_RCVBUF,
    Receiver,
    ReceiverStats,
    bind_socket,
    kernel_qlen,
)
from .state import MAX_KEPT_BYTES, MAX_PROCESSES, Process, ProcessTable

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
    #: the senders run as this user (the demo's simulators): no warnings about other users' access
    local_senders: bool = False
    rcvbuf: int = DEFAULT_RCVBUF
    max_queue: int = DEFAULT_QUEUE
    max_queue_bytes: int = DEFAULT_QUEUE_BYTES
    max_processes: int = MAX_PROCESSES
    max_state_bytes: int = MAX_KEPT_BYTES  # of datagrams the process table holds on to
    log_interval: float = 60.0
    capture: str | None = None
    stats_file: str | None = None
    quarantine: str | None = None  # capture file of the datagrams that caused internal errors
    quarantine_bytes: int = QUARANTINE_BYTES


class Agent:
    """Owns the socket and the two threads; ``state`` is safe to read anytime."""

    def __init__(self, config: AgentConfig):
        self.config = config
        self.state = ProcessTable(max_processes=config.max_processes, max_bytes=config.max_state_bytes)
        self.listeners: list[Listener] = []
        self.error_listeners: list[ErrorListener] = []
        self.receiver: Receiver | None = None
        self._received: ReceiverStats | None = None  # the receiver's, still read after stop
        #: net.unix.max_dgram_qlen when the socket was bound (0: unknown, or not bound yet)
        self.kernel_qlen = 0
        self.quarantine = Quarantine(config.quarantine, config.quarantine_bytes)
        self.faults = Faults(self.quarantine)
        self.error: BaseException | None = None  # what ended the decode thread, if anything did
        self._decoder: threading.Thread | None = None
        self._capture: capture.Writer | None = None
        self._stopping = False
        self._done = threading.Event()
        self._old_switch = sys.getswitchinterval()
        self._last_log = (0.0, 0)
        self.ledger = Ledger(None)  # the counters of earlier runs on the spool directory (resume)
        self.more: Callable[[], dict[str, int]] = dict  # the forwarder's counters, for the log and stats file

    def resume(self, ledger: Ledger) -> None:
        """Continue the counters and the processes of the agent's last run (before ``start``)."""
        self.ledger = ledger
        self.state.remember(list(ledger.marks.values()), time.time())

    # -- life cycle -------------------------------------------------------------

    def start(self) -> None:
        """Bind and start both threads; raises SocketSetupError or QuarantineError with a clear message."""
        self._stopping = False
        self.quarantine.open()
        sock = bind_socket(self.config.socket, mode=self.config.socket_mode, group=self.config.socket_group,
                           rcvbuf=self.config.rcvbuf, local_senders=self.config.local_senders)
        # The queue length a unix socket gets is the sysctl's value when it is made: this one's.
        self.kernel_qlen = kernel_qlen() or 0
        if self.config.capture:
            self._capture = capture.Writer(self.config.capture)
        sys.setswitchinterval(SWITCH_INTERVAL)
        self.receiver = Receiver(sock, self.config.max_queue, self.config.max_queue_bytes)
        self._received = self.receiver.stats
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
        self._stopping = True
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.config.socket)  # senders now fail fast instead of queueing
        self.receiver.stop()
        self.receiver.join(timeout)
        if self._decoder is not None:
            self._decoder.join(timeout)
        self.receiver.sock.close()
        if self._capture is not None:
            with contextlib.suppress(OSError):  # a full disk: it holds what it could
                self._capture.close()
        sys.setswitchinterval(self._old_switch)
        self._unit("quarantine file", self.quarantine.save)
        self.faults.flush(force=True)
        self._unit("status log", self.log_status)
        if self.config.stats_file:
            self.write_stats(self.config.stats_file)
        self.receiver = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the decode thread has finished (after ``stop``)."""
        return self._done.wait(timeout)

    # -- the decode thread ----------------------------------------------------------

    def failure(self) -> tuple[str, BaseException | None] | None:
        """What stopped working although nobody stopped it: (thread, exception), or None."""
        if self._stopping or self.receiver is None:
            return None
        if not self.receiver.is_alive():
            return "receive thread", self.receiver.error
        if self._decoder is not None and not self._decoder.is_alive():
            return "decode thread", self.error
        return None

    def _decode_loop(self) -> None:
        try:
            self._decode()
        except BaseException as exc:  # kept for run_agent, which exits non-zero with it
            self.error = exc
        finally:
            self._done.set()

    def _decode(self) -> None:
        assert self.receiver is not None
        receiver = self.receiver
        get, taken = receiver.queue.get, receiver.taken
        add, add_malformed = self.state.add, self.state.add_malformed
        decode, DecodeError = wire.decode, wire.DecodeError
        listeners, error_listeners = self.listeners, self.error_listeners
        fault = self.faults
        writer = self._capture
        interval = self.config.log_interval
        next_log = time.monotonic() + interval
        next_second = time.monotonic() + 1.0
        while True:
            try:
                data = get(timeout=0.5)
            except queue.Empty:  # time for housekeeping
                data = _IDLE
            if data is None:
                break
            if data is not _IDLE:
                taken(data)
                if receiver.dropped:  # before this burst's datagrams show the gaps those leave
                    self.state.queue_drops.note(receiver.dropped)
                for raw in data:
                    if writer is not None and not self._write_capture(writer, raw):
                        writer = None
                    try:
                        datagram = decode(raw)
                    except DecodeError as exc:
                        self._malformed(raw, exc, add_malformed, error_listeners)
                        continue
                    except Exception as exc:  # a decoder bug: DecodeError is the contract
                        fault("decoder", exc, raw)
                        continue
                    try:
                        proc = add(datagram)
                    except Exception as exc:
                        fault("process table", exc, raw, datagram)
                        continue
                    for listener in listeners:
                        try:
                            listener(datagram, proc)
                        except Exception as exc:
                            fault(_listener_name(listener), exc, raw, datagram)
            now = time.monotonic()
            if now >= next_second:
                next_second = now + 1.0
                self._unit("expiry", self.state.expire)
                self._unit("quarantine file", self.quarantine.save)
                self._unit("fault log", self.faults.flush)
            if interval and now >= next_log:
                next_log = now + interval
                self._unit("status log", self.log_status)

    def _malformed(self, raw: bytes, exc: wire.DecodeError, add_malformed: Callable[..., Any],
                   error_listeners: list[ErrorListener]) -> None:
        try:
            add_malformed(raw, exc)
        except Exception as error:
            self.faults("process table (malformed)", error, raw)
        for on_error in error_listeners:
            try:
                on_error(raw, exc)
            except Exception as error:
                self.faults(_listener_name(on_error), error, raw)

    def _write_capture(self, writer: capture.Writer, raw: bytes) -> bool:
        """False once the capture failed (disk full): it is closed, not retried per datagram."""
        try:
            writer.write(raw)
            return True
        except Exception as exc:
            self._capture = None
            self.faults("capture file", exc)
            log.error("capture to %s stopped after %d datagrams", writer.path, writer.count)
            with contextlib.suppress(Exception):
                writer.close()
            return False

    def _unit(self, unit: str, work: Callable[[], object]) -> None:
        try:
            work()
        except Exception as exc:
            self.faults(unit, exc)

    # -- reporting ---------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """The agent's own counters (also sent as heartbeats to the console), earlier runs' included."""
        t = self.state.totals
        rs = self._received
        return self.ledger.total({
            "received": rs.received if rs else t.received,
            "decoded": t.decoded,
            "malformed": t.malformed,
            "lost": t.lost,
            "queue_drops": rs.queue_drops if rs else 0,
            "recv_errors": rs.recv_errors if rs else 0,
            "processes": len(self.state.current),
            "late_joins": t.late_joins,
            "incarnations": t.incarnations,
            "internal_errors": self.faults.count,
            "evicted": t.evicted,
            "seq_jumps": t.seq_jumps,
            "resumed": t.resumed,
            "kernel_qlen": self.kernel_qlen,
        })

    def write_stats(self, path: str) -> None:
        """Counters and per-process summaries as JSON, for scripts and benchmarks."""
        report = {"counters": {**self.counters(), **self.more()},
                  "processes": [p.summary() for p in self.state.processes()]}
        with open(path, "w") as fh:
            json.dump(report, fh, indent=1, default=wire.jsonable)

    def log_status(self) -> None:
        c = self.counters()
        more = self.more()
        then, count = self._last_log
        now = time.monotonic()
        rate = (c["received"] - count) / (now - then) if then else 0.0
        self._last_log = (now, c["received"])
        worst = ", ".join(f"{p.pid}#{p.incarnation}: lost {p.lost} malformed {p.malformed}"
                          for p in self.state.lossy())
        spool = (f"; spool full: dropped {more['dropped']} batches, {more['dropped_samples']} samples, "
                 f"{more['dropped_seconds']} seconds of data" if more.get("dropped") else "")
        log.info(
            "%d processes; received %d (%.0f/s), decoded %d, malformed %d, lost by sequence %d, "
            "queue drops %d, internal errors %d, evicted %d, resumed after silence %d%s%s", c["processes"],
            c["received"], rate, c["decoded"], c["malformed"], c["lost"], c["queue_drops"],
            c["internal_errors"], c["evicted"], c["resumed"], spool, f"; worst: {worst}" if worst else "",
        )


def _listener_name(listener: object) -> str:
    name = getattr(listener, "__qualname__", None) or type(listener).__qualname__
    return f"listener {name}"


def failure_line(failure: tuple[str, BaseException | None]) -> str:
    """The one log line that says why the agent is exiting."""
    thread, exc = failure
    why = f" ({describe(exc)})" if exc is not None else " (no exception: it returned)"
    return f"agent {thread} ended unexpectedly{why}: nothing is being decoded"
