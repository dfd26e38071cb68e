"""The telemetry socket: bind it safely, and read it without ever stalling.

mod_wsgi sends with a plain, non-retrying ``sendto``; when it cannot reach
the socket (missing, no write permission, an untraversable parent) or the
kernel queue is full, the datagram is gone and nothing is logged anywhere.
So binding checks everything a sender needs and says what is wrong, and the
receive thread does nothing but ``recv`` into a queue: decoding happens on
another thread so a slow decode never leaves the kernel queue to fill up.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import logging
import os
import queue
import socket
import stat
import threading
from collections import deque
from dataclasses import dataclass

from .drops import MAX_DROPS
from .faults import Throttle
from .wire import MAX_DATAGRAM

log = logging.getLogger("ingest.receiver")

DEFAULT_RCVBUF = 8 * 1024 * 1024
DEFAULT_QUEUE = 100_000
#: Bytes of datagrams held between the threads: 100,000 datagrams of 64 KiB
#: would be 6 GB, and a hostile sender can make every one that size.
DEFAULT_QUEUE_BYTES = 64 << 20
QLEN_SYSCTL = "/proc/sys/net/unix/max_dgram_qlen"
KERNEL_DEFAULT_QLEN = 10


class SocketSetupError(RuntimeError):
    """The socket cannot be bound as asked; the message says why and what to do."""


def resolve_group(group: str | int | None) -> int | None:
    if group is None or group == "":
        return None
    if isinstance(group, int) or str(group).isdigit():
        return int(group)
    try:
        return grp.getgrnam(str(group)).gr_gid
    except KeyError:
        raise SocketSetupError(f"--socket-group {group!r}: no such group") from None


def _check_parent(path: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise SocketSetupError(
            f"cannot bind {path}: directory {parent} does not exist "
            f"(create it, e.g. install -d -m 0755 {parent})"
        )


def untraversable_parents(path: str, gid: int | None) -> list[str]:
    """Parent directories that senders other than our own user cannot enter.

    A sender needs search (x) permission on every parent. We cannot know
    which user mod_wsgi runs as, so we check for the socket's group when
    one is given, and for everybody otherwise.
    """
    blocked = []
    directory = os.path.dirname(os.path.abspath(path))
    while True:
        st = os.stat(directory)
        ok = bool(st.st_mode & stat.S_IXOTH) or (gid is not None and st.st_gid == gid
                                                 and bool(st.st_mode & stat.S_IXGRP))
        if not ok:
            blocked.append(f"{directory} (mode {stat.S_IMODE(st.st_mode):04o})")
        if directory == "/":
            return blocked
        directory = os.path.dirname(directory)


def _remove_stale(path: str) -> None:
    """Reuse the path of a dead agent; refuse to steal a live one's."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise SocketSetupError(f"cannot bind {path}: it exists and is not a socket; remove it yourself")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        log.info("removing stale socket %s left by an agent that is gone", path)
        os.unlink(path)
        return
    except OSError as exc:
        raise SocketSetupError(f"cannot probe existing socket {path}: {exc}") from None
    finally:
        probe.close()
    raise SocketSetupError(
        f"cannot bind {path}: another receiver is bound to it and answering; "
        "stop it first (two receivers would split the datagrams between them)"
    )


def kernel_qlen() -> int | None:
    try:
        with open(QLEN_SYSCTL) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def bind_socket(path: str, *, mode: int = 0o660, group: str | int | None = None,
                rcvbuf: int = DEFAULT_RCVBUF, local_senders: bool = False) -> socket.socket:
    """Bind the telemetry socket with its final permissions from the start.

    The umask of 0077 around ``bind`` means the file never exists, even
    for an instant, with more permissions than its owner's; the requested
    mode and group are applied right after. ``local_senders``: the senders run
    as this user (a simulator, a test), so whether other users can reach the
    socket is not worth a warning.
    """
    gid = resolve_group(group)
    _check_parent(path)
    _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        old = os.umask(0o077)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        if gid is not None:
            os.chown(path, -1, gid)
        os.chmod(path, mode)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EACCES:
            raise SocketSetupError(f"cannot bind {path}: permission denied ({exc.strerror})") from None
        raise SocketSetupError(f"cannot bind {path}: {exc.strerror or exc}") from None
    for directory in () if local_senders else untraversable_parents(path, gid):
        log.warning("senders other than this user cannot reach %s: parent %s is not searchable; "
                    "mod_wsgi drops datagrams silently when it cannot reach the socket", path, directory)
    if not local_senders and not mode & 0o022 and gid is None and os.geteuid() == 0:
        log.warning("socket %s is mode %04o owned by root with no --socket-group: "
                    "Apache's daemon user cannot write to it", path, mode)
    qlen = kernel_qlen()
    if qlen is not None and qlen <= KERNEL_DEFAULT_QLEN:
        log.warning("net.unix.max_dgram_qlen is %d (the kernel default): a burst of more than %d "
                    "datagrams is dropped by the kernel; raise it (see README: sysctl "
                    "net.unix.max_dgram_qlen=512)", qlen, qlen)
    return sock


@dataclass
class ReceiverStats:
    received: int = 0
    queue_drops: int = 0
    recv_errors: int = 0


#: Datagrams taken off the socket per hand-off at most.
BURST = 256


class Receiver(threading.Thread):
    """One thread doing nothing but ``recv`` into a bounded queue.

    After each blocking ``recv`` it takes whatever else the kernel already
    holds without blocking and hands the burst over as one list: one queue
    operation and one GIL hand-off per burst instead of per datagram, which
    is what the thread switch, not the decode, costs at high rates.

    ``queue.SimpleQueue`` is the fastest queue CPython has; it is unbounded,
    so the bound is kept here, in datagrams and in bytes: the consumer
    reports what it took with ``taken``, and what of a burst would take the
    queue past either limit is dropped and counted in ``queue_drops``
    instead of growing memory without end.
    """

    def __init__(self, sock: socket.socket, max_queue: int = DEFAULT_QUEUE,
                 max_bytes: int = DEFAULT_QUEUE_BYTES):
        super().__init__(name="telemetry-recv", daemon=True)
        self.sock = sock
        self.queue: queue.SimpleQueue[list[bytes] | None] = queue.SimpleQueue()
        self.max_queue = max_queue
        self.max_bytes = max_bytes
        self.handled = 0  # written by the consumer only, like handled_bytes
        self.handled_bytes = 0
        self.queued_bytes_in = 0  # bytes ever put in the queue (this thread only)
        self.stats = ReceiverStats()
        #: pid and seq of each datagram dropped, for the decode thread (drops.py): bounded, as the
        #: table's own record of them is; one missed only counts its seq as lost as well
        self.dropped: deque[bytes] = deque(maxlen=MAX_DROPS)
        self.error: BaseException | None = None  # what ended the thread, if anything did
        self._log = Throttle(log, logging.ERROR)
        self._stopping = False

    def taken(self, burst: list[bytes]) -> None:
        """The consumer took ``burst`` off the queue: room for as much again."""
        self.handled += len(burst)
        self.handled_bytes += sum(map(len, burst))

    def run(self) -> None:
        try:
            self._receive()
        except BaseException as exc:  # kept for the agent, which exits non-zero with it
            self.error = exc
        finally:
            self.queue.put(None)  # tells the consumer that nothing more will come

    def _receive(self) -> None:
        recv = self.sock.recv
        put = self.queue.put
        stats = self.stats
        while not self._stopping:
            try:
                data = recv(MAX_DATAGRAM)
            except InterruptedError:
                continue
            except OSError as exc:
                if self._stopping or exc.errno in (errno.EBADF, errno.ENOTSOCK):
                    break
                stats.recv_errors += 1
                self._log("recv", f"recv failed: {exc}")
                continue
            if not data and self._stopping:
                break
            burst = self._burst(data)
            queued = stats.received - stats.queue_drops - self.handled
            queued_bytes = self.queued_bytes_in - self.handled_bytes
            stats.received += len(burst)
            size = sum(map(len, burst))
            if queued + len(burst) > self.max_queue or queued_bytes + size > self.max_bytes:
                kept, size = _fitting(burst, self.max_queue - queued, self.max_bytes - queued_bytes)
                stats.queue_drops += len(burst) - len(kept)
                self.dropped.extend(data[8:16] for data in burst[len(kept):])  # their pid and seq
                burst = kept
            if burst:
                self.queued_bytes_in += size
                put(burst)
        self._drain_kernel_queue()

    def _burst(self, first: bytes) -> list[bytes]:
        """``first`` plus what is already queued in the kernel, without blocking."""
        burst = [first]
        recv = self.sock.recv
        while len(burst) < BURST:
            try:
                data = recv(MAX_DATAGRAM, socket.MSG_DONTWAIT)
            except OSError:  # BlockingIOError: the kernel queue is empty
                break
            if not data and self._stopping:
                break
            burst.append(data)
        return burst

    def _drain_kernel_queue(self) -> None:
        """Take what the kernel still holds, so a clean stop loses nothing."""
        rest = []
        try:
            while True:
                data = self.sock.recv(MAX_DATAGRAM, socket.MSG_DONTWAIT)
                if not data:
                    break
                rest.append(data)
        except OSError:
            pass
        if rest:
            self.stats.received += len(rest)
            self.queued_bytes_in += sum(map(len, rest))
            self.queue.put(rest)

    def stop(self) -> None:
        """Wake the blocked ``recv`` and let the thread drain and finish."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RD)


def _fitting(burst: list[bytes], room: int, room_bytes: int) -> tuple[list[bytes], int]:
    """The longest head of ``burst`` within ``room`` datagrams and ``room_bytes`` bytes, and its size."""
    kept: list[bytes] = []
    size = 0
    for data in burst[:max(room, 0)]:
        if size + len(data) > room_bytes:
            break
        kept.append(data)
        size += len(data)
    return kept, size
