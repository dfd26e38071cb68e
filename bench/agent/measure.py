"""Measuring one receiver at one rate: CPU from schedstat, idle detection, the kernel queue length."""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.agent.common import (
    DRAIN_TIMEOUT,
    IDLE_BUSY_FRACTION,
    IDLE_POLL,
    IDLE_POLLS,
    QLEN_SYSCTL,
    REFERENCE_HARNESS,
    REFERENCE_PYTHON,
    REPO,
    START_TIMEOUT,
    STOP_TIMEOUT,
)

# -- measuring a receiver ------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """CPU seconds used by every live thread of ``pid`` (scheduler ns counters)."""
    total = 0
    for stat in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(stat) as fh:
                total += int(fh.read().split()[0])
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            pass
    return total / 1e9


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each live thread of ``pid``, by thread id."""
    out = {}
    for stat in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(stat) as fh:
                out[int(stat.split("/")[4])] = int(fh.read().split()[0]) / 1e9
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            pass
    return out


def proc_user_sys(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` (all threads; clock-tick resolution)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def system_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def proc_hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def wait_idle(pid: int, since: float) -> tuple[float, float]:
    """Poll until the receiver stops using CPU; return (time it last worked, its CPU then)."""
    last_cpu = proc_cpu(pid)
    last_t = time.monotonic()
    busy_t, busy_cpu = max(since, last_t), last_cpu
    quiet = 0
    deadline = last_t + DRAIN_TIMEOUT
    while quiet < IDLE_POLLS and time.monotonic() < deadline:
        time.sleep(IDLE_POLL)
        cpu, t = proc_cpu(pid), time.monotonic()
        if cpu - last_cpu > IDLE_BUSY_FRACTION * (t - last_t):
            quiet = 0
            busy_t, busy_cpu = t, cpu
        else:
            quiet += 1
        last_cpu, last_t = cpu, t
    return busy_t, busy_cpu


def start_pyspy(impl: str, pid: int, workload: str, rate: str) -> subprocess.Popen | None:
    """With BENCH_PYSPY=/path/to/py-spy (and BENCH_PROFILE_DIR), sample our agent while it works."""
    binary, out = os.environ.get("BENCH_PYSPY"), os.environ.get("BENCH_PROFILE_DIR")
    if impl != "ours" or not binary or not out:
        return None
    Path(out).mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen([binary, "record", "--pid", str(pid), "--threads", "--nonblocking",
                            "--rate", "500", "--format", "raw", "--output",
                            str(Path(out) / f"ours-{workload}-{rate}.txt")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # let it attach
    return spy


def receiver_command(impl: str, sock: str, stats: str, profile: str | None) -> list[str]:
    if impl == "ours":
        if profile:
            return [sys.executable, "-m", "bench.agent", "_profile_ours", "--out", profile,
                    "--", "serve", "--socket", sock, "--socket-mode", "0666", "--log-interval", "0",
                    "--stats-file", stats]
        return [sys.executable, "-m", "ingest", "serve", "--socket", sock, "--socket-mode", "0666",
                "--log-interval", "0", "--stats-file", stats]
    return [str(REFERENCE_PYTHON), str(REFERENCE_HARNESS), "--socket", sock, "--socket-mode", "0666",
            "--out", stats]


def handled_of(impl: str, stats: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if impl == "ours":
        c = stats["counters"]
        extra = {k: c.get(k) for k in ("received", "decoded", "malformed", "lost", "queue_drops",
                                       "recv_errors", "incarnations")}
        return c["decoded"] + c["malformed"], extra
    return stats["received"], {k: stats.get(k) for k in ("decode_errors", "seq_drops", "processes")}


def _realtime(priority: int):
    """A preexec_fn giving the child (and the threads it starts) SCHED_FIFO ``priority``."""
    def apply() -> None:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    return apply


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def run_one(impl: str, workload: str, rate: str, args: argparse.Namespace,
            qlen: int | None) -> dict[str, Any]:
    row: dict[str, Any] = {"impl": impl, "workload": workload, "rate": rate, "qlen": qlen,
                           "duration": args.duration}
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        os.chmod(tmp, 0o755)
        sock = os.path.join(tmp, "telemetry.sock")
        stats_path = os.path.join(tmp, "stats.json")
        errlog = open(os.path.join(tmp, "receiver.log"), "w+")  # noqa: SIM115
        profile = None
        if impl == "ours" and os.environ.get("BENCH_PROFILE_DIR") and not os.environ.get("BENCH_PYSPY"):
            pdir = Path(os.environ["BENCH_PROFILE_DIR"])
            pdir.mkdir(parents=True, exist_ok=True)
            profile = str(pdir / f"ours-{workload}-{rate}.prof")
        receiver = subprocess.Popen(receiver_command(impl, sock, stats_path, profile), cwd=REPO,
                                    stdout=errlog, stderr=subprocess.STDOUT,
                                    preexec_fn=_realtime(args.receiver_rt) if args.receiver_rt else None)
        sender = spy = None
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not os.path.exists(sock):
                if receiver.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{impl} receiver did not bind {sock}")
                time.sleep(0.01)
            time.sleep(0.3)  # let it reach its receive loop
            sender = subprocess.Popen(
                [sys.executable, "-m", "bench.agent", "_send", "--socket", sock, "--workload",
                 workload, "--rate", rate, "--duration", str(args.duration), "--tick-us", str(args.tick_us),
                 "--rt", str(args.sender_rt), *(["--cached", args.cache[workload]]
                                                if workload in args.cache else [])],
                cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert sender.stdin is not None and sender.stdout is not None
            ready = sender.stdout.readline()
            if not ready:
                raise RuntimeError("sender died before it was ready")
            spy = start_pyspy(impl, receiver.pid, workload, rate)
            cpu0 = proc_cpu(receiver.pid)
            us0 = proc_user_sys(receiver.pid)
            threads0 = thread_cpu(receiver.pid)
            busy0 = system_busy()
            sender.stdin.write("go\n")
            sender.stdin.flush()
            line = sender.stdout.readline()
            if not line:
                raise RuntimeError("sender died while sending")
            sent = json.loads(line)
            sender.wait(STOP_TIMEOUT)
            busy_t, cpu1 = wait_idle(receiver.pid, sent["t1"])
            busy1, busy1_t = system_busy(), time.monotonic()
            us1 = proc_user_sys(receiver.pid)
            threads1 = thread_cpu(receiver.pid)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(STOP_TIMEOUT)
            row["rss_hwm_mb"] = proc_hwm_mb(receiver.pid)
            receiver.send_signal(signal.SIGTERM)
            code = receiver.wait(STOP_TIMEOUT)
            if code != 0:
                raise RuntimeError(f"{impl} receiver exited {code}")
            with open(stats_path) as fh:
                stats = json.load(fh)
        except Exception as exc:
            errlog.seek(0)
            exc.add_note(errlog.read()[-2000:])  # the receiver's last words, for the report
            raise
        finally:
            for child in (sender, spy):
                if child is not None:
                    _kill(child)
            _kill(receiver)
            errlog.close()
    handled, extra = handled_of(impl, stats)
    wall = max(busy_t, sent["t1"]) - sent["t0"]
    send_s = sent["t1"] - sent["t0"]
    cpu = max(cpu1 - cpu0, 1e-9)
    offered = sent["offered"]
    row.update({
        "offered": offered,
        "offered_per_s": float(rate) if rate != "max" else offered / send_s,
        "sent": sent["sent"], "sent_per_s": sent["sent"] / send_s, "eagain": sent["eagain"],
        "send_errors": sent["errors"], "send_s": send_s, "sender_cpu_s": sent["sender_cpu_s"],
        "handled": handled, "wall_s": wall, "drain_s": wall - send_s,
        "handled_per_s": handled / wall,
        "loss_pct": 100.0 * (offered - handled) / offered if offered else 0.0,
        "cpu_s": cpu, "cpu_us_per_dgram": 1e6 * cpu / handled if handled else None,
        "cores": cpu / wall, "per_core_s": handled / cpu,
        # CPU of each thread in thread-id order (ours: main, receive, decode).
        "thread_cpu_s": [round(threads1[t] - threads0.get(t, 0.0), 4) for t in sorted(threads1)],
        "sys_share": ((us1[1] - us0[1]) / ((us1[0] - us0[0]) + (us1[1] - us0[1]))
                      if us1 != us0 else None),  # the kernel's part of the receiver's CPU
        # Everything else the machine ran meanwhile (other jobs, kernel threads): noise.
        "other_cores": max(0.0, (busy1 - busy0) - (cpu1 - cpu0) - sent["sender_cpu_s"])
        / (busy1_t - sent["t0"]),
        "detail": extra,
        "sender_max_burst": sent.get("max_burst"), "sender_late_ticks": sent.get("late_ticks"),
        "sender_late_dgrams": sent.get("late_dgrams"),
        "eagain_at": sent.get("eagain_at", []),
    })
    if sent["errors"]:
        row["send_last_error"] = sent["last_error"]
    return row


# -- qlen -----------------------------------------------------------------------------


def read_qlen() -> int:
    with open(QLEN_SYSCTL) as fh:
        return int(fh.read())


@contextlib.contextmanager
def qlen_set(value: int | None):
    """Temporarily set net.unix.max_dgram_qlen (root only); always restore it."""
    old = read_qlen()
    if value is None or value == old:
        yield old
        return
    try:
        with open(QLEN_SYSCTL, "w") as fh:
            fh.write(str(value))
    except OSError as exc:
        raise SystemExit(f"cannot set {QLEN_SYSCTL} to {value} (needs root): {exc}") from None
    try:
        yield value
    finally:
        with open(QLEN_SYSCTL, "w") as fh:
            fh.write(str(old))
