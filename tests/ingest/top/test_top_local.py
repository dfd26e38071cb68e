"""``top --local`` against a real agent fed by the real simulator, with no console anywhere:
``--once --json`` and the terminal, and the exit code when no agent is there."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from terminal import Terminal
from top_helpers import ROOT, top, top_json

from stack.procs import wait_until


@pytest.fixture(scope="module")
def agent() -> Iterator[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="wf-top-local-", dir="/tmp"))
    sock, local = tmp / "t.sock", tmp / "top.sock"
    serve = [sys.executable, "-m", "ingest", "serve", "--socket", str(sock), "--local-senders",
             "--log-interval", "0", "--hostname", "box-1", "--local-socket", str(local)]
    procs = [subprocess.Popen(serve, cwd=ROOT, stderr=subprocess.DEVNULL)]
    try:
        assert wait_until(lambda: sock.exists() and local.exists(), 15)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "ingest", "simulate", "--socket", str(sock), "--groups", "2",
             "--processes", "2", "--threads", "4", "--seed", "9", "--restart-probability", "0",
             "--duration", "120"],
            cwd=ROOT, stdout=subprocess.DEVNULL))
        time.sleep(12)  # a whole header span of data
        yield {"local": str(local), "dir": tmp}
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for child in tmp.iterdir():
            child.unlink()
        tmp.rmdir()


def test_once_json_reads_the_agent_on_this_box(agent):
    code, snap = top_json("--local", agent["local"])
    assert code == 0, snap
    assert snap["host"] == "box-1" and snap["span"]["span"] == 10
    assert snap["metrics"]["requests"] > 0 and snap["metrics"]["processes"] > 3
    rows = [r for r in snap["processes"] if r["state"] == "running"]
    assert sorted(r["pid"] for r in rows) == [40000, 40001, 40002, 40003], rows
    assert {r["group"] for r in rows} == {"app0", "app1"}
    if all(r["span"] == 10 for r in rows):  # the rows' seconds are the header's
        assert sum(r["requests"] for r in rows) == snap["metrics"]["requests"]
    text = top("--local", agent["local"], "--once")
    assert text.returncode == 0 and "host=box-1" in text.stdout.splitlines()[0], text.stderr


def test_the_terminal_shows_the_local_agent(agent):
    term = Terminal([sys.executable, "-m", "ingest", "top", "--local", agent["local"]],
                    env={"PYTHONPATH": str(ROOT)})
    try:
        term.wait_for(lambda s: "host=box-1" in s and "req/s" in s and "[live]" in s)
        term.keys("p")
        term.wait_for(lambda s: "processes: 4" in s and "40003" in s)
        term.keys("f")
        term.wait_for(lambda s: "1 hosts" in s and "box-1" in s and "online" in s)
        term.keys("q")
    finally:
        term.close()


def test_no_agent_there_exits_2_and_says_so(tmp_path):
    done = top("--local", str(tmp_path / "none.sock"), "--once", "--timeout", "2")
    assert done.returncode == 2 and done.stdout == ""
    assert "nothing listens there" in done.stderr and done.stderr.count("\n") == 1, done.stderr
