"""``top --once`` against a real console fed by a real agent: what a script or a health check
gets, every exit code, and the same figures the pages get for the same seconds."""

from __future__ import annotations

import json
import time

import pytest
from support.console import LiveClient, live_clients, unique
from top_helpers import fed_host, http_url, token_file, top, top_json

from stack.procs import wait_until


@pytest.fixture(scope="module")
def fleet(module_deploy):
    tag = unique()
    team, fed, idle, user, other = f"{tag}-t", f"{tag}-web", f"{tag}-idle", f"{tag}-ann", f"{tag}-o"
    dep = module_deploy({team: {"hosts": [fed, idle], "users": [user]},
                  f"{tag}-t2": {"hosts": [other], "users": []}})
    host_id = fed_host(dep, fed, processes=2, groups=2)
    return {"dep": dep, "fed": fed, "idle": idle, "other": other, "user": user, "id": host_id,
            "token": token_file(dep, user), "url": http_url(dep)}


def test_once_prints_the_host_and_its_processes_with_the_pages_own_figures(fleet):
    dep, url, token = fleet["dep"], fleet["url"], fleet["token"]
    page = LiveClient(dep.site.live_url, dep.fleet["users"][fleet["user"]]["token"], "page")
    with live_clients(page):
        page.send({"type": "subscribe", "scope": "host", "host": fleet["id"], "window": 300})
        assert wait_until(lambda: any(m.get("recent") for m in page.of_type("host.frame")), 20)
        code, snap = top_json("--console", url, "--token-file", token, "--host", fleet["fed"])
        assert code == 0, snap
        # the host frame's headline of the same ten seconds, as the Overview shows it
        assert wait_until(lambda: any((m.get("recent") or {}).get("until") == snap["span"]["until"]
                                      for m in page.of_type("host.frame")), 10)
        same = next(m["recent"] for m in page.of_type("host.frame")
                    if (m.get("recent") or {}).get("until") == snap["span"]["until"])
    assert snap["host"] == fleet["fed"] and snap["span"]["span"] == 10
    assert snap["metrics"] == same["groups"]["*"]
    assert snap["metrics"]["requests"] > 0
    live = [p for p in snap["processes"] if p["state"] == "running"]
    assert len(live) == 4 and {p["group"] for p in live} == {"app0", "app1"}, snap["processes"]
    # the rows' requests add up to what the host served in the rows' seconds: every second counted once
    assert all(p["requests"] and p["threads"] == 4 and p["memory_rss"] for p in live), json.dumps(live[0])

    text = top("--console", url, "--token-file", token, "--host", fleet["fed"], "--once")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"wsgi-fleet top  host={fleet['fed']}  group=*")
    assert "req/s" in lines[1] and "last 10 s" in lines[1]
    for p in live:
        assert any(line.split()[:1] == [str(p["pid"])] for line in lines), (p["pid"], text.stdout)


def test_once_fleet_lists_only_the_users_hosts(fleet):
    code, snap = top_json("--console", fleet["url"], "--token-file", fleet["token"])
    assert code == 0, snap
    rows = {h["name"]: h for h in snap["hosts"]}
    assert set(rows) == {fleet["fed"], fleet["idle"]}  # not the other team's host
    assert rows[fleet["fed"]]["state"] == "online" and rows[fleet["fed"]]["throughput"] > 0
    assert rows[fleet["idle"]]["state"] == "offline"


def test_once_exit_codes_say_what_went_wrong(fleet, tmp_path):
    url, token = fleet["url"], fleet["token"]
    wrong = tmp_path / "wrong"
    wrong.write_text("wfu_not-a-token\n")
    cases = {
        3: ("--console", url, "--token-file", str(wrong), "--host", fleet["fed"]),
        4: ("--console", url, "--token-file", token, "--host", fleet["other"]),  # another team's host
        5: ("--console", url, "--token-file", token, "--host", fleet["idle"]),
        2: ("--console", "http://127.0.0.1:9", "--token-file", token, "--timeout", "2"),
        64: ("--host", fleet["fed"]),  # nowhere to connect
    }
    for code, args in cases.items():
        started = time.monotonic()
        done = top(*args, "--once")
        assert done.returncode == code, (code, args, done.stdout, done.stderr)
        said = done.stderr.strip().splitlines()
        assert said and said[-1].startswith("wsgi-fleet top: "), done.stderr  # one line says which
        assert done.stdout == ""
        assert time.monotonic() - started < 30
    assert top("--console", url, "--token-file", token, "--once", "--bogus").returncode == 64
