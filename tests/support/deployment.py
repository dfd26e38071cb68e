"""A console deployment for tests that run every part as its own process.

``deploy(spec)`` migrates a fresh console, creates the teams, hosts and
users of ``spec``, starts daphne, and gives a ``Deployment`` that starts
agents and simulators and stops everything at the end (the fixtures are
registered by the conftest of the tests that use them). See
support.console for the parts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.console import (
    AgentProcess,
    ConsoleSite,
    Simulator,
    note,
    stored_samples,
    tail,
)


@pytest.fixture
def work() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="wf-e2e-", dir="/tmp"))
    yield path
    remove(path)


def remove(path: Path) -> None:
    """Remove a test's directory (logs included), unless WF_E2E_KEEP=1 asks to keep it."""
    if os.environ.get("WF_E2E_KEEP"):
        note(f"kept {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


class Deployment:
    """A console plus the agents and simulators of one test; everything stopped at the end."""

    def __init__(self, site: ConsoleSite):
        self.site = site
        self.agents: list[AgentProcess] = []
        self.simulators: list[Simulator] = []
        self.fleet: dict[str, Any] = {}

    def agent(self, name: str, **kwargs: Any) -> AgentProcess:
        host = self.fleet["hosts"][name]
        kwargs.setdefault("console_url", self.site.url)
        agent = AgentProcess(self.site.work, name, token_file=self.site.write_token(host["token"], name),
                             **kwargs)
        self.agents.append(agent)
        return agent.start()

    def simulator(self, agent: AgentProcess, seed: int, **kwargs: Any) -> Simulator:
        sim = Simulator(agent.sock, seed=seed, **kwargs)
        self.simulators.append(sim)
        return sim.start()

    def diagnostics(self) -> str:
        return "\n".join([tail(self.site.log), *(tail(a.log) for a in self.agents)])

    def close(self) -> None:
        for sim in self.simulators:
            try:
                sim.stop()
            except Exception:
                if sim.proc is not None:
                    sim.proc.kill()
                    sim.proc.communicate()
        for agent in self.agents:
            agent.kill()
        self.site.kill()
        deleted = self.site.cleanup_redis()
        note(f"cleanup: {deleted} Redis keys under {self.site.key_prefix} / {self.site.channel_prefix}")


@pytest.fixture
def deploy(work: Path) -> Iterator[Any]:
    """``deploy(spec, redis_url=..., database_url=...)`` -> a started Deployment."""
    made: list[Deployment] = []

    def make(spec: dict[str, dict[str, list[str]]], **site_options: Any) -> Deployment:
        site = ConsoleSite(work, **site_options)
        dep = Deployment(site)
        made.append(dep)
        t0 = time.monotonic()
        dep.fleet = site.setup(spec)
        note(f"migrate + fleet rows in {time.monotonic() - t0:.2f} s")
        site.start()
        note(f"daphne accepting on {site.port} after {site.starts[-1]:.2f} s")
        return dep

    yield make
    for dep in made:
        dep.close()


def check_exact_delivery(site: ConsoleSite, host_id: int, since: float, stats: dict[str, Any]) -> int:
    """The store holds each sample the agent decoded exactly once; returns that count."""
    counters = stats["counters"]
    samples = stored_samples(site, host_id, since)
    keys = Counter((s["p"], s["i"], s["k"], s["s"], s["t"]) for s in samples)
    duplicated = sum(n - 1 for n in keys.values() if n > 1)
    per_process = Counter((s["p"], s["i"]) for s in samples)
    decoded_per_process = Counter({(p["pid"], p["incarnation"]): p["received"] for p in stats["processes"]})
    note(f"agent decoded {counters['decoded']} (received {counters['received']}, lost by sequence "
         f"{counters['lost']}); store holds {len(samples)} samples, {duplicated} duplicated, "
         f"{len(per_process)} process incarnations")
    assert counters["malformed"] == 0 and counters["queue_drops"] == 0
    assert duplicated == 0
    assert len(samples) == counters["decoded"], (
        f"store {len(samples)} != decoded {counters['decoded']}: "
        f"{len(samples) - counters['decoded']:+d}")
    assert per_process == decoded_per_process
    return len(samples)


