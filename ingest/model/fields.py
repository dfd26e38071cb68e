"""The mod_wsgi 6.1 telemetry field table: the single source of truth.

Decoding (names by id), encoding (tags by name, used by `simulate` and the
tests) and the generated field reference (`python -m ingest fields`) all
read this table, so a field added here is known everywhere at once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Final


class Tag(enum.IntEnum):
    """Type tag of a TLV record: it alone decides how long the value is."""

    U64 = 0x01
    F64 = 0x02
    I64 = 0x03
    BYTES = 0x04
    I32_ARRAY = 0x05
    F64_ARRAY = 0x06


class Kind(enum.IntEnum):
    """Datagram kinds. 1 and 3 are defined by mod_wsgi but never sent."""

    PROCESS = 1
    REQUEST_METRICS = 2
    SERVER = 3
    SLOW_REQUEST = 4
    PROCESS_STARTED = 5
    PROCESS_STOPPING = 6
    PROCESS_STOPPED = 7
    GC_SNAPSHOT = 8
    GC_EVENT = 9


def kind_name(kind: int) -> str:
    """Name of a kind byte; unknown kinds stay routable as ``kindN``."""
    try:
        return Kind(kind).name.lower()
    except ValueError:
        return f"kind{kind}"


@dataclass(frozen=True, slots=True)
class Field:
    """One field of the table; ``low``/``high`` are its bounds (see ``bounded``).

    For numbers they bound the value, for BYTES and arrays the length; 0
    and 0 mean "the default for the tag", filled in when the table is built.
    """

    id: int
    name: str
    tag: Tag
    unit: str
    kinds: tuple[int, ...]
    doc: str
    presence: str = "always"
    low: float = 0
    high: float = 0

    @property
    def text(self) -> bool:
        """A text field must be UTF-8; only ``bytes`` fields may carry other bytes."""
        return self.tag == Tag.BYTES and self.unit == "text"


U, F, B, IA, FA = Tag.U64, Tag.F64, Tag.BYTES, Tag.I32_ARRAY, Tag.F64_ARRAY
TICK, SLOW, START, STOPPING, STOPPED, GCS, GCE = 2, 4, 5, 6, 7, 8, 9

#: Request phases in mod_wsgi's order; ids 60+i (mean), 70+i (min),
#: 80+i (max) and 90+i (histogram) all follow it.
PHASES: Final = (
    "server", "queue", "daemon", "application",
    "request", "gil_wait", "input_read", "output_write",
)
#: Phases only measured in daemon mode, and only on ticks with requests.
DAEMON_PHASES: Final = ("queue", "daemon")
HISTOGRAM_BUCKETS: Final = 65
MAX_SLOTS: Final = 128

_IDENTITY = [
    Field(1, "mod_wsgi_version", B, "text", (TICK, START), "mod_wsgi release"),
    Field(2, "python_version", B, "text", (TICK, START), "Python version, first word"),
    Field(3, "apache_version", B, "text", (TICK, START), "compile-time Apache banner"),
    Field(4, "mpm_name", B, "text", (TICK, START), "Apache MPM: event, worker or prefork"),
    Field(5, "hostname", B, "text", (TICK, START, STOPPING, STOPPED), "gethostname() of the sender"),
    Field(6, "process_group", B, "text", (TICK, START, STOPPING, STOPPED),
          "WSGIDaemonProcess name", "daemon mode only"),
    Field(7, "process_parent_pid", U, "pid", (TICK, START), "pid of the Apache parent"),
    Field(8, "interpreter_name", B, "text", (GCS, GCE),
          "application group; absent for the main interpreter", "more than one interpreter"),
    Field(10, "sample_period", F, "s", (TICK,), "measured time since the previous tick"),
    Field(11, "telemetry_interval", F, "s", (TICK,), "configured interval"),
    Field(12, "slow_requests_threshold", F, "s", (TICK,), "WSGISlowRequests; 0 when off"),
    Field(13, "switch_interval", F, "s", (TICK, START), "sys.getswitchinterval() at start", "when > 0"),
]

_TICK = [
    Field(20, "request_count", U, "n", (TICK,), "requests finished in the interval"),
    Field(21, "request_throughput", F, "req/s", (TICK,), "request_count / sample_period"),
    Field(22, "capacity_utilization", F, "0..1", (TICK,), "busy thread-seconds / available thread-seconds"),
    Field(30, "cpu_user_utilization", F, "cores", (TICK,), "user CPU over the interval"),
    Field(31, "cpu_system_utilization", F, "cores", (TICK,), "system CPU over the interval"),
    Field(32, "cpu_utilization", F, "cores", (TICK,), "user + system CPU"),
    Field(40, "memory_rss", U, "B", (TICK,), "resident set size"),
    Field(41, "memory_max_rss", U, "B", (TICK,), "peak RSS (may read below memory_rss)"),
    Field(50, "request_threads_maximum", U, "n", (TICK,), "configured request threads"),
    Field(51, "request_threads_started", U, "n", (TICK,), "threads seen (may exceed the maximum)"),
    Field(52, "request_threads_active", U, "n", (TICK,), "threads active in the interval"),
]


def _phase_fields() -> list[Field]:
    """Fields 60-97: mean, min, max and histogram for each request phase."""
    fields = []
    for i, phase in enumerate(PHASES):
        daemon = phase in DAEMON_PHASES
        busy = "request_count > 0" + (", daemon mode" if daemon else "")
        fields += [
            Field(60 + i, f"{phase}_time", F, "s", (TICK,), f"mean {phase} time",
                  busy if daemon else "always"),
            Field(70 + i, f"{phase}_time_min", F, "s", (TICK,), f"minimum {phase} time", busy),
            Field(80 + i, f"{phase}_time_max", F, "s", (TICK,), f"maximum {phase} time", busy),
            Field(90 + i, f"{phase}_time_buckets", IA, "n", (TICK,),
                  f"{phase} time histogram, {HISTOGRAM_BUCKETS} buckets",
                  busy if daemon else "always"),
        ]
    return fields


_IO_SLOTS_STATUS = [
    Field(100, "input_bytes_total", U, "B", (TICK,), "request body bytes read"),
    Field(101, "input_reads_total", U, "n", (TICK,), "wsgi.input read calls"),
    Field(102, "output_bytes_total", U, "B", (TICK,), "response bytes written"),
    Field(103, "output_writes_total", U, "n", (TICK,), "output writes"),
    Field(110, "request_threads_completed", IA, "n", (TICK,), "per slot: requests finished"),
    Field(111, "request_threads_busy_time", FA, "s", (TICK,), "per slot: busy time"),
    Field(112, "request_threads_cpu_time", FA, "s", (TICK,), "per slot: request CPU time"),
    Field(113, "request_threads_current_elapsed", FA, "s", (TICK,), "per slot: age of the running request"),
    Field(114, "request_threads_max_duration", FA, "s", (TICK,), "per slot: longest finished request"),
] + [
    Field(120 + i, f"status_{i + 1}xx_total", U, "n", (TICK,), f"finished with status {i + 1}xx"
          + (" or raised before start_response" if i == 4 else ""))
    for i in range(5)
]

_LIFECYCLE = [
    Field(130, "shutdown_reason", B, "text", (STOPPING, STOPPED), "why the process stops",
          "daemon mode only"),
    Field(131, "process_uptime", F, "s", (STOPPED,), "STARTED stamp to this datagram"),
    Field(132, "lifetime_request_count", U, "n", (STOPPED,), "requests finished in the process's life"),
    Field(133, "active_requests_at_decision", U, "n", (STOPPING,), "requests in flight at the decision"),
    Field(134, "active_requests_at_exit", U, "n", (STOPPED,), "requests cut off at exit"),
    Field(135, "graceful_drain", U, "0/1", (STOPPED,), "1 when drained cleanly"),
]


def _slow(fid: int, name: str, tag: Tag, unit: str, doc: str, presence: str = "always") -> Field:
    return Field(fid, f"slow_{name}", tag, unit, (SLOW,), doc, presence)


_SLOW = [
    _slow(200, "record_state", U, "0/1", "0 active, 1 completed"),
    _slow(201, "start_stamp", F, "epoch s", "request start; same on every record of a request"),
    _slow(202, "duration", F, "s", "elapsed (active) or final (completed)"),
    _slow(203, "thread_id", U, "id", "worker slot, 1-based; may exceed 128"),
    _slow(204, "log_id", B, "text", "Apache request log id", "when not empty"),
    _slow(205, "server_pid", U, "pid", "Apache child that accepted the connection"),
    _slow(210, "method", B, "text", "HTTP method", "when not empty"),
    _slow(211, "scheme", B, "text", "http or https", "when not empty"),
    _slow(212, "hostname", B, "text", "request Host", "when not empty"),
    _slow(213, "script_name", B, "text", "SCRIPT_NAME", "when not empty"),
    _slow(214, "path_info", B, "bytes", "PATH_INFO, percent-decoded, may be non-UTF-8", "when not empty"),
    _slow(215, "protocol", B, "text", "HTTP protocol", "when not empty"),
    _slow(216, "peer_ip", B, "text", "client address", "when not empty"),
    _slow(217, "user_agent", B, "bytes", "User-Agent", "+CaptureUserAgent"),
    _slow(220, "server_time", F, "s", "Apache-side time before hand-off"),
    _slow(221, "queue_time", F, "s", "queue time; 0 in embedded mode"),
    _slow(222, "daemon_time", F, "s", "daemon time; 0 in embedded mode"),
    _slow(223, "application_time", F, "s", "time in the application"),
    _slow(224, "gil_wait_time", F, "s", "GIL re-acquire time"),
    _slow(225, "gil_wait_count", U, "n", "GIL re-acquire events"),
    _slow(230, "input_bytes", U, "B", "body bytes read; 0 while active"),
    _slow(231, "input_reads", U, "n", "read calls; 0 while active"),
    _slow(232, "output_bytes", U, "B", "response bytes; 0 while active"),
    _slow(233, "output_writes", U, "n", "writes; 0 while active"),
    _slow(234, "input_read_time", F, "s", "time in input reads; 0 while active"),
    _slow(235, "output_write_time", F, "s", "time in output writes; 0 while active"),
    _slow(240, "status", U, "HTTP", "status; 0 while active"),
    _slow(250, "cpu_user_time", F, "s", "user CPU; 0 while active"),
    _slow(251, "cpu_system_time", F, "s", "system CPU; 0 while active"),
    _slow(260, "active_at_start", U, "n", "requests in flight when it started, itself included"),
    _slow(261, "active_at_completion", U, "n", "requests in flight at completion; 0 while active"),
]


def _gc_generation_fields() -> list[Field]:
    """Fields 300-314: five per-generation counters, three generations each."""
    groups = [
        ("count", "gc.get_count() at the tick"),
        ("threshold", "gc.get_threshold()"),
        ("collections", "collections, cumulative"),
        ("collected", "objects collected, cumulative"),
        ("uncollectable", "uncollectable objects, cumulative"),
    ]
    return [
        Field(300 + 3 * g + gen, f"gc_{name}{gen}", U, "n", (GCS,), f"generation {gen}: {doc}")
        for g, (name, doc) in enumerate(groups)
        for gen in range(3)
    ]


_GC = [
    *_gc_generation_fields(),
    Field(315, "gc_is_enabled", U, "0/1", (GCS,), "gc.isenabled()"),
    Field(316, "gc_freeze_count", U, "n", (GCS,), "gc.get_freeze_count()"),
    Field(317, "gc_dropped_events", U, "n", (GCS,),
          "GC events lost since the previous snapshot (per tick, not cumulative)"),
    Field(320, "gc_event_start_stamp", F, "epoch s", (GCE,), "when the collection started"),
    Field(321, "gc_event_duration", F, "s", (GCE,), "pause length"),
    Field(322, "gc_event_generation", U, "0/1/2", (GCE,), "generation collected"),
    Field(323, "gc_event_collected", U, "n", (GCE,), "objects collected by this pass"),
    Field(324, "gc_event_uncollectable", U, "n", (GCE,), "uncollectable found by this pass"),
]

# -- bounds: what a value of each field may be -------------------------------------------

#: Largest U64 value accepted: every count, size and pid below it is exact in a
#: double (Redis Lua, JavaScript); real mod_wsgi values stay far below it.
U64_LIMIT: Final = 2**53 - 1
#: Floats must be finite and smaller than this in magnitude (2**49 s is 17
#: million years; epoch stamps are about 2**31): sums of them stay finite.
FLOAT_LIMIT: Final = 2.0**49
#: Epoch stamps (the header's, a slow request's start, a GC pass's start) lie
#: in [0, 2**33): 2**33 s is the year 2242. The console holds samples to it too.
STAMP_LIMIT: Final = 2.0**33
#: Identity strings (versions, host, process group, shutdown reason) and the
#: request strings of slow records; mod_wsgi cuts the latter at 511 bytes.
IDENTITY_TEXT: Final = 256
REQUEST_TEXT: Final = 1024
#: Unknown field ids pass through, but no more than this many per datagram,
#: with at most this many value bytes in all: a datagram of thousands of tiny
#: unknown records must not cost the decoder more than a real one does.
MAX_UNKNOWN_FIELDS: Final = 32
MAX_UNKNOWN_BYTES: Final = 4096
#: Seconds: the interval and period of a tick (mod_wsgi's are 0.1-60 s).
_PERIODS = {"sample_period": 3600.0, "telemetry_interval": 3600.0, "switch_interval": 1.0}
#: Fields whose arrays are per worker slot: one length in a datagram, the
#: thread maximum capped at MAX_SLOTS.
SLOT_FIELDS: Final = frozenset({
    "request_threads_completed", "request_threads_busy_time", "request_threads_cpu_time",
    "request_threads_current_elapsed", "request_threads_max_duration",
})


def bounded(field: Field) -> Field:
    """``field`` with the bounds its tag and meaning give it."""
    if field.low or field.high:
        return field
    low: float
    high: float
    if field.tag == Tag.U64:
        low, high = 0, U64_LIMIT
    elif field.tag == Tag.F64:
        high = STAMP_LIMIT if field.unit == "epoch s" else _PERIODS.get(field.name, FLOAT_LIMIT)
        low = -FLOAT_LIMIT if high == FLOAT_LIMIT else 0.0
    elif field.tag == Tag.BYTES:
        low, high = 0, REQUEST_TEXT if field.id >= 200 else IDENTITY_TEXT
    elif field.name in SLOT_FIELDS:
        low, high = 1, MAX_SLOTS
    else:  # histograms
        low = high = HISTOGRAM_BUCKETS
    return replace(field, low=low, high=high)


def bounds_text(field: Field) -> str:
    """The bounds as the generated field reference states them."""
    if field.tag == Tag.BYTES:
        return f"{'UTF-8, ' if field.text else ''}at most {field.high:g} bytes"
    if field.tag in (Tag.I32_ARRAY, Tag.F64_ARRAY):
        length = f"{field.low:g}" if field.low == field.high else f"{field.low:g}-{field.high:g}"
        items = "counts >= 0" if field.tag == Tag.I32_ARRAY else "finite, |x| < 2^49"
        return f"{length} items, {items}"
    if field.tag == Tag.U64:
        return "0 to 2^53-1"
    if field.high != FLOAT_LIMIT:
        return f"finite, {field.low:g} to {field.high:g}"
    return "finite, |x| < 2^49"


FIELDS: Final[tuple[Field, ...]] = tuple(
    sorted(map(bounded, _IDENTITY + _TICK + _phase_fields() + _IO_SLOTS_STATUS + _LIFECYCLE + _SLOW + _GC),
           key=lambda f: f.id)
)
BY_ID: Final[dict[int, Field]] = {f.id: f for f in FIELDS}
BY_NAME: Final[dict[str, Field]] = {f.name: f for f in FIELDS}


def field_name(field_id: int) -> str:
    """Name of a field id; unknown ids are kept under ``idN``."""
    field = BY_ID.get(field_id)
    return field.name if field else f"id{field_id}"


def field_by_name(name: str) -> Field:
    """The field called ``name``, including ``idN`` names for unknown ids."""
    field = BY_NAME.get(name)
    if field is None:
        raise KeyError(f"unknown field name {name!r}")
    return field


DOC_HEADER = (
    "# mod_wsgi 6.1 telemetry fields\n\n"
    "Generated by `python -m ingest fields > docs/wire-fields.md` from `ingest/model/fields.py`; "
    "do not edit by hand.\n"
)


def markdown_table() -> str:
    """The field reference as Markdown: docs/wire-fields.md is this text."""
    lines = [DOC_HEADER, "## Kinds\n", "| kind | name |", "|---|---|"]
    lines += [f"| {k.value} | `{k.name.lower()}` |" for k in Kind]
    lines += ["", "## Fields\n",
              "A value outside its bounds makes the datagram malformed (counted against its process).\n",
              "| id | name | type | unit | kinds | present | bounds | meaning |",
              "|---|---|---|---|---|---|---|---|"]
    for f in FIELDS:
        kinds = ", ".join(str(k) for k in f.kinds)
        lines.append(f"| {f.id} | `{f.name}` | {f.tag.name} | {f.unit} | {kinds} | {f.presence} "
                     f"| {bounds_text(f)} | {f.doc} |")
    return "\n".join(lines) + "\n"
