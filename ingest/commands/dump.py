"""``python -m ingest dump``: tcpdump for the telemetry socket.

One line per datagram: readable by default, JSON lines with ``--json``
(the conventions of tests/data/wire-vectors/vectors.jsonl). ``--input`` reads a
capture file instead of the socket, so captures can be inspected offline.

Every string printed here may come from a request (paths, user agents,
hosts), so control characters are escaped before they reach a terminal.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from ..model.fields import Kind
from ..model.kinds import STATUS_FIELDS
from ..pipeline import capture, wire
from ..pipeline.state import Process, ProcessTable

_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]}


def printable(value: Any) -> str:
    """``display`` plus escaping of control characters (terminal injection)."""
    return wire.display(value).translate(_CONTROL)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms"


def _tick(f: dict[str, Any]) -> list[str]:
    parts = [f"req={f.get('request_count', 0)}"]
    parts += [f"{name[7:10]}={f[name]}" for name in STATUS_FIELDS if f.get(name)]
    parts += [f"rt={_ms(f.get('request_time', 0.0))}", f"cap={f.get('capacity_utilization', 0.0):.0%}",
              f"cpu={f.get('cpu_utilization', 0.0):.2f}", f"rss={f.get('memory_rss', 0) / 2**20:.1f}M"]
    return parts


def _slow(f: dict[str, Any]) -> list[str]:
    state = "completed" if f.get("slow_record_state") == 1 else "active"
    url = printable(f.get("slow_script_name", "")) + printable(f.get("slow_path_info", ""))
    parts = [state, f"{f.get('slow_duration', 0.0):.3f}s", printable(f.get("slow_method", "")), url or "/",
             f"thread={f.get('slow_thread_id')}", f"log_id={printable(f.get('slow_log_id', ''))}"]
    if f.get("slow_status"):
        parts.append(f"status={f['slow_status']}")
    return parts


def _lifecycle(f: dict[str, Any]) -> list[str]:
    keys = ("mod_wsgi_version", "python_version", "mpm_name", "process_parent_pid", "shutdown_reason",
            "active_requests_at_decision", "process_uptime", "lifetime_request_count",
            "active_requests_at_exit", "graceful_drain")
    return [f"{k}={printable(f[k])}" for k in keys if k in f]


def _gc(f: dict[str, Any]) -> list[str]:
    if "gc_event_generation" in f:
        return [f"gen{f['gc_event_generation']}", _ms(f.get("gc_event_duration", 0.0)),
                f"collected={f.get('gc_event_collected', 0)}"]
    return [f"count={f.get('gc_count0')}/{f.get('gc_count1')}/{f.get('gc_count2')}",
            f"collections={f.get('gc_collections0')}/{f.get('gc_collections1')}/{f.get('gc_collections2')}",
            f"dropped={f.get('gc_dropped_events', 0)}"]


_SUMMARY: dict[int, Callable[[dict[str, Any]], list[str]]] = {
    Kind.REQUEST_METRICS: _tick, Kind.SLOW_REQUEST: _slow, Kind.PROCESS_STARTED: _lifecycle,
    Kind.PROCESS_STOPPING: _lifecycle, Kind.PROCESS_STOPPED: _lifecycle,
    Kind.GC_SNAPSHOT: _gc, Kind.GC_EVENT: _gc,
}


def format_line(d: wire.Datagram, proc: Process | None = None) -> str:
    """The readable one-line form of a datagram."""
    clock = time.strftime("%H:%M:%S", time.localtime(d.stamp)) + f".{int(d.stamp % 1 * 1e6):06d}"
    where = proc.group if proc is not None and proc.group else d.fields.get("process_group")
    interp = d.fields.get("interpreter_name")
    head = [clock, f"pid={d.pid}", f"seq={d.seq}", d.kind_name]
    if where:
        head.append(f"group={printable(where)}")
    if interp:
        head.append(f"interp={printable(interp)}")
    summary = _SUMMARY.get(d.kind)
    body = summary(d.fields) if summary else [f"{len(d.fields)} fields"]
    unknown = [f"{k}={printable(v)}" for k, v in d.fields.items() if k.startswith("id")]
    return " ".join(head + body + unknown)


def format_fields(d: wire.Datagram) -> str:
    return "\n".join(f"    {name} = {printable(value)}" for name, value in d.fields.items())


class Printer:
    """Writes datagrams as they are decoded, with loss and restart notes."""

    def __init__(self, out: TextIO, *, as_json: bool = False, verbose: bool = False, count: int = 0):
        self.out = out
        self.as_json = as_json
        self.verbose = verbose
        self.count = count
        self.printed = 0
        self.finished = threading.Event()
        self._lost_seen: dict[tuple[int, int], int] = {}

    def __call__(self, d: wire.Datagram, proc: Process) -> None:
        if self.finished.is_set():
            return
        if self.as_json:
            self.out.write(json.dumps(wire.to_json(d)) + "\n")
        else:
            self._notes(proc)
            self.out.write(format_line(d, proc) + "\n")
            if self.verbose:
                self.out.write(format_fields(d) + "\n")
        self.out.flush()
        self.printed += 1
        if self.count and self.printed >= self.count:
            self.finished.set()

    def _notes(self, proc: Process) -> None:
        seen = self._lost_seen.get(proc.key)
        if seen is None and proc.received == 1:
            start = "late join, first seq " + str(proc.first_seq) if proc.late_join else "new process"
            self.out.write(f"-- pid {proc.pid}: {start}\n")
        if proc.lost != (seen or 0):
            self.out.write(f"-- pid {proc.pid}: {proc.lost - (seen or 0)} datagram(s) lost before this one\n")
        self._lost_seen[proc.key] = proc.lost


def malformed_note(index: int | None, data: bytes, error: wire.DecodeError) -> str:
    where = f"#{index} " if index is not None else ""
    pid = f" from pid {error.pid}" if error.pid is not None else ""
    return f"malformed datagram {where}({len(data)} bytes){pid}: {error}"


def replay(datagrams: Iterable[bytes], printer: Printer, err: TextIO) -> ProcessTable:
    """Decode a capture as the agent would, printing as we go."""
    table = ProcessTable()
    for index, data in enumerate(datagrams, 1):
        try:
            d = wire.decode(data)
        except wire.DecodeError as exc:
            table.add_malformed(data, exc)
            err.write(malformed_note(index, data, exc) + "\n")
            continue
        printer(d, table.add(d))
        if printer.finished.is_set():
            break
    return table


def summary_line(table: ProcessTable) -> str:
    t = table.totals
    return (f"{t.received} datagrams, {t.decoded} decoded, {t.malformed} malformed, "
            f"{t.lost} lost by sequence, {t.incarnations} processes ({t.late_joins} joined late)")


def run_input(path: str, printer: Printer, err: TextIO = sys.stderr) -> int:
    table = ProcessTable()
    status = 0
    try:
        table = replay(capture.read(path), printer, err)
    except capture.CaptureError as exc:
        err.write(f"dump: {exc}\n")
        status = 1
    except OSError as exc:
        err.write(f"dump: cannot read {path}: {exc.strerror or exc}\n")
        return 1
    err.write(summary_line(table) + "\n")
    return status
