"""The open batch, on disk as it fills: a SIGKILLed agent loses nothing it accepted.

With a spool directory every sample the forwarder accepts is appended, as it
comes, to the open batch's journal (``open-<n>.journal``), a msgpack array
whose 5-byte header is written when the batch is sealed. Sealing writes that
header and renames the journal to its batch file in one step: at no moment
is a sample in both, or in neither. An agent that died with journals left
turns them into batches at its next start (``read``): a sample cut short by
the kill is all that is dropped, and it was never counted as forwarded.

The write is one ``os.write`` per sample into the page cache (no fsync): it
survives the agent's death, not the host's, like the batches.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import msgpack

log = logging.getLogger("ingest.forwarder")

SUFFIX = ".journal"
HEADER = 5  # an array 32 header, written at sealing: the count is not known before


def header(count: int) -> bytes:
    return b"\xdd" + count.to_bytes(4, "big")


class Pending:
    """Encoded samples not yet in the spool and, with a directory, the journal holding them."""

    __slots__ = ("fd", "path", "samples", "size")

    def __init__(self, path: Path | None = None):
        self.path = path  # None: memory only
        self.fd: int | None = None
        self.samples: list[bytes] = []
        self.size = HEADER

    def __len__(self) -> int:
        return len(self.samples)

    def add(self, sample: bytes) -> None:
        self.samples.append(sample)
        self.size += len(sample)
        if self.path is None:
            return
        try:
            if self.fd is None:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.write(self.fd, header(0))
            os.write(self.fd, sample)
        except OSError as exc:  # a full disk: memory still holds the batch, as the spool does
            log.warning("cannot journal the open batch to %s: %s; it is kept in memory only", self.path, exc)
            self.discard()

    def data(self) -> bytes:
        return b"".join([header(len(self.samples)), *self.samples])

    def seal(self) -> Path | None:
        """Finish the journal as a batch file; its path, for the spool to rename, or None."""
        if self.fd is None:
            return None
        try:
            os.pwrite(self.fd, header(len(self.samples)), 0)
            return self.path
        except OSError as exc:
            log.warning("cannot seal the journal %s: %s", self.path, exc)
            return None
        finally:
            os.close(self.fd)
            self.fd = None

    def discard(self) -> None:
        """Close and remove the journal (its samples are dropped, or held in memory only)."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.path = None


def journals(directory: Path) -> list[tuple[int, Path]]:
    """The journals left in ``directory``, oldest first."""
    found = []
    for path in directory.glob(f"open-*{SUFFIX}"):
        number = path.name[len("open-"):-len(SUFFIX)]
        if number.isdigit():
            found.append((int(number), path))
    return sorted(found)


def read(path: Path) -> Pending:
    """A journal left by an agent that died: its whole samples, the file ready to seal.

    A sample cut short is cut off the file too, so the batch file holds
    exactly what the returned ``Pending`` does.
    """
    raw = path.read_bytes()
    pending = Pending(path)
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=max(len(raw), 1))
    unpacker.feed(raw[HEADER:])
    start = 0
    with contextlib.suppress(msgpack.OutOfData, ValueError, msgpack.UnpackException):
        while True:
            unpacker.skip()
            end = unpacker.tell()
            pending.samples.append(raw[HEADER + start:HEADER + end])
            pending.size += end - start
            start = end
    pending.fd = os.open(path, os.O_WRONLY)
    os.ftruncate(pending.fd, HEADER + start)
    return pending
