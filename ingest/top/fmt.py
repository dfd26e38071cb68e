"""Figures as a terminal shows them, by the unit the metric table gives each metric."""

from __future__ import annotations

import math
import time
from typing import Any

from ..model import metrics

UNITS = {m.name: m.unit for m in metrics.METRICS}
NO_DATA = "-"
_BYTES = ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"))


def _finite(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def seconds(value: Any) -> str:
    v = _finite(value)
    if v is None:
        return NO_DATA
    if v < 0.001:
        return f"{v * 1e6:.0f}µs"
    if v < 1:
        return f"{v * 1000:.3g}ms".replace(".0ms", "ms")
    if v < 60:
        return f"{v:.3g}s"
    return f"{int(v // 60)}m{int(v % 60):02d}s"


def amount(value: Any, digits: int = 1) -> str:
    """A count or rate: 3, 41.2, 1.2k, 3.4M."""
    v = _finite(value)
    if v is None:
        return NO_DATA
    if abs(v) >= 1e6:
        return f"{v / 1e6:.1f}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.1f}k"
    if v == int(v):
        return f"{int(v)}"
    return f"{v:.{digits}f}"


def size(value: Any) -> str:
    v = _finite(value)
    if v is None:
        return NO_DATA
    for scale, unit in _BYTES:
        if abs(v) >= scale:
            return f"{v / scale:.1f}{unit}"
    return f"{v:.0f}B"


def value(name: str, v: Any) -> str:
    """``v`` of metric ``name`` in the unit the metric table gives it."""
    unit = UNITS.get(name, "")
    if unit == "s":
        return seconds(v)
    if unit in ("bytes", "bytes/s"):
        return size(v) + ("/s" if unit == "bytes/s" and _finite(v) is not None else "")
    if unit in ("ratio",):
        f = _finite(v)
        return NO_DATA if f is None else f"{f * 100:.0f}%"
    if unit == "%":
        f = _finite(v)
        return NO_DATA if f is None else f"{f:.1f}%"
    if unit == "cores":
        f = _finite(v)
        return NO_DATA if f is None else f"{f:.2f}"
    return amount(v)


def clock(epoch: Any) -> str:
    v = _finite(epoch)
    return NO_DATA if v is None else time.strftime("%H:%M:%S", time.localtime(v))


def age(seconds_ago: Any) -> str:
    v = _finite(seconds_ago)
    if v is None:
        return NO_DATA
    if v < 90:
        return f"{max(v, 0):.0f}s ago"
    if v < 5400:
        return f"{v / 60:.0f}min ago"
    return f"{v / 3600:.0f}h ago"
