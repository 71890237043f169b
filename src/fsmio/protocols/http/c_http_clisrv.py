"""``GHttpCliSrv``: one HTTP/1.1 connection (a *channel*) of a ``GHttpServer``.

The server creates one per accepted GSock and makes it the GSock's only subscriber.  The
channel parses requests (``fsmio.protocols.http.parser``: httptools plus fsmio's limits),
hands them one at a time to its subscriber, and writes the responses in request order.
Its limits and timeouts are the server's (see ``GHttpServer`` and ``docs/http.md``).

Configuration:

==========  =====  =======  ===============================================================
name        type   default  description
==========  =====  =======  ===============================================================
subscriber  None   None     Gets every output event; None: the parent (the server).
gsock       None   None     The connection (direct attribute).
settings    None   None     The server's ``HttpSettings`` (direct attribute; None: defaults).
==========  =====  =======  ===============================================================

Output events (to the subscriber; each carries ``channel``, and ``event.source[-1]`` is
the channel):

* ``EV_HTTP_CHANNEL_OPENED`` — ``peername``.
* ``EV_HTTP_REQUEST`` — ``request`` (an ``HttpRequest``).  Its body is in ``request.body``
  when it was small enough to read first (``auto_read_body`` and at most
  ``max_buffered_body`` bytes); otherwise ``request.streaming`` is True and the body is
  pulled with ``EV_HTTP_READ_BODY``.  The next request (pipelined) is delivered only after
  the response to this one has ended.
* ``EV_HTTP_REQUEST_BODY`` — ``request``, ``data`` (bytes), ``more`` (False on the last
  piece): the answer to ``EV_HTTP_READ_BODY``.  It may come before the ``send_event`` of
  ``EV_HTTP_READ_BODY`` returns (when body bytes are already there).
* ``EV_HTTP_CHANNEL_CLOSED`` — ``reason``: one word: ``eof``, ``closed`` (after a
  response with ``Connection: close``), ``keepalive_timeout``, ``header_timeout``,
  ``body_timeout``, ``responseless_timeout``, ``inactivity``, ``bad_request``,
  ``too_large``, ``response_error``, ``upgraded``, ``dropped``, ``shutdown``, or the
  GSock's reason (``reset``, ``tx_overflow``...).
* ``EV_TRANSMIT_READY`` — while a streamed response is being written, the connection
  has drained what had to wait: write more.  Sent only if the subscriber's FSM takes it.

Input events:

* ``EV_HTTP_RESPONSE`` — either ``response`` (a ginsfsm ``HttpResponse``), or
  ``request``, ``status`` (int, ``b'200 OK'`` or ``'200 OK'``), ``headers`` (iterable of
  (name, value), str or bytes; default none), ``body`` (bytes or str; default ``b''``).
  Returns the bytes written, or -1 (no such request waiting: late, or the channel closed).
* ``EV_HTTP_RESPONSE_START`` — ``request``, ``status``, ``headers``: a streamed response.
* ``EV_HTTP_RESPONSE_DATA`` — ``request``, ``data``: returns the bytes queued (with the
  chunk framing), or -1 (refused).  Write while ``channel.can_write()``, then wait for
  ``EV_TRANSMIT_READY``.  Chunked unless the application set Content-Length; data beyond
  that Content-Length is an error that closes the connection.
* ``EV_HTTP_RESPONSE_END`` — ``request``, ``trailers`` (None, or (name, value) pairs for
  a chunked response).  Fewer bytes than the Content-Length: the connection closes.
* ``EV_HTTP_READ_BODY`` — ``request``: pull the next piece of a streamed body (one
  ``EV_HTTP_REQUEST_BODY`` answers each).  The first pull sends ``100 Continue`` if the
  client asked for it.
* ``EV_HTTP_ACCEPT_WEBSOCKET`` — ``request``, ``subprotocol`` (None), ``headers`` (()),
  ``subscriber`` (None), and any other ``GWebSocket`` parameter: turn the upgrade request
  into a ``GWebSocket`` over this connection (see ``accept_websocket``); returns it, or
  None when ``request`` is not the one waiting for a response.  ``EV_HTTP_RESPONSE`` with
  a 4xx refuses an upgrade instead (the connection then closes after the response).
* ``EV_DROP`` — close the connection (what is already written is delivered first).
* ``EV_PAUSE_READING`` / ``EV_RESUME_READING`` — the application holds reading from the
  peer (say, its workers are all busy), and lets it go.  The hold adds to the channel's
  own reasons to pause (see below): a resume never overrides them, and they never
  override the hold.

Bottom input events (from the GSock): ``EV_RX_DATA``, ``EV_TRANSMIT_READY``,
``EV_DISCONNECTED``; ``EV_TIMEOUT`` comes from the channel's own deadline.

States: ``ST_WAIT_REQUEST`` (idle; keep-alive deadline), ``ST_READ_HEADERS`` (a head has
begun; header deadline), ``ST_READ_BODY`` (reading a body before delivering the request;
body deadline), ``ST_WAIT_RESPONSE`` (the request is with the application; responseless
deadline, or the body deadline while it reads the body), ``ST_SEND_RESPONSE`` (a streamed
response; inactivity deadline), ``ST_UPGRADED`` (the GSock was handed over),
``ST_CLOSING``.

Theory of operation
-------------------
*Input.*  Every EV_RX_DATA goes to the parser, which appends complete request heads to
its queue and body bytes to their request.  ``_process`` then delivers the request at the
front of the queue when nothing is with the application and its body is either complete
(and small) or to be streamed.  A rejected request becomes an entry with ``error`` set at
its place in the queue, so earlier requests are still answered first; then the error
response is written and the connection closes.  Reading from the peer is paused
(``EV_PAUSE_READING``) while ``max_pipeline`` requests wait, while a request body holds
more than ``max_buffered_body`` bytes that nobody asked for, while the application has
not asked for the next piece of a streamed body and one read's worth is already here,
while the application holds it (``EV_PAUSE_READING``), and once no more requests will be
served.  All these reasons meet in ``_flow``, the one place that tells the GSock.

*Output.*  A whole response is one ``bytes`` (head and body joined) and one EV_SEND_DATA.
A streamed head is held until the first data (or the end), so START+DATA+END is also one
write when the data is small.  After the last byte, keep-alive goes back to
``ST_WAIT_REQUEST`` and delivers the next queued request; otherwise the GSock is dropped
gracefully (its pending output is flushed first, within its ``drop_timeout``).

*Deadlines.*  One GAplic timer per channel, armed lazily: a state change only records
when its period began (``_since``); the timer is re-armed only when the new deadline is
earlier than the armed one, and when it fires early it re-arms itself for the deadline
now in force.  So a keep-alive connection answering thousands of requests a second
costs no timer operation per request.  Each is a deadline, not an idle timer that bytes
push back: a head must be complete within ``header_timeout`` of its first byte.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from fsmio.core.errors import GObjError
from fsmio.core.event import Event, new_event
from fsmio.core.gconfig import FLAG_DIRECT_ATTR
from fsmio.core.gobj import GObj
from fsmio.protocols.http.parser import HttpError, RequestParser
from fsmio.protocols.http.request import HttpRequest
from fsmio.protocols.http.response import (
    FRAMING_CHUNKED,
    FRAMING_CLOSE,
    FRAMING_LENGTH,
    FRAMING_NONE,
    HttpResponse,
    ResponseInterrupt,
    encode_head,
    server_header,
)
from fsmio.protocols.websocket.c_websocket import GWebSocket

if TYPE_CHECKING:
    from fsmio.aplic.gaplic import TimerHandle

__all__ = ["GHTTPCLISRV_FSM", "GHTTPCLISRV_GCONFIG", "GHttpCliSrv", "HttpSettings"]

_LOG = logging.getLogger("fsmio.http")

_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


class HttpSettings:
    """The limits and timeouts a server gives its channels (one object, shared)."""

    __slots__ = (
        "auto_read_body",
        "body_timeout",
        "durations",
        "expose_tracebacks",
        "header_timeout",
        "identity",
        "inactivity_timeout",
        "keep_alive_max_requests",
        "keepalive_timeout",
        "max_buffered_body",
        "max_headers",
        "max_pipeline",
        "max_request_body_size",
        "max_request_header_size",
        "max_request_line",
        "maximum_simultaneous_requests",
        "responseless_timeout",
        "server_line",
        "url_scheme",
    )

    def __init__(self, **kw: Any) -> None:
        self.identity = "fsmio"
        self.url_scheme = "http"
        self.expose_tracebacks = False
        self.maximum_simultaneous_requests = 0
        self.max_request_line = 8192
        self.max_request_header_size = 262144
        self.max_headers = 100
        self.max_request_body_size = 1073741824
        self.max_pipeline = 16
        self.max_buffered_body = 65536
        self.auto_read_body = True
        self.keep_alive_max_requests = 1000
        self.header_timeout = 10.0
        self.body_timeout = 30.0
        self.keepalive_timeout = 5.0
        self.responseless_timeout = 60.0
        self.inactivity_timeout = 18000.0
        for name, value in kw.items():
            setattr(self, name, value)
        self.server_line = server_header(self.identity)
        # the deadline of each state (seconds; 0: none), looked up per state change
        self.durations: dict[str, float] = {
            "ST_WAIT_REQUEST": float(self.keepalive_timeout),
            "ST_READ_HEADERS": float(self.header_timeout),
            "ST_READ_BODY": float(self.body_timeout),
            "ST_WAIT_RESPONSE": float(self.responseless_timeout or self.inactivity_timeout),
            "ST_SEND_RESPONSE": float(self.inactivity_timeout),
            "ST_UPGRADED": 0.0,
            "ST_CLOSING": 0.0,
        }


_DEFAULT_SETTINGS = HttpSettings()


# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
GHTTPCLISRV_GCONFIG: Final[dict[str, list[Any]]] = {
    "subscriber": [None, None, 0, None, "Gets every output event; None means the parent."],
    "gsock": [None, None, FLAG_DIRECT_ATTR, None, "The connection (a GSock)."],
    "settings": [None, None, FLAG_DIRECT_ATTR, None, "The server's HttpSettings."],
}


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_rx_data(self: GHttpCliSrv, event: Event) -> None:
    if self._input_closed:
        return
    data: bytes = event.__dict__["data"]
    unfed = self._unfed
    if unfed:
        data = unfed + data
        self._unfed = b""
    # _feed(), inlined for the common case
    parser = self._parser
    try:
        n = parser.feed(data)
        if n < len(data) or parser.upgrade_data is not None:
            self._fed_partly(data, n)
    except HttpError as exc:
        self._input_error(exc)
    self._process()


def ac_ignore_data(self: GHttpCliSrv, event: Event) -> None:
    return None


def ac_response(self: GHttpCliSrv, event: Event) -> int:
    kw = event.__dict__
    response = kw.get("response")
    if response is not None:
        return self._run_ginsfsm_response(response)
    request = kw.get("request")
    if request is not self._active or request is None:
        return self._late(request, "EV_HTTP_RESPONSE")
    return self.respond(request, kw.get("status", 200), kw.get("headers", ()), kw.get("body", b""))


def ac_response_start(self: GHttpCliSrv, event: Event) -> int:
    kw = event.__dict__
    request = kw.get("request")
    if request is not self._active or request is None:
        return self._late(request, "EV_HTTP_RESPONSE_START")
    self.start_response(request, kw.get("status", 200), kw.get("headers", ()))
    return 0


def ac_response_data(self: GHttpCliSrv, event: Event) -> int:
    kw = event.__dict__
    request = kw.get("request")
    if request is not self._active or request is None:
        return self._late(request, "EV_HTTP_RESPONSE_DATA")
    return self.write_response(request, kw.get("data", b""))


def ac_response_end(self: GHttpCliSrv, event: Event) -> int:
    kw = event.__dict__
    request = kw.get("request")
    if request is not self._active or request is None:
        return self._late(request, "EV_HTTP_RESPONSE_END")
    self.end_response(request, kw.get("trailers"))
    return 0


def ac_refuse(self: GHttpCliSrv, event: Event) -> int:
    return self._late(event.__dict__.get("request"), event.event_name)


def ac_accept_websocket(self: GHttpCliSrv, event: Event) -> GWebSocket | None:
    kw = dict(event.__dict__)
    request = kw.pop("request", None)
    if request is not self._active or request is None or self._resp_started:
        self._late(request, "EV_HTTP_ACCEPT_WEBSOCKET")
        return None
    subscriber = kw.pop("subscriber", None)
    if subscriber is None:
        # The application gobj that asked is the WebSocket's user.
        source = event.source[-1] if event.source else None
        if isinstance(source, GObj) and source is not self:
            subscriber = source
    return self.accept_websocket(request, subscriber=subscriber, **kw)


def ac_refuse_websocket(self: GHttpCliSrv, event: Event) -> None:
    self._late(event.__dict__.get("request"), "EV_HTTP_ACCEPT_WEBSOCKET")


def ac_read_body(self: GHttpCliSrv, event: Event) -> int:
    request = event.__dict__.get("request")
    if request is not self._active or request is None or not request.streaming:
        return self._late(request, "EV_HTTP_READ_BODY")
    self._read_body(request)
    return 0


def ac_timeout(self: GHttpCliSrv, event: Event) -> None:
    self._deadline_reached()


def ac_transmit_ready(self: GHttpCliSrv, event: Event) -> None:
    if self._resp_started and self._active is not None:
        if self._ready_wanted is None:
            self._ready_wanted = self.subscribers_take("EV_TRANSMIT_READY")
        if self._ready_wanted:
            self.broadcast_event("EV_TRANSMIT_READY", channel=self)


def ac_drop(self: GHttpCliSrv, event: Event) -> None:
    self._close("dropped")


def ac_disconnected(self: GHttpCliSrv, event: Event) -> None:
    self._disconnected(event.__dict__.get("reason", "eof"))


def ac_hold_reading(self: GHttpCliSrv, event: Event) -> None:
    self._held_by_app = True
    self._flow()


def ac_release_reading(self: GHttpCliSrv, event: Event) -> None:
    self._held_by_app = False
    self._flow()


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
_IDLE_ROWS: Final = (
    ("EV_RX_DATA", ac_rx_data, None),
    ("EV_TIMEOUT", ac_timeout, None),
    ("EV_TRANSMIT_READY", None, None),
    ("EV_DISCONNECTED", ac_disconnected, "ST_CLOSING"),
    ("EV_DROP", ac_drop, None),
    ("EV_HTTP_RESPONSE", ac_response, None),
    ("EV_HTTP_RESPONSE_START", ac_refuse, None),
    ("EV_HTTP_RESPONSE_DATA", ac_refuse, None),
    ("EV_HTTP_RESPONSE_END", ac_refuse, None),
    ("EV_HTTP_READ_BODY", ac_refuse, None),
    ("EV_HTTP_ACCEPT_WEBSOCKET", ac_refuse_websocket, None),
    ("EV_PAUSE_READING", ac_hold_reading, None),
    ("EV_RESUME_READING", ac_release_reading, None),
)

GHTTPCLISRV_FSM: Final[dict[str, Any]] = {
    "event_list": (
        "EV_HTTP_RESPONSE: top input",
        "EV_HTTP_RESPONSE_START: top input",
        "EV_HTTP_RESPONSE_DATA: top input",
        "EV_HTTP_RESPONSE_END: top input",
        "EV_HTTP_READ_BODY: top input",
        "EV_HTTP_ACCEPT_WEBSOCKET: top input",
        "EV_DROP: top input",
        "EV_HTTP_CHANNEL_OPENED: top output",
        "EV_HTTP_CHANNEL_CLOSED: top output",
        "EV_HTTP_REQUEST: top output",
        "EV_HTTP_REQUEST_BODY: top output",
        "EV_TRANSMIT_READY: bottom input top output",
        "EV_RX_DATA: bottom input",
        "EV_DISCONNECTED: bottom input",
        "EV_TIMEOUT: bottom input",
        "EV_SEND_DATA: bottom output",
        "EV_DROP_GSOCK: bottom output",
        "EV_PAUSE_READING: top input bottom output",
        "EV_RESUME_READING: top input bottom output",
    ),
    "state_list": (
        "ST_WAIT_REQUEST",
        "ST_READ_HEADERS",
        "ST_READ_BODY",
        "ST_WAIT_RESPONSE",
        "ST_SEND_RESPONSE",
        "ST_UPGRADED",
        "ST_CLOSING",
    ),
    "machine": {
        "ST_WAIT_REQUEST": _IDLE_ROWS,
        "ST_READ_HEADERS": _IDLE_ROWS,
        "ST_READ_BODY": _IDLE_ROWS,
        "ST_WAIT_RESPONSE": (
            ("EV_RX_DATA", ac_rx_data, None),
            ("EV_TIMEOUT", ac_timeout, None),
            ("EV_TRANSMIT_READY", None, None),
            ("EV_DISCONNECTED", ac_disconnected, "ST_CLOSING"),
            ("EV_DROP", ac_drop, None),
            ("EV_HTTP_RESPONSE", ac_response, None),
            ("EV_HTTP_RESPONSE_START", ac_response_start, None),
            ("EV_HTTP_RESPONSE_DATA", ac_refuse, None),
            ("EV_HTTP_RESPONSE_END", ac_refuse, None),
            ("EV_HTTP_READ_BODY", ac_read_body, None),
            ("EV_HTTP_ACCEPT_WEBSOCKET", ac_accept_websocket, None),
            ("EV_PAUSE_READING", ac_hold_reading, None),
            ("EV_RESUME_READING", ac_release_reading, None),
        ),
        "ST_SEND_RESPONSE": (
            ("EV_RX_DATA", ac_rx_data, None),
            ("EV_TIMEOUT", ac_timeout, None),
            ("EV_TRANSMIT_READY", ac_transmit_ready, None),
            ("EV_DISCONNECTED", ac_disconnected, "ST_CLOSING"),
            ("EV_DROP", ac_drop, None),
            ("EV_HTTP_RESPONSE", ac_refuse, None),
            ("EV_HTTP_RESPONSE_START", ac_refuse, None),
            ("EV_HTTP_RESPONSE_DATA", ac_response_data, None),
            ("EV_HTTP_RESPONSE_END", ac_response_end, None),
            ("EV_HTTP_READ_BODY", ac_read_body, None),
            ("EV_HTTP_ACCEPT_WEBSOCKET", ac_refuse_websocket, None),
            ("EV_PAUSE_READING", ac_hold_reading, None),
            ("EV_RESUME_READING", ac_release_reading, None),
        ),
        "ST_UPGRADED": (
            ("EV_RX_DATA", ac_ignore_data, None),
            ("EV_TIMEOUT", None, None),
            ("EV_TRANSMIT_READY", None, None),
            ("EV_DISCONNECTED", None, None),
            ("EV_DROP", None, None),
            ("EV_HTTP_RESPONSE", ac_refuse, None),
            ("EV_HTTP_RESPONSE_START", ac_refuse, None),
            ("EV_HTTP_RESPONSE_DATA", ac_refuse, None),
            ("EV_HTTP_RESPONSE_END", ac_refuse, None),
            ("EV_HTTP_READ_BODY", ac_refuse, None),
            ("EV_HTTP_ACCEPT_WEBSOCKET", ac_refuse_websocket, None),
            ("EV_PAUSE_READING", ac_hold_reading, None),
            ("EV_RESUME_READING", ac_release_reading, None),
        ),
        "ST_CLOSING": (
            ("EV_RX_DATA", ac_ignore_data, None),
            ("EV_TIMEOUT", None, None),
            ("EV_TRANSMIT_READY", None, None),
            ("EV_DISCONNECTED", ac_disconnected, None),
            ("EV_DROP", None, None),
            ("EV_HTTP_RESPONSE", ac_refuse, None),
            ("EV_HTTP_RESPONSE_START", ac_refuse, None),
            ("EV_HTTP_RESPONSE_DATA", ac_refuse, None),
            ("EV_HTTP_RESPONSE_END", ac_refuse, None),
            ("EV_HTTP_READ_BODY", ac_refuse, None),
            ("EV_HTTP_ACCEPT_WEBSOCKET", ac_refuse_websocket, None),
            ("EV_PAUSE_READING", ac_hold_reading, None),
            ("EV_RESUME_READING", ac_release_reading, None),
        ),
    },
}


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
class GHttpCliSrv(GObj):
    """One HTTP connection of a GHttpServer (see the module documentation)."""

    __slots__ = (
        "_active",
        "_body_eof_sent",
        "_clock",
        "_close_reason",
        "_closed",
        "_continue_sent",
        "_deadline_kind",
        "_durations",
        "_ginsfsm",
        "_held_by_app",
        "_input_closed",
        "_keep_alive",
        "_max_requests",
        "_n_requests",
        "_parser",
        "_paused",
        "_processing",
        "_ready_wanted",
        "_resp_framing",
        "_resp_head",
        "_resp_remaining",
        "_resp_started",
        "_send_event",
        "_server",
        "_since",
        "_st",
        "_stopping",
        "_timer",
        "_unfed",
        "_want_body",
        "gsock",
        "peername",
        "server_line",
        "settings",
    )

    gsock: Any
    settings: Any

    def __init__(self) -> None:
        GObj.__init__(self, GHTTPCLISRV_FSM, GHTTPCLISRV_GCONFIG)
        self._active: HttpRequest | None = None
        self._body_eof_sent = False
        self._close_reason: str | None = None
        self._closed = False
        self._continue_sent = False
        self._deadline_kind: str | None = None
        self._durations = _DEFAULT_SETTINGS.durations
        self._ginsfsm: HttpResponse | None = None
        self._input_closed = False
        self._keep_alive = True
        self._max_requests = 1 << 62
        self._n_requests = 0
        self._paused = False
        self._held_by_app = False
        self._processing = False
        self._ready_wanted: bool | None = None
        self._resp_framing = FRAMING_NONE
        self._resp_head: bytes | None = None
        self._resp_remaining = 0
        self._resp_started = False
        self._send_event: Event | None = None
        self._server: Any = None
        self._since = 0.0
        self._st = "ST_WAIT_REQUEST"
        self._stopping = False
        self._timer: TimerHandle | None = None
        self._unfed = b""
        self._want_body = False
        self.peername: Any = None

    # ------------------------------------------------------------------------------------
    #   Life cycle
    # ------------------------------------------------------------------------------------
    def start_up(self) -> None:
        gsock = self.gsock
        if gsock is None:
            raise GObjError(f"{self!r}: a GHttpCliSrv needs its gsock")
        settings = self.settings
        if settings is None:
            settings = self.settings = _DEFAULT_SETTINGS
        self.server_line = settings.server_line
        self._durations = settings.durations
        self._max_requests = settings.keep_alive_max_requests or 1 << 62
        self._parser = RequestParser(
            max_request_line=settings.max_request_line,
            max_header_size=settings.max_request_header_size,
            max_headers=settings.max_headers,
            max_body_size=settings.max_request_body_size,
            max_queued=settings.max_pipeline,
            url_scheme=settings.url_scheme,
        )
        self._clock = self.gaplic._clock
        subscriber = self.config.subscriber
        if subscriber is not None or self.parent is not None:
            self.subscribe_event(None, subscriber)
        self.peername = gsock.get_peername()
        self._set_state("ST_WAIT_REQUEST", self._clock())

    def go_out(self) -> None:
        timer = self._timer
        if timer is not None:
            timer.cancel()
            self._timer = None
        self._closed = True

    # ------------------------------------------------------------------------------------
    #   Public methods
    # ------------------------------------------------------------------------------------
    def can_write(self) -> bool:
        """Whether a streamed response can take more now (the GSock's ``write_paused``
        is false).  When False, stop and wait for ``EV_TRANSMIT_READY``: it is sure to
        come (unless the connection ends first)."""
        gsock = self.gsock
        return not self._closed and gsock is not None and not gsock.write_paused

    def output_pending(self) -> int:
        """Bytes written to the connection and not yet handed to the kernel."""
        gsock = self.gsock
        return int(gsock.pending_output) if gsock is not None else 0

    def response_is_chunked(self) -> bool:
        """The response being written uses chunked framing."""
        return self._resp_framing == FRAMING_CHUNKED

    def respond(self, request: HttpRequest, status: Any, headers: Any, body: Any) -> int:
        """Write a whole response to ``request`` (what EV_HTTP_RESPONSE does)."""
        if request is not self._active or self._resp_started:
            return self._late(request, "respond")
        if type(body) is not bytes:
            body = _as_body(body)
        parts: list[bytes] = []
        if (
            request.keep_alive
            and request._body_complete
            and not (request.upgrade or self._stopping or self._input_closed)
            and self._n_requests < self._max_requests
        ):
            keep = True
        else:
            keep = self._may_keep(request)
        code, framing, _, keep_alive = encode_head(
            parts, request, status, headers, len(body), self.server_line, keep
        )
        if code < 200:
            raise ValueError(f"status {code}: interim (1xx) responses are not supported")
        if framing == FRAMING_LENGTH:
            if body:
                parts.append(body)
        elif framing == FRAMING_CHUNKED:
            if body:
                parts += (b"%x\r\n" % len(body), body, b"\r\n")
            parts.append(b"0\r\n\r\n")
        n: int = self._send(b"".join(parts))
        self._finished(keep_alive)
        return n

    def start_response(self, request: HttpRequest, status: Any, headers: Any) -> None:
        """Begin a streamed response (what EV_HTTP_RESPONSE_START does).  Raises
        ``ValueError`` for bad headers (nothing is written then)."""
        if request is not self._active or self._resp_started:
            self._late(request, "start_response")
            return
        parts: list[bytes] = []
        code, framing, length, keep_alive = encode_head(
            parts, request, status, headers, None, self.server_line, self._may_keep(request)
        )
        if code < 200:
            raise ValueError(f"status {code}: interim responses are not supported")
        self._resp_started = True
        self._resp_framing = framing
        self._resp_remaining = length if length is not None else 0
        self._keep_alive = keep_alive
        self._resp_head = b"".join(parts)
        self._set_state("ST_SEND_RESPONSE", self._clock())

    def write_response(self, request: HttpRequest, data: Any) -> int:
        """Write body bytes of the streamed response (what EV_HTTP_RESPONSE_DATA does)."""
        if request is not self._active or not self._resp_started:
            return self._late(request, "write_response")
        if type(data) is not bytes:
            data = _as_body(data)
        framing = self._resp_framing
        head = self._resp_head
        if framing == FRAMING_NONE or not data:
            if head is None:
                return 0
            out = head
        elif framing == FRAMING_CHUNKED:
            chunk = b"%x\r\n" % len(data)
            out = b"".join((head, chunk, data, b"\r\n")) if head else chunk + data + b"\r\n"
        else:
            if framing == FRAMING_LENGTH:
                remaining = self._resp_remaining - len(data)
                if remaining < 0:
                    _LOG.error(
                        "%r: the application wrote more than the Content-Length of %r; closing",
                        self,
                        request,
                    )
                    self._keep_alive = False
                    self._close("response_error")
                    return -1
                self._resp_remaining = remaining
            out = head + data if head else data
        self._resp_head = None
        n: int = self._send(out)
        return n

    def end_response(self, request: HttpRequest, trailers: Any = None) -> None:
        """End the streamed response (what EV_HTTP_RESPONSE_END does)."""
        if request is not self._active or not self._resp_started:
            self._late(request, "end_response")
            return
        out = self._resp_head or b""
        self._resp_head = None
        framing = self._resp_framing
        keep_alive = self._keep_alive
        if framing == FRAMING_CHUNKED:
            tail = [out, b"0\r\n"]
            for name, value in trailers or ():
                n = name.encode("latin-1") if isinstance(name, str) else bytes(name)
                v = value.encode("latin-1") if isinstance(value, str) else bytes(value)
                if b"\r" in n + v or b"\n" in n + v or b"\0" in n + v or b":" in n:
                    raise ValueError(f"trailer {n!r}: {v!r} contains CR, LF, NUL or a colon")
                tail += (n, b": ", v, b"\r\n")
            tail.append(b"\r\n")
            out = b"".join(tail)
        elif framing == FRAMING_LENGTH and self._resp_remaining > 0:
            _LOG.debug(
                "%r: response to %r ended %d bytes short of its Content-Length; closing",
                self,
                request,
                self._resp_remaining,
            )
            keep_alive = False
        elif framing == FRAMING_CLOSE:
            keep_alive = False
        if out:
            self._send(out)
        self._finished(keep_alive)

    def hand_over_gsock(self, request: HttpRequest, new_subscriber: Any) -> Any:
        """Give the connection to ``new_subscriber`` (a protocol upgrade): the bytes read
        past ``request``'s head go with it, no later request is served, and the channel
        ends (``EV_HTTP_CHANNEL_CLOSED`` with reason ``upgraded``).  Returns the GSock.

        ``request`` must be the one with the application and no response started.  The
        ``101 Switching Protocols`` is written by the caller (to ``channel.gsock``, before
        this call) or by the new subscriber (first thing: the bytes already read reach it
        inside this call).  Pipelined requests after a request that was not an upgrade
        request are dropped.
        """
        if request is not self._active or self._resp_started or self._closed:
            raise GObjError(
                f"{self!r}: hand_over_gsock({request!r}): not the request waiting for a "
                "response, or a response already started"
            )
        gsock = self.gsock
        parser = self._parser
        data = (parser.upgrade_data or b"") + self._unfed
        parser.upgrade_data = None
        self._unfed = b""
        self._input_closed = True
        self._active = None
        self._close_reason = "upgraded"
        self._set_state("ST_UPGRADED", 0.0)
        if self._paused:
            self._paused = False
            self.send_event(gsock, "EV_RESUME_READING")
        gsock.hand_over(new_subscriber, data=data)
        self._closed = True
        self._channel_closed("upgraded")
        return gsock

    def accept_websocket(
        self,
        request: HttpRequest,
        subprotocol: str | None = None,
        headers: Any = (),
        subscriber: Any = None,
        **ws_config: Any,
    ) -> GWebSocket:
        """Turn ``request`` (the one waiting for its response) into a ``GWebSocket`` over
        this connection, and return it (what EV_HTTP_ACCEPT_WEBSOCKET does).

        ``subprotocol``: the one to answer with, if the client offered it (else none);
        ``headers``: (name, value) pairs added to the ``101``; ``subscriber``: the gobj that
        gets the WebSocket's events (None: this channel's subscriber); ``ws_config``: more
        GWebSocket parameters (``max_message_size``, ``ping_interval``, ``origins``,
        ``ack_messages``, ``max_queue``...).  The GWebSocket checks the handshake itself
        (method, version, key, Origin) and answers a bad one with the HTTP error; then
        its ``EV_ON_CLOSE`` comes alone.  It is the GHttpServer's child, destroyed by the
        server after its ``EV_ON_CLOSE`` (the subscriber need not destroy it).
        """
        if request is not self._active or self._resp_started or self._closed:
            raise GObjError(
                f"{self!r}: accept_websocket({request!r}): not the request waiting for a "
                "response, or a response already started"
            )
        if subprotocol is not None:
            if "subprotocols" in ws_config:
                raise ValueError("give either subprotocol or subprotocols, not both")
            if not isinstance(subprotocol, str) or not subprotocol:
                raise ValueError(f"subprotocol: a non-empty str or None, not {subprotocol!r}")
            ws_config["subprotocols"] = [subprotocol]
        extra = list(ws_config.pop("extra_headers", ()))
        for item in headers.items() if isinstance(headers, dict) else headers:
            name, value = item
            extra.append(
                (
                    name.decode("latin-1") if isinstance(name, (bytes, bytearray)) else name,
                    value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value,
                )
            )
        if subscriber is None:
            subscriber = self.config.subscriber or self.parent
        server = self._server
        ws: GWebSocket = self.create_gobj(
            None,
            GWebSocket,
            server if server is not None else self,
            gsock=self.gsock,
            request=request,
            subscriber=subscriber,
            extra_headers=extra,
            **ws_config,
        )
        if server is not None:
            server._websocket_made(ws)
        self.hand_over_gsock(request, ws)
        return ws

    def shutdown(self) -> bool:
        """The server stops: close now if idle and return False; with a request in
        flight, read no more, answer it with ``Connection: close`` and return True."""
        if self._closed or self._st == "ST_CLOSING" or self._st == "ST_UPGRADED":
            return False
        if self._active is None:
            self._close("shutdown")
            return False
        self._stopping = True
        self._close_reason = self._close_reason or "shutdown"
        self._input_closed = True
        self._parser.requests.clear()
        self._flow()
        return True

    # ginsfsm's asynchronous response API (after ResponseInterrupt)
    def write(self, data: Any) -> None:
        """ginsfsm: write to the response in progress."""
        response = self._ginsfsm_response()
        if response is not None:
            response.write(data)

    def flush(self, callback: Any = None) -> None:
        """ginsfsm: flush the response in progress (writes are flushed already)."""
        response = self._ginsfsm_response()
        if response is not None:
            response.flush(callback)

    def finish(self, response: Any = None) -> None:
        """ginsfsm: finish the response in progress."""
        if response is None:
            response = self._ginsfsm_response()
        if response is not None:
            response.finish()

    def _send(self, data: bytes) -> int:
        """EV_SEND_DATA to the GSock (bytes queued, or -1).  One Event object per channel,
        re-used: the hot path's write costs no allocation beyond its kw dict."""
        gsock = self.gsock
        if gsock._destroyed:
            return -1
        event = self._send_event
        if event is None:
            event = self._send_event = new_event(gsock, "EV_SEND_DATA", [self], {})
        event.__dict__ = {"data": data}
        n: int = gsock.inject_event(event)
        return n

    # ------------------------------------------------------------------------------------
    #   Input
    # ------------------------------------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        parser = self._parser
        try:
            n = parser.feed(data)
        except HttpError as exc:
            self._input_error(exc)
            return
        if n < len(data) or parser.upgrade_data is not None:
            self._fed_partly(data, n)

    def _fed_partly(self, data: bytes, n: int) -> None:
        """The parser stopped before the end of ``data``: too many requests waiting (the
        rest is kept for later), or an upgrade (nothing more is parsed)."""
        parser = self._parser
        if parser.upgrade_data is not None:
            self._input_closed = True
            return
        self._unfed = data[n:]

    def _input_error(self, exc: HttpError) -> None:
        """A rejected request: it takes its place in the queue as an error entry."""
        _LOG.debug("%r: request rejected: %s", self, exc)
        self._input_closed = True
        self._unfed = b""
        parser = self._parser
        current = parser.current
        if current is not None:
            # the error is in a body: that request is the one rejected
            active = self._active
            if current is active:
                self._close_reason = self._close_reason or exc.close_reason
                if self._resp_started:
                    self._close(exc.close_reason)
                else:
                    self._write_error(active, exc.status, exc.detail)
                return
            if current in parser.requests:
                parser.requests.remove(current)
        error_request = HttpRequest()
        error_request.error = exc
        error_request.keep_alive = False
        self._parser.requests.append(error_request)

    def _process(self) -> None:
        """Deliver what can be delivered; then flow control, state and deadline."""
        if self._processing or self._closed or self._st == "ST_CLOSING":
            return
        self._processing = True
        try:
            parser = self._parser
            requests = parser.requests
            settings = self.settings
            while True:
                self._deliver_next(parser, requests, settings)
                if (
                    self._paused
                    or self._unfed
                    or requests
                    or parser.current is not None
                    or parser._in_head
                    or self._active is not None
                    or self._st != "ST_WAIT_REQUEST"
                ):
                    answered = self._active
                    self._flow()
                    if answered is not None and self._active is None and (requests or self._unfed):
                        continue  # _flow gave a body whose response ended: go on
                    self._update_state()
                break
        finally:
            self._processing = False

    def _deliver_next(self, parser: RequestParser, requests: Any, settings: Any) -> None:
        """Deliver queued requests while nothing is with the application."""
        while self._active is None and self._st != "ST_CLOSING":
            if not requests:
                if self._unfed and not parser.dead and not self._input_closed:
                    data = self._unfed
                    self._unfed = b""
                    self._feed(data)
                    if requests:
                        continue
                break
            request = requests[0]
            if request.error is not None:
                requests.clear()
                self._reject(request.error)
                break
            if (
                request.content_length is None and not request.chunked
            ) or request.content_length == 0:
                streaming = False
            elif (
                not settings.auto_read_body
                or request.expect_continue
                or (request.content_length or 0) > settings.max_buffered_body
                or request._body_buffered > settings.max_buffered_body
            ):
                streaming = True
            elif request._body_complete:
                streaming = False
            else:
                break  # a small body still arriving
            requests.popleft()
            self._deliver(request, streaming)

    def _deliver(self, request: HttpRequest, streaming: bool) -> None:
        self._n_requests = n = self._n_requests + 1
        request.id = n
        request.channel = self
        if streaming:
            request.streaming = True
        else:
            chunks = request._body_chunks
            if chunks:
                request.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                request._body_chunks = []
                request._body_buffered = 0
        self._active = request
        self._resp_started = False
        self._continue_sent = False
        self._want_body = False
        self._body_eof_sent = False
        self._set_state("ST_WAIT_RESPONSE", self._clock())
        self.broadcast_event("EV_HTTP_REQUEST", channel=self, request=request)

    def _read_body(self, request: HttpRequest) -> None:
        if self._body_eof_sent:
            self.broadcast_event(
                "EV_HTTP_REQUEST_BODY", channel=self, request=request, data=b"", more=False
            )
            return
        if (
            request.expect_continue
            and not self._continue_sent
            and not request._body_complete
            and not self._resp_started
        ):
            self._continue_sent = True
            self._send(_CONTINUE)
        if request._body_chunks or request._body_complete:
            self._give_body(request)
        else:
            self._want_body = True
            self._flow()
            self._update_state()

    def _give_body(self, request: HttpRequest) -> None:
        chunks = request._body_chunks
        if not chunks:
            data = b""
        elif len(chunks) == 1:
            data = chunks[0]
        else:
            data = b"".join(chunks)
        request._body_chunks = []
        request._body_buffered = 0
        more = not request._body_complete
        self._want_body = False
        if not more:
            self._body_eof_sent = True
        self.broadcast_event(
            "EV_HTTP_REQUEST_BODY", channel=self, request=request, data=data, more=more
        )

    def _flow(self) -> None:
        """Pause reading from the peer, or resume it (see the theory of operation)."""
        if self._st == "ST_CLOSING" or self._st == "ST_UPGRADED":
            return
        parser = self._parser
        active = self._active
        if (
            self._want_body
            and active is not None
            and (active._body_chunks or active._body_complete)
            and not self._body_eof_sent
        ):
            # the application asked, and bytes (or the end: a last empty chunk can come
            # alone) are here
            self._give_body(active)
        current = parser.current
        pause = (
            self._held_by_app
            or self._input_closed
            or bool(self._unfed)
            or len(parser.requests) >= self.settings.max_pipeline
            or (
                current is not None
                and (
                    current._body_buffered > self.settings.max_buffered_body
                    or (current is active and bool(current._body_chunks) and not self._want_body)
                )
            )
        )
        if pause != self._paused:
            self._paused = pause
            self.send_event(self.gsock, "EV_PAUSE_READING" if pause else "EV_RESUME_READING")

    # ------------------------------------------------------------------------------------
    #   Output
    # ------------------------------------------------------------------------------------
    def _may_keep(self, request: HttpRequest) -> bool:
        """Whether the connection may stay open after the response to ``request``."""
        if not request.keep_alive or request.upgrade or self._stopping:
            return False
        if self._input_closed and not self._parser.requests:
            return False  # nothing more will be read (and nothing is queued)
        settings = self.settings
        if self._n_requests >= settings.keep_alive_max_requests > 0:
            return False
        if not request._body_complete:
            # The rest of the body must be read and thrown away: only when it is small
            # and the client is not waiting for a 100 Continue that never came.
            if request.chunked or (request.expect_continue and not self._continue_sent):
                return False
            left = (request.content_length or 0) - request._body_received
            if left > settings.max_buffered_body:
                return False
        return True

    def _finished(self, keep_alive: bool) -> None:
        """The response to the active request is written."""
        request = self._active
        self._active = None
        self._resp_started = False
        self._resp_head = None
        self._resp_framing = FRAMING_NONE
        if not keep_alive:
            self._close("closed")
            return
        if request is not None and not request._body_complete:
            # keep-alive with an unread (small) body: read it and throw it away
            request.streaming = False
            request._body_chunks = _DISCARD
            request._body_buffered = 0
        self._set_state("ST_WAIT_REQUEST", self._clock())
        if not self._processing:
            self._process()

    def _reject(self, error: HttpError) -> None:
        """Answer a rejected request (in its turn) and close."""
        self._close_reason = self._close_reason or error.close_reason
        request = HttpRequest()
        request.error = error
        request.keep_alive = False
        self._active = request
        self._write_error(request, error.status, error.detail)

    def _write_error(self, request: HttpRequest, status: int, detail: str) -> None:
        body = (detail + "\n").encode("utf-8")
        parts: list[bytes] = []
        encode_head(
            parts,
            request,
            status,
            ((b"Content-Type", b"text/plain; charset=utf-8"),),
            len(body),
            self.server_line,
            False,
        )
        if request.method != "HEAD":
            parts.append(body)
        self._send(b"".join(parts))
        self._finished(False)

    def _response_error(self, request: HttpRequest, exc: Exception) -> int:
        """The application gave a response that cannot be written: 500 and close."""
        _LOG.error("%r: bad response to %r: %s", self, request, exc)
        self._close_reason = self._close_reason or "response_error"
        detail = str(exc) if self.settings.expose_tracebacks else "Internal Server Error"
        self._write_error(request, 500, detail)
        return -1

    def _run_ginsfsm_response(self, response: HttpResponse) -> int:
        request = response.request
        if request is not self._active or request is None:
            return self._late(request, "EV_HTTP_RESPONSE")
        response.channel = self
        response.gsock = self.gsock
        response.start()
        try:
            response.execute()
        except ResponseInterrupt:
            # asynchronous: the program finishes it later (channel.write/finish)
            self._ginsfsm = response
            if not self._resp_started:
                self._set_state("ST_SEND_RESPONSE", self._clock())
            return 0
        except Exception as exc:
            self.gaplic.handle_exception(exc, f"{self!r}: serving {request!r}")
            if self._active is request and not self._resp_started:
                self._response_error(request, exc)
            elif self._active is request:
                self._keep_alive = False
                self._close("response_error")
            return -1
        if self._active is request:
            response.finish()
        return 0

    def _ginsfsm_response(self) -> HttpResponse | None:
        response = self._ginsfsm
        if response is None or response.request is not self._active:
            _LOG.error("%r: no asynchronous response in progress", self)
            return None
        return response

    def _late(self, request: Any, what: str) -> int:
        _LOG.debug("%r: %s for %r ignored in %s", self, what, request, self._st)
        return -1

    # ------------------------------------------------------------------------------------
    #   States and deadlines
    # ------------------------------------------------------------------------------------
    def _update_state(self) -> None:
        """The state (and its deadline's start) after input or output changed."""
        st = self._st
        if self._closed or st == "ST_CLOSING" or st == "ST_UPGRADED":
            return
        active = self._active
        if active is not None:
            if self._resp_started:
                return  # ST_SEND_RESPONSE, set by start_response
            if self._want_body and not active._body_complete:
                # the application waits for body bytes: the body deadline, from now
                self._set_state("ST_WAIT_RESPONSE", self._clock(), "body")
            elif self._deadline_kind == "body":
                self._set_state("ST_WAIT_RESPONSE", self._clock())
            return
        parser = self._parser
        if parser.requests or parser.current is not None:
            if self._st != "ST_READ_BODY":
                self._set_state("ST_READ_BODY", self._clock())
            else:
                self._since = self._clock()  # body: an idle timeout between pieces
        elif parser.in_head:
            if self._st != "ST_READ_HEADERS":
                self._set_state("ST_READ_HEADERS", self._clock())
        elif self._st != "ST_WAIT_REQUEST":
            self._set_state("ST_WAIT_REQUEST", self._clock())

    def _set_state(self, state: str, since: float, kind: str | None = None) -> None:
        if state != self._st:
            self._st = state
            self.set_new_state(state)
        self._since = since
        self._deadline_kind = kind
        seconds = self._durations[state] if kind is None else self._seconds()
        if seconds > 0:
            deadline = since + seconds
            timer = self._timer
            if timer is None or timer.deadline > deadline:
                if timer is not None:
                    timer.cancel()
                self._timer = self.gaplic.call_at(deadline, self._on_timer)

    def _seconds(self) -> float:
        """The length of the deadline in force (0: none)."""
        settings = self.settings
        st = self._st
        if st == "ST_WAIT_REQUEST":
            return float(settings.keepalive_timeout)
        if st == "ST_WAIT_RESPONSE":
            if self._deadline_kind == "body":
                return float(settings.body_timeout)
            return float(settings.responseless_timeout or settings.inactivity_timeout)
        if st == "ST_READ_HEADERS":
            return float(settings.header_timeout)
        if st == "ST_READ_BODY":
            return float(settings.body_timeout)
        if st == "ST_SEND_RESPONSE":
            return float(settings.inactivity_timeout)
        return 0.0

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed or self._destroyed:
            return
        seconds = self._seconds()
        if seconds <= 0:
            return
        since = self._since
        if self._is_inactivity():
            since = max(since, float(getattr(self.gsock, "last_activity", since)))
        deadline = since + seconds
        if self._clock() < deadline:
            self._timer = self.gaplic.call_at(deadline, self._on_timer)
            return
        self.send_event(self, "EV_TIMEOUT")

    def _is_inactivity(self) -> bool:
        st = self._st
        return st == "ST_SEND_RESPONSE" or (
            st == "ST_WAIT_RESPONSE"
            and self._deadline_kind != "body"
            and not self.settings.responseless_timeout
        )

    def _deadline_reached(self) -> None:
        st = self._st
        active = self._active
        if self._is_inactivity():
            self._close("inactivity")
        elif st == "ST_WAIT_REQUEST":
            self._close("keepalive_timeout")
        elif st == "ST_READ_HEADERS":
            self._close_reason = "header_timeout"
            self._timed_out(408, "request head not received in time")
        elif st == "ST_READ_BODY" or self._deadline_kind == "body":
            self._close_reason = "body_timeout"
            if active is not None and self._resp_started:
                self._close("body_timeout")
            else:
                self._timed_out(408, "request body not received in time")
        elif st == "ST_WAIT_RESPONSE" and active is not None:
            self._close_reason = "responseless_timeout"
            _LOG.debug("%r: no response to %r in time: 504", self, active)
            self._write_error(active, 504, "the application did not respond in time")

    def _timed_out(self, status: int, detail: str) -> None:
        self._input_closed = True
        self._parser.requests.clear()
        request = self._active or HttpRequest()
        request.keep_alive = False
        self._active = request
        self._write_error(request, status, detail)

    # ------------------------------------------------------------------------------------
    #   Closing
    # ------------------------------------------------------------------------------------
    def _close(self, reason: str) -> None:
        """No more requests: drop the GSock gracefully (pending output goes first)."""
        if self._close_reason is None:
            self._close_reason = reason
        if self._st == "ST_CLOSING" or self._st == "ST_UPGRADED":
            return
        self._input_closed = True
        self._set_state("ST_CLOSING", 0.0)
        timer = self._timer
        if timer is not None:
            timer.cancel()
            self._timer = None
        gsock = self.gsock
        if gsock is not None and not gsock._destroyed:
            self.send_event(gsock, "EV_DROP")

    def _disconnected(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self._st = "ST_CLOSING"
        timer = self._timer
        if timer is not None:
            timer.cancel()
            self._timer = None
        self._active = None
        self._channel_closed(self._close_reason or reason)

    def _channel_closed(self, reason: str) -> None:
        try:
            self.broadcast_event("EV_HTTP_CHANNEL_CLOSED", channel=self, reason=reason)
        finally:
            server = self._server
            if server is not None:
                server._channel_closed(self)


class _Discard(list[Any]):
    """A body sink that keeps nothing (the rest of a body nobody reads)."""

    def append(self, item: Any) -> None:
        return None


_DISCARD = _Discard()


def _as_body(body: Any) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    if body is None:
        return b""
    raise ValueError(f"a response body must be bytes or str, not {type(body).__name__}")
