"""Validation of agent messages (docs/agent-protocol.md).

Everything an agent sends is checked here before it reaches the store:
the token proves which host is talking, not that the bytes are sane.
"""

from __future__ import annotations

from typing import Any

import msgpack

PROTOCOL = 1
MAX_SAMPLES = 5000
MAX_FIELDS = 512
MAX_STRING = 64 * 1024
#: longest array a sample may hold (mod_wsgi caps slot arrays at 128; histograms have 65 buckets)
MAX_ARRAY = 4096
_NUMBER = (int, float)
_INT, _NUMBER_TYPES = frozenset({int}), frozenset({int, float})


class ProtocolError(ValueError):
    """A message that breaks the protocol; the message says how."""


def unpack(data: bytes) -> dict[str, Any]:
    try:
        message = msgpack.unpackb(
            data, raw=False, strict_map_key=False,
            max_str_len=MAX_STRING, max_bin_len=MAX_STRING, max_array_len=max(MAX_SAMPLES, 4096),
            max_map_len=MAX_FIELDS,
        )
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise ProtocolError(f"not a msgpack message: {exc}") from None
    except UnicodeDecodeError:
        raise ProtocolError("string that is not UTF-8 (byte strings must be msgpack bin)") from None
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        raise ProtocolError("a message is a map with a string 't'")
    return message


def _int(message: dict, key: str) -> int:
    value = message.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError(f"{key!r} must be a non-negative integer")
    return value


def _str(message: dict, key: str, *, optional: bool = False) -> str | None:
    value = message.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > 256:
        raise ProtocolError(f"{key!r} must be a string")
    return value


def validate_hello(message: dict) -> dict:
    if message.get("protocol") != PROTOCOL:
        raise ProtocolError(
            f"unsupported protocol {message.get('protocol')!r}; this console speaks {PROTOCOL}")
    _str(message, "instance")
    _str(message, "agent")
    return message


def validate_sample(sample: Any) -> dict:
    if not isinstance(sample, dict):
        raise ProtocolError("a sample is a map")
    for key in ("k", "p", "i", "s"):
        _int(sample, key)
    if not isinstance(sample.get("t"), _NUMBER) or isinstance(sample.get("t"), bool):
        raise ProtocolError("sample 't' must be a number")
    for key in ("g", "n"):
        value = sample.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 256):
            raise ProtocolError(f"sample {key!r} must be a string or null")
    fields = sample.get("f")
    if not isinstance(fields, dict) or len(fields) > MAX_FIELDS:
        raise ProtocolError("sample 'f' must be a map of at most 512 fields")
    for name, value in fields.items():
        if not isinstance(name, str):
            raise ProtocolError("field names are strings")
        if isinstance(value, dict):
            _check_sparse(name, value)
    return sample


def _check_sparse(name: str, value: dict) -> None:
    """A sparse array ``{index: number, -1: length}``: indexes inside the length, which is bounded."""
    length = value.get(-1)
    if type(length) is not int or not 0 <= length <= MAX_ARRAY:
        raise ProtocolError(f"field {name!r}: a sparse array needs its length (key -1), at most {MAX_ARRAY}")
    keys = value.keys()  # type checks by set(map(type, ...)): C loops, this runs per array per tick
    if not set(map(type, keys)) <= _INT or min(keys) < -1 or max(keys) >= max(length, 1):
        raise ProtocolError(f"field {name!r}: sparse indexes are integers inside the array")
    if not set(map(type, value.values())) <= _NUMBER_TYPES:
        raise ProtocolError(f"field {name!r}: sparse values are numbers")


def validate_batch(message: dict) -> tuple[str, int, list[dict]]:
    instance = _str(message, "instance")
    batch_id = _int(message, "id")
    samples = message.get("samples")
    if not isinstance(samples, list) or len(samples) > MAX_SAMPLES:
        raise ProtocolError(f"'samples' must be a list of at most {MAX_SAMPLES}")
    return instance, batch_id, [validate_sample(s) for s in samples]  # type: ignore[return-value]


def validate_heartbeat(message: dict) -> dict[str, int]:
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
    largest, most, longest = 2**63 - 1, 64, 64
    out: dict[str, int] = {}
    for name, value in counters.items():
        if len(out) >= most:
            break
        if isinstance(name, str) and len(name) <= longest and type(value) is int:
            out[name] = min(max(value, 0), largest)
    return out


def pack(message: dict) -> bytes:
    return msgpack.packb(message, use_bin_type=True)
