"""Running ``python -m ingest top`` as a user would, against a deployment."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from support.console import stored_samples
from support.deployment import Deployment

from stack.procs import wait_until

ROOT = Path(__file__).resolve().parents[3]


def http_url(dep: Deployment) -> str:
    return f"http://127.0.0.1:{dep.site.port}"


def top(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingest", "top", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def top_json(*args: str) -> tuple[int, Any]:
    done = top(*args, "--once", "--json")
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else done.stderr


def fed_host(dep: Deployment, name: str, processes: int = 2, groups: int = 2,
             extra: tuple[str, ...] = ()) -> int:
    """Start ``name``'s agent and a simulator (``extra``: more of its options); the host's id
    once the store holds 13 s of its ticks."""
    host_id = dep.fleet["hosts"][name]["id"]
    dep.simulator(dep.agent(name), seed=host_id, processes=processes, groups=groups, extra=extra)
    since = time.time() - 60

    def ticked_for(seconds: float) -> bool:  # the snapshot's process window has whole seconds of it
        ticks = [s["t"] for s in stored_samples(dep.site, host_id, since) if s["k"] == 2]
        return bool(ticks) and time.time() - min(ticks) > seconds

    assert wait_until(lambda: ticked_for(13), 40, step=0.5), dep.diagnostics()
    return host_id


def token_file(dep: Deployment, user: str) -> str:
    return str(dep.site.write_token(dep.fleet["users"][user]["token"], f"user-{user}"))
