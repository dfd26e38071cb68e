"""Agent receive benchmark: our ``ingest`` agent against the reference ingester.

    python3 bench/agent.py [--quick] [--rates 1000,4000,max] [--duration 3]
                           [--workloads capture,sim-1,sim-100,sim-1000] [--qlen 10,512]

For every workload and offered rate, each receiver (ours, then the
reference, in the same run) is started on a fresh socket; a sender in its
own process offers datagrams for ``--duration`` seconds, then the receiver
is left to finish what it holds, stopped with SIGTERM and asked how many
datagrams it handled.

Workloads:
  capture   the 6,750 real datagrams of tests/data/wire-vectors/raw, replayed in a loop
  sim-N     busy request-metrics ticks from ``ingest.commands.simulate.busy_ticks`` round-robin over
            N pids (generated once per run); the sender renumbers each pid's seqs 2, 3, ...
            and keeps counting pass after pass, so a receiver's seq-gap count is real loss

Sending: paced rates use non-blocking ``sendto`` (MSG_DONTWAIT), the way
mod_wsgi sends; the datagrams due are sent at every ``--tick-us`` boundary
(1 ms). EAGAIN means the kernel queue (``net.unix.max_dgram_qlen``) was
full: the datagram is lost to the receiver and counted. The paced sender
runs at SCHED_FIFO priority (``--sender-rt``; it sleeps between ticks) so a
late wake-up does not turn into a burst larger than the kernel queue, which
would be the sender's loss, not the receiver's. Note that at 1 ms ticks,
20,000/s and more means batches of 20+ datagrams against a queue of 10: a
receiver that is not already waiting in ``recv`` on the other core loses
some whatever its throughput. The ``max`` rate is a connected, *blocking*
sender that waits for room, so it measures how fast the receiver drains
the socket, not how fast the sender can overflow it.

Measures (per receiver process, all threads): CPU from
``/proc/PID/task/*/schedstat`` (ns resolution) between the start of sending
and the moment the receiver went idle after the sender stopped; wall time
over the same span; handled = datagrams the receiver took and processed
(ours: decoded + malformed; reference: total_received). Loss % is
(offered - handled) / offered over counts. Also recorded: CPU per receiver
thread, the kernel's share of it, and "other load" -- CPU the rest of the
machine used meanwhile (other jobs make a point noisy; rerun or --repeat).

Results go to bench/results/agent-<UTC>.json and agent-latest.json; a
Markdown summary is printed (``--report FILE`` prints it again from a
results file). Targets (``targets``) are printed as PASS/FAIL;
the exit status is 3 when one fails, 1 when a point could not be run.

``BENCH_PROFILE_DIR=DIR`` runs our agent under cProfile (every thread;
one .prof file per run in DIR) -- slower, for finding hot spots only; with
``BENCH_PYSPY=/path/to/py-spy`` as well, py-spy samples our unmodified agent
instead (collapsed stacks, one .txt per run in DIR).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import glob
import json
import os
import platform
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

REFERENCE_PYTHON = REPO / ".venv-reference" / "bin" / "python"
REFERENCE_HARNESS = REPO / "bench" / "reference_harness.py"
RESULTS = REPO / "bench" / "results"
CAPTURES = REPO / "tests" / "data" / "wire-vectors" / "raw"
QLEN_SYSCTL = "/proc/sys/net/unix/max_dgram_qlen"

DEFAULT_RATES = "1000,2000,4000,10000,20000,50000,max"
DEFAULT_WORKLOADS = "capture,sim-1,sim-100,sim-1000"
QUICK_RATES = "1000,4000,20000,max"
QUICK_WORKLOADS = "capture,sim-1,sim-1000"
IMPLS = ("ours", "reference")

# A wall-clock deadline for every child, so a wedged receiver cannot hang the run.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0
DRAIN_TIMEOUT = 120.0
IDLE_POLL = 0.010  # receiver idle detection: poll its CPU this often...
IDLE_BUSY_FRACTION = 0.10  # ...a poll with more CPU than this share of the interval is busy...
IDLE_POLLS = 3  # ...and this many quiet polls in a row mean it has finished

_SEQ = struct.Struct("<I")
_SEQ_OFFSET = 12  # header "<4sBBHIId": magic, version, kind, flags, pid, seq, stamp
_PID = struct.Struct("<I")
_PID_OFFSET = 8


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
            return [sys.executable, str(Path(__file__).resolve()), "_profile_ours", "--out", profile,
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
                [sys.executable, str(Path(__file__).resolve()), "_send", "--socket", sock, "--workload",
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


# -- reporting -----------------------------------------------------------------------


def _fmt(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _rate_label(rate: str) -> str:
    return "max" if rate == "max" else f"{int(rate):,}"


_MEDIAN_KEYS = ("offered_per_s", "sent_per_s", "handled_per_s", "loss_pct", "cpu_us_per_dgram", "cores",
                "per_core_s", "other_cores", "drain_s", "sys_share")


def points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (qlen, workload, rate, impl): the median of its runs, and every run's loss."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["qlen"], r["workload"], r["rate"], r["impl"]), []).append(r)
    out = []
    for (qlen, workload, rate, impl), runs in groups.items():
        ok = [r for r in runs if "error" not in r]
        point: dict[str, Any] = {"qlen": qlen, "workload": workload, "rate": rate, "impl": impl,
                                 "runs": len(ok), "errors": len(runs) - len(ok)}
        if not ok:
            point["error"] = runs[-1]["error"]
        else:
            for key in _MEDIAN_KEYS:
                values = [r[key] for r in ok if r.get(key) is not None]
                point[key] = statistics.median(values) if values else None
            point["lost"] = [r["offered"] - r["handled"] for r in ok]
            point["offered"] = [r["offered"] for r in ok]
            point["eagain"] = [r["eagain"] for r in ok]
            point["queue_drops"] = [r["detail"].get("queue_drops", 0) or 0 for r in ok]
            point["sender_late_ticks"] = sum(r.get("sender_late_ticks") or 0 for r in ok)
        out.append(point)
    return out


def ratios(pts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {(p["qlen"], p["workload"], p["rate"], p["impl"]): p for p in pts if "error" not in p}
    out = []
    for p in pts:
        if p["impl"] != "ours" or "error" in p:
            continue
        ref = by.get((p["qlen"], p["workload"], p["rate"], "reference"))
        if ref is None:
            continue
        out.append({
            "qlen": p["qlen"], "workload": p["workload"], "rate": p["rate"],
            "handled_per_s": p["handled_per_s"] / ref["handled_per_s"] if ref["handled_per_s"] else None,
            "per_core": p["per_core_s"] / ref["per_core_s"] if ref["per_core_s"] else None,
        })
    return out


def targets(pts: list[dict[str, Any]], qlen: int) -> list[dict[str, Any]]:
    ok = [p for p in pts if p["qlen"] == qlen and "error" not in p]
    by = {(p["workload"], p["rate"], p["impl"]): p for p in ok}
    workloads = list(dict.fromkeys(p["workload"] for p in ok))
    out: list[dict[str, Any]] = []

    per_core = []
    for w in workloads:
        o, ref = by.get((w, "max", "ours")), by.get((w, "max", "reference"))
        if o and ref:
            per_core.append((w, o["per_core_s"] / ref["per_core_s"]))
    if per_core:
        out.append({"target": "ours >= 3x the reference's datagrams per core-second at max throughput",
                    "pass": min(x for _, x in per_core) >= 3.0,
                    "detail": ", ".join(f"{w} {x:.2f}x" for w, x in per_core)})

    at4k = [(w, by[(w, "4000", "ours")]) for w in workloads if (w, "4000", "ours") in by]
    if at4k:
        def lost(w: str, p: dict[str, Any]) -> str:
            runs = ", ".join(f"{x:,}" for x in p["lost"])
            return (f"{w} lost {runs} of {p['offered'][0]:,} (EAGAIN {sum(p['eagain'])}, "
                    f"queue drops {sum(p['queue_drops'])})")
        out.append({"target": "ours loses 0 datagrams at 4,000/s offered",
                    "pass": all(sum(p["lost"]) == 0 for _, p in at4k),
                    "detail": "; ".join(lost(w, p) for w, p in at4k)})

    sims = sorted((int(w[4:]), w) for w in workloads if w.startswith("sim-"))
    if len(sims) >= 2:
        lo, hi = sims[0][1], sims[-1][1]
        checks = []
        for rate in ("max", "4000"):
            a, b = by.get((lo, rate, "ours")), by.get((hi, rate, "ours"))
            if a and b and a["cpu_us_per_dgram"] and b["cpu_us_per_dgram"]:
                checks.append((rate, a["cpu_us_per_dgram"], b["cpu_us_per_dgram"]))
        if checks:
            factor = max(max(x, y) / min(x, y) for _, x, y in checks)
            out.append({"target": f"ours CPU per datagram flat within 1.5x from {lo} to {hi}",
                        "pass": factor <= 1.5,
                        "detail": "; ".join(f"{_rate_label(r)}/s: {x:.1f} -> {y:.1f} us "
                                            f"({max(x, y) / min(x, y):.2f}x)" for r, x, y in checks)})
    return out


def markdown(report: dict[str, Any]) -> str:
    pts = report["points"]
    cfg = report["config"]
    lines = []
    for qlen in dict.fromkeys(p["qlen"] for p in pts):
        runs = f", median of {cfg['repeat']} runs" if cfg["repeat"] > 1 else ""
        if cfg.get("receiver_rt"):
            runs += f", receivers at SCHED_FIFO {cfg['receiver_rt']}"
        lines.append(f"### Agent receive: ours vs mod-wsgi-telemetry 1.1.0 "
                     f"(net.unix.max_dgram_qlen = {qlen}, {cfg['duration']:g} s per point{runs})\n")
        lines.append("| impl | workload | offered/s | sent/s | handled/s | loss % | CPU us/dgram | cores "
                     "| handled/core-s | other load (cores) |")
        lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for p in pts:
            if p["qlen"] != qlen:
                continue
            if "error" in p:
                lines.append(f"| {p['impl']} | {p['workload']} | {_rate_label(p['rate'])} | error: "
                             f"{p['error']} | | | | | | |")
                continue
            offered = _rate_label(p["rate"]) if p["rate"] != "max" else f"max ({p['offered_per_s']:,.0f})"
            late = " (s)" if p.get("sender_late_ticks") else ""
            lines.append(
                f"| {p['impl']} | {p['workload']} | {offered} | {_fmt(p['sent_per_s'])} | "
                f"{_fmt(p['handled_per_s'])} | {_fmt(p['loss_pct'], 2)}{late} | "
                f"{_fmt(p['cpu_us_per_dgram'], 1)} | "
                f"{_fmt(p['cores'], 2)} | {_fmt(p['per_core_s'])} | {_fmt(p['other_cores'], 2)} |")
        if any(p.get("sender_late_ticks") for p in pts if p["qlen"] == qlen):
            lines.append("\n(s): in some run the sender itself woke late and had to send a burst larger "
                         "than its 1 ms share, so part of that loss is the sender's, not the receiver's.")
        lines.append("")
        lines.append("| workload | offered/s | handled/s ours/ref | per core ours/ref |")
        lines.append("|---|---:|---:|---:|")
        for x in report["ratios"]:
            if x["qlen"] == qlen:
                lines.append(f"| {x['workload']} | {_rate_label(x['rate'])} | {_fmt(x['handled_per_s'], 2)}x "
                             f"| {_fmt(x['per_core'], 2)}x |")
        lines.append("")
        for t in report["targets"].get(str(qlen), []):
            lines.append(f"- **{'PASS' if t['pass'] else 'FAIL'}** {t['target']}: {t['detail']}")
        lines.append("")
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
            "loadavg_start": load, "kernel_qlen": read_qlen()}


def summarize(report: dict[str, Any]) -> str:
    """(Re)compute points, ratios, targets and the Markdown summary from the rows."""
    report["points"] = points(report["rows"])
    report["ratios"] = ratios(report["points"])
    report["targets"] = {str(q): targets(report["points"], q)
                         for q in dict.fromkeys(p["qlen"] for p in report["points"])}
    report["summary_markdown"] = markdown(report)
    return report["summary_markdown"]


def report_main(path: str) -> int:
    """Print the summary of an earlier run's JSON (recomputed from its rows)."""
    with open(path) as fh:
        report = json.load(fh)
    print(summarize(report))
    return 0


def bench_main(args: argparse.Namespace) -> int:
    if args.quick:
        args.rates = args.rates or QUICK_RATES
        args.workloads = args.workloads or QUICK_WORKLOADS
        args.duration = args.duration or 1.5
    rates = [r.strip() for r in (args.rates or DEFAULT_RATES).split(",") if r.strip()]
    for r in rates:
        if r != "max" and not r.isdigit():
            raise SystemExit(f"--rates: {r!r} is neither a number nor 'max'")
    workloads = [w.strip() for w in (args.workloads or DEFAULT_WORKLOADS).split(",") if w.strip()]
    impls = [i.strip() for i in args.impls.split(",")]
    args.duration = args.duration or 3.0
    if "reference" in impls and not REFERENCE_PYTHON.exists():
        raise SystemExit(f"reference interpreter {REFERENCE_PYTHON} not found")
    qlens: list[int | None] = [int(q) for q in args.qlen.split(",")] if args.qlen else [None]

    report: dict[str, Any] = {
        "benchmark": "agent-receive",
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {"rates": rates, "workloads": workloads, "impls": impls, "duration": args.duration,
                   "tick_us": args.tick_us, "qlen": args.qlen, "sender_rt": args.sender_rt,
                   "receiver_rt": args.receiver_rt,
                   "repeat": args.repeat,
                   "sim_count": {w: sim_count(int(w[4:])) for w in workloads if w.startswith("sim-")}},
        "rows": [],
    }
    # Generate every simulated workload once; each sender then just reads the file.
    cache_dir = tempfile.TemporaryDirectory(prefix="bench-agent-cache-")
    args.cache = {}
    for workload in workloads:
        if workload.startswith("sim-"):
            from ingest.pipeline import capture

            path = os.path.join(cache_dir.name, f"{workload}.dgrams")
            capture.write_all(path, load_workload(workload)[0])
            args.cache[workload] = path
    total = len(qlens) * len(workloads) * len(rates) * len(impls) * args.repeat
    done = 0
    for q in qlens:
        with qlen_set(q) as qlen:
            for workload in workloads:
                for rate in rates:
                    for impl in [i for _ in range(args.repeat) for i in impls]:
                        done += 1
                        try:
                            row = run_one(impl, workload, rate, args, qlen)
                        except Exception as exc:
                            row = {"impl": impl, "workload": workload, "rate": rate, "qlen": qlen,
                                   "error": f"{type(exc).__name__}: {exc}",
                                   "receiver_log_tail": "\n".join(getattr(exc, "__notes__", []))}
                        report["rows"].append(row)
                        if "error" in row:
                            print(f"[{done}/{total}] {impl:9s} {workload:9s} {rate:>6s}: {row['error']}",
                                  file=sys.stderr, flush=True)
                        else:
                            print(f"[{done}/{total}] {impl:9s} {workload:9s} {rate:>6s}/s q{qlen}: "
                                  f"sent {row['sent_per_s']:9,.0f}/s handled {row['handled_per_s']:9,.0f}/s "
                                  f"loss {row['loss_pct']:6.2f}% "
                                  f"{row['cpu_us_per_dgram'] or 0:7.1f} us/dgram cores {row['cores']:.2f} "
                                  f"(others {row['other_cores']:.2f})",
                                  file=sys.stderr, flush=True)
    cache_dir.cleanup()
    report["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    summary = summarize(report)

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(report, indent=1)
    out = RESULTS / f"agent-{stamp}.json"
    out.write_text(text + "\n")
    (RESULTS / "agent-latest.json").write_text(text + "\n")
    print(summary)
    print(f"results: {out} (and agent-latest.json)")
    failed = [t for ts in report["targets"].values() for t in ts if not t["pass"]]
    errors = [r for r in report["rows"] if "error" in r]
    return 1 if errors else (3 if failed else 0)


def profile_main(args: argparse.Namespace) -> int:
    """Run our agent with cProfile on every thread; merge the threads' stats into one file."""
    import cProfile
    import pstats
    import threading

    from ingest.commands import cli

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    original_run = threading.Thread.run

    def run(self: threading.Thread) -> None:
        prof = cProfile.Profile()
        with lock:
            profiles.append(prof)
        prof.enable()
        try:
            original_run(self)
        finally:
            prof.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    try:
        status = cli.main(args.rest)
    finally:
        stats = None
        for prof in profiles:
            prof.create_stats()
            if stats is None:
                stats = pstats.Stats(prof)
            else:
                stats.add(prof)
        if stats is not None:
            stats.dump_stats(args.out)
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--report", metavar="JSON",
                        help="run nothing: print the summary of an earlier results file")
    parser.add_argument("--quick", action="store_true", help=f"rates {QUICK_RATES}, workloads "
                        f"{QUICK_WORKLOADS}, 1.5 s per point (explicit options still win)")
    parser.add_argument("--rates", help="offered datagrams/s, comma-separated; 'max' = as fast as the "
                        f"receiver takes them (default {DEFAULT_RATES})")
    parser.add_argument("--workloads", help=f"comma-separated (default {DEFAULT_WORKLOADS})")
    parser.add_argument("--impls", default=",".join(IMPLS), help="ours,reference (default both)")
    parser.add_argument("--duration", type=float, help="seconds of sending per point (default 3)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run every point N times (ours and reference alternating); the summary "
                        "shows medians, the loss target counts every run (default 1)")
    parser.add_argument("--tick-us", type=int, default=1000, help="pacing granularity in us (default 1000)")
    parser.add_argument("--sender-rt", type=int, default=10, metavar="PRIO",
                        help="SCHED_FIFO priority of the paced sender so its pacing holds "
                        "(needs root; 0 = normal scheduling; default %(default)s)")
    parser.add_argument("--receiver-rt", type=int, default=0, metavar="PRIO",
                        help="run both receivers at SCHED_FIFO priority PRIO (below the sender's) to "
                        "see how much loss is scheduling latency (needs root; default 0 = normal)")
    parser.add_argument("--qlen", help="run the whole matrix once per net.unix.max_dgram_qlen value given "
                        "(comma-separated; needs root; restored afterwards). Default: leave it as it is")

    send = sub.add_parser("_send", help=argparse.SUPPRESS)
    send.add_argument("--socket", required=True)
    send.add_argument("--workload", required=True)
    send.add_argument("--rate", required=True)
    send.add_argument("--duration", type=float, required=True)
    send.add_argument("--tick-us", type=int, default=1000)
    send.add_argument("--rt", type=int, default=0)
    send.add_argument("--cached", help="read the workload's datagrams from this capture file")

    prof = sub.add_parser("_profile_ours", help=argparse.SUPPRESS)
    prof.add_argument("--out", required=True)
    prof.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "_send":
        return sender_main(args)
    if args.command == "_profile_ours":
        if args.rest and args.rest[0] == "--":
            args.rest = args.rest[1:]
        return profile_main(args)
    if args.report:
        return report_main(args.report)
    return bench_main(args)


if __name__ == "__main__":
    sys.exit(main())
