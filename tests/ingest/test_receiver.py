import logging
import os
import socket
import stat
import time

import pytest

from ingest.pipeline.receiver import Receiver, SocketSetupError, bind_socket, untraversable_parents


def test_socket_gets_requested_mode_and_group(sockdir):
    path = str(sockdir / "t.sock")
    sock = bind_socket(path, mode=0o620, group="0")
    try:
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o620
        assert st.st_gid == 0
    finally:
        sock.close()


def test_bind_happens_under_umask_0077(sockdir, monkeypatch):
    """The file must never exist with more than owner permissions before chmod."""
    seen = []
    real_bind = socket.socket.bind

    def spying_bind(self, address):
        seen.append(os.umask(0o077))
        os.umask(seen[-1])
        return real_bind(self, address)

    monkeypatch.setattr(socket.socket, "bind", spying_bind)
    bind_socket(str(sockdir / "t.sock")).close()
    assert seen == [0o077]


def test_stale_socket_of_a_dead_agent_is_reused(sockdir):
    path = str(sockdir / "t.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(path)
    dead.close()  # the file stays, nobody answers
    sock = bind_socket(path)
    sock.close()


def test_live_socket_is_refused_with_a_clear_message(sockdir):
    path = str(sockdir / "t.sock")
    live = bind_socket(path)
    try:
        with pytest.raises(SocketSetupError, match="another receiver is bound"):
            bind_socket(path)
    finally:
        live.close()


def test_regular_file_at_the_path_is_not_removed(sockdir):
    path = sockdir / "t.sock"
    path.write_text("important")
    with pytest.raises(SocketSetupError, match="not a socket"):
        bind_socket(str(path))
    assert path.read_text() == "important"


def test_missing_parent_directory_is_reported(sockdir):
    with pytest.raises(SocketSetupError, match="does not exist"):
        bind_socket(str(sockdir / "nope" / "t.sock"))


def test_unknown_group_is_reported():
    with pytest.raises(SocketSetupError, match="no such group"):
        bind_socket("/tmp/never.sock", group="no-such-group-here")


def test_untraversable_parent_is_warned_about(sockdir, caplog):
    private = sockdir / "private"
    private.mkdir(mode=0o700)
    os.chmod(private, 0o700)
    path = str(private / "t.sock")
    assert any(str(private) in d for d in untraversable_parents(path, None))
    with caplog.at_level(logging.WARNING):
        bind_socket(path).close()
    assert "drops datagrams silently" in caplog.text
    assert str(private) in caplog.text


def test_local_senders_get_no_warning_about_other_users(sockdir, caplog):
    """The demo's simulators run as the agent's user: a private directory is no problem there."""
    private = sockdir / "private"
    private.mkdir(mode=0o700)
    with caplog.at_level(logging.WARNING):
        bind_socket(str(private / "t.sock"), mode=0o600, local_senders=True).close()
    assert "cannot reach" not in caplog.text and "cannot write" not in caplog.text


def test_group_searchable_parent_is_fine_for_that_group(sockdir):
    shared = sockdir / "shared"
    shared.mkdir()
    os.chmod(shared, 0o750)
    os.chown(shared, -1, 0)
    assert untraversable_parents(str(shared / "t.sock"), 0) == []
    assert untraversable_parents(str(shared / "t.sock"), None) != []


def test_kernel_default_queue_length_is_warned_about(sockdir, caplog):
    with open("/proc/sys/net/unix/max_dgram_qlen") as fh:
        qlen = int(fh.read())
    with caplog.at_level(logging.WARNING):
        bind_socket(str(sockdir / "t.sock")).close()
    assert ("max_dgram_qlen" in caplog.text) == (qlen <= 10)


def test_receiver_queue_is_bounded_in_bytes_and_frees_what_the_consumer_took(sockdir):
    path = str(sockdir / "t.sock")
    receiver = Receiver(bind_socket(path), max_queue=1000, max_bytes=100_000)
    receiver.start()
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        for _ in range(10):
            sender.sendto(b"x" * 30_000, path)
        assert _wait(lambda: receiver.stats.received == 10)
        queued = _drain(receiver)
        assert len(queued) == 3  # 30 kB each, 100 kB at most: the rest of any burst is dropped
        assert receiver.stats.queue_drops == 10 - len(queued)
        receiver.taken(queued)  # the consumer frees the room
        for _ in range(2):
            sender.sendto(b"y" * 30_000, path)
        assert _wait(lambda: receiver.stats.received == 12)
        assert len(_drain(receiver)) == 2
        assert receiver.stats.queue_drops == 10 - len(queued)
    finally:
        sender.close()
        receiver.stop()
        receiver.join(10)
        receiver.sock.close()


def _wait(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.02)
    return predicate()


def _drain(receiver: Receiver) -> list[bytes]:
    out: list[bytes] = []
    while not receiver.queue.empty():
        out += receiver.queue.get()
    return out
