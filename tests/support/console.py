"""The real console (daphne), real agents and simulators as subprocesses, for end-to-end tests.

Everything here runs the product the way an operator does: ``manage.py
migrate`` and a small ``manage.py shell -c`` for the fleet's rows, the
console as ``daphne console.asgi:application``, each agent as ``python -m
ingest serve --console ...`` and each simulated fleet as ``python -m ingest
simulate``. Clients are plain ``websockets`` connections with a user API
token (the ``top`` path of docs/live-protocol.md), each on its own thread,
so tests stay synchronous and every message received is kept with its
arrival time.

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
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from support.modwsgi import pick_port, port_is_free, wait_until
from support.redis_server import OwnRedis

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
DAPHNE = str(VENV_BIN / "daphne")
SHARED_REDIS = "redis://127.0.0.1:6379/0"
#: The console's agent message limit (console/settings.py's default for
#: WSGI_FLEET_AGENT_MAX_MESSAGE): set in every test console's environment, and
#: daphne's message and frame limits set to the same, as the README's command does.
AGENT_MAX_MESSAGE = 4 << 20
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
T0 = time.monotonic()


def note(msg: str) -> None:
    print(f"[{time.monotonic() - T0:7.2f}] {msg}", flush=True)


def unique(tag: str = "") -> str:
    return f"e2e{tag}{os.getpid()}x{secrets.token_hex(3)}"


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} unreadable)"
    return f"--- {path.name}, last lines ---\n" + "\n".join(text.splitlines()[-lines:])


def _stop_process(proc: subprocess.Popen, sig: int, timeout: float) -> int:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise


class Child:
    """A server process a test starts, stops (SIGTERM, as an operator does) or kills (a crash)."""

    proc: subprocess.Popen | None = None

    def kill(self) -> None:
        """SIGKILL: no close frames, no cleanup, like a crashed process."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):  # killed by _stop_process then
                _stop_process(self.proc, signal.SIGTERM, 10)
            self.proc = None


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

    def start(self) -> RedisServer:  # type: ignore[override]
        super().start()
        return self

    def kill(self) -> None:
        self.stop()



# -- the console --------------------------------------------------------------------

SETUP_SCRIPT = """
import json, os
from django.contrib.auth.models import User
from console.fleet.models import AgentToken, ApiToken, Host, Team
spec = json.loads(os.environ["WF_E2E_SPEC"])
out = {"hosts": {}, "users": {}}
for team_name, team_spec in spec.items():
    team = Team.objects.create(name=team_name)
    for name in team_spec.get("hosts", []):
        host = Host.objects.create(name=name, team=team)
        _, token = AgentToken.issue(host=host, note="e2e")
        out["hosts"][name] = {"id": host.pk, "token": token, "team": team_name}
    for name in team_spec.get("users", []):
        user = User.objects.create_user(name)
        team.members.add(user)
        _, token = ApiToken.issue(user=user, note="e2e")
        out["users"][name] = {"id": user.pk, "token": token, "team": team_name}
print("WF_E2E_RESULT " + json.dumps(out))
"""


class ConsoleSite(Child):
    """One console deployment: environment, database, Redis prefixes and its daphne."""

    def __init__(self, work: Path, *, redis_url: str = SHARED_REDIS, database_url: str | None = None,
                 max_frame: int | None = AGENT_MAX_MESSAGE, env: dict[str, str] | None = None):
        """``max_frame=None`` leaves daphne's default frame limit (1 MiB), below the message limit;
        ``env`` adds settings."""
        self.work = work
        self.max_frame = max_frame
        self.redis_url = redis_url
        self.tag = unique()
        self.key_prefix = f"{self.tag}:"
        self.channel_prefix = f"{self.tag}c"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
            "DJANGO_SETTINGS_MODULE": "console.settings", "DEBUG": "0", "SECURE_SSL_REDIRECT": "0",
            "DJANGO_SECRET_KEY": "e2e-tests-only-" + secrets.token_hex(16),
            "ALLOWED_HOSTS": "127.0.0.1,localhost", "SQLITE_PATH": str(work / "console.sqlite3"),
            "REDIS_URL": redis_url, "WSGI_FLEET_KEY_PREFIX": self.key_prefix,
            "WSGI_FLEET_CHANNEL_PREFIX": self.channel_prefix, "LOG_LEVEL": "INFO",
            "WSGI_FLEET_AGENT_MAX_MESSAGE": str(AGENT_MAX_MESSAGE),
            "PYTHONUNBUFFERED": "1", **(env or {}),
        }
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.port = pick_port()
        self.proc: subprocess.Popen | None = None
        self.log = work / "daphne.log"
        self.starts: list[float] = []

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def live_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/live/"

    def manage(self, *args: str, extra_env: dict[str, str] | None = None,
               timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env={**self.env, **(extra_env or {})},
                                capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args[:1])} failed ({result.returncode}):\n"
                               f"{result.stdout}\n{result.stderr}")
        return result

    def setup(self, spec: dict[str, dict[str, list[str]]]) -> dict[str, Any]:
        """migrate, then create teams, hosts (with agent tokens) and users (with API tokens).

        ``spec``: {team name: {"hosts": [...], "users": [...]}}. Returns
        {"hosts": {name: {id, token, team}}, "users": {name: {id, token, team}}}.
        """
        self.manage("migrate", "--no-input", "-v", "0")
        result = self.manage("shell", "-c", SETUP_SCRIPT, extra_env={"WF_E2E_SPEC": json.dumps(spec)})
        for line in result.stdout.splitlines():
            if line.startswith("WF_E2E_RESULT "):
                return json.loads(line.split(" ", 1)[1])
        raise RuntimeError(f"setup printed no result:\n{result.stdout}\n{result.stderr}")

    def write_token(self, token: str, name: str) -> Path:
        path = self.work / f"{name}.token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        return path

    def start(self, timeout: float = 30.0) -> ConsoleSite:
        """Start daphne on ``self.port`` (the same one after a kill) and wait until it accepts."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("daphne already running")
        if not wait_until(lambda: port_is_free(self.port), 10, step=0.05):
            raise RuntimeError(f"port {self.port} still busy")
        t0 = time.monotonic()
        with open(self.log, "ab") as log:
            log.write(f"==== start on port {self.port} ====\n".encode())
            log.flush()
            limits = ["--websocket-max-message-size", str(AGENT_MAX_MESSAGE)]
            if self.max_frame is not None:
                limits += ["--websocket-max-frame-size", str(self.max_frame)]
            self.proc = subprocess.Popen(
                [DAPHNE, "-b", "127.0.0.1", "-p", str(self.port), *limits, "console.asgi:application"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        if not wait_until(lambda: self.proc.poll() is not None or self._accepts(), timeout, step=0.05) \
                or self.proc.poll() is not None:
            raise RuntimeError(f"daphne did not start on {self.port}\n{tail(self.log)}")
        self.starts.append(time.monotonic() - t0)
        return self

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.3):
                return True
        except OSError:
            return False


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


class AgentProcess:
    """``python -m ingest serve --console ...`` with a spool directory and a stats file."""

    def __init__(self, work: Path, name: str, *, console_url: str, token_file: Path,
                 hostname: str | None = None, sock: Path | None = None, spool: bool = True,
                 env: dict[str, str] | None = None):
        self.work, self.name = work, name
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.sock = sock or work / f"{name}.sock"
        self.stats_file = work / f"{name}.stats.json"
        self.log = work / f"{name}.agent.log"
        self.spool_dir = work / f"{name}.spool" if spool else None
        self.cmd = [PYTHON, "-m", "ingest", "--log-level", "INFO", "serve", "--socket", str(self.sock),
                    "--socket-mode", "0666", "--console", console_url, "--token-file", str(token_file),
                    "--hostname", hostname or name, "--stats-file", str(self.stats_file),
                    "--log-interval", "0"]
        if self.spool_dir is not None:
            self.cmd += ["--spool-dir", str(self.spool_dir)]
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None

    def start(self, timeout: float = 15.0) -> AgentProcess:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env)
        if not wait_until(lambda: self.sock.exists() or self.proc.poll() is not None, timeout):
            raise RuntimeError(f"agent {self.name} did not bind {self.sock}\n{tail(self.log)}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"agent {self.name} exited {self.proc.returncode}\n{tail(self.log)}")
        return self

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def connections(self) -> int:
        return self.log_text().count("connected to the console as host")

    def stop(self, timeout: float = 40.0) -> dict[str, Any]:
        """SIGTERM (the agent drains to the console for up to 10 s) and read the stats file."""
        if self.proc is not None:
            self.returncode = _stop_process(self.proc, signal.SIGTERM, timeout)
            self.proc = None
        return json.loads(self.stats_file.read_text())

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


class Simulator:
    """``python -m ingest simulate`` in real time; SIGTERM ends it with its JSON summary."""

    def __init__(self, sock: Path, *, processes: int = 2, groups: int = 2, seed: int = 0,
                 extra: tuple[str, ...] = (), env: dict[str, str] | None = None):
        self.env = {**os.environ, **(env or {})}
        self.cmd = [PYTHON, "-m", "ingest", "simulate", "--socket", str(sock), "--processes", str(processes),
                    "--groups", str(groups), "--seed", str(seed), *extra]
        self.proc: subprocess.Popen | None = None
        self.summary: dict[str, Any] | None = None

    def start(self) -> Simulator:
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=self.env)
        return self

    def stop(self) -> dict[str, Any]:
        if self.proc is not None:
            if self.proc.poll() is None:
                # SIGTERM, not SIGINT: a run started in the background inherits an ignored SIGINT
                self.proc.send_signal(signal.SIGTERM)
            out, err = self.proc.communicate(timeout=15)
            self.proc = None
            lines = [line for line in out.splitlines() if line.startswith("{")]
            self.summary = json.loads(lines[-1]) if lines else {"error": err[-2000:]}
        return self.summary or {}


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
        try:
            future = asyncio.run_coroutine_threadsafe(self._ws.send(json.dumps(message)), self._loop)
        except RuntimeError as exc:  # the loop closed after the console closed the connection
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
