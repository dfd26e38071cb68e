"""``manage.py demo``: the console with a live demo fleet, on whatever store is configured.

Creates (or reuses) a demo team, a demo user and three demo hosts, issues
fresh agent tokens, then runs daphne and, per host, a real agent
(``python -m ingest serve --console ...``) fed by ``python -m ingest
simulate``: the same path a production host takes, only the mod_wsgi
processes are simulated. The processes are started by the repository's
stack launcher (stack/, shared with the tests and the benchmarks), imported
when the command runs: scripts/demo runs it from a checkout.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from console.fleet.models import AgentToken, ApiToken, Host, Team

if TYPE_CHECKING:
    from stack import Agent, Simulator

DEMO_HOSTS = (
    ("demo-web-1", {"env": "demo", "role": "web"}, ["--groups", "2", "--processes", "3", "--threads", "4"]),
    ("demo-web-2", {"env": "demo", "role": "web"}, ["--groups", "1", "--processes", "4", "--threads", "8"]),
    ("demo-api-1", {"env": "demo", "role": "api"}, ["--groups", "2", "--processes", "2", "--threads", "16",
                                                    "--slow-probability", "0.2"]),
)


#: daphne's default of 1 MiB is below the 4 MiB the console tells agents they may send.
MAX_MESSAGE = settings.WSGI_FLEET["AGENT_MAX_MESSAGE"]
#: The kernel's datagram queue per unix socket (net.unix.max_dgram_qlen) the demo asks for:
#: the default of 10 drops a simulated GC burst, and the demo would show loss from the start.
QLEN, QLEN_SYSCTL = 512, Path("/proc/sys/net/unix/max_dgram_qlen")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def raise_qlen() -> str:
    """Raise the queue before the agents bind (a socket keeps the length it was made with)
    where this user may; what was done, or why not, in words."""
    try:
        now = int(QLEN_SYSCTL.read_text())
    except (OSError, ValueError):
        return ""
    if now >= QLEN:
        return ""
    try:
        QLEN_SYSCTL.write_text(f"{QLEN}\n")
    except OSError:
        return (f"net.unix.max_dgram_qlen is {now}: bursts will show as loss (as on a real host with "
                f"that setting); as root: sysctl -w net.unix.max_dgram_qlen={QLEN}")
    return f"raised net.unix.max_dgram_qlen from {now} to {QLEN} (the kernel's datagram queue per socket)"


class Command(BaseCommand):
    help = "Run the console with a demo team, user and three simulated hosts (Ctrl-C stops everything)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--bind", default="127.0.0.1")
        parser.add_argument("--password", help="demo user's password (default: a new random one)")

    def handle(self, *args: Any, **options: Any) -> None:
        # stack (the repository's launcher, not part of the installed console) runs the processes
        from stack import Worker, stop_process

        call_command("migrate", interactive=False, verbosity=0)
        # SIGTERM (a service manager, a terminal closing) stops the demo as Ctrl-C does, children too.
        signal.signal(signal.SIGTERM, _interrupt)
        qlen_note = raise_qlen()
        password = options["password"] or secrets.token_urlsafe(9)
        team, _ = Team.objects.get_or_create(name="demo")
        user, _ = User.objects.get_or_create(username="demo")
        user.set_password(password)
        user.save()
        team.members.add(user)
        workdir = Path(tempfile.mkdtemp(prefix="wsgi-fleet-demo-"))
        url = f"http://{options['bind']}:{options['port']}/"
        daphne = Worker(os.environ, options["port"], workdir / "daphne.log", bind=options["bind"],
                        max_frame=MAX_MESSAGE)
        children: list[Agent | Simulator] = []
        try:
            try:
                daphne.start(timeout=20)
            except RuntimeError:
                raise SystemExit(f"demo: the console could not start on {options['bind']}:{options['port']} "
                                 "(port in use?); see daphne.log, or pass --port") from None
            for name, labels, shape in DEMO_HOSTS:
                children += self.start_host(name, labels, shape, team, workdir, url)
            store = "Redis at " + settings.WSGI_FLEET["REDIS_URL"] if settings.WSGI_FLEET["REDIS_URL"] else \
                "in-process store (single process; set REDIS_URL for Redis)"
            self.stdout.write(self.style.SUCCESS(f"\nwsgi-fleet console: {url}"))
            self.stdout.write(f"login: demo / {password}")
            self.stdout.write(f"terminal: {self.top_command(user, workdir, url)}")
            self.stdout.write(f"hosts: {', '.join(h[0] for h in DEMO_HOSTS)}; store: {store}")
            if qlen_note:
                self.stdout.write(qlen_note)
            self.stdout.write(f"logs: {workdir}; Ctrl-C stops the console and the demo agents\n")
            self.supervise([daphne.proc, *(child.proc for child in children)])
        except KeyboardInterrupt:
            pass
        finally:
            procs = [child.proc for child in children if child.proc is not None]
            for proc in reversed(procs):  # simulators and agents (which drain to the console), then it
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                stop_process(proc, signal.SIGTERM, 15)
            daphne.stop(15)

    @staticmethod
    def top_command(user: User, workdir: Path, url: str) -> str:
        """A fresh API token for the demo user in a file, and the ``top`` line that reads it."""
        from django.utils import timezone

        user.fleet_api_tokens.active().filter(note="demo").update(revoked=timezone.now())
        _, token = ApiToken.issue(user=user, note="demo")
        token_file = workdir / "top.token"
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        # this interpreter (the project's .venv): the system's python has none of the agent's packages
        return (f"{shlex.quote(sys.executable)} -m ingest top --console {url.rstrip('/')} "
                f"--token-file {token_file} --host {DEMO_HOSTS[0][0]}")

    def start_host(self, name: str, labels: dict[str, str], shape: list[str], team: Team, workdir: Path,
                   url: str) -> list[Agent | Simulator]:
        """The host's row and a fresh agent token; its agent, then the simulator feeding it."""
        from stack import Agent, Simulator

        host, _ = Host.objects.get_or_create(name=name, defaults={"team": team, "labels": labels})
        host.agent_tokens.active().update(revoked=host.created)  # the old demo run's token
        _, token = AgentToken.issue(host=host, note="demo")
        token_file = workdir / f"{name}.token"
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        agent = Agent(workdir, name, console_url=url, token_file=token_file, socket_mode="0600",
                      local_senders=True, log_interval=30, log=workdir / f"{name}-agent.log",
                      base_env=os.environ)
        with contextlib.suppress(RuntimeError):  # not bound yet: supervise() stops the demo if it died
            agent.start(timeout=5)
        simulator = Simulator(agent.sock, processes=None, groups=None,
                              seed=zlib.crc32(name.encode()) % 1000, extra=shape,
                              log=workdir / f"{name}-simulate.log", base_env=os.environ).start()
        return [agent, simulator]

    def supervise(self, children: list[subprocess.Popen[Any] | None]) -> None:
        while True:
            for child in children:
                if child is not None and child.poll() is not None:
                    args = child.args
                    shown = " ".join(map(str, args[:4])) if isinstance(args, list) else str(args)
                    raise SystemExit(f"demo: {shown} exited with {child.returncode}")
            time.sleep(1)
