"""``python -m bench.agent``: the matrix of workloads x rates x receivers, saved and summarised."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
from typing import Any

from bench import agent
from bench.agent.common import (
    DEFAULT_RATES,
    DEFAULT_WORKLOADS,
    IMPLS,
    QUICK_RATES,
    QUICK_WORKLOADS,
    REFERENCE_PYTHON,
    RESULTS,
)
from bench.agent.measure import qlen_set, read_qlen, run_one
from bench.agent.report import markdown, points, ratios, targets
from bench.agent.workload import load_workload, sender_main, sim_count

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
    parser = argparse.ArgumentParser(prog="python -m bench.agent", description=agent.__doc__,
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
