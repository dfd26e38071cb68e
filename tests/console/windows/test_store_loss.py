"""Every loss counted once across agent restarts, on both backends.

An agent's loss counters start again from 0 with a new instance (restarted
without a spool directory), or with the same instance when its ledger was
lost; the host page and the fleet row must still show all that was lost,
never less than before, and a heartbeat sent twice must not count twice.
"""

from __future__ import annotations

import pytest

from console.live import summary
from console.windows import HOST
from console.windows.loss import INSTANCES_KEPT
from ingest.model.frames import derive, merge

pytestmark = pytest.mark.asyncio
H = 45
T0 = 1795378300.0
ROW = {"id": H, "name": "web-45", "team": "payments", "labels": {}, "agent_version": ""}


class Clock:
    """The console's clock: heartbeats five seconds apart."""

    def __init__(self) -> None:
        self.at = T0


class Agent:
    """Heartbeats of one agent instance."""

    def __init__(self, store, instance: str, clock: Clock):
        self.store, self.instance, self.clock = store, instance, clock

    async def beat(self, **counters: int) -> dict[str, int]:
        """The host's loss totals the store returns (for the host's database row)."""
        self.clock.at += 5
        return await self.store.aset_counters(H, {"received": 1000, **counters}, self.clock.at,
                                       instance=self.instance)


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def shown(store, clock: Clock) -> dict[str, int]:
    """The loss counters as the fleet row shows them, and the loss in the host's charts."""
    status = (await store.ahost_status([H]))[H]
    row = summary.fleet_entry(ROW, status, None, clock.at)["agent"]
    counters = status["counters"]
    series = await store.aframes(H, HOST, T0, clock.at + 1, 1, now=clock.at + 1)
    charted = derive(merge(frame for _, frame in series), clock.at + 1 - T0)["loss"] if series else 0
    return {"row lost": row["lost"], "row dropped": row["dropped"], "charts": charted,
            **{k: counters.get(k, 0) for k in ("lost", "queue_drops", "dropped", "dropped_samples")}}


async def test_loss_of_two_instances_and_a_restarted_counter_adds_up_exactly(store, clock):
    first = Agent(store, "a1", clock)
    await first.beat(lost=0, queue_drops=0, dropped=0)
    await first.beat(lost=1200, queue_drops=10, dropped=1)
    await first.beat(lost=2901, queue_drops=25, dropped=3)
    # restarted without a spool directory: a new instance, counting from 0
    second = Agent(store, "b2", clock)
    await second.beat(lost=0, queue_drops=0, dropped=0, dropped_samples=0)
    await second.beat(lost=500, queue_drops=4, dropped=0, dropped_samples=120)
    totals = await second.beat(lost=801, queue_drops=4, dropped=0, dropped_samples=120)
    assert totals == {"lost": 3702, "queue_drops": 29, "dropped": 3, "dropped_samples": 120}
    assert await shown(store, clock) == {"row lost": 2901 + 801, "row dropped": 3, "charts": 2901 + 801,
                                  "lost": 3702, "queue_drops": 29, "dropped": 3, "dropped_samples": 120}
    # the same instance restarted without its ledger: its counter starts from 0 again
    await second.beat(lost=0, queue_drops=0, dropped=0, dropped_samples=0)
    await second.beat(lost=100, queue_drops=1, dropped=2, dropped_samples=40)
    # ... and with its ledger: it goes on from where it was
    await second.beat(lost=150, queue_drops=1, dropped=2, dropped_samples=45)
    assert await shown(store, clock) == {"row lost": 3852, "row dropped": 5, "charts": 3852,
                                  "lost": 3852, "queue_drops": 30, "dropped": 5, "dropped_samples": 165}


async def test_a_heartbeat_sent_twice_or_an_old_instance_heard_again_does_not_count_twice(store, clock):
    first, second = Agent(store, "a1", clock), Agent(store, "b2", clock)
    await first.beat(lost=40, queue_drops=2)
    await second.beat(lost=7, dropped_samples=3)
    before = await shown(store, clock)
    await second.beat(lost=7, dropped_samples=3)  # the same counters again
    await first.beat(lost=40, queue_drops=2)  # the old instance, late
    assert await shown(store, clock) == before == {"row lost": 47, "row dropped": 0, "charts": 47, "lost": 47,
                                            "queue_drops": 2, "dropped": 0, "dropped_samples": 3}


async def test_the_latest_instances_are_remembered_and_a_total_never_goes_down(store, clock):
    agents = [Agent(store, f"i{n}", clock) for n in range(INSTANCES_KEPT + 4)]
    totals = []
    for agent in agents:
        await agent.beat(lost=10)
        totals.append((await shown(store, clock))["lost"])
    assert totals == [10 * (n + 1) for n in range(len(agents))]
    for agent in agents[-INSTANCES_KEPT:]:
        await agent.beat(lost=10)  # heard again: nothing new
    assert (await shown(store, clock))["lost"] == 10 * len(agents)


async def test_a_heartbeat_without_loss_counters_shows_none(store, clock):
    assert await Agent(store, "a1", clock).beat() == {}
    assert (await store.ahost_status([H]))[H]["counters"] == {"received": 1000}
