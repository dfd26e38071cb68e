"""End to end: real agents -> the console under daphne -> Redis -> live WebSocket clients.

Nothing here runs in-process: the console is ``daphne console.asgi:application``
started after ``manage.py migrate``, agents are ``python -m ingest serve
--console ...`` fed by real Apache + mod_wsgi 6.1.1 or by ``python -m
ingest simulate``, and clients speak docs/live-protocol.md over a real
WebSocket with a user API token. See tests/support/console.py.

Counts are exact: what the agent decoded (its --stats-file) is compared
with what the window store holds (``araw`` through the store's own API),
and what Apache answered with what the console shows.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.console import (
    ConsoleSite,
    LiveClient,
    RedisServer,
    create_pg_database,
    drop_pg_database,
    live_clients,
    note,
    read_store,
    stored_samples,
    unique,
)
from support.deployment import Deployment, check_exact_delivery, remove
from support.modwsgi import ModWsgiServer, send_mix, skip_unless_available, tally, wait_until, work_dir

from stack.procs import tail

CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
NO_SUCH_HOST = {"type": "error", "reason": "no such host"}
CONNECTED = re.compile(r"connected to the console as host \S+ \(.*?\); (\d+) batches to send")


def status_of(metrics: dict[str, Any] | None) -> Counter[str]:
    metrics = metrics or {}
    return Counter({name: int(metrics.get(f"status_{name}") or 0) for name in CLASSES})


def frame_status(frames: list[dict[str, Any]], host_id: int) -> Counter[str]:
    total: Counter[str] = Counter()
    for frame in frames:
        if frame.get("host") == host_id:
            total.update(status_of(frame["groups"].get("*")))
    return total


def store_status(site: ConsoleSite, host_id: int, since: float) -> Counter[str]:
    """Status counts of every stored frame of the host since ``since`` (merged to one point)."""
    async def read(store: Any) -> Counter[str]:
        series = await store.aframes(host_id, "*", since, time.time() + 1, 1)
        frame = series[0][1] if series else {}
        return Counter({name: int(frame.get(f"s{i + 1}", 0)) for i, name in enumerate(CLASSES)})
    return read_store(site, read)


# -- 1. real Apache + mod_wsgi ------------------------------------------------------------

MIX = {"/": 23, "/nf": 7, "/err": 3}
CHUNKS = ({"/": 8, "/nf": 3, "/err": 1}, {"/": 8, "/nf": 2, "/err": 1}, {"/": 7, "/nf": 2, "/err": 1})
CODES = {"/": 200, "/nf": 404, "/err": 500}
EXPECTED = Counter({"1xx": 0, "2xx": 23, "3xx": 0, "4xx": 7, "5xx": 3})


@pytest.mark.modwsgi
def test_real_modwsgi_requests_reach_a_team_member_exactly(deploy):
    skip_unless_available()
    tag = unique()
    host, user = f"{tag}-web", f"{tag}-ann"
    dep = deploy({f"{tag}-payments": {"hosts": [host], "users": [user]}})
    host_id = dep.fleet["hosts"][host]["id"]
    with work_dir("wf-e2e-mw-") as mw:  # www-data must reach the socket: /tmp/..., 0755
        agent = dep.agent(host, sock=mw / "telemetry.sock")
        since = time.time() - 5
        assert wait_until(lambda: agent.connections() >= 1, 15), dep.diagnostics()
        with live_clients(LiveClient(dep.site.live_url, dep.fleet["users"][user]["token"], "ann")) as [ann]:
            hello = ann.wait_for(lambda m: m["type"] == "hello", 5)
            assert hello["user"] == user and hello["store"] == "redis"
            # Subscribed before Apache starts: every frame of the load is published to us.
            first = ann.request({"type": "subscribe", "scope": "host", "host": host_id, "window": 600},
                                lambda m: m["type"] in ("host.snapshot", "error"))
            assert first["type"] == "host.snapshot" and first["totals"]["requests"] == 0
            server = ModWsgiServer(mw, telemetry_socket=agent.sock, processes=2, threads=4, interval=0.5)
            with server:
                note(f"Apache up on {server.port} in {server.timings['ready']:.2f} s")
                t = time.monotonic()
                responses = []
                for i, chunk in enumerate(CHUNKS):  # over several seconds: several frames to sum
                    if i:
                        time.sleep(0.8)
                    responses += send_mix(server.port, chunk, concurrency=8)
                assert tally(responses) == Counter({(p, CODES[p]): n for p, n in MIX.items()})
                note(f"{len(responses)} requests answered over {time.monotonic() - t:.2f} s")
                # Poll the store until the mix is written, then make sure nothing more comes.
                reached = wait_until(lambda: sum(store_status(dep.site, host_id, since).values()) >= 33, 20,
                                     step=0.2)
                written_at = time.time()
                note(f"store holds the whole mix {time.monotonic() - t:.2f} s after the load began")
                assert reached, f"store: {store_status(dep.site, host_id, since)}\n{dep.diagnostics()}"
                time.sleep(1.0)
                assert store_status(dep.site, host_id, since) == EXPECTED
                # Frames trail by PUBLISH_DELAY: wait for the one of the second the mix completed in.
                ann.wait_for(lambda m: m["type"] == "host.frame" and not m.get("partial")
                             and m["t"] >= math.floor(written_at), 10)
                frames = [f for f in ann.of_type("host.frame") if not f.get("partial")]
                partial = [f for f in ann.of_type("host.frame") if f.get("partial")]
                snapshot = ann.request(
                    {"type": "subscribe", "scope": "host", "host": host_id, "window": 600},
                    lambda m: m["type"] == "host.snapshot")
        stats = agent.stop()
    busy = [(f["t"], dict(status_of(f["groups"].get("*")))) for f in frames
            if (f["groups"].get("*") or {}).get("requests")]
    note(f"frames with requests: {busy}")
    note(f"{len(frames)} frames received; summed status {dict(frame_status(frames, host_id))}; "
         f"snapshot totals {snapshot['totals']}")
    assert agent.returncode == 0
    totals = snapshot["totals"]
    assert totals["requests"] == 33
    assert Counter({k: int(totals[f"status_{k}"] or 0) for k in CLASSES}) == EXPECTED
    assert all(f["host"] == host_id for f in frames)
    assert frame_status(frames, host_id) == EXPECTED
    assert sum(int((f["groups"].get("*") or {}).get("requests") or 0) for f in frames) == 33
    # Each second was on screen before it closed: one agent wrote it, so the newest partial
    # version of a second already held what the complete one holds.
    newest_partial = {f["t"]: f for f in partial}
    assert newest_partial and frame_status(list(newest_partial.values()), host_id) == EXPECTED
    procs = [p for p in stats["processes"] if p["group"]]
    assert sum(p["requests"] for p in procs) == 33
    assert stats["counters"]["lost"] == 0
    check_exact_delivery(dep.site, host_id, since, stats)  # Apache's shutdown samples too


# -- 2 and 5. teams see only their hosts, on SQLite and on PostgreSQL ----------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    name = unique("db").lower()
    url = create_pg_database(name)
    try:
        yield url
    finally:
        drop_pg_database(name)


def visible_ids(message: dict[str, Any]) -> set[int]:
    """Every host id a message speaks of."""
    ids: set[int] = set()
    if "host" in message and isinstance(message["host"], int):
        ids.add(message["host"])
    for entry in message.get("hosts", []):
        ids.add(entry["id"])
    return ids


def test_team_members_see_only_their_teams_hosts(database_url, deploy):
    tag = unique()
    team_a, team_b = f"{tag}-teamA", f"{tag}-teamB"
    a1, a2, b1 = f"{tag}-a1", f"{tag}-a2", f"{tag}-b1"
    ann, bob = f"{tag}-ann", f"{tag}-bob"
    dep = deploy({team_a: {"hosts": [a1, a2], "users": [ann]}, team_b: {"hosts": [b1], "users": [bob]}},
                 database_url=database_url)
    ids = {name: dep.fleet["hosts"][name]["id"] for name in (a1, a2, b1)}
    for seed, name in enumerate((a1, a2, b1)):
        dep.simulator(dep.agent(name), seed=seed + 1, processes=2)
    assert wait_until(lambda: all(a.connections() >= 1 for a in dep.agents), 15), dep.diagnostics()
    note("three agents connected")
    since = time.time() - 60

    def ticking() -> bool:
        return all(any(s["k"] == 2 for s in stored_samples(dep.site, ids[h], since)) for h in (a1, a2, b1))

    assert wait_until(ticking, 15, step=0.2), dep.diagnostics()
    note("every host has ticks in the store")
    url = dep.site.live_url
    tokens = {u: dep.fleet["users"][u]["token"] for u in (ann, bob)}
    names = ("ann-fleet", "ann-a1", "ann-a2", "ann-probe", "bob-fleet", "bob-b1", "bob-probe")
    clients = {name: LiveClient(url, tokens[ann if name.startswith("ann") else bob], name) for name in names}
    with live_clients(*clients.values()):
        c = clients
        for name in ("ann-fleet", "bob-fleet"):
            c[name].send({"type": "subscribe", "scope": "fleet"})
        for name, host in (("ann-a1", a1), ("ann-a2", a2), ("bob-b1", b1)):
            c[name].send({"type": "subscribe", "scope": "host", "host": ids[host], "window": 60})
        answers = {
            "ann->b1": c["ann-probe"].request({"type": "subscribe", "scope": "host", "host": ids[b1]},
                                              lambda m: m["type"] == "error"),
            "ann->none": c["ann-probe"].request({"type": "subscribe", "scope": "host", "host": 10**9},
                                                lambda m: m["type"] == "error"),
            "bob->a1": c["bob-probe"].request({"type": "subscribe", "scope": "host", "host": ids[a1]},
                                              lambda m: m["type"] == "error"),
            "bob->a2": c["bob-probe"].request({"type": "subscribe", "scope": "host", "host": ids[a2]},
                                              lambda m: m["type"] == "error"),
        }
        note("subscribed; probes answered")
        time.sleep(5.0)
        closed = {name: (client.closed, client.error) for name, client in c.items()}
    seen = {name: client.snapshot() for name, client in c.items()}
    for name, messages in seen.items():
        note(f"{name}: {dict(Counter(m['type'] for m in messages))}; closed={closed[name]}")
    for key, answer in answers.items():
        assert {k: v for k, v in answer.items() if k != "_at"} == NO_SUCH_HOST, key

    for user, own, other, other_names in ((ann, {ids[a1], ids[a2]}, {ids[b1]}, (b1, team_b)),
                                          (bob, {ids[b1]}, {ids[a1], ids[a2]}, (a1, a2, team_a))):
        prefix = user.rsplit("-", 1)[1]
        for name, client in c.items():
            if not name.startswith(prefix):
                continue
            assert closed[name] == (None, None), (name, closed[name])
            for message, text in zip(seen[name], client.texts, strict=False):
                assert not visible_ids(message) & other, (name, message)
                assert visible_ids(message) <= own, (name, message)
                for foreign in other_names:
                    assert foreign not in text, (name, foreign, text[:300])
        fleet = seen[f"{prefix}-fleet"]
        snapshot = next(m for m in fleet if m["type"] == "fleet.snapshot")
        assert {h["id"] for h in snapshot["hosts"]} == own
        updated = {h["id"] for m in fleet if m["type"] == "fleet.update" for h in m["hosts"]}
        assert updated == own, f"{prefix}: fleet updates for {updated}, expected {own}"
        online = {h["id"] for m in fleet if m["type"] == "fleet.update" for h in m["hosts"] if h["online"]}
        assert online == own
        busy = {h["id"] for m in fleet if m["type"] == "fleet.update" for h in m["hosts"]
                if (h["metrics"].get("throughput") or 0) > 0}
        assert busy == own

    for name, host in (("ann-a1", a1), ("ann-a2", a2), ("bob-b1", b1)):
        frames = [m for m in seen[name] if m["type"] == "host.frame"]
        snap = next(m for m in seen[name] if m["type"] == "host.snapshot")
        assert snap["host"] == ids[host]
        assert {f["host"] for f in frames} == {ids[host]}
        busy = [f for f in frames if (f["groups"].get("*") or {}).get("requests")]
        note(f"{name}: {len(frames)} frames, {len(busy)} with requests")
        assert len(frames) >= 4 and len(busy) >= 3


# -- 3. the console killed mid-stream --------------------------------------------------------


def test_console_killed_mid_stream_loses_and_duplicates_nothing(deploy):
    tag = unique()
    host = f"{tag}-web"
    dep = deploy({f"{tag}-ops": {"hosts": [host], "users": []}})
    host_id = dep.fleet["hosts"][host]["id"]
    since = time.time() - 60
    agent = dep.agent(host)
    sim = dep.simulator(agent, seed=7, processes=2)
    assert wait_until(lambda: agent.connections() >= 1, 15), dep.diagnostics()
    assert wait_until(lambda: len(stored_samples(dep.site, host_id, since)) >= 20, 15, step=0.2)
    time.sleep(1.0)
    before = len(stored_samples(dep.site, host_id, since))
    dep.site.kill()
    killed = time.monotonic()
    note(f"daphne SIGKILLed with {before} samples stored")
    time.sleep(3.0)
    dep.site.start()
    note(f"daphne restarted on the same port {time.monotonic() - killed:.2f} s after the kill "
         f"(start took {dep.site.starts[-1]:.2f} s)")
    assert wait_until(lambda: agent.connections() >= 2, 30), dep.diagnostics()
    reconnected = time.monotonic()
    note(f"agent reconnected {reconnected - killed:.2f} s after the kill")
    resent = CONNECTED.findall(agent.log_text())
    note(f"batches to send at each connect: {resent}")
    assert int(resent[1]) > 0  # it did spool during the outage
    time.sleep(1.0)
    summary = sim.stop()
    time.sleep(0.3)
    stats = agent.stop()
    note(f"simulator {summary}; agent exit {agent.returncode}")
    assert agent.returncode == 0
    assert "undelivered" not in agent.log_text()
    count = check_exact_delivery(dep.site, host_id, since, stats)
    assert count > before


# -- 4. a Redis outage -------------------------------------------------------------------------
#
# One outage, watched from every side (module fixture), then judged by separate
# tests: the data path (spool, resend, exact window) and what the console
# tells agents and people while it lasts (docs/agent-protocol.md: 4503;
# docs/live-protocol.md: a ``status`` message with store_ok false).
#
# The private Redis runs with --save '' and AOF fsync on every write: a
# SIGKILL then loses nothing Redis acknowledged, so "the store holds exactly
# what the agent decoded" stays an exact check. (With --appendonly no, as a
# throw-away Redis, the restart would come back empty: every batch acked
# before the kill would be gone with it, along with the high-water marks.)

CLOSED = re.compile(r"^(\S+ \S+) WARNING ingest.forwarder: console connection closed \((\d+)[^)]*\); "
                    r"(\d+) batches spooled", re.M)
AFTER_CLIENTS = 3


def _public(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "_at"}


def _client_view(client: LiveClient, since: float) -> dict[str, Any]:
    """What a client got from ``since`` on: close code, messages (short), frames and updates."""
    messages = [m for m in client.snapshot() if m["_at"] >= since]
    return {"closed": client.closed, "close_reason": client.close_reason,
            "messages": [{k: v for k, v in m.items() if k in ("type", "store_ok", "reason")}
                         for m in messages if m["type"] not in ("host.frame", "fleet.update")],
            "frames_and_updates": sum(1 for m in messages if m["type"] in ("host.frame", "fleet.update"))}


@pytest.fixture(scope="module")
def redis_outage() -> Iterator[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="wf-e2e-outage-", dir="/tmp"))
    redis = RedisServer(work, persistent=True).start()
    site = ConsoleSite(work, redis_url=redis.url)
    dep = Deployment(site)
    clients: list[LiveClient] = []
    seen: dict[str, Any] = {"errors": []}
    try:
        tag = unique()
        host, user = f"{tag}-web", f"{tag}-ann"
        dep.fleet = site.setup({f"{tag}-ops": {"hosts": [host], "users": [user]}})
        site.start()
        host_id, token = dep.fleet["hosts"][host]["id"], dep.fleet["users"][user]["token"]
        since = time.time() - 60
        agent = dep.agent(host)
        sim = dep.simulator(agent, seed=11, processes=2)
        assert wait_until(lambda: agent.connections() >= 1, 15), dep.diagnostics()

        def client(name: str) -> LiveClient:
            clients.append(LiveClient(site.live_url, token, name))
            return clients[-1].connect()

        watcher, fleet = client("watcher"), client("fleet")
        for i in range(2):  # more consumers, more pooled channel-layer connections when Redis dies
            client(f"extra{i}").request({"type": "subscribe", "scope": "host", "host": host_id, "window": 60},
                                        lambda m: m["type"] == "host.snapshot")
        watcher.request({"type": "subscribe", "scope": "host", "host": host_id, "window": 60},
                        lambda m: m["type"] == "host.snapshot")
        fleet.request({"type": "subscribe", "scope": "fleet"}, lambda m: m["type"] == "fleet.snapshot")
        watcher.wait_for(lambda m: m["type"] == "host.frame" and m["groups"], 10)
        assert wait_until(lambda: len(stored_samples(site, host_id, since)) >= 20, 15, step=0.2)

        redis.kill()
        kill_mono = time.monotonic()
        note("private Redis SIGKILLed")
        assert wait_until(lambda: CLOSED.search(agent.log_text()), 15), dep.diagnostics()
        seen["first_close_after"] = time.monotonic() - kill_mono
        try:  # a client that connects and subscribes during the outage
            late = client("late")
            late.send({"type": "subscribe", "scope": "host", "host": host_id, "window": 60})
            late.wait_for(lambda m: m["type"] in ("status", "error", "host.snapshot"), 4)
        except (AssertionError, RuntimeError) as exc:
            seen["errors"].append(f"late client: {exc}")
        # The watcher's page is told within one store check (3 s) plus the check itself; how
        # long that takes is noted, not asserted: a busy machine stretches it.
        def told_down() -> bool:
            return any(m["type"] == "status" and m.get("store_ok") is False and m["_at"] >= kill_mono
                       for m in clients[0].snapshot())

        if not wait_until(told_down, 20, step=0.05):
            seen["errors"].append(f"watcher never told; console log:\n{tail(site.log, 60)}")
        seen["told_after"] = time.monotonic() - kill_mono
        note(f"watcher told the store is down {seen['told_after']:.2f} s after the kill")
        time.sleep(max(0.0, 4.5 - (time.monotonic() - kill_mono)))
        seen["during"] = {c.name: _client_view(c, kill_mono) for c in clients}
        seen["closes"] = [(code, int(n)) for _, code, n in CLOSED.findall(agent.log_text())]

        redis.start()
        back = time.monotonic()
        seen["outage"] = back - kill_mono
        note(f"Redis back (AOF reloaded) after {seen['outage']:.2f} s")
        # New clients as soon as Redis answers: each subscribes to the host and stays
        # connected (holding a channel-layer connection), so together they go through the
        # channel layer's pool of connections opened before the outage.
        seen["after"] = []
        for i in range(AFTER_CLIENTS):
            after = client(f"after{i}")
            try:
                answer = after.request({"type": "subscribe", "scope": "host", "host": host_id, "window": 60},
                                       lambda m: m["type"] in ("host.snapshot", "status", "error"), 5)
                seen["after"].append(answer["type"])
            except AssertionError:
                seen["after"].append(f"closed {after.closed}")
        note(f"new clients right after Redis came back got: {seen['after']}")
        spooled: list[int] = []

        def reported() -> bool:
            try:
                status = read_store(site, lambda s: s.ahost_status([host_id]))[host_id]
            except Exception:
                return False
            spooled.append(status.get("counters", {}).get("spooled", 0))
            return max(spooled) > 0

        seen["heartbeat_spooled"] = max(spooled) if wait_until(reported, 30, step=0.1) and spooled else 0
        seen["caught_up_after"] = time.monotonic() - back
        try:
            seen["caught_up_snapshot"] = _public(client("caught-up").request(
                {"type": "subscribe", "scope": "host", "host": host_id, "window": 60},
                lambda m: m["type"] in ("host.snapshot", "status", "error"), 5))
        except AssertionError as exc:
            seen["caught_up_snapshot"] = {"type": None, "failure": str(exc)}
        time.sleep(2.0)
        seen["recovered"] = {c.name: _client_view(c, back) for c in clients}
        seen["simulator"] = sim.stop()
        time.sleep(0.3)
        seen["stats"] = agent.stop()
        seen["agent_exit"] = agent.returncode
        seen["agent_log"] = agent.log_text()
        seen["connects"] = [int(n) for n in CONNECTED.findall(seen["agent_log"])]
        seen["samples"] = stored_samples(site, host_id, since)
        ticks = sorted(s["t"] for s in seen["samples"] if s["k"] == 2)
        first, last = math.floor(ticks[0]) + 1, math.floor(ticks[-1])
        series = read_store(site, lambda s: s.aframes(host_id, "*", first, last, 10_000))
        seen["tick_seconds"] = (first, last, {int(t) for t, frame in series if frame.get("n")})
        seen["site"], seen["host_id"], seen["since"] = site, host_id, since
        for name, view in seen["during"].items():
            note(f"during the outage, {name}: {view}")
        for name, view in seen["recovered"].items():
            note(f"after the outage, {name}: {view}")
        note(f"agent closes (code, batches spooled): {seen['closes']}; batches to send at each connect: "
             f"{seen['connects']}; heartbeat spooled={seen['heartbeat_spooled']}; caught up "
             f"{seen['caught_up_after']:.2f} s after Redis came back; other: {seen['errors']}")
        yield seen
    finally:
        for c in clients:
            c.close()
        dep.close()
        redis.kill()
        remove(work)


def test_redis_outage_spools_and_then_fills_the_window_without_a_hole(redis_outage):
    seen = redis_outage
    assert seen["agent_exit"] == 0
    assert any(n > 0 for _, n in seen["closes"]), seen["closes"]  # batches piled up in the spool
    assert seen["connects"][-1] > 0  # ... and were resent when the console could write again
    assert seen["heartbeat_spooled"] > 0  # the console was told (first heartbeat after welcome)
    check_exact_delivery(seen["site"], seen["host_id"], seen["since"], seen["stats"])
    first, last, seconds = seen["tick_seconds"]
    missing = sorted(set(range(first, last)) - seconds)
    note(f"1 s frames with ticks: {len(seconds & set(range(first, last)))} of {last - first}; "
         f"missing {missing}")
    assert not missing


def test_redis_outage_console_serves_live_clients_again(redis_outage):
    snapshot = redis_outage["caught_up_snapshot"]
    assert snapshot["type"] == "host.snapshot", snapshot
    assert snapshot["totals"]["requests"] > 0


def test_redis_outage_every_client_after_recovery_is_served(redis_outage):
    assert redis_outage["after"] == ["host.snapshot"] * AFTER_CLIENTS


def test_redis_outage_closes_agent_connections_with_4503(redis_outage):
    codes = {code for code, _ in redis_outage["closes"]}
    assert codes == {"4503"}, f"agent connections closed with {sorted(codes)} during the outage"


def test_redis_outage_is_reported_to_live_clients(redis_outage):
    during = redis_outage["during"]["watcher"]
    statuses = [m for m in during["messages"] if m["type"] == "status"]
    assert during["closed"] is None, f"watcher closed with {during['closed']} during the outage"
    assert statuses and statuses[0]["store_ok"] is False, redis_outage["errors"]
