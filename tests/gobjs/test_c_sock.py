"""GSock over real loopback sockets (127.0.0.1 and ::1, stdlib loop and uvloop).

``Recorder`` (a gobj that records every GSock output event) and ``RawPeer`` (a plain
non-blocking socket read from inside ``drive``) are reused by the other socket tests.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fsmio import GAplic, GObj
from fsmio.core.errors import GConfigValidateError
from fsmio.core.event import Event
from fsmio.gobjs.c_sock import GSock, hexdump, socket_map_of
from fsmio.gobjs.c_srv_sock import GServerSock
from tests.helpers import drive, drive_for

OUTPUTS = ("EV_CONNECTED", "EV_DISCONNECTED", "EV_RX_DATA", "EV_TRANSMIT_READY")


def _record(self: Recorder, event: Event) -> Any:
    kw = dict(event.kw)
    gsock = kw.pop("gsock", None)
    self.events.append((event.event_name, kw, gsock))
    hook = self.hooks.get(event.event_name)
    if hook is not None:
        return hook(self, event)
    return None


RECORDER_FSM = {
    "event_list": tuple(f"{name}: bottom input" for name in (*OUTPUTS, "EV_RENAMED")),
    "state_list": ("ST_IDLE",),
    "machine": {
        "ST_IDLE": tuple((name, _record, None) for name in (*OUTPUTS, "EV_RENAMED")),
    },
}


class Recorder(GObj):
    """Records (event name, kw without gsock, gsock); ``hooks[name](self, event)`` reacts."""

    def __init__(self) -> None:
        GObj.__init__(self, RECORDER_FSM)
        self.events: list[tuple[str, dict[str, Any], Any]] = []
        self.hooks: dict[str, Callable[[Recorder, Event], Any]] = {}

    def names(self, gsock: Any = None) -> list[str]:
        return [n for n, _, g in self.events if gsock is None or g is gsock]

    def count(self, name: str) -> int:
        return sum(1 for n, _, _ in self.events if n == name)

    def data(self, gsock: Any = None) -> bytes:
        return b"".join(
            kw["data"]
            for n, kw, g in self.events
            if n == "EV_RX_DATA" and (gsock is None or g is gsock)
        )

    def reasons(self) -> list[str]:
        return [kw["reason"] for n, kw, _ in self.events if n == "EV_DISCONNECTED"]


def echo(self: Recorder, event: Event) -> None:
    self.send_event(event.kw["gsock"], "EV_SEND_DATA", data=event.kw["data"])


class RawPeer:
    """A plain socket; ``pump()`` (call it from a drive predicate) reads what arrived."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.setblocking(False)
        self.received = bytearray()
        self.eof = False
        self.error: OSError | None = None

    @classmethod
    def connect(cls, host: str, port: int) -> RawPeer:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect((host, port))
        return cls(sock)

    def pump(self) -> bool:
        for _ in range(64):
            try:
                data = self.sock.recv(262144)
            except BlockingIOError:
                return False
            except OSError as exc:
                self.error = exc
                self.eof = True
                return True
            if not data:
                self.eof = True
                return True
            self.received += data
        return False

    def close(self) -> None:
        self.sock.close()


def fd_count() -> int:
    """Open descriptors, except /dev/null (libuv opens a reserve fd on it lazily)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the fd of the listdir itself
            continue
        if target != "/dev/null":
            count += 1
    return count


def fd_baseline(ga: GAplic) -> int:
    """The fd count once the GAplic's loop (epoll fd, self-pipe) exists."""
    drive_for(ga, 0.01)
    return fd_count()


def has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:  # pragma: no cover - machine without IPv6
        return False


HOSTS = [
    "127.0.0.1",
    pytest.param("::1", marks=pytest.mark.skipif(not has_ipv6(), reason="no IPv6")),
]


@pytest.fixture(params=[False, True], ids=["asyncio", "uvloop"])
def ga(request: pytest.FixtureRequest) -> Iterator[GAplic]:
    gaplic = GAplic("socktest", use_uvloop=request.param)
    try:
        yield gaplic
    finally:
        gaplic.close()


def refusing_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on (bound then closed; tornado's trick, simplified)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def make_pair(
    ga: GAplic, host: str = "127.0.0.1", **server_kw: Any
) -> tuple[Recorder, GServerSock, Recorder, GSock]:
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host=host, port=0, **server_kw)
    cli_user = ga.create_gobj("cli_user", Recorder, None)
    client = ga.create_gobj("client", GSock, cli_user, host=host, port=server.config.port)
    return srv_user, server, cli_user, client


# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", HOSTS)
def test_full_event_order_client_and_server(ga: GAplic, host: str) -> None:
    srv_user, server, cli_user, client = make_pair(ga, host)
    srv_user.hooks["EV_RX_DATA"] = echo
    cli_user.hooks["EV_CONNECTED"] = lambda self, ev: self.send_event(
        ev.kw["gsock"], "EV_SEND_DATA", data=b"hello"
    )
    cli_user.hooks["EV_RX_DATA"] = lambda self, ev: self.send_event(ev.kw["gsock"], "EV_DROP")
    baseline = fd_baseline(ga)
    cli_user.send_event(client, "EV_CONNECT")
    assert client.get_current_state() == "ST_WAIT_CONNECTED"
    drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1 and cli_user.count("EV_DISCONNECTED"))
    assert cli_user.names() == [
        "EV_CONNECTED",
        "EV_TRANSMIT_READY",
        "EV_RX_DATA",
        "EV_DISCONNECTED",
    ]
    # the echo's send went straight to the kernel: no EV_TRANSMIT_READY for it (ginsfsm's
    # meaning: ready after connect, and after output that had to wait has drained)
    assert srv_user.names() == [
        "EV_CONNECTED",
        "EV_TRANSMIT_READY",
        "EV_RX_DATA",
        "EV_DISCONNECTED",
    ]
    assert cli_user.reasons() == ["dropped"] and srv_user.reasons() == ["eof"]
    assert cli_user.data() == b"hello" and srv_user.data() == b"hello"
    _, kw, gsock = cli_user.events[0]
    assert gsock is client
    assert kw["peername"][:2] == (host, server.config.port)
    assert kw["sockname"][0] == host
    _, skw, child = srv_user.events[0]
    assert child.name == "clisrv_0" and child.parent is server
    assert skw["peername"] == kw["sockname"] and skw["sockname"] == kw["peername"]
    assert client.config.ip == host
    assert client.get_current_state() == "ST_DISCONNECTED"
    assert client.addr is None and client.get_peername() is None
    assert (client.txed_msgs, client.txed_bytes, client.rxed_msgs, client.rxed_bytes) == (
        1,
        5,
        1,
        5,
    )
    assert client.last_activity > 0
    # the server destroys its child through the queue, after the subscriber saw the event
    drive(ga, lambda: child._destroyed)
    assert server.config.n_gsocks == 0 and list(server.dl_childs) == []
    drive(ga, lambda: fd_count() <= baseline)
    assert list(socket_map_of(ga).values()) == [server]


def test_n_gsocks_counts_live_connections(ga: GAplic) -> None:
    srv_user, server, _, _ = make_pair(ga)
    peers = [RawPeer.connect("127.0.0.1", server.config.port) for _ in range(3)]
    try:
        drive(ga, lambda: server.config.n_gsocks == 3)
        assert sorted(c.name for c in server.get_gsocks()) == ["clisrv_0", "clisrv_1", "clisrv_2"]
        assert len([g for g in socket_map_of(ga).values() if isinstance(g, GSock)]) == 3
        peers[0].close()
        drive(ga, lambda: server.config.n_gsocks == 2 and len(list(server.dl_childs)) == 2)
    finally:
        for p in peers:
            p.close()
    drive(ga, lambda: server.config.n_gsocks == 0 and not list(server.dl_childs))
    assert srv_user.count("EV_CONNECTED") == 3 and srv_user.count("EV_DISCONNECTED") == 3


@pytest.mark.parametrize("host", HOSTS)
def test_refused_gives_one_disconnected_and_no_connected(ga: GAplic, host: str) -> None:
    user = ga.create_gobj("user", Recorder, None)
    client = ga.create_gobj("client", GSock, user, host=host, port=refusing_port(host))
    baseline = fd_baseline(ga)
    user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: user.count("EV_DISCONNECTED") == 1)
    drive_for(ga, 0.05)
    assert user.names() == ["EV_DISCONNECTED"] and user.reasons() == ["refused"]
    assert client.get_current_state() == "ST_DISCONNECTED"
    drive(ga, lambda: fd_count() <= baseline)


def test_unresolvable_host(ga: GAplic) -> None:
    user = ga.create_gobj("user", Recorder, None)
    client = ga.create_gobj("client", GSock, user, host="no-such-host.invalid", port=80)
    user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: user.count("EV_DISCONNECTED") == 1)
    assert user.names() == ["EV_DISCONNECTED"] and user.reasons() == ["unresolvable"]


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port whose SYNs are never answered: listen(0), never accept, backlog filled."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", port))
        assert err in (0, errno.EINPROGRESS)
        fillers.append(s)
    try:
        yield port
    finally:
        for s in fillers:
            s.close()
        lsock.close()


def test_connect_timeout(ga: GAplic, blackhole: int) -> None:
    user = ga.create_gobj("user", Recorder, None)
    client = ga.create_gobj(
        "client", GSock, user, host="127.0.0.1", port=blackhole, connect_timeout=0.3
    )
    start = time.monotonic()
    user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: user.count("EV_DISCONNECTED") == 1)
    elapsed = time.monotonic() - start
    assert user.names() == ["EV_DISCONNECTED"] and user.reasons() == ["timeout"]
    assert 0.25 <= elapsed <= 1.3  # 0.3 s, with room for a loaded CI machine


def test_drop_aborts_a_pending_connect(ga: GAplic, blackhole: int) -> None:
    user = ga.create_gobj("user", Recorder, None)
    client = ga.create_gobj("client", GSock, user, host="127.0.0.1", port=blackhole)
    user.send_event(client, "EV_CONNECT")
    drive_for(ga, 0.05)
    assert client.get_current_state() == "ST_WAIT_CONNECTED"
    user.send_event(client, "EV_DROP")
    assert user.names() == ["EV_DISCONNECTED"] and user.reasons() == ["dropped"]
    drive_for(ga, 0.1)
    assert user.names() == ["EV_DISCONNECTED"]
    assert client._connect_task is None


def test_destroy_while_connecting_delivers_nothing(ga: GAplic, blackhole: int) -> None:
    user = ga.create_gobj("user", Recorder, None)
    client = ga.create_gobj("client", GSock, user, host="127.0.0.1", port=blackhole)
    user.send_event(client, "EV_CONNECT")
    drive_for(ga, 0.05)
    GObj.destroy_gobj(client)
    drive_for(ga, 0.1)
    assert user.events == []


def test_connect_override_host_and_port(ga: GAplic) -> None:
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    user = ga.create_gobj("user", Recorder, None)
    client = ga.create_gobj("client", GSock, user, host="127.0.0.1", port=refusing_port())
    user.send_event(client, "EV_CONNECT", host="127.0.0.1", port=server.config.port)
    drive(ga, lambda: user.count("EV_CONNECTED") == 1)
    assert client.get_peername()[1] == server.config.port
    assert user.events[0][1]["peername"][1] == server.config.port


def test_reconnect_with_fresh_buffers(ga: GAplic) -> None:
    srv_user, _server, cli_user, client = make_pair(ga)
    cli_user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: srv_user.count("EV_CONNECTED") == 1)
    # Queued but never flushed: must not be replayed on the next connection.
    assert cli_user.send_event(client, "EV_WRITE_OUTPUT_DATA", data=b"stale") == 5
    srv_child = srv_user.events[0][2]
    srv_user.send_event(srv_child, "EV_DROP")
    drive(ga, lambda: cli_user.count("EV_DISCONNECTED") == 1)
    assert cli_user.reasons() == ["eof"]
    assert client.pending_output == 0
    assert cli_user.send_event(client, "EV_SEND_DATA", data=b"lost") == -1
    cli_user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: srv_user.count("EV_CONNECTED") == 2)
    cli_user.send_event(client, "EV_SEND_DATA", data=b"fresh")
    drive(ga, lambda: srv_user.data() == b"fresh")
    drive_for(ga, 0.05)
    assert srv_user.data() == b"fresh"


def test_data_written_while_connecting_is_sent_once_connected(ga: GAplic) -> None:
    srv_user, _, cli_user, client = make_pair(ga)
    cli_user.send_event(client, "EV_CONNECT")
    assert cli_user.send_event(client, "EV_SEND_DATA", data=b"early") == 5
    drive(ga, lambda: srv_user.data() == b"early")


def test_data_with_fin_is_delivered_before_disconnected(ga: GAplic) -> None:
    srv_user, server, _, _ = make_pair(ga)
    srv_user.hooks["EV_RX_DATA"] = echo
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        peer.sock.sendall(b"last words")
        peer.sock.shutdown(socket.SHUT_WR)
        drive(ga, lambda: peer.pump() and peer.eof)
        assert bytes(peer.received) == b"last words" and peer.error is None
    finally:
        peer.close()
    drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1)
    names = [n for n in srv_user.names() if n != "EV_TRANSMIT_READY"]
    assert names == ["EV_CONNECTED", "EV_RX_DATA", "EV_DISCONNECTED"]
    assert srv_user.data() == b"last words" and srv_user.reasons() == ["eof"]


def test_multi_ports_server_and_client(ga: GAplic) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    busy_port = busy.getsockname()[1]
    free_port = refusing_port()
    try:
        srv_user = ga.create_gobj("srv_user", Recorder, None)
        server = ga.create_gobj(
            "server",
            GServerSock,
            srv_user,
            host="127.0.0.1",
            use_multi_ports=True,
            ports=(busy_port, free_port),
        )
        assert server.config.port == free_port == server.get_sockname()[1]
        user = ga.create_gobj("user", Recorder, None)
        client = ga.create_gobj(
            "client",
            GSock,
            user,
            host="127.0.0.1",
            use_multi_ports=True,
            ports=f"{refusing_port()}, {free_port}",
        )
        assert client.get_next_dst()[1] != free_port  # first: the refused one
        user.send_event(client, "EV_CONNECT")  # second: the live one
        drive(ga, lambda: user.count("EV_CONNECTED") == 1)
        assert client.get_peername()[1] == free_port
    finally:
        busy.close()


def test_port_in_use_fails_at_create_gobj(ga: GAplic) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        baseline = fd_baseline(ga)
        with pytest.raises(OSError, match=r"cannot listen on 127\.0\.0\.1:\d+") as info:
            ga.create_gobj("s", GServerSock, None, host="127.0.0.1", port=busy.getsockname()[1])
        assert info.value.errno == errno.EADDRINUSE
        assert fd_count() == baseline
        assert ga.get_unique_named_gobjs() == [] and list(ga._roots) == []
    finally:
        busy.close()


def test_bad_config_values(ga: GAplic) -> None:
    with pytest.raises(GConfigValidateError, match="port"):
        ga.create_gobj("c", GSock, None, port=70000)
    with pytest.raises(GConfigValidateError, match="send_bytes"):
        ga.create_gobj("c", GSock, None, send_bytes=0)
    with pytest.raises(GConfigValidateError, match="ssl_options"):
        ga.create_gobj("c", GSock, None, ssl_options=["x"])


def test_suppressed_and_renamed_events(ga: GAplic) -> None:
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj(
        "server",
        GServerSock,
        srv_user,
        host="127.0.0.1",
        port=0,
        transmit_ready_event_name=None,
        rx_data_event_name="EV_RENAMED",
        connected_event_name="",
    )
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        peer.sock.sendall(b"x")
        drive(ga, lambda: srv_user.count("EV_RENAMED") == 1)
    finally:
        peer.close()
    drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1)
    assert srv_user.names() == ["EV_RENAMED", "EV_DISCONNECTED"]


def test_handler_exception_goes_to_gaplic_and_drops(
    ga: GAplic, caplog: pytest.LogCaptureFixture
) -> None:
    srv_user, _server, cli_user, client = make_pair(ga)

    def boom(self: Recorder, event: Event) -> None:
        raise ZeroDivisionError("boom")

    srv_user.hooks["EV_RX_DATA"] = boom
    cli_user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: cli_user.count("EV_CONNECTED") == 1)
    with caplog.at_level(logging.ERROR):
        cli_user.send_event(client, "EV_SEND_DATA", data=b"\x01secret")
        drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1)
        drive(ga, lambda: cli_user.count("EV_DISCONNECTED") == 1)
    assert srv_user.reasons() == ["handler_error"]
    assert cli_user.reasons() in (["reset"], ["eof"])
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "ZeroDivisionError" in errors[0].getMessage()
    assert "asyncio" not in errors[0].name
    assert "secret" not in caplog.text  # no payload dump


def test_trace_dump(ga: GAplic, caplog: pytest.LogCaptureFixture) -> None:
    srv_user, _server, cli_user, client = make_pair(ga)
    client.trace_dump = True
    cli_user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: cli_user.count("EV_CONNECTED") == 1)
    with caplog.at_level(logging.INFO, logger="fsmio"):
        cli_user.send_event(client, "EV_SEND_DATA", data=b"ABC\x00")
        drive(ga, lambda: srv_user.data() == b"ABC\x00")
    assert "TX ->" in caplog.text and "41 42 43 00" in caplog.text
    assert hexdump("p", b"AB").splitlines() == ["p (2 bytes)", "0000: 41 42".ljust(55) + "AB"]


def test_str_is_latin1_and_bad_types_raise(ga: GAplic) -> None:
    srv_user, _, cli_user, client = make_pair(ga)
    cli_user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: cli_user.count("EV_CONNECTED") == 1)
    assert client.mt_send_data("é") == 1
    assert client.mt_write(b"") == 0
    with pytest.raises(TypeError):
        client.mt_write(123)
    drive(ga, lambda: srv_user.data() == b"\xe9")


def test_close_when_flushed_small(ga: GAplic) -> None:
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj(
        "server", GServerSock, srv_user, host="127.0.0.1", port=0, close_when_flushed=True
    )
    srv_user.hooks["EV_CONNECTED"] = lambda self, ev: self.send_event(
        ev.kw["gsock"], "EV_SEND_DATA", data=b"bye"
    )
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        drive(ga, lambda: peer.pump() and peer.eof)
        assert bytes(peer.received) == b"bye"
    finally:
        peer.close()
    drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1)
    assert srv_user.reasons() == ["closed"]


def test_gaplic_stop_flushes_then_closes(ga: GAplic) -> None:
    """The shutdown callback: listeners stop, pending output is flushed, then closed."""
    srv_user, server, _, _ = make_pair(ga)
    payload = os.urandom(3 * 1048576)
    srv_user.hooks["EV_CONNECTED"] = lambda self, ev: self.send_event(
        ev.kw["gsock"], "EV_SEND_DATA", data=payload
    )
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        drive(ga, lambda: srv_user.count("EV_CONNECTED") == 1)
        ga.stop()
        loop = ga.loop
        task = loop.create_task(ga._shutdown())
        drive(ga, lambda: (peer.pump() or True) and task.done() and peer.eof, timeout=10)
        assert bytes(peer.received) == payload
        assert not server.is_listening()
        assert srv_user.reasons() == ["shutdown"]
    finally:
        peer.close()


def test_an_owner_finishes_its_connection_on_shutdown(ga: GAplic) -> None:
    """A shutdown callback added after the sockets' own (the registry exists first) still
    runs before it: the connection its owner keeps gets its last words and is closed by
    the owner; the other one is dropped with the reason ``shutdown``."""
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    kept_peer = RawPeer.connect("127.0.0.1", server.config.port)
    other_peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        drive(ga, lambda: srv_user.count("EV_CONNECTED") == 2)
        kept, _other = (g for n, _, g in srv_user.events if n == "EV_CONNECTED")

        def finish_later() -> None:
            ga.send_event(kept, "EV_SEND_DATA", data=b"last words")
            ga.send_event(kept, "EV_DROP")

        def owner_shutdown() -> None:
            kept.close_on_shutdown_by_owner()
            ga.call_later(0.1, finish_later)

        ga.add_shutdown_callback(owner_shutdown)
        task = ga.loop.create_task(ga._shutdown())
        drive(ga, lambda: (other_peer.pump() or True) and other_peer.eof)
        assert not kept.is_closed()  # left to its owner
        drive(ga, lambda: (kept_peer.pump() or True) and kept_peer.eof and task.done())
        assert bytes(kept_peer.received) == b"last words"
        reasons = {kw["reason"] for n, kw, g in srv_user.events if n == "EV_DISCONNECTED"}
        assert reasons == {"dropped", "shutdown"}
        assert list(socket_map_of(ga).values()) in ([], [server])
    finally:
        kept_peer.close()
        other_peer.close()


def test_transmit_ready_paces_a_producer(ga: GAplic) -> None:
    """The documented producer pattern: send while ``write_paused`` is false, then wait for
    EV_TRANSMIT_READY (after connect, and after each wait).  Sending from inside it works
    (B8), it never stalls, and a slow reader gets everything in order."""
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    block = b"".join(i.to_bytes(4, "big") for i in range(64 * 1024))  # 256 KiB, numbered
    rounds = {"n": 0, "max_pending": 0}

    def produce(self: Recorder, event: Event) -> None:
        gsock = event.kw["gsock"]
        while rounds["n"] < 40 and not gsock.write_paused:  # 10 MiB in all
            rounds["n"] += 1
            self.send_event(gsock, "EV_SEND_DATA", data=block)
            rounds["max_pending"] = max(rounds["max_pending"], gsock.pending_output)

    srv_user.hooks["EV_TRANSMIT_READY"] = produce
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        drive(
            ga,
            lambda: (peer.pump() or True) and len(peer.received) == 40 * len(block),
            timeout=20,
        )
    finally:
        peer.close()
    assert bytes(peer.received) == block * 40
    ready = srv_user.count("EV_TRANSMIT_READY")
    assert 2 <= ready <= 41  # it had to wait at least once; one event per drain
    assert rounds["max_pending"] == 0  # never queued: the transport held one block at most
    child = srv_user.events[0][2]
    assert child.txed_bytes == 40 * len(block)


def test_no_transmit_ready_after_a_write_that_went_to_the_kernel(ga: GAplic) -> None:
    """ginsfsm's meaning: one EV_TRANSMIT_READY after connect; small echoes that the kernel
    takes at once give none (the original's ongsock sent one request per connection)."""
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    srv_user.hooks["EV_RX_DATA"] = echo
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        for i in range(20):
            peer.sock.sendall(b"m%02d" % i)
            drive(ga, lambda i=i: (peer.pump() or True) and len(peer.received) == 3 * (i + 1))
        drive_for(ga, 0.05)
    finally:
        peer.close()
    assert srv_user.count("EV_TRANSMIT_READY") == 1


def _big_send_then_read(ga: GAplic, gsock: GSock, peer: RawPeer, size: int) -> None:
    """Send ``size`` bytes to a peer that is not reading yet (the transport must hold some
    past its high-water mark), then let the peer read everything."""
    ga.send_event(gsock, "EV_SEND_DATA", data=b"x" * size)
    assert gsock.write_paused
    want = len(peer.received) + size
    drive(ga, lambda: (peer.pump() or True) and len(peer.received) == want, timeout=20)


def test_every_input_event_in_every_state_is_handled(ga: GAplic) -> None:
    """No (state, top input) pair raises or leaves the GSock in a bad state."""
    user = ga.create_gobj("user", Recorder, None)
    inputs = ["EV_CONNECT", "EV_DROP", "EV_SEND_DATA", "EV_WRITE_OUTPUT_DATA"]
    inputs.append("EV_FLUSH_OUTPUT_DATA")
    server = ga.create_gobj("server", GServerSock, user, host="127.0.0.1", port=0)
    for state in ("ST_DISCONNECTED", "ST_WAIT_CONNECTED", "ST_CONNECTED"):
        for event in inputs:
            client = ga.create_gobj(
                None, GSock, user, host="127.0.0.1", port=server.config.port, __random_name__=True
            )
            if state != "ST_DISCONNECTED":
                user.send_event(client, "EV_CONNECT")
            if state == "ST_CONNECTED":
                drive(ga, lambda c=client: c.get_current_state() == "ST_CONNECTED")
            ret = user.send_event(client, event, data=b"x")
            assert ret is None or isinstance(ret, int)
            drive_for(ga, 0.01)
            assert client.get_current_state() in client.get_state_list()
            GObj.destroy_gobj(client)
    drive_for(ga, 0.02)


def _echo_only(self: GObj, event: Event) -> None:
    self.send_event(event.kw["gsock"], "EV_SEND_DATA", data=event.kw["data"])


class EchoOnly(GObj):
    """A subscriber that handles EV_RX_DATA (and the lifecycle) but not EV_TRANSMIT_READY."""

    def __init__(self) -> None:
        GObj.__init__(
            self,
            {
                "event_list": (
                    "EV_RX_DATA: bottom input",
                    "EV_CONNECTED: bottom input",
                    "EV_DISCONNECTED: bottom input",
                ),
                "state_list": ("ST_IDLE",),
                "machine": {
                    "ST_IDLE": (
                        ("EV_RX_DATA", _echo_only, None),
                        ("EV_CONNECTED", None, None),
                        ("EV_DISCONNECTED", None, None),
                    )
                },
            },
        )


def test_transmit_ready_only_to_subscribers_that_take_it(
    ga: GAplic, caplog: pytest.LogCaptureFixture
) -> None:
    user = ga.create_gobj("user", EchoOnly, None)
    server = ga.create_gobj("server", GServerSock, user, host="127.0.0.1", port=0)
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        with caplog.at_level(logging.WARNING):
            for i in range(20):
                peer.sock.sendall(b"%d;" % i)
                drive(ga, lambda i=i: (peer.pump() or True) and peer.received.endswith(b"%d;" % i))
        assert [r.getMessage() for r in caplog.records] == []
    finally:
        peer.close()


# ----------------------------------------------------------------------------------------
#   A hypothesis state machine over a fake transport
# ----------------------------------------------------------------------------------------
class FakeTransport:
    """An asyncio-like transport: a buffer above ``high`` pauses the protocol; the 'kernel'
    takes bytes only when the test says so; close/abort complete when the test says so."""

    def __init__(self, protocol: GSock) -> None:
        self.protocol = protocol
        self.high = 64
        self.buffer = bytearray()
        self.kernel = bytearray()
        self.paused = False
        self.reading = True
        self.closing = False
        self.aborted = False

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.high = high or 64

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("10.0.0.2", 1234), "sockname": ("10.0.0.1", 80)}.get(name, default)

    def write(self, data: bytes) -> None:
        assert not self.closing, "write after close"
        assert data, "empty write"
        self.buffer += data
        if not self.paused and len(self.buffer) > self.high:
            self.paused = True
            self.protocol.pause_writing()

    def drain(self, n: int) -> None:
        self.kernel += self.buffer[:n]
        del self.buffer[:n]
        if self.paused and len(self.buffer) <= self.high // 4:
            self.paused = False
            self.protocol.resume_writing()

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = self.aborted = True


class GSockMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ga = GAplic("hyp", use_uvloop=False)
        self.ga._loop()  # bind the loop (EV_TRANSMIT_READY is scheduled on it)
        self.user = self.ga.create_gobj("user", Recorder, None)
        self.gsock = self.ga.create_gobj(
            "g", GSock, self.user, send_bytes=7, outbuf_overflow=20, outbuf_high_water=50
        )
        self.transport: FakeTransport | None = None
        self.accepted = bytearray()  # bytes the GSock said yes to, this session
        self.peer_sent = bytearray()
        self.sessions = 0
        self.graceful = False

    def teardown(self) -> None:
        self.ga.close()

    # -- the connection's life ----------------------------------------------------------
    @precondition(lambda self: self.gsock.is_disconnected())
    @rule()
    def connection_made(self) -> None:
        self.gsock._prepare_accepted(None)
        self.transport = FakeTransport(self.gsock)
        self.accepted = bytearray()
        self.peer_sent = bytearray()
        self.user.events.clear()
        self.sessions += 1
        self.graceful = False
        self.gsock.connection_made(self.transport)  # type: ignore[arg-type]
        assert self.user.names()[0] == "EV_CONNECTED"

    @precondition(lambda self: self.transport is not None and self.transport.closing)
    @rule()
    def close_completes(self) -> None:
        t = self.transport
        assert t is not None
        if not t.aborted:
            # a graceful close: everything the GSock accepted was handed over
            t.drain(len(t.buffer))
            assert bytes(t.kernel) == bytes(self.accepted)
            self.graceful = True
        self.transport = None
        self.gsock.connection_lost(None)
        self._check_one_disconnected()

    @precondition(lambda self: self.transport is not None and not self.transport.closing)
    @rule()
    def peer_resets(self) -> None:
        self.transport = None
        self.gsock.connection_lost(ConnectionResetError())
        self._check_one_disconnected()
        assert self.user.reasons()[-1] == "reset"

    @precondition(lambda self: self.transport is not None and not self.transport.closing)
    @rule(data=st.binary(min_size=1, max_size=30))
    def peer_sends(self, data: bytes) -> None:
        self.peer_sent += data
        self.gsock.data_received(data)
        assert self.user.data() == bytes(self.peer_sent)

    @precondition(lambda self: self.transport is not None and not self.transport.closing)
    @rule()
    def peer_eof(self) -> None:
        assert self.gsock.eof_received() is True

    @precondition(lambda self: self.transport is not None)
    @rule(n=st.integers(min_value=1, max_value=80))
    def kernel_takes(self, n: int) -> None:
        assert self.transport is not None
        self.transport.drain(n)

    # -- the user ---------------------------------------------------------------------
    @rule(data=st.binary(max_size=40), flush=st.booleans())
    def user_writes(self, data: bytes, flush: bool) -> None:
        event = "EV_SEND_DATA" if flush else "EV_WRITE_OUTPUT_DATA"
        n = self.user.send_event(self.gsock, event, data=data)
        if self.gsock.get_current_state() in ("ST_CONNECTED", "ST_WAIT_DISCONNECTED"):
            assert n in (len(data), -1)
        if n > 0:
            self.accepted += data

    @rule()
    def user_flushes(self) -> None:
        self.user.send_event(self.gsock, "EV_FLUSH_OUTPUT_DATA")

    @rule()
    def user_drops(self) -> None:
        self.user.send_event(self.gsock, "EV_DROP")

    @rule()
    def loop_runs(self) -> None:
        self.ga._loop()

    # -- always -------------------------------------------------------------------------
    def _check_one_disconnected(self) -> None:
        names = self.user.names()
        assert names.count("EV_DISCONNECTED") == 1 and names[-1] == "EV_DISCONNECTED"
        assert self.gsock.is_disconnected() and self.gsock.pending_output == 0

    @invariant()
    def consistent(self) -> None:
        g = self.gsock
        t = self.transport
        names = self.user.names()
        assert names.count("EV_CONNECTED") <= 1 and names.count("EV_DISCONNECTED") <= 1
        if t is not None and not t.aborted:
            # what reached the transport is, in order, a prefix of what was accepted
            handed = bytes(t.kernel + t.buffer)
            assert bytes(self.accepted).startswith(handed)
            assert len(handed) + g.pending_output == len(self.accepted)
            # reading is paused only while the queue is above its low-water mark
            if not t.reading:
                assert g._queue.reading_paused
        if "EV_TRANSMIT_READY" in names:
            assert names.index("EV_TRANSMIT_READY") > names.index("EV_CONNECTED")


GSockMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
test_gsock_state_machine = GSockMachine.TestCase


def test_seed_parameters_do_what_they_say(ga: GAplic) -> None:
    """subscriber, disconnected_event_name, _socket_map, _impl_poll, tx_buffer_size,
    send_bytes, ip, addr on a real connection."""
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    parent = ga.create_gobj("parent", Recorder, None)
    listener = ga.create_gobj("listener", Recorder, None)
    client = ga.create_gobj(
        "client",
        GSock,
        parent,
        subscriber=listener,
        host="127.0.0.1",
        port=server.config.port,
        disconnected_event_name="EV_RENAMED",
        tx_buffer_size=1000,
        send_bytes=30,
    )
    listener.send_event(client, "EV_CONNECT")
    drive(ga, lambda: listener.count("EV_CONNECTED") == 1)
    assert parent.events == []  # the subscriber, not the parent
    assert client._socket_map is socket_map_of(ga)
    assert socket_map_of(ga)[client._transport.get_extra_info("socket").fileno()] is client
    assert client._impl_poll is ga.loop
    assert client._transport.get_write_buffer_limits()[1] == 1000
    assert client.addr == client.get_peername() and client.config.ip == "127.0.0.1"
    listener.send_event(client, "EV_SEND_DATA", data=b"y" * 100)
    assert client.txed_msgs == 1  # nothing queued: the whole message at once
    listener.send_event(client, "EV_WRITE_OUTPUT_DATA", data=b"z" * 100)
    listener.send_event(client, "EV_FLUSH_OUTPUT_DATA")
    assert client.txed_msgs == 1 + 4  # from the queue: chunks of at most send_bytes
    drive(ga, lambda: srv_user.data() == b"y" * 100 + b"z" * 100)
    listener.send_event(client, "EV_DROP")
    drive(ga, lambda: listener.count("EV_RENAMED") == 1)
    assert listener.count("EV_DISCONNECTED") == 0 and parent.events == []


def test_send_data_goes_whole_up_to_outbuf_overflow(ga: GAplic) -> None:
    """EV_SEND_DATA on an idle connection hands the message to the transport in one write
    when it is at most max(send_bytes, outbuf_overflow); a larger one goes through the
    queue in send_bytes chunks.  Every byte arrives, in order."""
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    listener = ga.create_gobj("listener", Recorder, None)
    client = ga.create_gobj(
        "client",
        GSock,
        listener,
        host="127.0.0.1",
        port=server.config.port,
        send_bytes=100,
        outbuf_overflow=1000,
    )
    listener.send_event(client, "EV_CONNECT")
    drive(ga, lambda: listener.count("EV_CONNECTED") == 1)
    assert listener.send_event(client, "EV_SEND_DATA", data=b"a" * 1000) == 1000
    assert client.txed_msgs == 1
    big = bytes(range(256)) * 8  # 2048 bytes: beyond outbuf_overflow
    assert listener.send_event(client, "EV_SEND_DATA", data=big) == len(big)
    drive(ga, lambda: client.pending_output == 0)
    assert client.txed_msgs == 1 + 21  # ceil(2048 / 100) chunks from the queue
    drive(ga, lambda: srv_user.data() == b"a" * 1000 + big)
    listener.send_event(client, "EV_DROP")
    drive(ga, lambda: listener.count("EV_DISCONNECTED") == 1)


def test_a_later_subscriber_gets_transmit_ready(ga: GAplic) -> None:
    """Who takes EV_TRANSMIT_READY is cached; a new subscription renews it."""
    user = ga.create_gobj("user", EchoOnly, None)
    server = ga.create_gobj("server", GServerSock, user, host="127.0.0.1", port=0)
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        drive(ga, lambda: server.config.n_gsocks == 1)
        child = server.get_gsocks()[0]
        _big_send_then_read(ga, child, peer, 8 * 1048576)
        watcher = ga.create_gobj("watcher", Recorder, None)
        child.subscribe_event("EV_TRANSMIT_READY", watcher)
        _big_send_then_read(ga, child, peer, 8 * 1048576)
        drive(ga, lambda: watcher.count("EV_TRANSMIT_READY") == 1)
        GObj.destroy_gobj(watcher)
        _big_send_then_read(ga, child, peer, 8 * 1048576)
        drive_for(ga, 0.02)
    finally:
        peer.close()


def test_gaplic_stop_aborts_pending_connects(blackhole: int) -> None:
    """J1: a connect attempt under way when the GAplic stops ends with
    EV_DISCONNECTED(shutdown); no task or socket outlives the loop (warnings are errors)."""
    for use_uvloop in (False, True):
        with GAplic("pending", use_uvloop=use_uvloop) as gaplic:
            user = gaplic.create_gobj("user", Recorder, None)
            client = gaplic.create_gobj("client", GSock, user, host="127.0.0.1", port=blackhole)
            user.send_event(client, "EV_CONNECT")
            gaplic.call_later(0.1, gaplic.stop)
            gaplic.start()
            assert user.names() == ["EV_DISCONNECTED"] and user.reasons() == ["shutdown"]
            assert client.is_disconnected()


def test_reason_words() -> None:
    import ssl

    from fsmio.gobjs.c_sock import _reason_of

    both = "Multiple exceptions: [Errno 111] Connect call failed ('::1', 1), [Errno 111] ..."
    assert _reason_of(OSError(both)) == "refused"
    assert _reason_of(OSError("Multiple exceptions: [Errno 110] a, [Errno 111] b")) == "timeout"
    assert _reason_of(OSError("Multiple exceptions: [Errno 99] a, [Errno 111] b")) == "error"
    assert _reason_of(socket.gaierror(-2, "Name or service not known")) == "unresolvable"
    assert _reason_of(ssl.SSLCertVerificationError("bad")) == "tls_verify_failed"
    assert _reason_of(ssl.SSLError("bad")) == "tls_error"
    assert _reason_of(BrokenPipeError()) == "reset"
    assert _reason_of(None) == "eof"
    assert _reason_of(ValueError()) == "error"


def test_bad_connect_arguments_raise_and_leave_it_disconnected(ga: GAplic) -> None:
    user = ga.create_gobj("user", Recorder, None)
    client = ga.create_gobj("client", GSock, user, host="127.0.0.1", port=1)
    with pytest.raises(ValueError, match="70000"):
        user.send_event(client, "EV_CONNECT", port=70000)
    assert client.is_disconnected() and user.events == []


# ----------------------------------------------------------------------------------------
#   EV_PAUSE_READING / EV_RESUME_READING, hand_over, the producer pattern at scale
# ----------------------------------------------------------------------------------------
def test_pause_and_resume_reading(ga: GAplic) -> None:
    """EV_PAUSE_READING stops EV_RX_DATA; nothing is lost; EV_RESUME_READING delivers it."""
    user = ga.create_gobj("user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, user, host="127.0.0.1", port=0)
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        drive(ga, lambda: server.config.n_gsocks == 1)
        child = server.get_gsocks()[0]
        user.send_event(child, "EV_PAUSE_READING")
        assert child.reading_paused
        peer.sock.sendall(b"held back")
        drive_for(ga, 0.1)
        assert user.count("EV_RX_DATA") == 0
        user.send_event(child, "EV_PAUSE_READING")  # twice: still one pause
        user.send_event(child, "EV_RESUME_READING")
        assert not child.reading_paused
        drive(ga, lambda: user.data() == b"held back")
    finally:
        peer.close()


def test_an_application_pause_outlives_the_output_backpressure(ga: GAplic) -> None:
    """Reading paused by both the application and backed-up output resumes only when both
    let go: output draining does not undo EV_PAUSE_READING."""
    user = ga.create_gobj("user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, user, host="127.0.0.1", port=0)
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        drive(ga, lambda: server.config.n_gsocks == 1)
        child = server.get_gsocks()[0]
        child.write_parameters(outbuf_high_water=65536)
        child._new_queue()  # the limits are read when a connection's queue is made
        user.send_event(child, "EV_PAUSE_READING")
        user.send_event(child, "EV_WRITE_OUTPUT_DATA", data=b"y" * 4 * 1048576)
        user.send_event(child, "EV_FLUSH_OUTPUT_DATA")
        assert child._queue.reading_paused  # backed-up output pauses reading too
        peer.sock.sendall(b"later")
        drive(ga, lambda: (peer.pump() or True) and len(peer.received) == 4 * 1048576)
        drive_for(ga, 0.05)
        assert not child._queue.reading_paused and child.reading_paused
        assert user.count("EV_RX_DATA") == 0
        user.send_event(child, "EV_RESUME_READING")
        drive(ga, lambda: user.data() == b"later")
    finally:
        peer.close()


def test_pause_reading_while_connecting_applies_once_connected(ga: GAplic) -> None:
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    srv_user.hooks["EV_CONNECTED"] = lambda self, ev: self.send_event(
        ev.kw["gsock"], "EV_SEND_DATA", data=b"hello"
    )
    cli_user = ga.create_gobj("cli_user", Recorder, None)
    client = ga.create_gobj("client", GSock, cli_user, host="127.0.0.1", port=server.config.port)
    cli_user.send_event(client, "EV_CONNECT")
    cli_user.send_event(client, "EV_PAUSE_READING")
    drive(ga, lambda: cli_user.count("EV_CONNECTED") == 1 and srv_user.count("EV_CONNECTED"))
    drive_for(ga, 0.1)
    assert cli_user.count("EV_RX_DATA") == 0
    cli_user.send_event(client, "EV_RESUME_READING")
    drive(ga, lambda: cli_user.data() == b"hello")
    cli_user.send_event(client, "EV_DROP")
    drive(ga, lambda: cli_user.count("EV_DISCONNECTED") == 1)


def test_hand_over_gives_the_connection_and_the_bytes_read_past_the_head(ga: GAplic) -> None:
    """An upgrade: the first owner consumes a head, hands the GSock and the rest of the read
    to a new owner, which then gets everything that follows, and the disconnect."""
    first = ga.create_gobj("first", Recorder, None)
    second = ga.create_gobj("second", Recorder, None)
    server = ga.create_gobj("server", GServerSock, first, host="127.0.0.1", port=0)

    def upgrade(self: Recorder, event: Event) -> None:
        head, _, rest = event.kw["data"].partition(b"\r\n\r\n")
        assert head == b"UPGRADE"
        event.kw["gsock"].hand_over(second, data=rest)

    first.hooks["EV_RX_DATA"] = upgrade
    second.hooks["EV_RX_DATA"] = echo
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        drive(ga, lambda: server.config.n_gsocks == 1)
        child = server.get_gsocks()[0]
        peer.sock.sendall(b"UPGRADE\r\n\r\nalready read")
        drive(ga, lambda: second.data() == b"already read")
        peer.sock.sendall(b" and more")
        drive(ga, lambda: (peer.pump() or True) and peer.received == b"already read and more")
        assert child.config.subscriber is second
        assert [s.subscriber for s in child.get_subscriptions()] == [second]
    finally:
        peer.close()
    drive(ga, lambda: second.count("EV_DISCONNECTED") == 1)
    assert first.names() == ["EV_CONNECTED", "EV_TRANSMIT_READY", "EV_RX_DATA"]


@pytest.mark.slow
def test_one_gib_to_a_slow_reader_with_the_producer_pattern(ga: GAplic) -> None:
    """The documented producer pattern streams 1 GiB to a reader slower than the producer:
    it never stalls, nothing is queued in the GSock (the transport holds one chunk past
    its high-water mark at most), and every byte arrives in order."""
    import threading
    import zlib

    total = 1 << 30
    chunk = bytes(range(256)) * 256  # 64 KiB
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    state = {"sent": 0, "max_pending": 0, "max_buffered": 0}

    def produce(self: Recorder, event: Event) -> None:
        gsock = event.kw["gsock"]
        while state["sent"] < total and not gsock.write_paused:
            self.send_event(gsock, "EV_SEND_DATA", data=chunk)
            state["sent"] += len(chunk)
            state["max_pending"] = max(state["max_pending"], gsock.pending_output)
            transport = gsock._transport
            if transport is not None:
                buffered = transport.get_write_buffer_size()
                state["max_buffered"] = max(state["max_buffered"], buffered)
        if state["sent"] >= total:
            self.send_event(gsock, "EV_DROP")

    srv_user.hooks["EV_TRANSMIT_READY"] = produce
    received = {"n": 0, "crc": 0, "done": False}
    sock = socket.create_connection(("127.0.0.1", server.config.port), timeout=30)

    def slow_reader() -> None:
        # Small reads with a pause every 4 MiB: slower than the producer, never idle long.
        next_pause = 4 << 20
        while True:
            data = sock.recv(65536)
            if not data:
                break
            received["crc"] = zlib.crc32(data, received["crc"])
            received["n"] += len(data)
            if received["n"] >= next_pause:
                next_pause += 4 << 20
                time.sleep(0.002)
        received["done"] = True

    reader = threading.Thread(target=slow_reader)
    reader.start()
    try:
        drive(ga, lambda: received["done"], timeout=100)
    finally:
        sock.close()
        reader.join(timeout=10)
    expected_crc = 0
    for _ in range(total // len(chunk)):
        expected_crc = zlib.crc32(chunk, expected_crc)
    assert received["n"] == total and received["crc"] == expected_crc
    assert state["max_pending"] == 0
    # the transport holds what the kernel did not take: at most its high-water mark
    # (tx_buffer_size) plus the one chunk that took it past it
    assert state["max_buffered"] <= 4096 + len(chunk)
    assert srv_user.reasons() == ["dropped"]
