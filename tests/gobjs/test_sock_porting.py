"""ginsfsm's socket names a ported program uses: GSock.connected, the class attribute
GSock._global_trace_dump, close_all_sockets(gaplic._socket_map), GSSLSock, and
ssl_options read as a dict."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from fsmio import GAplic, GConfigValidateError, GServerSock, GSock, GSSLSock, close_all_sockets
from fsmio.gobjs import c_sock
from fsmio.gobjs.c_sock import socket_map_of
from tests.gobjs.test_c_sock import Recorder
from tests.helpers import drive


@pytest.fixture
def ga() -> Iterator[GAplic]:
    gaplic = GAplic("porting-sock")
    try:
        yield gaplic
    finally:
        gaplic.close()


@pytest.fixture(autouse=True)
def _no_global_dump() -> Iterator[None]:
    yield
    GSock._global_trace_dump = False


def connected_pair(ga: GAplic) -> tuple[Recorder, Recorder, GSock]:
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    server = ga.create_gobj("server", GServerSock, srv_user, host="127.0.0.1", port=0)
    user = ga.create_gobj("user", Recorder, None)
    client = ga.create_gobj("client", GSock, user, host="127.0.0.1", port=server.config.port)
    user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: user.count("EV_CONNECTED") == 1 and srv_user.count("EV_CONNECTED") == 1)
    return srv_user, user, client


def test_connected(ga: GAplic) -> None:
    srv_user, user, client = connected_pair(ga)
    accepted = srv_user.events[0][2]
    assert client.connected is True and accepted.connected is True
    user.send_event(client, "EV_DROP")
    drive(ga, lambda: user.count("EV_DISCONNECTED") == 1)
    assert client.connected is False
    drive(ga, lambda: srv_user.count("EV_DISCONNECTED") == 1)
    assert accepted.connected is False
    fresh = ga.create_gobj("fresh", GSock, user)
    assert fresh.connected is False
    with pytest.raises(AttributeError):
        fresh.connected = True  # type: ignore[misc]


def test_global_trace_dump_as_a_class_attribute(
    ga: GAplic, caplog: pytest.LogCaptureFixture
) -> None:
    # ginsfsm's examples: GSock._global_trace_dump = True
    srv_user, user, client = connected_pair(ga)
    assert GSock._global_trace_dump is False
    GSock._global_trace_dump = True
    assert GSock._global_trace_dump is True and c_sock._trace_dump_all is True
    with caplog.at_level(logging.INFO, logger="fsmio"):
        user.send_event(client, "EV_SEND_DATA", data=b"dumped")
        drive(ga, lambda: "RX <-" in caplog.text)
    assert "TX ->" in caplog.text and "64 75 6D 70 65 64" in caplog.text
    GSock._global_trace_dump = False
    GSock.global_trace_dump(True)  # the static method sets the same flag
    assert GSock._global_trace_dump is True
    GSock.global_trace_dump(False)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fsmio"):
        user.send_event(client, "EV_SEND_DATA", data=b"quiet")
        drive(ga, lambda: srv_user.data().endswith(b"quiet"))
    assert "TX ->" not in caplog.text


def test_close_all_sockets(ga: GAplic) -> None:
    # stress_client_echo.py: close_all_sockets(ga_cli._socket_map) after start()
    srv_user, user, _ = connected_pair(ga)
    socket_map = ga._socket_map
    assert socket_map is socket_map_of(ga)
    assert len(socket_map) == 3  # the listener, the client, the accepted connection
    close_all_sockets(socket_map)
    assert socket_map == {}
    drive(ga, lambda: user.count("EV_DISCONNECTED") == 1)
    assert user.reasons() == ["shutdown"]
    server = ga.find_unique_gobj("server") or next(iter(srv_user.dl_childs))
    assert isinstance(server, GServerSock) and not server.is_listening()
    close_all_sockets(socket_map)  # empty: nothing


def test_ssl_options_reads_as_a_dict(ga: GAplic) -> None:
    user = ga.create_gobj("user", Recorder, None)
    plain = ga.create_gobj("plain", GSock, user)
    options = plain.config.ssl_options
    assert type(options) is dict and options == {}
    assert plain.read_parameter("ssl_options") == {}
    options["mine"] = 1  # its own dict: no other GSock sees it
    other = ga.create_gobj("other", GSock, user)
    assert other.config.ssl_options == {}
    # An idle GSock does not carry one (it is made when read).
    assert "ssl_options" not in vars(ga.create_gobj("idle", GSock, user).config)
    with_json = ga.create_gobj("json", GSock, user, ssl_options='{"server_hostname": "h"}')
    assert with_json.config.ssl_options == {"server_hostname": "h"}


def test_gsslsock(ga: GAplic) -> None:
    user = ga.create_gobj("user", Recorder, None)
    with pytest.raises(GConfigValidateError, match=r"GSSLSock needs ssl_options.*use GSock"):
        ga.create_gobj("plain", GSSLSock, user)
    ca = trustme.CA()
    with ca.cert_pem.tempfile() as cafile:
        tls = ga.create_gobj("tls", GSSLSock, user, ssl_options={"cafile": cafile})
    assert isinstance(tls, GSock) and tls._ssl_ctx is not None
    assert tls.config.ssl_options == {"cafile": cafile}


def test_gsslsock_talks_tls(ga: GAplic, tmp_path: Any) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile, cafile = (tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    srv_user = ga.create_gobj("srv_user", Recorder, None)
    srv_user.hooks["EV_RX_DATA"] = lambda self, ev: self.send_event(
        ev.kw["gsock"], "EV_SEND_DATA", data=ev.kw["data"]
    )
    server = ga.create_gobj(
        "server",
        GServerSock,
        srv_user,
        host="127.0.0.1",
        port=0,
        ssl_options={"certfile": str(certfile), "keyfile": str(keyfile)},
    )
    user = ga.create_gobj("user", Recorder, None)
    client = ga.create_gobj(
        "client",
        GSSLSock,
        user,
        host="127.0.0.1",
        port=server.config.port,
        ssl_options={"cafile": str(cafile)},
    )
    user.send_event(client, "EV_CONNECT")
    drive(ga, lambda: user.count("EV_CONNECTED") == 1)
    user.send_event(client, "EV_SEND_DATA", data=b"over tls")
    drive(ga, lambda: user.data() == b"over tls")
    user.send_event(client, "EV_DROP")
    drive(ga, lambda: user.count("EV_DISCONNECTED") == 1)
