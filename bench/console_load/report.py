"""The report: targets (PASS/FAIL), the Markdown summary, py-spy's hottest functions."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

from bench.console_load.common import TARGET_BYTES, TARGET_ONE, TARGET_P99_MS, TARGET_TWO_RATIO

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
