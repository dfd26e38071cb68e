"""Real Apache + mod_wsgi-express 6.1.1 in tests, and a small load generator.

Needs root: Apache starts as root and runs its workers and mod_wsgi daemon
processes as www-data (it refuses to run them as root). Everything those
processes touch must be reachable by www-data: the WSGI app and the
telemetry socket, *including every parent directory*. pytest's ``tmp_path``
lies under mode-0700 directories, and a socket there silently receives
nothing, so ``work_dir`` makes its directory directly under /tmp with mode
0755. mod_wsgi is the one ``scripts/setup`` builds in /srv/mod-wsgi-venv
from Debian's Python (root's pyenv Python is unreadable for www-data).

Typical use (bind the receiver *before* Apache starts: datagrams sent while
nobody listens, PROCESS_STARTED included, are never re-sent)::

    skip_unless_available()
    with work_dir() as work:
        agent = Agent(AgentConfig(socket=str(work / "telemetry.sock"), socket_mode=0o666))
        agent.start()
        try:
            with ModWsgiServer(work, telemetry_socket=work / "telemetry.sock") as server:
                responses = send_mix(server.port, {"/": 10, "/nf": 2})
        finally:
            agent.stop()

Every wait has a deadline, ``stop`` returns only once the Apache parent has
exited (only then is the port free again), and Apache is only ever stopped
or signalled through its own pid file, never by process name.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from stack import pick_port, wait_until
from support.required import missing

VENV = Path("/srv/mod-wsgi-venv")
EXPRESS = VENV / "bin" / "mod_wsgi-express"
APP_SOURCE = Path(__file__).resolve().parents[1] / "data" / "wire-vectors" / "tools" / "app.py"
RUN_USER = RUN_GROUP = "www-data"
#: Apache and its daemon processes inherit this environment. It is kept
#: minimal so that the test runner's PYTHON*/pyenv variables never reach
#: mod_wsgi's embedded (Debian) Python; LC_ALL=C because Debian images have
#: no en_US.UTF-8 and would print setlocale warnings.
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "LANG": "C"}
DEFAULT_TIMEOUT = 20.0
USER_AGENT = "wsgi-fleet-tests/1.0"


class ApacheError(RuntimeError):
    """Apache could not be configured, started or stopped; the message has its error log."""


def skip_unless_available() -> None:
    """Skip the calling test when real Apache + mod_wsgi cannot be run here."""
    if os.geteuid() != 0:
        missing("real Apache + mod_wsgi tests must run as root: Apache starts as root and "
                "runs its mod_wsgi daemon processes as www-data")
    if not os.access(EXPRESS, os.X_OK):
        missing(f"{EXPRESS} is missing: run scripts/setup, which builds mod_wsgi 6.1.1 there")


@contextmanager
def work_dir(prefix: str = "wf-mw-") -> Iterator[Path]:
    """A fresh directory directly under /tmp, mode 0755, removed afterwards.

    Not ``tmp_path``/``mkdtemp`` as they are: www-data must be able to
    traverse to the app and the socket. ``dir="/tmp"`` so that a TMPDIR
    inside a private directory cannot hide it either.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        os.chmod(path, 0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie counts as gone (it holds no port).

    The Apache parent is not our child and PID 1 may reap it late, so
    ``kill(pid, 0)`` would keep succeeding after it has exited.
    """
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


class ModWsgiServer:
    """One Apache + mod_wsgi-express instance (``setup-server`` + ``apachectl``).

    ``work`` must be reachable by www-data (see ``work_dir``); the app is
    copied there as ``app.py`` before Apache starts (express restarts the
    daemons when its entry point changes). The server root is
    ``work/name``, so several instances can share one work directory.
    """

    def __init__(self, work: Path, *, telemetry_socket: str | os.PathLike[str] | None = None,
                 processes: int = 2, threads: int = 4, interval: float = 0.5,
                 slow_threshold: float | None = 1.0, embedded: bool = False, port: int | None = None,
                 extra_args: Sequence[str] = (), name: str = "server", app: Path = APP_SOURCE,
                 capture_user_agent: bool = False, timeout: float = DEFAULT_TIMEOUT):
        self.work = Path(work)
        self.telemetry_socket = None if telemetry_socket is None else os.fspath(telemetry_socket)
        self.processes = processes
        self.threads = threads
        self.interval = interval
        self.slow_threshold = slow_threshold
        self.embedded = embedded
        self.extra_args = list(extra_args)
        self.app_source = Path(app)
        self.app = self.work / "app.py"
        self.server_root = self.work / name
        self.capture_user_agent = capture_user_agent
        self.timeout = timeout
        self._auto_port = port is None
        self.port = port if port is not None else pick_port()
        self.pid: int | None = None
        self.timings: dict[str, float] = {}

    # -- paths and commands -------------------------------------------------------

    @property
    def apachectl(self) -> Path:
        return self.server_root / "apachectl"

    @property
    def pidfile(self) -> Path:
        return self.server_root / "httpd.pid"

    @property
    def error_log(self) -> Path:
        return self.server_root / "error_log"

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def setup_command(self) -> list[str]:
        cmd = [str(EXPRESS), "setup-server", str(self.app),
               "--host", "127.0.0.1", "--port", str(self.port),
               "--server-root", str(self.server_root),
               "--user", RUN_USER, "--group", RUN_GROUP, "--locale", "C.UTF-8",
               "--working-directory", str(self.work),
               "--processes", str(self.processes), "--threads", str(self.threads)]
        if self.telemetry_socket is not None:
            cmd += ["--telemetry-service", f"unix:{self.telemetry_socket}",
                    "--telemetry-interval", str(self.interval)]
            if self.slow_threshold:
                cmd += ["--slow-requests", str(self.slow_threshold)]
            if self.capture_user_agent:
                cmd += ["--telemetry-options", "+CaptureUserAgent"]
        if self.embedded:
            cmd.append("--embedded-mode")
        return cmd + self.extra_args

    def _run(self, cmd: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(cmd, env=ENV, cwd=self.work, umask=0o022, capture_output=True,
                                  text=True, timeout=max(timeout, 0.1), check=False)
        except subprocess.TimeoutExpired as exc:
            raise ApacheError(f"{' '.join(map(str, cmd[:2]))} did not finish within {timeout:.1f} s") from exc

    def error_log_tail(self, lines: int = 30) -> str:
        try:
            text = self.error_log.read_text(errors="replace")
        except OSError:
            return "(no error log)"
        return "error_log, last lines:\n" + "\n".join(text.splitlines()[-lines:])

    def _read_pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def _accepts_connections(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    # -- life cycle -----------------------------------------------------------------

    def _install_app(self) -> None:
        if not self.app.exists():
            shutil.copyfile(self.app_source, self.app)
        os.chmod(self.app, 0o644)
        if self.telemetry_socket is not None:
            parent = Path(self.telemetry_socket).parent
            # Fail loudly here: mod_wsgi itself never reports an unreachable socket.
            for directory in (parent, *parent.parents):
                if not directory.stat().st_mode & 0o001:
                    raise ApacheError(f"www-data cannot reach {self.telemetry_socket}: "
                                      f"{directory} is not searchable by others")

    def start(self) -> ModWsgiServer:
        """Configure and start Apache; return once it is running and accepting connections."""
        if self.pid is not None:
            raise ApacheError("already started")
        self._install_app()
        t0 = time.monotonic()
        deadline = t0 + self.timeout
        for attempt in range(3):
            setup = self._run(self.setup_command(), deadline - time.monotonic())
            if setup.returncode != 0:
                raise ApacheError(f"mod_wsgi-express setup-server failed (exit {setup.returncode}):\n"
                                  f"{setup.stdout}{setup.stderr}")
            started = self._run([str(self.apachectl), "start"], deadline - time.monotonic())
            if started.returncode == 0:
                break
            output = (started.stdout + started.stderr).strip()
            if self._auto_port and "Address already in use" in output and attempt < 2:
                self.port = pick_port()  # somebody took it since we looked; try another
                continue
            raise ApacheError(f"apachectl start failed (exit {started.returncode}): {output}\n"
                              f"{self.error_log_tail()}")
        self.timings["setup_and_start"] = time.monotonic() - t0
        try:
            if not wait_until(lambda: self._read_pid() is not None, deadline - time.monotonic()):
                raise ApacheError(f"{self.pidfile} did not appear within {self.timeout} s\n"
                                  f"{self.error_log_tail()}")
            self.pid = self._read_pid()
            if not wait_until(self._accepts_connections, deadline - time.monotonic(), step=0.05):
                raise ApacheError(f"Apache is not accepting connections on port {self.port} "
                                  f"after {self.timeout} s\n{self.error_log_tail()}")
        except BaseException:
            self._abort()
            raise
        self.timings["ready"] = time.monotonic() - t0
        return self

    def stop(self, timeout: float | None = None) -> None:
        """``apachectl stop``, then wait for the Apache parent to exit (the port is free after)."""
        pid = self.pid
        if pid is None:
            return
        self.pid = None
        timeout = self.timeout if timeout is None else timeout
        t0 = time.monotonic()
        result = self._run([str(self.apachectl), "stop"], timeout)
        if result.returncode != 0 and pid_alive(pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if not wait_until(lambda: not pid_alive(pid), timeout - (time.monotonic() - t0), step=0.05):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            raise ApacheError(f"Apache parent {pid} still running {timeout} s after stop; killed it "
                              f"(apachectl stop: exit {result.returncode} {result.stderr.strip()})\n"
                              f"{self.error_log_tail()}")
        self.timings["stop"] = time.monotonic() - t0

    def _abort(self) -> None:
        """Best-effort stop after a failed start."""
        if self.pid is None:
            self.pid = self._read_pid()
        if self.pid is None:
            with suppress(ApacheError):
                self._run([str(self.apachectl), "stop"], 5.0)
            return
        with suppress(ApacheError):
            self.stop(timeout=10.0)

    def __enter__(self) -> ModWsgiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# -- load --------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    path: str
    status: int | None  # None when the request failed; ``error`` says how
    error: str | None
    elapsed: float


def fetch(port: int, path: str, *, timeout: float = 30.0, user_agent: str = USER_AGENT) -> Response:
    """One GET on its own connection; never raises for network errors."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": user_agent, "Connection": "close"})
        with conn.getresponse() as resp:
            resp.read()
            return Response(path, resp.status, None, time.monotonic() - t0)
    except (OSError, http.client.HTTPException) as exc:
        return Response(path, None, f"{type(exc).__name__}: {exc}", time.monotonic() - t0)
    finally:
        conn.close()


def expand(mix: Mapping[str, int] | Iterable[tuple[str, int]]) -> list[str]:
    """``{"/": 2, "/nf": 1}`` -> ``["/", "/", "/nf"]`` (in the given order)."""
    items = mix.items() if isinstance(mix, Mapping) else mix
    return [path for path, count in items for _ in range(count)]


def send_mix(port: int, mix: Mapping[str, int] | Iterable[tuple[str, int]], *, concurrency: int = 16,
             timeout: float = 60.0, request_timeout: float = 30.0,
             user_agent: str = USER_AGENT) -> list[Response]:
    """Send exactly the requests in ``mix`` with up to ``concurrency`` at once.

    Requests start in the order given, so long ones listed first run
    concurrently with everything after them. Returns when every response
    is complete (so nothing is in flight any more), or raises TimeoutError.
    """
    paths = expand(mix)
    if not paths:
        return []
    pool = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(paths))), thread_name_prefix="load")
    finished = False
    try:
        futures = [pool.submit(fetch, port, p, timeout=request_timeout, user_agent=user_agent) for p in paths]
        _, pending = wait_futures(futures, timeout=timeout)
        if pending:
            raise TimeoutError(f"{len(pending)} of {len(paths)} requests still unanswered after {timeout} s")
        finished = True
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=finished, cancel_futures=True)


def tally(responses: Iterable[Response]) -> Counter[tuple[str, int | str | None]]:
    """(path, status) -> count; failed requests count under their error text."""
    return Counter((r.path, r.status if r.status is not None else r.error) for r in responses)
