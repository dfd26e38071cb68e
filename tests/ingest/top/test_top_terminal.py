"""The curses ``top`` in a real terminal (tmux), against a real console fed by a real agent:
every view and its keys, a pause that freezes, resize, scrolling, reconnecting after a restart."""

from __future__ import annotations

import re
import sys
import time

import pytest
from support.console import unique
from terminal import Terminal
from top_helpers import ROOT, fed_host, http_url, token_file


@pytest.fixture(scope="module")
def fed(module_deploy):
    """One console and host for the module: three processes in one group."""
    tag = unique()
    host, user = f"{tag}-web", f"{tag}-ann"
    dep = module_deploy({f"{tag}-t": {"hosts": [host], "users": [user]}})
    fed_host(dep, host, processes=3, groups=1)
    return dep, host, user


@pytest.fixture
def screen(fed):
    """A fresh ``top`` on the module's host, in a terminal of its own."""
    dep, host, user = fed
    term = Terminal([sys.executable, "-m", "ingest", "top", "--console", http_url(dep),
                     "--token-file", token_file(dep, user), "--host", host], env={"PYTHONPATH": str(ROOT)})
    try:
        term.wait_for(lambda s: f"host={host}" in s and "req/s" in s)
        yield term, dep, host
    finally:
        term.close()


def received(text: str) -> int:
    found = re.search(r"received (\d+)", text)
    return int(found.group(1)) if found else -1


def test_every_view_answers_its_key(screen):
    term, _, host = screen
    text = term.wait_for(lambda s: "where the time went" in s and "req/s" in s)
    assert "last 10 s" in text and "request" in text
    term.keys("p")
    text = term.wait_for(lambda s: "processes: 3" in s and "PID" in s)
    pids = [line.split()[0] for line in text.splitlines() if re.match(r"\s*4000\d ", line)]
    assert len(pids) == 3, text
    term.keys("I")  # sort by pid
    text = term.wait_for(lambda s: "sorted by pid" in s)
    term.keys("r")  # ascending
    text = term.wait_for(lambda s: "sorted by pid)" in s)
    shown = [line.split()[0] for line in text.splitlines() if re.match(r"\s*4000\d ", line)]
    assert shown == sorted(shown), text
    term.keys("w")
    term.wait_for(lambda s: "slots: . idle" in s and re.search(r"\[[.*#!]{4}\]", s) is not None)
    term.keys("l")
    text = term.wait_for(lambda s: "request over the last 1 min" in s and "p95" in s)
    term.keys("]")
    term.wait_for(lambda s: "gil_wait over the last 1 min" in s)
    term.keys(">")
    term.wait_for(lambda s: "gil_wait over the last 10 min" in s)
    term.keys("s")
    term.wait_for(lambda s: "slow requests:" in s and "STATE" in s)
    term.keys("f")
    term.wait_for(lambda s: "state active" in s)
    term.keys("/", "o", "r", "d", "e", "r", "s", "Enter")
    term.wait_for(lambda s: "url contains 'orders'" in s)
    term.keys("g")
    term.wait_for(lambda s: "GEN0/S" in s)
    term.keys("e")
    term.wait_for(lambda s: "EVENT" in s and "started" in s)
    term.keys("f")
    term.wait_for(lambda s: "1 hosts" in s and host in s and "online" in s)
    term.keys("?")
    term.wait_for(lambda s: "space   pause" in s)
    term.keys("q")
    assert pytest.approx(0) == 0
    deadline = time.monotonic() + 10
    while term.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not term.alive()


def test_a_pause_freezes_the_screen_while_data_keeps_arriving(screen):
    term, _, _ = screen
    term.keys("p")
    term.wait_for(lambda s: "processes: 3" in s)
    term.keys("Space")
    first = term.wait_for(lambda s: "paused:" in s)
    time.sleep(3)
    later = term.wait_for(lambda s: "paused:" in s and received(s) > received(first))
    body = lambda text: text.splitlines()[6:-1]  # noqa: E731 - below the header, above the footer
    assert body(first) == body(later)
    arrived = int(re.search(r"paused: (\d+) messages", later).group(1))
    assert arrived > 0
    term.keys("Space")
    term.wait_for(lambda s: "[live]" in s)


def test_colours_mark_errors_unless_no_color_says_otherwise(screen):
    term, dep, host = screen
    red = "\x1b[31m"  # the header's rates line turns red while 5xx are served (the simulator serves some)
    term.wait_for(lambda s: red in term.escapes(), timeout=30)
    user = next(iter(dep.fleet["users"]))
    for plain in ({"NO_COLOR": "1"}, {}):
        extra = [] if plain else ["--no-color"]
        command = [sys.executable, "-m", "ingest", "top", "--console", http_url(dep), "--token-file",
                   token_file(dep, user), "--host", host, *extra]
        other = Terminal(command, env={"PYTHONPATH": str(ROOT), **plain})
        try:
            other.wait_for(lambda s: "5xx" in s and "req/s" in s)
            time.sleep(2)
            assert red not in other.escapes() and "\x1b[33m" not in other.escapes()
        finally:
            other.close()


def test_resize_redraws_to_the_new_size(screen):
    term, _, _ = screen
    term.keys("p")
    term.wait_for(lambda s: "processes: 3" in s)
    term.resize(80, 20)
    text = term.wait_for(lambda s: len(s.splitlines()) <= 20 and "processes" in s)
    assert all(len(line) <= 80 for line in text.splitlines())
    term.resize(140, 45)
    term.wait_for(lambda s: len(s.splitlines()) > 20 and "PID" in s)


def test_reconnects_after_the_console_restarts(screen):
    term, dep, _ = screen
    dep.site.stop()
    term.wait_for(lambda s: "[live]" not in s, timeout=20)
    dep.site.start()
    term.wait_for(lambda s: "[live]" in s, timeout=30)


def test_two_hundred_processes_scroll(deploy):
    tag = unique()
    host, user = f"{tag}-big", f"{tag}-ann"
    dep = deploy({f"{tag}-t": {"hosts": [host], "users": [user]}})
    fed_host(dep, host, processes=200, groups=1, extra=("--restart-probability", "0"))
    term = Terminal([sys.executable, "-m", "ingest", "top", "--console", http_url(dep),
                     "--token-file", token_file(dep, user), "--host", host], env={"PYTHONPATH": str(ROOT)})
    try:
        term.wait_for(lambda s: "req/s" in s)
        term.keys("p", "I", "r")  # by pid, ascending
        first = term.wait_for(lambda s: "processes: 200" in s and "sorted by pid)" in s)

        def pids(text: str) -> list[int]:
            return [int(line.split()[0]) for line in text.splitlines() if re.match(r"\s*4\d{4} ", line)]

        top_rows = pids(first)
        assert top_rows[0] == 40000 and 20 < len(top_rows) < 40, first  # what fits in 40 lines
        term.keys("NPage")
        paged = term.wait_for(lambda s: pids(s) and pids(s)[0] > top_rows[-1] - 2)
        assert pids(paged) == sorted(pids(paged)), paged
        term.keys("End")
        end = term.wait_for(lambda s: pids(s) and pids(s)[-1] == 40199)
        assert re.search(r"202 lines, \d+-202", end), end
        term.keys("Home")
        term.wait_for(lambda s: pids(s) and pids(s)[0] == 40000)
        term.keys("Down", "Down", "Down")
        term.wait_for(lambda s: pids(s) and pids(s)[0] == 40001)  # two heading lines scrolled first
    finally:
        term.close()
