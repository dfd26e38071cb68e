"""Medians over repeats, ours against the reference, targets and the Markdown summary."""

from __future__ import annotations

import statistics
from typing import Any

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
