"""Agents and simulated fleets as processes: ``python -m ingest serve`` and ``python -m ingest simulate``.

An ``Agent`` is started and waited for until it has bound its datagram
socket (a simulator sending earlier would lose its first datagrams,
PROCESS_STARTED included, which are never re-sent); a ``Simulator`` then
feeds that socket in real time until it is stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stack.procs import PYTHON, ROOT, spawn, stop_process, tail, wait_until


class Agent:
    """``python -m ingest serve --console URL --token-file FILE`` on ``sock``, logging to ``log``.

    Options left at None are left out of the command (the agent's defaults):
    ``socket_mode``, ``log_level``; ``stats`` writes ``--stats-file``,
    ``spool`` gives it ``--spool-dir``. ``env`` is added to this process's
    environment (default) or, with ``base_env``, to that one.
    """

    def __init__(self, work: Path, name: str, *, console_url: str, token_file: Path,
                 hostname: str | None = None, sock: Path | None = None, spool: bool = False,
                 stats: bool = False, socket_mode: str | None = None, local_senders: bool = False,
                 log_level: str | None = None,
                 log_interval: float | str = 0, log: Path | None = None,
                 env: Mapping[str, str] | None = None, base_env: Mapping[str, str] | None = None) -> None:
        self.work, self.name = work, name
        self.env = {**(os.environ if base_env is None else base_env), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.sock = sock or work / f"{name}.sock"
        self.stats_file = work / f"{name}.stats.json"
        self.log = log or work / f"{name}.agent.log"
        self.spool_dir = work / f"{name}.spool" if spool else None
        self.cmd = [PYTHON, "-m", "ingest", *(["--log-level", log_level] if log_level else []),
                    "serve", "--socket", str(self.sock),
                    *(["--socket-mode", socket_mode] if socket_mode else []),
                    *(["--local-senders"] if local_senders else []),
                    "--console", console_url, "--token-file", str(token_file),
                    "--hostname", hostname or name,
                    *(["--stats-file", str(self.stats_file)] if stats else []),
                    "--log-interval", str(log_interval)]
        if self.spool_dir is not None:
            self.cmd += ["--spool-dir", str(self.spool_dir)]
        self.proc: subprocess.Popen[Any] | None = None
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 15.0) -> Agent:
        """Spawn the agent and wait until its socket exists; RuntimeError (with its log) if not."""
        proc = self.proc = spawn(self.cmd, self.log, env=self.env, cwd=ROOT)
        if not wait_until(lambda: self.sock.exists() or proc.poll() is not None, timeout):
            raise RuntimeError(f"agent {self.name} did not bind {self.sock}\n{tail(self.log)}")
        if proc.poll() is not None:
            raise RuntimeError(f"agent {self.name} exited {proc.returncode}\n{tail(self.log)}")
        return self

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def connections(self) -> int:
        """How often it has connected to the console (its log says so each time)."""
        return self.log_text().count("connected to the console as host")

    def stop(self, timeout: float = 40.0, sig: int = signal.SIGTERM) -> dict[str, Any]:
        """``sig`` (SIGTERM: the agent drains to the console for up to 10 s), then its stats file
        if it writes one (else {}). A timeout kills it and raises."""
        if self.proc is not None:
            self.returncode = stop_process(self.proc, sig, timeout, raise_on_kill=True)
            self.proc = None
        return json.loads(self.stats_file.read_text()) if "--stats-file" in self.cmd else {}

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


class Simulator:
    """``python -m ingest simulate --socket SOCK ARGS`` in real time.

    With a ``log`` its output goes there; without one, SIGTERM ends it and
    ``stop`` returns its JSON summary (the last line of its stdout).
    """

    def __init__(self, sock: Path, *, processes: int | None = 2, groups: int | None = 2,
                 seed: int | None = 0, extra: Sequence[str] = (), log: Path | None = None,
                 env: Mapping[str, str] | None = None, base_env: Mapping[str, str] | None = None) -> None:
        self.env = {**(os.environ if base_env is None else base_env), **(env or {})}
        shape = [*(["--processes", str(processes)] if processes is not None else []),
                 *(["--groups", str(groups)] if groups is not None else []),
                 *(["--seed", str(seed)] if seed is not None else [])]
        self.cmd = [PYTHON, "-m", "ingest", "simulate", "--socket", str(sock), *shape, *extra]
        self.log = log
        self.proc: subprocess.Popen[Any] | None = None
        self.summary: dict[str, Any] | None = None

    def start(self) -> Simulator:
        if self.log is not None:
            self.proc = spawn(self.cmd, self.log, env=self.env, cwd=ROOT)
        else:
            self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True, env=self.env)
        return self

    def stop(self, timeout: float = 15.0) -> dict[str, Any]:
        """SIGTERM, not SIGINT: a run started in the background inherits an ignored SIGINT."""
        if self.proc is not None:
            if self.log is not None:
                stop_process(self.proc, signal.SIGTERM, timeout)
                self.proc = None
                return {}
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            out, err = self.proc.communicate(timeout=timeout)
            self.proc = None
            lines = [line for line in out.splitlines() if line.startswith("{")]
            self.summary = json.loads(lines[-1]) if lines else {"error": err[-2000:]}
        return self.summary or {}
