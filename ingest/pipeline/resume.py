"""Processes that may still be alive although the agent stopped hearing them.

mod_wsgi never resets a process's sequence counter, so a pid that speaks
again with a seq above the last one heard (and no STARTED) is the same
process: what it sent meanwhile was lost, not a new life begun. Two kinds
of such processes are kept here, by pid:

- one the process table marked gone after SILENT_INTERVALS of silence (a
  full kernel queue, a stalled host, an agent that could not keep up);
- one the agent's previous run was hearing when it stopped (``Mark``, kept in
  the spool directory by ``ledger.py``): datagrams sent while no agent was
  bound are estimated from its next seq.

Either comes back as the same incarnation with the gap counted as loss, so
a silence makes neither a phantom process nor an uncounted gap. Bounded:
the entries silent the longest go first.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import NamedTuple

from .process import Process

#: A process the last run heard longer ago than this is not taken for the one speaking now: its
#: pid has had time to be reused by a process whose STARTED was lost and whose seq is higher.
MARK_HORIZON = 86400.0


class Mark(NamedTuple):
    """A process's place in its sequence, as saved in the spool directory."""

    pid: int
    incarnation: int
    seq: int
    heard: float  # epoch s of its last datagram: the gap's plausibility bound runs on wall time
    group: str | None = None  # slow and GC samples before its next tick still get their group
    ended: bool = False  # it sent STOPPED: its pid's next datagram is a new life


class Dormant:
    """pid -> the silent process a continuing seq would resume."""

    def __init__(self, limit: int):
        self.limit = max(1, limit)
        self._procs: OrderedDict[int, Process] = OrderedDict()

    def __len__(self) -> int:
        return len(self._procs)

    def add(self, proc: Process) -> None:
        self._procs.pop(proc.pid, None)
        self._procs[proc.pid] = proc
        if len(self._procs) > self.limit:
            self._procs.popitem(last=False)

    def pop(self, pid: int) -> Process | None:
        return self._procs.pop(pid, None)

    def values(self) -> list[Process]:
        return list(self._procs.values())

    def remember(self, mark: Mark, last_seen: float) -> None:
        """Keep a process the previous run heard; ``last_seen`` on the table's clock."""
        self.add(_stand_in(mark, last_seen))

    def forget(self, proc: Process) -> None:
        """The table lets ``proc`` go: what it holds goes with it, its place in its sequence stays."""
        if self._procs.get(proc.pid) is proc:
            self._procs[proc.pid] = _stand_in(mark_of(proc, 0.0, 0.0), proc.last_seen)


def _stand_in(mark: Mark, last_seen: float) -> Process:
    """A gone process reduced to what resuming it needs (its ticks, slow records and GC state are
    in no byte bound once the table has forgotten it)."""
    proc = Process(pid=mark.pid, incarnation=mark.incarnation, first_seq=mark.seq, last_seq=mark.seq,
                   late_join=False, first_seen=last_seen, last_seen=last_seen, state="gone")
    if mark.group is not None:
        proc.identity["process_group"] = mark.group
    return proc


def mark_of(proc: Process, now: float, wall: float) -> Mark:
    """``proc``'s mark, its last datagram dated in wall time (``now`` is the table's clock)."""
    group = proc.group if isinstance(proc.group, str) else None
    return Mark(proc.pid, proc.incarnation, proc.last_seq, wall - (now - proc.last_seen), group,
                proc.state == "stopped")


def discard(procs: deque[Process], proc: Process) -> bool:
    """Take ``proc`` itself (not an equal record) out of ``procs``; False if it was not there."""
    for i, other in enumerate(procs):
        if other is proc:
            del procs[i]
            return True
    return False
