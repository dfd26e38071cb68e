"""Constants of the page benchmark (tabs, viewport, targets) and small helpers."""

from __future__ import annotations

import math
import statistics
import sys
from typing import Any

TABS = ["overview", "capacity", "processes", "gc", "slow"]
VIEWPORT = {"width": 1400, "height": 900}
TARGET_BYTES = 1_000_000
TARGET_FIRST_MS = 1000.0
TARGET_VIEWER_RATIO = 2.0
TARGET_P99_MS = 250.0


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def med(values: list[Any]) -> Any:
    values = [v for v in values if isinstance(v, int | float) and not math.isnan(v)]
    return round(statistics.median(values), 3) if values else None


def loadavg() -> list[str]:
    with open("/proc/loadavg") as fh:
        return fh.read().split()[:3]
