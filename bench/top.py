"""CPU that ``top`` spends per refresh, for a 1,000-process host and a 100-host fleet.

    python -m bench.top [--quick] [--rounds 15] [--no-save]

The messages are the live protocol's (docs/live-protocol.md, "### top"),
built by the real code from real telemetry: the simulator's datagrams
(``ingest.commands.simulate.Fleet``: 10 groups x 100 processes of 4
threads) are decoded (``ingest.pipeline.wire``), joined to their process
(``ProcessTable``) and fed to the agent's local view (``LocalView``), which
builds ``hello``, ``host.snapshot``, ``tab.snapshot`` (``topview.process_window``),
``tab.frame`` (``topview.second``) and ``host.frame`` with its ``recent``
(``frames.headline``) every second, as ``ingest.pipeline.localserve``
publishes them, as strict JSON text (``localserve.dumps``). The console
sends the same shapes, and besides a ``partial`` host frame per agent
batch (about 10 a second, ``console/live/publish.py``): the "console" rows
add those.

Measured with ``time.process_time()`` (CPU, not wall), in one run:

- apply: ``json.loads`` of the text and ``Model.apply``, per second of
  messages, median over the live seconds; the baseline is ``json.loads``
  alone of the same texts, so "x loads" is a ratio and not only a time;
- refresh: ``views.header`` and one view's lines (as ``App.lines`` builds
  them, the whole body, before curses draws the rows that fit), median of
  ``--rounds``, after a snapshot and one live minute, then again once the
  model's history is full (``model.KEEP``, 660 s: the same minute replayed,
  shifted in time), which is what a ``top`` left open sees;
- the fleet: 100 hosts, a ``fleet.snapshot``, then a ``fleet.update`` per
  host and second (one host per message, as the console sends them), and
  ``views.fleet`` per refresh.

"core %" is the share of one core: CPU per second of messages, or of the
two draws ``ingest/top/app.py`` makes a second whatever the data's pace
(``DRAW_EVERY``): the first builds the process rows (``Model.process_rows``,
once a second), the second reuses them ("again ms"). The curses calls
themselves (drawing the rows that fit) are not measured.

Results go to ``bench/results/`` (``top-latest.json``) and are printed. A full run
(``python -m bench.top``, 2 cores shared with other work), its table less the
legend line:

    top: 1,000-process host (10 groups x 100 x 4 threads), 100-host fleet
    snapshot 1.1 MB, applied in 34 ms CPU
                                         CPU ms  core %  x loads    again ms
    -- after 60 live seconds (305 MB RSS)
    apply 1 s, local   ( 2 msg,   570 kB)     28.85    2.88     2.12
    apply 1 s, console (12 msg,   635 kB)     32.87    3.29     2.27
    refresh overview   (   19 lines)        1.78    0.35     0.13        1.74
    refresh processes  ( 1012 lines)      130.44   14.66     9.59       16.15
    refresh workers    ( 1005 lines)        6.46    1.28     0.47        6.33
    refresh latency    (   57 lines)        3.44    0.68     0.25        3.32
    refresh slow       (  506 lines)        1.98    0.39     0.15        1.87
    refresh gc         ( 1010 lines)      129.06   14.17     9.49       12.59
    refresh events     (  205 lines)        0.64    0.13     0.05        0.67
    -- after 660 live seconds (379 MB RSS, 660 s of frames kept)
    apply 1 s, local   ( 2 msg,   573 kB)     43.05    4.31     2.33
    refresh overview   (   19 lines)        4.24    0.84     0.23        4.15
    refresh processes  ( 1012 lines)      107.86   12.02     5.83       12.37
    refresh workers    ( 1005 lines)        4.21    0.82     0.23        4.04
    refresh latency    (   57 lines)        2.72    0.54     0.15        2.69
    refresh slow       (  506 lines)        1.77    0.35     0.10        1.78
    refresh gc         ( 1010 lines)      104.78   11.44     5.67        9.59
    refresh events     (  205 lines)        0.61    0.12     0.03        0.60
    -- fleet of 100 hosts
    apply 1 s (100 fleet.update,   92 kB)        1.41    0.14     1.34
    refresh fleet      (  103 lines)        1.49    0.30     1.42        1.48

So a 1,000-process host costs ``top`` about 3 % of a core to take in its
messages, and 12-15 % of a core on the processes or GC view (a tenth of a
second to build the thousand rows once a second), 1-2 % on any other view;
a 100-host fleet under 1 %. The history kept stays near 380 MB of RSS for
the bench process (its generator included) however long ``top`` runs:
a process's frames are kept for 20 s, the host's for 11 min. Before these
bounds (the first run of this bench) the per-process views cost 120-260 ms
a draw at 3-6 draws a second, and 11 minutes of history 1 GB.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest.commands.simulate import Fleet  # noqa: E402
from ingest.pipeline import wire  # noqa: E402
from ingest.pipeline.localserve import dumps, process_records  # noqa: E402
from ingest.pipeline.localview import HostRequest, LocalView  # noqa: E402
from ingest.pipeline.state import ProcessTable  # noqa: E402
from ingest.top import views  # noqa: E402
from ingest.top.model import KEEP, Model  # noqa: E402

T0 = 1_795_000_000
RESULTS = REPO / "bench" / "results"
WIDTH = 160  # terminal columns: the overview's sparklines and the latency bars fill them
#: app.py: a draw waits for new data or 0.5 s, then sleeps 0.05 s.
PARTIALS = 10  # the console's partial host frames per second: one per agent batch (100 ms)
HOST_VIEWS = ("overview", "processes", "workers", "latency", "slow", "gc", "events")
FULL = {"groups": 10, "processes": 100, "threads": 4, "before": 60, "live": 60, "history": KEEP,
        "hosts": 100, "rounds": 15}
QUICK = {"groups": 2, "processes": 10, "threads": 4, "before": 12, "live": 12, "history": 36,
         "hosts": 100, "rounds": 3}


# -- the messages ------------------------------------------------------------------------------------

@dataclass
class HostStream:
    """What ``top`` receives for one host: the subscribe's answer and each live second."""

    name: str
    snapshot: list[dict[str, Any]]  # hello, host.snapshot, tab.snapshot
    seconds: list[list[dict[str, Any]]]  # per second: tab.frame, host.frame (as the agent sends them)
    partials: list[list[dict[str, Any]]]  # per second: the console's partial host frames
    pids: set[tuple[int, int]] = field(default_factory=set)  # the processes alive at the end
    fleet_entry: dict[str, Any] = field(default_factory=dict)  # the host as a fleet row
    last_now: float = 0.0


def host_stream(groups: int, processes: int, threads: int, before: int, live: int,
                seed: int = 1) -> HostStream:
    """A simulated host's ``before`` seconds, its subscribe's answer, then ``live`` seconds."""
    clock = [float(T0)]
    table = ProcessTable(clock=lambda: clock[0])
    name = "web-001"
    view = LocalView(name)
    view._processes = lambda at: process_records(table, at)  # as localserve.attach wires it
    fleet = Fleet(groups, processes, threads, seed=seed, restart_probability=0.0005, slow_probability=0.05)
    request = HostRequest.from_message({"tab": "top", "group": "*", "window": 600,
                                        "points": max(60, WIDTH - 30)})  # app.py's subscribe
    stream = HostStream(name, [], [], [])
    for i in range(before + live):
        for data in fleet.tick(T0 + i):
            datagram = wire.decode(data)
            clock[0] = datagram.stamp
            view(datagram, table.add(datagram))
        now = clock[0] = T0 + i + 1 + 0.05  # localserve's ticker: just past each whole second
        due = view.tick(now)
        live_frame = view.tab_frame(now)  # taken every second, subscribed or not
        if i == before - 1:
            stream.snapshot = [view.hello(now), view.host_snapshot(request, now),
                               view.tab_snapshot(request, now)]
            continue
        if i < before:
            continue
        records = view.records(now)
        sent = [live_frame] if live_frame is not None else []
        partials = []
        for second in due:
            recent = view.recent(second, view.groups(records)[:64])
            frame = view.host_frame(second, now, records, recent)
            sent.append(frame)
            partials += [{"type": "host.frame", "host": name, "t": second + 2, "now": now - 1 + k / PARTIALS,
                          "partial": True, "groups": frame["groups"]} for k in range(PARTIALS)]
            stream.fleet_entry = view.fleet("fleet.update", second, now, records, recent)["hosts"][0]
        stream.seconds.append(sent)
        stream.partials.append(partials)
        stream.last_now = now
    stream.pids = {(r["pid"], r["incarnation"]) for r in view.records(stream.last_now)
                   if r["state"] in ("running", "stopping")}
    return stream


def shifted(message: dict[str, Any], by: int, cycle: int) -> dict[str, Any]:
    """``message`` moved ``by`` seconds later (a replay of the same minute, later in time); its
    slow requests are new ones (their keys are marked with ``cycle``)."""
    m = dict(message)
    for key in ("now", "t"):
        if isinstance(m.get(key), int | float):
            m[key] += by
    if m["type"] == "tab.frame":
        m["groups"] = [[g, sec + by, f] for g, sec, f in m["groups"]]
        m["procs"] = [[p, i, g, sec + by, f] for p, i, g, sec, f in m["procs"]]
        m["ticks"] = [[p, i, {**info, "t": info["t"] + by}] for p, i, info in m["ticks"]]
        m["slow"] = [{**r, "key": f"{r['key']}~{cycle}", "stamp": r["stamp"] + by,
                      "start": r["start"] + by if isinstance(r.get("start"), int | float) else r.get("start")}
                     for r in m["slow"]]
        m["life"] = [{**e, "t": e["t"] + by} for e in m["life"]]
    elif m["type"] == "host.frame" and isinstance(m.get("recent"), dict):
        m["recent"] = {**m["recent"], "since": m["recent"]["since"] + by, "until": m["recent"]["until"] + by}
        m["agent_state"] = {**m["agent_state"], "last_seen": m["agent_state"]["last_seen"] + by}
        if "processes" in m:
            m["processes"] = [{**r, "last_seen": r["last_seen"] + by} for r in m["processes"]]
    return m


def fleet_stream(template: dict[str, Any], hosts: int, seconds: int, start: float,
                 seed: int = 7) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    """A ``fleet.snapshot`` of ``hosts`` rows shaped as ``template`` (the simulated host's), then
    per second a ``fleet.update`` for each host. One in 20 is offline."""
    rng = random.Random(seed)  # reproducible figures
    teams = ("payments", "search", "checkout", "catalog", "accounts")

    def entry(i: int, now: float) -> dict[str, Any]:
        online = i % 20 != 19
        figures = {k: (v * rng.uniform(0.5, 1.5) if isinstance(v, float) else v)
                   for k, v in template["metrics"].items()}
        seen = now - rng.uniform(0.05, 0.9) if online else now - 3600.0
        return {**copy.deepcopy(template), "id": i + 1, "name": f"web-{i + 1:03d}",
                "team": teams[i % len(teams)],
                "labels": {"env": "prod", "dc": f"dc{i % 3}"}, "state": "online" if online else "offline",
                "online": online, "last_seen": seen, "age": now - seen,
                "clock": {"skew": 0.01, "shift": 0.0, "shown": False, "beats": 5, "text": None,
                          "correction": None},
                "metrics": figures if online else {**dict.fromkeys(figures), "restarts": figures["restarts"]}}

    snapshot = {"type": "fleet.snapshot", "now": start, "hosts": [entry(i, start) for i in range(hosts)]}
    updates = [[{"type": "fleet.update", "now": now, "hosts": [entry(i, now)]}
                for i in range(hosts) for now in [start + s + 1 + i / hosts]]
               for s in range(seconds)]
    return snapshot, updates


# -- measuring ---------------------------------------------------------------------------------------

def cpu(work: Callable[[], Any]) -> tuple[float, Any]:
    """(CPU seconds of ``work()``, its result)."""
    began = time.process_time()
    out = work()
    return time.process_time() - began, out


def receive(model: Model, texts: Iterable[str]) -> None:
    for text in texts:
        model.apply(json.loads(text))


def load_only(texts: Iterable[str]) -> None:
    for text in texts:
        json.loads(text)


def pin(model: Model, now: float) -> None:
    """The console's clock stays at ``now`` (the model reads time.time() plus its offset)."""
    model.offset = now - time.time()


def render(model: Model, name: str, state: views.ViewState) -> list[views.Line]:
    """The header and one view, as ``App.draw`` and ``App.lines`` build them."""
    state.view = name
    body = {"overview": lambda: views.overview(model, state, WIDTH),
            "processes": lambda: views.processes(model, state),
            "workers": lambda: views.workers(model, state),
            "latency": lambda: views.latency(model, state, WIDTH),
            "slow": lambda: views.slow(model, state), "gc": lambda: views.gc(model, state),
            "events": lambda: views.events(model, state), "fleet": lambda: views.fleet(model, state)}[name]
    return [*views.header(model, "bench", "live"), *body()]


def refreshes(model: Model, names: Iterable[str], now: float, rounds: int) -> dict[str, dict[str, Any]]:
    """Median CPU per refresh of each view, and its lines (of the last refresh)."""
    out = {}
    for name in names:
        firsts, agains, lines = [], [], []
        for _ in range(rounds):
            pin(model, now)
            model._rows = (None, [])  # a new second: the process rows are built again (once a second)
            spent, lines = cpu(lambda name=name: render(model, name, views.ViewState()))
            firsts.append(spent)
            agains.append(cpu(lambda name=name: render(model, name, views.ViewState()))[0])
        out[name] = {"ms": statistics.median(firsts) * 1000, "again_ms": statistics.median(agains) * 1000,
                     "lines": len(lines), "text": lines}
    return out


def per_second(model: Model, seconds: list[list[str]]) -> dict[str, float]:
    """Median CPU per second of messages: ``json.loads`` alone, then loads and apply."""
    loads, applies = [], []
    for texts in seconds:
        loads.append(cpu(lambda texts=texts: load_only(texts))[0])
        applies.append(cpu(lambda texts=texts: receive(model, texts))[0])
    return {"loads_ms": statistics.median(loads) * 1000, "apply_ms": statistics.median(applies) * 1000,
            "bytes": statistics.median(sum(len(t) for t in texts) for texts in seconds),
            "messages": statistics.median(len(texts) for texts in seconds)}


def rss_mb() -> float:
    """This process's resident set now (MB): the model's history is most of what grows."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def listed_pids(lines: list[views.Line]) -> set[int]:
    """The pids of the process table's rows (its first column)."""
    return {int(text.split()[0]) for text, _ in lines if text.split() and text.split()[0].isdigit()}


def measure_host(stream: HostStream, rounds: int, history: int) -> tuple[dict[str, Any], Model]:
    model = Model()
    snapshot = [dumps(m) for m in stream.snapshot]
    snapshot_cpu = cpu(lambda: receive(model, snapshot))[0]
    local = [[dumps(m) for m in sent] for sent in stream.seconds]
    partials = [[dumps(m) for m in sent] for sent in stream.partials]
    # the console's second: its partial frames, then the tab frame and the complete host frame
    half = len(local) // 2
    report: dict[str, Any] = {
        "processes": len(stream.pids), "snapshot_bytes": sum(map(len, snapshot)),
        "snapshot_apply_ms": snapshot_cpu * 1000,
        "minute": {"local": per_second(model, local[:half]),
                   "console": per_second(model, [p + t for p, t in zip(partials[half:], local[half:],
                                                                       strict=True)])},
    }
    now = stream.last_now
    report["minute"]["views"] = refreshes(model, HOST_VIEWS, now, rounds)
    report["minute"].update(live_seconds=len(local), rss_mb=rss_mb())
    if history:
        live = len(stream.seconds)
        cycles = max(1, math.ceil(history / live) - 1)
        for cycle in range(1, cycles + 1):
            texts = [[dumps(shifted(m, cycle * live, cycle)) for m in sent] for sent in stream.seconds]
            if cycle < cycles:
                receive(model, (t for sent in texts for t in sent))
            else:
                report["full"] = {"local": per_second(model, texts), "live_seconds": live * (cycles + 1),
                                  "seconds_kept": len(model.host.seconds) if model.host else 0}
        now += cycles * live
        report["full"]["views"] = refreshes(model, HOST_VIEWS, now, rounds)
        report["full"]["rss_mb"] = rss_mb()
    return report, model


def measure_fleet(stream: HostStream, hosts: int, rounds: int) -> dict[str, Any]:
    start = stream.last_now
    snapshot, updates = fleet_stream(stream.fleet_entry, hosts, 20, start)
    model = Model()
    receive(model, [dumps({"type": "hello", "now": start, "online_within": 15}), dumps(snapshot)])
    texts = [[dumps(m) for m in second] for second in updates]
    report: dict[str, Any] = {"hosts": hosts, "second": per_second(model, texts)}
    report["views"] = refreshes(model, ["fleet"], start + len(updates) + 1, rounds)
    return report


# -- the table ---------------------------------------------------------------------------------------

def share(ms: float, per_s: float) -> float:
    return ms / 1000 * per_s * 100


def refresh_line(name: str, row: dict[str, Any], loads_ms: float) -> str:
    """A view's first draw of a second (its rows built) and its second draw (rows reused): app.py
    draws twice a second whatever the data's pace (``DRAW_EVERY``)."""
    ms, again = row["ms"], row["again_ms"]
    return (f"refresh {name:10} ({row['lines']:5} lines)    {ms:8.2f} {share(ms + again, 1):7.2f} "
            f"{ms / loads_ms:8.2f}  {again:10.2f}")


def table(report: dict[str, Any]) -> list[str]:
    host, fleet = report["host"], report["fleet"]
    phases = [host["minute"], *([host["full"]] if "full" in host else [])]
    size = report["size"]
    out = [f"top: {host['processes']:,}-process host ({size['groups']} groups x {size['processes']} x "
           f"{size['threads']} threads), {fleet['hosts']}-host fleet",
           f"snapshot {host['snapshot_bytes'] / 1e6:.1f} MB, applied in "
           f"{host['snapshot_apply_ms']:.0f} ms CPU",
           f"{'':34} {'CPU ms':>8} {'core %':>7} {'x loads':>8}  {'again ms':>10}"]
    for phase in phases:
        kept = f", {phase['seconds_kept']} s of frames kept" if "seconds_kept" in phase else ""
        out.append(f"-- after {phase['live_seconds']} live seconds ({phase['rss_mb']:.0f} MB RSS{kept})")
        sources = [(s, phase[s]) for s in ("local", "console") if s in phase]
        for source, row in sources:
            out.append(f"apply 1 s, {source:7} ({row['messages']:2.0f} msg, {row['bytes'] / 1e3:5.0f} kB)"
                       f"  {row['apply_ms']:8.2f} {share(row['apply_ms'], 1):7.2f} "
                       f"{row['apply_ms'] / row['loads_ms']:8.2f}")
        loads = phase["local"]["loads_ms"]
        out += [refresh_line(name, row, loads) for name, row in phase["views"].items()]
    second = fleet["second"]
    out.append(f"-- fleet of {fleet['hosts']} hosts")
    out.append(f"apply 1 s ({second['messages']:3.0f} fleet.update, {second['bytes'] / 1e3:4.0f} kB)"
               f"    {second['apply_ms']:8.2f} {share(second['apply_ms'], 1):7.2f} "
               f"{second['apply_ms'] / second['loads_ms']:8.2f}")
    out.append(refresh_line("fleet", fleet["views"]["fleet"], second["loads_ms"]))
    out.append("core %: of one core, per second of messages, or of a second's two draws (the first builds "
               "the process rows, the second reuses them: 'again ms'); x loads: over json.loads alone of "
               "a second's messages")
    return out


def run(size: dict[str, int]) -> tuple[dict[str, Any], Model]:
    stream = host_stream(size["groups"], size["processes"], size["threads"], size["before"], size["live"])
    host, model = measure_host(stream, size["rounds"], size["history"])
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "size": size, "host": host,
              "fleet": measure_fleet(stream, size["hosts"], size["rounds"])}
    report["host"]["listed"] = sorted(listed_pids(host["minute"]["views"]["processes"]["text"]))
    report["host"]["alive"] = sorted(pid for pid, _ in stream.pids)
    return report, model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 20-process host, 12 live seconds")
    for key, value in FULL.items():
        parser.add_argument(f"--{key}", type=int, help=f"default {value} ({QUICK[key]} with --quick)")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS, help="directory for top-latest.json")
    args = parser.parse_args(argv)
    size = {k: getattr(args, k) if getattr(args, k) is not None else v
            for k, v in (QUICK if args.quick else FULL).items()}
    report, _ = run(size)
    lines = table(report)
    print("\n".join(lines))
    if not args.no_save:
        args.results.mkdir(parents=True, exist_ok=True)
        for phase in (report["host"]["minute"], report["host"].get("full") or {}):
            for row in phase.get("views", {}).values():
                row.pop("text", None)
        report["fleet"]["views"]["fleet"].pop("text", None)
        report["table"] = lines
        (args.results / "top-latest.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
