"""The metric vocabulary: every number a view shows, by one name, from frame sums.

A metric is named once here and keeps that name on every hop: ``derive``
computes it from a frame, host frames, fleet rows and tab messages carry it
under that name, the pages read it under that name, and the coming ``top``,
alerts and export are meant to read this table too. Each entry says its
unit, how it is computed from the frame sums (``frames`` names the keys),
and how values fold when only the values are at hand:

- ``seconds``: per-second values into one value over many seconds (a chart
  point, a fleet row): ``sum``, ``mean``, ``max``, ``min`` or ``last`` (the
  newest second's). With the sums at hand, deriving from the merged frame is
  exact and always preferred; the fold is what a page, holding only values,
  does, and what the fleet row takes from its newest second (``last``).
- ``groups`` and ``hosts``: values of several process groups or hosts into
  one: ``sum``, ``max``, ``min``, or ``derive`` (not additive: merge the
  frames and derive again).

Names and units reach the pages as a generated module,
``static/console/metrics.js`` (``python -m ingest metrics --js``), not in
the ``hello`` message: the table changes only with the code, so a static,
cached module costs nothing per connection, is there when a page's scripts
load (before any message), can be imported by the pure JS modules that
``node --test`` runs without a connection, and a test keeps it equal to
this table as it keeps ``docs/metrics.md``.

Pure: no I/O (``tests/test_layering.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, overload

from .fields import PHASES
from .histogram import PERCENTILES, percentile
from .kinds import STATUS_CLASSES


class Sums:
    """One frame and its span as the formulas read them, with histograms read once each."""

    __slots__ = ("_hist", "frame", "period", "requests", "span", "ticks")

    def __init__(self, frame: Mapping[str, float], span: float):
        self.frame, self.span = frame, span
        self.requests, self.period, self.ticks = frame.get("req", 0), frame.get("per", 0.0), frame.get("n", 0)
        self._hist: dict[str, dict[int, float]] = {}

    @overload
    def get(self, key: str, default: float = 0) -> float: ...
    @overload
    def get(self, key: str, default: None) -> float | None: ...
    def get(self, key: str, default: float | None = 0) -> float | None:
        return self.frame.get(key, default)

    def hist(self, prefix: str) -> dict[int, float]:
        """The sparse histogram under ``prefix`` ("h4", "gh"), read from the frame once."""
        counts = self._hist.get(prefix)
        if counts is None:
            start = prefix + "."
            counts = self._hist[prefix] = {int(key[len(start):]): count for key, count in self.frame.items()
                                           if key.startswith(start)}
        return counts


Compute = Callable[[Sums], "float | None"]


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric; ``compute`` is None for the few not made of frame sums (``formula`` says how)."""

    name: str
    unit: str
    formula: str
    compute: Compute | None
    seconds: str
    groups: str
    hosts: str
    description: str
    label: str = ""

    def to_json(self) -> dict[str, str]:
        return {"unit": self.unit, "label": self.label or self.name, "seconds": self.seconds,
                "groups": self.groups, "hosts": self.hosts, "description": self.description}


FOLDS: Final = frozenset({"sum", "mean", "max", "min", "last", "derive"})


def _ratio(num: float, den: float | None) -> float | None:
    return num / den if den else None


def _per_span(key: str) -> Compute:
    return lambda s: s.get(key) / s.span


def _gauge(key: str) -> Compute:
    """A time-weighted average over the span; None without a tick (no reading, not zero)."""
    return lambda s: s.get(key, 0.0) / s.span if s.period else None


def _count(key: str) -> Compute:
    return lambda s: s.get(key)


def _exact(key: str) -> Compute:
    return lambda s: s.get(key, None)


def _phase_mean(i: int) -> Compute:
    def compute(s: Sums) -> float | None:
        weight = s.requests - s.get(f"u{i}")
        return _ratio(s.get(f"m{i}", 0.0), weight) if weight > 0 else None
    return compute


def _phase_percentile(i: int, p: float) -> Compute:
    return lambda s: percentile(s.hist(f"h{i}"), p, s.get(f"<{i}", None), s.get(f">{i}", None))


def _gc_percentile(p: float) -> Compute:
    return lambda s: percentile(s.hist("gh"), p, None, s.get(">gp", None))


def _slow_active(s: Sums) -> float:
    # Active records repeat once per process-tick: their count per tick, times the average
    # number of reporting processes, is the number in flight (the latest count on 1 s).
    return s.get("sa") / s.ticks * (s.period / s.span) if s.ticks else float(s.get("sa"))


def _table() -> tuple[Metric, ...]:
    M = Metric
    out = [
        M("span", "s", "the seconds the frame covers", lambda s: s.span, "sum", "max", "max",
          "Seconds the values are taken over."),
        M("requests", "requests", "req", _count("req"), "sum", "sum", "sum", "Requests finished."),
        M("throughput", "req/s", "req / span", _per_span("req"), "mean", "sum", "sum",
          "Requests finished per second.", "req/s"),
    ]
    for c, name in enumerate(STATUS_CLASSES, 1):
        out.append(M(f"status_{name}", "requests", f"s{c}", _count(f"s{c}"), "sum", "sum", "sum",
                     f"Requests finished with a {name} status."))
        out.append(M(f"status_{name}_rate", "req/s", f"s{c} / span", _per_span(f"s{c}"), "mean", "sum", "sum",
                     f"Requests finished with a {name} status, per second.", f"{name}/s"))
    out += [
        M("pct_4xx", "%", "100 x s4 / req", lambda s: _ratio(100.0 * s.get("s4"), s.requests), "mean",
          "derive", "derive", "Share of requests with a 4xx status."),
        M("pct_5xx", "%", "100 x s5 / req", lambda s: _ratio(100.0 * s.get("s5"), s.requests), "mean",
          "derive", "derive", "Share of requests with a 5xx status."),
        M("processes", "processes", "per / span", lambda s: s.period / s.span, "mean", "sum", "sum",
          "Processes reporting: process-seconds observed per second, a mean over the span (one "
          "1 s frame can hold two ticks of a process whose tick drifts across a second; a process "
          "that started 3 s into a 10 s span counts 0.7).", "Reporting"),
        M("ticks", "ticks", "n", _count("n"), "sum", "sum", "sum",
          "Kind-2 ticks seen (0: no process reported, a hole in the data)."),
        M("capacity", "ratio", "busy / avail", lambda s: _ratio(s.get("busy", 0.0), s.get("avail", 0.0)),
          "mean", "derive", "derive", "Busy share of the request threads (thread-seconds busy / available).",
          "Capacity"),
        M("cpu", "cores", "cpu / span", _gauge("cpu"), "mean", "sum", "sum", "CPU used, in cores.", "CPU"),
        M("cpu_user", "cores", "cpuu / span", _gauge("cpuu"), "mean", "sum", "sum", "User CPU, in cores."),
        M("cpu_system", "cores", "cpus / span", _gauge("cpus"), "mean", "sum", "sum",
          "System CPU, in cores."),
        M("cpu_per_process", "cores", "cpu / per", lambda s: _ratio(s.get("cpu", 0.0), s.period), "mean",
          "derive", "derive", "CPU per reporting process (steadier than cpu on a 1 s frame)."),
        M("memory_rss", "bytes", "rss / span", _gauge("rss"), "mean", "sum", "sum",
          "Resident memory of the processes, time-weighted over the span.", "RSS"),
        M("memory_rss_per_process", "bytes", "rss / per", lambda s: _ratio(s.get("rss", 0.0), s.period),
          "mean", "derive", "derive", "Resident memory per reporting process."),
        M("input_bytes_rate", "bytes/s", "inb / span", _per_span("inb"), "mean", "sum", "sum",
          "Request body bytes read per second."),
        M("output_bytes_rate", "bytes/s", "outb / span", _per_span("outb"), "mean", "sum", "sum",
          "Response bytes written per second."),
    ]
    for i, phase in enumerate(PHASES):
        out += [
            M(f"{phase}_mean", "s", f"m{i} / (req - u{i})", _phase_mean(i), "mean", "derive", "derive",
              f"Mean {phase} time, weighted by requests (ticks where it was not measured left out)."),
            M(f"{phase}_min", "s", f"<{i}", _exact(f"<{i}"), "min", "min", "min", f"Shortest {phase} time."),
            M(f"{phase}_max", "s", f">{i}", _exact(f">{i}"), "max", "max", "max", f"Longest {phase} time."),
        ]
        for name, p in PERCENTILES:
            out.append(M(f"{phase}_{name}", "s", f"{name} of h{i}.*, clamped to <{i}..>{i}",
                         _phase_percentile(i, p), "max", "derive", "derive",
                         f"{name} of the {phase} time (over many seconds: the worst second's).", name))
    out += [
        M("gc_collections", "collections", "g0 + g1 + g2", lambda s: s.get("g0") + s.get("g1") + s.get("g2"),
          "sum", "sum", "sum", "Garbage collections (kind-9 events)."),
        M("gc_collections_rate", "collections/s", "(g0 + g1 + g2) / span",
          lambda s: (s.get("g0") + s.get("g1") + s.get("g2")) / s.span, "mean", "sum", "sum",
          "Garbage collections per second."),
    ]
    for g in range(3):
        out.append(M(f"gc_gen{g}_rate", "collections/s", f"g{g} / span", _per_span(f"g{g}"), "mean", "sum",
                     "sum", f"Generation-{g} collections per second."))
    out += [
        M("gc_pause_total", "s", "gp", _count("gp"), "sum", "sum", "sum", "Seconds paused in collections."),
        M("gc_pause_max", "s", ">gp", _exact(">gp"), "max", "max", "max", "Longest collection pause."),
        M("gc_pause_fraction", "ratio", "gp / per", lambda s: _ratio(s.get("gp", 0.0), s.period), "mean",
          "derive", "derive", "Share of process time paused in collections."),
    ]
    for name, p in PERCENTILES:
        out.append(M(f"gc_pause_{name}", "s", f"{name} of gh.*, clamped to ..>gp", _gc_percentile(p), "max",
                     "derive", "derive", f"{name} of the collection pauses.", name))
    out += [
        M("gc_dropped", "events", "gd", _count("gd"), "sum", "sum", "sum",
          "GC events mod_wsgi dropped (not sent)."),
        M("slow_completed", "requests", "sc", _count("sc"), "sum", "sum", "sum",
          "Slow requests that completed."),
        M("slow_duration_max", "s", ">sd", _exact(">sd"), "max", "max", "max",
          "Longest completed slow request."),
        M("slow_duration_mean", "s", "sd / sc", lambda s: _ratio(s.get("sd", 0.0), s.get("sc")), "mean",
          "derive", "derive", "Mean duration of the completed slow requests."),
        M("slow_active", "requests", "sa / n x per / span (sa without ticks)", _slow_active, "mean", "sum",
          "sum", "Slow requests in flight.", "Slow"),
        M("started", "processes", "up", _count("up"), "sum", "sum", "sum",
          "Processes that started (STARTED events): a new host's first processes count here, "
          "never as restarts.",
          "Started"),
        M("stopping", "processes", "stg", _count("stg"), "sum", "sum", "sum",
          "Processes that began to stop (STOPPING events)."),
        M("stopped", "processes", "dn", _count("dn"), "sum", "sum", "sum",
          "Processes that stopped (STOPPED events)."),
        M("non_graceful", "processes", "ng", _count("ng"), "sum", "sum", "sum",
          "Processes that stopped without a clean drain."),
        M("restarts", "processes", "not from frame sums: per process from the lifecycle events "
          "(its STOPPING, else its STOPPED), by stop category", None, "sum", "sum", "sum",
          "Processes that stopped (each once, whatever replaced it), by category (planned, tuning, "
          "unplanned): the Processes tab's restarts over its window, the fleet row's over the last "
          "hour (RESTARTS_SPAN).", "Restarts"),
        M("processes_live", "processes", "not from frame sums: the host's process registry, its "
          "running and stopping processes", None, "last", "sum", "sum",
          "Processes alive now (started, neither stopped nor silent past their tick interval): "
          "the Processes tab's running and stopping ones, a whole number.", "Procs"),
        M("loss", "datagrams", "loss", _count("loss"), "sum", "sum", "sum",
          "Datagrams lost by sequence gaps, at the second the heartbeat reporting them arrived "
          "(the host's, in its \"*\" frames)."),
    ]
    return tuple(out)


METRICS: Final = _table()
BY_NAME: Final = {m.name: m for m in METRICS}
_COMPUTED: Final = tuple((m.name, m.compute) for m in METRICS if m.compute is not None)

#: What host frames carry per group (and the host snapshot's totals come from).
HOST_FRAME: Final = (
    "throughput", "capacity", "cpu", "memory_rss", "request_p50", "request_p95", "request_p99", "requests",
    "processes", "slow_active", "started", *(f"status_{c}" for c in STATUS_CLASSES), "loss", "ticks",
    *(f"status_{c}_rate" for c in STATUS_CLASSES),
)
#: The Overview's chart columns (host.snapshot ``series``).
SERIES: Final = ("throughput", *(f"status_{c}_rate" for c in STATUS_CLASSES), "capacity", "cpu", "memory_rss",
                 "request_p50", "request_p95", "request_p99", "loss", "ticks")
#: A fleet row's metrics: the host's headline (HEADLINE_SPAN), its restarts over RESTARTS_SPAN and
#: its processes alive now (the registry's).
FLEET: Final = ("throughput", "capacity", "request_p95", "status_4xx_rate", "status_5xx_rate", "slow_active",
                "restarts", "processes_live")
#: Seconds a headline figure is taken over (fleet rows, the Overview's readouts, ``host.frame``'s
#: ``recent``): the newest complete seconds, so a figure neither jumps with one second's noise
#: nor reads a second that is still filling.
HEADLINE_SPAN: Final = 10
#: Seconds a fleet row's ``restarts`` are counted over: a restart loop shows long after it stopped.
RESTARTS_SPAN: Final = 3600

#: The Processes tab's table columns: one process's newest tick, by the wire field holding each.
TICK_FIELDS: Final = (("capacity", "capacity_utilization"), ("cpu", "cpu_utilization"),
                      ("memory_rss", "memory_rss"), ("throughput", "request_throughput"))


def derive(frame: Mapping[str, float], span: float,
           names: tuple[str, ...] | None = None) -> dict[str, float | None]:
    """The metrics of a frame covering ``span`` seconds: every one, or only ``names``.

    Metrics without data (no requests, no threads) are None, never 0.
    """
    if span <= 0:
        raise ValueError(f"span must be positive, got {span!r}")
    sums = Sums(frame, span)
    if names is None:
        return {name: compute(sums) for name, compute in _COMPUTED}
    # misc: compute is None for the few metrics not made of frame sums; naming one here
    # raises TypeError
    return {name: BY_NAME[name].compute(sums) for name in names}  # type: ignore[misc]


# -- generated references -------------------------------------------------------------------

DOC_HEADER = (
    "# Metrics\n\n"
    "Generated by `python -m ingest metrics > docs/metrics.md` from `ingest/model/metrics.py`; "
    "do not edit by hand.\n\n"
    "Every metric keeps this name from `derive` to the page. *From frame sums* names the frame's "
    "keys (`ingest/model/frames.py`); *seconds* is how per-second values fold into one over many "
    "seconds when only the values are at hand (with the sums, derive from the merged frame: exact); "
    "*groups* and *hosts* how values of several groups or hosts combine (`derive`: merge the frames "
    "and derive again).\n"
)


#: Which seconds each kind of figure is taken over (docs/metrics.md), in words: a second is
#: complete when the console publishes it, two seconds after it ends (every agent batch of it
#: has come); before that it is sent ``partial`` and no figure a person reads as "now" uses it.
SPANS_DOC: Final = (
    "- **A second** (`host.frame`'s `groups`, a chart point at 1 s): the complete second `t`, "
    "published when the console's clock reads `t + 2`; the `partial` versions before it are an "
    "early look that no headline and no chart point is made of.",
    f"- **Headline** (fleet rows, `host.frame`'s `recent`, the Overview's readouts): the last "
    f"{HEADLINE_SPAN} complete seconds, their frames merged and derived once (exact percentiles; "
    "rates per second of the span, counted from its first second that holds data); `processes`, "
    "`memory_rss` and `slow_active` are means over the span.",
    "- **Chart points** (`host.snapshot`'s `series`): the seconds of each point's step merged; a "
    "page folding per-second values itself uses the *seconds* column.",
    "- **Window totals** (`host.snapshot`'s `totals`, the Overview's status line, the histograms): "
    "every stored second of the window shown, merged.",
    f"- **Restarts**: over the window shown on the Processes tab, over the last "
    f"{RESTARTS_SPAN // 3600} h on a fleet row; both count the processes that stopped, each once.",
    "- **Data age** (the top bar): the console's clock now minus the newest second the page shows; "
    "**online** means the host's agent was heard from within `hello`'s `online_within` seconds, "
    "aged on the page by the console's clock.",
)


def markdown_table() -> str:
    """The metric reference as Markdown: docs/metrics.md is this text."""
    lines = [DOC_HEADER, "| name | unit | from frame sums | seconds | groups | hosts | meaning |",
             "|---|---|---|---|---|---|---|"]
    for m in METRICS:
        lines.append(f"| `{m.name}` | {m.unit} | {m.formula} | {m.seconds} | {m.groups} | {m.hosts} "
                     f"| {m.description} |")
    lines += ["", "## Sets", ""]
    for title, names in (("Host frames, per group", HOST_FRAME), ("Overview series", SERIES),
                         ("Fleet rows", FLEET)):
        lines.append(f"- {title}: " + ", ".join(f"`{n}`" for n in names))
    lines.append("- Processes tab, per process (its newest tick): "
                 + ", ".join(f"`{n}` (`{f}`)" for n, f in TICK_FIELDS))
    lines += ["", "## Over which seconds", "", *SPANS_DOC]
    return "\n".join(lines) + "\n"


JS_HEADER = ("// Generated by `python -m ingest metrics --js > static/console/metrics.js` from\n"
             "// ingest/model/metrics.py; do not edit by hand. The metric vocabulary: every metric's\n"
             "// unit, label and folds, by the one name it has on the wire (docs/metrics.md).\n")


def js_module() -> str:
    """The table as an ES module for the pages: static/console/metrics.js is this text."""
    table = json.dumps({m.name: m.to_json() for m in METRICS}, indent=1, ensure_ascii=False)
    sets = {"HOST_FRAME": HOST_FRAME, "SERIES": SERIES, "FLEET": FLEET,
            "TICK_COLUMNS": tuple(n for n, _ in TICK_FIELDS)}
    lines = [JS_HEADER, f"export const METRICS = Object.freeze({table});", ""]
    lines += [f"export const {key} = Object.freeze({json.dumps(list(names))});"
              for key, names in sets.items()]
    lines += ["", "/** The entry of `name`; an unknown name throws: a typo fails where the page loads. */",
              "export function metric(name) {",
              "  const m = Object.hasOwn(METRICS, name) ? METRICS[name] : undefined;",
              "  if (!m) throw new Error(\"unknown metric \" + name);",
              "  return m;",
              "}", ""]
    return "\n".join(lines)
