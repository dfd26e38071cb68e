"""The console's one window store, built from settings on first use."""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings

from console.windows.batch import Tier
from console.windows.store import BaseWindowStore, StoreUnavailable, get_store

__all__ = ["StoreUnavailable", "store_kind", "window_store"]


def store_kind() -> str:
    return "redis" if settings.WSGI_FLEET["REDIS_URL"] else "memory"


@functools.cache
def window_store() -> BaseWindowStore:
    conf = settings.WSGI_FLEET
    tiers = (Tier(1, conf["RETENTION_1S"], 900.0), Tier(10, conf["RETENTION_10S"], 21600.0),
             Tier(60, conf["RETENTION_1M"], float("inf")))
    options: dict[str, Any] = {"tiers": tiers, "raw_retention": conf["RETENTION_RAW"],
                               "slow_stale": float(conf["SLOW_STALE"])}
    if store_kind() == "redis":
        options["prefix"] = conf["KEY_PREFIX"]
    return get_store(conf["REDIS_URL"], **options)
