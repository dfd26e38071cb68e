"""Each view of ``top`` as lines of text: the terminal draws them, ``--once`` prints them.

A line is ``(text, style)``; style is ``""``, ``"head"``, ``"dim"``,
``"warn"`` or ``"bad"`` (the terminal's colours, or nothing with
``--no-color``). Views read only the model's derived figures
(``model.py``), so the screen, ``--once`` and ``--once --json`` say the
same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..model.fields import PHASES
from ..model.histogram import bucket_bounds
from . import fmt
from .model import WINDOWS, Model

Line = tuple[str, str]
SPARKS = "▁▂▃▄▅▆▇█"
#: Process table columns: (heading, width, sort key, how the row's value is shown).
PROCESS_COLUMNS: tuple[tuple[str, int, str, Callable[[dict[str, Any]], str]], ...] = (
    ("PID", 8, "pid", lambda r: str(r["pid"])),
    ("GROUP", 16, "group", lambda r: r["group"][:16] or "(embedded)"),
    ("STATE", 9, "state", lambda r: r["state"]),
    ("THREADS", 8, "busy", lambda r: f"{r['busy']}/{r['threads'] if r['threads'] is not None else '-'}"),
    ("REQ/S", 8, "throughput", lambda r: fmt.value("throughput", r.get("throughput"))),
    ("CAP", 5, "capacity", lambda r: fmt.value("capacity", r.get("capacity"))),
    ("CPU", 6, "cpu", lambda r: fmt.value("cpu", r.get("cpu"))),
    ("RSS", 9, "memory_rss", lambda r: fmt.value("memory_rss", r.get("memory_rss"))),
    ("P95", 8, "request_p95", lambda r: fmt.value("request_p95", r.get("request_p95"))),
    ("SLOW", 5, "slow", lambda r: str(r["slow"])),
)
#: The sort keys ``<`` and ``>`` step through (every column), and the key that picks some directly.
PROCESS_SORTS = tuple(key for _, _, key, _ in PROCESS_COLUMNS)
SORT_KEYS = {"T": "throughput", "C": "cpu", "M": "memory_rss", "P": "request_p95", "S": "slow", "I": "pid"}
FLEET_COLUMNS: tuple[tuple[str, int, str], ...] = (
    ("HOST", 28, "name"), ("STATE", 12, "state"), ("REQ/S", 8, "throughput"), ("CAP", 5, "capacity"),
    ("P95", 8, "request_p95"), ("4XX/S", 7, "status_4xx_rate"), ("5XX/S", 7, "status_5xx_rate"),
    ("SLOW", 5, "slow_active"), ("RESTARTS", 9, "restarts"), ("PROCS", 6, "processes_live"),
    ("LOSS", 6, "loss"), ("SEEN", 10, "age"),
)
FLEET_SORTS = tuple(key for _, _, key in FLEET_COLUMNS)
SLOW_SORTS = ("duration", "pid", "method", "url")
SLOW_STATES = ("any", "active", "completed", "expired")


@dataclass
class ViewState:
    """What the user chose: view, sorts, windows, filters."""

    view: str = "overview"
    sort: str = "throughput"
    reverse: bool = True
    fleet_sort: str = "name"
    fleet_reverse: bool = False
    phase: str = "request"
    window: int = WINDOWS[1]
    slow_sort: str = "duration"
    slow_state: str = "any"
    search: str = ""
    scroll: int = 0


def _cells(values: list[tuple[str, int]]) -> str:
    return " ".join(text[:width].rjust(width) if i else text[:width].ljust(width)
                    for i, (text, width) in enumerate(values))


def _sort_value(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) and not isinstance(value, bool) else (1, str(value))


def header(model: Model, source: str, status: str) -> list[Line]:
    host = model.host
    figures, span = model.headline()
    where = f"host={host.name}  group={host.group}" if host else "fleet"
    lines: list[Line] = [(f"wsgi-fleet top  {where}  {source}  [{status}]", "head")]
    if host is None:
        return lines
    if figures is None or span is None:
        return [*lines, ("  no data in the last 10 s", "warn"), *_said(model)]
    said = f"last {span['span']} s, {fmt.clock(span['since'])}-{fmt.clock(span['until'])}"
    v = figures.get
    lines += [
        (f"  req/s {fmt.value('throughput', v('throughput'))}   2xx {fmt.amount(v('status_2xx_rate'))}"
         f"  3xx {fmt.amount(v('status_3xx_rate'))}  4xx {fmt.amount(v('status_4xx_rate'))}"
         f"  5xx {fmt.amount(v('status_5xx_rate'))}   ({said})",
         "bad" if (v("status_5xx_rate") or 0) > 0 else ""),
        (f"  capacity {fmt.value('capacity', v('capacity'))}   cpu {fmt.value('cpu', v('cpu'))} cores"
         f"   rss {fmt.value('memory_rss', v('memory_rss'))}   processes {fmt.amount(v('processes'))}",
         "bad" if (v("capacity") or 0) >= 0.9 else "warn" if (v("capacity") or 0) >= 0.7 else ""),
        (f"  latency p50 {fmt.seconds(v('request_p50'))}  p95 {fmt.seconds(v('request_p95'))}"
         f"  p99 {fmt.seconds(v('request_p99'))}   slow {fmt.amount(v('slow_active'))} active", ""),
    ]
    return [*lines, *_said(model)]


def _said(model: Model) -> list[Line]:
    """What the console said is wrong: its store down, its latest error while it is news."""
    out: list[Line] = []
    if not model.store_ok and model.store_reason:
        out.append((f"  console: {model.store_reason}", "warn"))
    if (error := model.recent_error()) is not None:
        out.append((f"  console said: {error}", "warn"))
    return out


def sparkline(values: list[Any], width: int) -> str:
    numbers = [v if isinstance(v, int | float) else None for v in values[-width:]]
    known = [v for v in numbers if v is not None]
    if not known:
        return ""
    top = max(known) or 1.0
    return "".join(" " if v is None else SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1)))]
                   for v in numbers)


def overview(model: Model, state: ViewState, width: int) -> list[Line]:
    host = model.host
    if host is None:
        return []
    lines: list[Line] = [("", "")]
    room = max(10, width - 30)
    for name, label in (("throughput", "req/s"), ("capacity", "capacity"), ("cpu", "cpu cores"),
                        ("memory_rss", "rss")):
        values = host.series.get(name) or []
        last = next((v for v in reversed(values) if v is not None), None)
        lines.append((f"  {label:<10} {sparkline(values, room):<{room}} {fmt.value(name, last)}", ""))
    span = state.window
    figures = model.window_metrics(span, (*(f"{p}_mean" for p in PHASES), "requests"))
    lines += [("", ""), (f"  where the time went (mean per request, last {_span(span)}, "
                         f"{fmt.amount(figures.get('requests'))} requests)", "head")]
    lines += [(f"    {p:<13} {fmt.seconds(figures.get(p + '_mean'))}", "") for p in PHASES]
    return lines


def _span(seconds: int) -> str:
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min"


def processes(model: Model, state: ViewState, until: int | None = None) -> list[Line]:
    rows = model.process_rows(until)
    rows.sort(key=lambda r: _sort_value(r.get(state.sort)), reverse=state.reverse)
    spans = sorted({r["span"] for r in rows if r["span"]})
    said = f"last {spans[-1]:.0f} s" if spans else "no data yet"
    lines: list[Line] = [(f"  processes: {len(rows)} ({said}; sorted by {state.sort}"
                          f"{' descending' if state.reverse else ''})", "head"),
                         (_cells([(h, w) for h, w, _, _ in PROCESS_COLUMNS]), "head")]
    for row in rows:
        threads = row["threads"] or 0
        use = row["busy"] / threads if threads else 0.0
        style = "bad" if use >= 0.9 else "warn" if use >= 0.7 else "dim" if row["state"] != "running" else ""
        lines.append((_cells([(show(row), w) for _, w, _, show in PROCESS_COLUMNS]), style))
    if model.host and model.host.omitted:
        lines.append((f"  and {model.host.omitted} more processes not sent", "warn"))
    return lines


def workers(model: Model, state: ViewState) -> list[Line]:
    lines: list[Line] = [("  slots: . idle  * under 1 s  # 1 s or more  ! past the slow threshold", "head")]
    host = model.host
    running = model.longest_active()
    for (pid, inc), proc in sorted(host.processes.items()) if host else []:
        if proc.state not in ("running", "stopping") or not proc.tick:
            continue
        limit = proc.tick.get("threshold") or 0
        elapsed = list(proc.tick.get("elapsed") or [])
        slots = int(proc.tick.get("threads") or len(elapsed))
        elapsed += [0.0] * (slots - len(elapsed))
        grid = "".join("." if not e else "!" if limit and e >= limit else "#" if e >= 1 else "*"
                       for e in elapsed[:slots])
        line = f"  {pid:>8} {proc.group[:14]:<14} [{grid}]"
        if any(elapsed):
            longest = max(range(len(elapsed)), key=lambda i: elapsed[i])
            line += f"  longest: slot {longest + 1} running {fmt.seconds(elapsed[longest])}"
        record = running.get((pid, inc))
        if record is not None:
            line += f"  {record.get('method') or ''} {record.get('url') or ''}"
        lines.append((line, "bad" if "!" in grid else ""))
    return lines


def latency(model: Model, state: ViewState, width: int) -> list[Line]:
    counts, figures = model.phase_histogram(state.phase, state.window)
    total = sum(counts.values())
    p = state.phase
    lines: list[Line] = [
        (f"  {p} over the last {_span(state.window)}: {fmt.amount(total)} requests   "
         f"p50 {fmt.seconds(figures.get(p + '_p50'))}  p95 {fmt.seconds(figures.get(p + '_p95'))}"
         f"  p99 {fmt.seconds(figures.get(p + '_p99'))}  min {fmt.seconds(figures.get(p + '_min'))}"
         f"  max {fmt.seconds(figures.get(p + '_max'))}   ([ ] phase, < > window)", "head")]
    if not total:
        return [*lines, ("  no requests in this window", "dim")]
    marks = {k: figures.get(f"{p}_{k}") for k in ("p50", "p95", "p99")}
    room = max(10, width - 40)
    top = max(counts.values())
    for index in range(min(counts), max(counts) + 1):
        low, high = bucket_bounds(index)
        count = counts.get(index, 0)
        tags = " ".join(k for k, v in marks.items() if v is not None and low <= v < high)
        bar = "#" * max(1 if count else 0, round(count / top * room))
        lines.append((f"  {fmt.seconds(low):>8} {bar:<{room}} {fmt.amount(count):>7} {tags}",
                      "warn" if tags else ""))
    return lines


def slow(model: Model, state: ViewState) -> list[Line]:
    rows = [r for r in model.slow_rows() if state.slow_state in ("any", r.get("state"))]
    if state.search:
        rows = [r for r in rows if state.search.lower() in str(r.get("url") or "").lower()]
    rows.sort(key=lambda r: _sort_value(r.get(state.slow_sort)), reverse=state.slow_sort == "duration")
    searched = f", url contains {state.search!r}" if state.search else ""
    lines: list[Line] = [(f"  slow requests: {len(rows)} (state {state.slow_state}, "
                          f"sorted by {state.slow_sort}{searched})", "head"),
                         (_cells([("STATE", 9), ("ELAPSED", 8), ("PID", 8), ("METHOD", 7), ("STATUS", 6),
                                  ("URL", 60)]), "head")]
    for r in rows:
        lines.append((_cells([(str(r.get("state")), 9), (fmt.seconds(r.get("duration")), 8),
                              (str(r.get("pid")), 8), (str(r.get("method") or "-"), 7),
                              (str(r.get("status") or "-"), 6), (str(r.get("url") or ""), 60)]),
                      "bad" if r.get("state") == "active" else ""))
    return lines


def gc(model: Model, state: ViewState) -> list[Line]:
    lines: list[Line] = [(_cells([("PID", 8), ("GROUP", 14), ("GEN0/S", 7), ("GEN1/S", 7), ("GEN2/S", 7),
                                  ("PAUSE", 8), ("MAX", 8), ("TIME %", 7)]), "head")]
    for row in sorted(model.process_rows(), key=lambda r: r["pid"]):
        lines.append((_cells([(str(row["pid"]), 8), (row["group"][:14], 14),
                              (fmt.amount(row.get("gc_gen0_rate"), 2), 7),
                              (fmt.amount(row.get("gc_gen1_rate"), 2), 7),
                              (fmt.amount(row.get("gc_gen2_rate"), 2), 7),
                              (fmt.seconds(row.get("gc_pause_total")), 8),
                              (fmt.seconds(row.get("gc_pause_max")), 8),
                              (fmt.value("pct_4xx", (row.get("gc_pause_fraction") or 0) * 100), 7)]), ""))
    return lines


def events(model: Model, state: ViewState) -> list[Line]:
    host = model.host
    heading = _cells([("TIME", 9), ("EVENT", 9), ("PID", 8), ("GROUP", 14), ("REASON", 40)])
    lines: list[Line] = [(heading, "head")]
    for e in reversed(host.life if host else []):
        reason = str(e.get("reason") or "")
        if e.get("category"):
            reason += f" ({e['category']})"
        lines.append((_cells([(fmt.clock(e.get("t")), 9), (str(e.get("kind")), 9), (str(e.get("pid")), 8),
                              (str(e.get("group") or ""), 14), (reason, 40)]),
                      "warn" if e.get("category") == "unplanned" else ""))
    return lines


def fleet(model: Model, state: ViewState) -> list[Line]:
    rows = [fleet_row(model, entry) for entry in model.fleet.values()]
    rows.sort(key=lambda r: _sort_value(r.get(state.fleet_sort)), reverse=state.fleet_reverse)
    lines: list[Line] = [(f"  {len(rows)} hosts (sorted by {state.fleet_sort})", "head"),
                         (_cells([(h, w) for h, w, _ in FLEET_COLUMNS]), "head")]
    for row in rows:
        cells = [(fleet_cell(row, key), w) for _, w, key in FLEET_COLUMNS]
        lines.append((_cells(cells), "" if row["state"] == "online" else "bad"))
    return lines


def fleet_cell(row: dict[str, Any], key: str) -> str:
    if key in ("name", "state"):
        return str(row.get(key))
    if key == "age":
        return fmt.age(row["age"])
    return fmt.value(key, row.get(key))


def fleet_row(model: Model, entry: dict[str, Any]) -> dict[str, Any]:
    """A fleet entry as ``top`` shows it: its state aged on the console's clock, as the pages do."""
    last = entry.get("last_seen")
    age = model.console_now() - last if isinstance(last, int | float) else None
    within = (model.hello or {}).get("online_within", 15)
    state = str(entry.get("state") or "offline")
    online = age is not None and age <= within and state != "offline"
    agent = entry.get("agent") or {}
    loss = sum(int(agent.get(k) or 0) for k in ("lost", "queue_drops", "dropped_samples", "malformed")) + max(
        int(agent.get("refused_samples") or 0), int(agent.get("bad_samples") or 0))
    figures = dict(entry.get("metrics") or {}) if online else {"restarts": (entry.get("metrics") or {})
                                                                .get("restarts")}
    return {"id": entry.get("id"), "name": str(entry.get("name")), "team": entry.get("team"),
            "state": state if online else "offline", "age": age, "loss": loss, **figures}
