"""The two consoles under test: ours (bench.console_load's Env, real agents) and the reference's."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.console_load import common as bc
from bench.console_load.env import Env
from stack import ROOT

REPO = ROOT
REF_BIN = REPO / ".venv-reference" / "bin" / "mod_wsgi-telemetry"
PASSWORD = "bench pages password 1"

# -- the two consoles ---------------------------------------------------------------------------


class Rig:
    """Every process of the run, stopped in ``close`` whatever happened."""

    def __init__(self, tmp: Path, hosts: int):
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.env = Env(tmp, hosts)  # redis + migrate + seed
        self.seed = self.env.seed
        code = ("from django.contrib.auth import get_user_model\n"
                f"u = get_user_model().objects.get(username={self.seed['user']!r})\n"
                f"u.set_password({PASSWORD!r}); u.save()\n")
        subprocess.run([bc.PY, "manage.py", "shell", "-c", code], cwd=REPO, env=self.env.env, check=True,
                       capture_output=True)
        self.port = self.env.start_workers(1)[0]
        self.base = f"http://127.0.0.1:{self.port}"
        self.agents: dict[int, subprocess.Popen] = {}
        self.ref: subprocess.Popen | None = None
        self.ref_port = 0
        self.ref_sock = tmp / "reference.sock"
        self.fed_at = time.monotonic()  # when the simulators started

    @property
    def daphne_pid(self) -> int:
        return self.env.workers[0][1].pid

    def spawn(self, cmd: list[str], log: str, **kwargs: Any) -> subprocess.Popen:
        proc = bc.spawn(cmd, self.tmp / log, cwd=REPO, **kwargs)
        self.procs.append(proc)
        return proc

    def start_agent(self, index: int) -> Path:
        """The agent of seed host ``index``, forwarding to the console; returns its socket."""
        host = self.seed["hosts"][index]
        sock, token = self.tmp / f"agent{index}.sock", self.tmp / f"token{index}"
        token.write_text(host["token"] + "\n")
        proc = self.spawn([bc.PY, "-m", "ingest", "--log-level", "WARNING", "serve", "--socket", str(sock),
                           "--console", f"ws://127.0.0.1:{self.port}/", "--token-file", str(token),
                           "--log-interval", "0", "--hostname", host["name"]], f"agent{index}.log")
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"agent {index} did not bind its socket")
            time.sleep(0.05)
        self.agents[index] = proc
        return sock

    def start_reference(self) -> None:
        """A fresh reference ``serve`` (empty state) on the same socket path and a new port."""
        self.stop(self.ref)
        self.ref_port = bc.free_port()
        self.ref = self.spawn([str(REF_BIN), "serve", "--listen", f"unix:{self.ref_sock}", "--socket-mode",
                               "0666", "--http-port", str(self.ref_port), "--log-level", "WARNING"],
                              f"reference-{self.ref_port}.log")
        bc.wait_port(self.ref_port, self.ref)
        deadline = time.monotonic() + 10
        while not self.ref_sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def reference_sim(self, processes: int) -> subprocess.Popen:
        return self.spawn([str(REF_BIN), "simulate", "--target", f"unix:{self.ref_sock}",
                           "--processes", str(processes)], "reference-sim.log")

    def logging_sim(self, sock: Path, groups: int, per_group: int, duration: float, out: Path,
                    hostname: str) -> subprocess.Popen:
        """bench.console_load's sender: logs each datagram's send time and second."""
        return self.spawn([bc.PY, "-m", "bench.console_load", "_sim", "--socket", str(sock),
                           "--groups", str(groups), "--processes", str(per_group),
                           "--duration", str(duration), "--hostname", hostname, "--out", str(out)],
                          f"sim-{out.stem}.log")

    def stop(self, proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
        if proc is not None:
            bc.stop_proc(proc, sig)

    def close(self) -> None:
        for proc in reversed(self.procs):  # senders and agents, then the reference
            with contextlib.suppress(Exception):
                self.stop(proc, signal.SIGINT if "serve" in proc.args and "ingest" in proc.args else
                          signal.SIGTERM)
        with contextlib.suppress(Exception):
            self.env.close()


# -- CPU of the Chromium process tree -----------------------------------------------------------


def chromium_cpu() -> tuple[float, int]:
    """CPU seconds of every chromium process below this one, and how many renderers there are."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry}/stat") as fh:
                text = fh.read()
            names[int(entry)] = text[text.index("(") + 1:text.rindex(")")]
            parents[int(entry)] = int(text.rpartition(")")[2].split()[1])
    mine, total, renderers = {os.getpid()}, 0.0, 0
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                changed = True
    for pid in mine:
        if names.get(pid, "").startswith("chrom"):
            cpu = bc.proc_cpu(pid)
            if cpu == cpu:
                total += cpu
            with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as fh:
                renderers += b"--type=renderer" in fh.read()
    return total, renderers
