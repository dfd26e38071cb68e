"""Redis bytes per process-second held by the window store for the newest minute.

    python -m bench.redis_bytes [--url redis://127.0.0.1:6379/0] [--window 60]
                                [--copies 1,20] [--scenarios A,B,C,D,E] [--no-save]

Replays the real captures (tests/data/wire-vectors/raw) as the agent would
forward them (``ingest.pipeline.wire.decode`` + pid, incarnation, seq, stamp and
group joined by ``ingest.pipeline.samples.replay``), keeps the newest ``--window``
seconds of each, and writes them batch by batch (250 ms of samples each)
into the Redis backend under a fresh key prefix. Then it sums ``MEMORY
USAGE`` over every key of that prefix, by key kind, and divides by the
process-seconds in the window (the tick's ``sample_period`` summed: a
process ticking at 0.5 s counts one process-second per second, not two).

``--copies N`` replays N copies of each capture as distinct processes
(pids moved) of the same groups: frames are per group, not per process,
so their cost spreads over the processes of a busier host, while raw
samples cost the same per process. The copies are identical but for the
pid, so with compression on (``--compress``) their raw bytes shrink far
more than real, different processes would: read the copies=1 rows for
raw samples and the copies>1 rows for how frames amortise. The design
target (as bench.console_load's TARGET_BYTES) is <= 1 KB per process-second at full
resolution.

Results go to bench/results/redis-bytes-latest.json and are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from console.windows import get_store  # noqa: E402
from console.windows.backends.redis import WindowStore  # noqa: E402
from ingest.model import frames  # noqa: E402
from ingest.model.sample import Sample  # noqa: E402
from ingest.pipeline import capture  # noqa: E402
from ingest.pipeline.samples import replay  # noqa: E402

RAW = REPO / "tests" / "data" / "wire-vectors" / "raw"
RESULTS = REPO / "bench" / "results"
TARGET = 1024
PID_STRIDE = 1_000_000


def newest(samples: list[Sample], window: float) -> list[Sample]:
    end = max(s["t"] for s in samples)
    return [s for s in samples if s["t"] >= end - window]


def copies(samples: list[Sample], n: int) -> list[Sample]:
    out = [{**s, "p": s["p"] + k * PID_STRIDE} for s in samples for k in range(n)]
    return sorted(out, key=lambda s: s["t"])  # stable: copies of a sample stay together


def batches(samples: list[Sample], width: float = 0.25) -> list[list[Sample]]:
    out: list[list[Sample]] = []
    start = -math.inf
    for sample in samples:
        if sample["t"] - start > width:
            out.append([])
            start = sample["t"]
        out[-1].append(sample)
    return out


def key_kind(store: WindowStore, key: str) -> str:
    rest = key[len(store.key(0)) - 4:].split(":", 1)[1]  # after "{host}:"
    return rest.split(":")[0]


async def measure(url: str, name: str, samples: list[Sample], compress: bool) -> dict[str, Any]:
    store = get_store(url, prefix=f"wfbench:{uuid.uuid4().hex[:10]}:", compress_raw=compress)
    assert isinstance(store, WindowStore)
    try:
        started, now = time.perf_counter(), 0.0
        for batch_id, batch in enumerate(batches(samples), 1):
            now = max(s["t"] for s in batch) + 0.05
            await store.awrite_batch(1, "bench", batch_id, batch, now)
        elapsed = time.perf_counter() - started
        by_kind: Counter[str] = Counter()
        keys = [k.decode() async for k in store.redis.scan_iter(match=store.prefix + "*", count=1000)]
        for key in keys:
            by_kind[key_kind(store, key)] += await store.redis.memory_usage(key, samples=0) or 0
        if keys:
            await store.redis.delete(*keys)
    finally:
        await store.aclose()
    frame = frames.merge(frames.frame_add({}, s) for s in samples)
    process_seconds = frame.get("per", 0.0)
    total = sum(by_kind.values())
    return {
        "scenario": name, "samples": len(samples), "keys": len(keys),
        "processes": len({(s["p"], s["i"]) for s in samples}),
        "process_seconds": round(process_seconds, 1), "bytes": total, "by_kind": dict(by_kind),
        "bytes_per_process_second": round(total / process_seconds) if process_seconds else None,
        "raw_bytes_per_process_second": round(by_kind["raw"] / process_seconds) if process_seconds else None,
        "samples_per_s_written": round(len(samples) / elapsed),
    }


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for name in args.scenarios.split(","):
        everything = list(replay(capture.read(str(RAW / f"{name}.dgrams.gz"))))
        window = newest(everything, args.window)
        for n in (int(c) for c in args.copies.split(",")):
            for compress in (c == "on" for c in args.compress.split(",")):
                result = await measure(args.url, name, copies(window, n), compress)
                result.update(copies=n, compress=compress)
                results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--window", type=float, default=60.0, help="newest seconds of each capture")
    parser.add_argument("--copies", default="1,20", help="comma-separated copies of each capture")
    parser.add_argument("--scenarios", default="A,B,C,D,E")
    parser.add_argument("--compress", default="on,off", help="raw batch compression: on, off or both")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args))
    print(f"{'scen':4} {'copies':>6} {'zlib':>4} {'procs':>5} {'proc-s':>7} {'samples':>7} {'bytes':>9} "
          f"{'B/proc-s':>8} {'raw B/proc-s':>12} {'samples/s':>9}  largest kinds")
    for r in results:
        kinds = ", ".join(f"{k} {v // 1024} KiB" for k, v in Counter(r["by_kind"]).most_common(4))
        zlib = "on" if r["compress"] else "off"
        print(f"{r['scenario']:4} {r['copies']:>6} {zlib:>4} {r['processes']:>5} {r['process_seconds']:>7} "
              f"{r['samples']:>7} {r['bytes']:>9} {r['bytes_per_process_second']:>8} "
              f"{r['raw_bytes_per_process_second']:>12} {r['samples_per_s_written']:>9}  {kinds}")
    for compress in sorted({r["compress"] for r in results}, reverse=True):
        worst = max(r["bytes_per_process_second"] or 0 for r in results
                    if r["copies"] == 1 and r["compress"] == compress)
        print(f"target <= {TARGET} B per process-second, captures as recorded, zlib "
              f"{'on' if compress else 'off'}: {'PASS' if worst <= TARGET else 'FAIL'} (worst {worst})")
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / "redis-bytes-latest.json"
        out.write_text(json.dumps({"window": args.window, "results": results}, indent=1))
        print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
