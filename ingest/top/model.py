"""What ``top`` knows of the fleet or of one host, kept from the live protocol's messages.

The console (or the agent's local view) sends frames: the additive sums
of ``ingest.model.frames``. Every figure on screen is derived here from
them by the metric table over a stated span, with ``frames.headline``, the
function behind the fleet rows and the Overview's readouts; nothing is
averaged from single ticks. The header is the host frame's ``recent``
itself, so ``top`` and the pages agree on it to the digit.

Seconds are the samples' own (their stamps), complete once the console
has published them (``PUBLISH_DELAY``): a view reads ``[until - span,
until)`` with ``until`` the end of the newest complete second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from ..model import frames, metrics, topview
from ..model.fields import PHASES
from ..model.frames import Frame
from ..model.records import number
from .state import (
    Host,
    Process,
    busy_slots,
    clean_frame,
    clean_recent,
    clean_tick,
    mappings,
    second_of,
)

#: Seconds of history kept: the longest window a view offers (10 min) and a little more; of
#: each process, its rows' span and as much again (a thousand processes' 10 min would be 1 GB).
KEEP = 660
PROCESS_KEEP = 2 * topview.SPAN
#: A view's windows (seconds): the header's span, a minute, ten minutes.
WINDOWS = (10, 60, 600)
#: An active slow request not reported for this long is expired (3 report intervals + 1 s).
SLOW_SILENCE = 4.0
#: Seconds after a second starts that it is complete (the console's PUBLISH_DELAY).
COMPLETE_AFTER = 2


class Model:
    """Everything ``top`` was told, and the figures each view shows from it."""

    def __init__(self) -> None:
        self.hello: dict[str, Any] | None = None
        self.fleet: dict[Any, dict[str, Any]] = {}
        self.fleet_at: float | None = None
        self.host: Host | None = None
        self.now = 0.0  # the console's clock, from its messages
        self.received = 0
        self.bad = 0  # messages that did not keep to the protocol
        self.errors: list[str] = []
        self.error_at = 0.0
        self.store_ok = True
        self.store_reason: str | None = None
        self.offset = 0.0  # console clock - this machine's clock
        self._rows: tuple[tuple[int, int] | None, list[dict[str, Any]]] = (None, [])

    # -- clocks ------------------------------------------------------------------------------------

    def console_now(self) -> float:
        return time.time() + self.offset

    def until(self) -> int:
        """The end of the newest complete second, on the console's clock."""
        return math.floor(self.console_now()) - COMPLETE_AFTER + 1

    # -- messages ----------------------------------------------------------------------------------

    def apply(self, message: Mapping[str, Any]) -> None:
        """Take one message in. One that does not keep to the protocol (another version, a bug)
        is counted in ``bad`` and shown, never raised: the monitor goes on with the next."""
        self.received += 1
        handler = getattr(self, "on_" + str(message.get("type", "")).replace(".", "_"), None)
        try:
            now = number(message.get("now"))
            if now is not None:
                self.now = now
                self.offset = now - time.time()
            if handler is not None:
                handler(message)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
            self.bad += 1
            self.said(f"a {message.get('type')!r} message not understood: {exc!r}"[:200])

    def on_hello(self, m: Mapping[str, Any]) -> None:
        self.hello = dict(m)

    def on_status(self, m: Mapping[str, Any]) -> None:
        self.store_ok = bool(m.get("store_ok", True))
        self.store_reason = m.get("reason") if not self.store_ok else None

    def on_error(self, m: Mapping[str, Any]) -> None:
        self.said(str(m.get("reason", "error")))

    def said(self, text: str) -> None:
        self.errors = [*self.errors[-4:], text]
        self.error_at = time.monotonic()

    def recent_error(self, within: float = 10.0) -> str | None:
        """The console's latest error, while it is news."""
        return self.errors[-1] if self.errors and time.monotonic() - self.error_at < within else None

    def on_fleet_snapshot(self, m: Mapping[str, Any]) -> None:
        self.fleet = {}
        self.on_fleet_update(m)

    def on_fleet_update(self, m: Mapping[str, Any]) -> None:
        for entry in mappings(m.get("hosts")):
            if isinstance(entry.get("id"), int | str):
                for key in ("metrics", "agent"):
                    entry[key] = dict(entry[key]) if isinstance(entry.get(key), Mapping) else {}
                self.fleet[entry["id"]] = entry
        self.fleet_at = self.now

    def find_host(self, name: str) -> dict[str, Any] | None:
        """The fleet entry a user's ``--host`` names (by name, or by the console's id)."""
        return next((e for e in self.fleet.values() if name in (e.get("name"), str(e.get("id")))), None)

    def on_host_snapshot(self, m: Mapping[str, Any]) -> None:
        host = Host(id=m.get("host"), group=str(m.get("group", "*")))
        entry = self.fleet.get(host.id)  # the console names hosts by id; its fleet, by name too
        host.name = str(entry.get("name") if entry else m.get("host"))
        host.groups = [str(g) for g in m.get("groups") or ["*"]]
        host.series = dict(m.get("series") or {})
        host.agent = dict(m.get("agent") or {})
        host.agent_state = dict(m.get("agent_state") or {})
        host.snapshot_at = self.now
        self.host = host
        self._registry(m)

    def _registry(self, m: Mapping[str, Any]) -> None:
        host = self.host
        if host is None or not isinstance(m.get("processes"), list):
            return
        host.processes_total = int(number(m.get("processes_total")) or 0)
        seen = set()
        for record in m["processes"]:
            if not isinstance(record, Mapping):
                continue
            pid, inc = record.get("pid"), record.get("incarnation")
            if not isinstance(pid, int) or not isinstance(inc, int):
                continue
            seen.add((pid, inc))
            proc = self._process(pid, inc, record.get("group"))
            proc.state = str(record.get("state") or "running")
        for key, proc in host.processes.items():
            if key not in seen and proc.state in ("running", "stopping"):
                proc.state = "gone"

    def _process(self, pid: int, inc: int, group: Any) -> Process:
        assert self.host is not None
        proc = self.host.processes.get((pid, inc))
        if proc is None:
            proc = self.host.processes[(pid, inc)] = Process(pid, inc, str(group or ""))
        return proc

    def on_host_frame(self, m: Mapping[str, Any]) -> None:
        host = self.host
        if host is None or m.get("host") != host.id:
            return
        if not m.get("partial"):
            if "recent" in m:
                host.recent = clean_recent(m.get("recent"))
            groups = m.get("groups") or {}
            point = groups.get(host.group) if isinstance(groups, Mapping) else None
            t = number(m.get("t"))
            if isinstance(point, Mapping) and t is not None and host.series.get("t") is not None:
                self._extend_series(host, t, point)
        for key in ("agent", "agent_state"):
            if isinstance(m.get(key), Mapping):
                setattr(host, key, dict(m[key]))
        self._registry(m)

    @staticmethod
    def _extend_series(host: Host, t: float, point: Mapping[str, Any]) -> None:
        ts = host.series["t"]
        if ts and t <= ts[-1]:
            return
        ts.append(t)
        for name, values in host.series.items():
            if name != "t" and isinstance(values, list):
                values.append(point.get(name))
        if len(ts) > KEEP:
            for values in host.series.values():
                del values[: len(values) - KEEP]

    def on_tab_snapshot(self, m: Mapping[str, Any]) -> None:
        host = self.host
        if host is None or m.get("tab") != "top" or m.get("host") != host.id:
            return
        host.until = int(number(m.get("until")) or 0)
        recent = clean_recent(m.get("recent"))
        if recent is not None and (host.recent is None or
                                   (host.recent.get("until") or 0) <= (recent.get("until") or 0)):
            host.recent = recent
        host.seconds = self._frames(m.get("seconds"))
        host.tens_step = int(number(m.get("tens_step")) or 10)
        host.tens = self._frames(m.get("tens"))
        window = m.get("processes") or {}
        until = int(number(window.get("until")) or host.until)
        for pid, inc, group, first, frame in window.get("procs") or []:
            if isinstance(pid, int) and isinstance(inc, int) and second_of(first) is not None:
                self._process(pid, inc, group).base = (until, int(first), clean_frame(frame))
        self._ticks(window.get("ticks") or [])
        host.omitted = int(number((window.get("omitted") or {}).get("processes")) or 0)
        for record in m.get("slow") or []:
            self._slow(record)
        host.life = mappings(m.get("life"))[-200:]

    def on_tab_frame(self, m: Mapping[str, Any]) -> None:
        host = self.host
        if host is None or m.get("tab") != "top" or m.get("host") != host.id:
            return
        host.live_frames += 1
        for group, sec, frame in m.get("groups") or []:
            sec = second_of(sec)
            if sec is None or sec < host.until or not (host.group == "*" or group == host.group):
                continue
            frame = clean_frame(frame)
            frames.merge_into(host.seconds.setdefault(sec, {}), frame)
            frames.merge_into(host.tens.setdefault(sec - sec % host.tens_step, {}), frame)
        for pid, inc, group, sec, frame in m.get("procs") or []:
            sec = second_of(sec)
            if sec is None or sec < host.until or not (host.group == "*" or group == host.group) \
                    or not isinstance(pid, int) or not isinstance(inc, int):
                continue
            frames.merge_into(self._process(pid, inc, group).seconds.setdefault(sec, {}), clean_frame(frame))
        self._ticks(m.get("ticks") or [])
        for record in m.get("slow") or []:
            self._slow(record)
        for event in mappings(m.get("life")):
            if host.group == "*" or event.get("group") == host.group:
                host.life.append(dict(event))
                if event.get("kind") == "stopped":
                    key = (event.get("pid"), event.get("inc"))
                    if key in host.processes:
                        host.processes[key].state = "stopped"
        del host.life[:-200]
        omitted = (m.get("omitted") or {}).get("processes")
        if omitted:
            host.omitted = int(omitted)
        if self.until() != host.trimmed:  # once a second, not once a message
            host.trimmed = self.until()
            self._trim(host)

    @staticmethod
    def _frames(pairs: Any) -> dict[int, Frame]:
        out: dict[int, Frame] = {}
        for t, frame in pairs if isinstance(pairs, list) else []:
            sec = second_of(t)
            if sec is not None:
                out[sec] = clean_frame(frame)
        return out

    def _ticks(self, ticks: list[Any]) -> None:
        assert self.host is not None
        for pid, inc, info in ticks:
            tick = clean_tick(info)
            if tick is not None and isinstance(pid, int) and isinstance(inc, int):
                proc = self._process(pid, inc, None)
                if tick["t"] >= (proc.tick.get("t") or 0):
                    proc.tick = tick

    def _slow(self, record: Any) -> None:
        assert self.host is not None
        if not isinstance(record, Mapping) or not isinstance(record.get("key"), str):
            return
        if self.host.group != "*" and (record.get("group") or "") != self.host.group:
            return
        record = {**record, **{k: number(record.get(k)) for k in ("stamp", "start", "duration")}}
        old = self.host.slow.get(record["key"])
        if old is not None and old.get("state") == "completed" and record.get("state") != "completed":
            return  # a late active copy never undoes a completion
        self.host.slow[record["key"]] = record

    def _trim(self, host: Host) -> None:
        oldest = self.until() - KEEP
        for table in (host.seconds, host.tens):
            for sec in [s for s in table if s < oldest]:
                del table[sec]
        for key, proc in list(host.processes.items()):
            for sec in [s for s in proc.seconds if s < self.until() - PROCESS_KEEP]:
                del proc.seconds[sec]
            if proc.state in ("stopped", "gone") and not proc.seconds and (proc.tick.get("t") or 0) < oldest:
                del host.processes[key]
        if len(host.slow) > 500:
            for old in sorted(host.slow, key=lambda k: host.slow[k].get("stamp") or 0)[:-500]:
                del host.slow[old]

    # -- what the views read ----------------------------------------------------------------------

    def headline(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(the host frame's ``recent`` for the view's group, and its span), as the Overview has it."""
        host = self.host
        if host is None or not isinstance(host.recent, Mapping):
            return None, None
        groups = host.recent.get("groups") or {}
        return groups.get(host.group), {k: host.recent.get(k) for k in ("span", "since", "until")}

    def window_frame(self, span: int) -> tuple[Frame, float] | None:
        """The host's (or group's) frames of ``[until - span, until)`` merged, and the seconds
        they cover (from the first second with data, as ``headline``)."""
        host = self.host
        if host is None:
            return None
        until = self.until()
        if span <= 60:
            chosen = [(t, f) for t, f in host.seconds.items() if until - span <= t < until]
        else:
            step = host.tens_step
            chosen = [(t, f) for t, f in host.tens.items() if until - span <= t and t + step <= until]
        if not chosen:
            return None
        first = min(t for t, _ in chosen)
        return frames.merge(f for _, f in chosen), float(until - first)

    def window_metrics(self, span: int, names: tuple[str, ...] | None = None) -> dict[str, float | None]:
        got = self.window_frame(span)
        return metrics.derive(got[0], got[1], names) if got else {}

    def phase_histogram(self, phase: str, span: int) -> tuple[dict[int, float], dict[str, float | None]]:
        """The phase's bucket counts over the window and its metrics (percentiles, min, max, mean)."""
        got = self.window_frame(span)
        if got is None:
            return {}, {}
        i = PHASES.index(phase)
        names = tuple(f"{phase}_{s}" for s in ("p50", "p95", "p99", "min", "max", "mean"))
        return frames.histogram(got[0], f"h{i}"), metrics.derive(got[0], got[1], names)

    def process_rows(self, until: int | None = None) -> list[dict[str, Any]]:
        """One row per process with data in the span up to ``until`` (default: the newest
        complete second) or alive in the registry."""
        host = self.host
        if host is None:
            return []
        until = self.until() if until is None else until
        if self._rows[0] == (until, id(host)):  # once a second: the processes and GC views share it
            return [dict(row) for row in self._rows[1]]
        slow: dict[tuple[Any, Any], int] = {}
        for record in host.slow.values():
            key = (record.get("pid"), record.get("incarnation"))
            slow[key] = slow.get(key, 0) + 1
        rows = []
        for (pid, inc), proc in host.processes.items():
            got = proc.window(until)
            if got is None and proc.state not in ("running", "stopping"):
                continue
            covered, figures = got if got else (0.0, {})
            rows.append({"pid": pid, "incarnation": inc, "group": proc.group, "state": proc.state,
                         "threads": proc.tick.get("threads"), "busy": busy_slots(proc.tick),
                         "span": covered, "slow": slow.get((pid, inc), 0), **figures})
        self._rows = ((until, id(host)), rows)
        return [dict(row) for row in rows]

    def slow_rows(self) -> list[dict[str, Any]]:
        """Slow records with their state on the console's clock (active ones age, then expire)."""
        host = self.host
        if host is None:
            return []
        now = self.console_now()
        rows = []
        for record in host.slow.values():
            row = dict(record)
            if row.get("state") == "active":
                stamp, start = number(row.get("stamp")) or 0.0, number(row.get("start"))
                if now - stamp > SLOW_SILENCE:
                    row["state"] = "expired"
                elif start is not None:
                    row["duration"] = max(number(row.get("duration")) or 0.0, now - start)
            rows.append(row)
        return rows

    def longest_active(self) -> dict[tuple[Any, Any], dict[str, Any]]:
        """Each process's longest running slow request (for the slot grid's URL)."""
        out: dict[tuple[Any, Any], dict[str, Any]] = {}
        for r in self.slow_rows():
            key = (r.get("pid"), r.get("incarnation"))
            known = out.get(key)
            duration = r.get("duration") or 0.0
            if r.get("state") == "active" and (known is None or duration >= (known.get("duration") or 0.0)):
                out[key] = r
        return out
