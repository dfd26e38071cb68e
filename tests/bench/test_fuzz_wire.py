"""bench/fuzz_wire.py runs as ``python -m bench.fuzz_wire`` and finds no crash in a short run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_fuzz_run_exits_0_with_no_crash(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.fuzz_wire", "--count", "2000", "--jobs", "1",
         "--results", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads((tmp_path / "fuzz-wire.json").read_text())
    assert summary["crashes"] == 0
    assert summary["count"] == 2000 == summary["accepted"] + summary["rejected"]
    assert summary["accepted"] > 0 and summary["rejected"] > 0
    assert (tmp_path / "fuzz-crashes.jsonl").read_text() == ""
    assert "crashes 0" in run.stdout
