"""What the whole-path fuzz must prove, read off a run of bench/fuzz_pipeline.py's ``Pipeline``.

Kept apart from the pipeline (which only starts things and sends) so that
the bench script and tests/bench/test_fuzz_pipeline.py judge a run by the
same list: ``report()`` returns the figures and ``problems``, one sentence
per property that failed, empty when the run proved everything:

- no traceback in any log (the console's and both agents'), and no live or
  agent connection closed 1011 (nor any live one closed at all);
- the hostile agent counted every datagram: received == sent (the sender is
  paced, nothing is dropped on the way), decoded + malformed == received,
  decoded and malformed exactly what ``wire.decode`` said of each datagram
  here, no queue drops, no internal error, exit status 0; and the console's
  counters for the host (from heartbeats) say the same;
- the agent still decodes: the valid tick sent last reaches the console;
- the clean host's requests, per status class, arrive exactly, in the store
  and on the live path, with a complete frame for every second it sent;
- every tab's snapshot of both hosts at every window, the fleet snapshot and
  every live message are JSON without NaN or Infinity and no ``error``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from support.console import read_store
from support.fuzz_rig import (
    STATUS,
    TRACEBACK,
    Reader,
    close_codes,
    frame_requests,
    peak_rss,
    tracebacks,
)
from support.modwsgi import wait_until

#: The two hosts' names (bench/fuzz_pipeline.py creates them).
HOSTILE, CLEAN = "fuzz-hostile", "fuzz-clean"


class Verdict:
    def __init__(self, pipeline: Any):
        self.p = pipeline
        self.views: dict[str, Any] = {}
        self.offsets: dict[str, int] = {}
        self.first_tracebacks: list[dict[str, Any]] = []

    def logs(self) -> dict[str, Path]:
        logs = {f"agent {name}": agent.log for name, agent in self.p.agents.items()}
        if self.p.site is not None:
            logs["console"] = self.p.site.log
        return logs

    def watch_logs(self) -> None:
        """Note when a log first shows a traceback, with the newest datagrams accepted by then."""
        for name, path in self.logs().items():
            try:
                with open(path, "rb") as fh:
                    fh.seek(self.offsets.get(name, 0))
                    chunk = fh.read()
            except OSError:
                continue
            self.offsets[name] = self.offsets.get(name, 0) + len(chunk)
            if TRACEBACK.encode() in chunk and not any(t["log"] == name for t in self.first_tracebacks):
                recent = self.p.work / f"recent-{name.replace(' ', '-')}.dgrams.gz"
                self.p.save_recent(recent)
                self.first_tracebacks.append({"log": name, "sent": self.p.expect.sent, "recent": str(recent),
                                              "seconds": round(time.monotonic() - self.p.marks["begin"], 1)})

    def bad_sample_reasons(self, keep: int = 5) -> dict[str, list[str]] | None:
        """Why the console dropped samples, when its store can be read from here (Redis only)."""
        p = self.p
        if not p.o.redis or p.site is None:
            return None
        try:
            return {name: [b.get("reason", "")[:300] for b in read_store(p.site, lambda s, h=host_id:
                                                                           s.abad_samples(h))[:keep]]
                    for name, host_id in p.ids.items()}
        except Exception as exc:  # the figures go on without them
            return {"(unreadable)": [f"{type(exc).__name__}: {exc}"]}

    @staticmethod
    def rss_of(pid: int | None) -> int | None:
        return peak_rss(pid)

    # -- reading every view ---------------------------------------------------------------

    def read_views(self) -> None:
        p = self.p
        hostile_id, clean_id = p.ids[p.HOSTILE], p.ids[p.CLEAN]
        with Reader(p.site.live_url, p.token, "reader") as reader:
            final: dict[str, Any] = {}

            def final_arrived() -> bool:
                final.update(reader.ask(hostile_id, "overview", 300, p.FINAL_GROUP))
                return (final.get("totals") or {}).get("requests") == p.FINAL_REQUESTS

            wait_until(final_arrived, 30, step=1.0)
            self.views["final_requests"] = (final.get("totals") or {}).get("requests")
            self.views["clean"] = self.clean_exactness(reader, clean_id)
            first = reader.every_tab(hostile_id, p.o.windows)
            odd = tuple(g for g in first.get("groups") or [] if g != "*")
            self.views["hostile_groups"] = len(odd)
            for group in odd[:6]:
                reader.ask(hostile_id, "overview", 300, group)
            self.views["hostile_processes"] = len(first.get("processes") or [])
            reader.every_tab(clean_id, p.o.windows)
            fleet = reader.fleet()
            self.views["fleet_rows"] = {row.get("name"): {k: row.get(k) for k in ("state", "agent", "console",
                                                                              "error") if k in row}
                                        for row in fleet.get("hosts") or []}
        self.views["reader"] = reader.summary()

    def clean_exactness(self, reader: Reader, clean_id: int) -> dict[str, Any]:
        """The clean host's requests in the store (a snapshot's totals) and on the live path."""
        p, feed = self.p, self.p.feed
        sent = {"requests": feed.requests, "status": {k: feed.status.get(k, 0) for k in STATUS}}
        stored: dict[str, Any] = {}

        def store_has_all() -> bool:
            totals = reader.ask(clean_id, "overview", 600).get("totals") or {}
            stored.clear()
            stored.update(requests=totals.get("requests"),
                          status={k: int(totals.get(f"status_{k}") or 0) for k in STATUS})
            return stored == sent

        wait_until(store_has_all, 20, step=1.0)
        watcher = p.clean_watcher
        last = max(feed.seconds, default=0)
        wait_until(lambda: watcher.drain() or last in watcher.complete, 20, step=0.25)
        requests, status = frame_requests({t: m for t, m in watcher.complete.items() if t in feed.seconds})
        return {"sent": sent, "stored": stored, "live": {"requests": requests, "status": dict(status)},
                "seconds_sent": len(feed.seconds),
                "seconds_missing": sorted(feed.seconds - set(watcher.complete))[:20],
                "seconds_missing_count": len(feed.seconds - set(watcher.complete))}

    # -- the report -----------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        p = self.p
        for watcher in p.watchers:
            watcher.drain()
        self.watch_logs()
        expect = p.expect
        logs = {name: tracebacks(path) for name, path in self.logs().items()}
        console_counters = {name: p.fleet_watcher.agent.get(host_id, {}) for name, host_id in p.ids.items()}
        live = [w.summary() for w in p.watchers]
        rss = {f"agent {name}": p.rss.get(name) if name in p.rss else peak_rss(a.proc.pid if a.proc else None)
               for name, a in p.agents.items()}
        rss["console"] = peak_rss(p.site.proc.pid if p.site and p.site.proc else None)
        marks = p.marks
        figures: dict[str, Any] = {
            "store": "redis" if p.o.redis else "memory", "seed": p.o.seed, "count": p.o.count,
            "sent": {"hostile": expect.sent, "crafted": p.figures.get("crafted", 0),
                     "mutants": p.o.count, "clean": p.feed.sent if p.feed else 0,
                     "unsendable": p.figures["unsendable"]},
            "accepted": expect.accepted, "rejected": expect.malformed,
            "rejected_by_breach": dict(expect.rejected.most_common()),
            "decoder_crashes": expect.crashes,
            "agent": {name: stats.get("counters", stats) for name, stats in p.stats.items()},
            "agent_exit": p.returncodes,
            "console_counters": console_counters,
            "bad_sample_reasons": self.bad_sample_reasons(),
            "final_tick_requests": self.views.get("final_requests"), "final_tick_sent": p.FINAL_REQUESTS,
            "clean": self.views.get("clean"),
            "tracebacks": {name: count for name, (count, _) in logs.items()},
            "traceback_texts": {name: texts for name, (_, texts) in logs.items() if texts},
            "first_tracebacks": self.first_tracebacks,
            "closes": {"live": {w["name"]: w["closed"] for w in live if w["closed"] is not None},
                       "agent": {name: dict(close_codes(a.log)) for name, a in p.agents.items()}},
            "live": {"connections": len(live), "messages": sum(w["messages"] for w in live),
                     "bytes": sum(w["bytes"] for w in live), "largest": max((w["largest"] for w in live),
                                                                             default=0),
                     "non_finite": sum(w["non_finite"] for w in live),
                     "errors": {w["name"]: w["errors"] for w in live if w["error_count"]}},
            "views": {k: v for k, v in self.views.items() if k not in ("clean", "final_requests")},
            "browser": p.figures.get("browser"),
            "pacing_waits": p.figures["waits"], "aborted": p.aborted,
            "wall_seconds": round(time.monotonic() - marks["begin"], 1),
            "phases": {name: round(marks[name] - marks["begin"], 1) for name in ("started", "sent", "settled",
                                                                             "read") if name in marks},
            "send_seconds": p.figures.get("send_seconds"),
            "rate_per_second": round(expect.sent / p.figures["send_seconds"]) if p.figures.get("send_seconds")
            else None,
            "peak_rss": rss,
        }
        figures["problems"] = problems(figures, expect)
        return figures


def problems(f: dict[str, Any], expect: Any) -> list[str]:
    """One sentence per property the run did not prove."""
    out: list[str] = []
    if f["aborted"]:
        out.append(f"run aborted: {f['aborted']}")
    out += [f"{n} traceback(s) in the {name} log" for name, n in f["tracebacks"].items() if n]
    out += [f"live connection {name} closed with {code}" for name, code in f["closes"]["live"].items()]
    for name, codes in f["closes"]["agent"].items():
        bad = {c: n for c, n in codes.items() if c in ("1011", "4400", "4503")}
        if bad:
            out.append(f"the {name} agent's console connection closed {bad}")
    if expect.crashes:
        out.append(f"wire.decode crashed on {len(expect.crashes)} datagram(s)")
    agent = f["agent"].get(HOSTILE)
    if agent is not None:
        want = {"received": expect.sent, "decoded": expect.accepted, "malformed": expect.malformed,
                "queue_drops": 0, "internal_errors": 0}
        out += [f"hostile agent {k} {agent.get(k)} != {v}" for k, v in want.items() if agent.get(k) != v]
        if agent.get("received") != (agent.get("decoded") or 0) + (agent.get("malformed") or 0):
            out.append("hostile agent received != decoded + malformed")
    clean_agent = f["agent"].get(CLEAN)
    if clean_agent is not None and (clean_agent.get("malformed") or clean_agent.get("queue_drops")
                                    or clean_agent.get("received") != clean_agent.get("decoded")):
        out.append(f"clean agent lost or rejected datagrams: {clean_agent}")
    out += [f"agent {name} exited with {code}" for name, code in f["agent_exit"].items()
            if code not in (0, None)]
    bad = {name: c.get("bad_samples") for name, c in f["console_counters"].items() if c.get("bad_samples")}
    if bad:  # the agent forwards only what its decoder accepted: the same table must accept it here
        out.append(f"the console dropped samples the agent decoded (bad_samples {bad}; "
                   f"latest reasons {f.get('bad_sample_reasons')})")
    console = f["console_counters"].get(HOSTILE, {})
    want = {"received": expect.sent, "decoded": expect.accepted, "malformed": expect.malformed}
    out += [f"console's hostile {k} {console.get(k)} != {v}" for k, v in want.items() if console.get(k) != v]
    if f["final_tick_requests"] != f["final_tick_sent"]:
        out.append(f"the final valid tick did not reach the console (requests {f['final_tick_requests']})")
    clean = f["clean"] or {}
    if clean.get("stored") != clean.get("sent"):
        out.append(f"clean host in the store {clean.get('stored')} != sent {clean.get('sent')}")
    if clean.get("live") != clean.get("sent"):
        out.append(f"clean host on the live path {clean.get('live')} != sent {clean.get('sent')}")
    if clean.get("seconds_missing"):
        out.append(f"clean host seconds without a complete frame: {clean['seconds_missing']}")
    reader = f["views"].get("reader") or {}
    out += [f"snapshot {what}: {why}" for what, why in (reader.get("failed") or {}).items()]
    if reader.get("non_finite"):
        out.append(f"non-finite JSON in snapshots: {reader['non_finite'][:2]}")
    if reader.get("closed") is not None:
        out.append(f"the snapshot reader's connection closed with {reader['closed']}")
    broken = {n: r.get("error") for n, r in (f["views"].get("fleet_rows") or {}).items() if r.get("error")}
    if broken:
        out.append(f"fleet rows with an error: {broken}")
    if f["live"]["non_finite"]:
        out.append(f"{f['live']['non_finite']} live message(s) with non-finite JSON")
    out += [f"live {name} got error messages: {errors[:2]}" for name, errors in f["live"]["errors"].items()]
    pages = (f["browser"] or {}).get("pages") or {}
    out += [f"page {name}: {issues[:3]}" for name, issues in pages.items() if issues]
    if f["browser"] is not None and not f["browser"].get("clean_readout"):
        out.append("the clean host's page shows no live throughput")
    return out

