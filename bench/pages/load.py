"""Parts 3 and 4: console CPU with N viewers, and datagram to screen."""

from __future__ import annotations

import contextlib
import io
import json
import signal
import time
import types
from typing import Any

from bench.console_load import common as bc
from bench.console_load.latency import analyse_latency
from bench.pages.common import VIEWPORT, log, med
from bench.pages.first import wait_first
from bench.pages.probe import init_js
from bench.pages.rig import Rig
from bench.pages.viewers import Viewers

# -- 3: console CPU with N viewers ------------------------------------------------------------------


def viewers_point(rig: Rig, side: str, n: int, seconds: float, spec: dict[str, Any]) -> dict[str, Any]:
    pid = rig.daphne_pid if side == "ours" else rig.ref.pid
    viewers, info, result = None, {}, {}

    def snap() -> dict[str, float]:
        return {"console": bc.proc_cpu(pid), "redis": bc.proc_cpu(rig.env.redis.pid), "t": time.monotonic(),
                "viewers": bc.proc_cpu(viewers.proc.pid) if viewers else 0.0, "machine": bc.system_busy()}

    try:
        if n:
            viewers = Viewers(rig, {**spec, "n": n}, f"{side}-{n}")
            info = viewers.start()
        time.sleep(2)
        c0 = snap()
        time.sleep(seconds)
        c1 = snap()
    finally:
        if viewers is not None:
            result = viewers.finish()
    wall = c1["t"] - c0["t"]
    cores = {k: round((c1[k] - c0[k]) / wall, 4) for k in ("console", "redis", "viewers", "machine")}
    return {"side": side, "viewers": n, "cores": cores, "connect_s": info.get("connected_in_s"),
            "messages_per_viewer_per_s": result.get("messages_per_viewer_per_s"),
            "viewer_errors": result.get("errors")}


def part_viewers(rig: Rig, reps: int, seconds: float, first: dict[str, Any] | None) -> dict[str, Any]:
    host = rig.seed["hosts"][0]
    subscribe = (first or {}).get("subscribe") or {
        "type": "subscribe", "scope": "host", "host": host["id"], "tab": "overview", "group": "*",
        "window": 300, "points": 1360, "options": {}}
    med_first = (first or {}).get("median", {})
    ours_spec = {"url": f"ws://127.0.0.1:{rig.port}/ws/live/",
                 "headers": {"Authorization": f"Bearer {rig.seed['api_token']}"}, "subscribe": subscribe,
                 "ready_type": "tab.snapshot",
                 "deflate": bool((med_first.get("overview") or {}).get("ws_extensions"))}
    ref_spec = {"ready_type": "snapshot",
                "deflate": bool((med_first.get("reference") or {}).get("ws_extensions"))}
    rows: list[dict[str, Any]] = []
    for rep in range(reps):
        for n in (0, 1, 10, 50):
            rows.append({**viewers_point(rig, "ours", n, seconds, ours_spec), "run": rep})
        for n in (1, 10, 50):
            rig.start_reference()  # fresh: N viewers do not each get a multi-megabyte snapshot
            time.sleep(4)
            spec = {**ref_spec, "url": f"ws://127.0.0.1:{rig.ref_port}/ws"}
            rows.append({**viewers_point(rig, "reference", n, seconds, spec), "run": rep})
        log(f"  viewers, run {rep + 1}: " + ", ".join(
            f"{r['side']} {r['viewers']}: {r['cores']['console']:.3f}" for r in rows[-7:]))
    summary: dict[str, Any] = {}
    for side, counts in (("ours", (0, 1, 10, 50)), ("reference", (1, 10, 50))):
        s = summary[side] = {}
        for n in counts:
            pts = [r for r in rows if r["side"] == side and r["viewers"] == n]
            s[str(n)] = {k: med([p["cores"][k] for p in pts])
                         for k in ("console", "redis", "viewers", "machine")}
            for k in ("messages_per_viewer_per_s", "connect_s"):
                s[str(n)][k] = med([p[k] for p in pts])
        one = s["1"]["console"]
        s["ratio_50_to_1"] = round(s["50"]["console"] / one, 2) if one else None
        s["ratio_10_to_1"] = round(s["10"]["console"] / one, 2) if one else None
        # the same ratio per run, then its median (the points of one run are close in time)
        runs = [{r["viewers"]: r["cores"]["console"] for r in rows if r["side"] == side and r["run"] == k}
                for k in range(reps)]
        s["ratio_50_to_1_median_of_runs"] = med([c[50] / c[1] for c in runs if c.get(1)])
    return {"runs": rows, "median": summary, "subscribe": subscribe}


# -- 4: datagram to screen --------------------------------------------------------------------------


def latency_page(browser: Any, state: dict | None, url: str, seconds: float, tail: float) -> dict[str, Any]:
    """One run on a fresh page; tried twice (a failure is kept in the result)."""
    try:
        return _latency_page(browser, state, url, seconds, tail)
    except Exception as exc:
        log(f"  retrying {url}: {exc}")
        return {**_latency_page(browser, state, url, seconds, tail), "failed_before": str(exc)[:500]}


def _latency_page(browser: Any, state: dict | None, url: str, seconds: float, tail: float) -> dict[str, Any]:
    ctx = browser.new_context(storage_state=state, viewport=VIEWPORT)
    try:
        ctx.add_init_script(init_js("lat"))
        page = ctx.new_page()
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        wait_first(page, url)
        time.sleep(2)
        w0 = time.time()
        time.sleep(seconds)
        w1 = time.time()
        time.sleep(tail)
        got = page.evaluate("() => ({frames: window.__bench.frames, samples: window.__bench.samples, "
                            "redraws: window.__bench.drawnRedraws, skew: window.__bench.clockSkewMs})")
    finally:
        ctx.close()
    return {"w0": w0, "w1": w1, **got}


def ours_latency(run: dict[str, Any], host: dict[str, Any], sent: dict[str, Any],
                 field: str) -> dict[str, Any]:
    frames = [{"host": host["id"], "t": f["t"], "now": f["now"], "recv": f[field] / 1000,
               "partial": f["partial"], "ticks": f["ticks"], "processes": f["processes"]}
              for f in run["frames"] if f.get(field)]
    got = {"frames": frames, "seen": {}, "infos": [{}], "begin": run["w0"], "cores": {}, "worker_log": "",
           "worker_mem": {}, "agent_drops": 0}
    args = types.SimpleNamespace(latency_warmup=0.0, latency_duration=run["w1"] - run["w0"] + 2)
    with contextlib.redirect_stderr(io.StringIO()):
        row = analyse_latency(100, 1, 4, [host], got, [sent], args)
    return {"datagram_ms": row["datagram_to_client_ms"], "ticks_never_shown": row["ticks_never_shown"],
            "frames_used": row["frames_used"], "frames_missing": row["frames_missing"]}


def reference_latency(run: dict[str, Any]) -> dict[str, Any]:
    lo, hi = run["w0"] * 1000, run["w1"] * 1000
    redraws = sorted(r for r in run["redraws"] if r[1] is not None)
    to_screen, to_arrival, unseen, j = [], [], 0, 0
    for stamp, arrival in sorted(run["samples"], key=lambda s: s[1]):
        if not lo <= arrival <= hi:
            continue
        while j < len(redraws) and redraws[j][0] < arrival:
            j += 1
        to_arrival.append((arrival - stamp) / 1000)
        if j < len(redraws):
            to_screen.append((redraws[j][1] - stamp) / 1000)
        else:
            unseen += 1
    return {"datagram_ms": bc.dist_ms(to_screen), "arrival_ms": bc.dist_ms(to_arrival), "unseen": unseen}


def part_latency(browser: Any, state: dict, rig: Rig, reps: int, seconds: float,
                 feeds: list[Any]) -> dict[str, Any]:
    for proc in feeds:  # the 50-process feeds stop: this part is about one 100-process host
        rig.stop(proc)
    host = rig.seed["hosts"][1]
    sock = rig.start_agent(1)
    total = 5 + reps * (seconds + 12) + 3
    out = rig.tmp / "sent-ours.json"
    sim = rig.logging_sim(sock, 4, 25, total, out, host["name"])
    time.sleep(5)
    url = f"{rig.base}/hosts/{host['name']}/?tab=overview&window=300"
    runs = [latency_page(browser, state, url, seconds, 2 + bc.PUBLISH_DELAY + 1.5) for _ in range(reps)]
    sim.wait(total + 30)
    sent = json.loads(out.read_text())
    ours = [{"screen": ours_latency(r, host, sent, "drawn"),
             "arrival": ours_latency(r, host, sent, "arrival"), "frames": len(r["frames"]),
             "clock_skew_ms": r["skew"]}
            for r in runs]
    rig.stop(rig.agents.get(1), signal.SIGINT)  # the reference runs alone
    rig.start_reference()
    out2 = rig.tmp / "sent-reference.json"
    total2 = 5 + reps * (seconds + 8) + 3
    sim2 = rig.logging_sim(rig.ref_sock, 4, 25, total2, out2, "reference")
    time.sleep(5)
    ref_runs = [latency_page(browser, None, f"http://127.0.0.1:{rig.ref_port}/", seconds, 1.0)
                for _ in range(reps)]
    rig.stop(sim2)
    ref = [{**reference_latency(r), "clock_skew_ms": r["skew"]} for r in ref_runs]
    dists = {"ours_screen": [r["screen"]["datagram_ms"] for r in ours],
             "ours_arrival": [r["arrival"]["datagram_ms"] for r in ours],
             "reference_screen": [r["datagram_ms"] for r in ref],
             "reference_arrival": [r["arrival_ms"] for r in ref]}
    summary = {key: {**{p: med([d.get(p) for d in ds]) for p in ("p50", "p95", "p99", "max")},
                     "n": sum(d.get("n", 0) for d in ds)} for key, ds in dists.items()}
    log("  datagram to screen: " + "; ".join(
        f"{k} p50/p95/p99 {v['p50']}/{v['p95']}/{v['p99']} ms (n {v['n']})" for k, v in summary.items()))
    return {"runs_ours": ours, "runs_reference": ref, "median": summary,
            "sender": {k: sent.get(k) for k in ("sent", "dropped", "unreachable", "max_late_s")}}
