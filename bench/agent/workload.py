"""The datagrams offered (real captures or simulated ticks, pids renumbered) and the sender,
a child process (``python -m bench.agent _send``) that paces them or sends as fast as the
receiver takes them."""

from __future__ import annotations

import argparse
import glob
import json
import os
import socket
import sys
import time
from typing import Any

from bench.agent.common import _PID, _PID_OFFSET, _SEQ, _SEQ_OFFSET, CAPTURES

# -- datagrams ------------------------------------------------------------------


def sim_count(processes: int) -> int:
    """How many ticks to generate for one pass: several rounds of every pid."""
    return max(20 * processes, 12_000)


def load_workload(name: str, cached: str | None = None) -> tuple[list[bytes], bool]:
    """The datagrams of one pass, and whether the sender should move seqs on per pass."""
    if cached:
        from ingest.pipeline import capture

        return list(capture.read(cached)), name.startswith("sim-")
    if name == "capture":
        from ingest.pipeline import capture

        paths = sorted(glob.glob(str(CAPTURES / "*.dgrams.gz")))
        if not paths:
            raise SystemExit(f"no captures in {CAPTURES}")
        return [d for p in paths for d in capture.read(p)], False
    if name.startswith("sim-"):
        from ingest.commands import simulate

        processes = int(name[4:])
        return list(simulate.busy_ticks(processes, sim_count(processes), threads=4, seed=0)), True
    raise SystemExit(f"unknown workload {name!r} (capture or sim-N)")


class Source:
    """Endless datagrams: the pass repeated; with ``shift`` each pid's seq keeps counting."""

    def __init__(self, datagrams: list[bytes], shift: bool):
        self.datagrams = datagrams
        self.shift = shift
        self.n = len(datagrams)
        if shift:
            # Renumber each pid's datagrams 2, 3, 4, ... (as after a STARTED with seq 1) so
            # that, pass after pass, every pid's sequence is consecutive whatever seqs the
            # generator used: a receiver's seq-gap count is then exactly its loss.
            per_pid: dict[int, int] = {}
            self.heads = [d[:_SEQ_OFFSET] for d in datagrams]
            self.tails = [d[_SEQ_OFFSET + 4:] for d in datagrams]
            self.seqs = []
            pids = [_PID.unpack_from(d, _PID_OFFSET)[0] for d in datagrams]
            for pid in pids:
                per_pid[pid] = per_pid.get(pid, 0) + 1
                self.seqs.append(1 + per_pid[pid])
            self.spans = [per_pid[pid] for pid in pids]

    def get(self, i: int) -> bytes:
        j = i % self.n
        if not self.shift:
            return self.datagrams[j]
        seq = (self.seqs[j] + (i // self.n) * self.spans[j]) & 0xFFFFFFFF
        return self.heads[j] + _SEQ.pack(seq) + self.tails[j]


# -- the sender (a child process) ------------------------------------------------


def send_paced(source: Source, path: str, rate: float, duration: float, tick: float) -> dict[str, Any]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sendto, get, flags = sock.sendto, source.get, socket.MSG_DONTWAIT
    total = int(rate * duration)
    sent = eagain = errors = n = 0
    eagain_at: list[tuple[float, int]] = []  # kernel queue full: (s after start, burst size); first 30
    # A batch more than twice the per-tick share plus a few means the sender itself was late.
    late_burst = 2 * rate * tick + 4
    max_burst = late_ticks = late_dgrams = 0
    last_error = ""
    monotonic, sleep = time.monotonic, time.sleep
    t0 = monotonic()
    end = t0 + duration
    while True:
        now = monotonic()
        due = min(total, int((now - t0) * rate)) if now < end else total
        burst = due - n
        if burst > max_burst:
            max_burst = burst
        if burst > late_burst:  # the sender woke late and has to catch up in one go
            late_ticks += 1
            late_dgrams += burst
        while n < due:
            try:
                sendto(get(n), flags, path)
                sent += 1
            except BlockingIOError:
                eagain += 1
                if len(eagain_at) < 30:
                    eagain_at.append((round(now - t0, 4), burst))
            except OSError as exc:
                errors += 1
                last_error = str(exc)
            n += 1
        if n >= total:
            break
        next_tick = t0 + (int((now - t0) / tick) + 1) * tick
        pause = next_tick - monotonic()
        if pause > 0:
            sleep(pause)
    t1 = monotonic()
    sock.close()
    return {"t0": t0, "t1": t1, "offered": n, "sent": sent, "eagain": eagain, "errors": errors,
            "last_error": last_error, "eagain_at": eagain_at, "max_burst": max_burst,
            "late_ticks": late_ticks, "late_dgrams": late_dgrams}


def send_max(source: Source, path: str, duration: float) -> dict[str, Any]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.connect(path)  # connected + blocking: send() waits for room in the receiver's queue
    send, get, monotonic = sock.send, source.get, time.monotonic
    sent = errors = n = 0
    last_error = ""
    t0 = monotonic()
    end = t0 + duration
    while monotonic() < end:
        for _ in range(64):
            try:
                send(get(n))
                sent += 1
            except OSError as exc:
                errors += 1
                last_error = str(exc)
            n += 1
    t1 = monotonic()
    sock.close()
    return {"t0": t0, "t1": t1, "offered": n, "sent": sent, "eagain": 0, "errors": errors,
            "last_error": last_error}


def sender_main(args: argparse.Namespace) -> int:
    datagrams, shift = load_workload(args.workload, args.cached)
    source = Source(datagrams, shift)
    for i in range(min(source.n, 2000)):  # warm the per-datagram path before timing
        source.get(i)
    print(json.dumps({"ready": source.n}), flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    if args.rt and args.rate != "max":
        # Real-time priority so the pacing holds: a sender woken a few ms late has to send
        # its backlog in one burst, and a burst above the kernel queue length is lost
        # whatever the receiver does. It sleeps between ticks, so it takes little CPU.
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(args.rt))
        except (OSError, AttributeError) as exc:
            print(f"sender: no real-time priority ({exc}); pacing may jitter", file=sys.stderr)
    c0 = time.process_time()
    if args.rate == "max":
        result = send_max(source, args.socket, args.duration)
    else:
        result = send_paced(source, args.socket, float(args.rate), args.duration, args.tick_us / 1e6)
    result["sender_cpu_s"] = time.process_time() - c0
    print(json.dumps(result), flush=True)
    return 0
