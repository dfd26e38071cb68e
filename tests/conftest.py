"""Shared fixtures: test data paths and short-path socket directories."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.paths import BAD, DATA, RAW, VECTORS  # noqa: F401 - re-exported for older imports


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A short directory for sockets: AF_UNIX paths are limited to 107 bytes,
    which pytest's deep tmp_path can exceed."""
    path = Path(tempfile.mkdtemp(prefix="wf-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
