"""The messages of the console's two protocols, as types for mypy.

Agent <-> console (``/ws/agent/``, docs/agent-protocol.md): msgpack maps
whose ``t`` names the message. Page <-> console (``/ws/live/``,
docs/live-protocol.md): JSON objects whose ``type`` does.

What arrives is a ``dict[str, Any]`` until ``protocol`` has validated it;
only then is it one of these (an agent may send more keys: nobody reads
them). The snapshots and frames the publisher and the tabs build
(``host.snapshot``, ``host.frame``, ``tab.*``, ``fleet.update``) and the
``error`` of ``health.error_message`` stay plain dicts: their shape is
the metric and tab tables', not this module's.

Plain Python, like ``protocol``'s callers need: no Django import.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from console.windows.durability import DurabilityMessage

# -- agent -> console (validated) ------------------------------------------------------


class AgentHello(TypedDict):
    """``hello``, first on each connection (``protocol.validate_hello``)."""

    t: Literal["hello"]
    protocol: int
    instance: str
    agent: str


class AgentHeartbeat(TypedDict):
    """``heartbeat``; the counters are read by ``protocol.validate_heartbeat``, the clock by
    ``protocol.heartbeat_time``, each refusing nothing but a missing map."""

    t: Literal["heartbeat"]
    counters: dict[str, Any]
    instance: NotRequired[str]
    time: NotRequired[float]


# ``batch`` is never held as a message: ``protocol.validate_batch`` turns it into
# (instance, id, checked samples) at once.

# -- console -> agent --------------------------------------------------------------------


class Welcome(TypedDict):
    """The answer to ``hello``."""

    t: Literal["welcome"]
    protocol: int
    host: str
    max_message: int
    acked: int
    compression: str


class Ack(TypedDict):
    """A batch written (or a duplicate: nothing written, nothing dropped)."""

    t: Literal["ack"]
    id: int
    written: int
    duplicate: bool
    dropped: int


class AgentError(TypedDict):
    """Sent before the connection is closed with its code."""

    t: Literal["error"]
    reason: str


#: What the console sends an agent (``protocol.pack``).
ToAgent = Welcome | Ack | AgentError

# -- page -> console ---------------------------------------------------------------------


class Subscribe(TypedDict):
    """A page's ``subscribe``, as documented; the consumer reads what arrives as a plain
    dict and validates each key (``queries.visible_host``, ``tabs.TabRequest``)."""

    type: Literal["subscribe"]
    scope: Literal["fleet", "host"]
    host: NotRequired[int]
    tab: NotRequired[str]
    group: NotRequired[str]
    window: NotRequired[float]
    points: NotRequired[int]
    options: NotRequired[dict[str, str | float | bool]]


class Unsubscribe(TypedDict):
    type: Literal["unsubscribe"]


# -- console -> page ---------------------------------------------------------------------


class PageHello(TypedDict):
    """Right after the connection is accepted; with what the store's Redis keeps (the keys
    of ``StoreStateMessage``) when this console process has read it already."""

    type: Literal["hello"]
    user: str
    store: str  # "redis" or "memory"
    single_process: bool
    now: float
    #: Seconds since its agent was last heard from within which a host is online: pages
    #: age the state of a host whose messages stopped on this, on the console's clock.
    online_within: float
    durability: NotRequired[DurabilityMessage]
    data_since: NotRequired[float | None]
    history_lost_at: NotRequired[float | None]


class Status(TypedDict):
    """Whenever the console's view of its store changes from what the page was told; the
    keys of ``StoreStateMessage`` only when the store's state could be read."""

    type: Literal["status"]
    store_ok: bool
    now: float
    reason: str | None
    durability: NotRequired[DurabilityMessage]
    data_since: NotRequired[float | None]
    history_lost_at: NotRequired[float | None]


class FleetSnapshot(TypedDict):
    type: Literal["fleet.snapshot"]
    now: float
    hosts: list[dict[str, Any]]
