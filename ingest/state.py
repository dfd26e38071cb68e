"""What the agent knows about every mod_wsgi process on its host.

Processes are keyed by (pid, incarnation): pids are reused by the OS, and
a restart that reuses one must not merge two lives. Slow-request and GC
datagrams carry no process group or hostname, so they are joined to the
process by pid; the process's last tick gives them their identity.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from . import sequence
from .fields import Kind
from .wire import Datagram, DecodeError

TICK = int(Kind.REQUEST_METRICS)
SLOW = int(Kind.SLOW_REQUEST)
STARTED = int(Kind.PROCESS_STARTED)
STOPPING = int(Kind.PROCESS_STOPPING)
STOPPED = int(Kind.PROCESS_STOPPED)
GC_SNAPSHOT = int(Kind.GC_SNAPSHOT)
GC_EVENT = int(Kind.GC_EVENT)

STATUS_FIELDS = tuple(f"status_{c}xx_total" for c in range(1, 6))
IDENTITY_FIELDS = ("hostname", "process_group", "process_parent_pid", "mod_wsgi_version",
                   "python_version", "apache_version", "mpm_name")
#: A process that sends nothing for this many intervals is presumed dead:
#: mod_wsgi can be killed without a STOPPED (wire-protocol.md section 9).
SILENT_INTERVALS = 3
#: Ended processes are kept this long so their STOPPED and losses stay visible.
ENDED_RETENTION = 600.0
COMPLETED_SLOW_KEPT = 200


@dataclass(slots=True)
class Interpreter:
    """GC state of one Python interpreter ("" is the main one)."""

    snapshot: dict[str, Any] = field(default_factory=dict)
    events: int = 0
    dropped_events: int = 0  # summed: mod_wsgi sends a per-tick count


@dataclass(slots=True)
class Process:
    pid: int
    incarnation: int
    first_seq: int
    last_seq: int
    late_join: bool
    first_seen: float
    last_seen: float
    state: str = "running"  # running, stopping, stopped, gone
    identity: dict[str, Any] = field(default_factory=dict)
    started_stamp: float | None = None
    last_stamp: float = 0.0
    interval: float = 1.0
    received: int = 0
    lost: int = 0
    malformed: int = 0
    by_kind: Counter[int] = field(default_factory=Counter)
    last_tick: dict[str, Any] = field(default_factory=dict)
    requests: int = 0
    status: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])
    shutdown_reason: str | None = None
    stopped: dict[str, Any] = field(default_factory=dict)
    slow_active: dict[Any, dict[str, Any]] = field(default_factory=dict)
    slow_completed: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=COMPLETED_SLOW_KEPT))
    slow_orphaned: int = 0
    interpreters: dict[str, Interpreter] = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.incarnation)

    @property
    def group(self) -> str | None:
        return self.identity.get("process_group")

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly view for logs, tests and (later) the console."""
        return {
            "pid": self.pid, "incarnation": self.incarnation, "state": self.state,
            "group": self.group, "hostname": self.identity.get("hostname"),
            "first_seq": self.first_seq, "last_seq": self.last_seq, "late_join": self.late_join,
            "received": self.received, "lost": self.lost, "malformed": self.malformed,
            "requests": self.requests, "status": dict(zip(("1xx", "2xx", "3xx", "4xx", "5xx"),
                                                          self.status, strict=True)),
            "shutdown_reason": self.shutdown_reason,
            "slow_active": len(self.slow_active), "slow_completed": len(self.slow_completed),
            "interpreters": sorted(self.interpreters),
        }


@dataclass
class Totals:
    received: int = 0
    decoded: int = 0
    malformed: int = 0
    lost: int = 0
    late_joins: int = 0
    incarnations: int = 0
    unknown_kinds: int = 0
    malformed_unattributed: int = 0
    errors: Counter[str] = field(default_factory=Counter)


def _slow_key(fields: dict[str, Any]) -> Any:
    # The log id with the pid identifies a request; without one, its slot
    # and start time do (both are repeated unchanged on every record).
    return fields.get("slow_log_id") or (fields.get("slow_thread_id"), fields.get("slow_start_stamp"))


class ProcessTable:
    """Per-process state and loss accounting, fed one datagram at a time."""

    def __init__(self, clock: Any = time.monotonic):
        self.clock = clock
        self.current: dict[int, Process] = {}  # pid -> its current incarnation
        self.ended: deque[Process] = deque()
        self.totals = Totals()
        self._incarnations: Counter[int] = Counter()

    # -- feeding -------------------------------------------------------------

    def add(self, d: Datagram) -> Process:
        """Account for one decoded datagram and return its process."""
        now = self.clock()
        totals = self.totals
        totals.received += 1
        totals.decoded += 1
        proc = self.current.get(d.pid)
        verdict = sequence.step(proc.last_seq if proc else None, d.seq, d.kind)
        if verdict.new_incarnation:
            if proc is not None:
                self._end(proc, "gone")
            proc = self._open(d, now, verdict.late_join)
        else:
            assert proc is not None
            proc.last_seq = d.seq
        if verdict.lost:
            proc.lost += verdict.lost
            totals.lost += verdict.lost
        proc.received += 1
        proc.by_kind[d.kind] += 1
        proc.last_seen = now
        proc.last_stamp = d.stamp
        handler = self._handlers.get(d.kind)
        if handler is not None:
            handler(self, proc, d)
        elif d.kind not in Kind._value2member_map_:
            totals.unknown_kinds += 1
        return proc

    def add_malformed(self, data: bytes, error: DecodeError) -> Process | None:
        """Count a datagram that did not decode, against its pid when known."""
        totals = self.totals
        totals.received += 1
        totals.malformed += 1
        totals.errors[error.problem.split(":")[0]] += 1
        proc = self.current.get(error.pid) if error.pid is not None else None
        if proc is None:
            totals.malformed_unattributed += 1
            return None
        proc.malformed += 1
        # The bad datagram still used up a sequence number; a readable
        # header lets us keep the counter in step so it is not counted as
        # lost as well.
        seq = _peek_seq(data)
        if seq is not None and seq > proc.last_seq:
            proc.lost += seq - proc.last_seq - 1
            totals.lost += seq - proc.last_seq - 1
            proc.last_seq = seq
        return proc

    def _open(self, d: Datagram, now: float, late_join: bool) -> Process:
        self._incarnations[d.pid] += 1
        self.totals.incarnations += 1
        if late_join:
            self.totals.late_joins += 1
        proc = Process(pid=d.pid, incarnation=self._incarnations[d.pid], first_seq=d.seq,
                       last_seq=d.seq, late_join=late_join, first_seen=now, last_seen=now)
        self.current[d.pid] = proc
        return proc

    def _end(self, proc: Process, state: str) -> None:
        if proc.state in ("running", "stopping"):
            proc.state = state
        proc.slow_orphaned += len(proc.slow_active)
        proc.slow_active.clear()
        if self.current.get(proc.pid) is proc:
            del self.current[proc.pid]
        self.ended.append(proc)

    # -- per kind ----------------------------------------------------------------

    def _tick(self, proc: Process, d: Datagram) -> None:
        f = d.fields
        proc.last_tick = f
        for name in IDENTITY_FIELDS:
            if name in f:
                proc.identity[name] = f[name]
        proc.interval = f.get("telemetry_interval") or proc.interval
        proc.requests += f.get("request_count", 0)
        status = proc.status
        for i, name in enumerate(STATUS_FIELDS):
            status[i] += f.get(name, 0)

    def _started(self, proc: Process, d: Datagram) -> None:
        proc.started_stamp = d.stamp
        for name in IDENTITY_FIELDS:
            if name in d.fields:
                proc.identity[name] = d.fields[name]

    def _stopping(self, proc: Process, d: Datagram) -> None:
        proc.state = "stopping"
        proc.shutdown_reason = d.fields.get("shutdown_reason", proc.shutdown_reason)

    def _stopped(self, proc: Process, d: Datagram) -> None:
        proc.stopped = dict(d.fields)
        proc.shutdown_reason = d.fields.get("shutdown_reason", proc.shutdown_reason)
        proc.state = "stopped"
        self._end(proc, "stopped")

    def _slow(self, proc: Process, d: Datagram) -> None:
        f = d.fields
        key = _slow_key(f)
        record = {"pid": proc.pid, "seq": d.seq, "stamp": d.stamp, **f}
        if f.get("slow_record_state") == 1:
            proc.slow_active.pop(key, None)
            proc.slow_completed.append(record)
        else:
            proc.slow_active[key] = record

    def _gc_snapshot(self, proc: Process, d: Datagram) -> None:
        interp = self._interpreter(proc, d)
        interp.snapshot = d.fields
        interp.dropped_events += d.fields.get("gc_dropped_events", 0)

    def _gc_event(self, proc: Process, d: Datagram) -> None:
        self._interpreter(proc, d).events += 1

    @staticmethod
    def _interpreter(proc: Process, d: Datagram) -> Interpreter:
        name = d.fields.get("interpreter_name", "")
        interp = proc.interpreters.get(name)  # type: ignore[arg-type]
        if interp is None:
            interp = proc.interpreters[name] = Interpreter()  # type: ignore[index]
        return interp

    _handlers = {
        TICK: _tick, STARTED: _started, STOPPING: _stopping, STOPPED: _stopped,
        SLOW: _slow, GC_SNAPSHOT: _gc_snapshot, GC_EVENT: _gc_event,
    }

    # -- housekeeping --------------------------------------------------------------

    def expire(self) -> None:
        """Mark silent processes gone, orphan stale slow records, forget old ends."""
        now = self.clock()
        for proc in list(self.current.values()):
            silent = now - proc.last_seen
            if silent > SILENT_INTERVALS * proc.interval + 1.0:
                self._end(proc, "gone")
                continue
            horizon = proc.last_stamp - SILENT_INTERVALS * proc.interval
            stale = [k for k, r in proc.slow_active.items() if r["stamp"] < horizon]
            for k in stale:
                del proc.slow_active[k]
                proc.slow_orphaned += 1
        while self.ended and now - self.ended[0].last_seen > ENDED_RETENTION:
            self.ended.popleft()

    # -- reading -------------------------------------------------------------

    def processes(self) -> list[Process]:
        return list(self.ended) + list(self.current.values())

    def lossy(self, limit: int = 5) -> list[Process]:
        """The processes with the most loss or malformed datagrams."""
        bad = [p for p in self.processes() if p.lost or p.malformed]
        return sorted(bad, key=lambda p: (p.lost + p.malformed), reverse=True)[:limit]


def _peek_seq(data: bytes) -> int | None:
    if len(data) >= 16:
        return int.from_bytes(data[12:16], "little")
    return None
