"""The built wheel, installed as a user installs it, outside the checkout.

``pip wheel .`` makes the one wheel; a fresh virtualenv with it and no extra is the agent
(no Django: a web host needs none), another with ``[console]`` is the console, run from a
directory that is not the checkout: migrate, collectstatic, createhost, daphne serving the
login page and its static files, and the installed agent streaming to it until the host
shows as seen. The version is the one ``ingest.__version__`` says, everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from ingest import __version__
from stack import ROOT, free_port, spawn, stop_process, tail, wait_until

#: The environment of a user's shell: none of the checkout's (no PYTHONPATH, no settings module).
CLEAN = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LC_ALL": "C.UTF-8"}


def run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env={**CLEAN, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, ROOT, cwd=dist)
    (found,) = dist.glob("wsgi_fleet-*.whl")
    assert found.name.startswith(f"wsgi_fleet-{__version__}-")
    return found


def venv(where: Path, wheel: Path, extra: str = "") -> Path:
    run(sys.executable, "-m", "venv", where, cwd=where.parent)
    run(where / "bin" / "pip", "install", "-q", "--disable-pip-version-check", f"{wheel}{extra}",
        cwd=where.parent)
    return where / "bin"


def test_the_agent_installs_without_django(wheel, tmp_path):
    bin_dir = venv(tmp_path / "agent", wheel)
    said = run(bin_dir / "wsgi-fleet-agent", "--version", cwd=tmp_path).strip()
    assert said == f"wsgi-fleet agent {__version__}"
    probe = subprocess.run([bin_dir / "python", "-c", "import django"], capture_output=True, cwd=tmp_path,
                           env=CLEAN, check=False)
    assert probe.returncode != 0, "the agent's install pulled in Django"


def test_the_console_runs_from_the_wheel_outside_the_checkout(wheel, tmp_path):
    bin_dir = venv(tmp_path / "console", wheel, "[console]")
    home = tmp_path / "site"
    home.mkdir()
    env = {"DEBUG": "1", "SQLITE_PATH": str(home / "fleet.sqlite3"), "STATIC_ROOT": str(home / "static"),
           "WHITENOISE_USE_FINDERS": "0"}
    console = bin_dir / "wsgi-fleet-console"
    run(console, "migrate", "--noinput", cwd=home, env=env)
    run(console, "collectstatic", "--noinput", cwd=home, env=env)
    assert (home / "static" / "console" / "host.js").is_file(), "the wheel's static files were not collected"
    token_file = home / "web-03.token"
    run(console, "createhost", "web-03", "--team", "payments", "--token-file", token_file, cwd=home, env=env)
    port = free_port()
    daphne = spawn([str(bin_dir / "daphne"), "-b", "127.0.0.1", "-p", str(port), "console.asgi:application"],
                   home / "daphne.log", env={**CLEAN, **env}, cwd=home)
    agent = None
    try:
        base = f"http://127.0.0.1:{port}"

        def login_page() -> bool:
            try:
                with urllib.request.urlopen(base + "/accounts/login/", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        assert wait_until(login_page, 30), tail(home / "daphne.log")
        with urllib.request.urlopen(base + "/accounts/login/", timeout=5) as response:
            page = response.read().decode()
        assert "id_username" in page  # the top-level templates came with the wheel
        links = [part.split('"')[0] for part in page.split('href="')[1:]]
        css = next(link for link in links if link.endswith(".css"))
        with urllib.request.urlopen(base + css, timeout=5) as response:
            assert response.status == 200 and len(response.read()) > 100
        # the agent of this very install streams to it: the host is seen, with the agent's version
        agent = spawn([str(bin_dir / "wsgi-fleet-agent"), "serve", "--socket", str(home / "t.sock"),
                       "--local-senders", "--console", base + "/", "--token-file", str(token_file),
                       "--log-interval", "0"], home / "agent.log", env=CLEAN, cwd=home)
        query = ("from console.fleet.models import Host; import json; h = Host.objects.get(name='web-03'); "
                 "print(json.dumps([h.last_seen is not None, h.agent_version]))")

        def seen() -> list:
            return json.loads(run(console, "shell", "-c", query, cwd=home, env=env).strip().splitlines()[-1])

        assert wait_until(lambda: seen()[0], 30, step=1), tail(home / "agent.log")
        assert seen()[1] == f"wsgi-fleet-agent {__version__}"
    finally:
        if agent is not None:
            stop_process(agent)
        stop_process(daphne)
