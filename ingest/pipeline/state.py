"""What the agent knows about every mod_wsgi process on its host.

Processes are keyed by (pid, incarnation): pids are reused by the OS, and
a restart that reuses one must not merge two lives. Slow-request and GC
datagrams carry no process group or hostname, so they are joined to the
process by pid; the process's last tick gives them their identity.

Everything here is bounded: a sender that invents pids, slow-request keys or
interpreter names fills a table of fixed size, in processes and in bytes of
the datagrams held, and pushes out the processes silent the longest
(counted as ``evicted``). The values a handler reads are checked again
even though the decoder checks them first: one bad value must cost one
datagram, never the decode thread or the expiry pass.
"""

from __future__ import annotations

import logging
import math
import time
from array import array
from collections import OrderedDict, deque
from typing import Any, cast

from ..model.fields import Kind
from ..model.kinds import GC_EVENT, GC_SNAPSHOT, SLOW, STARTED, STATUS_FIELDS, STOPPED, STOPPING, TICK
from ..model.sample import IDENTITY_FIELDS, SILENT_INTERVALS, slow_request
from . import sequence
from .drops import QueueDrops
from .faults import Throttle
from .process import Interpreter, Process, Totals
from .resume import MARK_HORIZON, Dormant, Mark, discard, mark_of
from .wire import Datagram, DecodeError

ENDED_RETENTION = 600.0
#: Processes tracked at once, running and ended: a sender inventing pids
#: must not grow the agent without end (100,000 fake pids took 800 MB).
MAX_PROCESSES = 4096
MAX_ENDED = 4096
#: Per process: requests in flight (one per worker thread, at most 128 in
#: mod_wsgi; twice that for records whose completion was lost) and
#: interpreters (one per application group) that are kept.
MAX_SLOW_ACTIVE = 256
MAX_INTERPRETERS = 64
#: Bytes of datagrams the whole table holds on to; beyond it whole processes
#: go, ended ones first, then the longest silent. Real hosts hold ~100 kB a
#: process; a hostile one could hold 7 MB in each with valid datagrams.
MAX_KEPT_BYTES = 64 << 20
#: telemetry_interval decides when a silent process is gone; outside this
#: range it is clamped (1e308 would keep a process forever, 0 end it at once).
INTERVAL_RANGE = (0.01, 3600.0)
MAX_PROBLEMS = 256  # kinds of decode error counted by name

log = logging.getLogger("ingest.state")


def interval(value: Any, previous: float) -> float:
    """A usable telemetry_interval: finite and clamped to INTERVAL_RANGE, else ``previous``."""
    low, high = INTERVAL_RANGE
    if type(value) is int and value > 0:
        return float(min(max(value, low), high))
    if type(value) is float and math.isfinite(value) and value > 0:
        return min(max(value, low), high)
    return previous


class ProcessTable:
    """Per-process state and loss accounting, fed one datagram at a time."""

    def __init__(self, clock: Any = time.monotonic, max_processes: int = MAX_PROCESSES,
                 max_ended: int = MAX_ENDED, max_bytes: int = MAX_KEPT_BYTES):
        self.clock = clock
        self.max_processes = max(1, max_processes)
        self.max_bytes = max_bytes
        self.kept = 0  # the sum of every tracked process's ``kept``
        # pid -> its current incarnation, the one heard from longest ago first
        self.current: OrderedDict[int, Process] = OrderedDict()
        self.ended: deque[Process] = deque(maxlen=max(1, max_ended))
        self.totals = Totals()
        # pid -> its last incarnation number, bounded too: a pid forgotten
        # here starts above every number forgotten, so lives never share one.
        self._incarnations: OrderedDict[int, int] = OrderedDict()
        self._max_incarnations = 2 * (self.max_processes + max(1, max_ended))
        self._incarnation_floor = 0
        self.dormant = Dormant(self.max_processes + max(1, max_ended))  # gone, or heard by the last run
        self.queue_drops = QueueDrops()  # the agent's receive queue counts those itself
        self._log = Throttle(log)

    # -- feeding -------------------------------------------------------------

    def add(self, d: Datagram) -> Process:
        """Account for one decoded datagram and return its process."""
        now = self.clock()
        totals = self.totals
        totals.received += 1
        totals.decoded += 1
        proc = self.current.get(d.pid) or self.dormant.pop(d.pid)
        if proc is None:
            verdict = sequence.step(None, d.seq, d.kind)
        else:
            verdict = sequence.step(proc.last_seq, d.seq, d.kind, now - proc.last_seen)
        if verdict.implausible:
            totals.seq_jumps += 1
        low = proc.last_seq if proc is not None and not verdict.new_incarnation else 0
        if verdict.new_incarnation:
            if proc is not None and proc.state != "gone":
                self._end(proc, "gone")
            proc = self._open(d, now, verdict.late_join)
        else:
            assert proc is not None
            if proc.state == "gone":
                self._revive(proc, now)
            proc.last_seq = d.seq
            self.current.move_to_end(d.pid)
        lost = verdict.lost and verdict.lost - self.queue_drops.explained(d.pid, low, d.seq)
        proc.lost += lost
        totals.lost += lost
        proc.received += 1
        proc.by_kind[d.kind] += 1
        proc.last_seen = now
        proc.last_stamp = d.stamp  # NaN or inf here only costs this process its active slow records
        handler = self._handlers.get(d.kind)
        if handler is not None:
            handler(self, proc, d)
        elif d.kind not in Kind._value2member_map_:
            totals.unknown_kinds += 1
        if self.kept > self.max_bytes:
            self._shed(now)
        return proc

    def add_malformed(self, data: bytes, error: DecodeError) -> Process | None:
        """Count a datagram that did not decode, against its pid when known."""
        totals = self.totals
        totals.received += 1
        totals.malformed += 1
        problem = error.problem.split(":")[0]
        if problem in totals.errors or len(totals.errors) < MAX_PROBLEMS:  # "field N" for any N
            totals.errors[problem] += 1
        proc = self.current.get(error.pid) if error.pid is not None else None
        if proc is None:
            totals.malformed_unattributed += 1
            return None
        proc.malformed += 1
        # The bad datagram still used up a sequence number; a readable
        # header lets us keep the counter in step so it is not counted as
        # lost as well.
        seq = sequence.peek(data)
        if seq is not None and seq > proc.last_seq and (
                seq - proc.last_seq - 1 <= sequence.plausible_gap(self.clock() - proc.last_seen)):
            proc.lost += seq - proc.last_seq - 1
            totals.lost += seq - proc.last_seq - 1
            proc.last_seq = seq
        return proc

    def _open(self, d: Datagram, now: float, late_join: bool) -> Process:
        self.totals.incarnations += 1
        if late_join:
            self.totals.late_joins += 1
        if len(self.current) >= self.max_processes:
            self._evict(now)
        proc = Process(pid=d.pid, incarnation=self._next_incarnation(d.pid), first_seq=d.seq,
                       last_seq=d.seq, late_join=late_join, first_seen=now, last_seen=now)
        self.current[d.pid] = proc
        return proc

    def _revive(self, proc: Process, now: float) -> None:
        """A gone process continued its sequence: the same life, running again (its gap is loss)."""
        self.totals.resumed += 1
        if not discard(self.ended, proc):  # forgotten already, or a stand-in for one the last run heard
            self.kept += proc.kept
        if len(self.current) >= self.max_processes:
            self._evict(now)
        proc.state = "running"
        self.current[proc.pid] = proc

    def _next_incarnation(self, pid: int) -> int:
        number = self._incarnations.get(pid, self._incarnation_floor) + 1
        self._used(pid, number)
        return number

    def _used(self, pid: int, number: int) -> None:
        seen = self._incarnations
        seen[pid] = max(seen.pop(pid, 0), number)
        if len(seen) > self._max_incarnations:
            _, forgotten = seen.popitem(last=False)
            self._incarnation_floor = max(self._incarnation_floor, forgotten)

    def _evict(self, now: float) -> None:
        """Forget the process heard from longest ago: the table is full."""
        pid, proc = self.current.popitem(last=False)
        self._forget(proc)
        self._log("evicted", f"process table full ({self.max_processes} processes, {self.max_bytes} "
                             f"bytes): forgot pid {pid}, silent for {now - proc.last_seen:.1f} s")

    def _forget(self, proc: Process, early: bool = True) -> None:
        self.kept -= proc.kept
        self.dormant.forget(proc)
        if early:
            self.totals.evicted += 1

    def _shed(self, now: float) -> None:
        """Forget whole processes, ended ones first, until what the table holds fits again."""
        while self.kept > self.max_bytes:
            if self.ended:
                self._forget(self.ended.popleft())
            elif len(self.current) > 1:  # never the one just heard from: it is last
                self._evict(now)
            else:
                return

    def _hold(self, proc: Process, size: int) -> None:
        proc.kept += size
        self.kept += size

    def _end(self, proc: Process, state: str) -> None:
        if proc.state in ("running", "stopping"):
            proc.state = state
        proc.slow_orphaned += len(proc.slow_active)
        # Nobody reads an ended process's tick or requests in flight: keep ended ones small.
        self._hold(proc, -proc.tick_size - sum(r["size"] for r in proc.slow_active.values()))
        proc.slow_active.clear()
        proc.last_tick, proc.tick_size = {}, 0
        if self.current.get(proc.pid) is proc:
            del self.current[proc.pid]
        if len(self.ended) == self.ended.maxlen:
            self._forget(self.ended.popleft())  # before its retention: counted
        self.ended.append(proc)

    # -- per kind ----------------------------------------------------------------

    def _tick(self, proc: Process, d: Datagram) -> None:
        # The busiest handler, its checks inline: counters add only a positive
        # int (mod_wsgi's are u64 deltas), and an array is no identity.
        f = d.fields
        proc.last_tick = f
        size = d.size - proc.tick_size
        proc.tick_size = d.size
        proc.kept += size
        self.kept += size
        identity = proc.identity
        for name in IDENTITY_FIELDS:
            value = f.get(name)
            if value is not None and type(value) is not array:
                identity[name] = value
        value = f.get("telemetry_interval")
        if value is not None and value != proc.interval:  # NaN and arrays are never equal
            proc.interval = interval(value, proc.interval)
        value = f.get("request_count")
        if type(value) is int and value > 0:
            proc.requests += value
        status = proc.status
        for i, name in enumerate(STATUS_FIELDS):
            value = f.get(name)
            if type(value) is int and value > 0:
                status[i] += value

    def _started(self, proc: Process, d: Datagram) -> None:
        proc.started_stamp = d.stamp
        _identity(proc, d.fields)

    def _stopping(self, proc: Process, d: Datagram) -> None:
        proc.state = "stopping"
        # a text field: the decoder checked it is UTF-8 (str)
        proc.shutdown_reason = cast(str | None, d.fields.get("shutdown_reason", proc.shutdown_reason))

    def _stopped(self, proc: Process, d: Datagram) -> None:
        proc.stopped = dict(d.fields)
        self._hold(proc, d.size)
        # a text field: the decoder checked it is UTF-8 (str)
        proc.shutdown_reason = cast(str | None, d.fields.get("shutdown_reason", proc.shutdown_reason))
        proc.state = "stopped"
        self._end(proc, "stopped")

    def _slow(self, proc: Process, d: Datagram) -> None:
        f = d.fields
        key = slow_request(f)
        record = {"pid": proc.pid, "seq": d.seq, "stamp": d.stamp, "size": d.size, **f}
        active, completed = proc.slow_active, proc.slow_completed
        released = 0
        if f.get("slow_record_state") == 1:
            if key in active:
                released += active.pop(key)["size"]
            if len(completed) == completed.maxlen:
                released += completed[0]["size"]
            completed.append(record)
        else:
            if key in active:
                released += active.pop(key)["size"]
            elif len(active) >= MAX_SLOW_ACTIVE:
                released += active.pop(next(iter(active)))["size"]  # the one seen first is the likeliest lost
                proc.slow_orphaned += 1
            active[key] = record
        self._hold(proc, d.size - released)

    def _gc_snapshot(self, proc: Process, d: Datagram) -> None:
        interp = self._interpreter(proc, d)
        if interp is None:
            return
        interp.snapshot = d.fields
        size = d.size - interp.size  # the commonest datagram: _hold inline
        interp.size = d.size
        proc.kept += size
        self.kept += size
        dropped = d.fields.get("gc_dropped_events")
        if type(dropped) is int and dropped > 0:
            interp.dropped_events += dropped

    def _gc_event(self, proc: Process, d: Datagram) -> None:
        interp = self._interpreter(proc, d)
        if interp is not None:
            interp.events += 1

    @staticmethod
    def _interpreter(proc: Process, d: Datagram) -> Interpreter | None:
        """The datagram's interpreter; None for one beyond MAX_INTERPRETERS."""
        name = d.fields.get("interpreter_name", "")
        if type(name) is not str:
            name = name.decode(errors="backslashreplace") if isinstance(name, bytes) else repr(name)
        interp = proc.interpreters.get(name)
        if interp is None and len(proc.interpreters) < MAX_INTERPRETERS:
            interp = proc.interpreters[name] = Interpreter()
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
                self.dormant.add(proc)
                continue
            horizon = proc.last_stamp - SILENT_INTERVALS * proc.interval
            stale = [k for k, r in proc.slow_active.items() if not r["stamp"] >= horizon]  # NaN too
            for k in stale:
                self._hold(proc, -proc.slow_active.pop(k)["size"])
                proc.slow_orphaned += 1
        while self.ended and now - self.ended[0].last_seen > ENDED_RETENTION:
            self._forget(self.ended.popleft(), early=False)
        self._log.flush()

    # -- across agent runs ----------------------------------------------------------

    def marks(self, wall: float) -> list[Mark]:
        """Each process's place in its sequence, a pid's latest life last (any thread; ``wall``: now)."""
        now = self.clock()
        procs = [p for p in list(self.ended) if p.state == "stopped"]
        return [mark_of(p, now, wall) for p in [*procs, *self.dormant.values(), *list(self.current.values())]]

    def remember(self, marks: list[Mark], wall: float) -> None:
        """Take the marks the agent's last run saved: those pids continue their lives here."""
        now = self.clock()
        for mark in marks:
            self._used(mark.pid, mark.incarnation)  # a new life of the pid takes the next number
            if mark.pid not in self.current and not mark.ended and wall - mark.heard <= MARK_HORIZON:
                self.dormant.remember(mark, now - (wall - mark.heard))

    # -- reading -------------------------------------------------------------

    def processes(self) -> list[Process]:
        return list(self.ended) + list(self.current.values())

    def lossy(self, limit: int = 5) -> list[Process]:
        """The processes with the most loss or malformed datagrams."""
        bad = [p for p in self.processes() if p.lost or p.malformed]
        return sorted(bad, key=lambda p: (p.lost + p.malformed), reverse=True)[:limit]


def _identity(proc: Process, fields: dict[str, Any]) -> None:
    identity = proc.identity
    for name in IDENTITY_FIELDS:
        value = fields.get(name)
        if value is not None and type(value) is not array:  # the decoder's only non-scalar
            identity[name] = value
