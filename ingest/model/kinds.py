"""Datagram kinds as the plain ints samples carry, and the names every layer uses for them.

``Kind`` (``fields``) is the wire's enumeration; samples, frames and the
console's stores compare ints, so the constants are ints once, here.
"""

from __future__ import annotations

from typing import Final

from .fields import Kind

TICK: Final = int(Kind.REQUEST_METRICS)
SLOW: Final = int(Kind.SLOW_REQUEST)
STARTED: Final = int(Kind.PROCESS_STARTED)
STOPPING: Final = int(Kind.PROCESS_STOPPING)
STOPPED: Final = int(Kind.PROCESS_STOPPED)
GC_SNAPSHOT: Final = int(Kind.GC_SNAPSHOT)
GC_EVENT: Final = int(Kind.GC_EVENT)

#: The process group standing for the whole host in frames and channel groups.
HOST: Final = "*"
#: HTTP status classes, in the order of the ``status_{c}xx_total`` fields and frame keys s1..s5.
STATUS_CLASSES: Final = ("1xx", "2xx", "3xx", "4xx", "5xx")
STATUS_FIELDS: Final = tuple(f"status_{c}_total" for c in STATUS_CLASSES)
