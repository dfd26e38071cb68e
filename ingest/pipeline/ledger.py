"""What an agent keeps in its spool directory so that a restart forgets no loss.

The console shows an agent's cumulative counters (``lost``, ``malformed``,
``queue_drops``, ``dropped``, ...) as they are, so a restarted agent that
started from 0 would erase what its last run counted. With a spool directory
the counters are saved (file ``ledger``) before every heartbeat reports them,
with every batch sealed, and at stop, and a restarted agent continues from
there: the values it reports never go down. Gauges (``processes``,
``spooled``, ``spool_bytes``) are not carried over.

The ledger also keeps each running or gone process's ``Mark`` (pid,
incarnation, last seq, when last heard), so the next run takes a pid whose seq
continues for the same process and counts what it sent while no agent was
bound as loss (``state.ProcessTable.remember``).

Written to a temporary name and renamed: a crash leaves the old ledger or
the new one. Not fsynced, like the batches: it survives the agent's death,
not the host's.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgpack

from ..model.kinds import STOPPED
from .resume import Mark

log = logging.getLogger("ingest.forwarder")

LEDGER = "ledger"
GAUGES = frozenset({"processes", "spooled", "spool_bytes", "kernel_qlen"})
MAX_MARKS = 1 << 16  # more than the process table holds, running and gone


class Ledger:
    """Counters and marks of the agent's earlier runs on one spool directory."""

    def __init__(self, directory: str | os.PathLike[str] | None):
        self.path = Path(directory) / LEDGER if directory is not None else None
        self.base: dict[str, int] = {}  # cumulative counters as last saved
        self.marks: dict[int, Mark] = {}  # pid -> its mark as last saved
        if self.path is not None and self.path.exists():
            self._load(self.path)

    def _load(self, path: Path) -> None:
        try:
            saved = msgpack.unpackb(path.read_bytes(), strict_map_key=False)
            self.base = {str(k): v for k, v in saved["counters"].items()
                         if type(v) is int and v >= 0 and k not in GAUGES}
            for row in saved["marks"][:MAX_MARKS]:
                mark = _mark(row)
                if mark is not None:
                    self.marks[mark.pid] = mark
        except (OSError, ValueError, KeyError, TypeError, AttributeError, msgpack.UnpackException) as exc:
            log.warning("ledger %s unreadable (%s): counters start from 0", path, exc)

    def total(self, counters: dict[str, int]) -> dict[str, int]:
        """``counters`` of this run plus what the earlier runs counted under the same names."""
        base = self.base
        return {k: v + base.get(k, 0) if k not in GAUGES and type(v) is int else v
                for k, v in counters.items()}

    def count(self, name: str, n: int) -> None:
        """Add to a saved counter what the last run did but could not save (see Forwarder._recover)."""
        if n > 0:
            self.base[name] = self.base.get(name, 0) + n

    def advance(self, sample: Any, heard: float) -> bool:
        """Move a mark up to a sample the last run accepted; False if the mark had it already."""
        if not isinstance(sample, dict):
            return False
        pid, incarnation, seq = sample.get("p"), sample.get("i"), sample.get("s")
        if not (type(pid) is int and type(incarnation) is int and type(seq) is int):
            return False
        mark = self.marks.get(pid)
        if mark is not None and (incarnation, seq) <= (mark.incarnation, mark.seq):
            return False
        group = sample.get("g")
        self.marks[pid] = Mark(pid, incarnation, seq, heard, group if isinstance(group, str) else None,
                               sample.get("k") == STOPPED)
        return True

    def save(self, counters: dict[str, int], marks: Iterable[Mark]) -> None:
        """Keep ``counters`` (this run's totals, from ``total``) and ``marks`` for the next run.

        A counter of an earlier run that this one does not report is kept as it was.
        """
        if self.path is None:
            return
        tmp = self.path.with_name(LEDGER + ".tmp")
        packer = msgpack.Packer()
        rows = [packer.pack(list(m)) for m in marks]  # one call a mark: the receive thread gets the GIL
        data = b"".join([packer.pack_map_header(3), packer.pack("saved"), packer.pack(time.time()),
                         packer.pack("counters"), packer.pack({**self.base, **counters}),
                         packer.pack("marks"), packer.pack_array_header(len(rows)), *rows])
        try:
            tmp.write_bytes(data)
            os.replace(tmp, self.path)
        except OSError as exc:  # a full disk costs the next run its counters, never this one's data
            log.warning("cannot save the agent's counters in %s: %s", self.path, exc)


def _mark(row: Any) -> Mark | None:
    """A saved mark, or None for a row this version cannot trust."""
    if not isinstance(row, list) or len(row) != 6:
        return None
    pid, incarnation, seq, heard, group, ended = row
    ints = all(type(v) is int and 0 <= v < 1 << 53 for v in (pid, incarnation, seq))
    if not ints or type(heard) not in (int, float) or not math.isfinite(heard):
        return None
    return Mark(pid, incarnation, seq, float(heard), group if isinstance(group, str) else None, ended is True)
