"""The capacity tab (docs/live-protocol.md, "Tabs"). Not drawn yet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.frames import Sample

from .base import TabRequest


async def snapshot(store: Any, host: dict[str, Any], request: TabRequest, now: float) -> dict[str, Any]:
    return {}


def live(samples: Sequence[Sample], second: int) -> dict[str, Any] | None:
    return None
