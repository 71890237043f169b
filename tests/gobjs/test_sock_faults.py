"""What the socket gobjs must survive: slow and vanishing peers, limits, fd exhaustion."""

from __future__ import annotations

import logging
import os
import socket
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fsmio import GAplic
from fsmio.gobjs.c_sock import GSock
from fsmio.gobjs.c_srv_sock import GServerSock
from tests.gobjs.test_c_sock import RawPeer, Recorder, echo, fd_baseline, fd_count, ga
from tests.helpers import drive, drive_for

__all__ = ["ga"]  # the fixture, re-used

REPO = Path(__file__).resolve().parents[2]


def _child(srv_user: Recorder) -> GSock:
    gsock = srv_user.events[0][2]
    assert isinstance(gsock, GSock)
    return gsock


def test_non_reading_peer_stays_bounded_and_others_are_served(ga: GAplic, tmp_path: Path) -> None:
    """B4/C2: an echo whose peer never reads pauses reading; RAM + spill stay capped."""
    high = 1 << 20
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    srv_user.hooks["EV_RX_DATA"] = echo
    server = ga.create_gobj(
        "server",
        GServerSock,
        srv_user,
        host="127.0.0.1",
        port=0,
        outbuf_overflow=256 * 1024,
        outbuf_high_water=high,
        spill_dir=str(tmp_path),
    )
    hog = socket.socket()
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.connect(("127.0.0.1", server.config.port))
    hog.setblocking(False)
    chunk = b"x" * 65536
    state = {"sent": 0, "stalls": 0, "max_pending": 0, "max_mem": 0}

    def push() -> bool:
        stalled = True
        for _ in range(16):
            try:
                state["sent"] += hog.send(chunk)
                stalled = False
            except BlockingIOError:
                break
        state["stalls"] = state["stalls"] + 1 if stalled else 0
        if srv_user.events:
            child = _child(srv_user)
            state["max_pending"] = max(state["max_pending"], child.pending_output)
            state["max_mem"] = max(state["max_mem"], child._queue.buf.mem_size)
        # stalled for a while, with the server's reading paused
        return state["stalls"] > 200 and bool(srv_user.events) and child._queue.reading_paused

    try:
        drive(ga, push, timeout=20)
        child = _child(srv_user)
        assert child.spill_fileno is not None  # it did spill
        assert os.listdir(tmp_path) == []  # unlinked
        # pending (RAM + spill) never went beyond the high-water mark plus one read
        assert state["max_pending"] <= high + 256 * 1024
        assert state["max_mem"] <= 256 * 1024
        assert state["sent"] >= high  # the hog really pushed past the mark
        # a second client is still served meanwhile
        other = RawPeer.connect("127.0.0.1", server.config.port)
        try:
            other.sock.sendall(b"ping")
            drive(ga, lambda: (other.pump() or True) and bytes(other.received) == b"ping")
        finally:
            other.close()
    finally:
        hog.close()
    drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 2)
    assert os.listdir(tmp_path) == []


def test_peer_reset_mid_stream(ga: GAplic, caplog: pytest.LogCaptureFixture) -> None:
    """A6: one EV_DISCONNECTED (reset), no traceback, no fd leaked."""
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    payload = os.urandom(8 << 20)
    srv_user.hooks["EV_CONNECTED"] = lambda self, ev: self.send_event(
        ev.kw["gsock"], "EV_SEND_DATA", data=payload
    )
    baseline = fd_baseline(ga)
    with caplog.at_level(logging.WARNING):
        peer = RawPeer.connect("127.0.0.1", server.config.port)
        drive(ga, lambda: (peer.pump() or True) and len(peer.received) > 100_000)
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1)
        drive_for(ga, 0.1)
    assert srv_user.names()[-1] == "EV_DISCONNECTED"
    assert srv_user.count("EV_DISCONNECTED") == 1
    assert srv_user.reasons() == ["reset"]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    drive(ga, lambda: not list(server.dl_childs) and fd_count() <= baseline)


def test_accept_then_immediate_reset(ga: GAplic, caplog: pytest.LogCaptureFixture) -> None:
    """A8: connections reset before they are set up leave no child and no traceback."""
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    drive_for(ga, 0.01)
    baseline = fd_count()
    with caplog.at_level(logging.WARNING):
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", server.config.port))
            s.sendall(b"hi")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        drive(ga, lambda: server._seq == 10 and not list(server.dl_childs), timeout=5)
    assert srv_user.count("EV_CONNECTED") == srv_user.count("EV_DISCONNECTED")
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert server.config.n_gsocks == 0
    drive(ga, lambda: fd_count() <= baseline)


def test_peer_gone_while_output_pending(ga: GAplic) -> None:
    """B7: the write side learns it promptly; no endless loop."""
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    srv_user.hooks["EV_CONNECTED"] = lambda self, ev: self.send_event(
        ev.kw["gsock"], "EV_SEND_DATA", data=b"z" * (16 << 20)
    )
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    drive(ga, lambda: srv_user.count("EV_CONNECTED") == 1)
    start = time.monotonic()
    peer.close()
    drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1, timeout=2)
    assert time.monotonic() - start < 1.5
    assert srv_user.reasons()[0] in ("reset", "eof")


def test_hard_limit_drops_with_tx_overflow(ga: GAplic) -> None:
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj(
        "server", GServerSock, srv_user, host="127.0.0.1", port=0, outbuf_max=1000
    )
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        drive(ga, lambda: srv_user.count("EV_CONNECTED") == 1)
        child = _child(srv_user)
        assert srv_user.send_event(child, "EV_WRITE_OUTPUT_DATA", data=b"a" * 900) == 900
        assert srv_user.send_event(child, "EV_WRITE_OUTPUT_DATA", data=b"b" * 200) == -1
        drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1)
        assert srv_user.reasons() == ["tx_overflow"]
    finally:
        peer.close()


def test_drop_timeout_aborts_when_the_peer_never_reads(ga: GAplic) -> None:
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj(
        "server", GServerSock, srv_user, host="127.0.0.1", port=0, drop_timeout=0.3
    )
    hog = socket.socket()
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.connect(("127.0.0.1", server.config.port))
    try:
        drive(ga, lambda: srv_user.count("EV_CONNECTED") == 1)
        child = _child(srv_user)
        srv_user.send_event(child, "EV_SEND_DATA", data=b"q" * (32 << 20))
        assert child.pending_output > 0
        start = time.monotonic()
        srv_user.send_event(child, "EV_DROP")
        assert child.get_current_state() == "ST_WAIT_DISCONNECTED"
        assert srv_user.send_event(child, "EV_SEND_DATA", data=b"late") == -1
        drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1, timeout=3)
        assert 0.25 <= time.monotonic() - start <= 1.5
        assert srv_user.reasons() == ["dropped"]
    finally:
        hog.close()


def test_drop_twice_aborts_now(ga: GAplic) -> None:
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    hog = socket.socket()
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.connect(("127.0.0.1", server.config.port))
    try:
        drive(ga, lambda: srv_user.count("EV_CONNECTED") == 1)
        child = _child(srv_user)
        srv_user.send_event(child, "EV_SEND_DATA", data=b"q" * (32 << 20))
        srv_user.send_event(child, "EV_DROP")
        srv_user.send_event(child, "EV_DROP")
        drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1, timeout=1)
    finally:
        hog.close()


EMFILE_SERVER = textwrap.dedent(
    """
    import logging, os, resource, sys, threading, time
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(name)s %(levelname)s %(message)s")
    from fsmio import GAplic
    from fsmio.gobjs.c_srv_sock import GServerSock
    from tests.gobjs.test_c_sock import Recorder, echo

    ga = GAplic("emfile", use_uvloop=(sys.argv[1] == "uvloop"))
    user = ga.create_gobj("user", Recorder, None)
    user.hooks["EV_RX_DATA"] = echo
    srv = ga.create_gobj("srv", GServerSock, user, host="127.0.0.1", port=0,
                         accept_retry_delay=0.1)
    hogs = []
    state = {}

    def exhaust():
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        for _ in range(100):
            try:
                hogs.append(os.open("/dev/null", os.O_RDONLY))
            except OSError:
                break
        print("READY", srv.config.port, flush=True)
        threading.Thread(target=wait_go, daemon=True).start()

    def wait_go():
        sys.stdin.readline()
        ga.add_callback(measure)

    def measure():
        state["cpu"] = time.process_time()
        state["wakeups"] = srv.accept_wakeups
        ga.call_later(2.0, release)

    def release():
        cpu = time.process_time() - state["cpu"]
        wakeups = srv.accept_wakeups - state["wakeups"]
        for fd in hogs:
            os.close(fd)
        print("RELEASED", f"{cpu:.3f}", wakeups, flush=True)
        state["t"] = time.monotonic()
        ga.call_later(0.01, served)

    def served():
        if user.count("EV_RX_DATA") or time.monotonic() - state["t"] > 5:
            print("SERVED", user.count("EV_RX_DATA"), flush=True)
            ga.stop()
        else:
            ga.call_later(0.01, served)

    ga.call_later(0.05, exhaust)
    ga.start()
    ga.close()
    """
)


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_emfile_on_accept_backs_off_and_recovers(loop_kind: str, tmp_path: Path) -> None:
    """E1: under RLIMIT_NOFILE exhaustion the server neither spins nor floods the log."""
    err_path = tmp_path / "stderr"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", EMFILE_SERVER, loop_kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=REPO,
            env=env,
        )
    clients: list[socket.socket] = []
    try:
        assert proc.stdout is not None and proc.stdin is not None
        ready = proc.stdout.readline().split()
        assert ready[0] == "READY", ready
        port = int(ready[1])
        for _ in range(20):  # they wait in the backlog: the server cannot accept them
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        proc.stdin.write("go\n")
        proc.stdin.flush()
        released = proc.stdout.readline().split()
        assert released[0] == "RELEASED", released
        cpu, wakeups = float(released[1]), int(released[2])
        for c in clients:
            c.close()
        clients.clear()
        probe = socket.create_connection(("127.0.0.1", port), timeout=5)
        clients.append(probe)
        probe.sendall(b"ping")
        probe.settimeout(5)
        assert probe.recv(16) == b"ping"  # served again, by itself
        served = proc.stdout.readline().split()
        assert served[0] == "SERVED", served
        assert proc.wait(timeout=10) == 0
    finally:
        for c in clients:
            c.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stdin):
            if stream is not None:
                stream.close()
    log = err_path.read_text().splitlines()
    # 2 s exhausted with a 0.1 s retry: about 20 wake-ups, a few ms of CPU, 1-2 lines of log
    assert wakeups < 100, wakeups
    assert cpu < 0.5, cpu
    assert len([line for line in log if "accept() failed" in line]) <= 2, log
    assert len(log) <= 10, log


def test_disk_full_while_spilling_drops_that_connection_only(
    ga: GAplic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """I4/B5: ENOSPC on the spill file drops the connection (spill_failed), nothing else."""
    import errno
    import tempfile

    class FullDisk:
        def __init__(self, *args: object, **kw: object) -> None:
            pass

        def seek(self, *args: object) -> int:
            return 0

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def truncate(self, *args: object) -> int:
            return 0

        def close(self) -> None:
            pass

        def fileno(self) -> int:
            return -1

    srv_user = ga.create_gobj("srv_user", Recorder, None)
    srv_user.hooks["EV_RX_DATA"] = echo
    server = ga.create_gobj(
        "server", GServerSock, srv_user, host="127.0.0.1", port=0, outbuf_overflow=10
    )
    hog = socket.socket()
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.connect(("127.0.0.1", server.config.port))
    other = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        drive(ga, lambda: srv_user.count("EV_CONNECTED") == 2)
        child = _child(srv_user)
        monkeypatch.setattr(tempfile, "TemporaryFile", FullDisk)
        assert srv_user.send_event(child, "EV_WRITE_OUTPUT_DATA", data=b"a" * 100) == -1
        drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1)
        assert srv_user.reasons() == ["spill_failed"]
        monkeypatch.undo()
        other.sock.sendall(b"alive")
        drive(ga, lambda: (other.pump() or True) and bytes(other.received) == b"alive")
    finally:
        hog.close()
        other.close()
