"""Per-process sequence numbers: what was lost, and when a process is new.

mod_wsgi keeps one u32 counter per emitting process, shared by every kind
of datagram, +1 per datagram and never reset inside a process; over a
local UNIX socket nothing is reordered. So (docs/wire-protocol.md, "Sequence numbers"):

- a gap is loss (the receiver was not bound, or the kernel queue was full);
- a first sighting with seq > 1 is a late join, not loss: the process was
  already running when we started listening;
- a STARTED, or a seq that goes backwards, is a new incarnation of the pid
  (a restart that reused the pid); whatever came before its seq is loss.

The counter is only as honest as its senders: anyone who may write to the
socket can forge a seq. So a gap is believed only up to what a process
could have sent in the time since it was last heard (``plausible_gap``);
a bigger jump is not loss but a new life we joined late, counted as an
implausible jump, so one forged datagram cannot add 4e9 to the loss shown.
"""

from __future__ import annotations

from typing import NamedTuple

from ..model.kinds import STARTED
from .wire import U32_MAX


class Step(NamedTuple):
    """What one datagram's seq means for its process."""

    new_incarnation: bool
    lost: int
    late_join: bool = False
    implausible: bool = False  # a jump beyond plausible_gap: joined late, not loss


FIRST_IN_ORDER = Step(True, 0)
IN_ORDER = Step(False, 0)
LATE_JOIN = Step(True, 0, late_join=True)
JUMPED = Step(True, 0, late_join=True, implausible=True)

#: Datagrams a gap may hide whatever the time (a burst the kernel queue
#: dropped), and per second since the process was last heard: far above
#: what mod_wsgi sends (ticks, slow records, a GC event per collection).
GAP_FLOOR = 10_000
GAP_PER_SECOND = 10_000


def plausible_gap(elapsed: float) -> int:
    """The most datagrams a process can have lost in ``elapsed`` seconds."""
    if not elapsed > 0:  # NaN from a broken clock counts as no time at all
        return GAP_FLOOR
    return GAP_FLOOR + int(min(elapsed, 2.0**32) * GAP_PER_SECOND)


def step(last: int | None, seq: int, kind: int, elapsed: float = 0.0) -> Step:
    """Classify ``seq`` given the previous seq of the same pid (None if unseen).

    ``elapsed`` is the time since that previous datagram, which bounds the
    loss a gap may claim.
    """
    if last is None:
        if kind == STARTED or seq <= 1:
            return FIRST_IN_ORDER
        return LATE_JOIN
    if kind == STARTED:
        # A STARTED always opens a new life, even if its seq looks in order.
        return _new_life(seq, elapsed)
    expected = 0 if last == U32_MAX else last + 1
    if seq == expected:
        return IN_ORDER
    if seq > last:
        lost = seq - last - 1
        return Step(False, lost) if lost <= plausible_gap(elapsed) else JUMPED
    # Backwards without a STARTED: a new process reused the pid and its
    # first datagrams (STARTED included) never reached us.
    return _new_life(seq, elapsed)


def _new_life(seq: int, elapsed: float) -> Step:
    lost = max(seq - 1, 0)
    return Step(True, lost) if lost <= plausible_gap(elapsed) else JUMPED


def peek(data: bytes) -> int | None:
    """The seq in a datagram's header, read even when the rest does not decode."""
    if len(data) >= 16:
        return int.from_bytes(data[12:16], "little")
    return None
