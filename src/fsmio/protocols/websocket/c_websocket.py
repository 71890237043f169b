"""``GWebSocket``: a WebSocket connection (RFC 6455), server or client, as a gobj.

One gclass for both roles (``iam_server``), over a GSock (or, as a client, a reconnecting
GConnex).  The framing, the handshake checks and the close handshake are websockets'
sans-IO layer (``websockets.server.ServerProtocol`` / ``websockets.client.ClientProtocol``,
with its C speedups); what that layer leaves to its caller is done here, in the gobj's own
FSM: message reassembly with limits, incremental UTF-8 validation across fragments (1007
as soon as a bad byte is seen), keepalive pings with a timeout (1011), the peer's pings
answered at the rate it reads (while our output waits, only the latest), the opening and
closing deadlines, reading paused while messages wait to be consumed, and exactly one
``EV_ON_CLOSE`` per ``EV_ON_OPEN``.

Configuration:

=================  =====  ===========  ======================================================
name               type   default      description
=================  =====  ===========  ======================================================
subscriber         None   None         Gets every output event; None means the parent.
gsock              None   None         Server: the connection's GSock (required).  Client:
                                       a GSock or a GConnex to take over; None: a child
                                       GConnex is made from ``resource`` (it reconnects).
request            None   None         Server: a request head already parsed by an HTTP
                                       channel (see "Taking over from an HTTP channel");
                                       None: the handshake is read from the GSock's bytes.
iam_server         bool   True         Server role (False: client).
resource           str    '/'          Client: ``ws://host[:port]/path`` or ``wss://...``
                                       (or just a path when ``gsock`` is given).
ssl_options        None   None         Client with ``wss://`` and no ``gsock``: TLS options
                                       of the child GConnex (None: verify against the
                                       system's CAs, SNI from the URL's host).
connex_kw          dict   {}           Client without ``gsock``: more parameters of the
                                       child GConnex (``timeout_between_connections``,
                                       ``backoff_factor``, ``max_attempts``...).
origin             str    None         Client: the Origin header to send.
subprotocols       list   []           Server: the subprotocols supported, in order of
                                       preference (the first one the client also offers
                                       wins; none in common: no subprotocol).  Client:
                                       the ones offered.
origins            None   None         Server: None accepts any Origin; a list of allowed
                                       Origin values (None in it: a request without
                                       Origin is allowed) rejects others with 403 — the
                                       cross-site WebSocket hijacking check.
extra_headers      list   []           (name, value) pairs added to the 101 response
                                       (server) or to the handshake request (client).
max_message_size   int    1048576      Largest message (after decompression); beyond it:
                                       close 1009, decided on the frame header before its
                                       payload is buffered.  0: no limit.
max_fragments      int    65536        Most frames in one fragmented message (floods of
                                       tiny or empty continuation frames): beyond it 1009.
max_queue          int    16           With ``ack_messages``: messages delivered and not
                                       yet acknowledged; at this many, reading from the
                                       peer pauses until ``EV_ACK_MESSAGE``.
ack_messages       bool   False        False: a message is consumed when the subscriber's
                                       EV_ON_MESSAGE action returns.  True: when the
                                       subscriber sends ``EV_ACK_MESSAGE``.
ping_interval      None   20.0         Seconds between keepalive pings (None or 0: off).
                                       ginsfsm's name (it had 300 s).
ping_timeout       None   20.0         Seconds to wait for the pong; then close 1011 (None
                                       or 0: pings are sent, a missing pong is not fatal).
close_timeout      float  10.0         Seconds the closing handshake (or a failed
                                       opening handshake) may take before TCP is cut.
open_timeout       float  10.0         Seconds from the TCP connection to the end of the
                                       opening handshake (both roles: a server thus
                                       bounds slow handshakes too).
compression        str    None         None: no compression (less memory).  'deflate':
                                       permessage-deflate (negotiated if the peer offers
                                       it); the decompressed size counts toward
                                       ``max_message_size``.
outbuf_overflow    None   None         ginsfsm's name: the GSock's ``outbuf_overflow``
                                       (output kept in memory before spilling to a file)
                                       for the connections it makes from now on (a
                                       client's; a server's GSock is already connected:
                                       set it on the GServerSock); None: the GSock's.
=================  =====  ===========  ======================================================

Input events (top):

* ``EV_SEND_MESSAGE`` — ``data``: a str is sent as a text message, bytes (or bytearray,
  memoryview) as a binary one.  Returns what the GSock's ``EV_SEND_DATA`` returns (bytes
  queued), or -1 when refused (the WebSocket is not open: logged once).
* ``EV_SEND_JSON_MESSAGE`` — ``msg``: ginsfsm's; serialized with ``json.dumps``, sent as
  text.
* ``EV_SEND_PING`` — ``data`` (bytes, up to 125; default ``b''``).
* ``EV_CLOSE`` — ``code`` (default 1000), ``reason`` (default ''): start the closing
  handshake.  An invalid code (1004-1006, 1015, below 1000, 1016-2999 unregistered, above
  4999) raises ``ValueError``.  A client that closes this way stops its GConnex from
  reconnecting (``EV_CONNECT`` starts it again).
* ``EV_DROP`` — abort: the TCP connection is closed without a closing handshake (its
  pending output is still flushed first); a client's GConnex stops reconnecting.
* ``EV_ACK_MESSAGE`` — ``count`` (default 1): with ``ack_messages``, messages consumed.
* ``EV_CONNECT`` — client over a GConnex: connect again after ``EV_CLOSE``/``EV_DROP``.

Output events (to the subscriber; each carries ``ws``, this GWebSocket):

* ``EV_ON_OPEN`` — ``subprotocol`` (str or None), ``headers`` (the handshake request's
  on a server, the response's on a client: a list of (str, str)), ``path`` (the request
  path, with its query).
* ``EV_ON_MESSAGE`` — ``data`` (str for a text message, bytes for a binary one),
  ``binary`` (bool).
* ``EV_ON_PONG`` — ``data``: a pong was received.  Sent only if the subscriber's FSM has
  a row for it.
* ``EV_ON_CLOSE`` — ``code``, ``reason``, ``clean``: the connection is over.  ``code`` and
  ``reason`` are those of the peer's close frame if one came, else those of the close
  frame this end sent (1002, 1007, 1009, 1011... when it failed the connection), else
  1006 (the TCP connection ended without a closing handshake, or the opening handshake
  failed: then ``reason`` says why).  ``clean``: both close frames were exchanged.
  Exactly one after each ``EV_ON_OPEN``, or one alone when the opening handshake failed
  (a client over a GConnex gets a fresh pair for every connection).
* ``EV_TRANSMIT_READY`` — the GSock's meaning (after output that had to wait has drained):
  the producer pattern is to send while ``ws.write_paused`` is false, then wait for it.
  Sent only if the subscriber's FSM has a row for it.

Taking over from an HTTP channel
--------------------------------
A server GWebSocket does the opening handshake in one of two ways:

(a) ``request=None``: from the raw bytes on its GSock (websockets parses the HTTP request
    itself) — so it runs directly on a connection accepted by a ``GServerSock``::

        ws = self.create_gobj(None, GWebSocket, self, gsock=event.kw["gsock"])

(b) from a request head already parsed by an HTTP channel (``GHttpCliSrv``): pass it as
    ``request`` — a mapping, or an object with attributes (``HttpRequest`` is one),
    holding ``method`` (str), ``target`` or ``path`` (bytes or str: the path with its
    query), ``headers`` (a list of ``(bytes, bytes)`` or ``(str, str)`` pairs) and
    ``http_version`` (``'1.1'``) — then hand the connection over with the bytes read past
    the head (``GHttpCliSrv.hand_over_gsock`` does it)::

        ws = self.create_gobj(None, GWebSocket, app, gsock=channel.gsock, request=request)
        channel.hand_over_gsock(request, ws)   # or: gsock.hand_over(ws, data=leftover)

    ``start_up`` checks the request and writes the 101 response (or the rejection: 400,
    403, 405, 426 with ``Sec-WebSocket-Version: 13``, 505, then the connection closes);
    the leftover bytes are then read as WebSocket frames.  ``GHttpServer``'s
    ``EV_HTTP_ACCEPT_WEBSOCKET`` input does all of this (and owns the GWebSocket).

In both cases the GWebSocket makes itself the GSock's only subscriber (``hand_over``).  A
server's GSock stays the child of its GServerSock (which destroys it after
``EV_DISCONNECTED``); the GWebSocket is destroyed by whoever created it, after
``EV_ON_CLOSE`` (destroying it earlier drops the connection); its ``closed_callback``
attribute (None, or a callable given the GWebSocket after each ``EV_ON_CLOSE``) tells a
creator that is not its subscriber.

Theory of operation
-------------------
States: ``ST_CLOSED`` (a client between connections), ``ST_WAITING_HANDSHAKE``,
``ST_OPEN``, ``ST_CLOSING`` (a close frame sent or received: the close timer runs).  The
GSock's ``EV_DISCONNECTED`` ends every state in ``ST_CLOSED`` with the one ``EV_ON_CLOSE``.

One GTimer child serves every deadline, by state: ``open_timeout`` while waiting for the
handshake, the keepalive (``ping_interval``, then ``ping_timeout`` while a ping waits for
its pong) while open, ``close_timeout`` while closing.  Arming it for one purpose cancels
the previous one, and a GTimer never delivers a cancelled expiry.

Received bytes go to the sans-IO protocol; the frames it returns are reassembled here:
a text message's fragments go through an incremental UTF-8 decoder, so an invalid byte
fails the connection (1007) in the frame that carries it, not at the end of the message.
websockets checks each frame's declared length against what is left of
``max_message_size`` before reading its payload (1009), and masking, reserved bits,
opcodes, control frame rules and close codes (1002).  One deviation from websockets: a
close frame arriving in the middle of a fragmented message ends the connection normally
(the close is echoed), as RFC 6455 allows and Autobahn 7.1.5 expects, instead of 1002.

With ``ack_messages`` frames left over when ``max_queue`` messages are unacknowledged are
kept here (reading from the GSock is paused, so at most one read's worth); they are
delivered as acknowledgements come, and all of them before ``EV_ON_CLOSE`` if the
connection ends: nothing received is lost.

The server closes TCP first (websockets asks for it after the close handshake or a
failure; the GSock flushes, then closes); a client waits ``close_timeout`` for the server
to do so, then closes itself.  A peer that never reads makes the GSock's output grow:
past its ``outbuf_max`` the GSock drops the connection (``EV_ON_CLOSE`` code 1006, reason
``tx_overflow``).
"""

from __future__ import annotations

import codecs
import json
import logging
import os
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader, InvalidURI, ProtocolError
from websockets.extensions.permessage_deflate import (
    enable_client_permessage_deflate,
    enable_server_permessage_deflate,
)
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import SEND_EOF, Protocol, State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from fsmio.core.errors import GObjError
from fsmio.core.event import Event
from fsmio.core.gconfig import non_negative_int, positive_int, positive_number
from fsmio.core.gobj import GObj
from fsmio.gobjs.c_connex import GConnex
from fsmio.gobjs.c_sock import GSock
from fsmio.gobjs.c_timer import GTimer

__all__ = ["GWEBSOCKET_FSM", "GWEBSOCKET_GCONFIG", "GWebSocket"]

_LOG = logging.getLogger("fsmio")

_TEXT: Final = Opcode.TEXT
_BINARY: Final = Opcode.BINARY
_CONT: Final = Opcode.CONT
_PING: Final = Opcode.PING
_PONG: Final = Opcode.PONG
_CLOSE: Final = Opcode.CLOSE

_UTF8_DECODER: Final = codecs.getincrementaldecoder("utf-8")


# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
def _optional_seconds(value: Any) -> float | None:
    if value is None or value == "" or value == 0:
        return None
    return float(positive_number(value))


def _origins(value: Any) -> list[str | None] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    origins = list(value)
    for origin in origins:
        if origin is not None and not isinstance(origin, str):
            raise ValueError(f"an origin is a str (or None), not {origin!r}")
    return origins


def _header_pairs(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    items = value.items() if isinstance(value, Mapping) else value
    pairs = []
    for item in items:
        name, val = item
        name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        val = val.decode("latin-1") if isinstance(val, bytes) else str(val)
        if any(c in name + val for c in "\r\n\0"):
            raise ValueError(f"CR, LF or NUL in header {name!r}")
        pairs.append((name, val))
    return pairs


def _compression(value: Any) -> str | None:
    if value in (None, "", "none", False):
        return None
    if value == "deflate":
        return "deflate"
    raise ValueError(f"expected None or 'deflate', not {value!r}")


def _optional_int(value: Any) -> int | None:
    return None if value is None else non_negative_int(value)


GWEBSOCKET_GCONFIG: Final[dict[str, list[Any]]] = {
    "subscriber": [None, None, 0, None, "Gets every output event; None means the parent."],
    "gsock": [None, None, 0, None, "The GSock (server); a GSock or GConnex (client)."],
    "request": [None, None, 0, None, "Server: a request head parsed by an HTTP channel."],
    "iam_server": [bool, True, 0, None, "Server role (False: client)."],
    "resource": [str, "/", 0, None, "Client: ws:// or wss:// URL (or a path)."],
    "ssl_options": [None, None, 0, None, "Client wss:// without gsock: TLS options."],
    "connex_kw": [dict, {}, 0, None, "Client: more parameters of the child GConnex."],
    "origin": [str, None, 0, None, "Client: the Origin header to send."],
    "subprotocols": [list, [], 0, None, "Supported (server) or offered (client)."],
    "origins": [None, None, 0, _origins, "Server: allowed Origins (None: any)."],
    "extra_headers": [None, [], 0, _header_pairs, "Headers added to the handshake."],
    "max_message_size": [int, 1048576, 0, non_negative_int, "1009 beyond it; 0: no limit."],
    "max_fragments": [int, 65536, 0, positive_int, "Most frames in one message."],
    "max_queue": [int, 16, 0, positive_int, "Unacknowledged messages before pausing."],
    "ack_messages": [bool, False, 0, None, "Messages are consumed by EV_ACK_MESSAGE."],
    "ping_interval": [None, 20.0, 0, _optional_seconds, "Keepalive ping period (None: off)."],
    "ping_timeout": [None, 20.0, 0, _optional_seconds, "Pong deadline, then 1011."],
    "close_timeout": [float, 10.0, 0, positive_number, "Closing handshake deadline (s)."],
    "open_timeout": [float, 10.0, 0, positive_number, "Opening handshake deadline (s)."],
    "compression": [None, None, 0, _compression, "None or 'deflate'."],
    "outbuf_overflow": [None, None, 0, _optional_int, "The GSock's outbuf_overflow."],
}


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_connected(self: GWebSocket, event: Event) -> None:
    gsock = event.kw.get("gsock")
    if isinstance(gsock, GSock):
        self._sock = gsock
    if self.config.iam_server:
        # A server's GSock is connected before we exist: a stale event.
        return
    self._start_client_handshake()


def ac_rx_handshake(self: GWebSocket, event: Event) -> None:
    proto = self._proto
    if proto is None:
        return
    proto.hold_failures = True
    try:
        proto.receive_data(event.kw["data"])
    finally:
        proto.hold_failures = False
    events = proto.events_received()
    if self.config.iam_server:
        for ev in events:
            if isinstance(ev, Request):
                self._answer_request(ev)
                break
    else:
        for ev in events:
            if isinstance(ev, Response):
                self._got_response(ev)
                break
    if self._state == "ST_OPEN":
        # Frames that came in the same read as the handshake.
        self._frames.extend(e for e in events if isinstance(e, Frame))
        self._process()
    if proto.held_failure is not None and self._proto is proto:
        proto.fail_held()
        if self._state == "ST_OPEN":
            self._closing()
    self._flush()


def ac_rx_data(self: GWebSocket, event: Event) -> None:
    proto = self._proto
    if proto is None:
        return
    proto.hold_failures = True
    try:
        proto.receive_data(event.kw["data"])
    finally:
        proto.hold_failures = False
    self._frames.extend(proto.events_received())
    # What the subscriber sends while taking these messages goes out in one write.
    self._batching = True
    try:
        self._process()
    finally:
        self._batching = False
    if proto.held_failure is not None and self._proto is proto and proto.fail_held():
        self._closing()
    self._flush()


def ac_ignore(self: GWebSocket, event: Event) -> None:
    return None


def ac_disconnected(self: GWebSocket, event: Event) -> None:
    self._set_timer(-1)
    proto = self._proto
    self._proto = None
    self._sock_paused = False
    code, reason, clean = 1006, self._handshake_error or str(event.kw.get("reason") or ""), False
    try:
        if proto is not None:
            proto.receive_eof()
            proto.data_to_send()
            rcvd, sent = proto.close_rcvd, proto.close_sent
            if self._opened and (rcvd is not None or sent is not None):
                close = rcvd if rcvd is not None else sent
                assert close is not None
                code, reason = int(close.code), close.reason
                clean = rcvd is not None and sent is not None
            # The connection is gone: what the pause held back is delivered now.
            self._proto = proto
            self._process(drain=True)
    finally:
        self._proto = None
        # Even if the subscriber's action raised while taking those messages.
        self._emit_close(code, reason, clean)
        if self._stop_after_close:
            self._stop_after_close = False
            self._drop_carrier()


def ac_send_message(self: GWebSocket, event: Event) -> int:
    data = event.kw.get("data")
    proto = self._proto
    if proto is None or proto.state is not State.OPEN:
        self._log_refused(event.event_name)
        return -1
    if isinstance(data, str):
        proto.send_text(data.encode())
    elif isinstance(data, (bytes, bytearray, memoryview)):
        proto.send_binary(data)
    else:
        raise TypeError(
            f"{self!r}: EV_SEND_MESSAGE data must be str (text) or bytes (binary), "
            f"not {type(data).__name__}"
        )
    return self._sent()


def ac_send_json(self: GWebSocket, event: Event) -> int:
    proto = self._proto
    if proto is None or proto.state is not State.OPEN:
        self._log_refused(event.event_name)
        return -1
    proto.send_text(json.dumps(event.kw.get("msg"), separators=(",", ":")).encode())
    return self._sent()


def ac_send_ping(self: GWebSocket, event: Event) -> int:
    data = event.kw.get("data", b"")
    if isinstance(data, str):
        data = data.encode()
    if len(data) > 125:
        raise ValueError(f"{self!r}: a ping carries at most 125 bytes, not {len(data)}")
    proto = self._proto
    if proto is None or proto.state not in (State.OPEN, State.CLOSING):
        self._log_refused(event.event_name)
        return -1
    proto.send_ping(data)
    return self._sent()


def ac_close(self: GWebSocket, event: Event) -> None:
    code = event.kw.get("code", 1000)
    reason = event.kw.get("reason", "")
    try:
        Close(code, reason).check()
    except ProtocolError:
        raise ValueError(f"{self!r}: EV_CLOSE: {code!r} is not a close code one may send") from None
    if len(reason.encode()) > 123:
        raise ValueError(f"{self!r}: EV_CLOSE: the reason is longer than 123 bytes")
    self._stop_after_close = not self.config.iam_server
    proto = self._proto
    if proto is not None and proto.state is State.OPEN:
        proto.send_close(code, reason)
        self._flush()
        self._closing()


def ac_close_handshaking(self: GWebSocket, event: Event) -> None:
    # Before the handshake completes there is no WebSocket to close: end the connection.
    self._stop_after_close = not self.config.iam_server
    self._drop_sock()


def ac_drop(self: GWebSocket, event: Event) -> None:
    self._stop_after_close = False
    if self.config.iam_server or self._carrier is self._sock:
        self._drop_sock()
    else:
        self._drop_carrier()


def ac_drop_closed(self: GWebSocket, event: Event) -> None:
    if not self.config.iam_server:
        self._drop_carrier()


def ac_connect(self: GWebSocket, event: Event) -> None:
    carrier = self._carrier
    if self.config.iam_server or carrier is None:
        raise GObjError(f"{self!r}: EV_CONNECT is for a client")
    self._stop_after_close = False
    self.send_event(carrier, "EV_CONNECT")


def ac_ack(self: GWebSocket, event: Event) -> None:
    count = int(event.kw.get("count", 1))
    self._unacked = max(0, self._unacked - count)
    if self._proto is not None:
        self._process()
        self._flush()


def ac_transmit_ready(self: GWebSocket, event: Event) -> None:
    proto = self._proto
    if proto is not None and proto.send_deferred_pong():
        self._flush()
    if self.subscribers_take("EV_TRANSMIT_READY"):
        self.broadcast_event("EV_TRANSMIT_READY", ws=self)


def ac_open_timeout(self: GWebSocket, event: Event) -> None:
    self._handshake_error = self._handshake_error or "open_timeout"
    self._cut()


def ac_keepalive(self: GWebSocket, event: Event) -> None:
    proto = self._proto
    if proto is None or proto.state is not State.OPEN:
        return
    if self._ping_payload is None:
        self._ping_payload = os.urandom(4)
        proto.send_ping(self._ping_payload)
        self._flush()
        timeout = self.config.ping_timeout
        self._set_timer(timeout if timeout is not None else self.config.ping_interval)
        if timeout is None:
            self._ping_payload = None
        return
    # The pong did not come in time.
    proto.fail(1011, "keepalive ping timeout")
    self._flush()
    self._closing()


def ac_close_timeout(self: GWebSocket, event: Event) -> None:
    self._cut()


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
GWEBSOCKET_FSM: Final[dict[str, Any]] = {
    "event_list": (
        "EV_SEND_MESSAGE: top input",
        "EV_SEND_JSON_MESSAGE: top input",
        "EV_SEND_PING: top input",
        "EV_CLOSE: top input",
        "EV_DROP: top input",
        "EV_ACK_MESSAGE: top input",
        "EV_CONNECT: top input",
        "EV_ON_OPEN: top output",
        "EV_ON_MESSAGE: top output",
        "EV_ON_PONG: top output",
        "EV_ON_CLOSE: top output",
        "EV_TRANSMIT_READY: bottom input top output",
        "EV_CONNECTED: bottom input",
        "EV_RX_DATA: bottom input",
        "EV_DISCONNECTED: bottom input",
        "EV_TIMEOUT: bottom input",
    ),
    "state_list": ("ST_CLOSED", "ST_WAITING_HANDSHAKE", "ST_OPEN", "ST_CLOSING"),
    "machine": {
        "ST_CLOSED": (
            ("EV_SEND_MESSAGE", ac_send_message, None),
            ("EV_SEND_JSON_MESSAGE", ac_send_json, None),
            ("EV_SEND_PING", ac_send_ping, None),
            ("EV_CLOSE", ac_ignore, None),
            ("EV_DROP", ac_drop_closed, None),
            ("EV_ACK_MESSAGE", ac_ignore, None),
            ("EV_CONNECT", ac_connect, None),
            ("EV_TRANSMIT_READY", ac_ignore, None),
            ("EV_CONNECTED", ac_connected, None),
            ("EV_RX_DATA", ac_ignore, None),
            ("EV_DISCONNECTED", ac_ignore, None),
            ("EV_TIMEOUT", ac_ignore, None),
        ),
        "ST_WAITING_HANDSHAKE": (
            ("EV_SEND_MESSAGE", ac_send_message, None),
            ("EV_SEND_JSON_MESSAGE", ac_send_json, None),
            ("EV_SEND_PING", ac_send_ping, None),
            ("EV_CLOSE", ac_close_handshaking, None),
            ("EV_DROP", ac_drop, None),
            ("EV_ACK_MESSAGE", ac_ignore, None),
            ("EV_CONNECT", ac_ignore, None),
            ("EV_TRANSMIT_READY", ac_ignore, None),
            ("EV_CONNECTED", ac_connected, None),
            ("EV_RX_DATA", ac_rx_handshake, None),
            ("EV_DISCONNECTED", ac_disconnected, "ST_CLOSED"),
            ("EV_TIMEOUT", ac_open_timeout, None),
        ),
        "ST_OPEN": (
            ("EV_SEND_MESSAGE", ac_send_message, None),
            ("EV_SEND_JSON_MESSAGE", ac_send_json, None),
            ("EV_SEND_PING", ac_send_ping, None),
            ("EV_CLOSE", ac_close, None),
            ("EV_DROP", ac_drop, None),
            ("EV_ACK_MESSAGE", ac_ack, None),
            ("EV_CONNECT", ac_ignore, None),
            ("EV_TRANSMIT_READY", ac_transmit_ready, None),
            ("EV_CONNECTED", ac_ignore, None),
            ("EV_RX_DATA", ac_rx_data, None),
            ("EV_DISCONNECTED", ac_disconnected, "ST_CLOSED"),
            ("EV_TIMEOUT", ac_keepalive, None),
        ),
        "ST_CLOSING": (
            ("EV_SEND_MESSAGE", ac_send_message, None),
            ("EV_SEND_JSON_MESSAGE", ac_send_json, None),
            ("EV_SEND_PING", ac_send_ping, None),
            ("EV_CLOSE", ac_ignore, None),
            ("EV_DROP", ac_drop, None),
            ("EV_ACK_MESSAGE", ac_ack, None),
            ("EV_CONNECT", ac_ignore, None),
            ("EV_TRANSMIT_READY", ac_ignore, None),
            ("EV_CONNECTED", ac_ignore, None),
            ("EV_RX_DATA", ac_rx_data, None),
            ("EV_DISCONNECTED", ac_disconnected, "ST_CLOSED"),
            ("EV_TIMEOUT", ac_close_timeout, None),
        ),
    },
}


# ----------------------------------------------------------------------------------------
#   Helpers
# ----------------------------------------------------------------------------------------
class _QuietLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets logs every connection opened, rejected and closed at INFO: routine
    events, kept at DEBUG here."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(logging.DEBUG if level == logging.INFO else level, msg, *args, **kwargs)


_WS_LOG: Final = _QuietLogger(logging.getLogger("fsmio.websocket"), {})


class _Paced(Protocol):
    """What fsmio changes in websockets' protocol (both roles).

    * A close frame in the middle of a fragmented message ends the connection normally
      (RFC 6455 §5.4 lets control frames interleave; Autobahn 7.1.5), not with 1002.
    * A failure found while parsing (a bad frame after good ones in the same read) is
      held until the frames before it have been delivered — and answered: an echo of
      them goes out before the close frame, as the peer sent them before the bad frame.
      ``GWebSocket`` applies it right after (``fail_held``).
    """

    hold_failures = False
    held_failure: tuple[int, str] | None = None
    #: True while our output is waiting (the GWebSocket's ``write_paused``).  A ping that
    #: comes then is not answered at once: only the latest one is kept, and answered when
    #: the output drains (RFC 6455 §5.5.3 lets an endpoint answer only the most recent
    #: ping).  So a peer that floods pings and reads nothing gets pongs at the rate it
    #: reads them, and cannot grow our output by pinging.
    output_waiting: Callable[[], bool] | None = None
    deferred_pong: bytes | None = None

    def fail(self, code: int, reason: str = "") -> None:
        if self.hold_failures and self.held_failure is None:
            self.held_failure = (code, reason)
            return
        super().fail(code, reason)

    def fail_held(self) -> bool:
        held = self.held_failure
        if held is None:
            return False
        self.held_failure = None
        super().fail(*held)
        return True

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is _CLOSE:
            self.current_size = None
        elif (
            frame.opcode is _PING
            and self.state is State.OPEN
            and self.output_waiting is not None
            and self.output_waiting()
        ):
            self.deferred_pong = bytes(frame.data)
            self.events.append(frame)
            return
        super().recv_frame(frame)

    def send_deferred_pong(self) -> bool:
        """Answer the ping kept while the output was waiting; True if a pong was queued."""
        payload = self.deferred_pong
        self.deferred_pong = None
        if payload is None or self.state is not State.OPEN:
            return False
        self.send_pong(payload)
        return True


class _ServerProtocol(_Paced, ServerProtocol):
    def select_subprotocol(self, subprotocols: Sequence[Subprotocol]) -> Subprotocol | None:
        # The first of ours the client offers; none in common (or none offered) is a
        # connection without a subprotocol (RFC 6455 §4.2.2), not websockets' 400.
        for subprotocol in self.available_subprotocols or ():
            if subprotocol in subprotocols:
                return subprotocol
        return None


class _ClientProtocol(_Paced, ClientProtocol):
    pass


def _field(request: Any, *names: str) -> Any:
    for name in names:
        if isinstance(request, Mapping):
            if name in request:
                return request[name]
        elif getattr(request, name, None) is not None:
            return getattr(request, name)
    return None


def _as_ws_request(request: Any) -> Request:
    """A websockets ``Request`` from a head parsed by an HTTP channel."""
    method = _field(request, "method")
    path = _field(request, "target", "path")
    raw_headers = _field(request, "headers")
    version = _field(request, "http_version") or "1.1"
    if not method or not path or raw_headers is None:
        raise GObjError(f"request must have method, target (or path) and headers, not {request!r}")
    if isinstance(method, bytes):
        method = method.decode("latin-1")
    if isinstance(path, bytes):
        path = path.decode("latin-1")
    if isinstance(version, bytes):
        version = version.decode("latin-1")
    version = str(version)
    protocol = version if version.startswith("HTTP/") else f"HTTP/{version}"
    headers = Headers()
    items = raw_headers.items() if isinstance(raw_headers, Mapping) else raw_headers
    for name, value in items:
        headers[name.decode("latin-1") if isinstance(name, bytes) else str(name)] = (
            value.decode("latin-1") if isinstance(value, bytes) else str(value)
        )
    return Request(str(path), headers, method=str(method), protocol=protocol)


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
class GWebSocket(GObj):
    """A WebSocket connection, server or client (see the module documentation)."""

    __slots__ = (
        "_batching",
        "_carrier",
        "_closed_emitted",
        "_decoder",
        "_frag_count",
        "_frag_parts",
        "_frag_text",
        "_frames",
        "_handshake_error",
        "_opened",
        "_ping_payload",
        "_proto",
        "_refused_logged",
        "_sock",
        "_sock_paused",
        "_stop_after_close",
        "_timer",
        "_unacked",
        "closed_callback",
    )

    def __init__(self) -> None:
        GObj.__init__(self, GWEBSOCKET_FSM, GWEBSOCKET_GCONFIG)
        self._proto: _ServerProtocol | _ClientProtocol | None = None
        self._sock: GSock | None = None  # the GSock of the current connection
        self._carrier: GObj | None = None  # what we subscribe to: the GSock or a GConnex
        self._timer: GTimer | None = None
        self._frames: deque[Any] = deque()
        self._batching = False
        self._frag_parts: list[Any] = []
        self._frag_text = False
        self._frag_count = 0
        self._decoder: codecs.IncrementalDecoder | None = None
        self._unacked = 0
        self._sock_paused = False
        self._ping_payload: bytes | None = None
        self._opened = False
        self._closed_emitted = True
        self._handshake_error = ""
        self._stop_after_close = False
        self._refused_logged = False
        #: Called with this GWebSocket after each EV_ON_CLOSE: how the gobj that made it
        #: (a GHttpServer) learns it may destroy it, without being a second subscriber
        #: (one subscriber keeps every broadcast on the fast path).
        self.closed_callback: Callable[[GWebSocket], None] | None = None

    # ------------------------------------------------------------------------------------
    #   Life cycle
    # ------------------------------------------------------------------------------------
    def start_up(self) -> None:
        """Take the GSock over (or make the client's GConnex) and, as a server, start the
        opening handshake."""
        if self.gaplic is None:
            raise GObjError(f"{self!r}: a GWebSocket needs a GAplic (create it through one)")
        config = self.config
        subscriber = config.subscriber
        if subscriber is not None or self.parent is not None:
            self.subscribe_event(None, subscriber)
        self._timer = self.create_gobj("timer", GTimer, self)
        if config.iam_server:
            self._start_server()
        else:
            self._start_client()

    def go_out(self) -> None:
        """Destroyed: a live connection is dropped (no events come after this)."""
        self._proto = None
        self._frames.clear()
        if self._state in ("ST_WAITING_HANDSHAKE", "ST_OPEN", "ST_CLOSING"):
            sock = self._sock
            if sock is not None and not sock._destroyed and not sock.is_closed():
                sock.delete_all_subscriptions(force=True)
                self.send_event(sock, "EV_DROP")

    # ------------------------------------------------------------------------------------
    #   Public
    # ------------------------------------------------------------------------------------
    @property
    def gsock(self) -> GSock | None:
        """The GSock of the current connection (None between a client's connections)."""
        return self._sock

    @property
    def write_paused(self) -> bool:
        """The GSock's output is waiting: a producer stops and waits for
        ``EV_TRANSMIT_READY``."""
        sock = self._sock
        return sock is not None and sock.write_paused

    @property
    def subprotocol(self) -> str | None:
        proto = self._proto
        return None if proto is None else proto.subprotocol

    @property
    def queued_frames(self) -> int:
        """Frames received and held back (``ack_messages`` with ``max_queue`` reached)."""
        return len(self._frames)

    # ------------------------------------------------------------------------------------
    #   Opening
    # ------------------------------------------------------------------------------------
    def _max_size(self) -> int | None:
        return self.config.max_message_size or None

    def _take_over(self, carrier: GObj) -> None:
        self._carrier = carrier
        if isinstance(carrier, GSock):
            self._sock = carrier
            overflow = self.config.outbuf_overflow
            if overflow is not None:
                carrier.write_parameters(outbuf_overflow=overflow)
            carrier.hand_over(self)
        else:
            carrier.delete_all_subscriptions(force=True)
            carrier.subscribe_event(None, self)

    def _start_server(self) -> None:
        config = self.config
        gsock = config.gsock
        if not isinstance(gsock, GSock):
            raise GObjError(f"{self!r}: a server GWebSocket needs gsock=<a GSock>, not {gsock!r}")
        extensions = [enable_server_permessage_deflate(None)[0]] if config.compression else None
        self._proto = _ServerProtocol(
            origins=config.origins,
            extensions=extensions,
            subprotocols=list(config.subprotocols) or None,
            max_size=self._max_size(),
            logger=_WS_LOG,
        )
        self._begin_handshake()
        request = config.request
        if request is not None:
            self._take_over(gsock)
            self._answer_request(_as_ws_request(request))
            if self._proto is not None and self._proto.state is State.OPEN:
                # The head was parsed elsewhere: the parser starts at the frames.
                self._proto.parser = self._proto.parse()
                next(self._proto.parser)
            self._flush()
        else:
            self._take_over(gsock)

    def _start_client(self) -> None:
        config = self.config
        carrier = config.gsock
        if carrier is None:
            try:
                uri = parse_uri(config.resource)
            except InvalidURI as exc:
                raise GObjError(f"{self!r}: resource {config.resource!r}: {exc}") from None
            ssl_options = config.ssl_options
            if uri.secure and not ssl_options:
                ssl_options = {"server_hostname": uri.host}
            kw: dict[str, Any] = {"timeout_waiting_connected": config.open_timeout}
            if config.outbuf_overflow is not None:
                kw["gsock_kw"] = {"outbuf_overflow": config.outbuf_overflow}
            kw.update(config.connex_kw)
            carrier = self.create_gobj(
                "connex",
                GConnex,
                self,
                subscriber=self,
                destinations=[(uri.host, uri.port)],
                ssl_options=ssl_options or None,
                **kw,
            )
            self._carrier = carrier
            return  # it connects by itself: EV_CONNECTED comes
        if not isinstance(carrier, (GSock, GConnex)):
            raise GObjError(f"{self!r}: gsock must be a GSock or a GConnex, not {carrier!r}")
        self._take_over(carrier)
        if isinstance(carrier, GSock):
            state = carrier.get_current_state()
            if state == "ST_CONNECTED":
                self._start_client_handshake()
            elif state == "ST_DISCONNECTED":
                self.send_event(carrier, "EV_CONNECT")
        elif carrier.get_current_state() == "ST_CONNECTED":
            # A GConnex already up: its EV_CONNECTED is gone, the handshake starts now.
            gsock = carrier.gsock
            if isinstance(gsock, GSock):
                self._sock = gsock
                self._start_client_handshake()

    def _output_is_waiting(self) -> bool:
        return self.write_paused

    def _uri(self) -> Any:
        resource = self.config.resource
        if "://" not in resource:
            sock = self._sock
            host, port = ("localhost", 80)
            if sock is not None and sock.get_peername():
                host, port = sock.get_peername()[:2]
            resource = f"ws://{host}:{port}{resource if resource.startswith('/') else '/'}"
        return parse_uri(resource)

    def _start_client_handshake(self) -> None:
        config = self.config
        extensions = [enable_client_permessage_deflate(None)[0]] if config.compression else None
        proto = self._proto = _ClientProtocol(
            self._uri(),
            origin=config.origin,
            extensions=extensions,
            subprotocols=list(config.subprotocols) or None,
            max_size=self._max_size(),
            logger=_WS_LOG,
        )
        request = proto.connect()
        for name, value in config.extra_headers:
            request.headers[name] = value
        proto.send_request(request)
        self._begin_handshake()
        self._flush()

    def _begin_handshake(self) -> None:
        proto = self._proto
        if proto is not None:
            proto.output_waiting = self._output_is_waiting
        self._frames.clear()
        self._reset_message()
        self._unacked = 0
        self._ping_payload = None
        self._opened = False
        self._closed_emitted = False
        self._handshake_error = ""
        self._refused_logged = False
        self.set_new_state("ST_WAITING_HANDSHAKE")
        self._set_timer(self.config.open_timeout)

    def _answer_request(self, request: Request) -> None:
        proto = self._proto
        assert isinstance(proto, ServerProtocol)
        response = proto.accept(request)
        exc = proto.handshake_exc
        if isinstance(exc, InvalidHeader) and exc.name == "Sec-WebSocket-Version":
            # RFC 6455 §4.4: 426 naming the versions this server speaks.
            response = proto.reject(
                426, "Failed to open a WebSocket connection: only version 13 is supported.\n"
            )
            response.headers["Sec-WebSocket-Version"] = "13"
        if response.status_code == 101:
            for name, value in self.config.extra_headers:
                response.headers[name] = value
            proto.send_response(response)
            self._open(list(request.headers.raw_items()), request.path)
        else:
            self._handshake_error = f"rejected: {response.status_code} ({exc})"
            proto.send_response(response)

    def _got_response(self, response: Response) -> None:
        proto = self._proto
        assert proto is not None
        if proto.handshake_exc is not None:
            self._handshake_error = f"handshake failed: {proto.handshake_exc}"
            return
        self._open(list(response.headers.raw_items()), self._uri().resource_name)

    def _open(self, headers: list[tuple[str, str]], path: str) -> None:
        self.set_new_state("ST_OPEN")
        self._opened = True
        self._set_timer(self.config.ping_interval or -1)
        proto = self._proto
        assert proto is not None
        self._flush()  # the 101 goes before anything the subscriber sends
        self.broadcast_event(
            "EV_ON_OPEN", ws=self, subprotocol=proto.subprotocol, headers=headers, path=path
        )

    # ------------------------------------------------------------------------------------
    #   Receiving
    # ------------------------------------------------------------------------------------
    def _reset_message(self) -> None:
        self._frag_parts = []
        self._frag_count = 0
        self._decoder = None

    def _process(self, drain: bool = False) -> None:
        """Turn the frames received into messages, pauses and closes (``drain``: the
        connection is gone: deliver everything held, whatever the acknowledgements)."""
        frames = self._frames
        ack = self.config.ack_messages
        hold = ack and not drain
        max_queue = self.config.max_queue
        broadcast = self.broadcast_event
        while frames:
            if hold and self._unacked >= max_queue:
                break
            frame = frames.popleft()
            if self._destroyed or self._proto is None:
                return
            if type(frame) is not Frame:
                continue
            opcode = frame.opcode
            if frame.fin and (opcode is _TEXT or opcode is _BINARY):
                # The common case, inline: a whole message in one frame.
                if opcode is _TEXT:
                    try:
                        data: str | bytes = bytes(frame.data).decode()
                    except UnicodeDecodeError as exc:
                        self._fail(1007, f"invalid UTF-8 at position {exc.start}")
                        continue
                else:
                    data = bytes(frame.data)
                if ack:
                    self._unacked += 1
                broadcast("EV_ON_MESSAGE", ws=self, data=data, binary=opcode is _BINARY)
            elif opcode is _TEXT or opcode is _BINARY or opcode is _CONT:
                self._data_frame(frame)
            elif opcode is _PONG:
                self._pong(bytes(frame.data))
            elif opcode is _CLOSE:
                self._reset_message()
        if drain or self._proto is None or self._destroyed:
            return
        if self._state == "ST_OPEN" and self._proto.state is not State.OPEN:
            self._closing()
        if hold:
            self._pause_reading(bool(frames) or self._unacked >= max_queue)

    def _data_frame(self, frame: Frame) -> None:
        proto = self._proto
        assert proto is not None
        opcode = frame.opcode
        data = frame.data
        if opcode is not _CONT:
            # The first frame of a fragmented message (whole ones are taken by _process).
            self._frag_text = opcode is _TEXT
            self._frag_count = 1
            if self._frag_text:
                self._decoder = _UTF8_DECODER()
        else:
            self._frag_count += 1
            if self._frag_count > self.config.max_fragments:
                self._fail(1009, "too many fragments")
                return
        decoder = self._decoder
        if decoder is not None:
            try:
                self._frag_parts.append(decoder.decode(data, frame.fin))
            except UnicodeDecodeError as exc:
                self._fail(1007, f"invalid UTF-8 at position {exc.start}")
                return
        else:
            self._frag_parts.append(data)
        if frame.fin:
            parts = self._frag_parts
            is_text = self._frag_text
            self._reset_message()
            if is_text:
                self._deliver("".join(parts), False)
            else:
                self._deliver(b"".join(parts), True)

    def _deliver(self, data: str | bytes, binary: bool) -> None:
        if self.config.ack_messages:
            self._unacked += 1
        self.broadcast_event("EV_ON_MESSAGE", ws=self, data=data, binary=binary)

    def _pong(self, data: bytes) -> None:
        payload = self._ping_payload
        if payload is not None and data == payload:
            self._ping_payload = None
            if self._state == "ST_OPEN":
                self._set_timer(self.config.ping_interval or -1)
        if self.subscribers_take("EV_ON_PONG"):
            self.broadcast_event("EV_ON_PONG", ws=self, data=bytes(data))

    def _fail(self, code: int, reason: str) -> None:
        proto = self._proto
        assert proto is not None
        self._frames.clear()
        self._reset_message()
        proto.held_failure = None  # this failure comes first
        if proto.state is State.CLOSED:
            return  # the connection is gone (held frames being delivered): just stop
        proto.fail(code, reason)
        self._closing()

    def _pause_reading(self, pause: bool) -> None:
        if pause == self._sock_paused:
            return
        sock = self._sock
        if sock is None or sock._destroyed:
            return
        self._sock_paused = pause
        self.send_event(sock, "EV_PAUSE_READING" if pause else "EV_RESUME_READING")

    # ------------------------------------------------------------------------------------
    #   Sending and closing
    # ------------------------------------------------------------------------------------
    def _sent(self) -> int:
        """After a send: flush now, or, while received messages are being delivered, when
        they all are (one write for all the answers of one read); the bytes queued."""
        if self._batching:
            writes = self._proto.writes if self._proto is not None else None
            return len(writes[-1]) if writes else 0
        return self._flush()

    def _flush(self) -> int:
        """Send what the protocol has to send; close TCP when it says so."""
        proto = self._proto
        if proto is None:
            return -1
        writes = proto.data_to_send()
        if not writes:
            return 0
        sock = self._sock
        if sock is None or sock._destroyed:
            return -1
        eof = writes[-1] == SEND_EOF
        if eof:
            writes.pop()
        sent = 0
        if writes:
            data = writes[0] if len(writes) == 1 else b"".join(writes)
            sent = self.send_event(sock, "EV_SEND_DATA", data=data)
        if eof:
            self._drop_sock()
            if self._state == "ST_WAITING_HANDSHAKE":
                self._set_timer(self.config.close_timeout)
        return int(sent)

    def _closing(self) -> None:
        if self._state in ("ST_OPEN", "ST_WAITING_HANDSHAKE"):
            self.set_new_state("ST_CLOSING")
        self._ping_payload = None
        self._set_timer(self.config.close_timeout)
        self._flush()

    def _drop_sock(self) -> None:
        sock = self._sock
        if sock is not None and not sock._destroyed and not sock.is_closed():
            if sock.get_current_state() == "ST_CONNECTED":
                self.send_event(sock, "EV_DROP")
        elif sock is None and self._carrier is not None and not self.config.iam_server:
            self._drop_carrier()

    def _cut(self) -> None:
        """A deadline passed: close the connection gracefully (its output is flushed);
        if that is under way already (a peer that does not read), abort it."""
        sock = self._sock
        if sock is None or sock._destroyed:
            self._drop_sock()
            return
        state = sock.get_current_state()
        if state == "ST_WAIT_DISCONNECTED":
            self.send_event(sock, "EV_DROP")  # a second EV_DROP aborts
        elif state == "ST_CONNECTED":
            self.send_event(sock, "EV_DROP")
            self._set_timer(self.config.close_timeout)

    def _drop_carrier(self) -> None:
        carrier = self._carrier
        if carrier is not None and not carrier._destroyed:
            self.send_event(carrier, "EV_DROP")

    def _emit_close(self, code: int, reason: str, clean: bool) -> None:
        if self._closed_emitted:
            return
        self._closed_emitted = True
        self._opened = False
        try:
            self.broadcast_event("EV_ON_CLOSE", ws=self, code=code, reason=reason, clean=clean)
        finally:
            callback = self.closed_callback
            if callback is not None:
                callback(self)

    def _set_timer(self, seconds: float | None) -> None:
        timer = self._timer
        if timer is not None and not timer._destroyed:
            self.send_event(timer, "EV_SET_TIMER", seconds=-1 if seconds is None else seconds)

    def _log_refused(self, what: str) -> None:
        # Sending after a close frame (a race every echo meets) or between a client's
        # connections is routine: DEBUG.  Sending before EV_ON_OPEN is the application's
        # mistake: WARNING, once per connection.
        early = self._state == "ST_WAITING_HANDSHAKE" and not self._refused_logged
        self._refused_logged = True
        (self.logger or _LOG).log(
            logging.WARNING if early else logging.DEBUG,
            "%r: %s refused in %s: the WebSocket is not open",
            self,
            what,
            self._state,
        )
