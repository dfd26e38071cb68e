"""A synthetic mod_wsgi 6.1.1 fleet that sends real telemetry datagrams.

Why: the agent, the demo and the benchmarks need traffic shaped exactly like
mod_wsgi's (docs/wire-protocol.md) without running Apache. Every
datagram is built by :func:`ingest.pipeline.wire.encode` from the names in
:mod:`ingest.model.fields`, so the simulator can only say what the table defines.

Why the numbers add up: a tick draws at most six representative requests,
each standing for a share of the tick's requests (plus one per finished slow
request). Histograms, min/max, means, status totals and per-slot counts all
come from that one population, so every invariant of a real tick holds
exactly at a cost independent of the request rate. Representatives are whole
requests from a pool drawn once per fleet with their buckets precomputed.
"""

from __future__ import annotations

import argparse
import base64
import errno
import json
import math
import random
import signal
import socket
import struct
import time
from operator import mul
from typing import Any

from ..model.fields import HISTOGRAM_BUCKETS, MAX_SLOTS, PHASES, Kind
from ..model.histogram import bucket_index
from ..model.kinds import STATUS_FIELDS
from ..pipeline.wire import encode

IDENTITY = {"mod_wsgi_version": "6.1.1", "python_version": "3.11.2",
            "apache_version": "Apache/2.4.71", "mpm_name": "event"}
REASONS = ("script_reload", "shutdown_signal", "restart_interval", "graceful_signal")
MAX_ACTIVE_SLOW = 16  # active slow records per process per tick ("Slow requests")
GC_RING, GC_DRAIN = 256, 64  # per-interpreter event ring, events drained per tick ("GC")
POOL, REPS = 2048, 6  # pool size (a power of two: offsets are random bits) and representatives
MEAN, MIN, MAX, HIST = ([f"{p}_time{s}" for p in PHASES] for s in ("", "_min", "_max", "_buckets"))
# Wire order (of the real captures) as indices into PHASES: 0 server, 1 queue, 2 daemon, 3 application,
# 4 request, 5 gil_wait, 6 input_read, 7 output_write. Means and min/max pairs use BUSY_ORDER.
BUSY_ORDER, HIST_ORDER = (0, 3, 4, 5, 6, 7, 1, 2), (0, 3, 1, 2, 4, 5, 6, 7)
IDLE = {MEAN[i]: 0.0 for i in BUSY_ORDER[:6]} | {HIST[i]: [0] * HISTOGRAM_BUCKETS for i in (0, 3, 4, 5, 6, 7)}
# (median s, sigma, share of exact zeros) per sampled phase; request (4) is their sum.
MODEL = {0: (0.0003, 0.5, 0.0), 1: (0.0004, 1.0, 0.0), 2: (0.0002, 0.4, 0.0), 3: (0.025, 1.0, 0.0),
         5: (0.0002, 1.2, 0.0), 6: (0.0003, 0.8, 0.75), 7: (0.0002, 0.9, 0.0)}
PATHS = ("/orders/1234", "/reports/monthly", "", "/caf\u00e9/menu", b"/caf\xc3\xa9/\xff", "/search")
AGENTS = ("Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "python-requests/2.31")


class _Slow:
    """A request that outlives the slow threshold: reported while active, then once completed."""

    __slots__ = ("at_start", "end", "io", "log_id", "path", "pre", "server_pid", "start", "status", "thread")

    def __init__(self, rng: random.Random, start: float, end: float, thread: int, at_start: int):
        self.start, self.end, self.thread, self.at_start = start, end, thread, at_start
        self.log_id = base64.urlsafe_b64encode(rng.getrandbits(64).to_bytes(8, "little")).decode()[:11]
        self.server_pid = 30000 + rng.randrange(64)
        self.pre = (round(rng.uniform(0.0001, 0.001), 6), round(rng.uniform(0.0, 0.01), 6),
                    round(rng.uniform(0.0001, 0.0005), 6))  # server, queue, daemon
        self.path = rng.choice(PATHS)
        self.status = rng.choice((200, 200, 200, 200, 302, 404, 500, 504))
        self.io = (rng.choice((0, 0, 1500)), rng.randrange(1, 400_000))  # input, output bytes


class _Interp:
    """GC state of one interpreter: cumulative counters and the ring of undelivered events."""

    __slots__ = ("collected", "collections", "dropped", "middle", "name", "pending", "young")

    def __init__(self, name: str):
        self.name, self.young, self.middle, self.dropped = name, 0, 0, 0
        self.collections, self.collected = [0, 0, 0], [0, 0, 0]
        self.pending: list[tuple[float, float, int, int]] = []


class _Process:
    """One emitting daemon process: pid, its one seq counter, and what it is doing."""

    __slots__ = ("group", "interps", "last", "lifetime", "load", "peak", "phase", "pid", "rss", "seq",
                 "slow", "started")

    def __init__(self, pid: int, group: str, started: float, rss: int, load: float, interps: list[str]):
        self.pid, self.group, self.seq, self.started, self.last = pid, group, 0, started, started
        self.phase = 0.0  # offset of its ticks within the fleet's interval: processes are not in step
        self.lifetime, self.rss, self.peak, self.load = 0, rss, rss, load
        self.slow: list[_Slow] = []
        self.interps = [_Interp(name) for name in interps]


class Fleet:
    """``groups`` x ``processes`` daemon processes of ``threads`` threads, deterministic per seed.

    The first :meth:`tick` returns only the STARTED datagrams (seq 1); every
    later one, per process: kind 2, completed then active kind 4s, and per
    interpreter its kind 8 then its kind 9s ("Kinds"), plus STOPPING /
    final tick / STOPPED / the replacement's STARTED when a process restarts.
    Each process ticks at its own phase within the interval, as real ones do.
    """

    def __init__(self, groups: int = 2, processes: int = 3, threads: int = 4, *, interval: float = 1.0,
                 seed: int = 0, restart_probability: float = 0.0, max_requests: int = 0,
                 slow_probability: float = 0.05, slow_threshold: float = 1.0, user_agent: bool = True,
                 interpreters: int = 1, hostname: str = "sim", first_pid: int = 40000, load: float = 1.0):
        if min(groups, processes, threads, interpreters) < 1 or interval <= 0:
            raise ValueError("groups, processes, threads, interpreters and interval must be positive")
        self.rng = rng = random.Random(seed)  # noqa: S311 - reproducible traffic, not secrets
        self.threads, self.slots, self.interval = threads, min(threads, MAX_SLOTS), interval
        self.restart_probability, self.max_requests = restart_probability, max_requests
        self.slow_probability, self.threshold = slow_probability, slow_threshold
        self.user_agent, self.hostname, self.next_pid, self.load = user_agent, hostname, first_pid, load
        self.interp_names = [""] + ["subapp" if i == 1 else f"subapp{i}" for i in range(1, interpreters)]
        self.groups = [f"app{g}" for g in range(groups) for _ in range(processes)]
        self.processes: list[_Process] = []
        cap = 0.9 * slow_threshold if slow_threshold > 0 else 30.0  # ordinary requests are never slow
        self.pool: list[list[float]] = [[] for _ in PHASES]
        for _ in range(POOL + REPS):
            for phase, (median, sigma, zeros) in MODEL.items():
                value = min(cap * (0.6 if phase == 3 else 0.1), median * math.exp(sigma * rng.gauss()))
                self.pool[phase].append(0.0 if rng.random() < zeros else round(value, 6))
            self.pool[4].append(round(sum(self.pool[i][-1] for i in range(4)) + 0.00002, 6))
        self.pool_buckets = [[bucket_index(v) for v in column] for column in self.pool]

    def _emit(self, p: _Process, kind: int, stamp: float, fields: dict[str, Any]) -> bytes:
        p.seq += 1
        return encode(kind, p.pid, p.seq, round(stamp, 6), fields)

    def _identity(self, p: _Process) -> dict[str, Any]:
        return {**IDENTITY, "hostname": self.hostname, "process_group": p.group, "process_parent_pid": 1000}

    def _spawn(self, group: str, stamp: float, phase: float = 0.0,
               interps: list[str] | None = None) -> tuple[_Process, bytes]:
        """A new process (next pid, seq from 1) and its STARTED datagram."""
        rng = self.rng
        load = self.load * rng.uniform(0.7, 1.3) / (1 + int(group[3:]) % 4)
        p = _Process(self.next_pid, group, round(stamp, 6), rng.randrange(40, 120) << 20, load,
                     self.interp_names if interps is None else interps)
        p.phase, self.next_pid = phase, self.next_pid + 1
        return p, self._emit(p, Kind.PROCESS_STARTED, stamp, {**self._identity(p), "switch_interval": 0.005})

    def tick(self, now: float) -> list[bytes]:
        """Every datagram the fleet sends for the interval starting at ``now`` (epoch s)."""
        return [data for _, batch in self.batches(now) for data in batch]

    def batches(self, now: float) -> list[tuple[float, list[bytes]]]:
        """Per process, ``(offset from now, its datagrams in order)``: real-time senders use the offset."""
        rng, out = self.rng, []
        if not self.processes:
            for group in self.groups:
                phase = rng.random() * 0.9 * self.interval
                p, started = self._spawn(group, now + phase, phase)
                self.processes.append(p)
                out.append((phase, [started]))
            return out
        for i, p in enumerate(self.processes):
            t = now + p.phase + rng.random() * 0.002
            if t < p.started + 0.5 * self.interval:  # its phase wrapped past now: first tick next round
                continue
            reason = None
            if self.max_requests and p.lifetime >= self.max_requests:
                reason = "maximum_requests"
            elif rng.random() < self.restart_probability:
                reason = rng.choice(REASONS)
            if reason is None:
                out.append((p.phase, self.process_tick(p, t)))
                continue
            # request_timeout: the shutdown timer fires with requests in flight, which are cut off;
            # their active records just stop (orphans, "Slow requests"). Otherwise the process drains.
            cut = reason != "maximum_requests" and any(s.end > t for s in p.slow) and rng.random() < 0.5
            head = {"hostname": self.hostname, "process_group": p.group,
                    "shutdown_reason": "request_timeout" if cut else reason}
            batch = [self._emit(p, Kind.PROCESS_STOPPING, p.last + (t - p.last) * rng.uniform(0.1, 0.95),
                                {**head, "active_requests_at_decision": len(p.slow)})]
            batch += self.process_tick(p, t, final=True, drain=not cut)
            stopped = t + rng.uniform(0.001, 0.005)
            batch.append(self._emit(p, Kind.PROCESS_STOPPED, stopped, {
                **head, "process_uptime": round(stopped - p.started, 6), "lifetime_request_count": p.lifetime,
                "active_requests_at_exit": len(p.slow), "graceful_drain": 0 if p.slow else 1}))
            # the replacement's first tick comes one interval after its STARTED ("Timestamps")
            started_at = stopped + self.interval * rng.uniform(0.005, 0.05)
            self.processes[i], started = self._spawn(p.group, started_at, (started_at - now) % self.interval)
            out.append((p.phase, [*batch, started]))
        return out

    def datagrams(self, start: float, ticks: int) -> list[bytes]:
        """``ticks`` calls of :meth:`tick`, ``interval`` apart in simulated time from ``start``."""
        return [d for i in range(ticks) for d in self.tick(start + i * self.interval)]

    def process_tick(self, p: _Process, t: float, *, final: bool = False, drain: bool = False,
                     busy: bool = False) -> list[bytes]:
        """One process's datagrams at ``t``: kind 2, completed then active kind 4s, GC.

        ``final`` is the flush after STOPPING (no slow request starts);
        ``drain`` finishes every request in flight, as a clean shutdown does;
        ``busy`` forces at least one request (benchmarks want busy ticks).
        """
        rng, slots, threads, threshold = self.rng, self.slots, self.threads, self.threshold
        period = round(t - p.last, 6) if p.last < t else self.interval
        p.last = t
        if threshold > 0 and not final and len(p.slow) < threads and rng.random() < self.slow_probability:
            taken = {s.thread for s in p.slow}
            thread = next(n for n in range(1, threads + 1) if n not in taken)
            start = round(t - rng.random() * min(period, threshold), 6)
            p.slow.append(_Slow(rng, start, round(start + threshold * (1.05 + rng.expovariate(0.7)), 6),
                                thread, len(p.slow) + 1 + rng.randrange(3)))
        done = [s for s in p.slow if drain or s.end <= t]
        for s in done:
            p.slow.remove(s)
            s.end = round(min(s.end, t - 0.0005), 6)
        lam = 0.0 if rng.random() < 0.1 and not busy else p.load * threads * self.interval * 6.0
        n = max(int(busy), int(lam + rng.gauss() * math.sqrt(lam) + 0.5))
        total = n + len(done)
        completed, busy_time, elapsed, longest = [0] * slots, [0.0] * slots, [0.0] * slots, [0.0] * slots
        statuses, stats, posts = [0] * 5, IDLE, 0
        if total:
            k = min(n, REPS)
            o = rng.getrandbits(11)
            vals = [column[o:o + k] for column in self.pool]
            bks = [column[o:o + k] for column in self.pool_buckets]
            counts = [n // k + (j < n % k) for j in range(k)]
            busy_norm = sum(map(mul, vals[4], counts))
            posts = sum(c for v, c in zip(vals[6], counts, strict=True) if v)
            s3, s4, s5 = (int(n * share + rng.random()) for share in (0.06, 0.05, 0.01))
            s3 = min(s3, n)
            s4 = min(s4, n - s3)
            s5 = min(s5, n - s3 - s4)
            statuses = [0, n - s3 - s4 - s5, s3, s4, s5]
            used = min(slots, n, 1 + int(busy_norm / period * 1.5))
            for j in range(used):
                completed[j] = n // used + (j < n % used)
                busy_time[j] = busy_norm * completed[j] / n
                longest[j] = round(vals[4][j % k], 3)
            for s in done:  # each finished slow request is a representative of one request
                dur = round(s.end - s.start, 6)
                for phase, v in enumerate((*s.pre, round(dur - sum(s.pre), 6), dur, round(dur * 0.001, 6),
                                           0.0, 0.0001)):
                    vals[phase].append(v)
                    bks[phase].append(bucket_index(v))
                counts.append(1)
                statuses[s.status // 100 - 1] += 1
            stats = {}
            extremes = {}
            for phase in BUSY_ORDER:
                column = vals[phase]
                lo, hi = min(column), max(column)
                stats[MEAN[phase]] = min(hi, max(lo, sum(map(mul, column, counts)) / total))
                extremes[MIN[phase]], extremes[MAX[phase]] = lo, hi
            stats.update(extremes)
            for phase in HIST_ORDER:
                h = [0] * HISTOGRAM_BUCKETS
                for b, c in zip(bks[phase], counts, strict=True):
                    h[b] += c
                stats[HIST[phase]] = h
            p.lifetime += total
        for s in (*done, *p.slow):
            if s.thread <= slots:  # thread ids above 128 have no slot ("Fields")
                j = s.thread - 1
                busy_time[j] += max(0.0, min(s.end, t) - max(s.start, t - period))
                if s in done:
                    completed[j] += 1
                    longest[j] = max(longest[j], round(s.end - s.start, 3))
                else:
                    elapsed[j] = round(t - s.start, 3)
        busy_time = [round(min(b, period), 6) for b in busy_time]
        busy_sum = sum(busy_time)
        user = round(busy_sum * 0.25 / period + 0.002, 6)
        system = round(user * 0.15, 6)
        p.rss += rng.randrange(4) << 12
        fields = self._identity(p)
        fields.update({
            "sample_period": period, "telemetry_interval": self.interval,
            "slow_requests_threshold": threshold, "switch_interval": 0.005,
            "request_count": total, "request_throughput": total / period,
            "capacity_utilization": min(1.0, busy_sum / (period * threads)),
            "cpu_user_utilization": user, "cpu_system_utilization": system, "cpu_utilization": user + system,
            "memory_rss": p.rss, "memory_max_rss": p.peak,  # the peak lags a tick: may read below rss
            "request_threads_maximum": threads, "request_threads_started": threads + 2,
            "request_threads_active": sum(1 for j in range(slots) if busy_time[j] or elapsed[j]),
        })
        p.peak = max(p.peak, p.rss)
        fields.update(stats)
        fields.update({
            "input_bytes_total": posts * 900 + sum(s.io[0] for s in done), "input_reads_total": posts * 2,
            "output_bytes_total": n * 4200 + sum(s.io[1] for s in done),
            "output_writes_total": n * 2 + len(done) * 5,
        })
        fields.update(zip(STATUS_FIELDS, statuses, strict=True))
        fields.update({
            "request_threads_completed": completed, "request_threads_busy_time": busy_time,
            "request_threads_cpu_time": [round(b * 0.25, 6) for b in busy_time],
            "request_threads_current_elapsed": elapsed, "request_threads_max_duration": longest,
        })
        out = [self._emit(p, Kind.REQUEST_METRICS, t, fields)]
        stamp = t + 0.00002  # all kind-4 records of a tick share one stamp, just after kind 2
        active = sorted((s for s in p.slow if t - s.start >= threshold), key=lambda s: s.thread)
        for s in [s for s in done if s.end - s.start >= threshold] + active[:MAX_ACTIVE_SLOW]:
            out.append(self._emit(p, Kind.SLOW_REQUEST, stamp, self._slow_fields(s, t, s not in p.slow)))
        for interp in p.interps:
            out += self._gc(p, interp, t, period, n)
        return out

    def _slow_fields(self, s: _Slow, t: float, completed: bool) -> dict[str, Any]:
        """One kind-4 record in the captures' order; I/O, CPU and status stay 0 while active."""
        dur = round((s.end if completed else t) - s.start, 6)
        app, c = round(dur - sum(s.pre), 6), int(completed)
        fields: dict[str, Any] = {
            "slow_record_state": c, "slow_start_stamp": s.start, "slow_duration": dur,
            "slow_thread_id": s.thread, "slow_server_pid": s.server_pid,
            "slow_input_bytes": s.io[0] * c, "slow_input_reads": (s.io[0] > 0) * c,
            "slow_output_bytes": s.io[1] * c, "slow_output_writes": 5 * c,
            "slow_cpu_user_time": round(app * 0.2 * c, 6), "slow_cpu_system_time": round(app * 0.02 * c, 6),
            "slow_server_time": s.pre[0], "slow_queue_time": s.pre[1], "slow_daemon_time": s.pre[2],
            "slow_application_time": app, "slow_gil_wait_time": round(dur * 0.001, 6),
            "slow_gil_wait_count": int(dur * 20), "slow_input_read_time": 0.0,
            "slow_output_write_time": 0.0001 * c, "slow_active_at_start": s.at_start,
            "slow_active_at_completion": s.at_start * c, "slow_status": s.status * c,
            "slow_log_id": s.log_id, "slow_method": "POST" if s.io[0] else "GET", "slow_scheme": "http",
            "slow_hostname": "127.0.0.1", "slow_script_name": "/api",
        }
        if s.path:
            fields["slow_path_info"] = s.path
        fields["slow_protocol"], fields["slow_peer_ip"] = "HTTP/1.1", f"10.0.0.{s.server_pid % 250}"
        if self.user_agent:
            fields["slow_user_agent"] = AGENTS[s.server_pid % len(AGENTS)]
        return fields

    def _gc(self, p: _Process, gc: _Interp, t: float, period: float, requests: int) -> list[bytes]:
        """Kind 8 then at most 64 kind 9s; a burst beyond the ring is counted as dropped."""
        rng = self.rng
        n = int(rng.random() + requests * 0.04 / (2 if gc.name else 1))
        if rng.random() < 0.002:  # a collection storm, as in scenario E
            n += rng.randrange(300, 3000)
        for _ in range(n):
            gen = 0
            gc.young += 1
            if gc.young > 10:  # every 11th collection is of generation 1, and so on up
                gc.young, gen, gc.middle = 0, 1, gc.middle + 1
                if gc.middle > 10:
                    gc.middle, gen = 0, 2
            collected = rng.randrange(40 << (3 * gen))
            gc.collections[gen] += 1
            gc.collected[gen] += collected
            if len(gc.pending) == GC_RING:
                gc.pending.pop(0)
                gc.dropped += 1
            gc.pending.append((round(t - rng.random() * period, 6),
                               round((0.0002, 0.002, 0.02)[gen] * rng.uniform(0.5, 3.0), 6), gen, collected))
        name = {"interpreter_name": gc.name} if gc.name else {}
        snapshot: dict[str, Any] = {"gc_count0": rng.randrange(700), "gc_count1": gc.young,
                                    "gc_count2": gc.middle, "gc_threshold0": 700, "gc_threshold1": 10,
                                    "gc_threshold2": 10}
        for label, values in (("collections", gc.collections), ("collected", gc.collected)):
            snapshot.update((f"gc_{label}{g}", v) for g, v in enumerate(values))
        snapshot.update({"gc_uncollectable0": 0, "gc_uncollectable1": 0, "gc_uncollectable2": 0,
                         "gc_is_enabled": 1, "gc_freeze_count": 0, "gc_dropped_events": gc.dropped, **name})
        stamp = t + 0.00005
        out = [self._emit(p, Kind.GC_SNAPSHOT, stamp, snapshot)]
        gc.dropped = 0  # a per-tick count, not a running total ("GC")
        events, gc.pending = gc.pending[:GC_DRAIN], gc.pending[GC_DRAIN:]
        for start, duration, gen, collected in events:
            out.append(self._emit(p, Kind.GC_EVENT, stamp, {
                "gc_event_start_stamp": min(start, round(stamp - duration, 6)), "gc_event_duration": duration,
                "gc_event_generation": gen, "gc_event_collected": collected, "gc_event_uncollectable": 0,
                **name}))
        return out


def busy_ticks(processes: int, count: int, threads: int = 4, seed: int = 0) -> list[bytes]:
    """``count`` busy kind-2 datagrams round-robin over ``processes`` pids, for benchmarks.

    Each pid's seqs are consecutive from 2 (its STARTED, seq 1, is left
    out), so a receiver's loss count is real loss. Groups of 8 processes.
    """
    fleet = Fleet(1, 1, threads, seed=seed, slow_probability=0.0)
    start = 1_700_000_000.0
    procs = [fleet._spawn(f"app{i // 8}", start, interps=[])[0] for i in range(processes)]
    ticks = []
    for i in range(count):
        stamp = start + (1 + i // processes) * fleet.interval
        tick = bytearray(fleet.process_tick(procs[i % processes], stamp, busy=True)[0])
        # process_tick also built (and numbered) GC records we leave out: renumber
        struct.pack_into("<I", tick, 12, 2 + i // processes)
        ticks.append(bytes(tick))
    return ticks


DROPPED = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS})  # receiver's queue is full
UNREACHABLE = frozenset({errno.ENOENT, errno.ECONNREFUSED, errno.EACCES, errno.ENOTDIR, errno.EPERM})


def run(target: str, *, groups: int = 2, processes: int = 3, threads: int = 4, interval: float = 1.0,
        duration: float | None = None, rate: float | None = None, seed: int = 0,
        restart_probability: float = 0.01, max_requests: int = 0, slow_probability: float = 0.05,
        slow_threshold: float = 1.0, user_agent: bool = True, interpreters: int = 1,
        hostname: str = "sim") -> dict[str, float]:
    """Send a simulated fleet to ``target`` for ``duration`` s (None or 0: until Ctrl-C).

    ``rate`` None sends in real time: each process's datagrams at its own
    phase, one tick per ``interval``. A number generates ticks back to back
    (stamps still ``interval`` apart, in simulated time) paced to that many
    datagrams/s, or unpaced if <= 0.
    Returns ``{"sent", "dropped", "unreachable", "seconds"}``.
    """
    fleet = Fleet(groups, processes, threads, interval=interval, seed=seed,
                  restart_probability=restart_probability, max_requests=max_requests,
                  slow_probability=slow_probability, slow_threshold=slow_threshold, user_agent=user_agent,
                  interpreters=interpreters, hostname=hostname)
    sock, clock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM), time.monotonic
    counts = {"sent": 0, "dropped": 0, "unreachable": 0}
    begin, stamp0 = clock(), time.time()
    deadline = begin + duration if duration and duration > 0 else math.inf
    attempted = i = 0
    try:
        while clock() < deadline:
            for offset, batch in sorted(fleet.batches(stamp0 + i * interval), key=lambda b: b[0]):
                for data in batch:
                    paced = begin + attempted / rate if rate and rate > 0 else 0.0
                    due = begin + i * interval + offset if rate is None else paced
                    wait = min(due, deadline) - clock()  # one clock read: a late wake-up never sleeps < 0
                    if wait > 0.0005:
                        time.sleep(wait)
                    if clock() >= deadline:
                        break
                    attempted += 1
                    try:  # like mod_wsgi: never wait, never retry
                        sock.sendto(data, socket.MSG_DONTWAIT, target)
                        counts["sent"] += 1
                    except OSError as exc:
                        if exc.errno not in DROPPED and exc.errno not in UNREACHABLE:
                            raise
                        counts["dropped" if exc.errno in DROPPED else "unreachable"] += 1
            i += 1
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return {**counts, "seconds": round(clock() - begin, 3)}


#: (option, type, default, help) of ``python -m ingest simulate`` beyond --socket, --rate, --user-agent.
OPTIONS = (
    ("--groups", int, 2, "daemon process groups"), ("--processes", int, 3, "processes per group"),
    ("--threads", int, 4, "request threads per process"), ("--interval", float, 1.0, "telemetry interval, s"),
    ("--duration", float, 0.0, "seconds to run; 0 runs until Ctrl-C"),
    ("--seed", int, 0, "random seed: same seed, same datagrams"),
    ("--restart-probability", float, 0.01, "chance per process per tick of a restart"),
    ("--max-requests", int, 0, "restart a process once it has served this many requests; 0 never"),
    ("--slow-probability", float, 0.05, "chance per process per tick that a slow request starts"),
    ("--slow-threshold", float, 1.0, "WSGISlowRequests, s; 0 sends no slow records"),
    ("--interpreters", int, 1, "interpreters per process: the main one plus N-1 named ones"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``python -m ingest simulate``."""
    p.add_argument("--socket", required=True, metavar="PATH", help="the receiver's AF_UNIX datagram socket")
    for option, kind, default, text in OPTIONS:
        p.add_argument(option, type=kind, default=default, help=f"{text} (default {default})")
    p.add_argument("--rate", type=float, metavar="N", help="generate ticks back to back and send N "
                   "datagrams/s (0: as fast as possible); without it, ticks go out in real time")
    p.add_argument("--user-agent", action=argparse.BooleanOptionalAction, default=True,
                   help="send slow_user_agent, as +CaptureUserAgent does (default on)")


def main(args: argparse.Namespace) -> int:
    """Run with parsed options; print the summary as one JSON line. 1 if nothing arrived anywhere."""
    # Supervisors (the demo) stop us with SIGTERM: end as on Ctrl-C so the summary, with
    # "dropped" (sends the kernel refused: real loss), is still printed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    names = [option[2:].replace("-", "_") for option, *_ in OPTIONS] + ["rate", "user_agent"]
    summary = run(args.socket, **{name: getattr(args, name) for name in names})
    print(json.dumps(summary), flush=True)
    return 1 if summary["unreachable"] and not summary["sent"] else 0
