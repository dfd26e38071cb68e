#!/usr/bin/env python3
"""Whole-path fuzz: hostile datagrams through real agents into a real console, every view read back.

Why the whole path: bench/fuzz_wire.py proves the decoder never crashes, but
the issue's failures were downstream of it (a handler that ends the decode
thread, a store write that throws, ``NaN`` in a page's JSON, a frame over the
message limit). So here the datagrams go the way mod_wsgi's do: into the
socket of a real agent (``python -m ingest serve --console ...``) that
forwards to a real console (daphne, with the in-process store, or with
``--redis`` a Redis of its own), while live connections watch every tab of
both hosts and the fleet, and afterwards every tab's snapshot is read at
windows up to 14 days and the pages are loaded in headless Chromium.

Two hosts: ``fuzz-hostile`` gets ``--count`` datagrams mutated from the real
captures (tests/data/wire-vectors/raw, bench/fuzz_wire.py's mutations,
restamped so they land in the windows being read) after every field
re-encoded with every wrong wire type and every forbidden or extreme value
(tests/support/hostile.py), then one valid tick that must reach the console;
``fuzz-clean`` gets a small simulated fleet in real time whose requests must
arrive exactly. The sender is paced by the agent's status lines, so the
agent's queue never overflows and every datagram must be counted.

    python3 -m bench.fuzz_pipeline --count 1000000 --seed 1 [--redis]

Writes bench/results/fuzz-pipeline.json (``--results``) and prints it; exits 1
when a property failed (the ``problems`` list says which). The mutations are
reproducible from --seed; only header stamps follow the clock.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import random
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from support import hostile  # noqa: E402
from support.console import AgentProcess, ConsoleSite, RedisServer  # noqa: E402
from support.fuzz_rig import (  # noqa: E402
    TABS,
    AgentLog,
    CleanFeed,
    Watcher,
    set_password,
)
from support.fuzz_verdict import CLEAN, HOSTILE, Verdict  # noqa: E402
from support.modwsgi import wait_until  # noqa: E402

from bench import fuzz_wire  # noqa: E402 - the decoder fuzz's mutation set
from ingest.pipeline import capture  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TEAM, USER = "fuzz", "fuzzer"
PASSWORD = "fuzz pipeline password 1"
FINAL_PID, FINAL_GROUP, FINAL_REQUESTS = 3_999_999, "fuzz-final", 7
WINDOWS = (300, 3600, 86_400, 1_209_600)
CLEAN_SECONDS = 4  # the clean host's fewest seconds of traffic, however quick the hostile ones
RESTAMP_EVERY = 20.0  # seconds between two restamps of the seeds
CHUNK = 200  # datagrams sent between two looks at the agent's progress
STALL = 60.0  # seconds without decoding progress before the agent counts as wedged


@dataclass
class Options:
    count: int = 1_000_000
    seed: int = 1
    redis: bool = False
    crafted: bool = True
    cases: str | None = None  # only the crafted cases whose label matches this regex
    replay: Path | None = None  # a capture file sent instead of the crafted cases (findings)
    windows: tuple[int, ...] = WINDOWS
    backlog: int = 4000  # datagrams sent and not yet taken by the agent's decoder
    max_spooled: int = 40  # agent batches not yet acked by the console (its heartbeats say)
    progress: float = 10.0  # seconds between progress lines; 0 prints none
    browser: bool = True  # the pages will be loaded: the user needs a password


def mutants(seeds: list[tuple[str, bytes]], seed: int, count: int) -> Iterator[hostile.Case]:
    """``count`` mutants of the captures; the seeds are restamped to the clock as time goes by."""
    rng = random.Random(f"fuzz-pipeline:{seed}")  # reproducible cases, not secrets
    stamped = time.time()
    mutator = fuzz_wire.Mutator(hostile.restamp(seeds, stamped), rng)
    for i in range(count):
        if i % 1000 == 0 and time.time() - stamped > RESTAMP_EVERY:
            stamped = time.time()
            mutator = fuzz_wire.Mutator(hostile.restamp(seeds, stamped), rng)
        yield hostile.Case(f"mutant {i}", mutator.case()[1])


class Pipeline:
    """The console, the two agents, the watchers and the senders of one run."""

    HOSTILE, CLEAN, FINAL_GROUP, FINAL_REQUESTS = HOSTILE, CLEAN, FINAL_GROUP, FINAL_REQUESTS

    def __init__(self, work: Path, options: Options):
        self.work, self.o = work, options
        self.redis: RedisServer | None = None
        self.site: ConsoleSite | None = None
        self.agents: dict[str, AgentProcess] = {}
        self.ids: dict[str, int] = {}
        self.token = ""
        self.watchers: list[Watcher] = []
        self.expect = hostile.Expectation()
        self.feed: CleanFeed | None = None
        self.live_feed: CleanFeed | None = None
        self.recent: deque[hostile.Case] = deque(maxlen=5000)  # accepted datagrams, newest last
        self.stats: dict[str, dict[str, Any]] = {}
        self.rss: dict[str, int | None] = {}
        self.returncodes: dict[str, int | None] = {}
        self.figures: dict[str, Any] = {"unsendable": 0, "waits": 0}
        self.marks: dict[str, float] = {"begin": time.monotonic()}
        self.aborted: str | None = None
        self.verdict = Verdict(self)

    # -- setting up ----------------------------------------------------------------------

    def start(self) -> Pipeline:
        if self.o.redis:
            self.redis = RedisServer(self.work).start()
        self.site = site = ConsoleSite(self.work, redis_url=self.redis.url if self.redis else "")
        fleet = site.setup({TEAM: {"hosts": [HOSTILE, CLEAN], "users": [USER]}})
        self.ids = {name: fleet["hosts"][name]["id"] for name in (HOSTILE, CLEAN)}
        self.token = fleet["users"][USER]["token"]
        if self.o.browser:
            set_password(site, USER, PASSWORD)
        site.start()
        for name in (HOSTILE, CLEAN):
            agent = AgentProcess(self.work, name, console_url=site.url, hostname=name,
                                 token_file=site.write_token(fleet["hosts"][name]["token"], name))
            agent.cmd[agent.cmd.index("--log-interval") + 1] = "0.5"  # the sender's pacing reads it
            self.agents[name] = agent.start()
        if not wait_until(lambda: all(a.connections() for a in self.agents.values()), 30, step=0.1):
            raise RuntimeError("the agents did not connect to the console")
        self.log = AgentLog(self.agents[HOSTILE].log)
        url = site.live_url
        self.fleet_watcher = Watcher(url, self.token, "fleet", {"type": "subscribe", "scope": "fleet"})
        self.watchers = [self.fleet_watcher.start()]
        for name, tab in itertools.product((HOSTILE, CLEAN), TABS):
            self.watchers.append(Watcher(url, self.token, f"{name} {tab}", {
                "type": "subscribe", "scope": "host", "host": self.ids[name], "tab": tab, "window": 300,
                "group": "*"}).start())
        self.clean_watcher = next(w for w in self.watchers if w.name == f"{CLEAN} overview")
        self.marks["started"] = time.monotonic()
        return self

    # -- traffic -------------------------------------------------------------------------

    def traffic(self) -> None:
        """Crafted cases, then the mutants, then one valid tick; the clean feed meanwhile."""
        seeds = hostile.capture_seeds()
        self.feed = CleanFeed(self.agents[CLEAN].sock, CLEAN, seed=self.o.seed)
        self.feed.start()
        now = time.time()
        crafted = hostile.crafted_cases(hostile.restamp(seeds, now), now) if self.o.crafted else []
        if self.o.cases:
            crafted = [case for case in crafted if re.search(self.o.cases, case.label)]
        if self.o.replay:
            crafted = [hostile.Case(f"replayed {i}", data)
                       for i, data in enumerate(capture.read(str(self.o.replay)))]
        self.figures["crafted"] = len(crafted)
        template = hostile.busy_tick(d for _, d in seeds)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(str(self.agents[HOSTILE].sock))
            began = time.monotonic()
            self.send(sock, itertools.chain(crafted, mutants(seeds, self.o.seed, self.o.count)))
            final = hostile.valid_tick(template, pid=FINAL_PID, seq=2, stamp=time.time(), group=FINAL_GROUP,
                                       requests=FINAL_REQUESTS)
            self.send(sock, [hostile.Case("the final valid tick", final)])
            self.figures["send_seconds"] = round(time.monotonic() - began, 1)
        time.sleep(1.5)  # the clean feed's last whole interval
        self.feed.wait_seconds(CLEAN_SECONDS)  # a short, busy run still checks the clean host on some
        self.feed.halt()
        self.marks["sent"] = time.monotonic()

    def send(self, sock: socket.socket, cases: Any) -> None:
        for batch in hostile.chunks(cases, CHUNK):
            if self.aborted or not self.pace():
                return
            for case in batch:
                try:
                    sock.send(case.data)
                except OSError as exc:
                    if self.agents[HOSTILE].proc is None or self.agents[HOSTILE].proc.poll() is not None:
                        self.aborted = f"the hostile agent exited during the traffic ({exc})"
                        return
                    self.figures["unsendable"] += 1
                    continue
                if self.expect.add(case.data, case.label) is not None:
                    self.recent.append(case)

    def pace(self) -> bool:
        """Wait while the agent (or, by its heartbeats, the console) is too far behind."""
        hostile_id = self.ids[HOSTILE]
        last_progress, handled = time.monotonic(), -1
        while True:
            self.housekeeping()
            if self.aborted:
                return False
            self.log.poll()
            spooled = int(self.fleet_watcher.agent.get(hostile_id, {}).get("spooled") or 0)
            if self.expect.sent - self.log.handled <= self.o.backlog and spooled <= self.o.max_spooled:
                return True
            if self.log.handled != handled:
                last_progress, handled = time.monotonic(), self.log.handled
            elif time.monotonic() - last_progress > STALL:
                self.aborted = f"the agent stopped decoding: {handled} of {self.expect.sent} handled"
                return False
            self.figures["waits"] += 1
            time.sleep(0.05)

    def housekeeping(self, every: float = 1.0) -> None:
        now = time.monotonic()
        if now - self.marks.get("housekeeping", 0.0) < every:
            return
        self.marks["housekeeping"] = now
        for watcher in self.watchers:
            watcher.drain()
        for name, agent in self.agents.items():
            if agent.proc is not None and agent.proc.poll() is not None and name not in self.stats:
                self.aborted = f"agent {name} exited with {agent.proc.returncode}"
        if self.site is not None and self.site.proc is not None and self.site.proc.poll() is not None:
            self.aborted = f"the console exited with {self.site.proc.returncode}"
        if self.o.progress and now - self.marks.get("progress", 0.0) >= self.o.progress:
            self.marks["progress"] = now
            received, decoded, malformed = self.log.latest
            print(f"  [{now - self.marks['begin']:6.0f} s] sent {self.expect.sent:,}  agent received "
                  f"{received:,} decoded {decoded:,} malformed {malformed:,}  clean requests "
                  f"{self.feed.requests if self.feed else 0:,}", flush=True)
        self.verdict.watch_logs()

    # -- after the traffic ---------------------------------------------------------------

    def settle(self, timeout: float = 120.0) -> None:
        """Wait for everything to arrive, then read every view of both hosts."""
        if not wait_until(lambda: self.log.poll() and self.log.handled >= self.expect.sent, timeout, 0.2):
            self.aborted = self.aborted or f"the agent handled {self.log.handled} of {self.expect.sent}"
        self.await_counters(timeout)
        self.marks["settled"] = time.monotonic()
        self.verdict.read_views()
        self.marks["read"] = time.monotonic()

    def await_counters(self, timeout: float) -> None:
        """Until the console's counters for both hosts (from heartbeats) show every datagram."""
        want = {HOSTILE: {"received": self.expect.sent, "decoded": self.expect.accepted,
                          "malformed": self.expect.malformed},
                CLEAN: {"received": self.feed.sent if self.feed else 0}}

        def arrived() -> bool:
            self.housekeeping(0.0)
            return all(all(self.fleet_watcher.agent.get(self.ids[name], {}).get(k) == v for k, v in w.items())
                       for name, w in want.items())

        wait_until(arrived, timeout, step=0.25)

    def start_live_feed(self) -> None:
        """The clean host fed again (new processes), so that its page has live data to show."""
        self.live_feed = CleanFeed(self.agents[CLEAN].sock, CLEAN, seed=self.o.seed + 1, first_pid=50000)
        self.live_feed.start()

    def stop_agent(self, name: str) -> dict[str, Any]:
        """SIGTERM the agent (it drains to the console) and keep its stats and peak RSS."""
        agent = self.agents[name]
        self.rss[name] = self.verdict.rss_of(agent.proc.pid if agent.proc else None)
        try:
            self.stats[name] = agent.stop()
        except Exception as exc:
            self.stats[name] = {"error": f"{type(exc).__name__}: {exc}"}
        self.returncodes[name] = agent.returncode
        return self.stats[name]

    def pages(self, browser: Any) -> dict[str, Any]:
        from support.fuzz_pages import check_pages

        assert self.site is not None
        try:
            self.figures["browser"] = check_pages(browser, f"http://127.0.0.1:{self.site.port}", USER,
                                                  PASSWORD, HOSTILE, CLEAN)
        except Exception as exc:  # the pages' failure is a finding, not the end of the run
            self.figures["browser"] = {"pages": {"(browser)": [f"{type(exc).__name__}: {exc}"[:500]]}}
        return self.figures["browser"]

    def report(self) -> dict[str, Any]:
        return self.verdict.report()

    def close(self) -> None:
        for feed in (self.feed, self.live_feed):
            if feed is not None:
                feed.halt(2)
        for watcher in self.watchers:
            watcher.close()
        for agent in self.agents.values():
            agent.kill()
        if self.site is not None:
            self.site.kill()
            self.site.cleanup_redis()
        if self.redis is not None:
            self.redis.kill()

    def save_recent(self, path: Path) -> Path:
        """The newest accepted datagrams as a capture file (read it with ``ingest dump --input``)."""
        capture.write_all(str(path), [case.data for case in self.recent])
        return path


def list_cases(pattern: str) -> int:
    """Print the crafted cases whose label matches, with their bytes (for findings)."""
    now = time.time()
    seeds = hostile.capture_seeds()
    for case in hostile.crafted_cases(hostile.restamp(seeds, now), now):
        if re.search(pattern, case.label):
            print(f"{case.label}\n  {case.data.hex()}")
    print("(bytes 16-23 of each are the header stamp, the time the case was made)")
    return 0


def run(options: Options, keep: bool = False) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="wf-fz-", dir="/tmp"))  # short: AF_UNIX paths
    pipeline = Pipeline(work, options)
    try:
        pipeline.start()
        pipeline.traffic()
        pipeline.settle()
        if options.browser:
            from playwright.sync_api import sync_playwright
            from support.fuzz_pages import launch

            pipeline.start_live_feed()
            with sync_playwright() as pw:
                chromium = launch(pw)
                try:
                    pipeline.pages(chromium)
                finally:
                    chromium.close()
        for name in (HOSTILE, CLEAN):
            pipeline.stop_agent(name)
        report = pipeline.report()
        keep = keep or bool(report["problems"])  # the logs and the newest datagrams, for a look
        if report["problems"] and pipeline.recent:
            report["recent_capture"] = str(pipeline.save_recent(work / "recent-accepted.dgrams.gz"))
        report["work"] = str(work) if keep else None
        return report
    finally:
        pipeline.close()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="mutated datagrams for the hostile host")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--redis", action="store_true", help="the console on a Redis of its own")
    parser.add_argument("--no-browser", action="store_true", help="skip the pages in headless Chromium")
    parser.add_argument("--no-crafted", action="store_true", help="mutants only")
    parser.add_argument("--cases", metavar="REGEX", help="only the crafted cases whose label matches")
    parser.add_argument("--replay", type=Path, metavar="CAPTURE",
                        help="send this capture's datagrams instead of the crafted cases")
    parser.add_argument("--windows", default=",".join(map(str, WINDOWS)),
                        help="snapshot windows to read, seconds (default %(default)s)")
    parser.add_argument("--list-cases", metavar="REGEX", help="print the matching crafted cases and exit")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) for a look")
    parser.add_argument("--results", type=Path, default=RESULTS, help="directory for fuzz-pipeline.json")
    args = parser.parse_args(argv)
    # SIGTERM ends the run like Ctrl-C: the console, agents and Redis are stopped by ``run``'s finally
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.list_cases:
        return list_cases(args.list_cases)
    options = Options(count=args.count, seed=args.seed, redis=args.redis, crafted=not args.no_crafted,
                      cases=args.cases, replay=args.replay,
                      windows=tuple(int(w) for w in args.windows.split(",")), browser=not args.no_browser)
    args.results.mkdir(parents=True, exist_ok=True)
    report = run(options, keep=args.keep)
    text = json.dumps(report, indent=2, default=str) + "\n"
    print(text, end="")
    path = args.results / "fuzz-pipeline.json"  # one entry per store kind: the runs of both are kept
    previous: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        previous = json.loads(path.read_text(encoding="utf-8"))
    previous[report["store"]] = report
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(previous, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    print(f"fuzz-pipeline ({report['store']} store): {report['sent']['hostile']:,} hostile datagrams, "
          f"{report['accepted']:,} accepted, {report['rejected']:,} rejected, "
          f"{sum(report['tracebacks'].values())} tracebacks, {len(report['problems'])} problem(s), "
          f"{report['wall_seconds']} s")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
