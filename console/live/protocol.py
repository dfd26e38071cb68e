"""Validation of agent messages (docs/agent-protocol.md).

Everything an agent sends is checked here before it reaches the store:
the token proves which host is talking, not that the bytes are sane.
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Literal, cast, overload

import msgpack
from django.conf import settings

from console.windows import checks
from console.windows.checks import CheckedSamples

from .messages import AgentHello, ToAgent

PROTOCOL = 1
#: What ``welcome`` offers for batches: the agent may send ``zsamples`` (ingest/pipeline/batchwire.py).
COMPRESSION = "zlib"
MAX_SAMPLES = 5000
MAX_FIELDS = checks.MAX_FIELDS
MAX_STRING = 64 * 1024
#: Largest counter the host's database columns (BigIntegerField) hold.
COUNTER_MAX = 2**63 - 1


class ProtocolError(ValueError):
    """A message that breaks the protocol; the message says how."""


def _unpackb(data: bytes, what: str) -> Any:
    try:
        return msgpack.unpackb(
            data, raw=False, strict_map_key=False,
            max_str_len=MAX_STRING, max_bin_len=MAX_STRING, max_array_len=max(MAX_SAMPLES, 4096),
            max_map_len=MAX_FIELDS,
        )
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise ProtocolError(f"{what} is not msgpack: {exc}") from None
    except UnicodeDecodeError:
        raise ProtocolError(f"a string that is not UTF-8 in {what} (bytes go as msgpack bin)") from None


def unpack(data: bytes) -> dict[str, Any]:
    message = _unpackb(data, "the message")
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        raise ProtocolError("a message is a map with a string 't'")
    return message


def _int(message: dict[str, Any], key: str) -> int:
    value = message.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError(f"{key!r} must be a non-negative integer")
    return value


@overload
def _str(message: dict[str, Any], key: str) -> str: ...
@overload
def _str(message: dict[str, Any], key: str, *, optional: Literal[True]) -> str | None: ...
def _str(message: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = message.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > 256:
        raise ProtocolError(f"{key!r} must be a string")
    return value


def validate_hello(message: dict[str, Any]) -> AgentHello:
    if message.get("protocol") != PROTOCOL:
        raise ProtocolError(
            f"unsupported protocol {message.get('protocol')!r}; this console speaks {PROTOCOL}")
    _str(message, "instance")
    _str(message, "agent")
    return cast(AgentHello, message)  # "t" is "hello" (the handler was chosen by it), the rest checked


def validate_sample(sample: Any) -> dict[str, Any]:
    """A sample that keeps to its envelope and the field table (``console.windows.checks``).

    Raises ProtocolError saying why otherwise. A batch does not: its bad
    samples are dropped and counted, and the others written (``validate_batch``).
    """
    problem = checks.sample_problem(sample)
    if problem is not None:
        raise ProtocolError(problem)
    return sample


def validate_batch(message: dict[str, Any]) -> tuple[str, int, CheckedSamples]:
    """Instance, id and the samples that pass the checks (with the reasons of those dropped).

    The message itself must be right (4400 otherwise); a sample that is not
    is left out, so one bad process costs its host nothing else. The store
    counts the dropped ones when it writes the batch (a duplicate counts
    nothing), and the samples handed on are the only ones the pages see.
    """
    instance = _str(message, "instance")
    batch_id = _int(message, "id")
    samples = _inflated(message["zsamples"]) if "zsamples" in message else message.get("samples")
    if not isinstance(samples, list) or len(samples) > MAX_SAMPLES:
        raise ProtocolError(f"'samples' must be a list of at most {MAX_SAMPLES}")
    return instance, batch_id, checks.check_samples(samples)


def _inflated(packed: Any) -> Any:
    """``zsamples``: the samples' msgpack array, zlib-compressed (ingest/pipeline/batchwire.py). The
    agent keeps a batch under ``max_message`` before compression, so nothing more is
    inflated: a small message cannot make the console hold gigabytes."""
    if not isinstance(packed, bytes):
        raise ProtocolError("'zsamples' must be bytes")
    limit = settings.WSGI_FLEET["AGENT_MAX_MESSAGE"]
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(packed, limit)
    except zlib.error as exc:
        raise ProtocolError(f"'zsamples' is not zlib data: {exc}") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise ProtocolError(f"'zsamples' inflates to more than {limit} bytes, or is cut short")
    return _unpackb(data, "'zsamples'")


def validate_heartbeat(message: dict[str, Any]) -> dict[str, int]:
    """The agent's counters as ints the host's database columns and the store can hold.

    A counter is clamped into 0 .. 2**63 - 1 (a BigIntegerField): a value
    of 2**64 - 1 used to close the connection with a database overflow. A
    counter that is no integer, or whose name is not a short string, is left
    out; at most 64 are kept (each is a field of the store's agent hash).
    Nothing here refuses a heartbeat but a missing map.
    """
    counters = message.get("counters")
    if not isinstance(counters, dict):
        raise ProtocolError("'counters' must be a map")
    largest, most, longest = COUNTER_MAX, 64, 64
    out: dict[str, int] = {}
    for name, value in counters.items():
        if len(out) >= most:
            break
        if isinstance(name, str) and len(name) <= longest and type(value) is int:
            out[name] = min(max(value, 0), largest)
    return out


def heartbeat_time(message: dict[str, Any]) -> float | None:
    """The agent's clock at the heartbeat (epoch s), or None when it is missing or no clock.

    Never a refusal: an agent without ``time`` (or with nonsense there) is
    only an agent whose clock the console cannot compare with its own.
    """
    value: Any = message.get("time")  # anything the agent sent; checked here
    if type(value) not in (int, float) or not math.isfinite(value) or not 0 < value < checks.MAX_STAMP:
        return None
    return float(value)


def pack(message: ToAgent) -> bytes:
    packed: bytes = msgpack.packb(message, use_bin_type=True)
    return packed
