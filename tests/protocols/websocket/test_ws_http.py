"""GWebSocket behind GHttpServer: the application answers plain requests and upgrades
WebSocket ones (``request=`` + ``channel.hand_over_gsock``), on one port."""

from __future__ import annotations

import http.client
from typing import Any

from websockets.sync.client import connect

from fsmio import GAplic, GHttpServer, GObj, GWebSocket
from fsmio.core.event import Event
from tests.helpers import drive

from .wsutil import RawWs, client_frame, handshake_request, run_in_thread


def _request(self: App, event: Event) -> None:
    request, channel = event.kw["request"], event.kw["channel"]
    if request.get_header("upgrade", b"").lower() == b"websocket":
        ws = self.create_gobj(None, GWebSocket, self, gsock=channel.gsock, request=request)
        channel.hand_over_gsock(request, ws)
    else:
        self.send_event(
            channel, "EV_HTTP_RESPONSE", request=request, status=200, headers=[], body=b"plain"
        )


def _message(self: App, event: Event) -> None:
    self.send_event(event.kw["ws"], "EV_SEND_MESSAGE", data=event.kw["data"])


def _log(self: App, event: Event) -> None:
    self.log.append(event.event_name)


NAMES = ("EV_HTTP_CHANNEL_OPENED", "EV_HTTP_CHANNEL_CLOSED", "EV_ON_OPEN", "EV_ON_CLOSE")
APP_FSM: dict[str, Any] = {
    "event_list": tuple(f"{n}: bottom input" for n in (*NAMES, "EV_HTTP_REQUEST", "EV_ON_MESSAGE")),
    "state_list": ("ST_IDLE",),
    "machine": {
        "ST_IDLE": (
            *((n, _log, None) for n in NAMES),
            ("EV_HTTP_REQUEST", _request, None),
            ("EV_ON_MESSAGE", _message, None),
        )
    },
}


class App(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, APP_FSM)
        self.log: list[str] = []


def _serve(gaplic: GAplic) -> tuple[App, int]:
    app: App = gaplic.create_gobj(None, App, gaplic)
    server = gaplic.create_gobj(None, GHttpServer, app, host="127.0.0.1", port=0)
    return app, int(server.config.port)


def test_plain_request_and_websocket_on_one_port(gaplic: GAplic) -> None:
    app, port = _serve(gaplic)

    def client() -> tuple[bytes, Any, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        body = conn.getresponse().read()
        conn.close()
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
            ws.send("hi")
            text = ws.recv(timeout=10)
            ws.send(b"\x01\x02")
            data = ws.recv(timeout=10)
        return body, text, data

    assert run_in_thread(gaplic, client) == (b"plain", "hi", b"\x01\x02")
    drive(gaplic, lambda: "EV_ON_CLOSE" in app.log)
    assert app.log.count("EV_ON_OPEN") == 1
    assert app.log.count("EV_ON_CLOSE") == 1


def test_frames_in_the_same_packet_as_the_upgrade(gaplic: GAplic) -> None:
    app, port = _serve(gaplic)
    raw = RawWs(gaplic, port)
    raw.send(handshake_request("/ws") + client_frame(1, b"early") + client_frame(1, b"too"))
    assert raw.read_head().startswith(b"HTTP/1.1 101")
    assert raw.frame() == (1, True, b"early")
    assert raw.frame() == (1, True, b"too")
    raw.close()
    drive(gaplic, lambda: "EV_ON_CLOSE" in app.log)


def test_a_bad_upgrade_is_refused_by_the_websocket(gaplic: GAplic) -> None:
    app, port = _serve(gaplic)
    raw = RawWs(gaplic, port)
    raw.send(handshake_request("/ws", Sec_WebSocket_Version="8"))
    head = raw.read_head()
    assert head.startswith(b"HTTP/1.1 426") and b"Sec-WebSocket-Version: 13" in head
    raw.wait_eof()
    raw.close()
    drive(gaplic, lambda: "EV_ON_CLOSE" in app.log)
    assert "EV_ON_OPEN" not in app.log
