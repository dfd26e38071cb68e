"""The agent's local view (``top --local``): the console's ``top`` messages, from the agent itself.

Unit tests feed ``LocalView`` hand-made samples, and the simulator's real
datagrams through a real process table. The end-to-end tests run a real
agent (``python -m ingest serve``, no console) fed by the real simulator,
talk to its local socket as ``top`` would, attack it with bad clients,
and check what they were told against the datagrams the agent captured.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import unix_connect

from ingest.commands import cli, simulate
from ingest.model import frames, metrics, topview
from ingest.model.kinds import SLOW, STARTED, STOPPED, STOPPING, TICK
from ingest.pipeline import capture, localserve, localview, wire
from ingest.pipeline.localserve import LocalServer, dumps, process_records
from ingest.pipeline.localview import HostRequest, LocalView
from ingest.pipeline.receiver import SocketSetupError
from ingest.pipeline.state import ProcessTable
from stack.procs import wait_until

ROOT = Path(__file__).resolve().parents[2]
HOST_SNAPSHOT_KEYS = {"type", "host", "group", "tab", "now", "step", "groups", "groups_total", "series",
                      "totals", "agent", "agent_state", "bad_reasons", "processes", "processes_total"}
TAB_SNAPSHOT_KEYS = {"type", "tab", "host", "group", "window", "now", "until", "recent", "seconds", "tens",
                     "tens_step",
                     "processes", "slow", "life", "life_total"}
HOST_SUBSCRIBE = {"type": "subscribe", "scope": "host", "host": "ignored", "tab": "top", "group": "*",
                  "window": 300, "points": 300}


def sample(kind: int, pid: int, t: float, group: str | None = "app0", inc: int = 1, **fields) -> dict:
    """A sample as the agent forwards it (tests/console/live/tab_helpers.py's shape)."""
    return {"k": kind, "p": pid, "i": inc, "s": 1, "t": t, "g": group, "n": None, "f": fields}


def tick(pid: int, t: float, requests: int, group: str | None = "app0", **more) -> dict:
    return sample(TICK, pid, t, group, **{"request_count": requests, "status_2xx_total": requests,
                                          "sample_period": 1.0, "request_threads_maximum": 4,
                                          "capacity_utilization": 0.25, "telemetry_interval": 1.0, **more})


def slow(pid: int, t: float, start: float, completed: bool, group: str | None = "app0", **more) -> dict:
    return sample(SLOW, pid, t, group, **{"slow_record_state": 1 if completed else 0, "slow_thread_id": 1,
                                          "slow_start_stamp": start, "slow_duration": t - start,
                                          "slow_method": "GET", "slow_hostname": "h", "slow_scheme": "http",
                                          "slow_path_info": "/x", **more})


def strict(text: str):
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


# -- LocalView, by hand ---------------------------------------------------------------------------

T0 = 1_796_400_000


def fed_view(seconds: int = 20) -> LocalView:
    """Two groups ticking once a second from T0: app0's pid 1 serves s+1 requests in second
    T0+s, app1's pid 2 serves 2."""
    view = LocalView("web-1")
    for s in range(seconds):
        view.add(tick(1, T0 + s + 0.3, s + 1, "app0"), 1000)
        view.add(tick(2, T0 + s + 0.6, 2, "app1"), 1000)
    return view


def test_host_frame_and_recent_are_the_metric_tables_numbers_of_the_seconds_sent():
    view = fed_view()
    now = T0 + 21.05
    assert view.tick(now) == [T0 + 19]  # the first wake: the newest complete second only
    recent = view.recent(T0 + 19, ["app0", "app1"])
    frame = view.host_frame(T0 + 19, now, [], recent)
    assert frame["type"] == "host.frame" and frame["host"] == "web-1" and frame["t"] == T0 + 19
    assert frame["groups"]["*"]["requests"] == 20 + 2 and frame["groups"]["app0"]["requests"] == 20
    assert set(frame["groups"]["*"]) == set(metrics.HOST_FRAME)
    assert recent["span"] == 10 and recent["since"] == T0 + 10 and recent["until"] == T0 + 20
    assert recent["groups"]["*"]["requests"] == sum(range(11, 21)) + 2 * 10
    assert recent["groups"]["app1"]["throughput"] == pytest.approx(2.0)
    # the very function the console's fleet row and host frame use, on frames made independently
    seconds = [(T0 + s, frames.merge([frames.frame_add({}, tick(1, 0, s + 1)),
                                      frames.frame_add({}, tick(2, 0, 2))])) for s in range(20)]
    assert recent["groups"]["*"] == frames.headline(seconds, T0 + 20)
    assert "processes" not in frame and view.host_frame(T0 + 20, now, [])["processes"] == []  # every 5 s
    assert frame["agent_state"]["state"] == "online" and frame["agent_state"]["age"] == 0
    # the next wakes: one second each, or every second missed
    assert view.tick(now + 1) == [T0 + 20]
    assert view.tick(now + 3) == [T0 + 21, T0 + 22]


def test_tab_snapshot_holds_what_the_console_s_top_snapshot_holds():
    view = fed_view(70)
    now = T0 + 70.4
    until = math.floor(now) - 1
    view.add(slow(1, T0 + 60.5, T0 + 59.0, False), 500)            # active ...
    view.add(slow(1, T0 + 61.5, T0 + 59.0, True), 500)             # ... completed: replaces it
    view.add(slow(1, T0 + 61.6, T0 + 59.0, False), 500)            # a late active never undoes it
    view.add(slow(2, T0 + 40.0, T0 + 38.0, False, "app1"), 500)    # silent since: expired
    view.add(slow(3, T0 + 69.5, T0 + 68.0, False), 500)            # its process stops: expired
    view.add(sample(STARTED, 3, T0 + 50.0, process_parent_pid=10), 100)
    view.add(sample(STOPPED, 3, T0 + 69.8, shutdown_reason="maximum_requests", graceful_drain=1), 100)
    view.add(slow(4, T0 + 70.2, T0 + 69.0, False), 500)            # still running
    snap = view.tab_snapshot(HostRequest(), now)
    assert set(snap) == TAB_SNAPSHOT_KEYS and snap["until"] == until
    assert [t for t, _ in snap["seconds"]] == list(range(until - 60, until))
    assert dict(snap["seconds"])[T0 + 30]["req"] == 31 + 2
    # 600 s of 1 s frames as 10 s frames, aligned: the 10 min window of top
    assert snap["tens_step"] == topview.TEN and all(t % topview.TEN == 0 for t, _ in snap["tens"])
    assert sum(f.get("req", 0) for _, f in snap["tens"]) == sum(range(1, until - T0 + 1)) + 2 * (until - T0)
    procs = {(p, i): (group, first, frame) for p, i, group, first, frame in snap["processes"]["procs"]}
    assert procs[(1, 1)][0] == "app0"
    assert procs[(1, 1)][2]["req"] == sum(range(until - T0 - 9, until - T0 + 1))
    states = {r["pid"]: r["state"] for r in snap["slow"]}
    assert states == {1: "completed", 2: "expired", 3: "expired", 4: "active"}
    assert [r["pid"] for r in snap["slow"]] == [4, 3, 1, 2]  # newest first
    assert snap["slow"][0]["url"] == "http://h/x" and snap["slow"][0]["key"].startswith("4:1:")
    assert [e["kind"] for e in snap["life"]] == ["started", "stopped"] and snap["life_total"] == 2
    only = view.tab_snapshot(HostRequest(group="app1"), now)
    assert {r["pid"] for r in only["slow"]} == {2} and only["life"] == []
    assert {p for p, *_ in only["processes"]["procs"]} == {2}


def test_host_snapshot_series_are_downsampled_like_the_console_s():
    view = fed_view(70)
    now = T0 + 70.4
    records = [{"pid": 1, "incarnation": 1, "group": "app0", "state": "running", "last_seen": now,
                "interval": 1.0, "threads": 4}]
    view._processes = lambda now: records
    snap = view.host_snapshot(HostRequest(window=60, points=20), now)
    assert set(snap) == HOST_SNAPSHOT_KEYS and snap["host"] == "web-1" and snap["tab"] == "top"
    assert snap["groups"] == ["*", "app0", "app1"] and snap["processes"] == records
    assert set(snap["series"]) == {"t", *metrics.SERIES}
    assert snap["step"] == 4  # ceil(61 cells / 19): aligned on multiples of 4
    assert all(t % 4 == 0 for t in snap["series"]["t"]) and len(snap["series"]["t"]) <= 20
    assert snap["totals"]["requests"] == sum(range(11, 71)) + 2 * 60
    group = view.host_snapshot(HostRequest(group="app1", window=60, points=20), now)
    assert group["totals"]["requests"] == 2 * 60 and set(group["series"]["loss"]) == {0}


def test_fleet_entry_counts_restarts_of_the_last_hour_and_live_processes():
    view = LocalView("web-1")
    now = T0 + 5000.2
    assert view.fleet("fleet.snapshot", T0 + 4998, now, [])["hosts"][0]["metrics"] == {
        **dict.fromkeys(metrics.FLEET), "restarts": 0, "processes_live": 0}  # no data: null
    view.add(sample(STOPPING, 7, now - 4000, shutdown_reason="restart_interval"), 100)  # over an hour ago
    view.add(sample(STOPPING, 5, now - 100, shutdown_reason="restart_interval"), 100)
    view.add(sample(STOPPED, 5, now - 99, shutdown_reason="restart_interval"), 100)  # the same one: once
    view.add(sample(STOPPED, 6, now - 50), 100)
    for s in range(12):
        view.add(tick(1, now - 12 + s, 5), 1000)
    view.tick(now)
    records = [{"pid": p, "incarnation": 1, "group": "app0", "state": st, "last_seen": now, "interval": 1.0,
                "threads": 4} for p, st in ((1, "running"), (2, "stopping"), (5, "stopped"), (8, "gone"))]
    fleet = view.fleet("fleet.update", math.floor(now) - 2, now, records)
    [entry] = fleet["hosts"]
    assert fleet["type"] == "fleet.update" and entry["id"] == entry["name"] == "web-1"
    assert entry["metrics"]["restarts"] == 2 and entry["metrics"]["processes_live"] == 2
    assert entry["metrics"]["throughput"] == pytest.approx(5.0) and entry["metrics"]["capacity"] == 0.25
    assert entry["state"] == "online" and entry["online"] is True and entry["agent"]["version"]


def test_every_message_is_strict_json_whatever_the_wire_said():
    view = LocalView("web-1")
    now = T0 + 30.1
    for s in range(20):
        view.add(tick(1, T0 + s + 0.5, 3, capacity_utilization=float("nan"), memory_rss=float("inf")), 1000)
    view.add(slow(1, T0 + 20.0, T0 + 10.0, True, slow_path_info=b"/\xff\xfe", slow_duration=math.inf), 500)
    view.add(tick(1, float("nan"), 1), 1000)  # a stamp that is no time: counted, not framed
    view.tick(now)
    request = HostRequest(window=60, points=60)
    texts = [dumps(view.host_snapshot(request, now)), dumps(view.tab_snapshot(request, now)),
             dumps(view.host_frame(T0 + 28, now, [])), dumps(view.fleet("fleet.update", T0 + 28, now, []))]
    texts.append(dumps(view.tab_frame(now)))
    decoded = [strict(text) for text in texts]
    assert decoded[1]["slow"][0]["url"] == "http://h/\\xff\\xfe" and decoded[1]["slow"][0]["duration"] is None
    assert decoded[2]["agent"]["view_out_of_range"] == 1


def test_what_does_not_fit_is_dropped_and_counted(monkeypatch):
    monkeypatch.setattr(localview, "MAX_SAMPLES", 5)
    view = LocalView("web-1")
    for s in range(8):
        view.add(tick(1, T0 + s, 1), 100)
    assert view.inbox_dropped == 3  # the decode thread never waits: the inbox is full
    view.tick(T0 + 9.0)
    for s in range(5):
        view.add(tick(1, T0 + 8 + s, 1), 100)
    view.tick(T0 + 9.5)
    agent = view.host_frame(T0 + 7, T0 + 9.5, [])["agent"]
    assert agent["view_dropped"] == 3 and agent["view_window_dropped"] == 5


def test_a_real_fleet_through_a_real_process_table():
    """The listener path: simulator datagrams decoded, joined to their process, then viewed."""
    now = time.time()
    start = math.floor(now) - 8
    table, view = ProcessTable(), LocalView("sim")
    view._processes = lambda at: process_records(table, at)
    sent = defaultdict(int)
    for data in simulate.Fleet(2, 2, 4, seed=3, restart_probability=0.0).datagrams(start, 6):
        d = wire.decode(data)
        view(d, table.add(d))
        if d.kind == TICK:
            sent[math.floor(d.stamp)] += d.fields.get("request_count", 0)
    records = view.records(now)
    assert [(r["pid"], r["group"], r["state"], r["threads"], r["interval"]) for r in records] == [
        (40000, "app0", "running", 4, 1.0), (40001, "app0", "running", 4, 1.0),
        (40002, "app1", "running", 4, 1.0), (40003, "app1", "running", 4, 1.0)]
    assert all(now - 1 < r["last_seen"] <= now + 0.01 for r in records)
    view.tick(now)
    snap = view.host_snapshot(HostRequest(), now)
    assert snap["totals"]["requests"] == sum(sent.values()) > 0 and snap["processes_total"] == 4
    busiest = max(sent, key=sent.get)
    assert view.host_frame(busiest, now, records)["groups"]["*"]["requests"] == sent[busiest]


def test_a_subscribe_is_read_with_the_console_s_bounds():
    parse = HostRequest.from_message
    assert parse({"type": "subscribe"}) == HostRequest("*", 300, 300)
    assert parse({"group": "app0", "window": 10, "points": 1e9}) == HostRequest("app0", 60, 2000)
    assert parse({"group": 7, "window": float("nan"), "points": "x"}) == HostRequest("*", 300, 300)
    with pytest.raises(ValueError, match="top tab only"):
        parse({"tab": "overview"})
    assert localserve.default_path("/run/wsgi-fleet/telemetry.sock") == "/run/wsgi-fleet/telemetry.top.sock"
    assert localserve.default_path(None) == localserve.default_path(cli.DEFAULT_SOCKET)  # top --local's
    assert localserve.default_path("t.sock") == "t.top.sock"


# -- the socket --------------------------------------------------------------------------------------

def ws_frame(payload: bytes, opcode: int = 1) -> bytes:
    """One masked client frame, as a browser or ``top`` would send it."""
    mask, n = os.urandom(4), len(payload)
    head = bytes([0x80 | opcode])
    head += (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big") if n < 65536
             else bytes([0x80 | 127]) + n.to_bytes(8, "big"))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def raw_client(path: str) -> socket.socket:
    """A WebSocket client by hand: it sends what it likes and reads only when told to."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(path)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(1)
    assert answer.startswith(b"HTTP/1.1 101")
    return sock


def read_to_end(sock: socket.socket, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(1 << 16):
        data += chunk
    return data


def test_a_client_that_does_not_read_is_closed_and_the_others_go_on(sockdir):
    path = str(sockdir / "top.sock")
    server = LocalServer(LocalView("web-1"), path, send_queue=8, send_queue_bytes=1 << 20)
    server.start()
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        slow_client = raw_client(path)
        slow_client.sendall(ws_frame(b'{"type": "subscribe", "scope": "fleet"}'))
        with unix_connect(path) as good:
            assert strict(good.recv(5))["type"] == "hello"
            good.send(json.dumps({"type": "subscribe", "scope": "fleet"}))
            assert strict(good.recv(5))["type"] == "fleet.snapshot"
            time.sleep(0.3)
            assert sum(1 for c in server._clients if c.scope == "fleet") == 2
            big = {"type": "fleet.update", "now": 0, "hosts": [], "pad": "x" * 300_000}
            got = []

            def read() -> None:  # the big ones, between the view's own updates every second
                while len(got) < 30:
                    text = good.recv(10)
                    if "pad" in text:
                        got.append(text)
            reader = threading.Thread(target=read)
            reader.start()
            for _ in range(30):
                clients = [c for c in server._clients if c.scope == "fleet"]
                server._loop.call_soon_threadsafe(server._broadcast, clients, big)
                time.sleep(0.03)
            reader.join(20)
            assert len(got) == 30 and all(len(text) > 300_000 for text in got)
        assert server.stats["closed_slow"] == 1
        read_to_end(slow_client)  # closed by the server: what it had, then the end
        slow_client.close()
    finally:
        server.stop()
    assert not os.path.exists(path)


def test_the_socket_replaces_a_dead_agent_s_and_refuses_anything_else(sockdir):
    path = str(sockdir / "top.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()  # a socket file nobody listens on: a killed agent's
    localserve.bind_listener(path).close()
    first = LocalServer(LocalView("a"), path, mode=0o640)
    first.start()
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
        with pytest.raises(SocketSetupError, match="another agent serves its local view"):
            localserve.bind_listener(path)
    finally:
        first.stop()
    Path(path).write_text("not a socket")
    with pytest.raises(SocketSetupError, match="not a socket"):
        localserve.bind_listener(path)
    assert Path(path).read_text() == "not a socket"


def serve(sockdir: Path, *more: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ingest", "serve", "--socket", str(sockdir / "t.sock"),
                             "--local-senders", "--log-interval", "0", *more],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout: float = 15.0) -> bool:
    return wait_until(predicate, timeout, step=0.05)


def stop(proc: subprocess.Popen) -> str:
    try:
        proc.send_signal(signal.SIGTERM)
        return proc.communicate(timeout=15)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_serve_puts_the_socket_beside_the_telemetry_socket_and_gives_way_there(sockdir):
    """The default path is named after the telemetry socket, so agents sharing a directory each
    serve their own; taken by something else (a file), the agent warns and runs without the
    local view; a path given on the command line must be bound."""
    first = serve(sockdir)
    try:
        assert wait_for(lambda: (sockdir / "t.top.sock").exists())
        second = subprocess.Popen([sys.executable, "-m", "ingest", "serve", "--socket",
                                   str(sockdir / "two.sock"), "--log-interval", "0"],
                                  cwd=ROOT, stderr=subprocess.PIPE, text=True)
        assert wait_for(lambda: (sockdir / "two.top.sock").exists())
        log = stop(second)
        assert second.returncode == 0 and "local view on" in log and "not served" not in log, log
    finally:
        log = stop(first)
    assert first.returncode == 0 and not (sockdir / "t.top.sock").exists(), log
    (sockdir / "t.top.sock").write_text("mine")
    proc = serve(sockdir)
    assert wait_for(lambda: (sockdir / "t.sock").exists())
    log = stop(proc)
    assert proc.returncode == 0 and "is not a socket" in log and "the local view is not served" in log
    result = subprocess.run([sys.executable, "-m", "ingest", "serve", "--socket", str(sockdir / "t.sock"),
                             "--local-socket", str(sockdir / "t.top.sock"), "--log-interval", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "is not a socket" in result.stderr and "Traceback" not in result.stderr
    assert not (sockdir / "t.sock").exists() and (sockdir / "t.top.sock").read_text() == "mine"
    proc = serve(sockdir, "--no-local-socket", "--local-socket", str(sockdir / "other.sock"))
    assert wait_for(lambda: (sockdir / "t.sock").exists())
    log = stop(proc)
    assert proc.returncode == 0 and not (sockdir / "other.sock").exists() and "local view" not in log


# -- a real agent, a real simulator, real clients -------------------------------------------------------

class Listener(threading.Thread):
    """A ``top``-like client: subscribes, then keeps every message with the time it came."""

    def __init__(self, path: str, subscribe: dict):
        super().__init__(daemon=True)
        self.path, self.subscribe, self.messages = path, subscribe, []
        self.done, self.error = threading.Event(), None

    def run(self) -> None:
        try:
            with unix_connect(self.path) as ws:
                self.messages.append((time.time(), strict(ws.recv(5))))
                ws.send(json.dumps(self.subscribe))
                while not self.done.is_set():
                    try:
                        self.messages.append((time.time(), strict(ws.recv(0.5))))
                    except TimeoutError:
                        continue
        except Exception as exc:  # the test reads it
            self.error = exc

    def of(self, kind: str) -> list[dict]:
        return [m for _, m in self.messages if m.get("type") == kind]


def replies(ws, count: int) -> list[dict]:
    return [strict(ws.recv(5)) for _ in range(count)]


def bad_clients(path: str) -> dict:
    """What each kind of bad client got; the agent and the good clients should not notice."""
    out: dict = {}
    with unix_connect(path) as ws:
        ws.recv(5)
        ws.send("not json{")
        ws.send(b"\x00binary")
        ws.send("[1, 2]")
        ws.send(json.dumps({"type": "subscribe", "scope": "host", "tab": "overview"}))
        ws.send(json.dumps({"type": "subscribe", "scope": "team"}))
        ws.send(json.dumps({"type": "hello"}))
        out["garbage"] = [m["reason"] for m in replies(ws, 6)]
    with unix_connect(path) as ws:
        ws.recv(5)
        ws.send("x" * 100_000)
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(5)
        out["huge"] = ws.close_code
    with unix_connect(path) as ws:
        ws.recv(5)
        with contextlib.suppress(ConnectionClosed):  # closed while it still sends
            for _ in range(300):
                ws.send("{}")
        reasons = []
        with pytest.raises(ConnectionClosed):
            while True:
                reasons.append(strict(ws.recv(5))["reason"])
        out["flood"] = (ws.close_code, reasons)
    mid = raw_client(path)
    mid.sendall(ws_frame(json.dumps(HOST_SUBSCRIBE).encode()))
    out["mid_stream"] = len(mid.recv(1000))
    mid.close()  # gone without a close frame, in the middle of its snapshot
    return out


@pytest.fixture(scope="module")
def run():
    """One agent + simulator run of ~20 s, watched by two good clients and attacked by bad ones."""
    tmp = Path(tempfile.mkdtemp(prefix="wf-", dir="/tmp"))
    top, cap, stats = str(tmp / "top.sock"), str(tmp / "cap.dgrams"), str(tmp / "stats.json")
    agent = serve(tmp, "--local-socket", top, "--hostname", "testhost", "--capture", cap,
                  "--stats-file", stats)
    sim = None
    try:
        assert wait_for(lambda: os.path.exists(top) and (tmp / "t.sock").exists())
        mode = stat.S_IMODE(os.stat(top).st_mode)
        sim = subprocess.Popen([sys.executable, "-m", "ingest", "simulate", "--socket", str(tmp / "t.sock"),
                                "--groups", "2", "--processes", "2", "--threads", "4", "--seed", "5",
                                "--restart-probability", "0", "--slow-probability", "0.3",
                                "--duration", "60"],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        host, fleet = Listener(top, HOST_SUBSCRIBE), Listener(top, {"type": "subscribe", "scope": "fleet"})
        host.start()
        fleet.start()
        time.sleep(6.0)
        attacked = (time.time(), bad_clients(top))
        time.sleep(13.0)
        with unix_connect(top) as ws:  # a client that comes late: its snapshot holds the run so far
            ws.recv(5)
            ws.send(json.dumps(HOST_SUBSCRIBE))
            late = replies(ws, 2)
        time.sleep(2.0)
        host.done.set()
        fleet.done.set()
        host.join(5)
        fleet.join(5)
        sim.send_signal(signal.SIGTERM)
        summary = json.loads(sim.communicate(timeout=15)[0])
        agent.send_signal(signal.SIGTERM)
        _, log = agent.communicate(timeout=20)
        yield {"mode": mode, "host": host, "fleet": fleet, "attacked": attacked, "late": late, "sim": summary,
               "log": log, "returncode": agent.returncode, "top": top,
               "counters": json.loads(Path(stats).read_text()),
               "datagrams": [wire.decode(d) for d in capture.read(cap)]}
    finally:
        for proc in (sim, agent):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
        for child in tmp.iterdir():
            child.unlink()
        tmp.rmdir()


def test_the_local_socket_is_owner_only_and_goes_with_the_agent(run):
    assert run["mode"] == 0o600
    assert run["returncode"] == 0 and "Traceback" not in run["log"]
    assert not os.path.exists(run["top"])


def test_a_top_client_gets_hello_snapshots_and_a_frame_every_second(run):
    host = run["host"]
    assert host.error is None
    kinds = [m["type"] for _, m in host.messages]
    assert kinds[:3] == ["hello", "host.snapshot", "tab.snapshot"]
    hello, snap, tab = (m for _, m in host.messages[:3])
    assert hello == {**hello, "type": "hello", "user": None, "store": "agent", "single_process": True,
                     "local": True, "host": "testhost", "online_within": 15}
    assert set(snap) == HOST_SNAPSHOT_KEYS and snap["host"] == "testhost"
    assert snap["groups"] == ["*", "app0", "app1"] and snap["series"]["t"]
    assert set(tab) == TAB_SNAPSHOT_KEYS and tab["until"] == math.floor(tab["now"]) - 1
    seconds = [m["t"] for m in host.of("host.frame")]
    assert len(seconds) >= 18 and seconds == list(range(seconds[0], seconds[0] + len(seconds)))
    assert all(m["t"] == math.floor(m["now"]) - 2 for m in host.of("host.frame"))
    assert len(host.of("tab.frame")) >= 18 and not host.of("error")


def requests_sent(datagrams: list[wire.Datagram]) -> dict[tuple[str, int], int]:
    """Requests in the ticks the agent received, by (group or "*", second of the stamp)."""
    sent: dict[tuple[str, int], int] = defaultdict(int)
    groups = {}
    for d in datagrams:
        if d.kind == STARTED:
            groups[d.pid] = d.fields["process_group"]
        elif d.kind == TICK:
            for group in ("*", groups[d.pid]):
                sent[group, math.floor(d.stamp)] += d.fields.get("request_count", 0)
    return sent


def test_recent_requests_are_the_requests_the_simulator_sent(run):
    sent = requests_sent(run["datagrams"])
    checked = 0
    for m in run["host"].of("host.frame"):
        t = m["t"]
        for group in ("*", "app0", "app1"):
            values = m["recent"]["groups"].get(group)  # absent: no data in the span
            expected = sum(sent.get((group, s), 0) for s in range(t - 9, t + 1))
            assert (values["requests"] if values else 0) == expected, (group, t)
            checked += values is not None
        assert m["groups"].get("*", {}).get("requests", 0) == sent.get(("*", t), 0)
    assert checked >= 3 * 18 and sum(sent[k] for k in sent if k[0] == "*") > 100
    # and every datagram the simulator sent was decoded
    assert run["counters"]["counters"]["decoded"] == run["sim"]["sent"] == len(run["datagrams"])


def test_a_late_client_s_snapshot_holds_the_run_so_far(run):
    snap, tab = run["late"]
    assert snap["type"] == "host.snapshot" and tab["type"] == "tab.snapshot"
    until = tab["until"]
    sent = requests_sent(run["datagrams"])
    assert {s: f["req"] for s, f in tab["seconds"] if "req" in f} == {
        s: sent["*", s] for s in range(until - 60, until) if sent.get(("*", s))}
    assert sum(f.get("req", 0) for _, f in tab["tens"]) == sum(n for (g, s), n in sent.items()
                                                               if g == "*" and s < until)
    window = tab["processes"]
    assert window["until"] == until and window["span"] == 10
    procs = {p: (group, frame) for p, i, group, first, frame in window["procs"]}
    assert sorted(procs) == [40000, 40001, 40002, 40003]
    assert [procs[p][0] for p in sorted(procs)] == ["app0", "app0", "app1", "app1"]
    in_window = sum(sent.get(("*", s), 0) for s in range(until - 10, until))
    assert sum(f.get("req", 0) for _, f in procs.values()) == in_window
    ticks = [d for d in run["datagrams"] if d.kind == TICK]
    # the window's totals so far: every tick stamped a second before the snapshot, none after it
    assert (sum(d.fields.get("request_count", 0) for d in ticks if d.stamp < snap["now"] - 1)
            <= snap["totals"]["requests"]
            <= sum(d.fields.get("request_count", 0) for d in ticks if d.stamp <= snap["now"]))


def test_process_records_are_the_simulator_s_processes(run):
    lists = [m for m in run["host"].of("host.frame") if "processes" in m]
    assert len(lists) >= 3 and all(m["t"] % 5 == 0 for m in lists)
    final = lists[-1]
    assert final["processes_total"] == 4
    assert [(r["pid"], r["incarnation"], r["group"], r["state"], r["threads"], r["interval"])
            for r in final["processes"]] == [(40000, 1, "app0", "running", 4, 1.0),
                                             (40001, 1, "app0", "running", 4, 1.0),
                                             (40002, 1, "app1", "running", 4, 1.0),
                                             (40003, 1, "app1", "running", 4, 1.0)]
    for r in final["processes"]:
        assert final["now"] - 3 < r["last_seen"] <= final["now"]


def test_a_fleet_client_gets_this_host_s_row_every_second(run):
    fleet = run["fleet"]
    assert fleet.error is None
    assert [m["type"] for _, m in fleet.messages[:2]] == ["hello", "fleet.snapshot"]
    updates = fleet.of("fleet.update")
    assert len(updates) >= 18
    rows = [m["hosts"][0] for m in updates]
    assert all(r["id"] == r["name"] == "testhost" and r["state"] == "online" for r in rows)
    assert all(r["metrics"]["processes_live"] == 4 and r["metrics"]["restarts"] == 0 for r in rows)
    # the row's figures are the "*" headline of the same second, as on the console
    frames_by_now = {m["now"]: m for m in run["host"].of("host.frame")}
    same = [(m, frames_by_now[m["now"]]) for m in updates if m["now"] in frames_by_now]
    for update, frame in same:
        headline = frame["recent"]["groups"].get("*", {})
        assert update["hosts"][0]["metrics"]["throughput"] == headline.get("throughput")
    assert len(same) >= 15


def test_bad_clients_are_answered_or_closed_and_nobody_else_notices(run):
    at, bad = run["attacked"]
    assert bad["garbage"] == [
        "not JSON", "messages are JSON text", "a message is a JSON object",
        "the agent's local view serves the top tab only", "unknown scope (fleet or host)",
        "unknown message type (subscribe or unsubscribe)"]
    assert bad["huge"] == 1009  # message too big
    code, reasons = bad["flood"]
    assert code == 4429 and reasons[0].startswith("unknown message type")
    assert any(r.startswith("too many messages") for r in reasons)
    assert bad["mid_stream"] > 0
    # the good client's frames kept coming through the attacks, and the agent kept decoding
    arrivals = [when for when, m in run["host"].messages if m["type"] == "host.frame"]
    assert any(when < at for when in arrivals) and any(when > at + 8 for when in arrivals)
    assert max(b - a for a, b in itertools.pairwise(arrivals)) < 2.5
    decoded = [(when, m["agent"]["decoded"]) for when, m in run["host"].messages if m["type"] == "host.frame"]
    assert decoded[-1][1] > max(n for when, n in decoded if when <= at + 2) > 0
