"""The report: rows beside the reference's, targets, the Markdown summary."""

from __future__ import annotations

from typing import Any

from bench.pages.common import TABS, TARGET_BYTES, TARGET_FIRST_MS, TARGET_P99_MS, TARGET_VIEWER_RATIO

# -- report -------------------------------------------------------------------------------------------


def _kb(v: Any) -> str:
    return "-" if v is None else f"{v / 1e3:,.1f} kB" if v < 1e6 else f"{v / 1e6:,.2f} MB"


def _ratio(a: Any, b: Any) -> str:
    return f"{a / b:.3g}x" if isinstance(a, int | float) and isinstance(b, int | float) and b else "-"


def rows_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    """(part, measurement, ours, reference, ratio, target, pass) rows; pass None = no target."""
    rows: list[dict[str, Any]] = []

    def add(part: int, what: str, ours: Any, ref: Any, ratio: str, target: str = "-",
            ok: bool | None = None) -> None:
        rows.append({"part": part, "what": what, "ours": ours, "reference": ref, "ratio": ratio,
                     "target": target, "pass": ok})

    first = report.get("first_data")
    if first:
        m, r = first["median"], first["median"]["reference"]
        rb, rt = r["ws_bytes_to_first_data"], r["first_data_ms"]
        for tab in TABS:
            x = m[tab]
            b, t = x["ws_bytes_to_first_data"], x["first_data_ms"]
            add(1, f"{tab}: WebSocket bytes to first data (host.snapshot {_kb(x['host_snapshot_bytes'])} "
                f"+ tab.snapshot {_kb(x['tab_snapshot_bytes'])}; reference: its snapshot)",
                _kb(b), _kb(rb), _ratio(b, rb), "<= 1 MB", b is not None and b <= TARGET_BYTES)
            add(1, f"{tab}: navigation to first data drawn (DOMContentLoaded {x['dom_content_loaded_ms']}, "
                f"WS open {x['ws_open_ms']}, snapshot in {x['snapshot_arrival_ms']} ms)",
                f"{t:.0f} ms", f"{rt:.0f} ms", _ratio(t, rt), "<= 1 s",
                t is not None and t <= TARGET_FIRST_MS)
        add(1, "reference: DOMContentLoaded / WS open / snapshot in / long tasks before first data", "-",
            f"{r['dom_content_loaded_ms']} / {r['ws_open_ms']} / {r['snapshot_arrival_ms']} / "
            f"{r['long_task_ms_before_first_data']} ms", "-")
        ov = m["overview"]
        add(1, "overview: throughput readout shows a number", f"{ov['readout_ms']} ms", "-", "-")
        add(1, "page weight (HTML + JS + CSS transferred)", _kb(ov["page_weight_bytes"]),
            _kb(r["page_weight_bytes"]), _ratio(ov["page_weight_bytes"], r["page_weight_bytes"]))
    late = report.get("first_data_late")
    if late:
        for tab in TABS:
            x = late["median"][tab]
            b, t = x["ws_bytes_to_first_data"], x["first_data_ms"]
            add(1, f"{tab} after {late['history_s']} s of history (one run): bytes / time to first data",
                f"{_kb(b)} / {t:.0f} ms", "-", "-", "<= 1 MB / <= 1 s",
                b is not None and b <= TARGET_BYTES and t is not None and t <= TARGET_FIRST_MS)
    cpu = report.get("page_cpu")
    if cpu:
        ref = cpu["reference"]
        for key, label in (("ours_overview", "one page, Overview"),
                           ("ours_all_tabs", "five pages, one per tab")):
            o = cpu[key]
            add(2, f"Chromium CPU (all its processes, /proc), {label}; reference: one page",
                f"{o['chromium_tree_cores']} cores", f"{ref['chromium_tree_cores']} cores",
                _ratio(o["chromium_tree_cores"], ref["chromium_tree_cores"]))
            add(2, f"main-thread task / script time (CDP, wall time of tasks), {label}",
                f"{o['task_ms_per_s']} / {o['script_ms_per_s']} ms/s",
                f"{ref['task_ms_per_s']} / {ref['script_ms_per_s']} ms/s",
                _ratio(o["task_ms_per_s"], ref["task_ms_per_s"]))
            add(2, f"messages received / page animation frames per second, {label}",
                f"{o['messages_per_s']} / {o['page_animation_frames_per_s']}",
                f"{ref['messages_per_s']} / {ref['page_animation_frames_per_s']}", "-")
    views = report.get("viewers")
    if views:
        o, r = views["median"]["ours"], views["median"]["reference"]
        add(3, "console CPU with 0 viewers (ingest and publishing only)", f"{o['0']['console']} cores",
            "-", "-")
        for n in ("1", "10", "50"):
            add(3, f"console CPU with {n} viewer(s) (ours: daphne, Redis {o[n]['redis']} cores apart; "
                f"messages/s per viewer {o[n]['messages_per_viewer_per_s']} vs "
                f"{r[n]['messages_per_viewer_per_s']}; all subscribed in {o[n]['connect_s']} vs "
                f"{r[n]['connect_s']} s)", f"{o[n]['console']} cores", f"{r[n]['console']} cores",
                _ratio(o[n]["console"], r[n]["console"]))
        ratio = o["ratio_50_to_1"]
        add(3, "console CPU(50) / CPU(1) (median of the per-run ratios: "
            f"ours {o['ratio_50_to_1_median_of_runs']}, reference {r['ratio_50_to_1_median_of_runs']})",
            f"{ratio}x", f"{r['ratio_50_to_1']}x", "-", "< 2x",
            ratio is not None and ratio < TARGET_VIEWER_RATIO)
    lat = report.get("latency")
    if lat:
        m = lat["median"]
        for kind, label in (("screen", "datagram to screen"),
                            ("arrival", "datagram to page (message arrival)")):
            o, r = m[f"ours_{kind}"], m[f"reference_{kind}"]
            screen = kind == "screen"
            add(4, f"{label}, 100 processes at 1 Hz, p50 / p95 / p99 ms (n {o['n']} vs {r['n']})",
                f"{o['p50']} / {o['p95']} / {o['p99']}", f"{r['p50']} / {r['p95']} / {r['p99']}",
                _ratio(o["p99"], r["p99"]), "p99 <= 250 ms" if screen else "-",
                (o["p99"] is not None and o["p99"] <= TARGET_P99_MS) if screen else None)
    return rows


def markdown(report: dict[str, Any]) -> str:
    mc = report["machine"]
    lines = [f"### Page benchmark ({report['started']}, {'quick' if report['config']['quick'] else 'full'}, "
             f"{mc['cpus']} CPUs, load average {' '.join(mc['loadavg_start'])} at start, "
             f"{' '.join(mc.get('loadavg_end', []))} at end; "
             f"medians of {report['config']['reps']} run(s))", "",
             "| part | measurement | ours | reference | ours/ref | target | result |",
             "|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        result = "-" if r["pass"] is None else "**PASS**" if r["pass"] else "**FAIL**"
        lines.append(f"| {r['part']} | {r['what']} | {r['ours']} | {r['reference']} | {r['ratio']} "
                     f"| {r['target']} | {result} |")
    if report.get("error"):
        lines += ["", f"Error: {report['error']}"]
    return "\n".join(lines)
