"""``scripts/demo``'s command, as a newcomer runs it: ``manage.py demo`` on the embedded
defaults prints the URL and the login, serves the login page, its three hosts go live
through real agents that start without false warnings, and SIGTERM (a closed terminal, a
service manager) stops every process it started, as Ctrl-C does."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from stack import ROOT, free_port, wait_until

QLEN = Path("/proc/sys/net/unix/max_dgram_qlen")


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True,
                         check=False)
    return [int(p) for p in out.stdout.split()]


def test_the_demo_prints_its_login_goes_live_without_false_warnings_and_stops_on_sigterm(tmp_path):
    port = free_port()
    env = {**os.environ, "DEBUG": "1", "SQLITE_PATH": str(tmp_path / "demo.sqlite3"), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the demo's own settings (console.settings), not the tests'
    qlen = QLEN.read_text() if QLEN.exists() else None
    out = tmp_path / "demo.out"
    with open(out, "w") as fh:
        demo = subprocess.Popen([sys.executable, "manage.py", "demo", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        assert wait_until(lambda: "Ctrl-C stops" in out.read_text(), 60), out.read_text()
        text = out.read_text()
        assert f"wsgi-fleet console: http://127.0.0.1:{port}/" in text
        login = re.search(r"login: demo / (\S+)", text)
        assert login, text
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=10) as response:
            assert response.status == 200
        logs = Path(re.search(r"logs: (\S+);", text).group(1))
        query = ("from console.fleet.models import Host; import json; "
                 "print(json.dumps(sorted(h.name for h in Host.objects.exclude(last_seen=None))))")

        def live() -> list[str]:
            done = subprocess.run([sys.executable, "manage.py", "shell", "-c", query], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=60, check=False)
            return json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else []

        assert wait_until(lambda: len(live()) == 3, 40, step=1), live()
        # the terminal monitor's line works as printed: one snapshot of the first demo host
        line = shlex.split(re.search(r"terminal: (.+ -m ingest top .+)", text).group(1))
        assert line[-2:] == ["--host", "demo-web-1"] and os.access(line[0], os.X_OK), line

        def top_once() -> subprocess.CompletedProcess:  # as printed, from anywhere
            return subprocess.run([*line, "--once", "--json"], cwd="/", env=env,
                                  capture_output=True, text=True, timeout=60, check=False)
        assert wait_until(lambda: top_once().returncode == 0, 30, step=1), top_once().stderr
        assert json.loads(top_once().stdout)["host"] == "demo-web-1"
        for log in logs.glob("*-agent.log"):
            warned = [line for line in log.read_text().splitlines() if " WARNING " in line]
            # only the kernel's queue may be said, where the demo could not raise it
            assert all("max_dgram_qlen" in line for line in warned), warned
        started = children_of(demo.pid)
        assert len(started) >= 7  # daphne, three agents, three simulators
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(40) == 0
        assert wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in started), 20), started
    finally:
        if demo.poll() is None:
            demo.kill()
        if qlen is not None and os.access(QLEN, os.W_OK):
            QLEN.write_text(qlen)  # as the machine had it: the demo raised it for the demo's sake
