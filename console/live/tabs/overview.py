"""The Overview tab: the charts come with ``host.snapshot``; this adds the window's
phase breakdown and latency histograms (docs/live-protocol.md, "Tabs")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.frames import Sample

from .base import TabRequest


async def snapshot(store: Any, host: dict[str, Any], request: TabRequest, now: float) -> dict[str, Any]:
    return {}


def live(samples: Sequence[Sample], second: int) -> dict[str, Any] | None:
    return None
