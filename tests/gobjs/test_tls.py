"""TLS: ssl_options -> SSLContext, verification on by default, bad peers, bad options."""

from __future__ import annotations

import contextlib
import hashlib
import os
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from fsmio import GAplic
from fsmio.core.errors import GConfigValidateError
from fsmio.gobjs.c_sock import GSock
from fsmio.gobjs.c_srv_sock import GServerSock
from fsmio.gobjs.tls import make_ssl_context
from tests.gobjs.test_c_sock import RawPeer, Recorder, echo, ga
from tests.helpers import drive, drive_for

__all__ = ["ga"]  # the fixture, re-used


class Certs:
    def __init__(self, root: Path) -> None:
        self.ca = trustme.CA()
        self.cafile = str(root / "ca.pem")
        self.ca.cert_pem.write_to_path(self.cafile)
        good = self.ca.issue_cert("127.0.0.1", "::1", "localhost")
        self.certfile = str(root / "server.pem")
        self.keyfile = str(root / "server.key")
        for blob in good.cert_chain_pems:
            blob.write_to_path(self.certfile, append=True)
        good.private_key_pem.write_to_path(self.keyfile)
        other = self.ca.issue_cert("other.example")
        self.other_certfile = str(root / "other.pem")
        self.other_keyfile = str(root / "other.key")
        for blob in other.cert_chain_pems:
            blob.write_to_path(self.other_certfile, append=True)
        other.private_key_pem.write_to_path(self.other_keyfile)

    def server_options(self, **extra: Any) -> dict[str, Any]:
        return {"certfile": self.certfile, "keyfile": self.keyfile, **extra}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Certs]:
    yield Certs(tmp_path_factory.mktemp("certs"))


def tls_server(ga: GAplic, certs: Certs, **kw: Any) -> tuple[Recorder, GServerSock]:
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    srv_user.hooks["EV_RX_DATA"] = echo
    opts = kw.pop("ssl_options", None) or certs.server_options()
    server = ga.create_gobj(
        "server", GServerSock, srv_user, host="127.0.0.1", port=0, ssl_options=opts, **kw
    )
    return srv_user, server


def tls_client(ga: GAplic, port: int, ssl_options: Any, host: str = "127.0.0.1") -> Any:
    user = ga.create_gobj(None, Recorder, None, __random_name__=True)
    client = ga.create_gobj(
        None, GSock, user, host=host, port=port, ssl_options=ssl_options, __random_name__=True
    )
    return user, client


def test_tls_round_trip(ga: GAplic, certs: Certs) -> None:
    srv_user, server = tls_server(ga, certs)
    user, client = tls_client(ga, server.config.port, {"cafile": certs.cafile})
    payload = os.urandom(3 << 20)
    got = bytearray()

    def on_rx(self: Recorder, ev: Any) -> None:
        got.extend(ev.kw["data"])
        if len(got) == len(payload):
            self.send_event(ev.kw["gsock"], "EV_DROP")

    user.hooks["EV_CONNECTED"] = lambda self, ev: self.send_event(
        ev.kw["gsock"], "EV_SEND_DATA", data=payload
    )
    user.hooks["EV_RX_DATA"] = on_rx
    user.events = []
    user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: user.count("EV_DISCONNECTED") == 1, timeout=20)
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    names = user.names()
    assert names[:2] == ["EV_CONNECTED", "EV_TRANSMIT_READY"] and names[-1] == "EV_DISCONNECTED"
    assert user.reasons() == ["dropped"]
    drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1)
    assert srv_user.names()[0] == "EV_CONNECTED"
    drive(ga, lambda: not list(server.dl_childs))


def test_client_refuses_a_self_signed_server_by_default(ga: GAplic, certs: Certs) -> None:
    srv_user, server = tls_server(ga, certs)
    user, client = tls_client(ga, server.config.port, {"minimum_version": "TLSv1_2"})
    user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: user.count("EV_DISCONNECTED") == 1)
    assert user.names() == ["EV_DISCONNECTED"] and user.reasons() == ["tls_verify_failed"]
    drive_for(ga, 0.05)
    assert srv_user.count("EV_CONNECTED") == 0
    drive(ga, lambda: not list(server.dl_childs))


def test_wrong_host_name_is_refused(ga: GAplic, certs: Certs) -> None:
    _, server = tls_server(
        ga,
        certs,
        ssl_options={"certfile": certs.other_certfile, "keyfile": certs.other_keyfile},
    )
    user, client = tls_client(ga, server.config.port, {"cafile": certs.cafile})
    user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: user.count("EV_DISCONNECTED") == 1)
    assert user.names() == ["EV_DISCONNECTED"] and user.reasons() == ["tls_verify_failed"]
    # ... and the right name, given explicitly, works
    user2, client2 = tls_client(
        ga,
        server.config.port,
        {"cafile": certs.cafile, "server_hostname": "other.example"},
    )
    user2.send_event(client2, "EV_CONNECT")
    drive(ga, lambda: user2.count("EV_CONNECTED") == 1)


def test_verification_can_be_turned_off_explicitly(ga: GAplic, certs: Certs) -> None:
    _, server = tls_server(ga, certs)
    user, client = tls_client(ga, server.config.port, {"verify_mode": "CERT_NONE"})
    user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: user.count("EV_CONNECTED") == 1)


def test_ssl_context_is_accepted(ga: GAplic, certs: Certs) -> None:
    srv_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    srv_ctx.load_cert_chain(certs.certfile, certs.keyfile)
    _, server = tls_server(ga, certs, ssl_options=srv_ctx)
    ctx = ssl.create_default_context(cafile=certs.cafile)
    user, client = tls_client(ga, server.config.port, ctx)
    user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: user.count("EV_CONNECTED") == 1)


def _assert_still_serving(ga: GAplic, certs: Certs, server: GServerSock) -> None:
    user, client = tls_client(ga, server.config.port, {"cafile": certs.cafile})
    user.hooks["EV_CONNECTED"] = lambda self, ev: self.send_event(
        ev.kw["gsock"], "EV_SEND_DATA", data=b"ping"
    )
    user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: user.data() == b"ping", timeout=10)


def test_plaintext_to_a_tls_port_leaves_the_server_serving(ga: GAplic, certs: Certs) -> None:
    srv_user, server = tls_server(ga, certs)
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        peer.sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        drive(ga, lambda: peer.pump() and peer.eof)
    finally:
        peer.close()
    assert srv_user.count("EV_CONNECTED") == 0
    drive(ga, lambda: not list(server.dl_childs))
    _assert_still_serving(ga, certs, server)


def _client_hello() -> bytes:
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_handshake_cut_midway_leaves_the_server_serving(ga: GAplic, certs: Certs) -> None:
    srv_user, server = tls_server(ga, certs)
    hello = _client_hello()
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        peer.sock.sendall(hello[: len(hello) // 2])
        drive_for(ga, 0.05)
    finally:
        peer.close()
    drive(ga, lambda: server._seq == 1 and not list(server.dl_childs))
    assert srv_user.events == []
    _assert_still_serving(ga, certs, server)


def test_silent_peer_is_dropped_at_the_handshake_timeout(ga: GAplic, certs: Certs) -> None:
    srv_user, server = tls_server(ga, certs, ssl_handshake_timeout=0.3)
    peer = RawPeer.connect("127.0.0.1", server.config.port)
    try:
        start = time.monotonic()
        drive(ga, lambda: peer.pump() and peer.eof, timeout=3)
        assert 0.2 <= time.monotonic() - start <= 1.5
    finally:
        peer.close()
    drive(ga, lambda: not list(server.dl_childs))
    assert srv_user.events == []


# ----------------------------------------------------------------------------------------
#   Bad options fail at create_gobj
# ----------------------------------------------------------------------------------------
def test_bad_options_fail_at_create_gobj(ga: GAplic, certs: Certs, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    unreadable = tmp_path / "unreadable.key"
    unreadable.write_text("x")
    unreadable.chmod(0)
    cases: list[tuple[type[Any], dict[str, Any], str]] = [
        (GServerSock, {"certfile": missing}, "certfile"),
        (GServerSock, {}, ""),  # empty: plain TCP, fine
        (GServerSock, {"keyfile": certs.keyfile}, "keyfile"),
        (GServerSock, {"certfile": certs.certfile, "keyfile": certs.other_keyfile}, "match"),
        (GServerSock, {"certfile": certs.certfile, "colour": "blue"}, "unknown"),
        (GServerSock, {"verify_mode": "CERT_REQUIRED"}, "certfile"),
        (GSock, {"cafile": missing}, "cafile"),
        (GSock, {"verify_mode": "sometimes"}, "verify_mode"),
        (GSock, {"verify_mode": "CERT_NONE", "check_hostname": True}, "check_hostname"),
        (GSock, {"minimum_version": "TLSv1"}, "minimum_version"),
        (GSock, {"ciphers": "NOT-A-CIPHER"}, "ciphers"),
        (GSock, {"alpn_protocols": "h2"}, "alpn_protocols"),
        (GSock, {"server_hostname": 5}, "server_hostname"),
    ]
    if os.geteuid() != 0:  # root reads anything
        cases.append(
            (GServerSock, {"certfile": certs.certfile, "keyfile": str(unreadable)}, "keyfile")
        )
    for gclass, options, word in cases:
        kw = {"host": "127.0.0.1", "port": 0} if gclass is GServerSock else {}
        if not word:
            gobj = ga.create_gobj(None, gclass, None, ssl_options=options, **kw)
            assert gobj._ssl_ctx is None
            continue
        with pytest.raises(GConfigValidateError, match=word):
            ga.create_gobj(None, gclass, None, ssl_options=options, **kw)


def test_context_defaults() -> None:
    client = make_ssl_context({"cafile": None}, server_side=False)
    assert client is not None
    assert client.verify_mode == ssl.CERT_REQUIRED and client.check_hostname
    assert client.minimum_version == ssl.TLSVersion.TLSv1_2
    assert make_ssl_context({}, server_side=False) is None
    ctx = make_ssl_context(
        {"cert_reqs": ssl.CERT_OPTIONAL, "minimum_version": "TLSv1_3", "alpn_protocols": ["h2"]},
        server_side=False,
    )
    assert ctx is not None
    assert ctx.verify_mode == ssl.CERT_OPTIONAL and not ctx.check_hostname
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_3


def test_client_certificates(ga: GAplic, certs: Certs) -> None:
    """A server asking for client certificates (verify_mode REQUIRED + cafile)."""
    _, server = tls_server(
        ga,
        certs,
        ssl_options=certs.server_options(verify_mode="CERT_REQUIRED", cafile=certs.cafile),
    )
    client_cert = certs.ca.issue_cert("client.example")
    root = Path(certs.cafile).parent
    cert = str(root / "client.pem")
    key = str(root / "client.key")
    client_cert.cert_chain_pems[0].write_to_path(cert)
    client_cert.private_key_pem.write_to_path(key)
    user, client = tls_client(
        ga, server.config.port, {"cafile": certs.cafile, "certfile": cert, "keyfile": key}
    )
    user.hooks["EV_CONNECTED"] = lambda self, ev: self.send_event(
        ev.kw["gsock"], "EV_SEND_DATA", data=b"hi"
    )
    user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: user.data() == b"hi")
    anonymous, client2 = tls_client(ga, server.config.port, {"cafile": certs.cafile})
    anonymous.send_event(client2, "EV_CONNECT")
    drive(ga, lambda: anonymous.count("EV_DISCONNECTED") == 1)


def test_gaplic_stop_during_a_handshake(certs: Certs) -> None:
    """A TLS handshake under way when the GAplic stops is dropped; nothing outlives the
    loop (warnings are errors)."""
    for use_uvloop in (False, True):
        with GAplic("hs", use_uvloop=use_uvloop) as gaplic:
            srv_user, server = tls_server(gaplic, certs)
            peer = RawPeer.connect("127.0.0.1", server.config.port)  # says nothing
            try:
                gaplic.call_later(0.2, gaplic.stop)
                gaplic.start()
                assert srv_user.events == [] and list(server.dl_childs) == []
            finally:
                peer.close()


@pytest.mark.parametrize("clean", [True, False], ids=["close_notify", "truncated"])
def test_a_tls_peer_closing_without_close_notify_is_told_apart(
    ga: GAplic, certs: Certs, clean: bool
) -> None:
    """Catalogue D6: a TLS stream cut without close_notify is ``tls_truncated`` (uvloop
    tells the two apart; asyncio 3.11's TLS layer reports both as ``eof``).  The data
    before the close is delivered either way."""
    import socket
    import threading

    srv_user, server = tls_server(ga, certs)
    failures: list[BaseException] = []

    def peer() -> None:
        try:
            ctx = ssl.create_default_context(cafile=certs.cafile)
            raw = socket.create_connection(("127.0.0.1", server.config.port), timeout=10)
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"last words")
                assert tls.recv(100) == b"last words"  # the server echoes
                if clean:
                    tls.unwrap().close()  # close_notify, then the TCP close
                else:
                    tls.shutdown(socket.SHUT_WR)  # SSLSocket.shutdown: no close_notify
                    tls.settimeout(10)
                    with contextlib.suppress(OSError):
                        tls.recv(100)  # until the server has closed its side
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    thread = threading.Thread(target=peer)
    thread.start()
    try:
        drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1, timeout=20)
    finally:
        thread.join(timeout=20)
    assert not failures, failures
    assert srv_user.data() == b"last words"
    uvloop_in_use = type(ga.loop).__module__.startswith("uvloop")
    expected = "tls_truncated" if uvloop_in_use and not clean else "eof"
    assert srv_user.reasons() == [expected]
