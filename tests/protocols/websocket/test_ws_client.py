"""GWebSocket, client role: against the ``websockets`` library's sync server (in a thread)
and against hand-made servers for what a library server would not do."""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme
from websockets.sync.server import Server, ServerConnection, serve

from fsmio import GAplic, GConnex, GObj, GSock
from fsmio.protocols.websocket import GWebSocket
from tests.helpers import drive, drive_for

from .wsutil import WsApp

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@pytest.fixture
def ws_server(gaplic: GAplic) -> Iterator[Callable[..., tuple[Server, int]]]:
    """Start a websockets sync server (handler, **kw) in a thread; stopped after the test
    (after the GAplic, so that its connections are gone and shutdown() does not wait)."""
    servers: list[tuple[Server, threading.Thread]] = []

    def start(handler: Callable[[ServerConnection], None], **kw: Any) -> tuple[Server, int]:
        server = serve(handler, "127.0.0.1", 0, **kw)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return server, int(server.socket.getsockname()[1])

    yield start
    gaplic.close()
    for server, thread in servers:
        server.shutdown()
        thread.join(5)


def echo_handler(conn: ServerConnection) -> None:
    for message in conn:
        conn.send(message)


def client(gaplic: GAplic, url: str, **kw: Any) -> tuple[WsApp, GWebSocket]:
    app: WsApp = gaplic.create_gobj(None, WsApp, gaplic)
    app.echo = False
    ws = app.create_gobj(None, GWebSocket, app, iam_server=False, resource=url, **kw)
    return app, ws


def test_client_echo_and_close(gaplic: GAplic, ws_server: Any) -> None:
    _, port = ws_server(echo_handler)
    app, ws = client(gaplic, f"ws://127.0.0.1:{port}/echo?x=1", extra_headers=[("X-Me", "1")])
    drive(gaplic, lambda: "EV_ON_OPEN" in app.names())
    opened = app.events[0][1]
    assert opened["path"] == "/echo?x=1" and opened["subprotocol"] is None
    assert ("Upgrade", "websocket") in opened["headers"]
    app.send_event(ws, "EV_SEND_MESSAGE", data="héllo")
    app.send_event(ws, "EV_SEND_MESSAGE", data=b"\x00\x01")
    app.send_event(ws, "EV_SEND_JSON_MESSAGE", msg=[1, {"a": None}])
    drive(gaplic, lambda: len(app.messages()) == 3)
    assert app.messages() == ["héllo", b"\x00\x01", '[1,{"a":null}]']
    app.send_event(ws, "EV_CLOSE", code=1000, reason="bye")
    drive(gaplic, lambda: app.closes())
    assert app.closes() == [{"code": 1000, "reason": "bye", "clean": True}]
    # A close asked for by the application: the GConnex does not reconnect...
    drive_for(gaplic, 0.3)
    assert app.names().count("EV_ON_OPEN") == 1
    # ...until told.
    app.send_event(ws, "EV_CONNECT")
    drive(gaplic, lambda: app.names().count("EV_ON_OPEN") == 2)
    app.destroy_gobj(ws)


def test_client_sends_extra_headers_and_subprotocols(gaplic: GAplic, ws_server: Any) -> None:
    seen: dict[str, Any] = {}

    def handler(conn: ServerConnection) -> None:
        assert conn.request is not None
        seen["x-me"] = conn.request.headers.get("X-Me")
        seen["origin"] = conn.request.headers.get("Origin")
        conn.send(conn.subprotocol or "")
        conn.recv()

    _, port = ws_server(handler, subprotocols=["b", "a"])
    app, ws = client(
        gaplic,
        f"ws://127.0.0.1:{port}/",
        subprotocols=["a", "b"],
        extra_headers={"X-Me": "yes"},
        origin="https://me.example",
    )
    drive(gaplic, lambda: app.messages())
    assert app.messages() == ["b"]
    assert app.events[0][1]["subprotocol"] == "b"
    assert seen == {"x-me": "yes", "origin": "https://me.example"}
    app.destroy_gobj(ws)


def test_client_reconnects_over_gconnex_with_a_fresh_handshake(
    gaplic: GAplic, ws_server: Any
) -> None:
    keys: list[str] = []

    def handler(conn: ServerConnection) -> None:
        assert conn.request is not None
        keys.append(conn.request.headers["Sec-WebSocket-Key"])
        conn.send(f"hello {len(keys)}")
        conn.close(1001, "going away")

    _, port = ws_server(handler)
    app, ws = client(
        gaplic, f"ws://127.0.0.1:{port}/", connex_kw={"timeout_between_connections": 0.05}
    )
    drive(gaplic, lambda: app.names().count("EV_ON_CLOSE") >= 3, timeout=10)
    names = [n for n in app.names() if n != "EV_ON_MESSAGE"]
    assert names[:6] == ["EV_ON_OPEN", "EV_ON_CLOSE"] * 3
    assert app.messages()[:3] == ["hello 1", "hello 2", "hello 3"]
    assert app.closes()[0] == {"code": 1001, "reason": "going away", "clean": True}
    assert len(set(keys)) == len(keys) >= 3
    app.destroy_gobj(ws)


def test_client_over_a_given_gsock(gaplic: GAplic, ws_server: Any) -> None:
    _, port = ws_server(echo_handler)
    app: WsApp = gaplic.create_gobj(None, WsApp, gaplic)
    app.echo = False
    gsock = gaplic.create_gobj(None, GSock, app, host="127.0.0.1", port=port)
    ws = app.create_gobj(None, GWebSocket, app, iam_server=False, gsock=gsock, resource="/p")
    drive(gaplic, lambda: "EV_ON_OPEN" in app.names())
    assert app.events[0][1]["path"] == "/p"
    app.send_event(ws, "EV_SEND_MESSAGE", data="x")
    drive(gaplic, lambda: app.messages() == ["x"])
    app.send_event(ws, "EV_DROP")
    drive(gaplic, lambda: app.closes())
    assert app.closes()[0]["code"] == 1006


class QuietOwner(GObj):
    def __init__(self) -> None:
        GObj.__init__(
            self,
            {
                "event_list": ("EV_CONNECTED: bottom input", "EV_RX_DATA: bottom input"),
                "state_list": ("ST_IDLE",),
                "machine": {"ST_IDLE": (("EV_CONNECTED", None, None), ("EV_RX_DATA", None, None))},
            },
        )


def test_client_over_a_given_gconnex_already_connected(gaplic: GAplic, ws_server: Any) -> None:
    _, port = ws_server(echo_handler)
    app: WsApp = gaplic.create_gobj(None, WsApp, gaplic)
    app.echo = False
    # The GConnex is up before the GWebSocket takes it from its first owner.
    first_owner = gaplic.create_gobj(None, QuietOwner, gaplic)
    connex = gaplic.create_gobj(None, GConnex, first_owner, destinations=[("127.0.0.1", port)])
    drive(gaplic, lambda: connex.get_current_state() == "ST_CONNECTED")
    ws = app.create_gobj(None, GWebSocket, app, iam_server=False, gsock=connex, resource="/c")
    drive(gaplic, lambda: "EV_ON_OPEN" in app.names())
    app.send_event(ws, "EV_SEND_MESSAGE", data="over connex")
    drive(gaplic, lambda: app.messages() == ["over connex"])
    app.send_event(ws, "EV_CLOSE")
    drive(gaplic, lambda: app.closes())
    drive_for(gaplic, 0.2)
    assert connex.get_current_state() == "ST_DISCONNECTED"  # a close asked for: stays down
    assert app.names().count("EV_ON_OPEN") == 1


def test_client_compression(gaplic: GAplic, ws_server: Any) -> None:
    _, port = ws_server(echo_handler, compression="deflate")
    app, ws = client(gaplic, f"ws://127.0.0.1:{port}/", compression="deflate", outbuf_overflow=8192)
    drive(gaplic, lambda: "EV_ON_OPEN" in app.names())
    assert ws.gsock is not None and ws.gsock.config.outbuf_overflow == 8192
    headers = {k.lower(): v for k, v in app.events[0][1]["headers"]}
    assert "permessage-deflate" in headers["sec-websocket-extensions"]
    app.send_event(ws, "EV_SEND_MESSAGE", data="a" * 100_000)
    drive(gaplic, lambda: app.messages())
    assert app.messages() == ["a" * 100_000]
    app.destroy_gobj(ws)


def test_client_wss(gaplic: GAplic, ws_server: Any) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    _, port = ws_server(echo_handler, ssl=server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    app, ws = client(gaplic, f"wss://localhost:{port}/", ssl_options=client_ctx)
    drive(gaplic, lambda: "EV_ON_OPEN" in app.names())
    app.send_event(ws, "EV_SEND_MESSAGE", data="secret")
    drive(gaplic, lambda: app.messages() == ["secret"])
    app.destroy_gobj(ws)


# ----------------------------------------------------------------------------------------
#   Hand-made servers
# ----------------------------------------------------------------------------------------
class RawServer:
    """One-connection-at-a-time server in a thread running ``handler(conn)``."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.handler = handler
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            try:
                self.handler(conn)
            except BaseException as exc:
                self.errors.append(exc)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(10)


@pytest.fixture
def raw_server(gaplic: GAplic) -> Iterator[Callable[[Callable[[socket.socket], None]], RawServer]]:
    made: list[RawServer] = []

    def start(handler: Callable[[socket.socket], None]) -> RawServer:
        made.append(RawServer(handler))
        return made[-1]

    yield start
    gaplic.close()
    for server in made:
        server.close()


def read_request(conn: socket.socket) -> dict[str, str]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise EOFError
        data += chunk
    lines = data.split(b"\r\n\r\n")[0].decode().split("\r\n")[1:]
    return {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def read_frame(conn: socket.socket) -> tuple[int, bytes, bytes]:
    """(opcode, mask key, unmasked payload) of one client frame."""

    def exact(n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = conn.recv(n - len(out))
            if not chunk:
                raise EOFError
            out += chunk
        return out

    b0, b1 = exact(2)
    assert b1 & 0x80, "a client frame must be masked"
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", exact(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", exact(8))
    key = exact(4)
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(exact(n)))
    return b0 & 0x0F, key, payload


def test_client_masks_every_frame_with_a_fresh_key(gaplic: GAplic, raw_server: Any) -> None:
    got: list[tuple[int, bytes, bytes]] = []

    def handler(conn: socket.socket) -> None:
        headers = read_request(conn)
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept_key(headers["sec-websocket-key"]).encode()
            + b"\r\n\r\n"
        )
        got.extend(read_frame(conn) for _ in range(3))

    server = raw_server(handler)
    app, ws = client(gaplic, f"ws://127.0.0.1:{server.port}/")
    drive(gaplic, lambda: "EV_ON_OPEN" in app.names())
    for data in ("one", "two", "three"):
        app.send_event(ws, "EV_SEND_MESSAGE", data=data)
    drive(gaplic, lambda: len(got) == 3 or not server.thread.is_alive())
    assert not server.errors
    assert [(op, p) for op, _, p in got] == [(1, b"one"), (1, b"two"), (1, b"three")]
    assert len({key for _, key, _ in got}) == 3
    app.destroy_gobj(ws)


def test_client_refuses_a_bad_accept_key(gaplic: GAplic, raw_server: Any) -> None:
    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept_key("not the key").encode()
            + b"\r\n\r\n"
        )
        conn.recv(10)  # until the client closes

    server = raw_server(handler)
    app, ws = client(gaplic, f"ws://127.0.0.1:{server.port}/", connex_kw={"max_attempts": 1})
    drive(gaplic, lambda: app.closes())
    assert app.names() == ["EV_ON_CLOSE"]
    close = app.closes()[0]
    assert close["code"] == 1006 and not close["clean"]
    assert "Sec-WebSocket-Accept" in close["reason"]
    app.destroy_gobj(ws)


def test_client_open_timeout(gaplic: GAplic, raw_server: Any) -> None:
    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.recv(10)  # never answers; returns when the client gives up

    server = raw_server(handler)
    app, ws = client(gaplic, f"ws://127.0.0.1:{server.port}/", open_timeout=0.2)
    drive(gaplic, lambda: app.closes())
    assert app.closes() == [{"code": 1006, "reason": "open_timeout", "clean": False}]
    app.destroy_gobj(ws)


def test_client_cuts_a_server_that_never_closes_tcp(gaplic: GAplic, raw_server: Any) -> None:
    def handler(conn: socket.socket) -> None:
        headers = read_request(conn)
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept_key(headers["sec-websocket-key"]).encode()
            + b"\r\n\r\n"
        )
        opcode, _, payload = read_frame(conn)
        assert opcode == 8
        conn.sendall(b"\x88\x02" + payload[:2])  # the close echoed; TCP left open
        conn.recv(10)

    server = raw_server(handler)
    app, ws = client(gaplic, f"ws://127.0.0.1:{server.port}/", close_timeout=0.3)
    drive(gaplic, lambda: "EV_ON_OPEN" in app.names())
    app.send_event(ws, "EV_CLOSE", code=1000)
    drive(gaplic, lambda: app.closes(), timeout=3)
    assert app.closes() == [{"code": 1000, "reason": "", "clean": True}]
    server.thread.join(5)
    assert not server.errors
    app.destroy_gobj(ws)


def test_client_bad_resource(gaplic: GAplic) -> None:
    from fsmio.core.errors import GObjError

    with pytest.raises(GObjError, match="resource"):
        client(gaplic, "http://example.com/")
