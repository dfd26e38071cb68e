"""One launcher for the whole product as processes: redis-server, console workers, agents, simulators.

The end-to-end tests, the browser tests, the benchmarks (``python -m
bench...``) and ``manage.py demo`` all start the same processes the way an
operator does (``manage.py migrate``, ``daphne console.asgi:application``,
``python -m ingest serve``, ``python -m ingest simulate``); before this
package each had its own copy of that, and of ``free_port``, ``wait_until``
and ``tail``, and the copies drifted (daphne's limits, stop signals, waits).

Why a top-level package, and plain Python:

* the tests need it without Django set up (a console is a subprocess), and
  must not import ``bench``; the benchmarks must not import the tests'
  helpers for it; and the console (the demo command) must not import
  ``tests``. A package next to ``console`` and ``ingest`` is importable by
  all three from a checkout (pytest's ``pythonpath``, ``python -m`` from the
  repository root, ``manage.py``'s directory);
* it imports nothing of ``console`` or ``ingest`` (it runs them) and nothing
  outside the standard library, so tests/support, bench and the demo can
  each import it first. It is not in the wheel (pyproject's packages are
  ``ingest*`` and ``console*``): it launches a checkout, and the demo command
  imports it only when it runs.

Modules: ``procs`` (ports, waits, logs, stopping a child), ``redis_server``,
``console`` (environment, migrate, fleet rows, daphne workers), ``agents``
(``Agent``, ``Simulator``).
"""

from __future__ import annotations

from stack.agents import Agent, Simulator
from stack.console import Console, Worker, console_env
from stack.procs import (
    AGENT_MAX_MESSAGE,
    CHROMIUM,
    CHROMIUM_FLAGS,
    DAPHNE,
    PYTHON,
    ROOT,
    accepts,
    free_port,
    pick_port,
    port_is_free,
    spawn,
    stop_process,
    tail,
    wait_until,
)
from stack.redis_server import RedisServer, RedisServerMissing

__all__ = [
    "AGENT_MAX_MESSAGE", "CHROMIUM", "CHROMIUM_FLAGS", "DAPHNE", "PYTHON", "ROOT", "Agent", "Console",
    "RedisServer", "RedisServerMissing", "Simulator", "Worker", "accepts", "console_env", "free_port",
    "pick_port", "port_is_free", "spawn", "stop_process", "tail", "wait_until",
]
