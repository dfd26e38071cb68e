"""What the agent knows about one mod_wsgi process, and the table's totals.

Plain records: ``state.ProcessTable`` fills them, the listeners (the
console forwarder, ``dump``) and the stats file read them.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from ..model.kinds import STATUS_CLASSES

COMPLETED_SLOW_KEPT = 200
_SCALAR = (int, float, str, bytes)


@dataclass(slots=True)
class Interpreter:
    """GC state of one Python interpreter ("" is the main one)."""

    snapshot: dict[str, Any] = field(default_factory=dict)
    events: int = 0
    dropped_events: int = 0  # summed: mod_wsgi sends a per-tick count
    size: int = 0  # bytes of the datagram the snapshot came from


@dataclass(slots=True)
class Process:
    pid: int
    incarnation: int
    first_seq: int
    last_seq: int
    late_join: bool
    first_seen: float
    last_seen: float
    state: str = "running"  # running, stopping, stopped, gone
    identity: dict[str, Any] = field(default_factory=dict)
    started_stamp: float | None = None
    last_stamp: float = 0.0
    interval: float = 1.0
    kept: int = 0  # bytes of the datagrams whose fields this process holds (ticks, slow, GC, STOPPED)
    tick_size: int = 0
    received: int = 0
    lost: int = 0
    malformed: int = 0
    by_kind: Counter[int] = field(default_factory=Counter)
    last_tick: dict[str, Any] = field(default_factory=dict)
    requests: int = 0
    status: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])
    shutdown_reason: str | None = None
    stopped: dict[str, Any] = field(default_factory=dict)
    slow_active: dict[Any, dict[str, Any]] = field(default_factory=dict)
    slow_completed: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=COMPLETED_SLOW_KEPT))
    slow_orphaned: int = 0
    interpreters: dict[str, Interpreter] = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.incarnation)

    @property
    def group(self) -> str | None:
        return self.identity.get("process_group")

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly view for logs, tests and (later) the console."""
        return {
            "pid": self.pid, "incarnation": self.incarnation, "state": self.state,
            "group": self.group, "hostname": self.identity.get("hostname"),
            "first_seq": self.first_seq, "last_seq": self.last_seq, "late_join": self.late_join,
            "received": self.received, "lost": self.lost, "malformed": self.malformed,
            "requests": self.requests, "status": dict(zip(STATUS_CLASSES, self.status, strict=True)),
            "shutdown_reason": self.shutdown_reason,
            "slow_active": len(self.slow_active), "slow_completed": len(self.slow_completed),
            "interpreters": sorted(self.interpreters),
        }


@dataclass
class Totals:
    received: int = 0
    decoded: int = 0
    malformed: int = 0
    lost: int = 0
    late_joins: int = 0
    incarnations: int = 0
    unknown_kinds: int = 0
    malformed_unattributed: int = 0
    evicted: int = 0  # processes forgotten early because the table was full
    seq_jumps: int = 0  # sequence jumps beyond belief: joined late, not counted as loss
    resumed: int = 0  # silent processes (gone, or heard by the agent's last run) that continued their seq
    errors: Counter[str] = field(default_factory=Counter)


