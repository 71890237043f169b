"""GServerSock: bulk echo, close_when_flushed, spill files, children, stopping."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from fsmio import GAplic, GObj
from fsmio.core.event import Event
from fsmio.gobjs.c_sock import GSock, socket_map_of
from fsmio.gobjs.c_srv_sock import GServerSock
from tests.gobjs.test_c_sock import RawPeer, Recorder, echo, fd_baseline, fd_count, ga, has_ipv6
from tests.helpers import drive, drive_for

__all__ = ["ga"]  # the fixture, re-used


def test_50mb_over_100_connections_intact_and_in_order(ga: GAplic) -> None:
    """B1/B2: 100 GSock clients send 512 KiB each in random chunks; the echo server returns
    it; every stream's SHA-256 matches."""
    rng = random.Random(1234)
    n_clients, per_client = 100, 512 * 1024
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    srv_user.hooks["EV_RX_DATA"] = echo
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    cli_user = ga.create_gobj("cli_user", Recorder, None)
    sent: dict[Any, Any] = {}
    received: dict[Any, Any] = {}
    sizes: dict[Any, int] = {}

    def on_connected(self: Recorder, event: Event) -> None:
        gsock = event.kw["gsock"]
        digest = hashlib.sha256()
        left = per_client
        while left:
            n = min(left, rng.randint(1, 64 * 1024))
            chunk = rng.randbytes(n)
            digest.update(chunk)
            self.send_event(gsock, "EV_SEND_DATA", data=chunk)
            left -= n
        sent[gsock] = digest.hexdigest()
        received[gsock] = hashlib.sha256()
        sizes[gsock] = 0

    def on_rx(self: Recorder, event: Event) -> None:
        gsock = event.kw["gsock"]
        received[gsock].update(event.kw["data"])
        sizes[gsock] += len(event.kw["data"])
        if sizes[gsock] == per_client:
            self.send_event(gsock, "EV_DROP")

    cli_user.hooks["EV_CONNECTED"] = on_connected
    cli_user.hooks["EV_RX_DATA"] = on_rx
    # Keep the recorder light: no need to keep 50 MB of events.
    cli_user.events = _NoStore()
    srv_user.events = _NoStore()
    clients = [
        ga.create_gobj(f"c{i}", GSock, cli_user, host="127.0.0.1", port=server.config.port)
        for i in range(n_clients)
    ]
    for c in clients:
        cli_user.send_event(c, "EV_CONNECT")
    drive(ga, lambda: all(c.is_disconnected() for c in clients) and len(sent) == n_clients, 60)
    assert sorted(sizes.values()) == [per_client] * n_clients
    for c in clients:
        assert received[c].hexdigest() == sent[c]
        assert c.txed_bytes == per_client == c.rxed_bytes
    drive(ga, lambda: server.config.n_gsocks == 0 and not list(server.dl_childs))


class _NoStore(list):  # type: ignore[type-arg]
    """An events list that keeps only the event names (memory)."""

    def append(self, item: Any) -> None:
        super().append((item[0], {}, None))


def test_close_when_flushed_delivers_20mb_and_the_spill_file_is_gone(
    ga: GAplic, tmp_path: Path
) -> None:
    payload = os.urandom(20 << 20)
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj(
        "server",
        GServerSock,
        srv_user,
        host="127.0.0.1",
        port=0,
        close_when_flushed=True,
        spill_dir=str(tmp_path),
    )
    spill: dict[str, Any] = {}

    def on_connected(self: Recorder, event: Event) -> None:
        gsock = event.kw["gsock"]
        self.send_event(gsock, "EV_SEND_DATA", data=payload)
        fd = gsock.spill_fileno
        assert fd is not None
        st = os.fstat(fd)
        spill.update(ino=(st.st_dev, st.st_ino), nlink=st.st_nlink, size=st.st_size)

    srv_user.hooks["EV_CONNECTED"] = on_connected
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        drive(ga, lambda: peer.pump() and peer.eof, timeout=30)
        assert hashlib.sha256(peer.received).digest() == hashlib.sha256(payload).digest()
    finally:
        peer.close()
    assert spill["nlink"] == 0 and spill["size"] > 0  # unlinked from the start
    assert os.listdir(tmp_path) == []
    drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1)
    assert srv_user.reasons() == ["closed"]
    assert _open_inodes().isdisjoint({spill["ino"]})  # closed: gone for good


def _open_inodes() -> set[tuple[int, int]]:
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            st = os.stat(f"/proc/self/fd/{name}")
        except OSError:
            continue
        found.add((st.st_dev, st.st_ino))
    return found


def test_release_gsock_keeps_the_child(ga: GAplic) -> None:
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    srv_user.hooks["EV_CONNECTED"] = lambda self, ev: server.release_gsock(ev.kw["gsock"])
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    drive(ga, lambda: srv_user.count("EV_CONNECTED") == 1)
    child = srv_user.events[0][2]
    peer.close()
    drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1)
    drive_for(ga, 0.05)
    assert not child._destroyed and server.config.n_gsocks == 0
    GObj.destroy_gobj(child)
    assert list(server.dl_childs) == []


def test_subscriber_destroying_a_live_child(ga: GAplic) -> None:
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        drive(ga, lambda: server.config.n_gsocks == 1)
        GObj.destroy_gobj(srv_user.events[0][2])
        assert server.config.n_gsocks == 0
        drive(ga, lambda: peer.pump() and peer.eof)
    finally:
        peer.close()
    assert srv_user.count("EV_DISCONNECTED") == 0  # destroyed: no more events


def test_ev_drop_stops_listening_connections_go_on(ga: GAplic) -> None:
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    srv_user.hooks["EV_RX_DATA"] = echo
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    port = server.config.port
    peer = RawPeer.connect("127.0.0.1", port)
    try:
        drive(ga, lambda: server.config.n_gsocks == 1)
        srv_user.send_event(server, "EV_DROP")
        srv_user.send_event(server, "EV_DROP")  # twice is fine
        assert server.get_current_state() == "ST_STOPPED" and not server.is_listening()
        assert list(socket_map_of(ga).values()) == [srv_user.events[0][2]]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        peer.sock.sendall(b"still here")
        drive(ga, lambda: (peer.pump() or True) and bytes(peer.received) == b"still here")
    finally:
        peer.close()


@pytest.mark.skipif(not has_ipv6(), reason="no IPv6")
def test_empty_host_listens_on_ipv4_and_ipv6(ga: GAplic) -> None:
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    srv_user.hooks["EV_RX_DATA"] = echo
    server = ga.create_gobj("server", GServerSock, srv_user, host="", port=0)
    for host in ("127.0.0.1", "::1"):
        peer = RawPeer.connect(host, server.config.port)
        try:
            peer.sock.sendall(host.encode())
            drive(ga, lambda p=peer, h=host: (p.pump() or True) and p.received == h.encode())
        finally:
            peer.close()


def test_reuse_port_lets_two_servers_share_a_port(ga: GAplic) -> None:
    a = ga.create_gobj("a", GServerSock, None, host="127.0.0.1", port=0, reuse_port=True)
    b = ga.create_gobj(
        "b", GServerSock, None, host="127.0.0.1", port=a.config.port, reuse_port=True
    )
    assert a.get_sockname() == b.get_sockname()
    assert b.get_peername() is None


def test_destroying_the_server_closes_everything(ga: GAplic) -> None:
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    baseline = fd_baseline(ga)
    peers = [RawPeer.connect("127.0.0.1", server.config.port) for _ in range(5)]
    try:
        drive(ga, lambda: server.config.n_gsocks == 5)
        GObj.destroy_gobj(server)
        drive(ga, lambda: all((p.pump() or True) and p.eof for p in peers))
    finally:
        for p in peers:
            p.close()
    drive(ga, lambda: fd_count() <= baseline - 1)  # the listener too
    assert socket_map_of(ga) == {}


def test_backlog_and_retry_delay_are_validated(ga: GAplic) -> None:
    from fsmio.core.errors import GConfigValidateError

    with pytest.raises(GConfigValidateError, match="backlog"):
        ga.create_gobj("s", GServerSock, None, host="127.0.0.1", backlog=0)
    with pytest.raises(GConfigValidateError, match="accept_retry_delay"):
        ga.create_gobj("s", GServerSock, None, host="127.0.0.1", accept_retry_delay=-1)


def test_gaplic_stop_flushes_every_connection_then_closes(ga: GAplic) -> None:
    """J1 through the real start()/stop(): listeners stop first, pending output is
    delivered within shutdown_grace, then the connections close (reason shutdown)."""
    import threading

    payload = os.urandom(4 << 20)
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)

    def on_connected(self: Recorder, event: Event) -> None:
        self.send_event(event.kw["gsock"], "EV_SEND_DATA", data=payload)
        if self.count("EV_CONNECTED") == 2:
            ga.stop()

    srv_user.hooks["EV_CONNECTED"] = on_connected
    results: dict[int, bytes] = {}

    def read_all(i: int, sock: socket.socket) -> None:
        chunks = []
        while True:
            data = sock.recv(1 << 20)
            if not data:
                break
            chunks.append(data)
        results[i] = b"".join(chunks)

    socks = [socket.create_connection(("127.0.0.1", server.config.port)) for _ in range(2)]
    threads = []
    try:
        for i, s in enumerate(socks):
            s.settimeout(15)
            t = threading.Thread(target=read_all, args=(i, s))
            t.start()
            threads.append(t)
        ga.start()  # returns once stop() and the shutdown callbacks are done
        for t in threads:
            t.join(15)
    finally:
        for s in socks:
            s.close()
    assert results == {0: payload, 1: payload}
    assert not server.is_listening()
    assert srv_user.reasons() == ["shutdown", "shutdown"]


def test_gaplic_stop_aborts_what_shutdown_grace_cannot_flush() -> None:
    """A peer that never reads cannot hold the stop beyond shutdown_grace; nothing leaks
    (an unclosed transport would be a ResourceWarning, an error here)."""
    import time

    with GAplic("grace", shutdown_grace=0.3) as gaplic:
        srv_user = gaplic.create_gobj("srv_user", Recorder, None)
        server = gaplic.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)

        def on_connected(self: Recorder, event: Event) -> None:
            self.send_event(event.kw["gsock"], "EV_SEND_DATA", data=b"w" * (32 << 20))
            gaplic.stop()

        srv_user.hooks["EV_CONNECTED"] = on_connected
        hog = socket.socket()
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.connect(("127.0.0.1", server.config.port))
        try:
            start = time.monotonic()
            gaplic.start()
            assert time.monotonic() - start < 2.0
        finally:
            hog.close()
        assert srv_user.reasons() == ["shutdown"]


def test_a_burst_of_accepts_leaves_no_attach_table_behind(ga: GAplic) -> None:
    """Memory (issue #4): once every accepted connection is attached, the table of
    attachments is a fresh empty dict, not one sized for the burst (a dict never shrinks:
    each idle connection would keep paying for a slot)."""
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    peers = [RawPeer.connect("127.0.0.1", server.config.port) for _ in range(40)]
    try:
        drive(ga, lambda: server.config.n_gsocks == 40)
        assert server._attaching == {}
        assert sys.getsizeof(server._attaching) == sys.getsizeof({})
        # A child destroyed while attaching leaves a fresh table too.
        late = RawPeer.connect("127.0.0.1", server.config.port)
        peers.append(late)
        drive(ga, lambda: len(server._attaching) == 1 or server.config.n_gsocks == 41)
        for child in list(server._attaching):
            GObj.destroy_gobj(child)
        assert server._attaching == {}
        assert sys.getsizeof(server._attaching) == sys.getsizeof({})
    finally:
        for p in peers:
            p.close()
    drive(ga, lambda: server.config.n_gsocks == 0)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_accepted_child_addresses_match_the_peer(ga: GAplic, host: str) -> None:
    """An accepted child's peername, addr, ip and sockname (in EV_CONNECTED and from its
    methods) are the peer's sockname and peername, on IPv4 and IPv6; None once it is gone
    (whether they are kept or asked for when needed)."""
    if ":" in host and not has_ipv6():  # pragma: no cover - machine without IPv6
        pytest.skip("no IPv6")
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host=host, port=0)
    peer = RawPeer.connect(host, server.config.port)
    try:
        drive(ga, lambda: srv_user.count("EV_CONNECTED") == 1)
        _, kw, child = next(e for e in srv_user.events if e[0] == "EV_CONNECTED")
        assert kw["peername"] == peer.sock.getsockname() == child.get_peername() == child.addr
        assert kw["sockname"] == peer.sock.getpeername() == child.get_sockname()
        assert child.config.ip == peer.sock.getsockname()[0]
    finally:
        peer.close()
    drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1)
    assert child.get_peername() is None and child.get_sockname() is None and child.addr is None
