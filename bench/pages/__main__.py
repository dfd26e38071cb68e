"""``python -m bench.pages``: logs in, runs the parts asked for, saves the results."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import pages
from bench.console_load import common as bc
from bench.pages.common import VIEWPORT, loadavg, log
from bench.pages.first import part_cpu, part_first
from bench.pages.load import part_latency, part_viewers
from bench.pages.report import markdown, rows_of
from bench.pages.rig import PASSWORD, Rig
from stack import CHROMIUM, CHROMIUM_FLAGS


def login(browser: Any, rig: Rig) -> dict:
    ctx = browser.new_context(viewport=VIEWPORT)
    try:
        page = ctx.new_page()
        page.goto(rig.base + "/accounts/login/")
        page.fill("#id_username", rig.seed["user"])
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        return ctx.storage_state()
    finally:
        ctx.close()


def bench_main(args: argparse.Namespace) -> int:
    from playwright.sync_api import sync_playwright

    bc.PUBLISH_DELAY = bc.publish_delay()
    reps = 1 if args.quick else 3
    cfg = {"quick": args.quick, "reps": reps, "history_s": args.history,
           "page_cpu_s": 8.0 if args.quick else 15.0, "viewers_s": 6.0 if args.quick else 8.0,
           "latency_s": 15.0 if args.quick else 20.0, "skip": args.skip}
    skip = set(filter(None, args.skip.split(",")))
    report: dict[str, Any] = {
        "benchmark": "pages", "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "config": cfg,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
                    "loadavg_start": loadavg()},
        "load": {"ours": "python -m ingest simulate --groups 5 --processes 10 --threads 4 -> agent",
                 "reference": "mod_wsgi-telemetry simulate --processes 50 -> serve",
                 "latency": "bench.console_load _sim --groups 4 --processes 25 (100 processes, 1 Hz), both"}}
    tmp = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    rig: Rig | None = None
    status = 0
    began = time.monotonic()

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, on_term)
    try:
        rig = Rig(tmp, 2)
        sock = rig.start_agent(0)
        feeds = [rig.spawn([bc.PY, "-m", "ingest", "simulate", "--socket", str(sock), "--groups", "5",
                            "--processes", "10", "--threads", "4"], "sim50.log")]
        rig.start_reference()
        feeds.append(rig.reference_sim(50))
        rig.fed_at = fed = time.monotonic()
        log(f"console on {rig.base}, reference on http://127.0.0.1:{rig.ref_port}/, work dir {tmp}")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM,
                                         args=CHROMIUM_FLAGS)
            try:
                state = login(browser, rig)
                time.sleep(max(0.0, fed + args.history - time.monotonic()))
                log(f"[{time.monotonic() - began:.0f} s] 1: first data")
                if "first" not in skip:
                    report["first_data"] = part_first(browser, state, rig, reps)
                log(f"[{time.monotonic() - began:.0f} s] 2: page CPU")
                if "cpu" not in skip:
                    report["page_cpu"] = part_cpu(browser, state, rig, reps, cfg["page_cpu_s"])
                log(f"[{time.monotonic() - began:.0f} s] 3: console CPU with viewers")
                if "viewers" not in skip:
                    report["viewers"] = part_viewers(rig, reps, cfg["viewers_s"], report.get("first_data"))
                if "late" not in skip:
                    report["first_data_late"] = part_first(browser, state, rig, 1, reference=False)
                log(f"[{time.monotonic() - began:.0f} s] 4: datagram to screen")
                if "latency" not in skip:
                    report["latency"] = part_latency(browser, state, rig, reps, cfg["latency_s"], feeds)
            finally:
                browser.close()
    except KeyboardInterrupt:
        report["error"] = "interrupted"
        status = 130
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            report["log_tail"] = "\n".join(log_tail(tmp))
        log(f"error: {report['error']}\n{report.get('log_tail', '')}")
        status = 1
    finally:
        if rig is not None:
            rig.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        signal.signal(signal.SIGTERM, old_term)
    report["machine"]["loadavg_end"] = loadavg()
    report["wall_s"] = round(time.monotonic() - began, 1)
    try:
        report["rows"] = rows_of(report)
    except Exception as exc:  # keep the measurements whatever happens to the summary
        report["rows"], report["error"] = [], f"summary failed: {type(exc).__name__}: {exc}"
        status = status or 1
    report["summary_markdown"] = markdown(report)
    print(report["summary_markdown"])
    text = json.dumps(report, indent=1, default=str) + "\n"
    if args.no_save:
        out = Path(tempfile.mkstemp(prefix="pages-", suffix=".json")[1])
        out.write_text(text)
    else:
        bc.RESULTS.mkdir(parents=True, exist_ok=True)
        out = bc.RESULTS / f"pages-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
        out.write_text(text)
        (bc.RESULTS / "pages-latest.json").write_text(text)
    print(f"\nresults: {out} ({report['wall_s']} s)")
    if status:
        return status
    return 3 if any(r["pass"] is False for r in report["rows"]) else 0


def log_tail(tmp: Path) -> list[str]:
    out = []
    for path in sorted(tmp.glob("*.log")):
        lines = path.read_text(errors="replace").splitlines()[-5:]
        if lines:
            out += [f"--- {path.name}", *lines]
    return out[-60:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pages", description=pages.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one run per point, shorter windows (~5 min)")
    parser.add_argument("--skip", default="", help="comma-separated: first,cpu,viewers,late,latency")
    parser.add_argument("--history", type=float, default=60.0, help="seconds of data before measuring (60)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--no-save", action="store_true", help="write the results to a temporary file")
    return bench_main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
