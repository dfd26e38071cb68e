"""The README's production recipe, run as printed.

The "The console" section's shell block is run line by line by bash, with only what a
test must change: the directories (/etc/wsgi-fleet, /var/lib/wsgi-fleet) under a
temporary one, Redis on a port of its own (a private redis-server with the persistence
the README asks for), `createsuperuser` without its prompt, and daphne on a free port in
the background. Then what a user would check: `check --deploy` is clean, a plain request
is redirected to https once, a request the proxy marks as https gets the login page, and
the agent command of "On web-03" (with ws:// to that port, as there is no TLS proxy here;
tests/deploy/ runs it through nginx and Apache over wss with --ca-file) streams to it.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
from pathlib import Path

import pytest
from support.required import missing

from stack import ROOT, free_port, spawn, stop_process, tail, wait_until
from stack.redis_server import RedisServer

README = (ROOT / "README.md").read_text()


def block(after: str) -> str:
    """The first ```sh block after the heading or line ``after``."""
    rest = README[README.index(after):]
    match = re.search(r"```sh\n(.*?)```", rest, re.S)
    assert match, f"no sh block after {after!r}"
    return match.group(1).replace("\\\n", " ")


def adapted(script: str, work: Path, redis_url: str, port: int) -> str:
    """The README's lines with the test's paths, Redis and port: nothing else changes."""
    out = script.replace("/etc/wsgi-fleet", str(work / "etc"))
    out = out.replace("/var/lib/wsgi-fleet", str(work / "var")).replace("redis://127.0.0.1:6379/0", redis_url)
    out = out.replace("$PWD/.venv/bin", str(ROOT / ".venv" / "bin"))
    out = out.replace("createsuperuser", "createsuperuser --noinput")
    return out.replace("-p 8000", f"-p {port}")


def get(port: int, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path, headers={"Host": "console.example", **(headers or {})})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_the_readme_console_and_agent_recipe_works_as_printed(tmp_path):
    (tmp_path / "redis").mkdir()
    try:
        redis = RedisServer(tmp_path / "redis", appendonly="yes", appendfsync="everysec",
                            maxmemory_policy="noeviction").start()
    except FileNotFoundError as exc:
        missing(f"redis-server: {exc}")
        pytest.skip("no redis-server")
    port = free_port()
    lines = adapted(block("## The console"), tmp_path, redis.url, port).strip().splitlines()
    daphne_line = next(line for line in lines if line.startswith("daphne "))
    setup = "\n".join(line for line in lines if line is not daphne_line)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path),
           "DJANGO_SUPERUSER_USERNAME": "admin", "DJANGO_SUPERUSER_EMAIL": "admin@console.example",
           "DJANGO_SUPERUSER_PASSWORD": "a long admin password"}
    script = f"set -euo pipefail\ncd {ROOT}\n{setup}\n"
    daphne = agent = None
    try:
        # the environment the README's lines made (its PATH too), for daphne's line after them
        names = "PATH|DJANGO|WSGI|ALLOWED|REDIS|SQLITE|STATIC|WHITENOISE|USE_"
        check = ("python manage.py check --deploy --fail-level WARNING\n"
                 f"env | grep -E '^({names})' > \"$HOME/console.env\"")
        done = subprocess.run(["bash", "-c", script + check], env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "System check identified no issues" in done.stdout, done.stdout
        assert (tmp_path / "var" / "console.sqlite3").is_file()  # where the README says it lives
        token = tmp_path / "etc" / "token"
        assert token.stat().st_mode & 0o077 == 0, "the host's token file is readable by others"
        console_env = dict(line.split("=", 1) for line in (tmp_path / "console.env").read_text().splitlines())
        daphne = spawn(["bash", "-c", f"cd {ROOT} && exec {daphne_line}"], tmp_path / "daphne.log",
                       env={**env, **console_env})

        def up() -> bool:
            try:
                return get(port, "/accounts/login/", {"X-Forwarded-Proto": "https"}).status == 200
            except OSError:
                return False

        assert wait_until(up, 30), tail(tmp_path / "daphne.log")
        plain = get(port, "/accounts/login/")  # plain http, as a user typing the address
        assert plain.status == 301 and plain.getheader("Location") == "https://console.example/accounts/login/"
        https = get(port, "/accounts/login/", {"X-Forwarded-Proto": "https"})  # through the TLS proxy
        hsts = https.getheader("Strict-Transport-Security") or ""
        assert https.status == 200 and "max-age=31536000" in hsts, hsts

        # On web-03: the README's agent command, to this console over ws:// (no TLS proxy here).
        agent_line = adapted(block("On web-03"), tmp_path, redis.url, port).strip()
        agent_line = agent_line.replace("wss://console.example/", f"ws://127.0.0.1:{port}/")
        agent_line = agent_line.replace("--socket-group www-data", "--socket-group root")
        agent_line = agent_line.replace("/run/", f"{tmp_path}/run/")
        agent = spawn(["bash", "-c", f"mkdir -p {tmp_path}/run/wsgi-fleet && exec {agent_line}"],
                      tmp_path / "agent.log", env={"PATH": console_env["PATH"], "HOME": str(tmp_path)})
        seen = ["from console.fleet.models import Host; import json; "
                "print(json.dumps(Host.objects.get(name='web-03').last_seen is not None))"]

        def host_seen() -> bool:
            out = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "manage.py", "shell", "-c", *seen],
                                 cwd=ROOT, env={**env, **console_env}, capture_output=True, text=True,
                                 timeout=60, check=False)
            return out.returncode == 0 and json.loads(out.stdout.strip().splitlines()[-1])

        assert wait_until(host_seen, 40, step=1), tail(tmp_path / "agent.log")
    finally:
        if agent is not None:
            stop_process(agent)
        if daphne is not None:
            stop_process(daphne)
        redis.stop()
