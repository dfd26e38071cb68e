"""Where the test data lives (a module of its own: ``conftest`` names more than one file)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
VECTORS = DATA / "wire-vectors"
RAW = VECTORS / "raw"
BAD = VECTORS / "bad"
