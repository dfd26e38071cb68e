"""The one JSON encoder of everything sent to pages and token clients.

Browsers parse with ``JSON.parse``, which refuses ``NaN`` and ``Infinity``:
one of them anywhere in a message made the page throw the whole message
away ("No data"). Python's ``json.dumps`` writes them by default. So every
outgoing message, the consumers' own (``LiveConsumer.encode_json``) and the
publisher's ready-made texts, goes through ``dumps`` here: strict JSON
(``allow_nan=False``) after every non-finite float became ``null``, bytes
display text and anything else JSON has no word for a string.

Cleaning walks the whole message, which costs more than encoding it: the
strict encoder runs first, and only a message it refuses is cleaned and
encoded again. The result is the same as cleaning every message.

No message about one host is longer than ``MAX_TEXT``: the builders bound
the per-process parts of what they send; a message that is still too long
loses the second half of its process list (``SHRINK``) or, when it has none
to lose, is replaced by an ``error`` about that host and tab (counted), so
a flood of fake processes can never make a frame that closes the page's
connection or stalls the worker that sends it. Fleet messages are the
exception: about 0.6 kB a host, their size is set by how many hosts the
operator created, not by anything an agent sends.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Mapping
from typing import Any

from .health import error_message, faults

#: The longest text sent to a page or token client, in bytes (the text is ASCII).
MAX_TEXT = 1 << 20
#: Deeper nesting than any message has is cut (None) rather than recursed into.
MAX_DEPTH = 64
_SEPARATORS = (",", ":")
#: Message types bounded by the number of hosts instead (see above).
UNBOUNDED = frozenset({"fleet.snapshot", "fleet.update"})
#: The list a too-long message loses its second half of (again, as needed) before it is
#: replaced by an error: host messages keep their metrics and lose processes; the slow
#: tab, whose records hold long texts, loses records (counted in ``omitted``).
SHRINK = {"host.snapshot": "processes", "host.frame": "processes", "slow": "records"}
TAB_TYPES = frozenset({"tab.snapshot", "tab.frame"})


def clean(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON data: non-finite floats None, bytes display text, arrays lists."""
    if isinstance(value, str) or value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= MAX_DEPTH:
        return None
    if isinstance(value, Mapping):
        return {_key(k): clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | array | set | frozenset):
        return [clean(v, depth + 1) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    return str(value)


def _key(key: Any) -> str | int:
    if isinstance(key, str) or (isinstance(key, int) and not isinstance(key, bool)):
        return key
    if isinstance(key, float) and math.isfinite(key):
        return repr(key)
    return str(clean(key)) if isinstance(key, bytes) else str(key)


def _strict(message: Any) -> str:
    return json.dumps(message, allow_nan=False, separators=_SEPARATORS)


def _encode(message: Any) -> str:
    try:
        return _strict(message)
    except (ValueError, TypeError, RecursionError):  # NaN or inf, bytes, a set, odd keys, ...
        return _strict(clean(message))


def _shrinkable(message: Mapping[str, Any]) -> str | None:
    kind: Any = message.get("type")  # anything a builder put there
    tab: Any = message.get("tab")
    key = SHRINK.get(kind) if kind in SHRINK else SHRINK.get(tab) if kind in TAB_TYPES else None
    return key if key is not None and isinstance(message.get(key), list) else None


def dumps(message: Mapping[str, Any]) -> str:
    """``message`` as strict JSON text of at most MAX_TEXT bytes (see the module docstring)."""
    text = _encode(message)
    if len(text) <= MAX_TEXT or message.get("type") in UNBOUNDED:
        return text
    key = _shrinkable(message)
    while key and message[key] and len(text) > MAX_TEXT:
        kept = message[key][:len(message[key]) // 2]
        cut = {"omitted": message["omitted"] + len(message[key]) - len(kept)} if "omitted" in message else {}
        message = {**message, key: kept, **cut}
        text = _encode(message)
    if len(text) <= MAX_TEXT:
        return text
    kind = str(message.get("type", "message"))
    tab = message.get("tab") if isinstance(message.get("tab"), str) else None
    host = message.get("host") if isinstance(message.get("host"), int) else None
    faults.caught(f"bounding a {kind}", host, detail=f"{len(text):,} bytes left out")
    return _strict(error_message(
        f"the console left out a {kind}{f' of the {tab} tab' if tab else ''} of {len(text):,} bytes: "
        f"over its limit of {MAX_TEXT:,} bytes a message", host=host, tab=tab, about=kind,
        t=message.get("t") if isinstance(message.get("t"), int) else None))
