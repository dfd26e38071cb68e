"""Shared fixtures: test data paths and short-path socket directories."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
VECTORS = DATA / "wire-vectors"
RAW = VECTORS / "raw"
BAD = VECTORS / "bad"


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A short directory for sockets: AF_UNIX paths are limited to 107 bytes,
    which pytest's deep tmp_path can exceed."""
    path = Path(tempfile.mkdtemp(prefix="wf-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
