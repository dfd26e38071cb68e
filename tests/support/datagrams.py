"""Sending datagrams to an agent's socket the way tests need it."""

from __future__ import annotations

import socket
from collections.abc import Iterable


def send_all(path: str, datagrams: Iterable[bytes]) -> int:
    """Blocking sends: the sender waits when the kernel queue is full, so nothing is dropped."""
    out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    count = 0
    for data in datagrams:
        out.sendto(data, path)
        count += 1
    out.close()
    return count
