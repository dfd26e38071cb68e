"""``manage.py demo``: the console with a live demo fleet, on whatever store is configured.

Creates (or reuses) a demo team, a demo user and three demo hosts, issues
fresh agent tokens, then runs daphne and, per host, a real agent
(``python -m ingest serve --console ...``) fed by ``python -m ingest
simulate``: the same path a production host takes, only the mod_wsgi
processes are simulated.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from console.fleet.models import AgentToken, Host, Team

DEMO_HOSTS = (
    ("demo-web-1", {"env": "demo", "role": "web"}, ["--groups", "2", "--processes", "3", "--threads", "4"]),
    ("demo-web-2", {"env": "demo", "role": "web"}, ["--groups", "1", "--processes", "4", "--threads", "8"]),
    ("demo-api-1", {"env": "demo", "role": "api"}, ["--groups", "2", "--processes", "2", "--threads", "16",
                                                    "--slow-probability", "0.2"]),
)


#: daphne's default of 1 MiB is below the 4 MiB the console tells agents they may send.
MAX_MESSAGE = settings.WSGI_FLEET["AGENT_MAX_MESSAGE"]


class Command(BaseCommand):
    help = "Run the console with a demo team, user and three simulated hosts (Ctrl-C stops everything)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--bind", default="127.0.0.1")
        parser.add_argument("--password", help="demo user's password (default: a new random one)")

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        password = options["password"] or secrets.token_urlsafe(9)
        team, _ = Team.objects.get_or_create(name="demo")
        user, _ = User.objects.get_or_create(username="demo")
        user.set_password(password)
        user.save()
        team.members.add(user)
        workdir = Path(tempfile.mkdtemp(prefix="wsgi-fleet-demo-"))
        url = f"http://{options['bind']}:{options['port']}/"
        children: list[subprocess.Popen] = []
        try:
            children.append(self.spawn(["daphne", "-b", options["bind"], "-p", str(options["port"]),
                                        "--websocket-max-message-size", str(MAX_MESSAGE),
                                        "--websocket-max-frame-size", str(MAX_MESSAGE),
                                        "console.asgi:application"], workdir / "daphne.log"))
            self.wait_for_port(options["bind"], options["port"], children[0])
            for name, labels, shape in DEMO_HOSTS:
                children += self.start_host(name, labels, shape, team, workdir, url)
            store = "Redis at " + settings.WSGI_FLEET["REDIS_URL"] if settings.WSGI_FLEET["REDIS_URL"] else \
                "in-process store (single process; set REDIS_URL for Redis)"
            self.stdout.write(self.style.SUCCESS(f"\nwsgi-fleet console: {url}"))
            self.stdout.write(f"login: demo / {password}")
            self.stdout.write(f"hosts: {', '.join(h[0] for h in DEMO_HOSTS)}; store: {store}")
            self.stdout.write(f"logs: {workdir}; Ctrl-C stops the console and the demo agents\n")
            self.supervise(children)
        except KeyboardInterrupt:
            pass
        finally:
            for child in reversed(children):
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(15)
                except subprocess.TimeoutExpired:
                    child.kill()

    def spawn(self, command: list[str], log: Path) -> subprocess.Popen:
        if command[0] == "daphne":
            command = [str(Path(sys.executable).with_name("daphne")), *command[1:]]
        with open(log, "ab") as out:
            return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR,
                                    env=os.environ.copy())

    def start_host(self, name: str, labels: dict[str, str], shape: list[str], team: Team, workdir: Path,
                   url: str) -> list[subprocess.Popen]:
        host, _ = Host.objects.get_or_create(name=name, defaults={"team": team, "labels": labels})
        host.agent_tokens.active().update(revoked=host.created)  # the old demo run's token
        _, token = AgentToken.issue(host=host, note="demo")
        token_file = workdir / f"{name}.token"
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        sock = workdir / f"{name}.sock"
        python = sys.executable
        agent = self.spawn([python, "-m", "ingest", "serve", "--socket", str(sock), "--socket-mode", "0600",
                            "--console", url, "--token-file", str(token_file), "--hostname", name,
                            "--log-interval", "30"], workdir / f"{name}-agent.log")
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        simulator = self.spawn([python, "-m", "ingest", "simulate", "--socket", str(sock), *shape,
                                "--seed", str(zlib.crc32(name.encode()) % 1000)],
                               workdir / f"{name}-simulate.log")
        return [agent, simulator]

    @staticmethod
    def wait_for_port(host: str, port: int, daphne: subprocess.Popen, timeout: float = 20.0) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if daphne.poll() is not None:
                raise SystemExit(f"demo: the console could not start on {host}:{port} (port in use?); "
                                 "see daphne.log, or pass --port")
            try:
                socket.create_connection((host, port), 0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"demo: the console did not start on {host}:{port}; see its log")

    def supervise(self, children: list[subprocess.Popen]) -> None:
        while True:
            for child in children:
                if child.poll() is not None:
                    raise SystemExit(f"demo: {' '.join(child.args[:4])} exited with {child.returncode}")
            time.sleep(1)
