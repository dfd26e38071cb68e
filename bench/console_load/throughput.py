"""Parts 1 to 3: write throughput of one and of two workers, and Redis bytes per process-second."""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.console_load.common import (
    CAPTURES,
    PY,
    REPO,
    crashes,
    dist_ms,
    proc_cpu,
    proc_mem_mb,
    spawn,
    stop_proc,
    system_busy,
)
from bench.console_load.env import Env
from bench.console_load.live import live_client

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
        proc = spawn([PY, "-m", "bench.console_load", "_load", "--spec", str(path)],
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


def run_bytes(env: Env, args: argparse.Namespace) -> dict[str, Any]:
    from bench import redis_bytes as rb
    from ingest.commands import simulate
    from ingest.pipeline import capture
    from ingest.pipeline.samples import replay

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
