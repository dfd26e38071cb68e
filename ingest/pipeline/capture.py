"""Capture files: the datagrams a socket received, byte for byte.

The format is the one of ``tests/data/wire-vectors/raw/*.dgrams.gz``: repeated
``u32 little-endian length`` + datagram bytes, optionally gzip-compressed,
so captures from the field and the project's ground truth read the same.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator
from typing import BinaryIO

from .wire import MAX_DATAGRAM

_LEN = struct.Struct("<I")
_GZIP_MAGIC = b"\x1f\x8b"


class CaptureError(ValueError):
    """A capture file that ends in the middle of a record or is not a capture."""


def _open(path: str, mode: str) -> BinaryIO:
    if mode == "rb":
        with open(path, "rb") as probe:
            gz = probe.read(2) == _GZIP_MAGIC
    else:
        gz = path.endswith(".gz")
    # return-value: with a binary mode (callers pass "rb", "wb", "ab") both are binary files
    return gzip.open(path, mode) if gz else open(path, mode)  # type: ignore[return-value]


def read(path: str) -> Iterator[bytes]:
    """Yield every datagram of a capture file (plain or gzip)."""
    with _open(path, "rb") as fh:
        offset = 0
        while True:
            head = fh.read(4)
            if not head:
                return
            if len(head) < 4:
                raise CaptureError(f"{path}: truncated length at byte {offset}")
            (size,) = _LEN.unpack(head)
            if size > MAX_DATAGRAM:
                raise CaptureError(f"{path}: record length {size} at byte {offset} is not a datagram")
            data = fh.read(size)
            if len(data) < size:
                raise CaptureError(f"{path}: record at byte {offset} cut short ({len(data)} of {size} bytes)")
            offset += 4 + size
            yield data


def record(data: bytes) -> bytes:
    """One datagram as a capture file holds it."""
    return _LEN.pack(len(data)) + data


class Writer:
    """Appends datagrams to a capture file; ``.gz`` names are compressed."""

    def __init__(self, path: str):
        self.path = path
        self._fh = _open(path, "ab" if not path.endswith(".gz") else "wb")
        self.count = 0

    def write(self, data: bytes) -> None:
        self._fh.write(record(data))
        self.count += 1

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_all(path: str, datagrams: list[bytes]) -> None:
    with Writer(path) as writer:
        for data in datagrams:
            writer.write(data)
