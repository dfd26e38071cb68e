"""A redis-server of the test's own, on a free port: tests that stop, restart or reconfigure
Redis must never touch the shared one at 6379."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import redis

from support.required import missing


class OwnRedis:
    """redis-server in ``directory`` with ``options``, its config lines (``appendonly="yes"``,
    ``rename_command=("CONFIG", "")``); ``restart`` keeps the port, and the data only as far
    as that config keeps it."""

    def __init__(self, directory: Path, **options: str | tuple[str, ...]) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.directory = directory
        self.options = {"save": "", "appendonly": "no", **options}
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        for name, value in self.options.items():
            args += [f"--{name.replace('_', '-')}", *((value,) if isinstance(value, str) else value)]
        try:
            self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except FileNotFoundError:
            missing("no redis-server on PATH")
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        deadline = time.monotonic() + 20
        try:
            while True:
                try:
                    client.ping()
                    return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGKILL: what a crash does; the AOF, if any, is as the fsync policy left it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def signal(self, sig: int) -> None:
        """SIGSTOP, SIGCONT, ...: a Redis that hangs rather than dies."""
        assert self.process is not None
        os.kill(self.process.pid, sig)

    def restart(self) -> None:
        self.stop()
        self.start()
