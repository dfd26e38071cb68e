"""Console benchmark: real daphne workers, a private Redis, protocol-speaking agents.

    .venv/bin/python bench/console.py [--quick] [--skip throughput,capture,sweep,two,bytes,latency]
                                      [--agents 1,10,50] [--two-agents 2,10,50] [--duration 10]
                                      [--batch 250] [--batch-sweep 50,500] [--latency 100x1,1000x4,1000x1]
                                      [--pyspy /tmp/pyspy/bin/py-spy] [--settings MODULE] [--no-save]

Everything runs against a redis-server this script starts on a free port
(``--save '' --appendonly no``), so FLUSHALL, INFO and MEMORY are ours, and
against ``daphne console.asgi:application`` workers started with production
settings (DEBUG=0, SQLite in a temporary directory, REDIS_URL = that Redis).
Measures, against the targets it prints as PASS/FAIL (TARGET_*):

1. **Write throughput of ONE worker.** N load agents (1, 10, 50), each a
   host with its own agent token, speak docs/agent-protocol.md over
   ``websockets`` as ``ingest.pipeline.uplink`` does (hello, welcome, heartbeat every
   5 s, binary msgpack batches, up to ``--window`` = 16 batches in flight,
   permessage-deflate offered; after a drop they reconnect within 0.5 s and
   go on above ``welcome.acked``). Batches hold ``--batch`` samples (250: the
   250 ms batch of a 1,000-process host at 1 Hz) cut from a pool of
   real-looking samples: ``ingest.commands.simulate.busy_ticks`` over ``--procs``
   pids, decoded by ``ingest.pipeline.samples.replay`` and msgpack-encoded by
   ``ingest.pipeline.spool.encode`` (the agent's own encoding, ~2.4 KB a sample), the
   pids spread over ``--groups`` process groups. Each batch's stamps are
   rewritten in place to the 250 ms before it is sent, so every write lands
   in live 1 s / 10 s / 1 min frames and the workers' per-second publishers
   read real data. Counted: samples acknowledged (``ack.written``) during
   ``--duration`` s after a warm-up; ack round trips; CPU of every process;
   Redis command stats; consumer crashes in the worker logs; and what one
   ``/ws/live/`` subscriber of host 1 receives meanwhile (frames, gaps,
   ``status`` messages saying the store is down). Extra runs: the real
   captures (``capture``: all kinds, stamps shifted to now) and other batch
   sizes (``--batch-sweep``; the workers take messages and frames up to the
   console's limit, 4 MiB, as the README's daphne command sets).
2. **The same with TWO workers** on one Redis, agents split between ports.
3. **Redis bytes per process-second** for the newest minute, by
   ``bench/redis_bytes.py``'s ``measure`` (MEMORY USAGE of every key it
   wrote): the real captures A-E, and simulated fleets (``Fleet``, 60 s).
4. **Datagram-to-client latency.** Real agents (``python -m ingest serve
   --console ws://...``) are fed in real time (1 Hz ticks, each process at
   its own phase, paced as ``ingest.commands.simulate.run`` does) by a sender that
   logs when it sent each datagram and which 1 s frame it belongs to
   (``sample_time``). Clients subscribed to each host over
   ``/ws/live/`` with a user API token record every ``host.frame``. Reported:
   * tick to client: for every kind-2 tick (the request metrics the charts
     show), arrival of the frame of its second minus the time it was sent:
     how old a datagram is when a browser can first show it (the
     "datagram to browser" target, p99 <= 250 ms, is judged on this);
     "any datagram" counts every kind (GC events belong to the second they
     started in, so some look younger);
   * newest tick: per frame, arrival minus the newest tick of that second;
   * frame age: arrival minus the end of the frame's second, ``t + 1``;
   * its parts: the console's publish moment (``frame.now``) minus ``t + 1``,
     and fan-out (arrival minus ``frame.now``);
   * when the second was complete in Redis (its tick count polled every
     50 ms): the earliest a frame could be published without missing data.

Results: bench/results/console-<UTC>.json and console-latest.json, and a
Markdown summary with PASS/FAIL per target (exit status 3 when one fails).
``--pyspy PATH`` samples one worker (``--native``: C frames such as the
cyclic GC show) during an extra 1-worker run and adds its hottest functions.
``--settings MODULE`` runs the workers with another settings module (on
PYTHONPATH) to try a change without editing the product. The machine may be
shared: the CPU the rest of it used during each point is "other cores".
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import glob
import importlib.util
import itertools
import json
import math
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

VENV_PY = REPO / ".venv" / "bin" / "python"
PY = str(VENV_PY) if VENV_PY.exists() else sys.executable
DAPHNE = str(REPO / ".venv" / "bin" / "daphne")
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
_HDR_KIND, _HDR_STAMP = 5, 16  # wire header "<4sBBHIId": kind at 5, stamp at 16
GC_EVENT = 9


# -- small helpers ------------------------------------------------------------------


def daphne_limits(env: dict[str, str]) -> list[str]:
    """daphne's message and frame limits set to the console's agent limit, as the README's command does."""
    limit = env.get("WSGI_FLEET_AGENT_MAX_MESSAGE") or str(4 << 20)  # console/settings.py's default
    return ["--websocket-max-message-size", limit, "--websocket-max-frame-size", limit]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


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
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def spawn(cmd: list[str], log: Path, stdout: Any = None, **kwargs: Any) -> subprocess.Popen:
    """Start ``cmd`` with its output (or only stderr, when ``stdout`` is given) appended to ``log``."""
    with open(log, "ab") as fh:  # the child keeps its own copy of the descriptor
        if stdout is None:
            return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, **kwargs)
        return subprocess.Popen(cmd, stdout=stdout, stderr=fh, **kwargs)


def publish_delay() -> int:
    from console.live import publish

    return int(publish.PUBLISH_DELAY)


# -- the environment: Redis, database, daphne workers ------------------------------


class Env:
    """A private redis-server, a migrated SQLite database with hosts and tokens, daphne workers."""

    def __init__(self, tmp: Path, hosts: int, settings: str = "console.settings"):
        self.tmp = tmp
        self.redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.redis = spawn(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(tmp), "--loglevel", "warning"],
            tmp / "redis.log")
        wait_port(self.redis_port, self.redis)
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings, "DEBUG": "0",
                    "SECURE_SSL_REDIRECT": "0", "DJANGO_SECRET_KEY": "x", "ALLOWED_HOSTS": "127.0.0.1",
                    "SQLITE_PATH": str(tmp / "console.sqlite3"), "REDIS_URL": self.redis_url,
                    "WSGI_FLEET_KEY_PREFIX": KEY_PREFIX, "WSGI_FLEET_CHANNEL_PREFIX": CHANNEL_PREFIX,
                    "PYTHONUNBUFFERED": "1"}
        self.env.pop("DATABASE_URL", None)
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=self.env,
                       check=True)
        self.seed = self._seed(hosts)
        self.workers: list[tuple[int, subprocess.Popen]] = []

    def _seed(self, n: int) -> dict[str, Any]:
        code = f"""
import json
from django.contrib.auth import get_user_model
from console.fleet.models import AgentToken, ApiToken, Host, Team
team, _ = Team.objects.get_or_create(name="bench")
user, _ = get_user_model().objects.get_or_create(username="bench-viewer")
team.members.add(user)
hosts = []
for i in range({n}):
    host = Host.objects.create(name=f"bench-{{i:03d}}", team=team, labels={{"env": "bench"}})
    _, token = AgentToken.issue(host=host, note="bench/console.py")
    hosts.append({{"id": host.pk, "name": host.name, "token": token}})
_, api = ApiToken.issue(user=user, note="bench/console.py")
print("BENCH-SEED " + json.dumps({{"hosts": hosts, "api_token": api, "user": user.username}}))
"""
        out = subprocess.run([PY, "manage.py", "shell", "-c", code], cwd=REPO, env=self.env, check=True,
                             capture_output=True, text=True).stdout
        line = next(x for x in out.splitlines() if x.startswith("BENCH-SEED "))
        return json.loads(line[len("BENCH-SEED "):])

    def start_workers(self, count: int) -> list[int]:
        self.stop_workers()
        for _ in range(count):
            port = free_port()
            proc = spawn([DAPHNE, "-b", "127.0.0.1", "-p", str(port), "-v", "1", "--access-log", os.devnull,
                          *daphne_limits(self.env), "console.asgi:application"],
                         self.tmp / f"daphne-{port}.log", cwd=REPO, env=self.env)
            self.workers.append((port, proc))
        for port, proc in self.workers:
            wait_port(port, proc, timeout=60)
        return [port for port, _ in self.workers]

    def stop_workers(self) -> None:
        for _, proc in self.workers:
            stop_proc(proc)
        self.workers = []

    def worker_log_tail(self, lines: int = 15) -> str:
        out = []
        for port, _ in self.workers:
            with contextlib.suppress(OSError):
                text = (self.tmp / f"daphne-{port}.log").read_text(errors="replace").splitlines()
                out += [f"[{port}] {x}" for x in text[-lines:]]
        return "\n".join(out)

    def log_marks(self) -> list[int]:
        return [(self.tmp / f"daphne-{port}.log").stat().st_size for port, _ in self.workers]

    def log_since(self, marks: list[int]) -> str:
        out = []
        for (port, _), mark in zip(self.workers, marks, strict=True):
            with open(self.tmp / f"daphne-{port}.log", "rb") as fh:
                fh.seek(mark)
                out.append(fh.read().decode(errors="replace"))
        return "\n".join(out)

    def redis_cli(self) -> Any:
        import redis

        return redis.Redis.from_url(self.redis_url)

    def flush(self) -> None:
        r = self.redis_cli()
        r.flushall()
        r.config_resetstat()
        r.close()

    def close(self) -> None:
        self.stop_workers()
        stop_proc(self.redis)


# -- load agents (child process) ----------------------------------------------------


def as_agent_sends(sample: dict[str, Any]) -> dict[str, Any]:
    """Count arrays back as the decoder's array("i") (``replay`` made them lists), so that
    ``spool.encode`` sends them sparse as a real agent does (docs/agent-protocol.md)."""
    fields = sample["f"]
    for name, value in fields.items():
        if isinstance(value, list) and (name.endswith("_buckets") or name == "request_threads_completed"):
            fields[name] = array("i", value)
    return sample


def _pool_sim(procs: int, groups: int, count: int) -> list[dict[str, Any]]:
    from ingest.commands import simulate
    from ingest.pipeline.samples import replay

    samples = list(replay(simulate.busy_ticks(procs, count, threads=4, seed=0)))
    first = min(s["p"] for s in samples)
    for s in samples:
        group = f"app{(s['p'] - first) % groups}"
        s["g"] = group
        s["f"]["process_group"] = group
    return samples


def _pool_capture() -> list[dict[str, Any]]:
    from ingest.pipeline import capture
    from ingest.pipeline.samples import replay

    out = []
    for path in sorted(glob.glob(str(CAPTURES / "*.dgrams.gz"))):
        samples = list(replay(capture.read(path)))
        shift = time.time() - max(s["t"] for s in samples)  # the capture ends now
        for s in samples:
            s["t"] += shift
            for name in ("gc_event_start_stamp", "slow_start_stamp"):
                if isinstance(s["f"].get(name), float):
                    s["f"][name] += shift
        out += samples
    return out


def build_templates(workload: str, batch: int, procs: int,
                    groups: int) -> tuple[list[tuple[bytes, list[int]]], int]:
    """Batches of encoded samples (msgpack array) and, for sim, where each stamp's 8 bytes are."""
    import msgpack

    from ingest.pipeline.spool import encode

    if workload == "sim":
        samples = _pool_sim(procs, groups, max(procs * 2, batch * 8))
    elif workload == "capture":
        samples = _pool_capture()
    else:
        raise SystemExit(f"unknown workload {workload!r}")
    encoded = encode([as_agent_sends(s) for s in samples])
    header = msgpack.Packer().pack_array_header
    templates = []
    for start in range(0, len(encoded) - batch + 1, batch):
        chunk = encoded[start:start + batch]
        head = header(len(chunk))
        body, offsets, pos = [head], [], len(head)
        for blob in chunk:
            if workload == "sim":
                at = blob.find(b"\xa1t\xcb")
                if not 0 < at < 48:
                    raise RuntimeError("sample stamp not found where expected")
                offsets.append(pos + at + 3)
            body.append(blob)
            pos += len(blob)
        templates.append((b"".join(body), offsets))
    return templates, sum(map(len, encoded)) // len(encoded)


async def load_main_async(spec: dict[str, Any]) -> dict[str, Any]:
    import msgpack
    from websockets.asyncio.client import connect

    templates, sample_bytes = build_templates(spec["workload"], spec["batch"], spec["procs"], spec["groups"])
    packb, unpackb = msgpack.packb, msgpack.unpackb
    window_n, batch = spec["window"], spec["batch"]
    measure_from, measure_until, stop_at = spec["measure_from"], spec["measure_until"], spec["stop_at"]
    stats: dict[str, Any] = {"acked_samples": 0, "acked_batches": 0, "all_acked_samples": 0,
                             "sent_batches": 0,
                             "duplicates": 0, "errors": [], "closes": [], "welcomed": 0, "extensions": set(),
                             "reconnects": 0, "unacked_at_drop": 0,
                             "sample_bytes": sample_bytes, "message_bytes": 0, "templates": len(templates)}
    rtts: list[float] = []
    welcomed_at: list[float] = []
    pack_into = _STAMP.pack_into

    async def agent(index: int, url: str, token: str) -> None:
        """One agent: like ingest.pipeline.uplink, it reconnects when the console drops it (after 0-0.5 s
        rather than the uplink's 0.5-30 s backoff) and goes on above ``welcome.acked``; batches
        unacked at a drop are not resent (counted in ``unacked_at_drop``)."""
        instance = secrets.token_hex(8)
        prefix = (b"\x84" + packb("t") + packb("batch") + packb("instance") + packb(instance) + packb("id"))
        samples_key = packb("samples")
        next_id = 1
        first = True
        while time.time() < stop_at:
            if not first:
                stats["reconnects"] += 1
                await asyncio.sleep(random.uniform(0, 0.5))
            first = False
            try:
                next_id = await session(index, url, token, instance, prefix, samples_key, next_id)
            except Exception as exc:  # recorded, then reconnect like an agent
                stats["errors"].append(f"agent {index}: {type(exc).__name__}: {exc}"[:300])

    async def session(index: int, url: str, token: str, instance: str, prefix: bytes, samples_key: bytes,
                      next_id: int) -> int:
        async with connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                           compression="deflate" if spec["deflate"] else None, max_size=1 << 22,
                           open_timeout=120, close_timeout=5) as ws:
            stats["extensions"].add(ws.response.headers.get("Sec-WebSocket-Extensions") or "none")
            await ws.send(packb({"t": "hello", "protocol": 1, "agent": "wsgi-fleet-bench 0",
                                 "instance": instance, "hostname": f"bench-{index}", "started": time.time()}))
            welcome = unpackb(await ws.recv(), raw=False)
            if welcome.get("t") != "welcome":
                raise RuntimeError(f"expected welcome, got {welcome!r}")
            welcomed_at.append(time.time())
            stats["welcomed"] += 1
            next_id = max(next_id, int(welcome.get("acked") or 0) + 1)

            def heartbeat() -> bytes:
                return packb({"t": "heartbeat", "instance": instance, "time": time.time(),
                              "counters": {"received": stats["sent_batches"] * batch, "decoded": 0,
                                           "malformed": 0, "lost": 0, "queue_drops": 0, "spooled": 0,
                                           "spool_bytes": 0, "dropped": 0, "processes": spec["procs"]}})

            await ws.send(heartbeat())
            window = asyncio.Semaphore(window_n)
            inflight: collections.deque[tuple[int, float, int]] = collections.deque()

            async def reader() -> None:
                async for raw in ws:
                    m = unpackb(raw, raw=False)
                    if m.get("t") == "ack":
                        now = time.time()
                        while inflight and inflight[0][0] <= m["id"]:
                            bid, sent, _count = inflight.popleft()
                            window.release()
                            if bid == m["id"]:
                                written = int(m.get("written", 0))
                                stats["all_acked_samples"] += written
                                stats["duplicates"] += bool(m.get("duplicate"))
                                if measure_from <= now < measure_until:
                                    stats["acked_samples"] += written
                                    stats["acked_batches"] += 1
                                    rtts.append(now - sent)
                    elif m.get("t") == "error":
                        stats["errors"].append(str(m.get("reason"))[:200])

            rtask = asyncio.create_task(reader())
            k = index * 7 + next_id
            next_beat = time.monotonic() + 5.0
            while time.time() < stop_at and not rtask.done():
                acquire = asyncio.ensure_future(window.acquire())
                await asyncio.wait({acquire, rtask}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
                if not acquire.done():
                    acquire.cancel()
                    if not rtask.done():
                        stats["errors"].append(f"agent {index}: no ack for 60 s")
                    break
                body, offsets = templates[k % len(templates)]
                k += 1
                if offsets:
                    buf = bytearray(body)
                    base = time.time() - 0.25
                    step = 0.25 / len(offsets)
                    for j, off in enumerate(offsets):
                        pack_into(buf, off, base + j * step)
                    body = bytes(buf)
                message = prefix + packb(next_id) + samples_key + body
                inflight.append((next_id, time.time(), len(offsets) or batch))
                next_id += 1
                await ws.send(message)
                stats["sent_batches"] += 1
                stats["message_bytes"] += len(message)
                if time.monotonic() >= next_beat:
                    await ws.send(heartbeat())
                    next_beat = time.monotonic() + 5.0
            if rtask.done():  # the console closed the connection
                stats["closes"].append(ws.close_code)
                stats["unacked_at_drop"] += len(inflight)
                return next_id
            # the end: let the last acks come in, then close like an agent stopping
            deadline = time.monotonic() + 30
            while inflight and not rtask.done() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await ws.close(1000, "bench done")
            rtask.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await rtask
            return next_id

    print(json.dumps({"ready": True}), flush=True)
    tasks = [agent(i, url, token) for i, (url, token) in enumerate(spec["agents"])]
    c0 = time.process_time()
    await asyncio.gather(*tasks)
    stats["extensions"] = sorted(stats["extensions"])
    stats["errors"] = stats["errors"][:20]
    stats["rtts"] = [round(x, 4) for x in rtts]
    stats["all_welcomed_at"] = max(welcomed_at) if welcomed_at else None
    stats["cpu_s"] = time.process_time() - c0
    return stats


def load_main(args: argparse.Namespace) -> int:
    with open(args.spec) as fh:
        spec = json.load(fh)
    result = asyncio.run(load_main_async(spec))
    print(json.dumps({"result": result}), flush=True)
    return 0


# -- 1 and 2: throughput ------------------------------------------------------------


class LiveWatcher:
    """A /ws/live/ client in a thread of its own, watching one host while the workers are loaded."""

    def __init__(self, url: str, token: str, host_id: int):
        import threading

        self.url, self.token, self.host_id = url, token, host_id
        self.frames: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def go() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            self.ready.set()
            await live_client(self.url, self.token, self.host_id, self.frames, self.info, self.stop_event)

        asyncio.run(go())

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(10)

    def stop(self) -> None:
        if self.loop is not None and self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(10)

    def summary(self, since: float, until: float) -> dict[str, Any]:
        frames = [f for f in self.frames if since <= f["recv"] < until]
        recv = sorted(f["recv"] for f in frames)
        statuses = [m for m in self.info.get("messages", []) if m.get("type") == "status"]
        return {"frames": len(frames), "expected": round(until - since),
                "max_gap_s": round(max((b - a for a, b in itertools.pairwise(recv)),
                                       default=until - since), 2),
                "frame_age_ms": dist_ms([f["recv"] - (f["t"] + 1) for f in frames]),
                "status_messages": len(statuses),
                "false_outages": sum(1 for m in statuses if m.get("store_ok") is False),
                "status_examples": statuses[:3], "drops": len(self.info.get("drops", []))}


def run_throughput(env: Env, ports: list[int], agents: int, args: argparse.Namespace, label: str,
                   profile_out: Path | None = None) -> dict[str, Any]:
    """N load agents spread over ``ports``; one load process per worker port."""
    env.flush()
    hosts = env.seed["hosts"][:agents]
    per_port: dict[int, list[tuple[str, str]]] = {p: [] for p in ports}
    for i, host in enumerate(hosts):
        port = ports[i % len(ports)]
        per_port[port].append((f"ws://127.0.0.1:{port}/ws/agent/", host["token"]))
    watcher = LiveWatcher(f"ws://127.0.0.1:{ports[0]}/ws/live/", env.seed["api_token"], hosts[0]["id"])
    watcher.start()
    launch = time.time() + 3.0  # load processes need ~1 s to build their sample pool
    measure_from = launch + args.warmup
    measure_until = measure_from + args.duration
    stop_at = measure_until + 0.5
    loads = []
    for port, agent_list in per_port.items():
        if not agent_list:
            continue
        spec = {"agents": agent_list, "workload": args.workload, "batch": args.batch, "procs": args.procs,
                "groups": args.groups, "window": args.window, "deflate": not args.no_deflate,
                "measure_from": measure_from, "measure_until": measure_until, "stop_at": stop_at}
        path = env.tmp / f"load-{port}-{agents}.json"
        path.write_text(json.dumps(spec))
        proc = spawn([PY, str(Path(__file__).resolve()), "_load", "--spec", str(path)],
                     env.tmp / f"load-{port}.err", stdout=subprocess.PIPE, cwd=REPO, text=True)
        loads.append(proc)
    for proc in loads:
        line = proc.stdout.readline()
        if not line.startswith("{"):
            raise RuntimeError(f"load process failed to start: {line!r}")
    worker_pids = [p.pid for _, p in env.workers]
    marks = env.log_marks()
    r = env.redis_cli()
    time.sleep(max(0.0, measure_from - time.time()))
    cpu0 = {"workers": [proc_cpu(p) for p in worker_pids], "redis": proc_cpu(env.redis.pid),
            "load": [proc_cpu(p.pid) for p in loads], "machine": system_busy(), "t": time.time()}
    stats0 = r.info("commandstats")
    pyspy = None
    if profile_out is not None and args.pyspy:
        # --native shows time in C (msgpack, zlib, the cyclic GC); it needs py-spy's blocking mode,
        # which slows the worker down a little: this run's throughput is not a result
        pyspy = spawn([args.pyspy, "record", "--pid", str(worker_pids[0]),
                       "--duration", str(int(args.duration)), "--rate", "100", "--native",
                       "--format", "raw", "--output", str(profile_out)],
                      env.tmp / "pyspy.log", stdout=subprocess.DEVNULL)
    time.sleep(max(0.0, measure_until - time.time()))
    cpu1 = {"workers": [proc_cpu(p) for p in worker_pids], "redis": proc_cpu(env.redis.pid),
            "load": [proc_cpu(p.pid) for p in loads], "machine": system_busy(), "t": time.time()}
    stats1 = r.info("commandstats")
    mem = r.info("memory")["used_memory"]
    watcher.stop()
    live = watcher.summary(measure_from, measure_until)
    results = []
    for proc in loads:
        out, _ = proc.communicate(timeout=120)
        line = [x for x in out.splitlines() if x.startswith('{"result"')]
        if not line:
            raise RuntimeError(f"load process gave no result (exit {proc.returncode})")
        results.append(json.loads(line[-1])["result"])
    if pyspy is not None:
        try:
            pyspy.wait(60)
        except subprocess.TimeoutExpired:
            stop_proc(pyspy, signal.SIGINT)
    r.close()
    worker_log = env.log_since(marks)
    worker_mem = [proc_mem_mb(p) for p in worker_pids]
    wall = cpu1["t"] - cpu0["t"]
    workers_cores = [(b - a) / wall for a, b in zip(cpu0["workers"], cpu1["workers"], strict=True)]
    redis_cores = (cpu1["redis"] - cpu0["redis"]) / wall
    load_cores = sum(b - a for a, b in zip(cpu0["load"], cpu1["load"], strict=True)) / wall
    machine_cores = (cpu1["machine"] - cpu0["machine"]) / wall
    acked = sum(x["acked_samples"] for x in results)
    rate = acked / args.duration
    evals = {}
    for name in ("evalsha", "eval", "publish", "hmget", "zrangebyscore", "hgetall", "bzpopmin", "zadd",
                 "zremrangebyscore", "expire", "pipeline"):
        a, b = stats0.get(f"cmdstat_{name}", {}), stats1.get(f"cmdstat_{name}", {})
        calls = b.get("calls", 0) - a.get("calls", 0)
        if calls:
            usec = b.get("usec", 0) - a.get("usec", 0)
            evals[name] = {"calls_per_s": round(calls / wall, 1), "usec_per_call": round(usec / calls, 1),
                           "redis_cores": round(usec / 1e6 / wall, 3)}
    total_redis_usec = sum(v.get("usec", 0) for k, v in stats1.items() if k.startswith("cmdstat_")) - \
        sum(v.get("usec", 0) for k, v in stats0.items() if k.startswith("cmdstat_"))
    all_welcomed = max((x["all_welcomed_at"] or math.inf) for x in results)
    row = {
        "label": label, "workers": len(ports), "agents": agents, "workload": args.workload,
        "batch": args.batch, "window": args.window, "procs_per_host": args.procs, "groups": args.groups,
        "duration_s": args.duration, "acked_samples": acked, "samples_per_s": round(rate),
        "batches_per_s": round(sum(x["acked_batches"] for x in results) / args.duration, 1),
        "per_worker_samples_per_s": round(rate / len(ports)),
        "worker_cores": [round(c, 3) for c in workers_cores], "redis_cores": round(redis_cores, 3),
        "redis_command_cores": round(total_redis_usec / 1e6 / wall, 3),
        "load_cores": round(load_cores, 3), "machine_cores": round(machine_cores, 3),
        "other_cores": round(machine_cores - sum(workers_cores) - redis_cores - load_cores, 3),
        "worker_us_per_sample": round(sum(workers_cores) * wall / acked * 1e6, 1) if acked else None,
        "redis_us_per_sample": round(redis_cores * wall / acked * 1e6, 1) if acked else None,
        "samples_per_worker_core_s": round(acked / (sum(workers_cores) * wall)) if acked else None,
        "rtt_ms": dist_ms([x for res in results for x in res.pop("rtts")]),
        "redis_commands": evals, "redis_used_memory_mb": round(mem / 2**20, 1),
        "sample_bytes_on_wire": results[0]["sample_bytes"],
        "wire_mb_per_s": round(sum(x["message_bytes"] for x in results) / (stop_at - launch) / 2**20, 1),
        "extensions": sorted({e for x in results for e in x["extensions"]}),
        "all_agents_welcomed_before_window": all_welcomed <= measure_from,
        "duplicates": sum(x["duplicates"] for x in results),
        "reconnects": sum(x["reconnects"] for x in results),
        "unacked_at_drop": sum(x["unacked_at_drop"] for x in results),
        "close_codes": dict(collections.Counter(str(c) for x in results for c in x["closes"])),
        "worker_crashes": crashes(worker_log),
        "live_client_under_load": live,
        "worker_mem_mb": worker_mem,
        "errors": [e for x in results for e in x["errors"]][:10],
    }
    print(f"  {label}: {len(ports)} worker(s), {agents:3d} agents: {rate:9,.0f} samples/s acked; "
          f"worker cores {row['worker_cores']}, redis {redis_cores:.2f}, load {load_cores:.2f}, "
          f"other {row['other_cores']:.2f}; rtt p50 {row['rtt_ms'].get('p50')} ms; "
          f"reconnects {row['reconnects']}, "
          f"crashes {row['worker_crashes']['exceptions_inside_application']}, "
          f"worker RSS {[m.get('VmHWM') for m in worker_mem]} MB; live client: {live['frames']} frames "
          f"in {live['expected']} s, max gap {live['max_gap_s']} s, false outages {live['false_outages']}"
          + (f"; errors {row['errors'][:2]}" if row["errors"] else ""), file=sys.stderr, flush=True)
    return row


# -- 3: Redis bytes --------------------------------------------------------------------


def load_redis_bytes_module() -> Any:
    spec = importlib.util.spec_from_file_location("bench_redis_bytes", REPO / "bench" / "redis_bytes.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def run_bytes(env: Env, args: argparse.Namespace) -> dict[str, Any]:
    from ingest.commands import simulate
    from ingest.pipeline import capture
    from ingest.pipeline.samples import replay

    rb = load_redis_bytes_module()
    env.flush()

    async def go() -> list[dict[str, Any]]:
        rows = []
        for name in args.bytes_scenarios.split(","):
            everything = list(replay(capture.read(str(CAPTURES / f"{name}.dgrams.gz"))))
            r = await rb.measure(env.redis_url, name, rb.newest(everything, 60.0), True)
            r.update(source="capture", copies=1, compress=True)
            rows.append(r)
        for groups, per_group in args.bytes_fleets:
            fleet = simulate.Fleet(groups, per_group, 4, seed=1, restart_probability=0.01)
            datagrams = fleet.datagrams(time.time() - 61, 61)
            samples = rb.newest(list(replay(datagrams)), 60.0)
            r = await rb.measure(env.redis_url, f"sim {groups}x{per_group}", samples, True)
            r.update(source="simulate.Fleet", copies=1, compress=True)
            rows.append(r)
        return rows

    rows = asyncio.run(go())
    for r in rows:
        print(f"  bytes {r['scenario']:>10}: {r['bytes_per_process_second']} B/process-s "
              f"({r['processes']} processes, raw {r['raw_bytes_per_process_second']})", file=sys.stderr)
    return {"window_s": 60.0, "rows": rows,
            "worst_capture": max(r["bytes_per_process_second"] for r in rows if r["source"] == "capture"),
            "worst_sim": max((r["bytes_per_process_second"] for r in rows if r["source"] != "capture"),
                             default=None)}


# -- 4: latency ---------------------------------------------------------------------------


def sim_main(args: argparse.Namespace) -> int:
    """Real-time sender (paced as ``simulate.run``) logging each datagram's send time and second."""
    from ingest.commands import simulate
    from ingest.pipeline import wire

    fleet = simulate.Fleet(args.groups, args.processes, 4, seed=args.seed, restart_probability=0.01,
                           slow_probability=0.05, hostname=args.hostname)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    clock = time.monotonic
    begin, stamp0 = clock(), time.time()
    deadline = begin + args.duration
    seconds, sent_at, kinds = array("q"), array("d"), array("b")
    counts = {"sent": 0, "dropped": 0, "unreachable": 0, "max_late_s": 0.0}
    i = 0
    while clock() < deadline:
        for offset, batch in sorted(fleet.batches(stamp0 + i * fleet.interval), key=lambda b: b[0]):
            due = begin + i * fleet.interval + offset
            if due - clock() > 0.0005:
                time.sleep(min(due - clock(), max(0.0, deadline - clock())))
            if clock() >= deadline:
                break
            counts["max_late_s"] = max(counts["max_late_s"], clock() - due)
            for data in batch:
                try:
                    sock.sendto(data, socket.MSG_DONTWAIT, args.socket)
                except OSError as exc:
                    counts["dropped" if isinstance(exc, BlockingIOError) else "unreachable"] += 1
                    continue
                now = time.time()
                counts["sent"] += 1
                kind = data[_HDR_KIND]
                when = struct.unpack_from("<d", data, _HDR_STAMP)[0]
                if kind == GC_EVENT:  # sample_time: a GC event belongs to its own start
                    start = wire.decode(data).fields.get("gc_event_start_stamp")
                    if isinstance(start, float) and math.isfinite(start):
                        when = start
                seconds.append(math.floor(when))
                sent_at.append(now)
                kinds.append(kind)
        i += 1
    sock.close()
    with open(args.out, "w") as fh:
        json.dump({**counts, "seconds": list(seconds), "sent_at": list(sent_at), "kinds": list(kinds)}, fh)
    return 0


async def live_client(url: str, token: str, host_id: int, frames_out: list[dict[str, Any]],
                      info: dict[str, Any], stop: asyncio.Event) -> None:
    """Subscribe to one host and record every frame; reconnect (counted) when the console drops us."""
    from websockets.asyncio.client import connect

    while not stop.is_set():
        try:
            async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=1 << 24,
                               open_timeout=60) as ws:
                hello = json.loads(await ws.recv())
                info["hello"] = hello.get("type")
                asked = time.time()
                await ws.send(json.dumps({"type": "subscribe", "scope": "host", "host": host_id, "group": "*",
                                          "window": 300, "points": 300}))
                while not stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 0.5)
                    except TimeoutError:
                        continue
                    now = time.time()
                    m = json.loads(raw)
                    kind = m.get("type")
                    if kind == "host.snapshot":
                        info.setdefault("snapshots", []).append({"seconds": round(now - asked, 3),
                                                                 "bytes": len(raw)})
                    elif kind == "host.frame":
                        star = (m.get("groups") or {}).get("*") or {}
                        frames_out.append({"host": host_id, "t": m["t"], "now": m.get("now"), "recv": now,
                                           "partial": bool(m.get("partial")), "ticks": star.get("ticks"),
                                           "processes": star.get("processes"),
                                           "requests": star.get("requests"),
                                           "groups": len(m.get("groups") or {}), "bytes": len(raw)})
                    elif kind in ("error", "status"):
                        info.setdefault("messages", []).append(m)
        except Exception as exc:
            if stop.is_set():
                return
            error = f"{type(exc).__name__}: {exc}"[:200]
            info.setdefault("drops", []).append({"at": time.time(), "error": error})
            await asyncio.sleep(0.2)


async def redis_poller(url: str, host_ids: list[int], seen: dict[tuple[int, int], list[float]],
                       stop: asyncio.Event, period: float = 0.05) -> None:
    """For each host and recent second: ticks in Redis and the last time that count changed."""
    from console.windows import get_store
    from ingest.model.kinds import HOST

    store = get_store(url, prefix=KEY_PREFIX)
    try:
        while not stop.is_set():
            now = time.time()
            second = math.floor(now)
            for host in host_ids:
                series = await store.aframes(host, HOST, second - 4, second + 1, 10, now=now)
                for start, frame in series:
                    key = (host, int(start))
                    ticks = frame.get("n", 0)
                    entry = seen.setdefault(key, [0, now, now])  # ticks, first seen, last change
                    if ticks != entry[0]:
                        entry[0], entry[2] = ticks, time.time()
            await asyncio.sleep(max(0.0, period - (time.time() - now)))
    finally:
        await store.aclose()


def run_latency(env: Env, processes: int, agents: int, args: argparse.Namespace) -> dict[str, Any]:
    env.flush()
    ports = env.start_workers(1)
    port = ports[0]
    per_agent = processes // agents
    groups = next(g for g in (4, 5, 8, 10, 2, 1) if per_agent % g == 0)
    hosts = env.seed["hosts"][:agents]
    agents_procs, senders, outs = [], [], []
    tmp = env.tmp / f"lat-{processes}x{agents}"
    tmp.mkdir(exist_ok=True)
    duration = args.latency_duration
    try:
        for i, host in enumerate(hosts):
            sock = tmp / f"agent{i}.sock"
            token_file = tmp / f"token{i}"
            token_file.write_text(host["token"] + "\n")
            agents_procs.append(spawn(
                [PY, "-m", "ingest", "--log-level", "WARNING", "serve", "--socket", str(sock),
                 "--console", f"ws://127.0.0.1:{port}/", "--token-file", str(token_file),
                 "--log-interval", "0"],
                tmp / f"agent{i}.log", cwd=REPO))
        for i, _ in enumerate(hosts):
            sock = tmp / f"agent{i}.sock"
            deadline = time.monotonic() + 30
            while not sock.exists():
                if time.monotonic() > deadline or agents_procs[i].poll() is not None:
                    raise RuntimeError(f"agent {i} did not open its socket")
                time.sleep(0.05)
        worker_pid = env.workers[0][1].pid
        agent_pids = [p.pid for p in agents_procs]

        async def go() -> dict[str, Any]:
            stop = asyncio.Event()
            frames_out: list[dict[str, Any]] = []
            infos: list[dict[str, Any]] = [{} for _ in hosts]
            seen: dict[tuple[int, int], list[float]] = {}
            live_url = f"ws://127.0.0.1:{port}/ws/live/"
            clients = [asyncio.create_task(live_client(live_url, env.seed["api_token"], h["id"], frames_out,
                                                       infos[i], stop))
                       for i, h in enumerate(hosts)]
            poller = asyncio.create_task(redis_poller(env.redis_url, [h["id"] for h in hosts], seen, stop))
            await asyncio.sleep(0.5)
            begin = time.time()
            for i, host in enumerate(hosts):
                out = tmp / f"sent{i}.json"
                outs.append(out)
                senders.append(subprocess.Popen(
                    [PY, str(Path(__file__).resolve()), "_sim", "--socket", str(tmp / f"agent{i}.sock"),
                     "--groups", str(groups), "--processes", str(per_agent // groups),
                     "--duration", str(duration),
                     "--seed", str(i), "--hostname", host["name"], "--out", str(out)], cwd=REPO))
            await asyncio.sleep(args.latency_warmup)
            cpu0 = {"worker": proc_cpu(worker_pid), "redis": proc_cpu(env.redis.pid),
                    "agents": sum(proc_cpu(p) for p in agent_pids),
                    "senders": sum(proc_cpu(p.pid) for p in senders),
                    "machine": system_busy(), "t": time.time()}
            await asyncio.sleep(duration - args.latency_warmup - 1)
            cpu1 = {"worker": proc_cpu(worker_pid), "redis": proc_cpu(env.redis.pid),
                    "agents": sum(proc_cpu(p) for p in agent_pids),
                    "senders": sum(proc_cpu(p.pid) for p in senders),
                    "machine": system_busy(), "t": time.time()}
            while any(p.poll() is None for p in senders):
                await asyncio.sleep(0.1)
            await asyncio.sleep(PUBLISH_DELAY + 2.5)  # the last seconds' frames
            stop.set()
            await asyncio.gather(*clients, poller, return_exceptions=True)
            for c in clients:
                if c.exception() is not None:
                    infos[0].setdefault("client_errors", []).append(repr(c.exception()))
            wall = cpu1["t"] - cpu0["t"]
            cores = {k: round((cpu1[k] - cpu0[k]) / wall, 3) for k in ("worker", "redis", "agents", "senders",
                                                                       "machine")}
            cores["other"] = round(cores["machine"] - sum(cores[k] for k in ("worker", "redis", "agents",
                                                                               "senders")), 3)
            return {"frames": frames_out, "infos": infos, "seen": seen, "begin": begin, "cores": cores,
                    "worker_log": env.log_since([0]), "worker_mem": proc_mem_mb(worker_pid)}

        got = asyncio.run(go())
    finally:
        for p in senders:
            stop_proc(p)
        for p in agents_procs:
            stop_proc(p, signal.SIGINT)
        env.stop_workers()
    sent = []
    for out in outs:
        with open(out) as fh:
            sent.append(json.load(fh))
    got["agent_drops"] = sum(
        (tmp / f"agent{i}.log").read_text(errors="replace").count("console connection closed")
        for i in range(len(hosts)))
    return analyse_latency(processes, agents, groups, hosts, got, sent, args)


def analyse_latency(processes: int, agents: int, groups: int, hosts: list[dict[str, Any]],
                    got: dict[str, Any], sent: list[dict[str, Any]],
                    args: argparse.Namespace) -> dict[str, Any]:
    begin = got["begin"]
    first_t = math.floor(begin + args.latency_warmup)
    last_t = math.floor(begin + args.latency_duration) - 2  # the senders stopped during the last seconds
    # per host and second: datagram send times (all kinds; and kind-2 ticks, the request metrics the
    # charts show), and how many ticks were sent (the processes a complete frame shows)
    by_second: dict[tuple[int, int], list[float]] = collections.defaultdict(list)
    ticks_at: dict[tuple[int, int], list[float]] = collections.defaultdict(list)
    for host, s in zip(hosts, sent, strict=True):
        for second, at, kind in zip(s["seconds"], s["sent_at"], s["kinds"], strict=True):
            by_second[(host["id"], second)].append(at)
            if kind == 2:
                ticks_at[(host["id"], second)].append(at)
    frame_age, newest, per_dgram, per_tick, publish_lag, fanout, completeness = [], [], [], [], [], [], []
    used = 0
    frames_of: dict[tuple[int, int], list[dict[str, Any]]] = collections.defaultdict(list)
    for f in got["frames"]:
        if first_t <= f["t"] <= last_t and (f["host"], f["t"]) in by_second:
            frames_of[(f["host"], f["t"])].append(f)
    unseen_ticks = 0
    for key, frames in frames_of.items():
        frames.sort(key=lambda f: f["recv"])
        final = [f for f in frames if not f["partial"]]
        # A second is sent more than once (docs/live-protocol.md): partial frames as agent
        # batches land, then the complete one. The j-th tick sent in the second is on screen
        # with the first frame that counts at least j + 1 ticks (agents forward in order).
        for j, at in enumerate(sorted(ticks_at.get(key, []))):
            shown = next((f for f in frames if (f["ticks"] or 0) >= j + 1), None)
            if shown is None:
                unseen_ticks += 1
            else:
                per_tick.append(shown["recv"] - at)
        if final:
            f = final[0]
            used += 1
            per_dgram.extend(f["recv"] - at for at in by_second[key])  # any kind, to the complete frame
            frame_age.append(f["recv"] - (f["t"] + 1))
            if ticks_at.get(key):
                newest.append(f["recv"] - max(ticks_at[key]))
            if f["now"] is not None:
                publish_lag.append(f["now"] - (f["t"] + 1))
                fanout.append(f["recv"] - f["now"])
            if ticks_at.get(key) and f["processes"] is not None:
                completeness.append(f["processes"] / len(ticks_at[key]))
    received = {(f["host"], f["t"]) for f in got["frames"] if not f["partial"]}
    missing = sum(1 for h in hosts for t in range(first_t, last_t + 1)
                  if (h["id"], t) in by_second and (h["id"], t) not in received)
    # when each second was complete in Redis: the last change of its tick count, vs the newest datagram
    redis_done, redis_after_newest = [], []
    for (host, second), (_ticks, _first, last_change) in got["seen"].items():
        if first_t <= second <= last_t and ticks_at.get((host, second)):
            redis_done.append(last_change - (second + 1))
            redis_after_newest.append(last_change - max(ticks_at[(host, second)]))
    delay = publish_delay()
    snapshots = [s for i in got["infos"] for s in i.get("snapshots", [])]
    row = {
        "processes": processes, "agents": agents, "processes_per_agent": processes // agents,
        "groups_per_host": groups, "duration_s": args.latency_duration, "warmup_s": args.latency_warmup,
        "frames_used": used, "frames_missing": missing,
        "datagrams": sum(s["sent"] for s in sent), "sender_dropped": sum(s["dropped"] for s in sent),
        "sender_max_late_ms": round(max(s["max_late_s"] for s in sent) * 1000, 1),
        "datagram_to_client_ms": dist_ms(per_tick),
        "ticks_never_shown": unseen_ticks,
        "any_datagram_to_complete_frame_ms": dist_ms(per_dgram),
        "newest_tick_to_client_ms": dist_ms(newest),
        "frame_age_ms": dist_ms(frame_age),
        "publish_after_second_end_ms": dist_ms(publish_lag),
        "fanout_ms": dist_ms(fanout),
        "second_complete_in_redis_after_end_ms": dist_ms(redis_done),
        "second_complete_in_redis_after_newest_tick_ms": dist_ms(redis_after_newest),
        "frame_completeness": {"min": round(min(completeness), 4) if completeness else None,
                               "mean": round(statistics.fmean(completeness), 4) if completeness else None},
        "publish_delay_s": delay,
        "frame_age_floor_ms": (delay - 1) * 1000 + 50,
        "snapshot": {"seconds_max": max((s["seconds"] for s in snapshots), default=None),
                     "bytes_max": max((s["bytes"] for s in snapshots), default=None)},
        "cores": got["cores"],
        "client_messages": [m for i in got["infos"] for m in i.get("messages", [])][:5],
        "client_errors": [e for i in got["infos"] for e in i.get("client_errors", [])][:5],
        "live_client_drops": sum(len(i.get("drops", [])) for i in got["infos"]),
        "false_outages": sum(1 for i in got["infos"] for m in i.get("messages", [])
                             if m.get("type") == "status" and m.get("store_ok") is False),
        "live_client_drop_errors": [d["error"] for i in got["infos"] for d in i.get("drops", [])][:5],
        "agent_drops": got["agent_drops"],
        "worker_crashes": crashes(got["worker_log"]),
        "worker_mem_mb": got["worker_mem"],
    }
    d = row["datagram_to_client_ms"]
    print(f"  latency {processes} processes / {agents} agent(s): datagram->client p50 {d.get('p50')} "
          f"p95 {d.get('p95')} p99 {d.get('p99')} ms; frame age p99 {row['frame_age_ms'].get('p99')} ms; "
          f"complete in Redis p99 {row['second_complete_in_redis_after_end_ms'].get('p99')} ms "
          "after the second; "
          f"frames {used} (missing {missing}); cores {row['cores']}; drops: live {row['live_client_drops']}, "
          f"agents {row['agent_drops']}; worker crashes {row['worker_crashes']}", file=sys.stderr, flush=True)
    return row


# -- profile ------------------------------------------------------------------------------


_FRAMEWORK = ("daphne/", "asyncio/", "twisted/", "channels/", "threading", "concurrent/", "<frozen",
              "selectors", "thread (", "asgiref/", "python3.11/", "libc.so", "(daphne)", "_asynciomodule.c")


def summarize_pyspy(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares by function from py-spy's raw (collapsed) output.

    Inclusive shares leave out the event loop and framework frames every stack goes through."""
    self_c: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = idle = 0
    with open(path) as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(count)
            names = [_short(f) for f in stack.split(";") if f]
            total += n
            if names[-1].startswith(("select (selectors", "poll (selectors", "_worker (concurrent",
                                     "wait (threading", "EpollSelector.select", "Condition.wait",
                                     "epoll_wait")):
                idle += n
                continue
            self_c[names[-1]] += n
            for name in set(names):
                if not any(marker in name for marker in _FRAMEWORK) or "websocket_receive" in name:
                    incl[name] += n
    busy = total - idle
    return {"samples": total, "idle_samples": idle,
            "self": [(f, round(100 * c / max(busy, 1), 1)) for f, c in self_c.most_common(top)],
            "inclusive": [(f, round(100 * c / max(busy, 1), 1)) for f, c in incl.most_common(top)]}


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py)" ; keep the package for console or ingest code
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


# -- report -------------------------------------------------------------------------------


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    one = [r for r in report.get("throughput", []) if r["workers"] == 1 and r["label"] == "one"]
    two = [r for r in report.get("throughput", []) if r["workers"] == 2]
    for r in one:
        out.append({"part": 1,
                    "what": f"one worker, {r['agents']} agents ({r['workload']}, {r['batch']}/batch)",
                    "value": f"{r['samples_per_s']:,} samples/s", "target": f">= {TARGET_ONE:,}",
                    "pass": r["samples_per_s"] >= TARGET_ONE})
    for r in two:
        # the same agents, else the same agents per worker, else the best one-worker point
        base = next((x for x in one if x["agents"] == r["agents"]), None) or \
            next((x for x in one if 2 * x["agents"] == r["agents"]), None) or \
            (max(one, key=lambda x: x["samples_per_s"]) if one else None)
        ratio = r["samples_per_s"] / base["samples_per_s"] if base and base["samples_per_s"] else None
        out.append({"part": 2, "what": f"two workers, {r['agents']} agents",
                    "value": f"{r['samples_per_s']:,} samples/s ({ratio:.2f}x one worker at "
                             f"{base['agents']} agents)" if ratio else f"{r['samples_per_s']:,} samples/s",
                    "target": f"~2x (pass >= {TARGET_TWO_RATIO}x)",
                    "pass": bool(ratio and ratio >= TARGET_TWO_RATIO)})
    b = report.get("bytes")
    if b:
        out.append({"part": 3, "what": "Redis bytes / process-s, captures A-E (worst, newest minute)",
                    "value": f"{b['worst_capture']} B", "target": f"<= {TARGET_BYTES} B",
                    "pass": b["worst_capture"] <= TARGET_BYTES})
        if b.get("worst_sim") is not None:
            out.append({"part": 3, "what": "Redis bytes / process-s, simulated fleet (worst)",
                        "value": f"{b['worst_sim']} B", "target": f"<= {TARGET_BYTES} B",
                        "pass": b["worst_sim"] <= TARGET_BYTES})
    for r in report.get("latency", []):
        d = r["datagram_to_client_ms"]
        out.append({"part": 4, "what": f"datagram -> client, {r['processes']} processes at 1 Hz "
                                       f"({r['agents']} agent(s))",
                    "value": f"p50 {d.get('p50')} / p95 {d.get('p95')} / p99 {d.get('p99')} ms",
                    "target": f"p99 <= {TARGET_P99_MS:.0f} ms",
                    "pass": d.get("p99") is not None and d["p99"] <= TARGET_P99_MS})
        fa = r["frame_age_ms"]
        out.append({"part": 4, "what": f"frame age (recv - end of second), {r['processes']} processes",
                    "value": f"p50 {fa.get('p50')} / p95 {fa.get('p95')} / p99 {fa.get('p99')} ms",
                    "target": f"none: the complete second follows the partial ones by design "
                              f"(floor {r['frame_age_floor_ms']} ms by PUBLISH_DELAY={r['publish_delay_s']})",
                    "pass": None})
    return out


def _d(d: dict[str, Any], *keys: str) -> str:
    return "/".join(str(d.get(k)) for k in keys)


def markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [f"### Console benchmark ({report['started']}, {machine['cpus']} CPUs, "
             f"load average at start {' '.join(machine['loadavg_start'])})", "",
             "| part | measurement | value | target | result |", "|---|---|---|---|---|"]
    for t in report["targets"]:
        lines.append(f"| {t['part']} | {t['what']} | {t['value']} | {t['target']} | "
                     f"{'information' if t['pass'] is None else '**PASS**' if t['pass'] else '**FAIL**'} |")
    if report.get("throughput"):
        lines += ["", "Throughput runs (cores = CPU seconds per second; other = the rest of the machine; "
                  "live client = one /ws/live/ subscriber of host 1 during the run):", "",
                  "| run | workers | agents | workload | batch | samples/s | worker cores | redis cores "
                  "| load cores | other cores | worker us/sample | redis us/sample | EVALSHA us/call "
                  "| ack rtt p50/p99 ms | reconnects, crashes | worker RSS MB "
                  "| live: frames/s, max gap s, false outages |",
                  "|---|---:|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---|---|---|"]
        for r in report["throughput"]:
            rtt = r["rtt_ms"]
            ev = r["redis_commands"].get("evalsha", {}).get("usec_per_call")
            lv = r["live_client_under_load"]
            cores = ", ".join(f"{c:.2f}" for c in r["worker_cores"])
            rss = ", ".join(str(m.get("VmHWM")) for m in r["worker_mem_mb"])
            lines.append(
                f"| {r['label']} | {r['workers']} | {r['agents']} | {r['workload']} | {r['batch']} "
                f"| {r['samples_per_s']:,} | {cores} | {r['redis_cores']:.2f} | {r['load_cores']:.2f} "
                f"| {r['other_cores']:.2f} | {r['worker_us_per_sample']} | {r['redis_us_per_sample']} | {ev} "
                f"| {_d(rtt, 'p50', 'p99')} | {r['reconnects']}, "
                f"{r['worker_crashes']['exceptions_inside_application']} | {rss} "
                f"| {lv['frames']}/{lv['expected']}, {lv['max_gap_s']}, {lv['false_outages']} |")
    if report.get("latency"):
        lines += ["", "Latency runs (ms; tick = kind-2 request-metrics datagram; "
                  "frame age = arrival - end of the frame's second):", "",
                  "| processes x agents | tick->client p50/p95/p99 | any datagram to complete frame p50/p99 "
                  "| newest tick p50/p99 | frame age p50/p99 | publish after second end p50 "
                  "| fan-out p50/p99 "
                  "| second complete in Redis after its end p50/p99 | completeness (min) | worker cores "
                  "| drops live/agent, false outages, crashes |",
                  "|---|---|---|---|---|---|---|---|---|---:|---|"]
        for r in report["latency"]:
            lines.append(
                f"| {r['processes']} x {r['agents']} | {_d(r['datagram_to_client_ms'], 'p50', 'p95', 'p99')} "
                f"| {_d(r['any_datagram_to_complete_frame_ms'], 'p50', 'p99')} "
                f"| {_d(r['newest_tick_to_client_ms'], 'p50', 'p99')} "
                f"| {_d(r['frame_age_ms'], 'p50', 'p99')} "
                f"| {r['publish_after_second_end_ms'].get('p50')} | {_d(r['fanout_ms'], 'p50', 'p99')} "
                f"| {_d(r['second_complete_in_redis_after_end_ms'], 'p50', 'p99')} "
                f"| {r['frame_completeness']['min']} | {r['cores']['worker']} "
                f"| {r['live_client_drops']}/{r['agent_drops']}, {r['false_outages']}, "
                f"{r['worker_crashes']['exceptions_inside_application']} |")
    if report.get("bytes"):
        lines += ["", "Redis bytes, newest minute (bench/redis_bytes.py's measure, zlib on):", "",
                  "| source | processes | process-s | B / process-s | raw B / process-s |",
                  "|---|---:|---:|---:|---:|"]
        for r in report["bytes"]["rows"]:
            lines.append(f"| {r['scenario']} | {r['processes']} | {r['process_seconds']} | "
                         f"{r['bytes_per_process_second']} | {r['raw_bytes_per_process_second']} |")
    if report.get("profile"):
        p = report["profile"]
        lines += ["", f"py-spy --native on one worker ({p['run']}; {p['summary']['samples']} samples, "
                  f"{p['summary']['idle_samples']} idle): % of busy samples", "",
                  "| inclusive | % | | self | % |", "|---|---:|---|---|---:|"]
        inc, slf = p["summary"]["inclusive"][:15], p["summary"]["self"][:15]
        for i in range(max(len(inc), len(slf))):
            a = inc[i] if i < len(inc) else ("", "")
            b = slf[i] if i < len(slf) else ("", "")
            lines.append(f"| {a[0]} | {a[1]} | | {b[0]} | {b[1]} |")
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------


def bench_main(args: argparse.Namespace) -> int:
    global PUBLISH_DELAY
    PUBLISH_DELAY = publish_delay()
    if args.quick:
        args.duration = args.duration or 5.0
        args.warmup = args.warmup or 2.0
        args.latency = args.latency or "100x1,1000x4"
        args.latency_duration = args.latency_duration or 20.0
        args.two_agents = args.two_agents or "50"
        args.batch_sweep = args.batch_sweep or ""
    args.duration = args.duration or 10.0
    args.warmup = args.warmup or 3.0
    args.latency = args.latency or "100x1,1000x4,1000x1"
    args.latency_duration = args.latency_duration or 45.0
    args.two_agents = args.two_agents or "2,10,50"
    args.batch_sweep = "50,500" if args.batch_sweep is None else args.batch_sweep
    args.bytes_fleets = [(4, 25), (8, 125)]
    skip = set(filter(None, args.skip.split(",")))
    agents = [int(x) for x in args.agents.split(",")]
    two_agents = [int(x) for x in args.two_agents.split(",")]
    latency = [tuple(int(v) for v in x.split("x")) for x in args.latency.split(",") if x]
    if args.pyspy and not os.access(args.pyspy, os.X_OK):
        raise SystemExit(f"--pyspy {args.pyspy}: not executable")
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    report: dict[str, Any] = {
        "benchmark": "console", "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
                    "loadavg_start": load},
        "config": {k: v for k, v in vars(args).items() if k not in ("func",)},
        "throughput": [], "latency": [],
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench-console-"))
    hosts = max([*agents, *two_agents, *(a for _, a in latency), 10 if args.batch_sweep else 1])
    env = Env(tmp, hosts, args.settings)
    print(f"redis on {env.redis_port}, {hosts} hosts, work dir {tmp}", file=sys.stderr, flush=True)
    status = 0
    try:
        if "throughput" not in skip:
            ports = env.start_workers(1)
            for n in agents:
                report["throughput"].append(run_throughput(env, ports, n, args, "one"))
            if args.workload == "sim" and "capture" not in skip:
                saved = args.workload
                args.workload = "capture"
                report["throughput"].append(run_throughput(env, ports, max(agents), args, "one-capture"))
                args.workload = saved
            if args.batch_sweep and "sweep" not in skip:
                saved = args.batch
                for b in (int(x) for x in args.batch_sweep.split(",")):
                    args.batch = b
                    report["throughput"].append(run_throughput(env, ports, 10, args, f"batch-{b}"))
                args.batch = saved
            if args.pyspy:
                prof = tmp / "pyspy-worker.txt"
                n = max(agents)
                row = run_throughput(env, ports, n, args, "profiled", profile_out=prof)
                report["throughput"].append(row)
                if prof.exists():
                    raw = prof
                    if not args.no_save:
                        RESULTS.mkdir(parents=True, exist_ok=True)
                        raw = RESULTS / "console-pyspy-latest.txt"
                        shutil.copy(prof, raw)
                    report["profile"] = {"run": f"1 worker, {n} agents, {args.workload}, batch {args.batch}",
                                         "raw": str(raw), "summary": summarize_pyspy(prof)}
            env.stop_workers()
        if "two" not in skip:
            ports = env.start_workers(2)
            for n in two_agents:
                report["throughput"].append(run_throughput(env, ports, n, args, "two"))
            env.stop_workers()
        if "bytes" not in skip:
            report["bytes"] = run_bytes(env, args)
        if "latency" not in skip:
            for processes, n in latency:
                report["latency"].append(run_latency(env, processes, n, args))
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
        report["worker_log_tail"] = env.worker_log_tail()
        print(f"error: {report['error']}\n{report['worker_log_tail']}", file=sys.stderr)
        status = 1
    finally:
        env.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    report["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        report["targets"] = targets(report)
        report["summary_markdown"] = markdown(report)
    except Exception as exc:  # keep the measurements whatever happens to the summary
        report.setdefault("targets", [])
        report["summary_markdown"] = f"(summary failed: {type(exc).__name__}: {exc})"
        status = 1
    text = json.dumps(report, indent=1, default=str)
    print(report["summary_markdown"])
    if args.no_save:
        out = Path(tempfile.mkstemp(prefix="console-", suffix=".json")[1])
        out.write_text(text + "\n")
        print(f"\nresults (--no-save): {out}")
    else:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        out = RESULTS / f"console-{stamp}.json"
        out.write_text(text + "\n")
        (RESULTS / "console-latest.json").write_text(text + "\n")
        print(f"\nresults: {out} (and console-latest.json)")
    if status:
        return status
    return 3 if any(t["pass"] is False for t in report["targets"]) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--quick", action="store_true",
                        help="5 s per throughput point, two workers at 50 agents only, latency 20 s per run")
    parser.add_argument("--skip", default="",
                        help="comma-separated: throughput,capture,sweep,two,bytes,latency")
    parser.add_argument("--agents", default="1,10,50", help="agents against one worker (default %(default)s)")
    parser.add_argument("--two-agents", help="agents against two workers (default 2,10,50; quick: 50)")
    parser.add_argument("--duration", type=float, help="measured seconds per throughput point (default 10)")
    parser.add_argument("--warmup", type=float, help="seconds before measuring (default 3)")
    parser.add_argument("--workload", default="sim", choices=["sim", "capture"])
    parser.add_argument("--batch", type=int, default=250, help="samples per batch (default %(default)s)")
    parser.add_argument("--batch-sweep",
                        help="also run 1 worker x 10 agents at these batch sizes "
                        "(default 50,500; quick: none)")
    parser.add_argument("--procs", type=int, default=1000,
                        help="processes per simulated host (default %(default)s)")
    parser.add_argument("--groups", type=int, default=8, help="process groups per host (default %(default)s)")
    parser.add_argument("--window", type=int, default=16,
                        help="batches in flight per agent (default %(default)s, uplink.WINDOW)")
    parser.add_argument("--no-deflate", action="store_true", help="do not offer permessage-deflate")
    parser.add_argument("--bytes-scenarios", default="A,B,C,D,E")
    parser.add_argument("--latency", help="processes x agents per latency run (default 100x1,1000x4,1000x1)")
    parser.add_argument("--latency-duration", type=float,
                        help="seconds of sending per latency run (default 45; quick: 20)")
    parser.add_argument("--latency-warmup", type=float, default=6.0)
    parser.add_argument("--pyspy", help="py-spy executable: profile one worker during an extra run")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--report", metavar="JSON", help="run nothing: print the summary of a results file")
    parser.add_argument("--no-save", action="store_true",
                        help="write the results to a temporary file, not bench/results/")
    parser.add_argument("--settings", default="console.settings",
                        help="DJANGO_SETTINGS_MODULE of the workers, to try a settings change without "
                        "editing the product (put its directory on PYTHONPATH; default %(default)s)")

    load = sub.add_parser("_load", help=argparse.SUPPRESS)
    load.add_argument("--spec", required=True)
    sim = sub.add_parser("_sim", help=argparse.SUPPRESS)
    sim.add_argument("--socket", required=True)
    sim.add_argument("--groups", type=int, required=True)
    sim.add_argument("--processes", type=int, required=True)
    sim.add_argument("--duration", type=float, required=True)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--hostname", default="sim")
    sim.add_argument("--out", required=True)
    return parser


def report_main(path: str) -> int:
    """Print the summary of an earlier results file, targets recomputed."""
    with open(path) as fh:
        report = json.load(fh)
    report["targets"] = targets(report)
    print(markdown(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.report:
        return report_main(args.report)
    if args.command == "_load":
        return load_main(args)
    if args.command == "_sim":
        return sim_main(args)
    return bench_main(args)


if __name__ == "__main__":
    sys.exit(main())
