"""The ASGI ``websocket`` scope, mapped onto a ``GWebSocket`` (for ``GAsgiServer``).

One ``WebSocketCycle`` per upgrade request: its scope, its ``receive`` and ``send``.

* ``receive()`` returns ``websocket.connect`` first.  After ``websocket.accept`` it returns
  ``websocket.receive`` (``text`` or ``bytes``) for each message, then one
  ``websocket.disconnect`` (``code``, ``reason``) when the connection is over — also
  when it ended before the accept (code 1006).
* ``send()``:

  * ``websocket.accept`` (``subprotocol``, ``headers``) sends ``EV_HTTP_ACCEPT_WEBSOCKET``
    to the channel: the GWebSocket answers the handshake (its own checks — version, key,
    Origin — stay the authority: a request it refuses becomes ``websocket.disconnect``
    1006);
  * ``websocket.send`` (``text`` or ``bytes``) is ``EV_SEND_MESSAGE``; while the
    connection has output waiting, ``send()`` waits for ``EV_TRANSMIT_READY``;
  * ``websocket.close`` (``code`` 1000, ``reason``) is ``EV_CLOSE`` after the accept; before
    it, the request is denied with ``403``;
  * ``websocket.http.response.start`` / ``.body`` (the ``websocket.http.response``
    extension) deny the request with the application's own HTTP response, before the
    accept.

* Backpressure while receiving: the GWebSocket runs with ``ack_messages``: a message is
  acknowledged (``EV_ACK_MESSAGE``) when ``receive()`` hands it to the application, so at
  most ``max_queue`` messages wait here before the GSock stops reading.
* A ``send()`` after the connection closed raises ``ClientDisconnected`` (an ``OSError``,
  as ASGI spec 2.4 asks).  An application that returns before accepting gets a ``403``
  (uvicorn's behaviour); after accepting, without closing: close 1000; one that raises
  before the accept: ``500``; after: close 1011.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Final

from .messages import ASGI_VERSION, AsgiProtocolError

__all__ = ["WS_ASGI_VERSION", "ClientDisconnected", "WebSocketCycle", "build_websocket_scope"]

_LOG = logging.getLogger("fsmio")

#: spec_version 2.4: ``reason`` in ``websocket.close`` and ``websocket.disconnect``, and
#: OSError from a send() after the connection closed.
WS_ASGI_VERSION: Final[dict[str, str]] = {**ASGI_VERSION, "spec_version": "2.4"}
_CONNECT: Final = {"type": "websocket.connect"}
_DENIED_BODY: Final = b"Forbidden"
_TEXT_PLAIN: Final = [(b"content-type", b"text/plain; charset=utf-8")]


class ClientDisconnected(OSError):
    """``send()`` on a WebSocket that is closed."""


def build_websocket_scope(
    request: Any,
    *,
    server: tuple[str, int] | None,
    client: tuple[str, int] | None,
    root_path: str = "",
    scheme: str = "ws",
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``websocket`` scope of an upgrade ``request`` (paths as ``build_http_scope``)."""
    path: str = request.path
    raw_path: bytes = request.raw_path
    if root_path:
        path = root_path + path
        raw_path = root_path.encode("utf-8") + raw_path
    subprotocols = [
        token.strip().decode("latin-1")
        for value in request.get_headers(b"sec-websocket-protocol")
        for token in value.split(b",")
        if token.strip()
    ]
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": WS_ASGI_VERSION,
        "http_version": request.http_version,
        "server": server,
        "client": client,
        "scheme": scheme,
        "root_path": root_path,
        "path": path,
        "raw_path": raw_path,
        "query_string": request.query or b"",
        "headers": request.headers,
        "subprotocols": subprotocols,
        "extensions": {"websocket.http.response": {}},
    }
    if state is not None:
        scope["state"] = state.copy()
    return scope


def is_websocket_request(request: Any) -> bool:
    """``request`` asks for a WebSocket upgrade (``Upgrade`` lists ``websocket``)."""
    if not request.upgrade:
        return False
    value = request.get_header(b"upgrade", b"")
    return any(token.strip().lower() == b"websocket" for token in value.split(b","))


def _as_header_pairs(raw: Any, what: str) -> list[tuple[bytes, bytes]]:
    pairs: list[tuple[bytes, bytes]] = []
    try:
        items = list(raw)
    except TypeError:
        raise AsgiProtocolError(f"{what}: 'headers' must be an iterable of pairs") from None
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise AsgiProtocolError(f"{what}: each header must be a [name, value] pair") from None
        if not isinstance(name, (bytes, bytearray)) or not isinstance(value, (bytes, bytearray)):
            raise AsgiProtocolError(f"{what}: header names and values must be bytes: {item!r}")
        pairs.append((bytes(name), bytes(value)))
    return pairs


class WebSocketCycle:
    """One ``websocket`` scope: ``receive``/``send`` over a GWebSocket (see the module
    documentation).  ``server`` is the GAsgiServer (it routes the GWebSocket's events
    here), ``channel`` the HTTP channel until the accept."""

    __slots__ = (
        "accepted",
        "channel",
        "close_code",
        "close_reason",
        "close_sent",
        "closed",
        "connect_sent",
        "denial",
        "messages",
        "request",
        "server",
        "task",
        "waiter",
        "ws",
        "ws_config",
    )

    def __init__(self, server: Any, channel: Any, request: Any, ws_config: dict[str, Any]) -> None:
        self.server = server
        self.channel = channel
        self.request = request
        self.ws_config = ws_config
        self.ws: Any = None
        self.accepted = False
        self.connect_sent = False
        #: The connection is over (or the request was denied): only disconnect remains.
        self.closed = False
        self.close_sent = False
        self.close_code = 1006
        self.close_reason = ""
        self.messages: deque[dict[str, Any]] = deque()
        #: The HTTP cycle of a denial response (``websocket.http.response.*``).
        self.denial: Any = None
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    # -- loop events (from the GAsgiServer's actions) --------------------------------------
    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def message(self, data: str | bytes, binary: bool) -> None:
        self.messages.append(
            {"type": "websocket.receive", "bytes": data}
            if binary
            else {"type": "websocket.receive", "text": data}
        )
        self._wake()

    def disconnect(self, code: int = 1006, reason: str = "") -> None:
        if not self.closed:
            self.closed = True
            self.close_code = code
            self.close_reason = reason
        self._wake()

    def wake_writer(self) -> None:
        self._wake()

    async def _wait(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            waiter = self.waiter = asyncio.get_running_loop().create_future()
        await waiter

    # -- ASGI ------------------------------------------------------------------------------
    async def receive(self) -> dict[str, Any]:
        if not self.connect_sent:
            self.connect_sent = True
            return _CONNECT
        for _ in range(1_000_000_000):  # each pass waits for an event: bounded by them
            messages = self.messages
            if messages:
                message = messages.popleft()
                ws = self.ws
                if ws is not None and not ws._destroyed:
                    # consumed: the GWebSocket may read on (its max_queue bounds the rest)
                    self.server.send_event(ws, "EV_ACK_MESSAGE")
                return message
            if self.closed:
                return {
                    "type": "websocket.disconnect",
                    "code": self.close_code,
                    "reason": self.close_reason,
                }
            await self._wait()
        raise AsgiProtocolError("receive(): no message")  # pragma: no cover - unreachable

    async def send(self, message: Any) -> None:
        try:
            kind = message["type"]
        except (TypeError, KeyError):
            raise AsgiProtocolError(
                f"an ASGI message must be a dict with 'type', not {message!r}"
            ) from None
        if self.denial is not None:
            await self._send_denial(kind, message)
            return
        if not self.accepted:
            if self.closed:
                raise ClientDisconnected(f"{kind!r} sent after the WebSocket closed")
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._deny(403, _TEXT_PLAIN, _DENIED_BODY)
            elif kind == "websocket.http.response.start":
                self.denial = self.server._make_http_cycle(self.channel, self.request)
                await self._send_denial(kind, message)
            else:
                raise AsgiProtocolError(
                    f"expected 'websocket.accept', 'websocket.close' or "
                    f"'websocket.http.response.start', got {kind!r}"
                )
            return
        if self.closed or self.close_sent:
            if kind == "websocket.close":
                return  # closing twice: nothing more to do
            raise ClientDisconnected(f"{kind!r} sent after the WebSocket closed")
        ws = self.ws
        if kind == "websocket.send":
            data = _payload(message)
            self.server.send_event(ws, "EV_SEND_MESSAGE", data=data)
            while not self.closed and ws.write_paused:
                await self._wait()
        elif kind == "websocket.close":
            code = message.get("code", 1000)
            reason = message.get("reason") or ""
            if type(code) is not int or not isinstance(reason, str):
                raise AsgiProtocolError(
                    f"websocket.close: 'code' must be an int and 'reason' a str, not "
                    f"{code!r}, {reason!r}"
                )
            # later sends raise; receive() still waits for the peer's answer (disconnect)
            self.close_sent = True
            self.server.send_event(ws, "EV_CLOSE", code=code, reason=reason)
        elif kind == "websocket.accept":
            raise AsgiProtocolError("websocket.accept sent twice")
        else:
            raise AsgiProtocolError(f"expected 'websocket.send' or 'websocket.close', got {kind!r}")

    # -- helpers ---------------------------------------------------------------------------
    def _accept(self, message: Any) -> None:
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and not isinstance(subprotocol, str):
            raise AsgiProtocolError(
                f"websocket.accept: 'subprotocol' must be a str or None, not {subprotocol!r}"
            )
        headers = _as_header_pairs(message.get("headers", ()), "websocket.accept")
        server = self.server
        channel = self.channel
        server._accepting = self
        try:
            ws = server.send_event(
                channel,
                "EV_HTTP_ACCEPT_WEBSOCKET",
                request=self.request,
                subprotocol=subprotocol or None,
                headers=headers,
                subscriber=server,
                **self.ws_config,
            )
        finally:
            server._accepting = None
        # Only now: a GWebSocket parameter refused (a bad header...) raised above, and the
        # request can still be answered with a 500.
        self.accepted = True
        if ws is None:  # the channel closed meanwhile
            self.disconnect()
            return
        if self.ws is None:
            server._ws_opened(self, ws)

    def _deny(self, status: int, headers: Any, body: bytes) -> None:
        self.closed = True
        self.close_code = 1006
        self.server._ws_forget(self)
        self.server.send_event(
            self.channel,
            "EV_HTTP_RESPONSE",
            request=self.request,
            status=status,
            headers=headers,
            body=body,
        )

    async def _send_denial(self, kind: str, message: Any) -> None:
        if kind not in ("websocket.http.response.start", "websocket.http.response.body"):
            raise AsgiProtocolError(f"expected a websocket.http.response message, got {kind!r}")
        denial = self.denial
        if kind == "websocket.http.response.start":
            status = message.get("status")
            if status == 101 or (type(status) is int and 200 <= status < 300):
                raise AsgiProtocolError(
                    f"websocket.http.response.start: a denial needs an error status, not {status}"
                )
        self.closed = True
        self.server._ws_forget(self)
        await denial.send({**message, "type": kind[len("websocket.") :]})

    def fail(self, exc: BaseException | None) -> None:
        """The application raised (``exc``) or returned: end what it left open."""
        server = self.server
        denial = self.denial
        if denial is not None:
            denial._fail(exc)  # a denial response not completed: 500 or cut
            return
        if not self.accepted and not self.closed:
            if exc is None:
                self._deny(403, _TEXT_PLAIN, _DENIED_BODY)
            else:
                self._deny(500, _TEXT_PLAIN, b"Internal Server Error")
            return
        ws = self.ws
        if ws is not None and not ws._destroyed and ws.get_current_state() == "ST_OPEN":
            if exc is None:
                server.send_event(ws, "EV_CLOSE", code=1000, reason="")
            else:
                server.send_event(ws, "EV_CLOSE", code=1011, reason="")

    def cut(self) -> None:
        """The task was cancelled: drop the connection."""
        ws = self.ws
        if ws is not None and not ws._destroyed and ws.get_current_state() != "ST_CLOSED":
            self.server.send_event(ws, "EV_DROP")
        elif not self.accepted and not self.closed and not self.channel._destroyed:
            self.closed = True
            self.server.send_event(self.channel, "EV_DROP")

    async def run(self, app: Any, scope: dict[str, Any]) -> None:
        server = self.server
        try:
            await app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            self.cut()
            raise
        except ClientDisconnected:
            self.fail(None)
        except BaseException as exc:
            (server.logger or _LOG).error(
                "Exception in ASGI application (websocket %s): %r",
                self.request.path,
                exc,
                exc_info=exc,
            )
            self.fail(exc)
        else:
            self.fail(None)
        finally:
            server._ws_forget(self)
            server._tasks.pop(self, None)


def _payload(message: Any) -> str | bytes:
    text = message.get("text")
    data = message.get("bytes")
    if text is not None:
        if not isinstance(text, str) or data is not None:
            raise AsgiProtocolError("websocket.send: 'text' must be a str, without 'bytes'")
        return text
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise AsgiProtocolError("websocket.send: one of 'text' (str) or 'bytes' (bytes) is required")
