"""The real console (daphne), real agents and simulators as subprocesses, for end-to-end tests.

Everything here runs the product the way an operator does: ``manage.py
migrate`` and a small ``manage.py shell -c`` for the fleet's rows, the
console as ``daphne console.asgi:application``, each agent as ``python -m
ingest serve --console ...`` and each simulated fleet as ``python -m ingest
simulate``. Clients are plain ``websockets`` connections with a user API
token (the token-client path of docs/live-protocol.md), each on its own thread,
so tests stay synchronous and every message received is kept with its
arrival time.

The processes are the stack launcher's (stack/: Console, Worker, Agent,
Simulator, RedisServer), which the benchmarks and the demo use too; what is
here is how the tests use them (prefixes, ports, tokens, defaults).

Isolation: the shared Redis is used under per-run key and channel
prefixes (``cleanup_redis`` deletes them), every console has its own SQLite
file or PostgreSQL database, and every process started here is stopped by
its own pid (never by name).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from stack import AGENT_MAX_MESSAGE, Agent, Console, Worker, console_env, pick_port, wait_until
from stack import Simulator as _Simulator
from stack import tail as tail  # re-exported: the tests show agent and console logs with it
from support.redis_server import OwnRedis

SHARED_REDIS = "redis://127.0.0.1:6379/0"
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
T0 = time.monotonic()


def note(msg: str) -> None:
    print(f"[{time.monotonic() - T0:7.2f}] {msg}", flush=True)


def unique(tag: str = "") -> str:
    return f"e2e{tag}{os.getpid()}x{secrets.token_hex(3)}"


# -- databases and Redis ------------------------------------------------------------


def create_pg_database(name: str) -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def delete_keys(redis_url: str, *prefixes: str) -> int:
    """Delete every key under the given prefixes; returns how many."""
    import redis

    client = redis.Redis.from_url(redis_url)
    deleted = 0
    try:
        for prefix in prefixes:
            batch = []
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    deleted += client.delete(*batch)
                    batch = []
            if batch:
                deleted += client.delete(*batch)
    finally:
        client.close()
    return deleted


class RedisServer(OwnRedis):
    """A private redis-server for a whole deployment: ``persistent`` keeps every write it
    acknowledged through a SIGKILL (AOF, fsync always), as the README asks of production."""

    def __init__(self, work: Path, *, persistent: bool = False):
        directory = work / "redis"
        directory.mkdir(exist_ok=True)
        super().__init__(directory, **({"appendonly": "yes", "appendfsync": "always"} if persistent else {}))


# -- the console --------------------------------------------------------------------


class ConsoleSite(Console):
    """One console deployment: environment, database, Redis prefixes and its one daphne
    (stack.Console), on a port kept across restarts (below the ephemeral range)."""

    def __init__(self, work: Path, *, redis_url: str = SHARED_REDIS, database_url: str | None = None,
                 max_frame: int | None = AGENT_MAX_MESSAGE, env: dict[str, str] | None = None):
        """``max_frame=None`` leaves daphne's default frame limit (1 MiB), below the message limit;
        ``env`` adds settings."""
        self.max_frame = max_frame
        self.redis_url = redis_url
        self.tag = unique()
        self.key_prefix = f"{self.tag}:"
        self.channel_prefix = f"{self.tag}c"
        settings = console_env(work, redis_url=redis_url, key_prefix=self.key_prefix,
                               channel_prefix=self.channel_prefix,
                               secret="e2e-tests-only-" + secrets.token_hex(16),
                               LOG_LEVEL="INFO", WSGI_FLEET_AGENT_MAX_MESSAGE=str(AGENT_MAX_MESSAGE))
        super().__init__(work, {**settings, **(env or {})})
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.port = pick_port()
        self.log = work / "daphne.log"
        self.starts: list[float] = []
        self.daphne: Worker | None = None

    @property
    def proc(self) -> subprocess.Popen | None:
        return self.daphne.proc if self.daphne is not None else None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def live_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/live/"

    def setup(self, spec: dict[str, dict[str, list[str]]]) -> dict[str, Any]:  # type: ignore[override]
        """migrate, then create teams, hosts (with agent tokens) and users (with API tokens).

        ``spec``: {team name: {"hosts": [...], "users": [...]}}. Returns
        {"hosts": {name: {id, token, team}}, "users": {name: {id, token, team}}}.
        """
        return super().setup(spec, note="e2e")

    def start(self, timeout: float = 30.0) -> ConsoleSite:
        """Start daphne on ``self.port`` (the same one after a kill) and wait until it accepts."""
        if self.daphne is None:
            self.daphne = Worker(self.env, self.port, self.log, max_frame=self.max_frame)
        self.daphne.env = dict(self.env)
        self.daphne.start(timeout)
        self.starts.append(self.daphne.starts[-1])
        return self

    def stop(self) -> None:
        """SIGTERM, as an operator does (SIGKILL after 10 s)."""
        if self.daphne is not None:
            self.daphne.stop(10)

    def kill(self) -> None:
        """SIGKILL: no close frames, no cleanup, like a crashed process."""
        if self.daphne is not None:
            self.daphne.kill()

    def cleanup_redis(self) -> int:
        try:
            return delete_keys(self.redis_url, self.key_prefix, self.channel_prefix)
        except Exception:  # the private Redis of an outage test may be gone already
            return 0

    def store(self) -> Any:
        """The window store this console writes, as the console builds it."""
        from console.windows.store import get_store

        return get_store(self.redis_url, prefix=self.key_prefix)


def read_store(site: ConsoleSite, fn: Callable[[Any], Any]) -> Any:
    """Run ``await fn(store)`` on a fresh store client (its own event loop)."""
    async def main() -> Any:
        store = site.store()
        try:
            return await fn(store)
        finally:
            await store.aclose()
    return asyncio.run(main())


def stored_samples(site: ConsoleSite, host_id: int, since: float) -> list[dict[str, Any]]:
    """Every raw sample of the host stamped since ``since`` (the window store's own reader)."""
    return read_store(site, lambda s: s.araw(host_id, since, time.time() + 3600, limit=10_000_000))


# -- agents and simulated fleets ------------------------------------------------------


class AgentProcess(Agent):
    """stack.Agent as the end-to-end tests run it: a spool directory, a stats file, INFO logs,
    a socket anyone may send to."""

    def __init__(self, work: Path, name: str, *, console_url: str, token_file: Path,
                 hostname: str | None = None, sock: Path | None = None, spool: bool = True,
                 env: dict[str, str] | None = None):
        super().__init__(work, name, console_url=console_url, token_file=token_file, hostname=hostname,
                         sock=sock, spool=spool, stats=True, socket_mode="0666", log_level="INFO", env=env)

    def start(self, timeout: float = 15.0) -> AgentProcess:
        super().start(timeout)
        return self


class Simulator(_Simulator):
    """``python -m ingest simulate`` in real time; SIGTERM ends it with its JSON summary."""

    def __init__(self, sock: Path, *, processes: int = 2, groups: int = 2, seed: int = 0,
                 extra: tuple[str, ...] = (), env: dict[str, str] | None = None):
        super().__init__(sock, processes=processes, groups=groups, seed=seed, extra=extra, env=env)

    def start(self) -> Simulator:
        super().start()
        return self


# -- live clients ----------------------------------------------------------------------


class LiveClient:
    """One ``/ws/live/`` connection with a user API token, on its own thread and loop.

    ``messages`` holds every JSON message received, in order, each with a
    ``_at`` key (time.monotonic() at arrival); ``closed`` the close code
    once the connection ended.
    """

    def __init__(self, url: str, token: str, name: str = "client"):
        self.url, self.token, self.name = url, token, name
        self.messages: list[dict[str, Any]] = []
        self.texts: list[str] = []
        self.closed: int | None = None
        self.close_reason: str | None = None
        self.error: str | None = None
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ws: Any = None
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"live-{name}", daemon=True)

    def connect(self, timeout: float = 10.0) -> LiveClient:
        self._thread.start()
        if not self._connected.wait(timeout) or self._ws is None:
            raise RuntimeError(f"{self.name}: cannot connect to {self.url}: {self.error}")
        return self

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._run())
        self._loop.close()

    async def _run(self) -> None:
        from websockets.asyncio.client import connect

        try:
            ws = await connect(self.url, additional_headers={"Authorization": f"Bearer {self.token}"},
                               open_timeout=10, max_size=16 << 20)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self._connected.set()
            return
        self._ws = ws
        self._connected.set()
        try:
            async for text in ws:
                message = json.loads(text)
                message["_at"] = time.monotonic()
                with self._lock:
                    self.texts.append(text if isinstance(text, str) else text.decode())
                    self.messages.append(message)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.closed = ws.close_code if ws.close_code is not None else -1
            self.close_reason = ws.close_reason
            # Let a close() still running on this loop finish before the loop stops.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            await asyncio.gather(*others, return_exceptions=True)

    def send(self, message: dict[str, Any]) -> None:
        """Send ``message``; ConnectionError once the console closed the connection (the
        client's loop ends with it, and a closed loop takes no more work)."""
        if self._ws is None:
            raise RuntimeError("not connected")
        sending = self._ws.send(json.dumps(message))
        try:
            future = asyncio.run_coroutine_threadsafe(sending, self._loop)
        except RuntimeError as exc:  # the loop closed after the console closed the connection
            sending.close()  # never to run: not a "coroutine was never awaited" warning
            raise ConnectionError(f"{self.name}: closed {self.closed}") from exc
        future.result(10)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.snapshot() if m.get("type") == kind]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float,
                 after: int = 0) -> dict[str, Any]:
        """The first message from index ``after`` on that satisfies ``predicate``."""
        found: list[dict[str, Any]] = []

        def check() -> bool:
            for message in self.snapshot()[after:]:
                if predicate(message):
                    found.append(message)
                    return True
            return self.closed is not None

        wait_until(check, timeout, step=0.02)
        if not found:
            kinds = [m.get("type") for m in self.snapshot()[after:]]
            raise AssertionError(f"{self.name}: no matching message within {timeout} s "
                                 f"(closed={self.closed} {self.close_reason!r}, error={self.error}, "
                                 f"got {len(kinds)}: {kinds[-20:]})")
        return found[0]

    def request(self, message: dict[str, Any], predicate: Callable[[dict[str, Any]], bool],
                timeout: float = 10.0) -> dict[str, Any]:
        """Send and wait for the answer (the first matching message after the send)."""
        mark = len(self.snapshot())
        self.send(message)
        return self.wait_for(predicate, timeout, after=mark)

    def close(self) -> None:
        if self._ws is not None and self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._ws.close(), self._loop).result(5)
        self._thread.join(5)


@contextlib.contextmanager
def live_clients(*clients: LiveClient) -> Iterator[list[LiveClient]]:
    try:
        yield [c.connect() for c in clients]
    finally:
        for c in clients:
            c.close()
