"""Per-process sequence numbers: what was lost, and when a process is new.

mod_wsgi keeps one u32 counter per emitting process, shared by every kind
of datagram, +1 per datagram and never reset inside a process; over a
local UNIX socket nothing is reordered. So (wire-protocol.md section 6):

- a gap is loss (the receiver was not bound, or the kernel queue was full);
- a first sighting with seq > 1 is a late join, not loss: the process was
  already running when we started listening;
- a STARTED, or a seq that goes backwards, is a new incarnation of the pid
  (a restart that reused the pid); whatever came before its seq is loss.
"""

from __future__ import annotations

from typing import NamedTuple

from .fields import Kind
from .wire import U32_MAX

STARTED = int(Kind.PROCESS_STARTED)


class Step(NamedTuple):
    """What one datagram's seq means for its process."""

    new_incarnation: bool
    lost: int
    late_join: bool = False


FIRST_IN_ORDER = Step(True, 0)
IN_ORDER = Step(False, 0)


def step(last: int | None, seq: int, kind: int) -> Step:
    """Classify ``seq`` given the previous seq of the same pid (None if unseen)."""
    if last is None:
        if kind == STARTED or seq <= 1:
            return FIRST_IN_ORDER
        return Step(True, 0, late_join=True)
    if kind == STARTED:
        # A STARTED always opens a new life, even if its seq looks in order.
        return Step(True, seq - 1 if seq > 1 else 0)
    expected = 0 if last == U32_MAX else last + 1
    if seq == expected:
        return IN_ORDER
    if seq > last:
        return Step(False, seq - last - 1)
    # Backwards without a STARTED: a new process reused the pid and its
    # first datagrams (STARTED included) never reached us.
    return Step(True, max(seq - 1, 0))
