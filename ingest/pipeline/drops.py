"""Datagrams the agent's own receive queue dropped, by pid and seq: not sequence loss as well.

The receive thread drops what does not fit in its queue and counts it in
``queue_drops``. Each of those used up a seq of its process, so that
process's next datagram shows a gap: a gap the queue already counted. The
process table takes such seqs out of the gap, so ``lost`` holds only the loss
nobody else counted (the kernel's queue, datagrams sent while no agent was
bound) and a console adding up the kinds of loss counts each datagram once.
"""

from __future__ import annotations

from collections import OrderedDict, deque

#: seqs kept at once: a dropped datagram whose process never speaks again is forgotten in time
MAX_DROPS = 1 << 16


class QueueDrops:
    """pid -> the seqs of its datagrams the receive queue dropped, not yet seen in a gap."""

    def __init__(self, limit: int = MAX_DROPS):
        self.limit = max(1, limit)
        self._seqs: OrderedDict[int, set[int]] = OrderedDict()
        self._count = 0

    def note(self, headers: deque[bytes]) -> None:
        """Take the (pid, seq) header bytes the receive thread left for the decode thread."""
        while headers:
            try:
                header = headers.popleft()
            except IndexError:  # a concurrent popleft cannot happen; an emptied deque can
                return
            if len(header) < 8:
                continue
            pid, seq = int.from_bytes(header[:4], "little"), int.from_bytes(header[4:8], "little")
            seqs = self._seqs.setdefault(pid, set())
            if seq not in seqs:
                seqs.add(seq)
                self._count += 1
            while self._count > self.limit:
                _, old = self._seqs.popitem(last=False)
                self._count -= len(old)

    def explained(self, pid: int, low: int, high: int) -> int:
        """How many seqs strictly between ``low`` and ``high`` of ``pid`` the queue dropped."""
        seqs = self._seqs.get(pid)
        if not seqs:
            return 0
        inside = [seq for seq in seqs if low < seq < high]
        seqs.difference_update(inside)
        self._count -= len(inside)
        if not seqs:
            del self._seqs[pid]
        return len(inside)
