"""``GWsgiServer``: a WSGI (PEP 3333) server, its applications run in a bounded thread pool.

ginsfsm's GWsgiServer ran the application synchronously inside the loop: one slow request
stopped every connection.  Here the loop only parses and writes; the application runs on
one of ``threads`` worker threads, and the response it produces comes back through a
bounded hand-off (``fsmio.protocols.wsgi.gateway``).

It *owns* a ``GHttpServer`` child (named like itself, so ginsfsm's dotted ini settings such
as ``wsgi-server.port`` reach both), subscribed to its events, as ginsfsm's did.  It is not
a subclass: the HTTP server's FSM stays its own, and a WSGI server is "a subscriber of
HTTP requests that answers them with an application", which is exactly the HTTP layer's
public event contract.

Configuration: every ``GHttpServer`` parameter (``host``, ``port``, ``ssl_options``,
``backlog``, ``identity``, ``url_scheme``, ``expose_tracebacks``, the limits and timeouts;
see ``docs/http.md``) is passed to the child, plus:

====================  =====  =======  =====================================================
name                  type   default  description
====================  =====  =======  =====================================================
application           None   None     The WSGI application: a callable, a name registered
                                      with ``set_global_app``, or ``'module:attr'``.  A name
                                      not registered yet is resolved at the first request
                                      (ginsfsm's apps were loaded after the GAplic).
threads               int    8        Worker threads; when all are busy, new requests wait
                                      and their connections stop being read.
wsgi_spool_size       int    524288   A request body bigger than this is spooled to an
                                      unlinked temporary file before the app runs.
wsgi_output_window    int    262144   Response bytes a worker may hand over ahead of the
                                      client; past it the worker waits for the client.
script_name           str    ''       Mount point: ``SCRIPT_NAME`` of every request
                                      (a path starting with ``/``, or '').
ready_callback        None   None     Called (no arguments, on the loop) once the loop
                                      runs and the server serves.
====================  =====  =======  =====================================================

Input events (bottom, from the GHttpServer): ``EV_HTTP_CHANNEL_OPENED``,
``EV_HTTP_REQUEST``, ``EV_HTTP_REQUEST_BODY``, ``EV_TRANSMIT_READY``,
``EV_HTTP_CHANNEL_CLOSED``.  Internal (posted from worker threads):
``EV_WSGI_OUTPUT(exchange)``.

No output events.

Theory of operation
-------------------
``EV_HTTP_REQUEST``: a small body is complete in the request; a streamed one is pulled
(``EV_HTTP_READ_BODY``; this sends ``100 Continue`` when asked) into a
``SpooledTemporaryFile`` — memory up to ``wsgi_spool_size``, an unlinked file beyond —
*before* a thread is taken: a slow uploader ties up no worker (waitress does the same).
The body's size and pace are bounded by the HTTP layer's ``max_request_body_size`` and
``body_timeout``.

Then the request is given to a worker if one is free.  If not, it waits in a FIFO and
its connection is paused (``EV_PAUSE_READING``); each connection has at most one
request here (the channel answers in order and holds its pipelined requests), so the
FIFO is bounded by the number of connections, and nothing is lost: every waiting request
runs when a worker frees, and reading resumes.

The worker posts ``EV_WSGI_OUTPUT`` when the response is committed, for later chunks, and
when it finishes (at most one pending: ``GAplic.enqueue_event_threadsafe``).  The loop
then sends, in order: the whole response in one ``EV_HTTP_RESPONSE`` if the worker has
already finished (the common case: Content-Length computed), else
``EV_HTTP_RESPONSE_START`` and ``EV_HTTP_RESPONSE_DATA`` while the connection has room,
waiting for ``EV_TRANSMIT_READY`` when it has none, and ``EV_HTTP_RESPONSE_END``.  An
application failing after the status went out gets its connection dropped
(``EV_DROP``): the client sees a truncated response, never a wrong one.

``EV_HTTP_CHANNEL_CLOSED`` aborts the connection's exchange: a worker waiting to hand
over gets ``ClientDisconnected``; ``close()`` of the response iterable is still called.
On the GAplic's stop, running workers get ``shutdown_grace`` to finish.

Differences from ginsfsm: the application never runs on the loop; ``start_response`` has
PEP 3333's ``exc_info`` rules; ``close()`` is always called; ``wsgi.file_wrapper`` is
given (its blocks are read on the worker); an application error is a 500 (traceback only
with ``expose_tracebacks``) logged once; ``ginsfsm.channel`` / ``ginsfsm.gsock`` are not in
the environ (gobjs belong to the loop's thread).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import logging
import tempfile
from typing import IO, Any, Final

from fsmio.core.event import Event, new_event
from fsmio.core.gconfig import add_gconfig, non_negative_int, positive_int
from fsmio.core.gobj import GObj
from fsmio.protocols.apps import AppNotFound, load_application, mount_point
from fsmio.protocols.http.c_http_server import GHTTPSERVER_GCONFIG, GHttpServer

from .gateway import WsgiExchange, build_environ
from .workers import WorkerPool

__all__ = ["GWSGISERVER_FSM", "GWSGISERVER_GCONFIG", "GWsgiServer"]

_LOG = logging.getLogger("fsmio")


# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
GWSGISERVER_GCONFIG: Final[dict[str, list[Any]]] = add_gconfig(
    GHTTPSERVER_GCONFIG,
    {
        "application": [
            None,
            None,
            0,
            None,
            "WSGI application: a callable, a set_global_app name, or 'module:attr'.",
        ],
        "threads": [int, 8, 0, positive_int, "Worker threads running the application."],
        "wsgi_spool_size": [
            int,
            512 * 1024,
            0,
            non_negative_int,
            "Request bodies above this many bytes are spooled to a temporary file.",
        ],
        "wsgi_output_window": [
            int,
            256 * 1024,
            0,
            positive_int,
            "Response bytes a worker may hand over ahead of the client.",
        ],
        "script_name": [str, "", 0, mount_point, "SCRIPT_NAME (mount point) of every request."],
        "ready_callback": [None, None, 0, None, "Called on the loop once the server serves."],
    },
)

# The GHttpServer parameters handed to the child (the subscriber is this gobj).
_HTTP_PARAMS: Final = tuple(name for name in GHTTPSERVER_GCONFIG if name != "subscriber")


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_channel_opened(self: GWsgiServer, event: Event) -> None:
    self._peers[event.kw["channel"]] = event.kw.get("peername")


def ac_channel_closed(self: GWsgiServer, event: Event) -> None:
    channel = event.kw["channel"]
    self._peers.pop(channel, None)
    exchange = self._exchanges.pop(channel, None)
    if exchange is not None:
        exchange.abort()
        exchange.ended = True
        _close_spool(exchange)
        with contextlib.suppress(ValueError):
            self._waiting.remove(exchange)


def ac_request(self: GWsgiServer, event: Event) -> None:
    channel = event.kw["channel"]
    request = event.kw["request"]
    exchange = self._new_exchange(channel, request)
    if exchange is None:
        return
    if request.streaming:
        # The exchange owns it: _close_spool() closes it when the exchange ends.
        spool = tempfile.SpooledTemporaryFile(max_size=self.config.wsgi_spool_size)  # noqa: SIM115
        exchange.spool = spool
        self.send_event(channel, "EV_HTTP_READ_BODY", request=request)
        return
    self._dispatch(exchange)


def ac_request_body(self: GWsgiServer, event: Event) -> None:
    kw = event.kw
    exchange = self._exchanges.get(kw["channel"])
    if exchange is None or exchange.request is not kw["request"] or exchange.spool is None:
        return
    data = kw.get("data", b"")
    if data:
        try:
            exchange.spool.write(data)
        except OSError as exc:  # the spool file could not grow (disk full...)
            (self.logger or _LOG).error(
                "%r: spooling a request body failed: %s; 503 and close", self, exc
            )
            self._forget(exchange)
            _close_spool(exchange)
            self.send_event(
                kw["channel"],
                "EV_HTTP_RESPONSE",
                request=kw["request"],
                status=503,
                headers=[("Content-Type", "text/plain"), ("Connection", "close")],
                body=b"Service Unavailable\n",
            )
            return
    if kw.get("more"):
        self.send_event(kw["channel"], "EV_HTTP_READ_BODY", request=kw["request"])
        return
    exchange.spool.seek(0)
    exchange.environ["wsgi.input"] = exchange.spool
    self._dispatch(exchange)


def ac_output(self: GWsgiServer, event: Event) -> None:
    exchange: WsgiExchange = event.kw["exchange"]
    exchange.woken()
    self._pump(exchange)


def ac_transmit_ready(self: GWsgiServer, event: Event) -> None:
    exchange = self._exchanges.get(event.kw.get("channel") or event.source[-1])
    if exchange is not None and exchange.waiting_ready:
        exchange.waiting_ready = False
        self._pump(exchange)


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
GWSGISERVER_FSM: Final[dict[str, Any]] = {
    "event_list": (
        "EV_HTTP_CHANNEL_OPENED: bottom input",
        "EV_HTTP_CHANNEL_CLOSED: bottom input",
        "EV_HTTP_REQUEST: bottom input",
        "EV_HTTP_REQUEST_BODY: bottom input",
        "EV_TRANSMIT_READY: bottom input",
        "EV_WSGI_OUTPUT: bottom input",
    ),
    "state_list": ("ST_IDLE",),
    "machine": {
        "ST_IDLE": (
            ("EV_HTTP_CHANNEL_OPENED", ac_channel_opened, None),
            ("EV_HTTP_CHANNEL_CLOSED", ac_channel_closed, None),
            ("EV_HTTP_REQUEST", ac_request, None),
            ("EV_HTTP_REQUEST_BODY", ac_request_body, None),
            ("EV_TRANSMIT_READY", ac_transmit_ready, None),
            ("EV_WSGI_OUTPUT", ac_output, None),
        ),
    },
}


# ----------------------------------------------------------------------------------------
#   Helpers
# ----------------------------------------------------------------------------------------
def _body_file(body: bytes) -> IO[bytes]:
    return io.BytesIO(body)


def _close_spool(exchange: WsgiExchange) -> None:
    spool = exchange.spool
    if spool is not None:
        exchange.spool = None
        spool.close()


def _set_reading(server: GObj, channel: Any, on: bool) -> None:
    """Hold (or let go) reading from a connection whose request waits for a worker.

    The channel combines this hold with its own reasons to pause (``max_pipeline``
    reached...), so neither undoes the other.
    """
    if channel._destroyed:
        return
    server.send_event(channel, "EV_RESUME_READING" if on else "EV_PAUSE_READING")


def _server_name(host: str) -> str:
    if not host or host in ("0.0.0.0", "::", "[::]"):
        return "localhost"
    return host


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
class GWsgiServer(GObj):
    """WSGI server gobj (see the module documentation)."""

    def __init__(self) -> None:
        GObj.__init__(self, GWSGISERVER_FSM, GWSGISERVER_GCONFIG)
        self.http_server: GHttpServer | None = None
        self._app: Any = None
        self._pool: WorkerPool | None = None
        self._peers: dict[GObj, Any] = {}
        self._exchanges: dict[GObj, WsgiExchange] = {}
        self._waiting: collections.deque[WsgiExchange] = collections.deque()
        self._running = 0
        self.server_name = "localhost"
        self.effective_host = ""
        self.effective_port = 0

    # ------------------------------------------------------------------------------------
    #   Life cycle
    # ------------------------------------------------------------------------------------
    def start_up(self) -> None:
        config = self.config
        if config.application is None:
            raise AppNotFound(f"{self!r}: no application given (parameter 'application')")
        if callable(config.application):
            self._app = config.application
        else:
            try:
                self._app = load_application(config.application)
            except AppNotFound:
                if ":" in str(config.application):
                    raise  # a module path that does not import: say so now
                self._app = None  # a name registered later (ginsfsm's ini files)
        params = {name: getattr(config, name) for name in _HTTP_PARAMS}
        self.http_server = self.create_gobj(
            self.name or "http-server", GHttpServer, self, subscriber=self, **params
        )
        self.effective_port = int(self.http_server.config.port)
        self.write_parameters(port=self.effective_port)
        self.effective_host = config.host
        self.server_name = _server_name(config.host)
        self._pool = WorkerPool(config.threads, name=f"wsgi-{self.name or 'server'}")
        (self.logger or _LOG).info(
            "%s: serving WSGI on %s://%s:%d (%d worker threads)",
            self.name or "GWsgiServer",
            config.url_scheme or ("https" if config.ssl_options else "http"),
            config.host or "0.0.0.0",
            self.effective_port,
            config.threads,
        )
        if self.gaplic is not None:
            self.gaplic.add_shutdown_callback(self._on_shutdown)
            if config.ready_callback is not None:
                self.gaplic.add_callback(config.ready_callback)

    def go_out(self) -> None:
        if self.gaplic is not None:
            self.gaplic.remove_shutdown_callback(self._on_shutdown)
        for exchange in list(self._exchanges.values()):
            exchange.abort()
            _close_spool(exchange)
        self._exchanges.clear()
        self._waiting.clear()
        if self._pool is not None:
            self._pool.shutdown()

    def getsockname(self) -> Any:
        """The listening address (ginsfsm's name)."""
        assert self.http_server is not None
        return self.http_server.get_sockname()

    @property
    def running(self) -> int:
        """Requests being run by a worker now."""
        return self._running

    @property
    def waiting(self) -> int:
        """Requests waiting for a free worker."""
        return len(self._waiting)

    # ------------------------------------------------------------------------------------
    #   Requests
    # ------------------------------------------------------------------------------------
    def select_app(self, request: Any) -> Any:
        """The application for ``request`` (ginsfsm's hook; override to choose per
        request).  A registered name is resolved at the first request."""
        if self._app is None:
            self._app = load_application(self.config.application)
        return self._app

    def _new_exchange(self, channel: GObj, request: Any) -> WsgiExchange | None:
        config = self.config
        try:
            app = self.select_app(request)
        except AppNotFound as exc:
            (self.logger or _LOG).error("%r: %s", self, exc)
            self.send_event(
                channel,
                "EV_HTTP_RESPONSE",
                request=request,
                status=500,
                headers=[(b"content-type", b"text/plain; charset=utf-8")],
                body=b"Internal Server Error\n",
            )
            return None
        peer = self._peers.get(channel)
        remote_addr, remote_port = (str(peer[0]), peer[1]) if isinstance(peer, tuple) else ("", "")
        environ = build_environ(
            request,
            server_name=self.server_name,
            server_port=self.effective_port,
            remote_addr=remote_addr,
            remote_port=remote_port,
            url_scheme=getattr(request, "url_scheme", None) or config.url_scheme or "http",
            script_name=config.script_name,
            wsgi_input=_body_file(request.body) if request.body else None,
        )
        exchange = WsgiExchange(
            app,
            environ,
            self._wake,
            window=config.wsgi_output_window,
            logger=self.logger or _LOG,
            expose_tracebacks=config.expose_tracebacks,
        )
        exchange.request = request
        exchange.channel = channel
        self._exchanges[channel] = exchange
        return exchange

    def _wake(self, exchange: WsgiExchange) -> None:
        """From a worker thread: the loop has output (or the end) to look at."""
        gaplic = self.gaplic
        gaplic.enqueue_event_threadsafe(
            new_event(self, "EV_WSGI_OUTPUT", [], {"exchange": exchange})
        )

    def _dispatch(self, exchange: WsgiExchange) -> None:
        pool = self._pool
        assert pool is not None
        if pool.closed:  # stopping: a request read from a connection still draining
            self._forget(exchange)
            _close_spool(exchange)
            self.send_event(
                exchange.channel,
                "EV_HTTP_RESPONSE",
                request=exchange.request,
                status=503,
                headers=[("Content-Type", "text/plain"), ("Connection", "close")],
                body=b"Service Unavailable\n",
            )
            return
        if self._running < pool.size:
            self._start(exchange)
            return
        self._waiting.append(exchange)
        _set_reading(self, exchange.channel, False)

    def _start(self, exchange: WsgiExchange) -> None:
        assert self._pool is not None
        self._running += 1
        exchange.counted = True
        self._pool.submit(exchange.run)

    def _worker_done(self, exchange: WsgiExchange) -> None:
        if not exchange.counted:
            return
        exchange.counted = False
        self._running -= 1
        _close_spool(exchange)
        while self._waiting and self._running < (self._pool.size if self._pool else 0):
            following = self._waiting.popleft()
            if following.aborted:
                continue
            _set_reading(self, following.channel, True)
            self._start(following)

    # ------------------------------------------------------------------------------------
    #   Responses
    # ------------------------------------------------------------------------------------
    def _pump(self, exchange: WsgiExchange) -> None:
        """Write what the worker handed over, as far as the connection takes it."""
        if exchange.all_in():
            self._worker_done(exchange)
        if exchange.ended or exchange.aborted:
            return
        channel = exchange.channel
        request = exchange.request
        if not exchange.started:
            if exchange.all_in():
                body = exchange.take_all()
                exchange.ended = True
                self._forget(exchange)
                if exchange.broken:
                    self.send_event(channel, "EV_DROP")
                    return
                assert exchange.status is not None
                self.send_event(
                    channel,
                    "EV_HTTP_RESPONSE",
                    request=request,
                    status=exchange.status,
                    headers=exchange.headers,
                    body=body,
                )
                return
            assert exchange.status is not None
            exchange.started = True
            self.send_event(
                channel,
                "EV_HTTP_RESPONSE_START",
                request=request,
                status=exchange.status,
                headers=exchange.headers,
            )
        budget = self.config.wsgi_output_window
        while True:
            if not self._has_room(channel):
                exchange.waiting_ready = True
                return
            if budget <= 0:
                # The connection takes all we give and the worker keeps producing: go on
                # from the queue, after the loop's I/O (a peer that closed must be seen).
                self.post_event(self, "EV_WSGI_OUTPUT", exchange=exchange)
                return
            chunk = exchange.pop_chunk()
            if chunk is None:
                break
            budget -= len(chunk)
            if self.send_event(channel, "EV_HTTP_RESPONSE_DATA", request=request, data=chunk) == -1:
                exchange.abort()
                return
        if exchange.all_in() and not exchange.has_chunks():
            exchange.ended = True
            self._forget(exchange)
            if exchange.broken:
                self.send_event(channel, "EV_DROP")
            else:
                self.send_event(channel, "EV_HTTP_RESPONSE_END", request=request)

    def _forget(self, exchange: WsgiExchange) -> None:
        if self._exchanges.get(exchange.channel) is exchange:
            del self._exchanges[exchange.channel]

    @staticmethod
    def _has_room(channel: Any) -> bool:
        """Whether the connection takes more output now (else: wait for
        EV_TRANSMIT_READY)."""
        return bool(channel.can_write())

    # ------------------------------------------------------------------------------------
    #   Shutdown
    # ------------------------------------------------------------------------------------
    def _on_shutdown(self) -> Any:
        if not self._running:
            if self._pool is not None:
                self._pool.shutdown()
            return None
        return self._drain()

    async def _drain(self) -> None:
        try:
            for _ in range(1_000_000):  # bounded by the GAplic's shutdown_grace anyway
                if not self._running:
                    return
                await asyncio.sleep(0.01)
        finally:
            for exchange in list(self._exchanges.values()):
                exchange.abort()
            if self._pool is not None:
                self._pool.shutdown()
