"""Ports, waits, logs and stopping children: what every launcher of the stack needs.

Every process is started with its output appended to a log file of its own
(``tail`` shows the end of it when something fails) and stopped by its own
``Popen``, never by name: the machine is shared with other runs.
"""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
_VENV_BIN = ROOT / ".venv" / "bin"
#: The checkout's virtualenv when there is one (scripts/setup makes it), else this interpreter.
PYTHON = str(_VENV_BIN / "python") if (_VENV_BIN / "python").exists() else sys.executable
DAPHNE = str(_VENV_BIN / "daphne") if (_VENV_BIN / "daphne").exists() else \
    str(Path(sys.executable).with_name("daphne"))
#: The console's agent message limit (console/settings.py's default of
#: WSGI_FLEET_AGENT_MAX_MESSAGE); daphne's message and frame limits are set to
#: it, as the README's command does (daphne's own default, 1 MiB, is below it).
AGENT_MAX_MESSAGE = 4 << 20
#: Debian's chromium (scripts/setup installs it; ``playwright install`` is never used) and the
#: flags the browser tests and the page benchmark run it with.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]


def free_port() -> int:
    """A port the kernel has just handed out (ephemeral range): for a process started right away."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as daphne and Apache do
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(low: int = 20000, high: int = 32000) -> int:
    """A free port below the usual ephemeral range (32768+), so that our own outgoing
    connections cannot take it between the check and the bind, nor while a server that
    is restarted on the same port is down."""
    for _ in range(200):
        port = random.randrange(low, high)  # noqa: S311 - a port, not a secret
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free TCP port found in {low}-{high}")


def accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    """True when something accepts TCP connections on the port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout):
        return True
    return False


def wait_until(predicate: Callable[[], object], timeout: float, step: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log, headed by its name: for the message of a failure."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} unreadable)"
    return f"--- {path.name}, last lines ---\n" + "\n".join(text.splitlines()[-lines:])


def spawn(command: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None, cwd: Path = ROOT,
          stdout: int | IO[Any] | None = None, **kwargs: Any) -> subprocess.Popen[Any]:
    """Start ``command`` with its output (or only stderr, when ``stdout`` is given) appended to ``log``."""
    with open(log, "ab") as fh:  # the child keeps its own copy of the descriptor
        if stdout is None:
            return subprocess.Popen(list(command), stdout=fh, stderr=subprocess.STDOUT, cwd=cwd,
                                    env=None if env is None else dict(env), **kwargs)
        return subprocess.Popen(list(command), stdout=stdout, stderr=fh, cwd=cwd,
                                env=None if env is None else dict(env), **kwargs)


def stop_process(proc: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM, timeout: float = 15.0, *,
                 raise_on_kill: bool = False) -> int | None:
    """Send ``sig`` (SIGTERM: as an operator stops it) and wait; SIGKILL after ``timeout``.

    Returns the exit status. ``raise_on_kill``: re-raise the timeout after the
    kill, for a caller whose test fails when the process would not stop."""
    if proc is None:
        return None
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        if raise_on_kill:
            raise
        return proc.returncode
