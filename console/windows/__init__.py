"""Rolling windows of fleet telemetry: raw samples, per-second frames and tiers.

Plain Python (no Django import), so the agent's tests, benchmarks and
scripts can use it without settings; the Django app glue lives elsewhere.
"""

from ingest.model.kinds import HOST

from .batch import DEFAULT_TIERS, InvalidSample, Tier
from .checks import CheckedSamples, check_samples
from .store import BACKENDS, BAD_SAMPLES, BaseWindowStore, Series, StoreUnavailable, WriteResult, get_store

__all__ = (
    "BACKENDS",
    "BAD_SAMPLES",
    "DEFAULT_TIERS",
    "HOST",
    "BaseWindowStore",
    "CheckedSamples",
    "InvalidSample",
    "Series",
    "StoreUnavailable",
    "Tier",
    "WriteResult",
    "check_samples",
    "get_store",
)
