"""A private redis-server on a free port, for a test or a benchmark that owns its Redis.

Tests that stop, restart, pause or reconfigure Redis, and benchmarks that
FLUSHALL it and read INFO and MEMORY, must never touch the shared one at
6379. Readiness is a raw ``PING`` (no client library needed): ``-LOADING``
while an AOF is replayed counts as not ready yet.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from stack.procs import free_port


class RedisServerMissing(FileNotFoundError):
    """There is no redis-server on PATH."""


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5) as conn:
            conn.settimeout(0.5)
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """redis-server in ``directory`` with ``options``, its config lines (``appendonly="yes"``,
    ``rename_command=("CONFIG", "")``); ``restart`` keeps the port, and the data only as far
    as that config keeps it. ``log``: a file for its output (else discarded)."""

    def __init__(self, directory: Path, *, log: Path | None = None,
                 **options: str | tuple[str, ...]) -> None:
        self.port = free_port()
        self.directory = directory
        self.log = log
        self.options: dict[str, str | tuple[str, ...]] = {"save": "", "appendonly": "no", **options}
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 20.0) -> RedisServer:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        for name, value in self.options.items():
            args += [f"--{name.replace('_', '-')}", *((value,) if isinstance(value, str) else value)]
        try:
            if self.log is None:
                self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            else:
                with open(self.log, "ab") as out:
                    self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        except FileNotFoundError as exc:
            raise RedisServerMissing("no redis-server on PATH") from exc
        deadline = time.monotonic() + timeout
        while not _pong(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode} on port {self.port}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer PING on port {self.port} in {timeout} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """SIGKILL: what a crash does; the AOF, if any, is as the fsync policy left it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    kill = stop

    def shutdown(self, timeout: float = 15.0) -> None:
        """SIGTERM, as at the end of a benchmark (redis-server exits cleanly)."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None

    def signal(self, sig: int) -> None:
        """SIGSTOP, SIGCONT, ...: a Redis that hangs rather than dies."""
        assert self.process is not None
        os.kill(self.process.pid, sig)

    def restart(self) -> None:
        self.stop()
        self.start()

