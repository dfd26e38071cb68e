"""``top``'s tests run a real console (support.deployment) fed by real agents and simulators.

``module_deploy`` is ``deploy`` for a whole test module: one console, its agents and
simulators shared by the module's tests (each console start and 13 s of ticks cost ~20 s).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.console import ConsoleSite, note
from support.deployment import Deployment, deploy, remove, work

__all__ = ["deploy", "module_deploy", "work"]


@pytest.fixture(scope="module")
def module_deploy() -> Iterator[Any]:
    path = Path(tempfile.mkdtemp(prefix="wf-top-", dir="/tmp"))
    made: list[Deployment] = []

    def make(spec: dict[str, dict[str, list[str]]]) -> Deployment:
        dep = Deployment(ConsoleSite(path))
        made.append(dep)
        t0 = time.monotonic()
        dep.fleet = dep.site.setup(spec)
        dep.site.start()
        note(f"module console up after {time.monotonic() - t0:.2f} s")
        return dep

    yield make
    for dep in made:
        dep.close()
    remove(path)
