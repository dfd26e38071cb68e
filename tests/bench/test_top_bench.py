"""bench/top.py runs at a small size and measures what it says: behaviour only, never time."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from bench import top

ROOT = Path(__file__).resolve().parents[2]


def numbers(report: dict) -> list[float]:
    """Every CPU figure of the report (ms per second of messages or per refresh)."""
    host, fleet = report["host"], report["fleet"]
    out = [host["snapshot_apply_ms"], fleet["second"]["apply_ms"], fleet["second"]["loads_ms"],
           fleet["views"]["fleet"]["ms"]]
    for phase in (host["minute"], host["full"]):
        out += [row[k] for source in ("local", "console") if source in phase
                for row in [phase[source]] for k in ("apply_ms", "loads_ms")]
        out += [row["ms"] for row in phase["views"].values()]
    return out


def test_a_small_run_renders_every_view_and_lists_every_process() -> None:
    report, model = top.run(dict(top.QUICK))
    host = report["host"]
    assert host["processes"] == 2 * 10  # every simulated process is alive at the end
    assert model.host is not None and len(model.host.processes) >= 20
    for phase in (host["minute"], host["full"]):
        assert set(phase["views"]) == set(top.HOST_VIEWS)
        for name, row in phase["views"].items():
            texts = [text for text, _ in row["text"]]
            assert row["lines"] == len(texts) > 4, name  # the header's 4 lines, and the view's own
            assert texts[0].startswith("wsgi-fleet top  host=web-001"), name
            assert "no data in the last 10 s" not in texts[1], name
        # the process table lists every process alive, once, with its threads from its tick (one
        # that stopped within the last 10 s has a row too, as has one the replayed minute revives)
        processes = [text for text, _ in phase["views"]["processes"]["text"]]
        rows = [t for t in processes[6:] if t.split()[0].isdigit()]
        assert processes[4].startswith(f"  processes: {len(rows)} (last 10 s")
        pids = [int(t.split()[0]) for t in rows]
        assert len(pids) == len(set(pids)) and set(pids) >= set(host["alive"])
        assert all("/4" in t for t in rows)
    assert set(host["listed"]) >= set(host["alive"]) and len(host["alive"]) == 20
    assert host["full"]["live_seconds"] == top.QUICK["history"]
    assert host["full"]["seconds_kept"] > host["minute"]["live_seconds"]
    fleet = report["fleet"]
    assert fleet["hosts"] == 100 and fleet["views"]["fleet"]["lines"] == 100 + 3  # header, title, columns
    assert fleet["second"]["messages"] == 100
    figures = numbers(report)
    assert all(math.isfinite(v) and v > 0 for v in figures), figures
    assert all("\n" not in line for line in top.table(report))


def test_the_command_prints_its_table_and_writes_its_results(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "bench.top", "--quick", "--results", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    saved = json.loads((tmp_path / "top-latest.json").read_text())
    assert saved["size"] == top.QUICK and saved["table"] == run.stdout.splitlines()
    for name in (*top.HOST_VIEWS, "fleet"):
        assert f"refresh {name}" in run.stdout
    assert "apply 1 s, local" in run.stdout and "apply 1 s, console" in run.stdout
