"""Parts 1 and 2: time to first data on each page, and the page's CPU."""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

from bench.console_load import common as bc
from bench.pages.common import TABS, VIEWPORT, log, med
from bench.pages.probe import COLLECT_FIRST_JS, init_js
from bench.pages.rig import Rig, chromium_cpu

# -- 1: first data -------------------------------------------------------------------------------


def wait_first(page: Any, url: str, timeout: float = 30_000) -> None:
    """Until the page has drawn its first data; on a timeout, say what the page had received."""
    try:
        page.wait_for_function("() => window.__bench && window.__bench.firstData !== null", timeout=timeout,
                               polling=50)
    except Exception as exc:
        state = page.evaluate("() => window.__bench ? {msgs: window.__bench.msgs.slice(0, 8), wsOpen: "
                              "window.__bench.wsOpen, byType: window.__bench.byType, url: location.href, "
                              "pill: (document.querySelector('#conn') || "
                              "{}).textContent} : null")
        raise RuntimeError(f"no first data on {url}: {type(exc).__name__}; page had {state}") from exc


def load_once(browser: Any, state: dict | None, url: str, ours: bool) -> dict[str, Any]:
    """One cold page load; tried twice (a failure is kept in the result)."""
    try:
        return _load_once(browser, state, url, ours)
    except Exception as exc:
        log(f"  retrying {url}: {exc}")
        return {**_load_once(browser, state, url, ours), "failed_before": str(exc)[:500]}


def _load_once(browser: Any, state: dict | None, url: str, ours: bool) -> dict[str, Any]:
    ctx = browser.new_context(storage_state=state, viewport=VIEWPORT)
    try:
        ctx.add_init_script(init_js("first"))
        page = ctx.new_page()
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        wait_first(page, url)
        if ours and "tab=overview" in url:
            with contextlib.suppress(Exception):
                page.wait_for_function("() => window.__bench.firstReadout !== null", timeout=10_000,
                                       polling=50)
        page.wait_for_timeout(200)
        got = page.evaluate(COLLECT_FIRST_JS)
    finally:
        ctx.close()
    snap_type = "tab.snapshot" if ours else "snapshot"
    upto = next((i for i, m in enumerate(got["msgs"]) if m[0] == snap_type), len(got["msgs"]) - 1)
    msgs = got["msgs"][:upto + 1]
    sizes = {m[0]: m[1] for m in msgs}
    res = got["resources"]
    kinds: dict[str, int] = {}
    for r in res:
        kinds[r["type"]] = kinds.get(r["type"], 0) + (r["transfer"] or 0)
    nav = got["nav"]
    first = got["firstData"]
    return {
        "first_data_ms": round(first, 1), "readout_ms": got["firstReadout"] and round(got["firstReadout"], 1),
        "ws_bytes_to_first_data": sum(m[1] for m in msgs), "messages_to_first_data": [m[0] for m in msgs],
        "host_snapshot_bytes": sizes.get("host.snapshot"), "tab_snapshot_bytes": sizes.get("tab.snapshot"),
        "snapshot_bytes": sizes.get(snap_type),
        "snapshot_arrival_ms": got["snapAt"] and round(got["snapAt"], 1),
        "ws_open_ms": got["wsOpen"] and round(got["wsOpen"], 1),
        "ttfb_ms": round(nav["ttfb"] or 0, 1), "dom_content_loaded_ms": round(nav["dcl"] or 0, 1),
        "page_weight_bytes": (nav["transfer"] or 0) + sum(r["transfer"] or 0 for r in res),
        "page_weight_decoded_bytes": (nav["decoded"] or 0) + sum(r["decoded"] or 0 for r in res),
        "html_bytes": nav["transfer"], "asset_bytes_by_type": kinds, "assets": len(res),
        "long_tasks_before_first_data": [t for t in got["longtasks"] if t[0] < first],
        "ws_extensions": got["ext"], "sent": got["sent"][:2], "visibility": got["visibility"],
    }


def part_first(browser: Any, state: dict, rig: Rig, reps: int, reference: bool = True) -> dict[str, Any]:
    host = rig.seed["hosts"][0]["name"]
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in TABS + (["reference"] if reference else [])}
    history = round(time.monotonic() - rig.fed_at)
    for rep in range(reps):
        for tab in TABS:
            url = f"{rig.base}/hosts/{host}/?tab={tab}&window=300"
            runs[tab].append(load_once(browser, state, url, True))
        if reference:
            runs["reference"].append(load_once(browser, None, f"http://127.0.0.1:{rig.ref_port}/", False))
        log(f"  first data after {history} s of history, run {rep + 1}: " + ", ".join(
            f"{k} {v[-1]['ws_bytes_to_first_data'] / 1e3:,.0f} kB {v[-1]['first_data_ms']:.0f} ms"
            for k, v in runs.items()))
    summary = {}
    for key, rows in runs.items():
        summary[key] = {name: med([r[name] for r in rows]) for name in (
            "first_data_ms", "readout_ms", "ws_bytes_to_first_data", "host_snapshot_bytes",
            "tab_snapshot_bytes", "snapshot_bytes", "snapshot_arrival_ms", "ws_open_ms", "ttfb_ms",
            "dom_content_loaded_ms",
            "page_weight_bytes", "page_weight_decoded_bytes", "html_bytes")}
        summary[key]["long_task_ms_before_first_data"] = med(
            [sum(t[1] for t in r["long_tasks_before_first_data"]) for r in rows])
        summary[key]["ws_extensions"] = rows[0]["ws_extensions"]
    sent = runs["overview"][0]["sent"]
    return {"runs": runs, "median": summary, "history_s": history,
            "subscribe": next((json.loads(x) for x in sent if '"subscribe"' in x), None)}


# -- 2: page CPU ----------------------------------------------------------------------------------


def metrics(cdp: Any) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


COUNTERS_JS = ("() => ({msgs: window.__bench.count, bytes: window.__bench.bytes, "
               "rafs: window.__bench.rafCallbacks, byType: window.__bench.byType})")


def page_cpu(browser: Any, state: dict | None, urls: list[str], reps: int, seconds: float) -> dict[str, Any]:
    """Pages open side by side, each in its own context (so its own renderer); ``reps`` windows."""
    ctxs = [browser.new_context(storage_state=state, viewport=VIEWPORT) for _ in urls]
    try:
        pages = []
        for ctx, url in zip(ctxs, urls, strict=True):
            ctx.add_init_script(init_js("first"))
            pages.append(ctx.new_page())
            pages[-1].goto(url, wait_until="domcontentloaded", timeout=60_000)
        for page, url in zip(pages, urls, strict=True):
            wait_first(page, url)
        cdps = [ctx.new_cdp_session(p) for ctx, p in zip(ctxs, pages, strict=True)]
        for cdp in cdps:
            cdp.send("Performance.enable", {"timeDomain": "timeTicks"})
        time.sleep(3)
        visibility = [p.evaluate("() => document.visibilityState") for p in pages]
        windows = []
        for _ in range(reps):
            def sample(pages: list = pages, cdps: list = cdps) -> tuple:
                return ([p.evaluate(COUNTERS_JS) for p in pages], [metrics(c) for c in cdps],
                        chromium_cpu(), bc.system_busy(), time.monotonic())

            before = sample()
            time.sleep(seconds)
            after = sample()
            wall = after[4] - before[4]
            pairs = list(zip(before[0], after[0], before[1], after[1], strict=True))

            def cdp_ms(name: str, pairs: list = pairs, wall: float = wall) -> list[float]:
                return [round((m1.get(name, 0) - m0.get(name, 0)) / wall * 1000, 1)
                        for _, _, m0, m1 in pairs]

            def rate(key: str, pairs: list = pairs, wall: float = wall) -> float:
                return round(sum(c1[key] - c0[key] for c0, c1, _, _ in pairs) / wall, 1)

            task = cdp_ms("TaskDuration")
            windows.append({
                "chromium_tree_cores": round((after[2][0] - before[2][0]) / wall, 3),
                "renderers": after[2][1],
                "task_ms_per_s": round(sum(task), 1), "task_ms_per_s_by_page": task,
                "script_ms_per_s": round(sum(cdp_ms("ScriptDuration")), 1),
                "layout_style_ms_per_s": round(sum(cdp_ms("LayoutDuration"))
                                               + sum(cdp_ms("RecalcStyleDuration")), 1),
                "js_heap_mb": [round(m1.get("JSHeapUsedSize", 0) / 2**20, 1) for _, _, _, m1 in pairs],
                "messages_per_s": rate("msgs"), "ws_bytes_per_s": rate("bytes"),
                "page_animation_frames_per_s": rate("rafs"),
                "messages_per_s_by_type": [{k: round((v[0] - c0["byType"].get(k, [0])[0]) / wall, 1)
                                            for k, v in c1["byType"].items()} for c0, c1, _, _ in pairs],
                "machine_cores_busy": round((after[3] - before[3]) / wall, 2),
                "loadavg_1m": os.getloadavg()[0]})
    finally:
        for ctx in ctxs:
            ctx.close()
    keys = ("chromium_tree_cores", "task_ms_per_s", "script_ms_per_s", "layout_style_ms_per_s",
            "messages_per_s", "ws_bytes_per_s", "page_animation_frames_per_s", "machine_cores_busy")
    return {"pages": len(urls), "visibility": visibility, "windows": windows,
            **{k: med([w[k] for w in windows]) for k in keys}}


def part_cpu(browser: Any, state: dict, rig: Rig, reps: int, seconds: float) -> dict[str, Any]:
    host = rig.seed["hosts"][0]["name"]
    url = f"{rig.base}/hosts/{host}/?tab=%s&window=300"
    out = {"ours_overview": page_cpu(browser, state, [url % "overview"], reps, seconds),
           "ours_all_tabs": page_cpu(browser, state, [url % t for t in TABS], reps, seconds),
           "reference": page_cpu(browser, None, [f"http://127.0.0.1:{rig.ref_port}/"], reps, seconds)}
    for key, r in out.items():
        log(f"  page CPU {key}: task {r['task_ms_per_s']} ms/s, script {r['script_ms_per_s']} ms/s, "
            f"chromium {r['chromium_tree_cores']} cores; {r['messages_per_s']} messages/s, "
            f"{r['page_animation_frames_per_s']} page animation frames/s "
            f"({r['pages']} page(s), {r['visibility']})")
    return out
