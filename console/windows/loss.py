"""Loss counted once across agent restarts: the rule both window-store backends apply.

An agent's loss counters are cumulative for one run of one instance: a new
instance (an agent restarted without its spool directory) starts from 0, and
so does the same instance whose ledger was lost. Taking each heartbeat as
the host's loss would let a restart erase what was counted before; taking
only growth over one stored value would count a new instance's first loss
as 0. So the store keeps the latest counters per instance and adds each
heartbeat's growth over them to a host total per kind, which only grows.
"""

from __future__ import annotations

from collections.abc import Mapping

#: The agent's counters of what it lost, by kind (docs/agent-protocol.md): sequence gaps, its
#: receive queue, its spool full (batches, their samples, their seconds), samples the console
#: refused. An agent's counter restarts with a new instance (or from 0 without its ledger),
#: so what hosts show is the store's total of each: it only grows.
LOSS_KINDS = ("lost", "queue_drops", "dropped", "dropped_samples", "dropped_seconds", "refused_samples")
#: Agent instances whose latest loss counters a host keeps (the least recently heard go first):
#: one agent at a time, but an old instance heard again must not count its loss twice.
INSTANCES_KEPT = 16


def loss_growth(previous: Mapping[str, int], counters: Mapping[str, int]) -> dict[str, int]:
    """What each loss counter of a heartbeat adds to the host's totals, from the same
    instance's previous heartbeat: the growth, or all of it when it went down (the
    instance restarted without its ledger). The Redis backend runs it in Lua (COUNTERS)."""
    out = {}
    for kind in LOSS_KINDS:
        if kind in counters:
            value, before = counters[kind], previous.get(kind, 0)
            out[kind] = value - before if value >= before else value
    return out
