"""``GAsgiServer``: an ASGI 3.0 server (``http``, ``websocket`` and ``lifespan`` scopes) on the
GAplic's loop.

Starlette, FastAPI and any ASGI 3 application run on it unchanged.  Each request is one
asyncio task on the GAplic's loop, as uvicorn does; the HTTP parsing, limits, timeouts,
keep-alive and pipelining are the ``GHttpServer`` child's.

Like ``GWsgiServer`` it *owns* a ``GHttpServer`` (named like itself) and subscribes to its
events rather than subclassing it: the HTTP layer's event contract is the whole interface.

Configuration: every ``GHttpServer`` parameter (``host``, ``port``, ``ssl_options``,
``identity``, ``url_scheme``, ``expose_tracebacks``, the limits and timeouts; see
``docs/http.md``), plus:

==================  =====  =======  =======================================================
name                type   default  description
==================  =====  =======  =======================================================
application         None   None     The ASGI 3 application: a callable, a name registered
                                    with ``set_global_app``, or ``'module:attr'``.
lifespan            str    auto     ``auto``: run the lifespan scope if the application
                                    speaks it; ``on``: it must; ``off``: never.
root_path           str    ''       ASGI ``root_path`` (the mount point behind a proxy);
                                    also prefixed to ``path`` and ``raw_path``.
ready_callback      None   None     Called (no arguments, on the loop) once the server
                                    serves: after a successful lifespan start-up.
websocket           None   {}       GWebSocket parameters of the ``websocket`` scope's
                                    connections (``max_message_size``, ``max_queue``,
                                    ``ping_interval``, ``origins``, ``compression``...).
                                    None: no ``websocket`` scope (upgrade requests are
                                    served as plain ``http``).
==================  =====  =======  =======================================================

Input events (bottom, from the GHttpServer): ``EV_HTTP_CHANNEL_OPENED``,
``EV_HTTP_REQUEST``, ``EV_HTTP_REQUEST_BODY``, ``EV_TRANSMIT_READY``,
``EV_HTTP_CHANNEL_CLOSED``; from the GWebSockets: ``EV_ON_OPEN``, ``EV_ON_MESSAGE``,
``EV_ON_CLOSE``, ``EV_TRANSMIT_READY``.  No output events.

Theory of operation
-------------------
Start-up: the listening socket is bound in ``start_up`` (a port in use fails there);
when the loop runs, the lifespan start-up runs (``fsmio.protocols.asgi.lifespan``).  If
the application answers ``lifespan.startup.failed`` (or raises, with ``lifespan="on"``) the
failure is logged as one clear ERROR line, ``GAplic.exit_code`` is set to 3 (as uvicorn
exits) and the GAplic is stopped.  Requests that arrive before the start-up is over wait
for it.  On the GAplic's stop: the requests in flight get the shutdown grace, then the
lifespan shutdown runs; tasks still running after it are cancelled.

A request: ``EV_HTTP_REQUEST`` makes the scope and starts a task running the application
with this request's ``receive`` and ``send`` (on Python 3.12+ an eager task: it runs at
once, until it first has to wait).

* ``receive()``: a body that came whole is one ``http.request`` message; a streamed one is
  pulled a piece at a time (``EV_HTTP_READ_BODY``: credit; the first pull sends ``100
  Continue`` when the client asked), ``more_body`` telling whether more follows.  After
  the body, it waits for the client to go away or the response to complete, and returns
  ``http.disconnect`` (as uvicorn).
* ``send()``: ``http.response.start`` is kept until the first body message; if that one
  is the last (``more_body`` false) the response goes as one ``EV_HTTP_RESPONSE``
  (Content-Length computed).  Otherwise ``EV_HTTP_RESPONSE_START``, then one
  ``EV_HTTP_RESPONSE_DATA`` per message — and while the connection still has output
  waiting (``channel.can_write()`` false), ``send()`` waits for ``EV_TRANSMIT_READY``: a
  client that does not read slows the producer down; memory stays bounded.  After the client
  went away ``send()`` returns without doing anything (uvicorn's behaviour).
* An exception from the application, or an application that returns without a complete
  response, is logged once; a response not yet started becomes ``500``, one already
  started is cut (``EV_DROP``).
* An ``Upgrade: websocket`` request is a ``websocket`` scope
  (``fsmio.protocols.asgi.websocket``): ``websocket.accept`` sends
  ``EV_HTTP_ACCEPT_WEBSOCKET`` to the channel, which makes a ``GWebSocket`` (the
  GHttpServer's child) whose subscriber is this server; its events go to the scope's
  ``receive()``.  With ``websocket=None`` the request is a plain ``http`` one (RFC 9110
  lets a server ignore Upgrade).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import traceback
from collections.abc import Callable
from typing import Any, Final

from fsmio.core.event import Event
from fsmio.core.gconfig import add_gconfig
from fsmio.core.gobj import GObj
from fsmio.protocols.apps import AppNotFound, load_application, mount_point
from fsmio.protocols.http.c_http_server import GHTTPSERVER_GCONFIG, GHttpServer

from .lifespan import LIFESPAN_MODES, Lifespan
from .messages import AsgiProtocolError, build_http_scope, response_body, response_start
from .websocket import WebSocketCycle, build_websocket_scope, is_websocket_request

__all__ = ["EXIT_STARTUP_FAILED", "GASGISERVER_FSM", "GASGISERVER_GCONFIG", "GAsgiServer"]

_LOG = logging.getLogger("fsmio")

#: ``GAplic.exit_code`` after a failed lifespan start-up (uvicorn's exit status for it).
EXIT_STARTUP_FAILED: Final = 3

_DISCONNECT: Final = {"type": "http.disconnect"}
#: Response bytes a task may write without waiting before it yields to the loop once.
_YIELD_EVERY: Final = 256 * 1024
_ERROR_BODY: Final = b"Internal Server Error"
_ERROR_HEADERS: Final = [(b"content-type", b"text/plain; charset=utf-8")]


# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
def _lifespan_mode(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in LIFESPAN_MODES:
        raise ValueError(f"one of {', '.join(LIFESPAN_MODES)}, not {value!r}")
    return text


def _websocket_config(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"a dict of GWebSocket parameters (or None), not {value!r}")
    for name in ("gsock", "request", "iam_server", "subscriber", "ack_messages"):
        if name in value:
            raise ValueError(f"{name!r} is set by the server, not in 'websocket'")
    return dict(value)


GASGISERVER_GCONFIG: Final[dict[str, list[Any]]] = add_gconfig(
    GHTTPSERVER_GCONFIG,
    {
        "application": [
            None,
            None,
            0,
            None,
            "ASGI 3 application: a callable, a set_global_app name, or 'module:attr'.",
        ],
        "lifespan": [str, "auto", 0, _lifespan_mode, "Lifespan scope: auto, on or off."],
        "root_path": [str, "", 0, mount_point, "ASGI root_path (mount point)."],
        "ready_callback": [None, None, 0, None, "Called on the loop once the server serves."],
        "websocket": [
            None,
            {},
            0,
            _websocket_config,
            "GWebSocket parameters of the websocket scope; None: no websocket scope.",
        ],
    },
)

_HTTP_PARAMS: Final = tuple(name for name in GHTTPSERVER_GCONFIG if name != "subscriber")
_WS_SCHEMES: Final = {"http": "ws", "https": "wss"}


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_channel_opened(self: GAsgiServer, event: Event) -> None:
    peer = event.kw.get("peername")
    # The scope's "client", made once per connection.
    client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) and len(peer) >= 2 else None
    self._peers[event.kw["channel"]] = client


def ac_channel_closed(self: GAsgiServer, event: Event) -> None:
    channel = event.kw["channel"]
    self._peers.pop(channel, None)
    cycle = self._cycles.pop(channel, None)
    if cycle is not None:
        cycle.disconnect()
    ws_cycle = self._ws_cycles.pop(channel, None)
    if ws_cycle is not None and ws_cycle.ws is None:
        ws_cycle.disconnect()  # gone before the accept


def ac_ws_open(self: GAsgiServer, event: Event) -> None:
    ws = event.kw["ws"]
    cycle = self._ws_cycles.get(ws) or self._accepting
    if cycle is not None and cycle.ws is None:
        self._ws_opened(cycle, ws)


def ac_ws_message(self: GAsgiServer, event: Event) -> None:
    kw = event.kw
    ws = kw["ws"]
    cycle = self._ws_cycles.get(ws)
    if cycle is None:
        self.send_event(ws, "EV_ACK_MESSAGE")  # nobody will read it: let the rest flow
        return
    cycle.message(kw["data"], kw["binary"])


def ac_ws_close(self: GAsgiServer, event: Event) -> None:
    kw = event.kw
    ws = kw["ws"]
    cycle = self._ws_cycles.pop(ws, None) or self._accepting
    if cycle is not None:
        cycle.disconnect(kw.get("code", 1006), kw.get("reason", ""))


def ac_request(self: GAsgiServer, event: Event) -> None:
    channel = event.kw["channel"]
    request = event.kw["request"]
    if not self._serving:
        self._early.append((channel, request))
        return
    self._start_cycle(channel, request)


def ac_request_body(self: GAsgiServer, event: Event) -> None:
    kw = event.kw
    cycle = self._cycles.get(kw["channel"])
    if cycle is not None and cycle.request is kw["request"]:
        cycle.body_arrived(kw.get("data", b""), bool(kw.get("more")))


def ac_transmit_ready(self: GAsgiServer, event: Event) -> None:
    kw = event.kw
    ws = kw.get("ws")
    if ws is not None:
        ws_cycle = self._ws_cycles.get(ws)
        if ws_cycle is not None:
            ws_cycle.wake_writer()
        return
    cycle = self._cycles.get(kw.get("channel") or event.source[-1])
    if cycle is not None:
        cycle.wake_writer()


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
GASGISERVER_FSM: Final[dict[str, Any]] = {
    "event_list": (
        "EV_HTTP_CHANNEL_OPENED: bottom input",
        "EV_HTTP_CHANNEL_CLOSED: bottom input",
        "EV_HTTP_REQUEST: bottom input",
        "EV_HTTP_REQUEST_BODY: bottom input",
        "EV_TRANSMIT_READY: bottom input",
        "EV_ON_OPEN: bottom input",
        "EV_ON_MESSAGE: bottom input",
        "EV_ON_CLOSE: bottom input",
    ),
    "state_list": ("ST_IDLE",),
    "machine": {
        "ST_IDLE": (
            ("EV_HTTP_CHANNEL_OPENED", ac_channel_opened, None),
            ("EV_HTTP_CHANNEL_CLOSED", ac_channel_closed, None),
            ("EV_HTTP_REQUEST", ac_request, None),
            ("EV_HTTP_REQUEST_BODY", ac_request_body, None),
            ("EV_TRANSMIT_READY", ac_transmit_ready, None),
            ("EV_ON_OPEN", ac_ws_open, None),
            ("EV_ON_MESSAGE", ac_ws_message, None),
            ("EV_ON_CLOSE", ac_ws_close, None),
        ),
    },
}


# ----------------------------------------------------------------------------------------
#   Helpers
# ----------------------------------------------------------------------------------------
class _HttpCycle:
    """One request: its scope, its ``receive`` and ``send``, its response state."""

    __slots__ = (
        "body_chunks",
        "body_done",
        "channel",
        "complete",
        "disconnected",
        "headers",
        "headers_sent",
        "pull_pending",
        "request",
        "server",
        "status",
        "task",
        "unyielded",
        "waiter",
    )

    def __init__(self, server: GAsgiServer, channel: GObj, request: Any) -> None:
        self.server = server
        self.channel = channel
        self.request = request
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_sent = False
        self.complete = False
        self.disconnected = False
        self.body_done = False
        self.body_chunks: list[tuple[bytes, bool]] = []
        self.pull_pending = False
        self.unyielded = 0
        #: The future receive() or send() is waiting on (at most one of each at a time;
        #: one slot suffices since a task awaits one thing at a time, and a second task
        #: calling receive() while send() waits is woken harmlessly).
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    # -- loop events ---------------------------------------------------------------------
    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def disconnect(self) -> None:
        self.disconnected = True
        self._wake()

    def body_arrived(self, data: bytes, more: bool) -> None:
        self.pull_pending = False
        self.body_chunks.append((data, more))
        self._wake()

    def wake_writer(self) -> None:
        self._wake()

    async def _wait(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            waiter = self.waiter = asyncio.get_running_loop().create_future()
        await waiter

    # -- ASGI ----------------------------------------------------------------------------
    async def receive(self) -> dict[str, Any]:
        for _ in range(1_000_000_000):  # each pass waits for an event: bounded by them
            if self.disconnected or self.complete:
                return _DISCONNECT
            request = self.request
            if not self.body_done and not request.streaming:
                self.body_done = True
                return {"type": "http.request", "body": request.body, "more_body": False}
            if self.body_chunks:
                chunks = self.body_chunks
                self.body_chunks = []
                more = chunks[-1][1]
                if not more:
                    self.body_done = True
                data = chunks[0][0] if len(chunks) == 1 else b"".join(c[0] for c in chunks)
                return {"type": "http.request", "body": data, "more_body": more}
            if not self.body_done and not self.pull_pending:
                self.pull_pending = True
                self.server.send_event(self.channel, "EV_HTTP_READ_BODY", request=request)
                continue  # the body may have arrived inside that call
            await self._wait()
        return _DISCONNECT  # pragma: no cover - not reachable in practice

    async def send(self, message: Any) -> None:
        try:
            kind = message["type"]
        except (TypeError, KeyError):
            raise AsgiProtocolError(
                f"an ASGI message must be a dict with 'type', not {message!r}"
            ) from None
        if self.disconnected:
            return
        if self.status == 0:
            if kind != "http.response.start":
                raise AsgiProtocolError(f"expected 'http.response.start', got {kind!r}")
            self.status, self.headers = response_start(message)
            return
        if self.complete:
            raise AsgiProtocolError(f"{kind!r} sent after the response completed")
        if kind != "http.response.body":
            raise AsgiProtocolError(f"expected 'http.response.body', got {kind!r}")
        body, more = response_body(message)
        server = self.server
        channel = self.channel
        request = self.request
        if not self.headers_sent:
            self.headers_sent = True
            if not more:
                self.complete = True
                server._forget(self)
                server.send_event(
                    channel,
                    "EV_HTTP_RESPONSE",
                    request=request,
                    status=self.status,
                    headers=self.headers,
                    body=body,
                )
                return
            server.send_event(
                channel,
                "EV_HTTP_RESPONSE_START",
                request=request,
                status=self.status,
                headers=self.headers,
            )
        if body:
            if (
                server.send_event(channel, "EV_HTTP_RESPONSE_DATA", request=request, data=body)
                == -1
            ):
                self.disconnect()
                return
            self.unyielded += len(body)
        if not more:
            self.complete = True
            server._forget(self)
            server.send_event(channel, "EV_HTTP_RESPONSE_END", request=request)
            return
        if not server._has_room(channel):
            self.unyielded = 0
            while not self.disconnected and not server._has_room(channel):
                await self._wait()
        elif self.unyielded >= _YIELD_EVERY:
            # The connection takes all we give: let the loop do its I/O now and then (a
            # peer that closed must be seen) rather than run this producer forever.
            self.unyielded = 0
            await asyncio.sleep(0)

    # -- the task ------------------------------------------------------------------------
    async def run(self, app: Any, scope: dict[str, Any]) -> None:
        server = self.server
        try:
            await app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            self._cut()
            raise
        except BaseException as exc:
            server._log_app_error(self, exc)
            self._fail(exc)
        else:
            if not self.complete and not self.disconnected:
                what = "starting" if not self.headers_sent and not self.status else "completing"
                (server.logger or _LOG).error(
                    "ASGI callable returned without %s response (%s %s).",
                    what,
                    self.request.method,
                    self.request.path,
                )
                self._fail()
        finally:
            server._forget(self)
            server._tasks.pop(self, None)

    def _fail(self, exc: BaseException | None = None) -> None:
        if self.complete or self.disconnected:
            return
        self.complete = True
        server = self.server
        server._forget(self)
        if self.headers_sent:
            server.send_event(self.channel, "EV_DROP")
            return
        self.headers_sent = True
        body = _ERROR_BODY
        if exc is not None and server.config.expose_tracebacks:
            body += b"\n\n" + "".join(traceback.format_exception(exc)).encode("utf-8", "replace")
        server.send_event(
            self.channel,
            "EV_HTTP_RESPONSE",
            request=self.request,
            status=500,
            headers=_ERROR_HEADERS,
            body=body,
        )

    def _cut(self) -> None:
        if not self.complete and not self.disconnected and not self.channel._destroyed:
            self.complete = True
            self.server.send_event(self.channel, "EV_DROP")


def _request_task_factory(loop: asyncio.AbstractEventLoop) -> Callable[..., asyncio.Task[None]]:
    """How a request's task is made: on Python 3.12+ an *eager* task — it runs at once,
    inside ``EV_HTTP_REQUEST``'s action, until it first waits, so a response the
    application can give without waiting goes out in the same loop iteration as the
    request came in (no scheduling hop); before 3.12, ``loop.create_task``.  Both are
    real tasks (``asyncio.current_task()``, contextvars and cancellation as usual)."""
    if sys.version_info >= (3, 12):
        return functools.partial(asyncio.Task, loop=loop, **_EAGER)
    return loop.create_task


# Passed as ** so that the 3.11 type stubs do not see a keyword they lack.
_EAGER: Final[dict[str, Any]] = {"eager_start": True}


def _no_loop(coro: Any) -> asyncio.Task[None]:
    coro.close()
    raise RuntimeError("GAsgiServer: requests before the loop runs")


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
class GAsgiServer(GObj):
    """ASGI server gobj (see the module documentation)."""

    def __init__(self) -> None:
        GObj.__init__(self, GASGISERVER_FSM, GASGISERVER_GCONFIG)
        self.http_server: GHttpServer | None = None
        self._app: Any = None
        self._lifespan: Lifespan | None = None
        self._serving = False
        self._early: list[tuple[GObj, Any]] = []
        self._peers: dict[GObj, Any] = {}
        self._cycles: dict[GObj, _HttpCycle] = {}
        self._tasks: dict[_HttpCycle | WebSocketCycle, asyncio.Task[None]] = {}
        #: websocket scopes, by channel until the accept, then by GWebSocket
        self._ws_cycles: dict[GObj, WebSocketCycle] = {}
        #: the scope whose accept is being made (the GWebSocket's first events come then)
        self._accepting: WebSocketCycle | None = None
        self._ws_config: dict[str, Any] | None = {}
        self._lifespan_task: asyncio.Task[None] | None = None
        self._server_addr: tuple[str, int] | None = None
        self._upgrade_noted = False
        self.startup_error: str | None = None
        # Read once per request: kept here rather than looked up in the config.
        self._root_path = ""
        self._scheme = "http"
        self._scope_state: dict[str, Any] | None = None
        self._create_task: Callable[..., asyncio.Task[None]] = _no_loop

    # ------------------------------------------------------------------------------------
    #   Life cycle
    # ------------------------------------------------------------------------------------
    def start_up(self) -> None:
        config = self.config
        if config.application is None:
            raise AppNotFound(f"{self!r}: no application given (parameter 'application')")
        self._app = load_application(config.application)
        params = {name: getattr(config, name) for name in _HTTP_PARAMS}
        self.http_server = self.create_gobj(
            self.name or "http-server", GHttpServer, self, subscriber=self, **params
        )
        port = int(self.http_server.config.port)
        self.write_parameters(port=port)
        self._server_addr = (config.host or "0.0.0.0", port)
        self._root_path = config.root_path
        self._scheme = config.url_scheme or ("https" if config.ssl_options else "http")
        ws_config = config.websocket
        if ws_config is not None:
            # the scope's receive() acknowledges each message: reading pauses at max_queue
            ws_config = {**ws_config, "ack_messages": True}
        self._ws_config = ws_config
        self._lifespan = Lifespan(self._app, config.lifespan, self.logger or _LOG)
        gaplic = self.gaplic
        gaplic.add_shutdown_callback(self._on_shutdown)
        gaplic.add_callback(self._begin)

    def go_out(self) -> None:
        gaplic = self.gaplic
        if gaplic is not None:
            gaplic.remove_shutdown_callback(self._on_shutdown)
        for cycle in list(self._cycles.values()):
            cycle.disconnect()
        for ws_cycle in list(self._ws_cycles.values()):
            ws_cycle.disconnect()
        for task in list(self._tasks.values()):
            task.cancel()
        if self._lifespan_task is not None:
            self._lifespan_task.cancel()
        if self._lifespan is not None:
            self._lifespan.cancel()

    @property
    def serving(self) -> bool:
        """The lifespan start-up is over and requests are being served."""
        return self._serving

    def getsockname(self) -> Any:
        """The listening address."""
        assert self.http_server is not None
        return self.http_server.get_sockname()

    def _begin(self) -> None:
        if self._destroyed:
            return
        self._create_task = _request_task_factory(self.gaplic.loop)
        self._lifespan_task = self.gaplic.loop.create_task(self._startup())

    async def _startup(self) -> None:
        lifespan = self._lifespan
        assert lifespan is not None
        ok = await lifespan.startup()
        if self._destroyed:
            return
        if not ok:
            self.startup_error = lifespan.error or "lifespan startup failed"
            (self.logger or _LOG).error(
                "%s: ASGI lifespan startup failed: %s; stopping",
                self.name or "GAsgiServer",
                self.startup_error.strip(),
            )
            self._early.clear()
            self.gaplic.exit_code = EXIT_STARTUP_FAILED
            self.gaplic.stop()
            return
        self._serving = True
        if lifespan.supported:
            self._scope_state = lifespan.state
        early, self._early = self._early, []
        for channel, request in early:
            if channel in self._peers:
                self._start_cycle(channel, request)
        callback: Callable[[], Any] | None = self.config.ready_callback
        if callback is not None:
            callback()

    async def _on_shutdown(self) -> None:
        try:
            for _ in range(1_000_000):  # bounded by the GAplic's shutdown_grace anyway
                if not self._tasks:
                    break
                await asyncio.sleep(0.01)
            if self._lifespan is not None and self._serving:
                await self._lifespan.shutdown()
        finally:
            for task in list(self._tasks.values()):
                task.cancel()
            if self._lifespan is not None:
                self._lifespan.cancel()
            if self._lifespan_task is not None and not self._lifespan_task.done():
                self._lifespan_task.cancel()

    # ------------------------------------------------------------------------------------
    #   Requests
    # ------------------------------------------------------------------------------------
    def _start_cycle(self, channel: GObj, request: Any) -> None:
        if request.upgrade and self._ws_config is not None and is_websocket_request(request):
            self._start_ws_cycle(channel, request, self._ws_config)
            return
        if request.upgrade and not self._upgrade_noted:
            self._upgrade_noted = True
            (self.logger or _LOG).info(
                "%s: upgrade requests are served as plain HTTP (websocket=None)",
                self.name or "GAsgiServer",
            )
        scope = build_http_scope(
            request,
            server=self._server_addr,
            client=self._peers.get(channel),
            root_path=self._root_path,
            scheme=request.url_scheme or self._scheme,
            state=self._scope_state,
        )
        cycle = _HttpCycle(self, channel, request)
        self._cycles[channel] = cycle
        cycle.task = task = self._create_task(cycle.run(self._app, scope))
        if not task.done():  # an eager task may have run to its end already
            self._tasks[cycle] = task

    def _start_ws_cycle(self, channel: GObj, request: Any, ws_config: dict[str, Any]) -> None:
        scheme = request.url_scheme or self._scheme
        scope = build_websocket_scope(
            request,
            server=self._server_addr,
            client=self._peers.get(channel),
            root_path=self._root_path,
            scheme=_WS_SCHEMES.get(scheme, scheme),
            state=self._scope_state,
        )
        cycle = WebSocketCycle(self, channel, request, ws_config)
        self._ws_cycles[channel] = cycle
        cycle.task = task = self._create_task(cycle.run(self._app, scope))
        if not task.done():
            self._tasks[cycle] = task

    def _ws_opened(self, cycle: WebSocketCycle, ws: GObj) -> None:
        cycle.ws = ws
        if self._ws_cycles.get(cycle.channel) is cycle:
            del self._ws_cycles[cycle.channel]
        self._ws_cycles[ws] = cycle

    def _ws_forget(self, cycle: WebSocketCycle) -> None:
        for key in (cycle.channel, cycle.ws):
            if key is not None and self._ws_cycles.get(key) is cycle:
                del self._ws_cycles[key]
        ws = cycle.ws
        if cycle.messages and ws is not None and not ws._destroyed:
            # never read: acknowledged, so the connection can still finish closing
            self.send_event(ws, "EV_ACK_MESSAGE", count=len(cycle.messages))
        cycle.messages.clear()

    def _make_http_cycle(self, channel: GObj, request: Any) -> _HttpCycle:
        """A plain HTTP response cycle (a websocket scope's denial response)."""
        return _HttpCycle(self, channel, request)

    def _forget(self, cycle: _HttpCycle) -> None:
        if self._cycles.get(cycle.channel) is cycle:
            del self._cycles[cycle.channel]

    @staticmethod
    def _has_room(channel: Any) -> bool:
        return bool(channel.can_write())

    def _log_app_error(self, cycle: _HttpCycle, exc: BaseException) -> None:
        (self.logger or _LOG).error(
            "Exception in ASGI application (%s %s): %r",
            cycle.request.method,
            cycle.request.path,
            exc,
            exc_info=exc,
        )
