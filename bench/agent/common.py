"""Paths, defaults and deadlines of the agent benchmark."""

from __future__ import annotations

import struct

from stack import ROOT

REPO = ROOT

REFERENCE_PYTHON = REPO / ".venv-reference" / "bin" / "python"
REFERENCE_HARNESS = REPO / "bench" / "reference_harness.py"
RESULTS = REPO / "bench" / "results"
CAPTURES = REPO / "tests" / "data" / "wire-vectors" / "raw"
QLEN_SYSCTL = "/proc/sys/net/unix/max_dgram_qlen"

DEFAULT_RATES = "1000,2000,4000,10000,20000,50000,max"
DEFAULT_WORKLOADS = "capture,sim-1,sim-100,sim-1000"
QUICK_RATES = "1000,4000,20000,max"
QUICK_WORKLOADS = "capture,sim-1,sim-1000"
IMPLS = ("ours", "reference")

# A wall-clock deadline for every child, so a wedged receiver cannot hang the run.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0
DRAIN_TIMEOUT = 120.0
IDLE_POLL = 0.010  # receiver idle detection: poll its CPU this often...
IDLE_BUSY_FRACTION = 0.10  # ...a poll with more CPU than this share of the interval is busy...
IDLE_POLLS = 3  # ...and this many quiet polls in a row mean it has finished

_SEQ = struct.Struct("<I")
_SEQ_OFFSET = 12  # header "<4sBBHIId": magic, version, kind, flags, pid, seq, stamp
_PID = struct.Struct("<I")
_PID_OFFSET = 8
