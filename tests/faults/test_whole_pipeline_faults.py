"""The fault suite: a simulated host streams through a real agent into a real console
(daphne, Redis), then one part fails. Each test gives the truth (what the simulator sent,
what the agent decoded), what the console holds and shows, and the loss it counted, and
asserts that they agree: exact totals, no duplicate, a clean Slow tab (no request shown
expired that completed), no phantom process, every loss counted.

The simulator never restarts its processes here (``--restart-probability 0``), so each
pid is one life and any second incarnation the console shows is a phantom.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from support.console import ConsoleSite, LiveClient, RedisServer, live_clients, note, stored_samples, unique
from support.deployment import Deployment, check_exact_delivery
from support.faults import SlowLink, completed_slow_requests, console_view, skewed_clock, slow_requests
from support.modwsgi import wait_until

PROCESSES = 4
#: The console's slow-request staleness in these tests: outages are made longer than it.
SLOW_STALE = 4
SIMULATION = ("--restart-probability", "0", "--slow-probability", "0.3", "--threads", "4")


def start(deploy: Any, **site: Any) -> tuple[Deployment, str, int]:
    tag = unique()
    host = f"{tag}-web"
    env = {"WSGI_FLEET_SLOW_STALE": str(SLOW_STALE), **site.pop("env", {})}
    dep = deploy({f"{tag}-ops": {"hosts": [host], "users": [f"{tag}-ann"]}}, env=env, **site)
    return dep, host, dep.fleet["hosts"][host]["id"]


def streaming(dep: Deployment, host: str, host_id: int, since: float, **agent: Any) -> tuple[Any, Any]:
    """An agent and its simulated host, running until the console holds some data."""
    a = dep.agent(host, **agent)
    sim = dep.simulator(a, seed=11, processes=PROCESSES // 2, extra=SIMULATION)
    assert wait_until(lambda: a.connections() >= 1, 20), dep.diagnostics()
    assert wait_until(lambda: len(stored_samples(dep.site, host_id, since)) >= 20, 20, step=0.2), \
        dep.diagnostics()
    return a, sim


def drained(dep: Deployment, agent: Any, connections: int) -> None:
    """Wait until the agent reconnected ``connections`` times in all and sent its spool."""
    assert wait_until(lambda: agent.connections() >= connections, 40), dep.diagnostics()
    time.sleep(2.0)


def finish(sim: Any, agent: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    summary = sim.stop()
    time.sleep(0.5)
    stats = agent.stop()
    note(f"simulator {summary}; agent counters {stats['counters']}")
    assert agent.returncode == 0
    return summary, stats


def check_console(site: ConsoleSite, host_id: int, since: float, stats: dict[str, Any],
                  processes: int = PROCESSES) -> Any:
    """Exact delivery, no phantom, a clean Slow tab, the agent's loss shown; returns the view."""
    count = check_exact_delivery(site, host_id, since, stats)
    view = console_view(site, host_id, since)
    agent_lives = {(p["pid"], p["incarnation"]) for p in stats["processes"]}
    note(f"console: {count} samples, lives {sorted(view.lives())}, slow {view.slow_states()}, "
         f"counters {view.counters}")
    assert view.lives() == agent_lives, "phantom or missing processes"
    assert len({pid for pid, _ in view.lives()}) == len(view.lives()) == processes
    completed = completed_slow_requests(view.samples)
    assert completed, "the simulator made no slow request to check"
    assert slow_requests(view.slow, "completed") == completed
    assert not slow_requests(view.slow, "expired") & completed, "completed requests shown expired"
    assert view.slow_states().get("expired", 0) == 0
    assert view.counters.get("lost", 0) == stats["counters"]["lost"]
    return view


def test_a_console_outage_longer_than_the_staleness_bound_replays_as_it_happened(deploy):
    dep, host, host_id = start(deploy)
    since = time.time() - 60
    agent, sim = streaming(dep, host, host_id, since)
    dep.site.kill()
    note(f"console down for {3 * SLOW_STALE} s (slow staleness {SLOW_STALE} s)")
    time.sleep(3 * SLOW_STALE)
    dep.site.start()
    drained(dep, agent, 2)
    summary, stats = finish(sim, agent)
    assert summary["dropped"] == summary["unreachable"] == 0
    check_console(dep.site, host_id, since, stats)


def test_redis_killed_with_the_required_persistence_loses_nothing_acknowledged(deploy, work):
    redis = RedisServer(work, persistent=True).start()
    try:
        dep, host, host_id = start(deploy, redis_url=redis.url)
        since = time.time() - 60
        agent, sim = streaming(dep, host, host_id, since)
        (user,) = dep.fleet["users"].values()
        ann = LiveClient(dep.site.live_url, user["token"], "ann")
        with live_clients(ann):
            ann.request({"type": "subscribe", "scope": "host", "host": host_id, "window": 60},
                        lambda m: m["type"] == "host.snapshot")
            redis.kill()
            note("redis-server SIGKILLed for 3 s")
            time.sleep(3.0)
            redis.start()
            back = len(ann.snapshot())
            # the open page resumes by itself: complete frames again, without a new subscribe
            ann.wait_for(lambda m: m["type"] == "host.frame" and not m.get("partial"), 20, after=back)
        time.sleep(2.0)
        _, stats = finish(sim, agent)
        check_console(dep.site, host_id, since, stats)
    finally:
        redis.kill()


def test_a_slow_link_delays_but_delivers_everything(deploy):
    dep, host, host_id = start(deploy)
    since = time.time() - 60
    with SlowLink(dep.site.port, rate=20_000) as link:
        url = f"ws://127.0.0.1:{link.port}/"
        agent = dep.agent(host, console_url=url)
        # a busier host than the others here: batches of several samples, as in production
        sim = dep.simulator(agent, seed=5, processes=8, extra=SIMULATION)
        assert wait_until(lambda: agent.connections() >= 1, 20), dep.diagnostics()
        time.sleep(8.0)
        summary = sim.stop()
        assert wait_until(lambda: len(stored_samples(dep.site, host_id, since)) >= summary["sent"], 60,
                          step=0.5), dep.diagnostics()
        stats = agent.stop()
        counters = stats["counters"]
        note(f"simulator {summary}; {link.carried} bytes over the link; batches of "
             f"{counters['batch_bytes']} bytes went as {counters['wire_bytes']} (zlib)")
    # compressed batches: the link carries a fraction of the samples' size (simulated samples
    # shrink about 3x in batches this small; real captures 7x)
    assert 0 < counters["wire_bytes"] * 2 < counters["batch_bytes"]
    check_console(dep.site, host_id, since, stats, processes=16)


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGKILL"])
def test_an_agent_restart_counts_what_it_missed_and_keeps_its_processes(deploy, signal_name):
    dep, host, host_id = start(deploy)
    since = time.time() - 60
    agent, sim = streaming(dep, host, host_id, since)
    if signal_name == "SIGKILL":
        agent.kill()
    else:
        agent.stop()
    note(f"agent stopped ({signal_name}) for 3 s while the simulator goes on")
    time.sleep(3.0)
    agent.start()
    drained(dep, agent, 2)
    summary = sim.stop()
    stopped = time.time()
    # the console has the agent's final counters once a heartbeat came after the last datagram
    # (datagrams the killed agent had received but not decoded are not "received": they are lost)
    assert wait_until(lambda: (console_view(dep.site, host_id, since).status.get("last_heartbeat") or 0)
                      > stopped + 0.5, 30, step=0.5), dep.diagnostics()
    agent.stop()
    view = console_view(dep.site, host_id, since)
    ticks = [s for s in view.samples if s["k"] == 2]
    note(f"simulator {summary}; console {len(view.samples)} samples ({len(ticks)} ticks), lives "
         f"{sorted(view.lives())}, counters {view.counters}")
    # every datagram the simulator made is stored or counted lost, once
    made = summary["sent"] + summary["dropped"] + summary["unreachable"]
    shown_lost = view.counters.get("lost", 0)
    assert len(view.samples) + shown_lost == made, (len(view.samples), shown_lost, made)
    assert len(view.lives()) == PROCESSES, "phantom processes after the agent restart"
    # a request whose completion was sent while no agent listened is rightly expired; one whose
    # completion the console holds never is
    completed = completed_slow_requests(view.samples)
    assert slow_requests(view.slow, "completed") == completed
    assert not slow_requests(view.slow, "expired") & completed


@pytest.mark.parametrize("offset", [120.0, -120.0])
def test_an_agent_host_with_a_skewed_clock_is_placed_on_the_console_clock(deploy, work, offset):
    """The agent and the server it watches share the host's wrong clock (mod_wsgi stamps
    its datagrams with it); the console measures the skew and places the samples by its own."""
    dep, host, host_id = start(deploy)
    since = time.time() - 60
    skewed = skewed_clock(work, offset)
    agent = dep.agent(host, env=skewed)
    sim = dep.simulator(agent, seed=3, processes=PROCESSES // 2, extra=SIMULATION, env=skewed)
    assert wait_until(lambda: agent.connections() >= 1, 20), dep.diagnostics()
    (user,) = dep.fleet["users"].values()
    with live_clients(LiveClient(dep.site.live_url, user["token"], "ann")) as [ann]:
        ann.request({"type": "subscribe", "scope": "host", "host": host_id, "window": 60},
                    lambda m: m["type"] == "host.snapshot")
        # live frames with ticks arrive on the console's clock, and the page is told the skew
        frame = ann.wait_for(lambda m: m["type"] == "host.frame" and not m.get("partial")
                             and (m["groups"].get("*") or {}).get("throughput"), 30)
        assert abs(frame["t"] - time.time()) < 10
        def corrected(m: dict[str, Any]) -> bool:
            clock = (m.get("agent_state") or {}).get("clock") or {}
            return m["type"] == "host.frame" and clock.get("shown") and clock.get("shift")

        clock = ann.wait_for(corrected, 30)["agent_state"]["clock"]
        note(f"host frame says: {clock}")
        assert ("ahead" if offset > 0 else "behind") in clock["text"]
        assert abs(clock["skew"] - offset) < 5
    summary, stats = finish(sim, agent)
    check_exact_delivery(dep.site, host_id, since - 300, stats)  # stamps before the correction too
    view = console_view(dep.site, host_id, since - 300)
    stamps = sorted(s["t"] for s in view.samples if s["k"] == 2)
    note(f"simulator {summary}; tick stamps {stamps[0] - since:.1f} .. {stamps[-1] - since:.1f} s after "
         f"the test's start; counters {view.counters}")
    now = time.time()
    # after the first heartbeat, every tick is placed within a few seconds of the console's clock
    assert all(abs(t - now) < 60 for t in stamps[len(stamps) // 2:])
    assert len(view.lives()) == PROCESSES
