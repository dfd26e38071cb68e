"""The forwarder's spool: every batch not yet acked by the console.

Batches live in memory as their encoded samples (a msgpack array), so the
bound on bytes is exact and a resend costs no re-encoding. With a spool
directory each batch is also one file, ``<id>.batch``, written to a temporary
name and renamed (or, for a sealed journal of the open batch, ``journal.py``,
renamed itself), so a crash leaves either the whole batch or nothing. The
directory also keeps the agent instance id and the last batch id used: the
console deduplicates by a high-water mark of batch ids per instance, so an
agent restarted on the same spool must continue the same instance's ids, and
never reuse one, or its new batches would be taken for duplicates.

Batch ids only ever grow. When the console refuses a batch as too large it is
split in two, and the two halves need two ids between the batches around it:
the batches after it are renumbered one up. That is safe because a batch is
only split when the console has written nothing at or above it (ids above its
``acked`` mark are, by the contract, not written).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from ..model.sample import sparse_counts

log = logging.getLogger("ingest.forwarder")
_ARRAY_HEADER = msgpack.Packer().pack_array_header

SUFFIX = ".batch"
STATE = "state"
LOCK = "lock"


class SpoolError(RuntimeError):
    """The spool directory cannot be used (locked by another agent, unreadable)."""


@dataclass(slots=True)
class Batch:
    id: int
    samples: bytes  # one msgpack array of sample maps
    count: int  # samples in it
    created: float  # epoch s: the age bound must hold across agent restarts
    strikes: int = 0  # refusals with 4400 so far

    @property
    def size(self) -> int:
        return len(self.samples)


def _default(value: Any) -> Any:
    if isinstance(value, array):  # wire arrays are array.array; the console wants msgpack arrays
        if value.typecode == "i":
            return sparse_counts(value)
        return value.tolist()
    raise TypeError(f"cannot send {type(value).__name__}")


def packer() -> msgpack.Packer:
    """A sample encoder (one per thread): text as str, non-UTF-8 bytes as bin, arrays as arrays."""
    return msgpack.Packer(default=_default, use_bin_type=True)


def encode(samples: list[dict[str, Any]]) -> list[bytes]:
    """Each sample as msgpack: text as str, non-UTF-8 bytes as bin, arrays as arrays.

    One call per sample, not one for the batch: msgpack holds the GIL for
    a whole call (a 5,000-sample batch takes ~25 ms), and the agent's
    receive thread must get it back within a millisecond or the kernel's
    short datagram queue overflows.
    """
    pack = packer().pack
    return [pack(sample) for sample in samples]


def spans(data: bytes) -> list[bytes]:
    """The encoded samples of a batch, cut apart without decoding them."""
    unpacker = msgpack.Unpacker(max_buffer_size=max(len(data), 1))
    unpacker.feed(data)
    count = unpacker.read_array_header()
    out = []
    start = unpacker.tell()
    for _ in range(count):
        unpacker.skip()
        end = unpacker.tell()
        out.append(data[start:end])
        start = end
    return out


def pack(encoded: list[bytes], limit: int) -> tuple[list[tuple[bytes, int]], list[int]]:
    """Join encoded samples into as few arrays of at most ``limit`` bytes as they fit in, in order.

    Returns the parts (msgpack array, count) and the sizes of samples over
    the limit on their own, which cannot be sent at all.
    """
    parts: list[tuple[bytes, int]] = []
    too_big: list[int] = []
    chunk: list[bytes] = []
    size = 5  # the largest array header
    for sample in encoded:
        if len(sample) + 5 > limit:
            too_big.append(len(sample))
            continue
        if size + len(sample) > limit:
            parts.append((b"".join([_ARRAY_HEADER(len(chunk)), *chunk]), len(chunk)))
            chunk, size = [], 5
        chunk.append(sample)
        size += len(sample)
    if chunk:
        parts.append((b"".join([_ARRAY_HEADER(len(chunk)), *chunk]), len(chunk)))
    return parts, too_big


def stamp_seconds(data: bytes) -> set[int]:
    """The whole seconds the samples of a batch are stamped in (what a dropped batch leaves empty)."""
    try:
        samples = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException):
        return set()
    stamps: Iterable[Any] = ((s.get("t") for s in samples if isinstance(s, dict))
                             if isinstance(samples, list) else ())
    return {int(t) for t in stamps if type(t) in (int, float) and 0 <= t < 2**33}


def array_length(data: bytes) -> int:
    """Element count from a msgpack array header (fixarray, array 16, array 32)."""
    first = data[0]
    if 0x90 <= first <= 0x9F:
        return first & 0x0F
    if first == 0xDC:
        return int.from_bytes(data[1:3], "big")
    if first == 0xDD:
        return int.from_bytes(data[1:5], "big")
    raise ValueError(f"not a msgpack array (first byte 0x{first:02x})")


class Spool:
    """Unacked batches in id order, bounded by total bytes and by age."""

    def __init__(self, directory: str | os.PathLike[str] | None, *, max_bytes: int, max_age: float,
                 clock: Callable[[], float] = time.time):
        self.dir = Path(directory) if directory is not None else None
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.clock = clock
        self.batches: OrderedDict[int, Batch] = OrderedDict()
        self.bytes = 0
        self.dropped = 0  # batches discarded because the spool was full or too old
        self.dropped_samples = 0
        self.dropped_seconds = 0  # distinct seconds (of sample stamps) those batches held
        self._last_dropped: set[int] = set()  # the seconds of the batch dropped last
        self.instance = secrets.token_hex(8)
        self.last_id = 0
        self._lock_fd: int | None = None
        if self.dir is not None:
            self._open_dir(self.dir)

    # -- the directory ------------------------------------------------------------

    def _open_dir(self, directory: Path) -> None:
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"cannot use spool directory {directory}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SpoolError(f"spool directory {directory} is in use by another agent") from None
        self._lock_fd = fd
        state = directory / STATE
        if state.exists():
            try:
                saved = msgpack.unpackb(state.read_bytes())
                self.instance = str(saved["instance"])
                self.last_id = int(saved["last_id"])
            except (OSError, ValueError, KeyError, TypeError, msgpack.UnpackException) as exc:
                log.warning("spool state %s unreadable (%s): starting a new agent instance", state, exc)
        found = []
        for path in directory.iterdir():
            if path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # a write cut short by a crash
            elif path.name.endswith(SUFFIX) and path.name[: -len(SUFFIX)].isdigit():
                found.append((int(path.name[: -len(SUFFIX)]), path))
        for batch_id, path in sorted(found):
            try:
                data = path.read_bytes()
                batch = Batch(batch_id, data, array_length(data), path.stat().st_mtime)
            except (OSError, ValueError, IndexError) as exc:
                log.warning("dropping unreadable spooled batch %s: %s", path, exc)
                path.unlink(missing_ok=True)
                continue
            self.batches[batch_id] = batch
            self.bytes += batch.size
            self.last_id = max(self.last_id, batch_id)
        self._save_state()
        if self.batches:
            log.info("spool %s: %d batches (%d bytes) of instance %s waiting from a previous run",
                     directory, len(self.batches), self.bytes, self.instance)
        self.enforce()

    def _path(self, batch_id: int) -> Path:
        assert self.dir is not None
        return self.dir / f"{batch_id:016d}{SUFFIX}"

    def _write(self, batch: Batch) -> None:
        if self.dir is None:
            return
        path = self._path(batch.id)
        tmp = path.with_name(path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(batch.samples)
            os.replace(tmp, path)
        except OSError as exc:  # a full disk must not stop forwarding: memory still holds it
            log.warning("cannot spool batch %d to %s: %s", batch.id, path, exc)

    def _unlink(self, batch_id: int) -> None:
        if self.dir is not None:
            with contextlib.suppress(OSError):
                self._path(batch_id).unlink()

    def _save_state(self) -> None:
        """Persist the instance and the last id; needed once no batch file shows it."""
        if self.dir is None:
            return
        tmp = self.dir / (STATE + ".tmp")
        try:
            tmp.write_bytes(msgpack.packb({"instance": self.instance, "last_id": self.last_id}))
            os.replace(tmp, self.dir / STATE)
        except OSError as exc:
            log.warning("cannot save spool state in %s: %s", self.dir, exc)

    def close(self) -> None:
        """Save the id mark and release the directory for the next agent."""
        if self._lock_fd is not None:
            self._save_state()
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- batches --------------------------------------------------------------------

    def add(self, samples: bytes, count: int, source: Path | None = None) -> Batch:
        """Spool a newly sealed batch under the next id, then enforce the bounds.

        ``source`` is a file already holding exactly ``samples`` (a sealed
        journal): renamed into place, so the batch is never on disk twice.
        """
        self.last_id += 1
        batch = Batch(self.last_id, samples, count, self.clock())
        self.batches[batch.id] = batch
        self.bytes += batch.size
        if source is None or not self._place(batch, source):
            self._write(batch)
        self.enforce()
        return batch

    def _place(self, batch: Batch, source: Path) -> bool:
        if self.dir is None:
            return False
        try:
            os.replace(source, self._path(batch.id))
            return True
        except OSError as exc:
            log.warning("cannot move %s to batch %d: %s", source, batch.id, exc)
            return False

    def first(self) -> Batch | None:
        return next(iter(self.batches.values()), None)

    def __iter__(self) -> Iterator[Batch]:
        return iter(self.batches.values())

    def __len__(self) -> int:
        return len(self.batches)

    def remove(self, batch: Batch) -> None:
        if self.batches.pop(batch.id, None) is None:
            return
        self.bytes -= batch.size
        self._unlink(batch.id)
        if not self.batches:
            self._save_state()  # no batch file remembers the last id any more

    def forget_upto(self, mark: int) -> int:
        """Forget every batch the console has written (id <= its mark); returns how many."""
        gone = 0
        while self.batches:
            batch = self.first()
            assert batch is not None
            if batch.id > mark:
                break
            self.remove(batch)
            gone += 1
        return gone

    def enforce(self) -> None:
        """Drop the oldest batches while over the byte bound or past the age bound."""
        horizon = self.clock() - self.max_age
        while self.batches:
            batch = self.first()
            assert batch is not None
            if self.bytes <= self.max_bytes and batch.created >= horizon:
                break
            self.remove(batch)
            self.dropped += 1
            self.dropped_samples += batch.count
            seconds = stamp_seconds(batch.samples)
            self.dropped_seconds += len(seconds - self._last_dropped)  # the oldest go first: only
            self._last_dropped = seconds  # the batch before can share a second with this one
            log.warning("spool full: dropped batch %d (%d samples, %d bytes); %d batches (%d samples, "
                        "%d s of data) dropped so far", batch.id, batch.count, batch.size, self.dropped,
                        self.dropped_samples, self.dropped_seconds)

    def replace(self, batch: Batch, parts: list[tuple[bytes, int]]) -> list[Batch]:
        """Put ``parts`` (encoded samples, count) in place of ``batch``, renumbering after it."""
        extra = len(parts) - 1
        if extra > 0:
            later = [b for b in self.batches.values() if b.id > batch.id]
            for b in reversed(later):  # highest first, so no rename lands on a live file
                if self.dir is not None:
                    with contextlib.suppress(OSError):
                        os.replace(self._path(b.id), self._path(b.id + extra))
                b.id += extra
            self.last_id += extra
        new = [Batch(batch.id + n, data, count, batch.created) for n, (data, count) in enumerate(parts)]
        self.bytes += sum(b.size for b in new) - batch.size
        if not new:
            self._unlink(batch.id)
        for b in reversed(new):  # the first half last: it overwrites the original file
            self._write(b)
        order = [b for b in self.batches.values() if b.id < batch.id] + new
        order += [b for b in self.batches.values() if b.id > batch.id]
        self.batches = OrderedDict((b.id, b) for b in order)
        if not self.batches:
            self._save_state()
        return new

    def renumber_above(self, mark: int) -> None:
        """Move every batch above ``mark``: the console knows ids this spool never issued."""
        batches = list(self.batches.values())
        for n, b in enumerate(batches, start=mark + 1):
            if self.dir is not None:
                with contextlib.suppress(OSError):
                    os.replace(self._path(b.id), self._path(n))
            b.id = n
        self.batches = OrderedDict((b.id, b) for b in batches)
        self.last_id = mark + len(batches)
        self._save_state()
