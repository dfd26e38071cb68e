"""Constants and small measuring helpers of the console benchmark: CPU and memory of a process,
the machine's busy time, percentiles, the worker logs' crash counts."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import statistics
import struct
import subprocess
from typing import Any

from stack import PYTHON, ROOT, accepts, stop_process, wait_until
from stack import free_port as free_port  # re-exported, as spawn: the page benchmark uses them
from stack import spawn as spawn

REPO = ROOT
PY = PYTHON
RESULTS = REPO / "bench" / "results"
CAPTURES = REPO / "tests" / "data" / "wire-vectors" / "raw"
KEY_PREFIX = "wfbench:"
CHANNEL_PREFIX = "wfbench-ch"

TARGET_ONE = 20_000  # samples/s one worker writes
TARGET_TWO_RATIO = 1.7  # "about twice": we call >= 1.7x a pass
TARGET_BYTES = 1024  # B per process-second, newest minute at full resolution
TARGET_P99_MS = 250.0
PUBLISH_DELAY = 2  # console/live/publish.py (read from there at run time)

_STAMP = struct.Struct(">d")  # msgpack float 64 payload
GC_EVENT = 9


# -- small helpers ------------------------------------------------------------------


def wait_port(port: int, proc: subprocess.Popen | None, timeout: float = 30.0) -> None:
    """Until something listens on ``port``; RuntimeError if ``proc`` exits first or after ``timeout``."""
    if not wait_until(lambda: accepts(port) or (proc is not None and proc.poll() is not None), timeout, 0.05):
        raise RuntimeError(f"nothing listens on port {port} after {timeout} s")
    if proc is not None and proc.poll() is not None:
        raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode} before listening")


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, all threads (clock ticks)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_mem_mb(pid: int) -> dict[str, float]:
    out = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return out


def crashes(log: str) -> dict[str, int]:
    """Consumer crashes in a worker log, by kind."""
    return {"exceptions_inside_application": log.count("Exception inside application"),
            "redis_timeout_reading": log.count("Timeout reading from"),
            "tracebacks": log.count("Traceback (most recent call last)")}


def system_busy() -> float:
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


def dist_ms(values: list[float]) -> dict[str, Any]:
    """p50/p95/p99/max of seconds, in ms."""
    if not values:
        return {"n": 0}
    return {"n": len(values), **{f"p{p}": round(pct(values, p) * 1000, 1) for p in (50, 95, 99)},
            "min": round(min(values) * 1000, 1), "max": round(max(values) * 1000, 1),
            "mean": round(statistics.fmean(values) * 1000, 1)}


def stop_proc(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """``sig``, then SIGKILL after ``timeout`` (stack.stop_process)."""
    stop_process(proc, sig, timeout)


def publish_delay() -> int:
    from console.live import publish

    return int(publish.PUBLISH_DELAY)
