"""``GHttpServer``: an HTTP/1.1 server; one ``GHttpCliSrv`` channel per connection.

It owns a ``GServerSock`` (TLS with ``ssl_options``).  For each accepted connection it
creates a channel ``channel_<hex n>`` that takes the GSock's events over; the channels'
output events go to ``subscriber`` (None: the server's parent).  A channel is destroyed
(through the queue, after its subscriber got ``EV_HTTP_CHANNEL_CLOSED``) once it closes.

Configuration (ginsfsm's names first; every time is in seconds, a float):

=============================  =====  ==========  =========================================
name                           type   default     description
=============================  =====  ==========  =========================================
subscriber                     None   None        Gets the channels' output events; None:
                                                  the server's parent.
host                           str    ''          Address to listen on ('' = all).
port                           int    0           Port; 0 = a free one (written back).
ssl_options                    dict   {}          TLS (a dict, see ``fsmio.gobjs.tls``, or
                                                  an ``ssl.SSLContext``).
backlog                        int    1024        listen() backlog.
identity                       str    'fsmio'     The ``Server`` header; '' for none.
url_scheme                     str    ''          ``request.url_scheme``; '' = ``https``
                                                  with TLS, else ``http``.
expose_tracebacks              bool   False       Put the exception in 500 responses.
maximum_simultaneous_requests  int    0           Requests queued on one connection (read,
                                                  not yet answered) before reading pauses;
                                                  0 = ``max_pipeline`` alone.
inactivity_timeout             float  18000       No byte either way while a response is
                                                  streamed (or, with responseless_timeout 0,
                                                  awaited) for this long: close.
responseless_timeout           float  60          The application has not started a
                                                  response this long after the request was
                                                  delivered: 504 and close.  0 = off.
max_request_header_size        int    262144      Header block limit (bytes) -> 431.
max_request_body_size          int    1073741824  Body limit -> 413 (before reading when
                                                  Content-Length says so).
inbuf_overflow                 int    524288      ginsfsm's; accepted, unused (bodies above
                                                  ``max_buffered_body`` are streamed).
origins                        None   None        ginsfsm's (never implemented); unused.
n_channels                     int    0           Written: open channels.
n_websockets                   int    0           Written: open WebSockets made by
                                                  ``EV_HTTP_ACCEPT_WEBSOCKET``.
max_request_line               int    8192        Request-target limit (bytes) -> 414.
max_headers                    int    100         Header field count limit -> 431.
max_pipeline                   int    16          Requests read ahead on one connection
                                                  before reading pauses.
header_timeout                 float  10          A request head must be complete within
                                                  this of its first byte -> 408, close.
body_timeout                   float  30          Longest wait for the next body bytes
                                                  (while they are wanted) -> 408, close.
keepalive_timeout              float  5           Idle keep-alive connections close then.
keep_alive_max_requests        int    1000        Requests per connection (0 = no limit).
auto_read_body                 bool   True        Deliver bodies up to max_buffered_body
                                                  inside EV_HTTP_REQUEST; False: always
                                                  streamed (pulled with EV_HTTP_READ_BODY).
max_buffered_body              int    65536       See auto_read_body.
drain_timeout                  float  30          On shutdown: in-flight responses may
                                                  finish within this (bounded also by the
                                                  GAplic's shutdown_grace).
sock_options                   dict   {}          More GServerSock/GSock parameters for the
                                                  connections (outbuf_high_water,
                                                  outbuf_max, tx_buffer_size, reuse_port...).
=============================  =====  ==========  =========================================

Input events:

* ``EV_DROP`` — stop listening (open connections go on).

Output events: none of its own; the channels' (``EV_HTTP_CHANNEL_OPENED``,
``EV_HTTP_REQUEST``, ``EV_HTTP_REQUEST_BODY``, ``EV_HTTP_CHANNEL_CLOSED``,
``EV_TRANSMIT_READY``) go to the subscriber (see ``GHttpCliSrv``).

Bottom events: ``EV_CONNECTED`` from each accepted GSock (the channel is created and
subscribed to the GSock in its place), ``EV_DESTROY_CHANNEL`` (posted to itself),
``EV_DESTROY_WEBSOCKET`` (posted to itself: a GWebSocket its channels made with
``EV_HTTP_ACCEPT_WEBSOCKET`` is this server's child, destroyed after its subscriber got
``EV_ON_CLOSE``; the GWebSocket's ``closed_callback`` tells the server).

Theory of operation
-------------------
The settings every channel needs are gathered once in an ``HttpSettings`` object that
all channels share (a channel has no config of its own beyond its GSock and subscriber:
memory per connection is a goal).  Graceful shutdown: when the GAplic stops, the server
stops listening, closes idle connections at once, lets the ones with a request in flight
finish that response (``Connection: close``) within ``drain_timeout``, and drops the rest;
open WebSockets get a close frame 1001 (going away).

Differences from ginsfsm: channels are destroyed by the server directly told by the
channel (no hard subscription); ``identity`` is honoured (ginsfsm always sent
``ginsfsm-<version>``); ``maximum_simultaneous_requests`` pauses reading instead of
answering an error; the limits and deadlines below ``n_channels`` are new.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Final

from fsmio.core.event import Event
from fsmio.core.gconfig import non_negative_int, non_negative_number, port_number, positive_int
from fsmio.core.gobj import GObj
from fsmio.gobjs.c_srv_sock import GServerSock
from fsmio.protocols.http.c_http_clisrv import GHttpCliSrv, HttpSettings
from fsmio.protocols.websocket.c_websocket import GWebSocket

__all__ = ["GHTTPSERVER_FSM", "GHTTPSERVER_GCONFIG", "GHttpServer"]

_LOG = logging.getLogger("fsmio.http")


def _options(value: Any) -> Any:
    if value is None or value == "":
        return {}
    return value


# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
GHTTPSERVER_GCONFIG: Final[dict[str, list[Any]]] = {
    "subscriber": [None, None, 0, None, "Gets the channels' events; None: the parent."],
    "host": [str, "", 0, None, "Listening host ('' = all interfaces)."],
    "port": [int, 0, 0, port_number, "Listening port (0 = a free one; written back)."],
    "ssl_options": [None, {}, 0, _options, "TLS: a dict of options or an ssl.SSLContext."],
    "backlog": [int, 1024, 0, positive_int, "listen() backlog."],
    "identity": [str, "fsmio", 0, None, "Server header ('' = none)."],
    "url_scheme": [str, "", 0, None, "request.url_scheme ('' = https with TLS, else http)."],
    "expose_tracebacks": [bool, False, 0, None, "Exceptions in 500 responses."],
    "maximum_simultaneous_requests": [
        int,
        0,
        0,
        non_negative_int,
        "Requests queued per connection before reading pauses (0 = max_pipeline).",
    ],
    "inactivity_timeout": [float, 18000.0, 0, non_negative_number, "Idle drop (s)."],
    "responseless_timeout": [float, 60.0, 0, non_negative_number, "No response -> 504 (0=off)."],
    "max_request_header_size": [int, 262144, 0, positive_int, "Header block limit -> 431."],
    "max_request_body_size": [int, 1073741824, 0, non_negative_int, "Body limit -> 413."],
    "inbuf_overflow": [int, 524288, 0, None, "ginsfsm's; unused."],
    "origins": [None, None, 0, None, "ginsfsm's (never implemented); unused."],
    "n_channels": [int, 0, 0, None, "Stats: open channels."],
    "n_websockets": [int, 0, 0, None, "Stats: open WebSockets (EV_HTTP_ACCEPT_WEBSOCKET)."],
    "max_request_line": [int, 8192, 0, positive_int, "Request-target limit -> 414."],
    "max_headers": [int, 100, 0, positive_int, "Header field count limit -> 431."],
    "max_pipeline": [int, 16, 0, positive_int, "Requests read ahead before reading pauses."],
    "header_timeout": [float, 10.0, 0, non_negative_number, "Head deadline -> 408 (0=off)."],
    "body_timeout": [float, 30.0, 0, non_negative_number, "Body idle timeout -> 408 (0=off)."],
    "keepalive_timeout": [float, 5.0, 0, non_negative_number, "Idle keep-alive (0=off)."],
    "keep_alive_max_requests": [int, 1000, 0, non_negative_int, "Requests per connection."],
    "auto_read_body": [bool, True, 0, None, "Deliver small bodies inside EV_HTTP_REQUEST."],
    "max_buffered_body": [int, 65536, 0, non_negative_int, "Largest body read before delivery."],
    "drain_timeout": [float, 30.0, 0, non_negative_number, "Shutdown: in-flight grace (s)."],
    "sock_options": [dict, {}, 0, None, "More GServerSock/GSock parameters."],
}


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_connected(self: GHttpServer, event: Event) -> None:
    gsock = event.__dict__.get("gsock") or event.source[-1]
    self._new_channel(gsock, event.__dict__.get("peername"))


def ac_destroy_channel(self: GHttpServer, event: Event) -> None:
    channel = event.__dict__["channel"]
    if not channel._destroyed:
        GObj.destroy_gobj(channel)


def ac_destroy_websocket(self: GHttpServer, event: Event) -> None:
    ws = event.__dict__["ws"]
    if not ws._destroyed:
        GObj.destroy_gobj(ws)


def ac_stop_listening(self: GHttpServer, event: Event) -> None:
    if self.gserversock is not None:
        self.gserversock.stop_listening()


def ac_ignore(self: GHttpServer, event: Event) -> None:
    return None


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
GHTTPSERVER_FSM: Final[dict[str, Any]] = {
    "event_list": (
        "EV_DROP: top input",
        "EV_CONNECTED: bottom input",
        "EV_DISCONNECTED: bottom input",
        "EV_RX_DATA: bottom input",
        "EV_DESTROY_CHANNEL: bottom input",
        "EV_DESTROY_WEBSOCKET: bottom input",
    ),
    "state_list": ("ST_IDLE",),
    "machine": {
        "ST_IDLE": (
            ("EV_DROP", ac_stop_listening, None),
            ("EV_CONNECTED", ac_connected, None),
            # a connection lost before its channel took it over
            ("EV_DISCONNECTED", ac_ignore, None),
            ("EV_RX_DATA", ac_ignore, None),
            ("EV_DESTROY_CHANNEL", ac_destroy_channel, None),
            ("EV_DESTROY_WEBSOCKET", ac_destroy_websocket, None),
        ),
    },
}


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
class GHttpServer(GObj):
    """An HTTP/1.1 server (see the module documentation)."""

    def __init__(self) -> None:
        GObj.__init__(self, GHTTPSERVER_FSM, GHTTPSERVER_GCONFIG)
        self.gserversock: GServerSock | None = None
        self.settings = HttpSettings()
        self._n_channel = 0
        self._channels: dict[GHttpCliSrv, None] = {}
        self._websockets: dict[GWebSocket, None] = {}
        self._subscriber: Any = None
        self._stopping = False

    def start_up(self) -> None:
        config = self.config
        self.settings = self._make_settings()
        self._subscriber = config.subscriber or self.parent
        # The GAplic calls the sockets' shutdown after this one, so the in-flight
        # responses are marked to finish before the other connections are dropped.
        self.gaplic.add_shutdown_callback(self._shutdown)
        self.gserversock = self.create_gobj(
            self.name if self.name else "sock-server",
            GServerSock,
            self,
            subscriber=self,
            host=config.host,
            port=config.port,
            ssl_options=config.ssl_options,
            backlog=config.backlog,
            **dict(config.sock_options),
        )
        self.write_parameters(port=self.gserversock.config.port)

    def go_out(self) -> None:
        if self.gaplic is not None:
            self.gaplic.remove_shutdown_callback(self._shutdown)

    def _make_settings(self) -> HttpSettings:
        config = self.config
        url_scheme = config.url_scheme or ("https" if config.ssl_options else "http")
        pipeline = config.max_pipeline
        if config.maximum_simultaneous_requests:
            pipeline = min(pipeline, config.maximum_simultaneous_requests)
        return HttpSettings(
            identity=config.identity,
            url_scheme=url_scheme,
            expose_tracebacks=config.expose_tracebacks,
            maximum_simultaneous_requests=config.maximum_simultaneous_requests,
            max_request_line=config.max_request_line,
            max_request_header_size=config.max_request_header_size,
            max_headers=config.max_headers,
            max_request_body_size=config.max_request_body_size,
            max_pipeline=pipeline,
            max_buffered_body=config.max_buffered_body,
            auto_read_body=config.auto_read_body,
            keep_alive_max_requests=config.keep_alive_max_requests,
            header_timeout=config.header_timeout,
            body_timeout=config.body_timeout,
            keepalive_timeout=config.keepalive_timeout,
            responseless_timeout=config.responseless_timeout,
            inactivity_timeout=config.inactivity_timeout,
        )

    # ------------------------------------------------------------------------------------
    #   Public methods
    # ------------------------------------------------------------------------------------
    def get_sockname(self) -> Any:
        """The address listened on."""
        return self.gserversock.get_sockname() if self.gserversock is not None else None

    def get_channels(self) -> list[GHttpCliSrv]:
        """The open channels."""
        return list(self._channels)

    def get_websockets(self) -> list[GWebSocket]:
        """The WebSockets made by ``EV_HTTP_ACCEPT_WEBSOCKET`` and not yet closed."""
        return list(self._websockets)

    def _websocket_made(self, ws: GWebSocket) -> None:
        if ws.get_current_state() == "ST_CLOSED":
            self.post_event(self, "EV_DESTROY_WEBSOCKET", ws=ws)
            return
        self._websockets[ws] = None
        self.write_parameters(n_websockets=len(self._websockets))
        ws.closed_callback = self._websocket_closed

    def _websocket_closed(self, ws: GWebSocket) -> None:
        """``ws`` sent its EV_ON_CLOSE (its ``closed_callback``)."""
        ws.closed_callback = None
        if ws in self._websockets:
            del self._websockets[ws]
            self.write_parameters(n_websockets=len(self._websockets))
        if not self._destroyed:
            # Through the queue: not from inside the GWebSocket's own action.
            self.post_event(self, "EV_DESTROY_WEBSOCKET", ws=ws)

    # ------------------------------------------------------------------------------------
    #   Channels
    # ------------------------------------------------------------------------------------
    def _new_channel(self, gsock: Any, peername: Any) -> None:
        self._n_channel += 1
        channel: GHttpCliSrv = self.create_gobj(
            f"channel_{self._n_channel:x}",
            GHttpCliSrv,
            self,
            gsock=gsock,
            subscriber=self._subscriber,
            settings=self.settings,
        )
        channel._server = self
        self._channels[channel] = None
        self.write_parameters(n_channels=len(self._channels))
        gsock.delete_all_subscriptions()
        gsock.subscribe_event(None, channel)
        channel.broadcast_event(
            "EV_HTTP_CHANNEL_OPENED", channel=channel, peername=peername or channel.peername
        )

    def _channel_closed(self, channel: GHttpCliSrv) -> None:
        if channel in self._channels:
            del self._channels[channel]
            self.write_parameters(n_channels=len(self._channels))
        if not self._destroyed:
            self.post_event(self, "EV_DESTROY_CHANNEL", channel=channel)

    # ------------------------------------------------------------------------------------
    #   Shutdown
    # ------------------------------------------------------------------------------------
    def _shutdown(self) -> Awaitable[None] | None:
        """The GAplic stops: stop listening, close idle channels, let in-flight responses
        finish (``Connection: close``) within ``drain_timeout``."""
        self._stopping = True
        if self.gserversock is not None:
            self.gserversock.stop_listening()
        for ws in list(self._websockets):
            if ws.get_current_state() == "ST_OPEN":
                # 1001 "going away" (RFC 6455 §7.4.1) rather than a bare TCP close.
                self.send_event(ws, "EV_CLOSE", code=1001, reason="server shutdown")
        busy = [channel for channel in list(self._channels) if channel.shutdown()]
        if not busy:
            return None
        # The GAplic's socket shutdown (called after this one) leaves the connections
        # still answering to us: they close themselves after their response, or are
        # closed at drain_timeout.
        for channel in busy:
            gsock = channel.gsock
            if gsock is not None:
                gsock.close_on_shutdown_by_owner()
        return self._drain(busy)

    async def _drain(self, busy: list[GHttpCliSrv]) -> None:
        try:
            async with asyncio.timeout(self.config.drain_timeout):
                for _ in range(100_000_000):  # bounded by the timeout anyway
                    if all(channel._closed for channel in busy):
                        break
                    await asyncio.sleep(0.005)
        except TimeoutError:
            _LOG.info("%r: responses still in flight after drain_timeout; closing", self)
        finally:
            for channel in busy:
                if not channel._closed:
                    channel._close("shutdown")
                    gsock = channel.gsock
                    if gsock is not None and not gsock._destroyed and not gsock.is_closed():
                        # out of time: a second EV_DROP aborts what is still pending
                        self.send_event(gsock, "EV_DROP")
