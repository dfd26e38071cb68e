#!/usr/bin/env python3
"""What one second's live data of each tab costs for a 1,000-process host.

    python3 -m bench.tabs [--rounds 7] [--no-save]

The publisher builds every tab's live message once a second from that
second's samples (``console.live.tabs.<tab>.live``), on the same event loop
that writes the agents' batches: a tab that takes tens of milliseconds for a
big host delays every other host on the worker. These budgets were once
assertions in the tab tests, where a busy machine made them fail; here they
are measured, best of ``--rounds``, beside a baseline taken in the same run:
``ingest.model.frames.frame_add`` over the same samples (the stored second's
frame, the least any consumer of them does). The ratio is what to watch.

Also times the GC tab's snapshot of a simulated 50-process host over 300 s
and 1 h windows, and its JSON size.

Results go to bench/results/tabs-latest.json and are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("DEBUG", "1")  # the tabs read settings only; no secret key needed for that

import django  # noqa: E402

django.setup()

from console.live.tabs import TabRequest, capacity, gc, processes, slow  # noqa: E402
from console.windows import get_store  # noqa: E402
from ingest.commands.simulate import Fleet  # noqa: E402
from ingest.model import frames  # noqa: E402
from ingest.model.sample import Sample, sample_time  # noqa: E402
from ingest.pipeline.samples import replay  # noqa: E402

T0 = 1_795_000_000.0
RESULTS = REPO / "bench" / "results"


def best_of(rounds: int, work: Callable[[], Any]) -> float:
    """Seconds of the fastest of ``rounds`` calls: load on the machine only ever adds time."""
    work()  # warm up (layouts, caches)
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - began)
    return best


def second_of(fleet: Fleet, seconds: int = 3) -> list[Sample]:
    """The samples of the last whole second of a simulated run, as the agent forwards them."""
    samples = list(replay(fleet.datagrams(T0, seconds)))
    return [s for s in samples if int(sample_time(s)) == int(T0) + seconds - 1]


def live_costs(rounds: int) -> dict[str, Any]:
    hosts = {
        "capacity": (capacity, Fleet(10, 100, 8, seed=1, slow_probability=0.0)),
        "gc": (gc, Fleet(4, 250, 4, seed=9, interpreters=1)),
        "processes": (processes, Fleet(10, 100, 4, seed=2, slow_probability=0.0)),
        "slow": (slow, Fleet(10, 100, 4, seed=3, slow_probability=0.3)),
    }
    out: dict[str, Any] = {}
    for name, (tab, fleet) in hosts.items():
        samples = second_of(fleet)
        second = int(T0) + 2
        cost = best_of(rounds, lambda tab=tab, samples=samples, second=second: tab.live(samples, second))
        base = best_of(rounds, lambda samples=samples: [frames.frame_add({}, s) for s in samples])
        out[name] = {"samples": len(samples), "ms": round(cost * 1000, 2),
                     "baseline_ms": round(base * 1000, 2), "ratio": round(cost / base, 2) if base else None}
    return out


async def gc_snapshot_costs(rounds: int) -> dict[str, Any]:
    store = get_store(None)
    fleet = Fleet(2, 25, 4, seed=4, interpreters=1)
    now = time.time()
    samples = list(replay(fleet.datagrams(now - 200, 200)))
    for batch_id, start in enumerate(range(0, len(samples), 250), 1):
        await store.awrite_batch(1, "bench", batch_id, samples[start:start + 250], now)
    host = {"id": 1, "name": "bench"}
    out = {}
    for window in (300, 3600):
        request = TabRequest.from_message({"tab": "gc", "window": window}, {"gc": gc})
        best, size = float("inf"), 0
        for _ in range(rounds):
            began = time.perf_counter()
            size = len(json.dumps(await gc.snapshot(store, host, request, now), allow_nan=False))
            best = min(best, time.perf_counter() - began)
        out[f"window_{window}"] = {"ms": round(best * 1000, 1), "bytes": size}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "live_1000_processes": live_costs(args.rounds),
              "gc_snapshot_50_processes": asyncio.run(gc_snapshot_costs(max(1, args.rounds // 2)))}
    for name, row in report["live_1000_processes"].items():
        print(f"{name:10s} live: {row['ms']:7.2f} ms for {row['samples']} samples "
              f"({row['ratio']}x frame_add's {row['baseline_ms']} ms)")
    for window, row in report["gc_snapshot_50_processes"].items():
        print(f"gc snapshot {window}: {row['ms']} ms, {row['bytes']} bytes")
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "tabs-latest.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
