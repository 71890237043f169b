"""The handshake from a request head parsed elsewhere (what GHttpCliSrv will do): a
stand-in HTTP channel reads the head, makes a GWebSocket with ``request=...`` and hands
the GSock over with the bytes it read past the head."""

from __future__ import annotations

from typing import Any

import pytest

from fsmio import GAplic, GObj
from fsmio.core.event import Event
from fsmio.gobjs.c_srv_sock import GServerSock
from fsmio.protocols.websocket import GWebSocket
from tests.helpers import drive

from .wsutil import RawWs, WsApp, client_frame, handshake_request


def _rx(self: Channel, event: Event) -> None:
    gsock = event.kw["gsock"]
    self.buf += event.kw["data"]
    if b"\r\n\r\n" not in self.buf:
        return
    head, _, leftover = self.buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    method, target, version = lines[0].split(b" ")
    headers = [tuple(v.strip() for v in line.split(b":", 1)) for line in lines[1:]]
    request: Any = {
        "method": method.decode(),
        "target": target.decode(),
        "http_version": version.decode().removeprefix("HTTP/"),
        "headers": headers,
    }
    if self.as_object:
        # Shaped like the HTTP layer's HttpRequest: target bytes, names lower-cased bytes.
        request["target"] = target
        request["headers"] = [(name.lower(), value) for name, value in headers]
        request = type("HttpRequest", (), request)()
    ws = self.create_gobj(None, GWebSocket, self.app, gsock=gsock, request=request)
    self.app.websockets.append(ws)
    gsock.hand_over(ws, data=leftover)


def _ignore(self: Channel, event: Event) -> None:
    return None


CHANNEL_FSM = {
    "event_list": (
        "EV_CONNECTED: bottom input",
        "EV_RX_DATA: bottom input",
        "EV_DISCONNECTED: bottom input",
    ),
    "state_list": ("ST_IDLE",),
    "machine": {
        "ST_IDLE": (
            ("EV_CONNECTED", _ignore, None),
            ("EV_RX_DATA", _rx, None),
            ("EV_DISCONNECTED", _ignore, None),
        )
    },
}


class Channel(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, CHANNEL_FSM)
        self.buf = b""
        self.app: WsApp
        self.as_object = False


def _serve(gaplic: GAplic, as_object: bool = False) -> tuple[WsApp, int]:
    app: WsApp = gaplic.create_gobj(None, WsApp, gaplic)
    channel: Channel = gaplic.create_gobj(None, Channel, gaplic)
    channel.app = app
    channel.as_object = as_object
    server = gaplic.create_gobj(None, GServerSock, channel, host="127.0.0.1", port=0)
    return app, int(server.config.port)


@pytest.mark.parametrize("as_object", [False, True])
def test_handshake_from_a_parsed_head_with_leftover_frames(gaplic: GAplic, as_object: bool) -> None:
    app, port = _serve(gaplic, as_object)
    raw = RawWs(gaplic, port)
    # The first frame comes in the same write as the head: it is the channel's leftover.
    raw.send(handshake_request("/chat?x=1") + client_frame(1, b"early"))
    head = raw.read_head()
    assert head.startswith(b"HTTP/1.1 101")
    assert raw.frame() == (1, True, b"early")
    raw.send(client_frame(2, b"later"))
    assert raw.frame() == (2, True, b"later")
    assert app.events[0][0] == "EV_ON_OPEN"
    assert app.events[0][1]["path"] == "/chat?x=1"
    raw.close()
    drive(gaplic, lambda: app.closes())


def test_a_parsed_head_can_be_rejected(gaplic: GAplic) -> None:
    app, port = _serve(gaplic)
    raw = RawWs(gaplic, port)
    raw.send(handshake_request(Sec_WebSocket_Version="7"))
    head = raw.read_head()
    assert head.startswith(b"HTTP/1.1 426")
    assert b"Sec-WebSocket-Version: 13" in head
    raw.wait_eof()
    drive(gaplic, lambda: app.closes())
    assert app.names() == ["EV_ON_CLOSE"]
    raw.close()
