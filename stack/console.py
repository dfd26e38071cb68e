"""The console as an operator runs it: settings from the environment, ``manage.py``, daphne workers.

``console_env`` is a production-like environment (DEBUG off, SQLite in the
work directory, Redis or the in-process store); ``Console`` runs
``manage.py migrate`` and one small ``manage.py shell -c`` that creates the
teams, hosts (each with an agent token) and users (with a password, and an
API token if asked), and starts ``daphne console.asgi:application`` workers
with the console's message limit, each on a port of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stack.procs import (
    AGENT_MAX_MESSAGE,
    DAPHNE,
    PYTHON,
    ROOT,
    accepts,
    free_port,
    port_is_free,
    spawn,
    stop_process,
    tail,
    wait_until,
)


def console_env(work: Path, *, base: Mapping[str, str] | None = None, redis_url: str | None = None,
                key_prefix: str | None = None, channel_prefix: str | None = None,
                settings: str = "console.settings", secret: str | None = None,
                allowed_hosts: str = "127.0.0.1,localhost", **extra: str) -> dict[str, str]:
    """The console's environment: ``base`` (default: PATH and a UTF-8 locale only, so that
    nothing of the caller's leaks in) plus production settings. No ``redis_url``: the
    in-process store. ``extra``: more variables, e.g. ``DATABASE_URL``."""
    env = dict(base) if base is not None else {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                                  "LC_ALL": "C.UTF-8"}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update({"DJANGO_SETTINGS_MODULE": settings, "DEBUG": "0", "SECURE_SSL_REDIRECT": "0",
                "DJANGO_SECRET_KEY": secret or "stack-only-" + secrets.token_hex(16),
                "ALLOWED_HOSTS": allowed_hosts, "SQLITE_PATH": str(work / "console.sqlite3"),
                "PYTHONUNBUFFERED": "1"})
    if redis_url:
        env["REDIS_URL"] = redis_url
    if key_prefix is not None:
        env["WSGI_FLEET_KEY_PREFIX"] = key_prefix
    if channel_prefix is not None:
        env["WSGI_FLEET_CHANNEL_PREFIX"] = channel_prefix
    env.update(extra)
    return env


SETUP_SCRIPT = """
import json, os
from django.contrib.auth.models import User
from console.fleet.models import AgentToken, ApiToken, Host, Team
spec = json.loads(os.environ["WF_STACK_SPEC"])
out = {"hosts": {}, "users": {}}
for team_name, team_spec in spec["teams"].items():
    team, _ = Team.objects.get_or_create(name=team_name)
    hosts = team_spec.get("hosts", {})
    for name in hosts:
        labels = {} if isinstance(hosts, list) else hosts[name]
        host = Host.objects.create(name=name, team=team, labels=labels)
        _, token = AgentToken.issue(host=host, note=spec["note"])
        out["hosts"][name] = {"id": host.pk, "token": token, "team": team_name}
    for name in team_spec.get("users", []):
        user = User.objects.create_user(name, password=spec["password"])
        team.members.add(user)
        out["users"][name] = {"id": user.pk, "team": team_name}
        if spec["api_tokens"]:
            out["users"][name]["token"] = ApiToken.issue(user=user, note=spec["note"])[1]
print("WF_STACK_RESULT " + json.dumps(out))
"""


class Worker:
    """One ``daphne console.asgi:application`` on ``port``; ``start`` again after a stop or a
    kill restarts it on the same port (its log goes on)."""

    def __init__(self, env: Mapping[str, str], port: int, log: Path, *, bind: str = "127.0.0.1",
                 max_frame: int | None = AGENT_MAX_MESSAGE, args: Sequence[str] = ()) -> None:
        """``max_frame=None`` leaves daphne's default frame limit (1 MiB), below the message limit;
        ``args``: more daphne options (``-v 1``, ``--access-log``)."""
        self.env, self.port, self.log, self.bind = dict(env), port, log, bind
        limit = self.env.get("WSGI_FLEET_AGENT_MAX_MESSAGE") or str(AGENT_MAX_MESSAGE)
        limits = ["--websocket-max-message-size", limit]
        if max_frame is not None:
            limits += ["--websocket-max-frame-size", str(max_frame)]
        self.command = [DAPHNE, "-b", bind, "-p", str(port), *args, *limits, "console.asgi:application"]
        self.proc: subprocess.Popen[Any] | None = None
        self.starts: list[float] = []  # seconds from spawn to accepting, per start

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def settled(self) -> bool:
        """It accepts connections, or it has exited."""
        return not self.running() or accepts(self.port, self.bind)

    def start(self, timeout: float = 30.0) -> Worker:
        """Spawn daphne and wait until it accepts; RuntimeError (with its log) if it does not."""
        if self.running():
            raise RuntimeError("daphne already running")
        if not wait_until(lambda: port_is_free(self.port, self.bind), 10, step=0.05):
            raise RuntimeError(f"port {self.port} still busy")
        t0 = time.monotonic()
        with open(self.log, "ab") as log:
            log.write(f"==== start on port {self.port} ====\n".encode())
        self.proc = spawn(self.command, self.log, env=self.env)
        if not wait_until(self.settled, timeout, step=0.05) or not self.running():
            raise RuntimeError(f"daphne did not start on {self.bind}:{self.port}\n{tail(self.log)}")
        self.starts.append(time.monotonic() - t0)
        return self

    def stop(self, timeout: float = 15.0, sig: int = signal.SIGTERM) -> None:
        """SIGTERM, as an operator's restart does (SIGKILL after ``timeout``)."""
        stop_process(self.proc, sig, timeout)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no close frames, no cleanup, like a crashed process."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


class Console:
    """One console deployment: its environment, its database and its daphne workers."""

    def __init__(self, work: Path, env: Mapping[str, str]) -> None:
        self.work, self.env = work, dict(env)
        self.workers: list[Worker] = []

    def manage(self, *args: str, extra_env: Mapping[str, str] | None = None,
               timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``manage.py ARGS`` in the console's environment; RuntimeError with its output if it fails."""
        result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env={**self.env, **(extra_env or {})},
                                capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args[:1])} failed ({result.returncode}):\n"
                               f"{result.stdout}\n{result.stderr}")
        return result

    def migrate(self) -> None:
        self.manage("migrate", "--no-input", "-v", "0")

    def setup(self, teams: Mapping[str, Mapping[str, Any]], *, password: str | None = None,
              api_tokens: bool = True, note: str = "stack") -> dict[str, Any]:
        """Create teams, hosts (with agent tokens) and users; migrate first.

        ``teams``: {team: {"hosts": [name, ...] or {name: labels}, "users": [name, ...]}}.
        Users get ``password`` (None: unusable) and, with ``api_tokens``, a user API token.
        Returns {"hosts": {name: {id, token, team}}, "users": {name: {id, team[, token]}}},
        in the order of ``teams``.
        """
        self.migrate()
        spec = {"teams": teams, "password": password, "api_tokens": api_tokens, "note": note}
        result = self.manage("shell", "-c", SETUP_SCRIPT, extra_env={"WF_STACK_SPEC": json.dumps(spec)})
        for line in result.stdout.splitlines():
            if line.startswith("WF_STACK_RESULT "):
                return dict(json.loads(line.split(" ", 1)[1]))
        raise RuntimeError(f"setup printed no result:\n{result.stdout}\n{result.stderr}")

    def write_token(self, token: str, name: str) -> Path:
        """A token file of mode 0600 (the agent refuses one others can read)."""
        path = self.work / f"{name}.token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        return path

    def worker(self, port: int | None = None, *, log: Path | None = None, **options: Any) -> Worker:
        """A new worker (not started) on ``port`` (default: a free one); options as ``Worker``'s."""
        port = port or free_port()
        made = Worker(self.env, port, log or self.work / f"daphne-{port}.log", **options)
        self.workers.append(made)
        return made

    def start_workers(self, count: int, timeout: float = 60.0, **options: Any) -> list[int]:
        """Stop the running workers, start ``count`` new ones (in parallel); returns their ports."""
        self.stop_workers()
        made = [self.worker(**options) for _ in range(count)]
        for worker in made:
            worker.proc = spawn(worker.command, worker.log, env=worker.env)
        for worker in made:
            if not wait_until(worker.settled, timeout, step=0.05) or not worker.running():
                raise RuntimeError(f"daphne did not start on {worker.port}\n{tail(worker.log)}")
        return [worker.port for worker in made]

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []
