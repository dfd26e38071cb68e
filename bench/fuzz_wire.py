#!/usr/bin/env python3
"""Fuzz ingest.pipeline.wire.decode with mutated real datagrams.

Seeds are the 68 wire vectors, the accepted odd datagrams of ``bad/`` and all 6,750
datagrams of the raw captures (tests/data/wire-vectors). Each case applies one to three
random mutations (bit flips, byte overwrites, truncation, junk appended, splicing two
datagrams, inserted or removed bytes, u16 lengths set to extremes, a record's id or tag
changed in place, header bytes changed) and decodes the result. A DecodeError is a
rejection; any other exception is a crash. The first few crashing inputs are saved as hex.

    python3 -m bench.fuzz_wire --count 1000000 --seed 1 --jobs 2

Writes bench/results/fuzz-wire.json and bench/results/fuzz-crashes.jsonl; exits 1 on
any crash. The run is reproducible: the same --seed and --count give the same cases for
any --jobs, because each chunk of cases has its own generator seeded from (seed, chunk).
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import random
import struct
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable from anywhere, as well as `python3 -m bench.fuzz_wire`
    sys.path.insert(0, str(ROOT))

from ingest.pipeline import wire  # noqa: E402 - needs the repo root on sys.path

DATA = ROOT / "tests" / "data" / "wire-vectors"
RESULTS = ROOT / "bench" / "results"
CHUNK = 5_000
KEEP_CRASHES = 10
ODD_ACCEPTED = ("unknown-field-u64.bin", "unknown-field-bytes.bin", "unknown-field-middle.bin",
                "unknown-kind.bin", "nonzero-flags.bin", "header-only.bin", "duplicate-field.bin")
EXTREME_U16 = (0, 1, 2, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)
INTERESTING = (0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x7F, 0x80, 0xFE, 0xFF)


# -- seeds ------------------------------------------------------------------------------

def load_seeds() -> list[bytes]:
    seeds = []
    with open(DATA / "vectors.jsonl", encoding="utf-8") as lines:
        seeds += [(DATA / json.loads(line)["file"]).read_bytes() for line in lines]
    seeds += [(DATA / "bad" / name).read_bytes() for name in ODD_ACCEPTED]
    for capture in sorted((DATA / "raw").glob("*.dgrams.gz")):
        blob = gzip.decompress(capture.read_bytes())
        pos = 0
        while pos < len(blob):
            (size,) = struct.unpack_from("<I", blob, pos)
            seeds.append(blob[pos + 4:pos + 4 + size])
            pos += 4 + size
    return seeds


# -- mutations ----------------------------------------------------------------------------

class Mutator:
    """Random mutations of valid datagrams; ``records`` memoises the walk of each seed."""

    def __init__(self, seeds: list[bytes], rng: random.Random):
        self.seeds = seeds
        self.rng = rng
        self.walks: dict[bytes, list[wire.Record]] = {}
        self.ops: list[Callable[[bytes], bytes]] = [
            self.flip_bits, self.flip_bits, self.overwrite_bytes, self.overwrite_bytes,
            self.truncate, self.extend_with_junk, self.splice, self.insert_bytes,
            self.remove_bytes, self.extreme_u16_length, self.extreme_u16_length,
            self.change_record_head, self.change_record_head, self.change_header,
        ]

    def case(self) -> tuple[bytes, bytes]:
        """A seed and a mutant of it."""
        seed = self.rng.choice(self.seeds)
        mutant = seed
        for _ in range(self.rng.choice((1, 1, 1, 2, 2, 3))):
            mutant = self.rng.choice(self.ops)(mutant) if mutant else self.extend_with_junk(mutant)
        return seed, mutant

    def position(self, d: bytes, *, end: bool = False) -> int:
        last = len(d) if end else len(d) - 1
        first = wire.HEADER_SIZE if last >= wire.HEADER_SIZE and self.rng.random() < 0.85 else 0
        return self.rng.randint(first, last)

    def records(self, d: bytes) -> list[wire.Record]:
        records = self.walks.get(d)
        if records is None:
            try:
                records = wire.walk(d)
            except wire.DecodeError:
                records = []
            if len(self.walks) < 20_000:
                self.walks[d] = records
        return records

    def flip_bits(self, d: bytes) -> bytes:
        out = bytearray(d)
        for _ in range(self.rng.choice((1, 1, 2, 3, 8))):
            out[self.position(d)] ^= 1 << self.rng.randrange(8)
        return bytes(out)

    def overwrite_bytes(self, d: bytes) -> bytes:
        at = self.position(d)
        n = min(self.rng.randint(1, 8), len(d) - at)
        if self.rng.random() < 0.5:
            new = bytes(self.rng.choice(INTERESTING) for _ in range(n))
        else:
            new = self.rng.randbytes(n)
        return d[:at] + new + d[at + n:]

    def truncate(self, d: bytes) -> bytes:
        return d[: self.position(d)]

    def extend_with_junk(self, d: bytes) -> bytes:
        if self.rng.random() < 0.5:  # a record header announcing more than follows, or an odd tag
            junk = struct.pack("<HBH", self.rng.randrange(65536), self.rng.choice(INTERESTING),
                               self.rng.choice(EXTREME_U16))
            return d + junk[: self.rng.randint(1, 5)] + self.rng.randbytes(self.rng.randint(0, 16))
        return d + self.rng.randbytes(self.rng.randint(1, 64))

    def splice(self, d: bytes) -> bytes:
        other = self.rng.choice(self.seeds)
        return d[: self.position(d, end=True)] + other[self.position(other, end=True):]

    def insert_bytes(self, d: bytes) -> bytes:
        at = self.position(d, end=True)
        return d[:at] + self.rng.randbytes(self.rng.randint(1, 16)) + d[at:]

    def remove_bytes(self, d: bytes) -> bytes:
        at = self.position(d)
        return d[:at] + d[at + self.rng.randint(1, 16):]

    def extreme_u16_length(self, d: bytes) -> bytes:
        variable = [r for r in self.records(d) if r.count is not None]
        if variable:
            record = self.rng.choice(variable)
            at, count = record.offset + 3, record.count or 0
            new = self.rng.choice((*EXTREME_U16, count + 1, max(count - 1, 0), count * 2))
        else:
            at, new = self.position(d), self.rng.choice(EXTREME_U16)
        return d[:at] + struct.pack("<H", new & 0xFFFF)[: len(d) - at] + d[at + 2:]

    def change_record_head(self, d: bytes) -> bytes:
        """A new id or tag for one record: same length, so a cached layout's key still matches."""
        records = self.records(d)
        if not records:
            return self.flip_bits(d)
        at = self.rng.choice(records).offset + self.rng.randrange(3)
        new = self.rng.choice(INTERESTING) if self.rng.random() < 0.7 else self.rng.randrange(256)
        return d[:at] + bytes([new]) + d[at + 1:]

    def change_header(self, d: bytes) -> bytes:
        at = self.rng.choice((4, 5, 5, 6, 7, 8, 12, 16, 23, 0, 3))
        if at >= len(d):
            return d
        return d[:at] + bytes([self.rng.randrange(256)]) + d[at + 1:]


# -- running --------------------------------------------------------------------------------

@dataclass
class Tally:
    count: int = 0
    accepted: int = 0
    rejected: int = 0
    crashes: int = 0
    crash_cases: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.count += other.count
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.crashes += other.crashes
        self.crash_cases += other.crash_cases[: KEEP_CRASHES - len(self.crash_cases)]


_SEEDS: list[bytes] = []


def _init_worker() -> None:
    global _SEEDS  # one copy of the seeds per worker process
    _SEEDS = load_seeds()
    for seed in _SEEDS:  # warm the layout cache the way a live receiver would be
        wire.decode(seed)


def run_chunk(job: tuple[int, int, int]) -> Tally:
    seed, chunk, n = job
    rng = random.Random(f"fuzz-wire:{seed}:{chunk}")
    mutator = Mutator(_SEEDS, rng)
    tally = Tally(count=n)
    decode, decode_error = wire.decode, wire.DecodeError
    for i in range(n):
        original, mutant = mutator.case()
        try:
            decode(mutant)
        except decode_error:
            tally.rejected += 1
            continue
        except Exception as exc:  # a crash: anything but our own error
            tally.crashes += 1
            if len(tally.crash_cases) < KEEP_CRASHES:
                tally.crash_cases.append({
                    "chunk": chunk, "case": i, "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(limit=-3).splitlines()[-6:],
                    "hex": mutant.hex(), "seed_hex": original.hex(),
                })
            continue
        tally.accepted += 1
    return tally


def write_json(path: Path, payload: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(payload, encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="mutated datagrams to decode")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--results", type=Path, default=RESULTS, help="directory for the result files")
    args = parser.parse_args(argv)
    if args.count < 0 or args.jobs < 1:
        parser.error("--count must be >= 0 and --jobs >= 1")

    seeds = len(load_seeds())
    jobs = [(args.seed, chunk, min(CHUNK, args.count - start))
            for chunk, start in enumerate(range(0, args.count, CHUNK))]
    total = Tally()
    started = time.perf_counter()
    if args.jobs == 1:
        _init_worker()
        for job in jobs:
            total.add(run_chunk(job))
    else:
        with multiprocessing.get_context().Pool(args.jobs, initializer=_init_worker) as pool:
            for tally in pool.imap_unordered(run_chunk, jobs):
                total.add(tally)
    seconds = time.perf_counter() - started

    summary = {
        "count": total.count, "accepted": total.accepted, "rejected": total.rejected,
        "crashes": total.crashes, "seconds": round(seconds, 3),
        "per_second": round(total.count / seconds) if seconds else 0,
        "seed": args.seed, "jobs": args.jobs, "seeds": seeds,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    write_json(args.results / "fuzz-wire.json", json.dumps(summary, indent=2) + "\n")
    total.crash_cases.sort(key=lambda c: (c["chunk"], c["case"]))
    write_json(args.results / "fuzz-crashes.jsonl", "".join(json.dumps(c) + "\n" for c in total.crash_cases))

    print(f"fuzz-wire: {total.count:,} mutated datagrams in {seconds:.1f} s "
          f"({summary['per_second']:,}/s, {args.jobs} job(s), seed {args.seed})")
    print(f"  accepted {total.accepted:,}  rejected {total.rejected:,}  crashes {total.crashes:,}")
    for case in total.crash_cases[:3]:
        print(f"  crash: {case['error']}\n    input: {case['hex']}")
    return 1 if total.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
