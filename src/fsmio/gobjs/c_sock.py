"""``GSock``: a TCP (or TLS) connection as a gobj, on the GAplic's asyncio loop.

A client GSock connects when it gets ``EV_CONNECT``; a GServerSock creates one (already
connecting) for each accepted connection.  Bytes received are broadcast as ``EV_RX_DATA``;
bytes to send go to the transport at once when nothing is waiting (a message of up to
``max(send_bytes, outbuf_overflow)`` bytes), otherwise into an output queue (memory, then
an unlinked temporary file) that hands them over in chunks of ``send_bytes`` as fast as
the transport takes them.

Configuration (the first block is ginsfsm's seed page, same names, types and defaults):

=========================  =====  =================  ==========================================
name                       type   default            description
=========================  =====  =================  ==========================================
subscriber                 None   None               Gets every output event; None: the parent.
host                       str    ''                 Destination host (name, IPv4 or IPv6).
port                       int    0                  Destination port.
ports                      tuple  ()                 Ports tried in turn with use_multi_ports.
use_multi_ports            bool   False              get_next_dst() rotates over ``ports``.
ip                         str    ''                 Written: the peer's resolved IP address.
addr                       None   None               Written: the peer's address tuple
                                                     (None while disconnected).  Direct attr.
ssl_options                dict   {}                 TLS (see ``fsmio.gobjs.tls``): a dict of
                                                     options (or a JSON object string), or
                                                     an ``ssl.SSLContext``.  Empty: plain
                                                     TCP.
tx_buffer_size             int    4096               The transport's write high-water mark:
                                                     above it the GSock stops handing it
                                                     chunks (it resumes at a quarter of it).
send_bytes                 int    18000              Largest chunk the output queue hands to
                                                     the transport.
outbuf_overflow            int    1048576            Output bytes kept in memory; the rest
                                                     goes to an unlinked temporary file.
close_when_flushed         bool   False              Close once the output queue has drained
                                                     (after every byte went to the kernel).
connected_event_name       str    EV_CONNECTED       Output name; None or '' suppresses it.
disconnected_event_name    str    EV_DISCONNECTED    Idem.
rx_data_event_name         str    EV_RX_DATA         Idem.
transmit_ready_event_name  str    EV_TRANSMIT_READY  Idem.
trace_dump                 bool   False              Hexdump tx/rx to the logger (INFO).
_socket_map                None   {}                 Set from the GAplic: its live map
                                                     {fd: gobj} of sockets.  Direct attr.
_impl_poll                 None   None               Set on connect: the asyncio loop the
                                                     GSock runs on.  Direct attr.
n_gsocks                   int    0                  Server stat: live connections (only
                                                     meaningful on a GServerSock).
connect_timeout            float  30.0               Seconds for resolving, connecting and
                                                     the TLS handshake of EV_CONNECT.
ssl_handshake_timeout      float  60.0               TLS handshake deadline (asyncio's).
ssl_shutdown_timeout       float  30.0               TLS close_notify deadline (asyncio's).
drop_timeout               float  30.0               A graceful EV_DROP (or close_when_flushed)
                                                     waits this long for pending output to
                                                     drain, then aborts.
outbuf_high_water          int    16777216           Pending output above which reading from
                                                     the peer is paused.
outbuf_low_water           int    0                  Reading resumes at or below it
                                                     (0: a quarter of outbuf_high_water).
outbuf_max                 int    67108864           Hard limit of pending output: a write
                                                     beyond it drops the connection
                                                     (reason ``tx_overflow``); 0: none.
spill_dir                  str    None               Directory of spill files (None: the
                                                     system's temporary directory).
=========================  =====  =================  ==========================================

Input events:

* ``EV_CONNECT`` — connect.  Optional attributes ``host``, ``port``: the destination of
  this attempt (default: ``get_next_dst()``).
* ``EV_DROP`` — close.  Connected: pending output is delivered first (within
  ``drop_timeout``), then the connection closes.  Connecting: the attempt is aborted.
  Already closing: abort now.
* ``EV_SEND_DATA`` — attribute ``data`` (bytes, or a latin-1 str): write and flush.
  Returns the number of bytes queued, or -1 when refused (disconnected or closing: the
  first refusal of a session is logged as a warning, later ones at debug level).  While
  connecting, the data is queued and sent once connected (lost if the connect fails).
* ``EV_WRITE_OUTPUT_DATA`` — attribute ``data``: write to the output queue only (same
  return value).
* ``EV_FLUSH_OUTPUT_DATA`` — hand the output queue to the transport.
* ``EV_PAUSE_READING`` / ``EV_RESUME_READING`` — stop / start reading from the peer (the
  application's pause: a consumer that cannot keep up, an HTTP body not yet asked for).
  It is independent of the pause that backed-up output makes (``outbuf_high_water``):
  reading resumes only when neither holds.  Sent while connecting, it applies once
  connected; each new connection starts reading.

Output events (broadcast to the subscriber; every one carries ``gsock``, the GSock):

* ``EV_CONNECTED`` — ``peername``, ``sockname``: the connection is up (for TLS, after the
  handshake).
* ``EV_DISCONNECTED`` — ``reason``: one word: ``eof`` (the peer closed), ``dropped``
  (EV_DROP), ``closed`` (close_when_flushed), ``shutdown`` (the GAplic stopped),
  ``reset``, ``refused``, ``unresolvable``, ``timeout``, ``tls_verify_failed``,
  ``tls_error``, ``tls_truncated`` (the TLS peer closed without close_notify: on uvloop;
  asyncio's TLS layer reports it as ``eof``), ``tx_overflow`` (outbuf_max),
  ``spill_failed`` (the spill file could not be written: disk full), ``handler_error``,
  or ``error``; details are logged.  Exactly
  one per ``EV_CONNECT`` (or per accepted connection): after ``EV_CONNECTED``, or alone
  when the connection never came up.  A destroyed GSock sends nothing.
* ``EV_RX_DATA`` — ``data``: bytes received (one event per read of the loop, up to 256
  KiB; never empty).
* ``EV_TRANSMIT_READY`` — ready to take more (ginsfsm's "socket ready to transmit more
  data"): right after ``EV_CONNECTED`` (unless output written in its action is still
  waiting), and when output that had to wait — queued in the GSock, or held by the
  transport above its high-water mark ``tx_buffer_size`` — has drained.  Never after a
  write that went straight to the kernel, never in a loop on an idle connection.  It is
  sent from the loop, never from inside the action that sent the data (a producer sending
  from it does not recurse), and several drains in one loop iteration give one event.
  It is only sent if a subscriber's FSM has a row for it (or the subscriber is a unique
  name or a Deferred): a gobj that does not handle it is not bothered with a warning per
  message.  ``transmit_ready_event_name`` None turns it off entirely.

  The producer pattern (asyncio's ``pause_writing`` / ``resume_writing``): send while
  ``gsock.write_paused`` is false, then stop and wait for ``EV_TRANSMIT_READY``.  Once
  ``write_paused`` is true an ``EV_TRANSMIT_READY`` is sure to follow (unless the
  connection ends first), so such a producer never stalls and never holds more than one
  message beyond the limits.

Handing a connection over: ``gsock.hand_over(new_subscriber, data=b"")`` makes another
gobj the only subscriber of the GSock's output events (a protocol upgrade: an HTTP
channel giving the connection to a WebSocket), and gives it ``data`` — bytes already read
past what the old owner consumed — as an ``EV_RX_DATA`` at once.  The connection, its
queued output and its reading pause are untouched.

Theory of operation
-------------------
The GSock *is* the asyncio ``Protocol`` (no adapter object per connection).  Its FSM has
four states: ``ST_DISCONNECTED`` -> (EV_CONNECT) ``ST_WAIT_CONNECTED`` -> (the transport's
``connection_made``) ``ST_CONNECTED`` -> (EV_DROP, close_when_flushed, the peer's EOF)
``ST_WAIT_DISCONNECTED`` -> (``connection_lost``) ``ST_DISCONNECTED``.  The protocol
callbacks enter the FSM as bottom input events (``EV_TRANSPORT_UP``,
``EV_CONNECT_FAILED``, ``EV_TRANSPORT_LOST``) — except ``data_received``, which
broadcasts ``EV_RX_DATA`` at once: it is the hot path.

The connect runs as a task (``loop.create_connection``, non-blocking DNS, IPv4 and IPv6)
under ``connect_timeout``; EV_DROP cancels it.  Writes go into a ``FlowQueue``
(``fsmio.gobjs.outbuf``); a flush hands chunks to ``transport.write`` until the transport
calls ``pause_writing`` (its buffer above ``tx_buffer_size``); ``resume_writing``
flushes again.  Pending output above ``outbuf_high_water`` pauses *reading* from the
peer (so an echo facing a peer that never reads stays bounded), resumed at the low-water
mark.

The peer's EOF: the data before it was already delivered; pending output is flushed,
then the connection closes (reason ``eof``) — half-open connections are not kept.

An exception raised by a subscriber's action inside a protocol callback is given to
``gaplic.handle_exception`` (logged once, no payload dump) and the connection is aborted
with the reason ``handler_error``; nothing escapes into asyncio.

Differences from ginsfsm: IPv6 and non-blocking DNS; EV_CONNECT's host/port honoured;
EV_DROP aborts a pending connect; data arriving with the FIN is delivered; no empty
EV_RX_DATA; EV_PAUSE_READING / EV_RESUME_READING and ``hand_over``; buffers are fresh on every
connection (nothing stale is replayed) and writes while disconnected are refused (return
-1); ``tx_buffer_size`` is the transport's high-water mark; ``txed_*`` stats are counted;
a client does TLS too, verifying certificates and host names by default.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, cast

from fsmio.core.errors import GObjError
from fsmio.core.event import Event
from fsmio.core.gconfig import (
    FLAG_DIRECT_ATTR,
    non_negative_int,
    port_number,
    positive_int,
    positive_number,
)
from fsmio.core.gobj import GObj, Subscription
from fsmio.core.smachine import MachineCore
from fsmio.gobjs.outbuf import EMPTY_OUTBUF, FlowQueue, OutBufOverflow, as_bytes
from fsmio.gobjs.tls import make_ssl_context, server_hostname_of

if TYPE_CHECKING:
    from fsmio.aplic.gaplic import GAplic, TimerHandle

__all__ = [
    "GSOCK_FSM",
    "GSOCK_GCONFIG",
    "GSock",
    "close_all_sockets",
    "hexdump",
    "socket_map_of",
]

_LOG = logging.getLogger("fsmio")

# GSock.global_trace_dump() and GSock._global_trace_dump (ginsfsm's class attribute, a
# property of the metaclass over this): a module global, because it is read twice per
# message and a global is one specialized load where a class attribute read through an
# instance is not.
_trace_dump_all = False


# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
def _ports(value: Any) -> Any:
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return tuple(port_number(p) for p in (value or ()))


def _ssl_options(value: Any) -> Any:
    # Empty (plain TCP) reads as {}, as in ginsfsm.  The template's {} default costs an
    # idle connection nothing: GConfig copies a mutable default into a gobj's config only
    # when it is first read, and start_up gives that copy back (see there).  A str is a
    # JSON object (from an ini or TOML setting), as GConnex's ssl_options takes.
    if isinstance(value, str) and value.strip():
        value = json.loads(value)
    if value is None or value == "" or (isinstance(value, Mapping) and not value):
        return {}
    if isinstance(value, ssl.SSLContext):
        return value
    if isinstance(value, Mapping):
        return dict(value)
    raise ValueError(f"expected a dict or an ssl.SSLContext, not {type(value).__name__}")


GSOCK_GCONFIG: Final[dict[str, list[Any]]] = {
    "subscriber": [None, None, 0, None, "Gets every output event; None means the parent."],
    "host": [str, "", 0, None, "Server or client host (name, IPv4 or IPv6)."],
    "port": [int, 0, 0, port_number, "Server or client port."],
    "ports": [tuple, (), 0, _ports, "Multi ports (with use_multi_ports)."],
    "use_multi_ports": [bool, False, 0, None, "Use the ports of `ports` in turn."],
    "ip": [str, "", 0, None, "Written on connect: the peer's IP address."],
    "addr": [None, None, FLAG_DIRECT_ATTR, None, "Peer name (None while disconnected)."],
    "ssl_options": [None, {}, 0, _ssl_options, "TLS options (dict) or an ssl.SSLContext."],
    "tx_buffer_size": [int, 4096, 0, positive_int, "The transport's write high-water mark."],
    "send_bytes": [int, 18000, 0, positive_int, "Largest chunk the queue hands over."],
    "outbuf_overflow": [int, 1048576, 0, non_negative_int, "Output kept in memory."],
    "close_when_flushed": [bool, False, 0, None, "Close the socket when flushed."],
    "connected_event_name": [str, "EV_CONNECTED", 0, None, "None or '' suppresses it."],
    "disconnected_event_name": [str, "EV_DISCONNECTED", 0, None, "None or '' suppresses it."],
    "rx_data_event_name": [str, "EV_RX_DATA", 0, None, "None or '' suppresses it."],
    "transmit_ready_event_name": [
        str,
        "EV_TRANSMIT_READY",
        0,
        None,
        "None or '' suppresses it.",
    ],
    "trace_dump": [bool, False, FLAG_DIRECT_ATTR, None, "Hexdump tx/rx messages."],
    "_socket_map": [None, {}, FLAG_DIRECT_ATTR, None, "Set from the GAplic: {fd: gobj}."],
    "_impl_poll": [None, None, FLAG_DIRECT_ATTR, None, "Set on connect: the asyncio loop."],
    "n_gsocks": [int, 0, 0, None, "Server stats: number of live gsocks."],
    "connect_timeout": [float, 30.0, 0, positive_number, "Connect deadline (s)."],
    "ssl_handshake_timeout": [float, 60.0, 0, positive_number, "TLS handshake deadline."],
    "ssl_shutdown_timeout": [float, 30.0, 0, positive_number, "TLS shutdown deadline."],
    "drop_timeout": [float, 30.0, 0, positive_number, "Graceful close deadline (s)."],
    "outbuf_high_water": [
        int,
        16 * 1048576,
        0,
        positive_int,
        "Pending output above which reading from the peer pauses.",
    ],
    "outbuf_low_water": [
        int,
        0,
        0,
        non_negative_int,
        "Reading resumes at or below it (0: outbuf_high_water / 4).",
    ],
    "outbuf_max": [
        int,
        64 * 1048576,
        0,
        non_negative_int,
        "Hard limit of pending output (0: none); beyond it: drop, reason tx_overflow.",
    ],
    "spill_dir": [str, None, 0, None, "Directory of spill files (None: the system's)."],
}


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_connect(self: GSock, event: Event) -> None:
    kw = event.kw
    try:
        host, port = self.get_next_dst()
        if kw.get("host") is not None:
            host = str(kw["host"])
        if kw.get("port") is not None:
            port = port_number(kw["port"])
    except Exception:
        # A bad port (or a get_next_dst() that raised) is the caller's error: raise it,
        # but do not stay in ST_WAIT_CONNECTED with no attempt under way.
        self.set_new_state("ST_DISCONNECTED")
        raise
    self._start_connect(host, port)


def ac_already(self: GSock, event: Event) -> None:
    (self.logger or _LOG).warning(
        "%r: %s ignored in %s", self, event.event_name, self.get_current_state()
    )


def ac_abort_connect(self: GSock, event: Event) -> None:
    self._abort_connect("dropped")


def ac_connect_failed(self: GSock, event: Event) -> None:
    self._connect_task = None
    self._disconnected(event.kw.get("reason", "error"))


def ac_transport_up(self: GSock, event: Event) -> None:
    self._connect_task = None
    name = self.config.connected_event_name
    if name:
        self.broadcast_event(
            name, gsock=self, peername=self._peername, sockname=self.get_sockname()
        )
    if self._transport is None or self._state != "ST_CONNECTED":
        return  # the subscriber dropped it (or it was lost) meanwhile
    if self._queue.pending:
        self._pump()
    # Ready at once (in order, right after EV_CONNECTED) unless output is waiting: then
    # when it has drained.  A ready already scheduled by that pump is this one.
    queue = self._queue
    if self._state == "ST_CONNECTED" and not queue.pending and not queue.sink_paused:
        self._cancel_ready()
        name = self.config.transmit_ready_event_name
        if name and self.subscribers_take(name):
            self.broadcast_event(name, gsock=self)


def ac_send_data(self: GSock, event: Event) -> int:
    # event.__dict__ *is* event.kw (see fsmio.core.event), without the property call.
    data = event.__dict__.get("data", b"")
    queue = self._queue
    transport = self._transport
    if (
        type(data) is bytes
        and transport is not None
        and not queue.sink_paused
        # An idle queue holds the shared empty OutBuf: an identity test, no property.
        and (queue.buf is EMPTY_OUTBUF or not queue.buf.pending)
        and 0 < len(data) <= self._direct_max
    ):
        # The hot path (an echo's reply): nothing queued and the transport not paused:
        # hand the whole message over at once (one syscall, no copy).  The transport
        # keeps what the kernel did not take and pauses us past its high-water mark, so
        # it holds at most one message (<= max(send_bytes, outbuf_overflow)) beyond
        # tx_buffer_size; everything after waits in the queue.  What follows a flush
        # (close_when_flushed, EV_TRANSMIT_READY) is kept.
        # No EV_TRANSMIT_READY for it: if the transport had to keep some of it past its
        # high-water mark it calls pause_writing, and the ready follows resume_writing.
        self._tx(data)
        if self.config.close_when_flushed:
            self._close_gracefully("closed")
        return len(data)
    n = self.mt_write(data)
    if n >= 0:
        self.mt_flush()
    return n


def ac_write(self: GSock, event: Event) -> int:
    return self.mt_write(event.kw.get("data", b""))


def ac_flush(self: GSock, event: Event) -> None:
    self.mt_flush()


def ac_pause_reading(self: GSock, event: Event) -> None:
    self._set_app_read_paused(True)


def ac_resume_reading(self: GSock, event: Event) -> None:
    self._set_app_read_paused(False)


def ac_refuse_write(self: GSock, event: Event) -> int:
    self._log_refused(event.event_name)
    return -1


def ac_nothing(self: GSock, event: Event) -> None:
    return None


def ac_drop(self: GSock, event: Event) -> None:
    self._close_gracefully("dropped")


def ac_abort(self: GSock, event: Event) -> None:
    self._abort(self._close_reason or "dropped")


def ac_transport_lost(self: GSock, event: Event) -> None:
    self._disconnected(event.kw.get("reason", "error"))


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
GSOCK_FSM: Final[dict[str, Any]] = {
    "event_list": (
        "EV_CONNECT: top input",
        "EV_DROP: top input",
        "EV_SEND_DATA: top input",
        "EV_WRITE_OUTPUT_DATA: top input",
        "EV_FLUSH_OUTPUT_DATA: top input",
        "EV_PAUSE_READING: top input",
        "EV_RESUME_READING: top input",
        "EV_CONNECTED: top output",
        "EV_DISCONNECTED: top output",
        "EV_RX_DATA: top output",
        "EV_TRANSMIT_READY: top output",
        "EV_TRANSPORT_UP: bottom input",
        "EV_CONNECT_FAILED: bottom input",
        "EV_TRANSPORT_LOST: bottom input",
    ),
    "state_list": (
        "ST_DISCONNECTED",
        "ST_WAIT_CONNECTED",
        "ST_CONNECTED",
        "ST_WAIT_DISCONNECTED",
    ),
    "machine": {
        "ST_DISCONNECTED": (
            ("EV_CONNECT", ac_connect, "ST_WAIT_CONNECTED"),
            ("EV_DROP", ac_nothing, None),
            ("EV_SEND_DATA", ac_refuse_write, None),
            ("EV_WRITE_OUTPUT_DATA", ac_refuse_write, None),
            ("EV_FLUSH_OUTPUT_DATA", ac_nothing, None),
            ("EV_PAUSE_READING", ac_pause_reading, None),
            ("EV_RESUME_READING", ac_resume_reading, None),
        ),
        "ST_WAIT_CONNECTED": (
            ("EV_CONNECT", ac_already, None),
            ("EV_DROP", ac_abort_connect, "ST_DISCONNECTED"),
            ("EV_SEND_DATA", ac_write, None),
            ("EV_WRITE_OUTPUT_DATA", ac_write, None),
            ("EV_FLUSH_OUTPUT_DATA", ac_nothing, None),
            ("EV_PAUSE_READING", ac_pause_reading, None),
            ("EV_RESUME_READING", ac_resume_reading, None),
            ("EV_TRANSPORT_UP", ac_transport_up, "ST_CONNECTED"),
            ("EV_CONNECT_FAILED", ac_connect_failed, "ST_DISCONNECTED"),
        ),
        "ST_CONNECTED": (
            ("EV_CONNECT", ac_already, None),
            ("EV_DROP", ac_drop, None),
            ("EV_SEND_DATA", ac_send_data, None),
            ("EV_WRITE_OUTPUT_DATA", ac_write, None),
            ("EV_FLUSH_OUTPUT_DATA", ac_flush, None),
            ("EV_PAUSE_READING", ac_pause_reading, None),
            ("EV_RESUME_READING", ac_resume_reading, None),
            ("EV_TRANSPORT_LOST", ac_transport_lost, "ST_DISCONNECTED"),
        ),
        "ST_WAIT_DISCONNECTED": (
            ("EV_CONNECT", ac_already, None),
            ("EV_DROP", ac_abort, None),
            ("EV_SEND_DATA", ac_refuse_write, None),
            ("EV_WRITE_OUTPUT_DATA", ac_refuse_write, None),
            ("EV_FLUSH_OUTPUT_DATA", ac_nothing, None),
            ("EV_PAUSE_READING", ac_pause_reading, None),
            ("EV_RESUME_READING", ac_resume_reading, None),
            ("EV_TRANSPORT_LOST", ac_transport_lost, "ST_DISCONNECTED"),
        ),
    },
}


# ----------------------------------------------------------------------------------------
#   Helpers
# ----------------------------------------------------------------------------------------
def hexdump(prefix: str, data: bytes, width: int = 16) -> str:
    """ginsfsm-style hexdump: offset, hex bytes, printable characters, one line per row."""
    lines = [f"{prefix} ({len(data)} bytes)"]
    for offset in range(0, len(data), width):
        row = data[offset : offset + width]
        hexpart = " ".join(f"{b:02X}" for b in row)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{offset:04X}: {hexpart:<{width * 3}} {text}")
    return "\n".join(lines)


class _SocketRegistry:
    """Per GAplic: the live {fd: gobj} map, the connect attempts under way, and the
    shutdown sequence of its sockets."""

    __slots__ = ("connecting", "gaplic", "map", "owner_closes")

    def __init__(self, gaplic: GAplic) -> None:
        self.gaplic = gaplic
        # The GAplic's own dict when it has one (GAplic._socket_map, ginsfsm's name).
        own = getattr(gaplic, "_socket_map", None)
        self.map: dict[int, GObj] = own if isinstance(own, dict) else {}
        self.connecting: dict[GSock, None] = {}
        # GSocks whose owner closes them itself when the GAplic stops (an HTTP channel
        # finishing its response): waited for, aborted only when shutdown_grace is over.
        self.owner_closes: dict[GSock, None] = {}
        gaplic.add_shutdown_callback(self.shutdown, late=True)

    def shutdown(self) -> Awaitable[None] | None:
        """Stop listeners first, abort connect attempts, then drop every connection
        gracefully: pending output is flushed within the GAplic's shutdown_grace, what is
        left then is aborted (reason ``shutdown`` everywhere)."""
        gobjs = list(self.map.values())
        tasks: list[asyncio.Task[None]] = []
        # Imported here: c_srv_sock builds on this module (a top-level import would cycle).
        from fsmio.gobjs.c_srv_sock import GServerSock

        for gobj in gobjs:
            if isinstance(gobj, GServerSock):
                gobj.stop_listening()
                # connections still being set up (TLS handshakes) are dropped
                tasks.extend(gobj._shutdown_attaching())
        for gsock in list(self.connecting):
            task = gsock._connect_task
            if task is not None:
                tasks.append(task)
            if gsock._state == "ST_WAIT_CONNECTED":
                gsock._abort_connect("shutdown")
        socks = [g for g in gobjs if isinstance(g, GSock) and g._transport is not None]
        owner_closes = self.owner_closes
        for gsock in socks:
            if gsock not in owner_closes:
                gsock._close_gracefully("shutdown")
        if not socks and not tasks:
            return None
        return self._wait_closed(socks, tasks)

    async def _wait_closed(self, socks: list[GSock], tasks: list[asyncio.Task[None]]) -> None:
        try:
            for _ in range(1_000_000):  # bounded by shutdown_grace (wait_for) anyway
                if all(s._transport is None for s in socks) and all(t.done() for t in tasks):
                    return
                await asyncio.sleep(0.005)
        finally:
            # shutdown_grace is over (the GAplic cancelled us): what is left is aborted,
            # so no transport outlives the loop.
            for gsock in socks:
                if gsock._transport is not None:
                    gsock._abort("shutdown")


def _socket_registry(gaplic: Any) -> _SocketRegistry:
    registry: _SocketRegistry | None = getattr(gaplic, "_fsmio_sockets", None)
    if registry is None:
        registry = _SocketRegistry(gaplic)
        gaplic._fsmio_sockets = registry
    return registry


def socket_map_of(gaplic: Any) -> dict[int, GObj]:
    """The GAplic's live map {fd: gobj} of sockets (made, with its shutdown callback, on
    first use)."""
    return _socket_registry(gaplic).map


def close_all_sockets(socket_map: dict[int, Any], ignore_all: bool = False) -> None:
    """Close every socket of ``socket_map`` (a GAplic's ``_socket_map``) at once, and
    empty it: listeners stop listening, connections are aborted (output still pending
    is lost).  (A connect attempt under way is not in the map: EV_DROP cancels it.)

    ginsfsm's programs call it after ``start()`` was interrupted.  fsmio's GAplic closes
    its sockets itself when it stops (gracefully, flushing first), so there the map is
    already empty.  Unlike ginsfsm, where the sockets vanished without an event, each
    GSock's ``EV_DISCONNECTED`` (reason ``shutdown``) follows if the loop runs again.
    An error closing one is raised unless ``ignore_all`` (the others are closed first).
    """
    failure: BaseException | None = None
    for gobj in list(socket_map.values()):
        try:
            stop_listening = getattr(gobj, "stop_listening", None)
            if stop_listening is not None:
                stop_listening()
            elif isinstance(gobj, GSock):
                gobj._abort("shutdown")
        except Exception as exc:
            if failure is None and not ignore_all:
                failure = exc
    socket_map.clear()
    if failure is not None:
        raise failure


def _reason_of(exc: BaseException | None) -> str:
    if exc is None:
        return "eof"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls_verify_failed"
    if isinstance(exc, ssl.SSLError):
        return "tls_error"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "reset"
    if isinstance(exc, TimeoutError):
        return "timeout"
    import socket  # local: only on the failure path

    if isinstance(exc, socket.gaierror):
        return "unresolvable"
    if isinstance(exc, OSError) and "Multiple exceptions" in str(exc):
        # asyncio tried several addresses; it only gives their messages
        import errno
        import re

        codes = {int(n) for n in re.findall(r"\[Errno (\d+)\]", str(exc))}
        if codes == {errno.ECONNREFUSED}:
            return "refused"
        if codes and codes <= {errno.ETIMEDOUT, errno.ECONNREFUSED}:
            return "timeout"
    return "error"


# The (event name, taken) pairs of GSock._wants_cache, shared: one per name and answer,
# not a 56-byte tuple per connection.
_WANTS_PAIRS: dict[tuple[str, bool], tuple[str, bool]] = {}


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
class _GSockType(type):
    """GSock's metaclass, for ginsfsm's class attribute ``GSock._global_trace_dump``.

    ginsfsm's programs switch every GSock's hexdump on with
    ``GSock._global_trace_dump = True``.  The per-message check reads the module global
    ``_trace_dump_all`` (one specialized load, where a class attribute read through the
    instance is a slower look-up), so the class attribute is a property of the metaclass
    over that global: the assignment takes effect and the hot path is unchanged.  It is
    the same flag on every GSock subclass.
    """

    @property
    def _global_trace_dump(cls) -> bool:
        return _trace_dump_all

    @_global_trace_dump.setter
    def _global_trace_dump(cls, value: bool) -> None:
        global _trace_dump_all
        _trace_dump_all = bool(value)


class GSockCore(MachineCore):
    """The per-message part of a GSock: the fields its receive and send path touch, and
    ``data_received`` and ``_tx``.

    GSock's base, a class of its own so that the compiled build makes it an extension
    type whose fields are C struct members (``c_sock.pxd``, docs/compiled.md); in the
    pure-Python build they are slots.  Not for direct use: a GSock is one.
    """

    __slots__ = (
        "_clock",
        "_direct_max",
        "_queue",
        "_read_paused_by_app",
        "_rx_held",
        "_transport",
        "last_activity",
        "rxed_bytes",
        "rxed_msgs",
        "trace_dump",
        "txed_bytes",
        "txed_msgs",
    )

    # `self: GSock`: a GSockCore is only ever a GSock's base (mypy wants a supertype here;
    # the methods read GSock's other attributes, as GObj's methods read a gclass's).
    def data_received(self: GSock, data: bytes) -> None:  # type: ignore[misc]
        if self._read_paused_by_app or self._rx_held:
            # A read the transport made despite the pause (uvloop starts reading right
            # after connection_made; a TLS layer may hold decrypted data): kept, in order,
            # until EV_RESUME_READING.
            self._rx_held += data
            if self._read_paused_by_app and self._transport is not None:
                self._transport.pause_reading()
            return
        self.rxed_msgs += 1
        self.rxed_bytes += len(data)
        self.last_activity = self._clock()
        if self.trace_dump or _trace_dump_all:
            (self.logger or _LOG).info(hexdump(f"{self!r} RX <-", data))
        name = self.config.rx_data_event_name
        if name:
            try:
                self.broadcast_event(name, gsock=self, data=data)
            except Exception as exc:
                self._handler_error(exc)

    def _tx(self: GSock, data: bytes) -> None:  # type: ignore[misc]
        transport = self._transport
        assert transport is not None
        self.txed_msgs += 1
        self.txed_bytes += len(data)
        self.last_activity = self._clock()
        if self.trace_dump or _trace_dump_all:
            (self.logger or _LOG).info(hexdump(f"{self!r} TX ->", data))
        transport.write(data)


class GSock(GObj, GSockCore, asyncio.Protocol, metaclass=_GSockType):
    """A TCP/TLS connection gobj (see the module documentation)."""

    # Per-connection memory is a goal: slots for everything a GSock adds to a GObj.
    # (and GSockCore's, for the fields of the per-message path).
    __slots__ = (
        "_close_reason",
        "_connect_task",
        "_drop_timer",
        "_dst_index",
        "_fd",
        "_impl_poll",
        "_peername",
        "_ready_handle",
        "_refused_logged",
        "_registry",
        "_server",
        "_sock",
        "_socket_map",
        "_ssl_ctx",
        "_wants_cache",
        "addr",
    )

    trace_dump: bool
    addr: Any
    _socket_map: dict[int, GObj]
    _impl_poll: Any
    _registry: _SocketRegistry  # set by start_up

    def __init__(self) -> None:
        GObj.__init__(self, GSOCK_FSM, GSOCK_GCONFIG)
        self._transport: asyncio.Transport | None = None
        self._queue = FlowQueue()
        self._read_paused_by_app = False
        self._rx_held = b""
        self._direct_max = self._queue.send_bytes
        self._connect_task: asyncio.Task[None] | None = None
        self._ssl_ctx: ssl.SSLContext | None = None
        self._server: Any = None  # the GServerSock of an accepted connection
        self._peername: Any = None
        # An accepted connection's socket object (from its GServerSock; the transport holds
        # it anyway): its fd and sockname without asking the transport, whose uvloop
        # version makes and keeps a socket object of its own (72 bytes) when asked.
        self._sock: Any = None
        self._fd = -1
        self._close_reason: str | None = None
        self._drop_timer: TimerHandle | None = None
        self._ready_handle: asyncio.Handle | None = None
        self._refused_logged = False
        self._wants_cache: tuple[str, bool] | None = None
        self._dst_index = 0
        self.txed_msgs = 0
        self.txed_bytes = 0
        self.rxed_msgs = 0
        self.rxed_bytes = 0
        self.last_activity = 0.0

    # ------------------------------------------------------------------------------------
    #   Life cycle
    # ------------------------------------------------------------------------------------
    def start_up(self) -> None:
        """Check the TLS options, join the GAplic's socket map, and subscribe the
        subscriber (None: the parent) to every output event."""
        if self.gaplic is None:
            raise GObjError(f"{self!r}: a GSock needs a GAplic (create it through one)")
        config = self.config
        ssl_options = config.ssl_options
        # Most GSocks (every accepted one: its server does the TLS) have none: no repr().
        self._ssl_ctx = make_ssl_context(ssl_options, False, repr(self)) if ssl_options else None
        if not ssl_options:
            # Reading the {} default made this GSock its own copy (GConfig copies a
            # mutable default at its first read): give it back, an idle connection does
            # not carry it (a later read makes a fresh one).
            del config.ssl_options
        self._clock: Callable[[], float] = self.gaplic._clock
        self._registry = _socket_registry(self.gaplic)
        self._socket_map = self._registry.map
        subscriber = self.config.subscriber
        if subscriber is not None or self.parent is not None:
            self.subscribe_event(None, subscriber)

    def go_out(self) -> None:
        """Destroyed: abort the connection or the connect attempt; no more events."""
        task = self._connect_task
        self._connect_task = None
        if task is not None:
            task.cancel()
        self._cancel_drop_timer()
        self._cancel_ready()
        transport = self._transport
        if transport is not None:
            self._close_reason = self._close_reason or "destroyed"
            transport.abort()
        self._unregister()
        self._queue.close()
        server = self._server
        if server is not None:
            server._child_destroyed(self)

    # ------------------------------------------------------------------------------------
    #   Public methods
    # ------------------------------------------------------------------------------------
    def get_next_dst(self) -> tuple[str, int]:
        """The destination of the next EV_CONNECT: ``(host, port)``; with
        ``use_multi_ports``, the ports of ``ports`` in turn.  Override for another policy."""
        ports = self.config.ports
        if self.config.use_multi_ports and ports:
            port = ports[self._dst_index % len(ports)]
            self._dst_index += 1
            return self.config.host, port
        return self.config.host, self.config.port

    def get_peername(self) -> Any:
        """The remote address of the connection (None while disconnected)."""
        return self._peername if self._transport is not None else None

    def get_sockname(self) -> Any:
        """The connection's own address (None while disconnected)."""
        # Asked when needed, not kept: an idle connection does not carry the tuple.
        transport = self._transport
        if transport is None:
            return None
        sock = self._sock
        if sock is None:
            return transport.get_extra_info("sockname")
        try:
            return sock.getsockname()
        except OSError:  # closed under us
            return None

    def is_closed(self) -> bool:
        """No transport (never connected, or disconnected)."""
        return self._transport is None

    def is_disconnected(self) -> bool:
        """In ST_DISCONNECTED."""
        return self._state == "ST_DISCONNECTED"

    @property
    def connected(self) -> bool:
        """Whether the connection is up (ginsfsm's attribute): from EV_CONNECTED until
        the transport is gone (while a graceful drop flushes, too)."""
        return self._state in ("ST_CONNECTED", "ST_WAIT_DISCONNECTED")

    @property
    def pending_output(self) -> int:
        """Bytes written and not yet handed to the transport."""
        return self._queue.pending

    @property
    def write_paused(self) -> bool:
        """Output is waiting (queued here, or the transport above its high-water mark): a
        producer stops sending and waits for ``EV_TRANSMIT_READY``, which is sure to come
        (unless the connection ends first)."""
        queue = self._queue
        return queue.sink_paused or queue.buf.pending > 0

    @property
    def reading_paused(self) -> bool:
        """Reading from the peer is paused (by EV_PAUSE_READING, or by backed-up output)."""
        return self._read_paused_by_app or self._queue.reading_paused

    def hand_over(self, new_subscriber: Any, data: bytes = b"") -> None:
        """Give this connection to ``new_subscriber``: it becomes the only subscriber of
        every output event (the current ones, hard ones included, are removed), and gets
        ``data`` (bytes already read from the peer that the old owner did not consume) as
        an ``EV_RX_DATA`` at once.  The connection itself, its queued output and its
        reading pause are untouched: a protocol upgrade, or a hand-off to another gobj."""
        if self._destroyed:
            raise GObjError(f"{self!r}: hand_over() on a destroyed GSock")
        self.delete_all_subscriptions(force=True)
        self.subscribe_event(None, new_subscriber)
        # config.subscriber names the owner for whoever reads it (tools, the inspector).
        self.write_parameters(subscriber=new_subscriber)
        name = self.config.rx_data_event_name
        if data and name:
            self.rxed_msgs += 1
            self.rxed_bytes += len(data)
            self.broadcast_event(name, gsock=self, data=bytes(data))

    def close_on_shutdown_by_owner(self) -> None:
        """When the GAplic stops, leave this connection to its owner (which closes it
        itself, e.g. once the response in flight is sent) instead of dropping it with the
        other sockets; it is aborted only if still open when ``shutdown_grace`` is over.
        Call it from the owner's own shutdown callback (sockets close after those)."""
        if self._transport is not None:
            self._registry.owner_closes[self] = None

    @property
    def spill_fileno(self) -> int | None:
        """The descriptor of the output spill file (None if none); for tests and tools."""
        return self._queue.buf.spill_fileno()

    @staticmethod
    def global_trace_dump(value: bool) -> None:
        """Hexdump the tx/rx of every GSock (in addition to each one's ``trace_dump``)."""
        global _trace_dump_all
        _trace_dump_all = bool(value)

    def mt_send_data(self, data: Any) -> int:
        """Write ``data`` and flush (as EV_SEND_DATA); returns what EV_SEND_DATA returns."""
        sent: int = self.send_event(self, "EV_SEND_DATA", data=data)
        return sent

    def mt_write(self, data: Any) -> int:
        """Queue ``data`` (bytes, or a latin-1 str); return its length, or -1 if refused
        (not connected, or the hard limit ``outbuf_max`` reached: then the connection is
        dropped with the reason ``tx_overflow``)."""
        data = as_bytes(data)
        if self._state not in ("ST_CONNECTED", "ST_WAIT_CONNECTED"):
            self._log_refused("mt_write")
            return -1
        try:
            n = self._queue.write(data)
        except OutBufOverflow as exc:
            (self.logger or _LOG).error("%r: output overflow (%s); dropping", self, exc)
            self._abort("tx_overflow")
            return -1
        except OSError as exc:
            # The spill file failed (disk full...): this connection goes, not the process.
            (self.logger or _LOG).error("%r: output spill failed (%s); dropping", self, exc)
            self._queue.reset()
            self._abort("spill_failed")
            return -1
        if self._queue.reading_should_pause() and self._transport is not None:
            self._transport.pause_reading()
        return n

    def mt_flush(self) -> None:
        """Hand the queued output to the transport (as far as it takes it now)."""
        if self._transport is None:
            return
        self._pump()

    def mt_drop(self) -> None:
        """As EV_DROP."""
        self.send_event(self, "EV_DROP")

    # ------------------------------------------------------------------------------------
    #   Connect
    # ------------------------------------------------------------------------------------
    def _new_queue(self) -> None:
        config = self.config
        self._refused_logged = False
        self._close_reason = None
        self._read_paused_by_app = False
        self._rx_held = b""
        self._queue.close()
        self._queue = FlowQueue(
            send_bytes=config.send_bytes,
            overflow=config.outbuf_overflow,
            high_water=config.outbuf_high_water,
            low_water=config.outbuf_low_water or None,
            max_size=config.outbuf_max,
            spill_dir=config.spill_dir,
        )
        # The largest message ac_send_data hands to the transport at once (see there).
        self._direct_max = max(config.send_bytes, config.outbuf_overflow)

    def _start_connect(self, host: str, port: int) -> None:
        self._new_queue()
        self._close_reason = None
        gaplic = self.gaplic
        if gaplic._aio_loop is None:
            # Not running yet: start when the GAplic binds its loop.
            gaplic.add_callback(self._create_connect_task, host, port)
        else:
            self._create_connect_task(host, port)

    def _create_connect_task(self, host: str, port: int) -> None:
        if self._destroyed or self._state != "ST_WAIT_CONNECTED":
            return
        loop = self.gaplic.loop
        task = self._connect_task = loop.create_task(self._connect(host, port))
        connecting = self._registry.connecting
        connecting[self] = None
        task.add_done_callback(lambda _: connecting.pop(self, None))

    def _abort_connect(self, reason: str) -> None:
        """Cancel the connect attempt: EV_DISCONNECTED(reason) now, nothing after."""
        task = self._connect_task
        self._connect_task = None
        if task is not None:
            task.cancel()
        if self._state != "ST_DISCONNECTED":
            self.set_new_state("ST_DISCONNECTED")
        self._disconnected(reason)

    async def _connect(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        config = self.config
        ctx = self._ssl_ctx
        kw: dict[str, Any] = {}
        if ctx is not None:
            kw["ssl"] = ctx
            kw["ssl_handshake_timeout"] = config.ssl_handshake_timeout
            kw["ssl_shutdown_timeout"] = config.ssl_shutdown_timeout
            server_hostname = server_hostname_of(config.ssl_options)
            if server_hostname is not None:
                kw["server_hostname"] = server_hostname
        try:
            async with asyncio.timeout(config.connect_timeout):
                # host None (from '') is the local host to asyncio; typeshed says str only.
                await loop.create_connection(lambda: self, host or None, port, **kw)  # type: ignore[arg-type]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._destroyed or self._state != "ST_WAIT_CONNECTED":
                return
            reason = _reason_of(exc)
            # DEBUG: the subscriber is told (EV_DISCONNECTED's reason) and logs what it
            # wants, once; this line adds the exception for whoever debugs.
            (self.logger or _LOG).debug(
                "%r: connect to %s:%s failed: %s (%r)", self, host, port, reason, exc
            )
            self._guarded(self.send_event, self, "EV_CONNECT_FAILED", reason=reason)

    def _prepare_accepted(self, server: Any, sock: Any = None, peername: Any = None) -> None:
        """Called by a GServerSock on a child it made for an accepted connection: ``sock``
        and ``peername`` are what ``accept()`` returned (None: asked from the transport)."""
        self._server = server
        self._sock = sock
        self._peername = peername
        self._new_queue()
        self.set_new_state("ST_WAIT_CONNECTED")

    # ------------------------------------------------------------------------------------
    #   asyncio Protocol
    # ------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        if self._destroyed or self._state != "ST_WAIT_CONNECTED":
            transport.abort()
            return
        self._transport = transport
        transport.set_write_buffer_limits(high=self.config.tx_buffer_size)
        sock = self._sock
        if sock is None:  # a client (an accepted one has them from its server)
            self._peername = transport.get_extra_info("peername")
            sock = transport.get_extra_info("socket")
        self.addr = peer = self._peername
        if isinstance(peer, tuple) and peer:
            self.write_parameters(ip=str(peer[0]))
        self._impl_poll = self.gaplic._aio_loop
        fd = sock.fileno() if sock is not None else -1
        if fd >= 0:
            self._fd = fd
            self._socket_map[fd] = self
        self.last_activity = self._clock()
        if self._read_paused_by_app:
            transport.pause_reading()
        server = self._server
        if server is not None:
            server._child_connected(self)
        self._guarded(self.send_event, self, "EV_TRANSPORT_UP")

    def eof_received(self) -> bool | None:
        if self._transport is None:
            return None
        if self._transport.get_extra_info("sslcontext") is not None:
            # asyncio's TLS transport closes on EOF whatever we return; hand it all now.
            queue = self._queue
            for _ in range(queue.pending // max(1, queue.send_bytes) + 2):
                if not queue.pending:
                    break
                queue.sink_paused = False
                self._guarded(queue.flush, self._tx)
            self._close_reason = self._close_reason or "eof"
            return None
        self._close_gracefully(self._close_reason or "eof")
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        transport = self._transport
        self._transport = None
        self._cancel_drop_timer()
        self._cancel_ready()
        self._unregister()
        self._queue.close()
        self.addr = None
        if transport is None:
            return
        owner_closes = self._registry.owner_closes
        if owner_closes:
            owner_closes.pop(self, None)
        reason = self._close_reason or _reason_of(exc)
        if (
            exc is None
            and self._close_reason is None
            and transport.get_extra_info("sslcontext") is not None
        ):
            # A TLS peer's close_notify comes to us as eof_received (which sets the
            # reason); the connection ending with no reason and no error means the TCP
            # stream ended without it: a truncation (catalogue D6).  uvloop tells them
            # apart; asyncio 3.11's TLS layer calls eof_received for both (so: "eof").
            reason = "tls_truncated"
        self._close_reason = None  # this session's; the next one starts clean
        held = self._rx_held
        if held and not self._destroyed:
            # Nothing is lost: bytes held by a pause still reach the subscriber before
            # EV_DISCONNECTED (the connection is gone; the pause has nothing left to hold).
            self._rx_held = b""
            self._read_paused_by_app = False
            self.data_received(held)
        if exc is not None and reason in ("error", "tls_error"):
            (self.logger or _LOG).info("%r: connection lost: %r", self, exc)
        if self._destroyed:
            return
        self._guarded(self.send_event, self, "EV_TRANSPORT_LOST", reason=reason)

    def pause_writing(self) -> None:
        self._queue.pause()

    def resume_writing(self) -> None:
        self._queue.resume()
        if self._transport is not None:
            self._guarded(self._pump)

    # ------------------------------------------------------------------------------------
    #   Internals
    # ------------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Flush as far as the transport takes it, then act on the flow-control edges."""
        transport = self._transport
        if transport is None:
            return
        queue = self._queue
        queue.flush(self._tx)
        if queue.reading_should_pause():
            transport.pause_reading()
        elif (
            queue.reading_should_resume()
            and not self._read_paused_by_app
            and not transport.is_closing()
        ):
            transport.resume_reading()
        if queue.pending:
            return
        if queue.should_close():
            self._cancel_drop_timer()
            transport.close()
            return
        if self._state == "ST_CONNECTED" and self.config.close_when_flushed:
            self._close_gracefully("closed")
            return
        if queue.drained_after_wait():
            self._schedule_ready()

    def _set_app_read_paused(self, paused: bool) -> None:
        if self._read_paused_by_app == paused:
            return
        self._read_paused_by_app = paused
        transport = self._transport
        if transport is None or transport.is_closing():
            return  # applied by connection_made, or nothing left to read
        if paused:
            transport.pause_reading()
        elif self._rx_held:
            # Bytes held while paused go first, from the loop (not inside the action that
            # resumed: its FSM may be mid-step); the transport stays paused until then.
            self.gaplic.loop.call_soon(self._release_held)
        elif not self._queue.reading_paused:
            transport.resume_reading()

    def _release_held(self) -> None:
        transport = self._transport
        if self._read_paused_by_app or transport is None:
            return  # paused again (released on the next resume), or gone
        held = self._rx_held
        self._rx_held = b""
        if held:
            self.data_received(held)
        if (
            self._transport is transport
            and not self._read_paused_by_app
            and not self._queue.reading_paused
            and not transport.is_closing()
        ):
            transport.resume_reading()

    def _schedule_ready(self) -> None:
        """EV_TRANSMIT_READY, from the loop (never from inside the sender's action, so a
        producer that sends from it does not recurse) and at most one pending."""
        name = self.config.transmit_ready_event_name
        if self._ready_handle is None and name:
            # subscribers_take() walks the subscriptions: cache it until they (or the name) change.
            cache = self._wants_cache
            if cache is None or cache[0] != name:
                pair = (name, self.subscribers_take(name))
                cache = self._wants_cache = _WANTS_PAIRS.setdefault(pair, pair)
            if cache[1]:
                self._ready_handle = self.gaplic.loop.call_soon(self._emit_ready)

    def subscribe_event(self, event_name: Any, subscriber: Any, **kw: Any) -> Subscription:
        self._wants_cache = None
        return super().subscribe_event(event_name, subscriber, **kw)

    def _remove_subscription(self, sub: Subscription) -> None:
        self._wants_cache = None
        super()._remove_subscription(sub)

    def _emit_ready(self) -> None:
        self._ready_handle = None
        name = self.config.transmit_ready_event_name
        queue = self._queue
        if (
            name
            and self._state == "ST_CONNECTED"
            and self._transport is not None
            and not queue.pending
            and not queue.sink_paused
        ):
            try:
                self.broadcast_event(name, gsock=self)
            except Exception as exc:
                self._handler_error(exc)

    def _cancel_ready(self) -> None:
        if self._ready_handle is not None:
            self._ready_handle.cancel()
            self._ready_handle = None

    def _close_gracefully(self, reason: str) -> None:
        """Deliver pending output (within drop_timeout), then close."""
        transport = self._transport
        if transport is None:
            return
        if self._state == "ST_CONNECTED":
            self.set_new_state("ST_WAIT_DISCONNECTED")
        if self._close_reason is None:
            self._close_reason = reason
        queue = self._queue
        queue.close_when_flushed = True
        if self._drop_timer is None and queue.pending:
            self._drop_timer = self.gaplic.call_later(self.config.drop_timeout, self._drop_expired)
        self._pump()

    def _drop_expired(self) -> None:
        self._drop_timer = None
        if self._transport is not None:
            (self.logger or _LOG).warning(
                "%r: %d bytes still pending after drop_timeout; aborting",
                self,
                self._queue.pending,
            )
            self._transport.abort()

    def _abort(self, reason: str) -> None:
        transport = self._transport
        if transport is None:
            return
        if self._close_reason is None:
            self._close_reason = reason
        if self._state == "ST_CONNECTED":
            self.set_new_state("ST_WAIT_DISCONNECTED")
        self._queue.reset()
        transport.abort()

    def _cancel_drop_timer(self) -> None:
        if self._drop_timer is not None:
            self._drop_timer.cancel()
            self._drop_timer = None

    def _unregister(self) -> None:
        fd = self._fd
        if fd >= 0:
            self._fd = -1
            if self._socket_map.get(fd) is self:
                del self._socket_map[fd]

    def _log_refused(self, what: str) -> None:
        # Bounded: a producer writing to a dead connection must not flood the log.
        level = logging.DEBUG if self._refused_logged else logging.WARNING
        self._refused_logged = True
        (self.logger or _LOG).log(
            level, "%r: %s refused in %s: not connected", self, what, self._state
        )

    def _disconnected(self, reason: str) -> None:
        self._peername = self._sock = None
        self._queue.close()
        name = self.config.disconnected_event_name
        try:
            if name:
                self.broadcast_event(name, gsock=self, reason=reason)
        finally:
            server = self._server
            if server is not None:
                server._child_disconnected(self)

    def _guarded(self, fn: Any, *args: Any, **kw: Any) -> None:
        """Run ``fn`` from a protocol callback: exceptions go to the GAplic, never to
        asyncio, and abort the connection."""
        try:
            fn(*args, **kw)
        except Exception as exc:
            self._handler_error(exc)

    def _handler_error(self, exc: Exception) -> None:
        self.gaplic.handle_exception(exc, f"{self!r} (protocol callback)")
        self._abort("handler_error")
