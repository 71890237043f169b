"""Shared pieces of the GWebSocket tests.

``WsApp`` is a subscriber that makes a server GWebSocket for every connection its
GServerSock accepts (or is the subscriber of a client GWebSocket) and records every output
event; ``RawWs`` is a plain socket speaking WebSocket by hand (so it can send what no
library would), read from inside ``drive``.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from fsmio import GAplic, GObj
from fsmio.core.event import Event
from fsmio.gobjs.c_srv_sock import GServerSock
from fsmio.protocols.websocket import GWebSocket
from tests.helpers import drive

WS_OUTPUTS = ("EV_ON_OPEN", "EV_ON_MESSAGE", "EV_ON_CLOSE", "EV_ON_PONG", "EV_TRANSMIT_READY")


def _connected(self: WsApp, event: Event) -> None:
    ws = self.create_gobj(None, GWebSocket, self, gsock=event.kw["gsock"], **self.ws_kw)
    self.websockets.append(ws)


def _record(self: WsApp, event: Event) -> Any:
    kw = dict(event.kw)
    kw.pop("ws", None)
    self.events.append((event.event_name, kw))
    if event.event_name == "EV_ON_MESSAGE" and self.echo:
        return self.send_event(event.kw["ws"], "EV_SEND_MESSAGE", data=event.kw["data"])
    hook = self.hooks.get(event.event_name)
    if hook is not None:
        return hook(self, event)
    return None


def _ignore(self: WsApp, event: Event) -> None:
    return None


def make_app_fsm(with_pong: bool = True, with_ready: bool = False) -> dict[str, Any]:
    outputs = [
        n
        for n in WS_OUTPUTS
        if (with_pong or n != "EV_ON_PONG") and (with_ready or n != "EV_TRANSMIT_READY")
    ]
    rows = [("EV_CONNECTED", _connected, None), ("EV_DISCONNECTED", _ignore, None)]
    rows += [(n, _record, None) for n in outputs]
    return {
        "event_list": tuple(f"{n}: bottom input" for n, _, _ in rows),
        "state_list": ("ST_IDLE",),
        "machine": {"ST_IDLE": tuple(rows)},
    }


APP_FSM = make_app_fsm()


class WsApp(GObj):
    """Records the GWebSocket outputs (without ``ws``); echoes messages when ``echo``."""

    app_fsm: dict[str, Any] = APP_FSM

    def __init__(self) -> None:
        GObj.__init__(self, self.app_fsm)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.websockets: list[GWebSocket] = []
        self.ws_kw: dict[str, Any] = {}
        self.echo = True
        self.hooks: dict[str, Callable[[WsApp, Event], Any]] = {}

    def names(self) -> list[str]:
        return [n for n, _ in self.events]

    def messages(self) -> list[Any]:
        return [kw["data"] for n, kw in self.events if n == "EV_ON_MESSAGE"]

    def closes(self) -> list[dict[str, Any]]:
        return [kw for n, kw in self.events if n == "EV_ON_CLOSE"]


class WsAppNoPong(WsApp):
    app_fsm = make_app_fsm(with_pong=False)


def serve(
    gaplic: GAplic,
    app_class: type[WsApp] = WsApp,
    echo: bool = True,
    server_kw: dict[str, Any] | None = None,
    **ws_kw: Any,
) -> tuple[WsApp, int]:
    """A WsApp making a GWebSocket (with ``ws_kw``) per connection on 127.0.0.1:<port>
    (a GServerSock with ``server_kw``)."""
    app: WsApp = gaplic.create_gobj(None, app_class, gaplic)
    app.ws_kw = ws_kw
    app.echo = echo
    server = gaplic.create_gobj(
        None, GServerSock, app, host="127.0.0.1", port=0, **(server_kw or {})
    )
    return app, int(server.config.port)


def run_in_thread(gaplic: GAplic, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Run ``fn`` (a blocking client) in a thread while driving ``gaplic``; return its
    result or raise its exception."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    drive(gaplic, lambda: not thread.is_alive(), timeout=timeout)
    thread.join(1)
    if "error" in result:
        raise result["error"]
    return result.get("value")


# ----------------------------------------------------------------------------------------
#   A hand-made WebSocket client
# ----------------------------------------------------------------------------------------
def client_frame(
    opcode: int, payload: bytes, fin: bool = True, mask: bool = True, rsv: int = 0
) -> bytes:
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def handshake_request(path: str = "/ws", **extra: str) -> bytes:
    headers = {
        "Host": "127.0.0.1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    for name, value in extra.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    lines = [f"GET {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class RawWs:
    """A blocking-free socket client: ``handshake()``, ``send()``, and ``frames()`` /
    ``wait_closed()`` that drive the GAplic while reading."""

    def __init__(self, gaplic: GAplic, port: int) -> None:
        self.gaplic = gaplic
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setblocking(False)
        self.buf = b""
        self.eof = False
        self.head = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.setblocking(True)
        self.sock.sendall(data)
        self.sock.setblocking(False)

    def _read(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except ConnectionResetError:
            self.eof = True
            return
        if data:
            self.buf += data
        else:
            self.eof = True

    def pump(self, until: Callable[[], bool], timeout: float = 5.0) -> None:
        def check() -> bool:
            self._read()
            return until()

        drive(self.gaplic, check, timeout=timeout)

    def read_head(self, timeout: float = 5.0) -> bytes:
        self.pump(lambda: b"\r\n\r\n" in self.buf or self.eof, timeout)
        head, _sep, rest = self.buf.partition(b"\r\n\r\n")
        self.head, self.buf = head, rest
        return head

    def handshake(self, path: str = "/ws", **extra: str) -> bytes:
        self.send(handshake_request(path, **extra))
        head = self.read_head()
        assert head.startswith(b"HTTP/1.1 101"), head
        return head

    def _parse(self) -> tuple[int, bool, bytes] | None:
        buf = self.buf
        if len(buf) < 2:
            return None
        fin = bool(buf[0] & 0x80)
        opcode = buf[0] & 0x0F
        assert not buf[1] & 0x80, "a server frame must not be masked"
        n = buf[1] & 0x7F
        pos = 2
        if n == 126:
            if len(buf) < 4:
                return None
            (n,) = struct.unpack("!H", buf[2:4])
            pos = 4
        elif n == 127:
            if len(buf) < 10:
                return None
            (n,) = struct.unpack("!Q", buf[2:10])
            pos = 10
        if len(buf) < pos + n:
            return None
        self.buf = buf[pos + n :]
        return opcode, fin, buf[pos : pos + n]

    def frame(self, timeout: float = 5.0) -> tuple[int, bool, bytes]:
        """The next frame from the server (opcode, fin, payload)."""
        got: list[tuple[int, bool, bytes]] = []

        def until() -> bool:
            parsed = self._parse()
            if parsed is not None:
                got.append(parsed)
                return True
            return self.eof

        self.pump(until, timeout)
        assert got, f"no frame (eof={self.eof}, buffered {self.buf!r})"
        return got[0]

    def close_frame(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """Skip to the server's close frame: (code, reason)."""
        for _ in range(1000):
            opcode, _, payload = self.frame(timeout)
            if opcode == 8:
                if len(payload) < 2:
                    return 1005, b""
                return struct.unpack("!H", payload[:2])[0], payload[2:]
        raise AssertionError("no close frame")

    def wait_eof(self, timeout: float = 5.0) -> float:
        start = time.monotonic()
        self.pump(lambda: self.eof, timeout)
        return time.monotonic() - start
