"""``python -m ingest demo``: the agent fed by a simulated fleet, live.

The product without its console, in a terminal: a real agent
bound to a real socket, a simulated mod_wsgi fleet sending real datagrams
to it, lifecycle and slow-request events printed as they arrive, and a
per-process table every few seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
from typing import TextIO

from ..model.fields import Kind
from ..pipeline.agent import Agent, AgentConfig
from ..pipeline.receiver import SocketSetupError
from ..pipeline.state import Process
from . import dump, simulate

EVENT_KINDS = {Kind.PROCESS_STARTED, Kind.PROCESS_STOPPING, Kind.PROCESS_STOPPED}


def process_table(agent: Agent) -> str:
    """A fixed-width table of live processes, the agent's counters on top."""
    c = agent.counters()
    lines = [
        f"{c['processes']} processes | received {c['received']} | decoded {c['decoded']} | "
        f"malformed {c['malformed']} | lost {c['lost']} | queue drops {c['queue_drops']}",
        f"{'PID':>7} {'GROUP':<10} {'STATE':<9} {'REQ/S':>7} {'2xx':>6} {'3xx':>5} {'4xx':>5} {'5xx':>5}"
        f" {'CAP':>5} {'CPU':>5} {'RSS':>7} {'SLOW':>4} {'LOST':>4}",
    ]
    procs: list[Process] = sorted(agent.state.current.values(), key=lambda p: (str(p.group), p.pid))
    for p in procs:
        t = p.last_tick
        lines.append(
            f"{p.pid:>7} {dump.printable(p.group or '-')[:10]:<10} {p.state:<9}"
            f" {t.get('request_throughput', 0.0):>7.1f} {p.status[1]:>6} {p.status[2]:>5} {p.status[3]:>5}"
            f" {p.status[4]:>5} {t.get('capacity_utilization', 0.0):>5.0%}"
            f" {t.get('cpu_utilization', 0.0):>5.2f}"
            f" {t.get('memory_rss', 0) / 2**20:>6.1f}M {len(p.slow_active):>4} {p.lost:>4}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    workdir = tempfile.mkdtemp(prefix="wsgi-fleet-demo-")
    path = os.path.join(workdir, "telemetry.sock")
    agent = Agent(AgentConfig(socket=path, socket_mode=0o600, log_interval=0))
    printer = dump.Printer(out)
    agent.listeners.append(lambda d, p: printer(d, p) if d.kind in EVENT_KINDS or (
        d.kind == Kind.SLOW_REQUEST and d.fields.get("slow_record_state") == 1) else None)
    stop = threading.Event()
    try:
        agent.start()
    except SocketSetupError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    print(f"agent listening on {path}; simulated fleet: {args.groups} groups x {args.processes} "
          f"processes x {args.threads} threads; Ctrl-C to stop", file=out, flush=True)
    fleet = threading.Thread(target=simulate.run, name="simulate", daemon=True, kwargs=dict(
        target=path, groups=args.groups, processes=args.processes, threads=args.threads,
        interval=args.interval, duration=args.duration, rate=None, seed=args.seed,
        restart_probability=args.restart_probability))
    fleet.start()
    try:
        while fleet.is_alive() and not stop.wait(args.every):
            print("\n" + process_table(agent) + "\n", file=out, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        agent.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(dump.summary_line(agent.state), file=out)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--groups", type=int, default=2)
    p.add_argument("--processes", type=int, default=3, help="processes per group")
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--duration", type=float, default=0.0, help="seconds; 0 runs until Ctrl-C")
    p.add_argument("--restart-probability", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--every", type=float, default=3.0, help="seconds between process tables")
