"""The benchmark's console: a private redis-server, a migrated SQLite database with hosts and
tokens, daphne workers with production settings (stack's RedisServer, Console and Worker).

Its own Redis, so that FLUSHALL between points, INFO and MEMORY see the
benchmark's keys only; the workers get ``-v 1 --access-log /dev/null`` so
that their logs hold what ``crashes`` counts and no line per request.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Any

from bench.console_load.common import CHANNEL_PREFIX, KEY_PREFIX
from stack import Console, RedisServer, console_env


class Env:
    """A private redis-server, a migrated SQLite database with hosts and tokens, daphne workers."""

    def __init__(self, tmp: Path, hosts: int, settings: str = "console.settings"):
        self.tmp = tmp
        self.redis = RedisServer(tmp, log=tmp / "redis.log", daemonize="no", loglevel="warning").start()
        self.redis_port = self.redis.port
        self.redis_url = self.redis.url
        self.env = console_env(tmp, base=os.environ, redis_url=self.redis_url, key_prefix=KEY_PREFIX,
                               channel_prefix=CHANNEL_PREFIX, settings=settings, secret="x",
                               allowed_hosts="127.0.0.1")
        self.console = Console(tmp, self.env)
        self.seed = self._seed(hosts)

    def _seed(self, n: int) -> dict[str, Any]:
        """Team "bench" with ``n`` hosts bench-000... (agent tokens) and the viewer's API token."""
        hosts = {f"bench-{i:03d}": {"env": "bench"} for i in range(n)}
        made = self.console.setup({"bench": {"users": ["bench-viewer"], "hosts": hosts}},
                                  note="bench.console_load")
        listed = [{"id": host["id"], "name": name, "token": host["token"]}
                  for name, host in made["hosts"].items()]
        return {"hosts": listed, "api_token": made["users"]["bench-viewer"]["token"], "user": "bench-viewer"}

    @property
    def workers(self) -> list[tuple[int, subprocess.Popen]]:
        """(port, process) of each running worker."""
        return [(w.port, w.proc) for w in self.console.workers if w.proc is not None]

    def start_workers(self, count: int) -> list[int]:
        return self.console.start_workers(count, args=["-v", "1", "--access-log", os.devnull])

    def stop_workers(self) -> None:
        self.console.stop_workers()

    def _log(self, port: int) -> Path:
        return self.tmp / f"daphne-{port}.log"

    def worker_log_tail(self, lines: int = 15) -> str:
        out = []
        for port, _ in self.workers:
            with contextlib.suppress(OSError):
                text = self._log(port).read_text(errors="replace").splitlines()
                out += [f"[{port}] {x}" for x in text[-lines:]]
        return "\n".join(out)

    def log_marks(self) -> list[int]:
        return [self._log(port).stat().st_size for port, _ in self.workers]

    def log_since(self, marks: list[int]) -> str:
        out = []
        for (port, _), mark in zip(self.workers, marks, strict=True):
            with open(self._log(port), "rb") as fh:
                fh.seek(mark)
                out.append(fh.read().decode(errors="replace"))
        return "\n".join(out)

    def redis_cli(self) -> Any:
        import redis

        return redis.Redis.from_url(self.redis_url)

    def flush(self) -> None:
        r = self.redis_cli()
        r.flushall()
        r.config_resetstat()
        r.close()

    def close(self) -> None:
        self.stop_workers()
        self.redis.shutdown()
