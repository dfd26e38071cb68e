"""Samples as the agent builds them from decoded datagrams, and replayed from captures."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator

from ..model.kinds import GC_EVENT, GC_SNAPSHOT
from ..model.sample import Sample
from . import wire
from .process import Process
from .state import ProcessTable

_GC_KINDS = frozenset({GC_SNAPSHOT, GC_EVENT})


def sample_from(d: wire.Datagram, process: Process) -> Sample:
    """The sample the agent forwards for a decoded datagram of ``process``.

    The decoder's field dict is used as it is (arrays stay ``array.array``,
    encoded when the batch is packed): this runs on the agent's decode
    thread for every datagram.
    """
    fields = d.fields
    interpreter = fields.get("interpreter_name", "") if d.kind in _GC_KINDS else None
    return {"k": d.kind, "p": d.pid, "i": process.incarnation, "s": d.seq, "t": d.stamp,
            # typeddict-item: "n" is str: interpreter_name is a text field, which the decoder
            # checked is UTF-8 (wire.text gives bytes only for other byte fields)
            "g": process.group, "n": interpreter, "f": fields}  # type: ignore[typeddict-item]


def plain(sample: Sample) -> Sample:
    """``sample`` with arrays as lists, for JSON, plain msgpack and comparisons."""
    fields = {name: v.tolist() if isinstance(v, array) else v for name, v in sample["f"].items()}
    return {**sample, "f": fields}


def replay(datagrams: Iterable[bytes]) -> Iterator[Sample]:
    """Samples of a capture, joined to their process like the agent does (bad ones skipped)."""
    table = ProcessTable()
    for data in datagrams:
        try:
            d = wire.decode(data)
        except wire.DecodeError as exc:
            table.add_malformed(data, exc)
            continue
        yield plain(sample_from(d, table.add(d)))
