"""GHttpServer's ``EV_HTTP_ACCEPT_WEBSOCKET``: an upgrade request becomes a GWebSocket made
by the HTTP layer (owned and destroyed by the server), or is refused with a 4xx."""

from __future__ import annotations

import contextlib
import http.client
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from fsmio import GAplic, GHttpServer, GObj
from fsmio.core.errors import GObjError
from fsmio.core.event import Event
from tests.helpers import drive
from tests.protocols.websocket.wsutil import RawWs, handshake_request, run_in_thread


def _request(self: App, event: Event) -> None:
    request, channel = event.kw["request"], event.kw["channel"]
    if request.path == "/deny":
        self.send_event(
            channel, "EV_HTTP_RESPONSE", request=request, status=403, headers=[], body=b"no"
        )
    elif request.get_header("upgrade", b"").lower() == b"websocket":
        ws = self.send_event(channel, "EV_HTTP_ACCEPT_WEBSOCKET", request=request, **self.accept_kw)
        self.made.append(ws)
    else:
        self.send_event(
            channel, "EV_HTTP_RESPONSE", request=request, status=200, headers=[], body=b"plain"
        )


def _open(self: App, event: Event) -> None:
    kw = dict(event.kw)
    # who the GWebSocket's events go to, seen while it is open (it is destroyed soon after
    # its close, and a destroyed gobj holds no subscriptions)
    kw["subscribers"] = [sub.subscriber for sub in event.kw["ws"].get_subscriptions()]
    self.opens.append(kw)


def _message(self: App, event: Event) -> None:
    self.send_event(event.kw["ws"], "EV_SEND_MESSAGE", data=event.kw["data"])


def _close(self: App, event: Event) -> None:
    self.closes.append(dict(event.kw))


def _ignore(self: App, event: Event) -> None:
    return None


IN = ("EV_HTTP_REQUEST", "EV_HTTP_CHANNEL_OPENED", "EV_HTTP_CHANNEL_CLOSED", "EV_ON_OPEN")
APP_FSM: dict[str, Any] = {
    "event_list": tuple(f"{n}: bottom input" for n in (*IN, "EV_ON_MESSAGE", "EV_ON_CLOSE")),
    "state_list": ("ST_IDLE",),
    "machine": {
        "ST_IDLE": (
            ("EV_HTTP_REQUEST", _request, None),
            ("EV_HTTP_CHANNEL_OPENED", _ignore, None),
            ("EV_HTTP_CHANNEL_CLOSED", _ignore, None),
            ("EV_ON_OPEN", _open, None),
            ("EV_ON_MESSAGE", _message, None),
            ("EV_ON_CLOSE", _close, None),
        )
    },
}


class App(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, APP_FSM)
        self.accept_kw: dict[str, Any] = {}
        self.made: list[Any] = []
        self.opens: list[dict[str, Any]] = []
        self.closes: list[dict[str, Any]] = []


def _serve(gaplic: GAplic, **accept_kw: Any) -> tuple[App, GHttpServer, int]:
    app: App = gaplic.create_gobj(None, App, gaplic)
    app.accept_kw = accept_kw
    server = gaplic.create_gobj(None, GHttpServer, app, host="127.0.0.1", port=0)
    return app, server, int(server.config.port)


def test_accept_makes_a_websocket_owned_by_the_server(gaplic: GAplic) -> None:
    app, server, port = _serve(gaplic, subprotocol="chat.v1", headers=[(b"x-hello", b"1")])

    def client() -> tuple[bytes, Any, Any, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        body = conn.getresponse().read()
        conn.close()
        with connect(
            f"ws://127.0.0.1:{port}/ws", subprotocols=["other", "chat.v1"], open_timeout=10
        ) as ws:
            ws.send("hi")
            text = ws.recv(timeout=10)
            sub = ws.subprotocol
            hello = ws.response.headers.get("x-hello")
        return body, text, sub, hello

    assert run_in_thread(gaplic, client) == (b"plain", "hi", "chat.v1", "1")
    drive(gaplic, lambda: bool(app.closes) and not server.get_websockets())
    ws = app.made[0]
    assert ws.parent is server  # made by the HTTP layer...
    assert app.opens[0]["subscribers"] == [app]  # the fast path: one subscription
    drive(gaplic, lambda: ws._destroyed)  # ...and destroyed by it after EV_ON_CLOSE
    assert app.opens[0]["subprotocol"] == "chat.v1"
    assert app.opens[0]["path"] == "/ws"
    assert len(app.closes) == 1 and app.closes[0]["code"] == 1000
    assert server.config.n_websockets == 0


def test_subprotocol_not_offered_means_none(gaplic: GAplic) -> None:
    app, _, port = _serve(gaplic, subprotocol="chat.v1")

    def client() -> Any:
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
            return ws.subprotocol

    assert run_in_thread(gaplic, client) is None
    drive(gaplic, lambda: bool(app.closes))


def test_ws_config_and_subscriber_are_passed(gaplic: GAplic) -> None:
    other: App = gaplic.create_gobj(None, App, gaplic)
    app, server, port = _serve(gaplic, subscriber=other, max_message_size=10)

    def client() -> Any:
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
            ws.send("x" * 11)
            with contextlib.suppress(ConnectionClosed):
                ws.recv(timeout=10)
            return ws.close_code

    assert run_in_thread(gaplic, client) == 1009
    drive(gaplic, lambda: bool(other.closes))
    assert not app.opens and not app.closes  # everything went to `subscriber`
    assert other.closes[0]["code"] == 1009
    drive(gaplic, lambda: not server.get_websockets())


def test_the_websocket_module_keeps_checking_the_handshake(gaplic: GAplic) -> None:
    app, server, port = _serve(gaplic, origins=["https://good.example"])
    raw = RawWs(gaplic, port)
    raw.send(handshake_request("/ws", Origin="https://evil.example"))
    assert raw.read_head().startswith(b"HTTP/1.1 403")
    raw.wait_eof()
    raw.close()
    raw = RawWs(gaplic, port)
    raw.send(handshake_request("/ws", Sec_WebSocket_Version="8"))
    head = raw.read_head()
    assert head.startswith(b"HTTP/1.1 426") and b"Sec-WebSocket-Version: 13" in head
    raw.wait_eof()
    raw.close()
    drive(gaplic, lambda: len(app.closes) == 2 and not server.get_websockets())
    assert not app.opens
    assert all(c["code"] == 1006 and c["reason"].startswith("rejected") for c in app.closes)
    drive(gaplic, lambda: all(ws._destroyed for ws in app.made))


def test_a_4xx_response_refuses_the_upgrade(gaplic: GAplic) -> None:
    app, _, port = _serve(gaplic)

    def client() -> int:
        try:
            with connect(f"ws://127.0.0.1:{port}/deny", open_timeout=10):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    assert run_in_thread(gaplic, client) == 403
    raw = RawWs(gaplic, port)
    raw.send(handshake_request("/deny") + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head = raw.read_head()
    assert head.startswith(b"HTTP/1.1 403") and b"Connection: close" in head
    raw.wait_eof()  # no later request is served on that connection
    raw.close()
    assert not app.made and not app.opens


def test_accept_for_a_request_not_waiting_is_refused(gaplic: GAplic) -> None:
    app, server, port = _serve(gaplic)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def client() -> bytes:
        conn.request("GET", "/")
        return conn.getresponse().read()

    assert run_in_thread(gaplic, client) == b"plain"
    channel = server.get_channels()[0]
    # the request was answered: late, nothing made
    assert app.send_event(channel, "EV_HTTP_ACCEPT_WEBSOCKET", request=object()) is None
    with pytest.raises(GObjError, match="not the request waiting"):
        channel.accept_websocket(object())
    conn.close()
