"""``python -m bench.console_load``: runs the parts asked for and saves the results."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import console_load
from bench.console_load import common
from bench.console_load.common import RESULTS, publish_delay
from bench.console_load.env import Env
from bench.console_load.latency import run_latency
from bench.console_load.live import sim_main
from bench.console_load.load import load_main
from bench.console_load.report import markdown, summarize_pyspy, targets
from bench.console_load.throughput import run_bytes, run_throughput

# -- main -----------------------------------------------------------------------------------


def bench_main(args: argparse.Namespace) -> int:
    common.PUBLISH_DELAY = publish_delay()  # what the latency runs wait for
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
    parser = argparse.ArgumentParser(prog="python -m bench.console_load", description=console_load.__doc__,
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
