"""Part 4: datagram-to-client latency through real agents, and its analysis."""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.console_load import common
from bench.console_load.common import (
    PY,
    REPO,
    crashes,
    dist_ms,
    proc_cpu,
    proc_mem_mb,
    publish_delay,
    spawn,
    stop_proc,
    system_busy,
)
from bench.console_load.env import Env
from bench.console_load.live import live_client, redis_poller


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
                    [PY, "-m", "bench.console_load", "_sim", "--socket", str(tmp / f"agent{i}.sock"),
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
            await asyncio.sleep(common.PUBLISH_DELAY + 2.5)  # the last seconds' frames
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
