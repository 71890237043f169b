"""``GConnex``: a client connection that reconnects by itself.

A GConnex owns a child GSock (``'gsock'``) and a child GTimer (``'timer'``).  It connects
to its ``destinations`` in round-robin, retries after failures (a fixed delay by default,
or an exponential back-off with jitter up to a maximum), queues the data sent while it is
not connected and sends it, once and in order, when the connection is up.  The GSock's
events are re-broadcast to the GConnex's subscriber with ``connex=<the GConnex>`` added
(and ``event.source[-1]`` is the GConnex).

Configuration:

===========================  =====  ===============  ==============================================
name                         type   default          description
===========================  =====  ===============  ==============================================
subscriber                   None   None             Gets every output event; None means the parent.
disabled                     bool   False            DIRECT property.  True: cancel the timer, drop
                                                     the connection (or the attempt), discard the
                                                     queue and stay down.  False: connect again.
destinations                 list   ``[('', 0)]``    ``(host, port)`` pairs tried in round-robin.
                                                     Also ``"h1:p1, h2:p2"`` (an ini/TOML string),
                                                     ``["h:p", ...]``, ``[["h", p], ...]`` or one
                                                     ``("h", p)``.  IPv6: ``"[::1]:8000"``.
timeout_waiting_connected    float  60               Seconds an attempt may take; then it is
                                                     aborted (EV_DROP to the GSock) and counted as
                                                     failed.  Also the child GSock's
                                                     ``connect_timeout`` (unless ``gsock_kw`` sets
                                                     it).
timeout_between_connections  float  5                Seconds to wait after a failed *round* (every
                                                     destination tried once).
timeout_inactivity           float  -1               > 0: drop the connection after that many
                                                     seconds without rx or tx, and reconnect only
                                                     when there is data to send (on demand).
                                                     <= 0: off.
backoff_factor               float  1.0              Each failed round multiplies the wait by this
                                                     (1.0 = ginsfsm's fixed delay; 2.0 doubles).
backoff_max                  float  300.0            The wait never exceeds ``max(backoff_max,
                                                     timeout_between_connections)``.
backoff_jitter               float  0.0              0..1: each wait is multiplied by a uniform
                                                     random factor in ``[1 - j, 1 + j]`` (then
                                                     capped at the maximum again).
max_attempts                 int    -1               Give up (stay down, as after EV_DROP) after
                                                     this many consecutive failed attempts;
                                                     <= 0: never.
max_queued_bytes             int    0                Cap of the data queued while not connected;
                                                     past it EV_SEND_DATA is refused (returns -1,
                                                     logged).  0: no cap.
ssl_options                  None   None             TLS for the GSock: a dict (certfile, cafile,
                                                     server_hostname, ...), a JSON object string,
                                                     or an ``ssl.SSLContext``.  None/{}: plain TCP.
gsock_gclass                 None   None             gclass of the child (None: ``GSock``).
gsock_kw                     dict   {}               Extra parameters for the child GSock
                                                     (``outbuf_overflow``, ``trace_dump``...).
host                         str    ''               DIRECT, read-only: host of the current (or
                                                     last) attempt.  Writing it is an error: set
                                                     ``destinations``.
port                         int    0                DIRECT, read-only: its port.  A bare
                                                     ``host``/``port`` setting (for servers)
                                                     does not reach a GConnex.
connected_event_name         str    EV_CONNECTED     Output names; None or '' suppresses the event.
disconnected_event_name      str    EV_DISCONNECTED
rx_data_event_name           str    EV_RX_DATA
transmit_ready_event_name    str    EV_TRANSMIT_READY
connect_failed_event_name    str    None             New, off by default (ginsfsm had no such
                                                     event): name of the event broadcast after
                                                     each failed attempt.
===========================  =====  ===============  ==============================================

Input events (top):

* ``EV_CONNECT`` — connect now: cancels a pending back-off wait and starts a fresh round
  with the base delay.  No attributes.
* ``EV_DROP`` — drop the connection or abort the attempt, discard the queued data, and stay
  down until the next ``EV_CONNECT`` or ``EV_SEND_DATA`` (or ``disabled = False``).
* ``EV_SEND_DATA`` — ``data`` (bytes, or a latin-1 str).  Connected: handed to the GSock
  (returns what it returns).  Otherwise queued (connecting if nothing is under way);
  returns 0, or -1 if refused (disabled, ``max_queued_bytes``, not bytes/str).
* ``EV_WRITE_OUTPUT_DATA`` — ``data``: as EV_SEND_DATA, but a connected GSock only buffers
  it until ``EV_FLUSH_OUTPUT_DATA`` (queued data is always flushed on connect).
* ``EV_FLUSH_OUTPUT_DATA`` — connected: flush the GSock; otherwise nothing.

Output events (broadcast to the subscriber; every one has ``connex``, and the GSock's own
attributes; ``event.source[-1]`` is the GConnex):

* ``EV_CONNECTED`` — ``gsock``, ``peername``, ``sockname``, ``connex``.
* ``EV_DISCONNECTED`` — ``gsock``, ``reason``, ``connex``.  Once per connection that was
  announced by EV_CONNECTED (failed attempts are not announced; see below).
* ``EV_RX_DATA`` — ``gsock``, ``data``, ``connex``.
* ``EV_TRANSMIT_READY`` — ``gsock``, ``connex``: the GSock's (after connect, and after
  output that had to wait has drained; see GSock's producer pattern with
  ``gsock.write_paused``); like the GSock, only sent when a subscriber's FSM takes it.
* ``connect_failed_event_name`` (when set) — ``connex``, ``host``, ``port``, ``reason``,
  ``attempts`` (consecutive failures), ``gave_up`` (True when ``max_attempts`` was reached),
  ``retry_in`` (seconds until the next attempt: 0 for the next destination of a round, the
  back-off wait after a failed round; -1 when no retry is scheduled: given up, dropped,
  disabled).

Statistics (attributes): ``attempts`` (connection attempts started), ``connections``
(successful ones), ``failed_attempts`` (consecutive failures, reset on success),
``last_error`` (reason of the last failure or disconnection), ``get_queued_bytes()``.

Differences from ginsfsm's GConnex (§6 item 27 of the behaviour spec), deliberately:

* A deliberate ``EV_DROP`` (or ``disabled = True``, or an inactivity drop) does not trigger a
  reconnect; the GConnex waits for ``EV_CONNECT`` or ``EV_SEND_DATA``.
* The ``timeout_waiting_connected`` watchdog aborts the attempt (EV_DROP to the GSock)
  instead of leaving the socket connecting in the background.
* Queuing ``EV_SEND_DATA`` while an attempt is under way does not restart it; queued data is
  sent once, in order, before EV_CONNECTED is re-broadcast (so data the subscriber sends
  from its EV_CONNECTED action comes after it); it is discarded by EV_DROP, by
  ``disabled = True`` and by destruction — never replayed on a later connection.
* ``EV_SEND_DATA`` while ``disabled`` is refused (returns -1, logged).
* Times are float seconds on the GAplic's monotonic clock (ginsfsm's 0.01 s retry was
  truncated to 0); the next destination of a round is tried at the next loop iteration.
* ``destinations`` can come from a config-file string.
* Destroying the GConnex cancels everything: no retry, no event, the GSock is closed.
  While its GAplic is stopping (``stop()`` was called) no new attempt starts.

Theory of operation
-------------------
The retry policy counts failed attempts in a *round*: after a failure, if some destination
of the round has not been tried, the next one is tried at once (a 0 s timer, so never in
the middle of the failing action); when all were tried the round ends and the GConnex
waits ``timeout_between_connections`` times ``backoff_factor`` to the power of the number
of rounds that already failed (capped, jittered).  A successful connection resets the
round and the back-off.  A connection that was up and is lost counts as the failure of a
new round's first attempt, so with one destination it waits the base delay, as ginsfsm did.

The GConnex never sends EV_CONNECT to a GSock that has not yet reported the end of the
previous attempt or connection: after it sends EV_DROP (abort, inactivity, EV_DROP,
``disabled``) it marks the GSock *closing* until the GSock's EV_DISCONNECTED, which may come
synchronously (inside EV_DROP) or later.  A connect wanted meanwhile is deferred until that
EV_DISCONNECTED; if it does not come within ``timeout_waiting_connected`` the GSock is
destroyed and replaced by a fresh one.  So a late event of an old attempt is never taken for
the outcome of a new one.

The inactivity timer is not re-armed per message (that would put a timer-heap push on the
hot path): rx and tx stamp ``last activity``, and when the timer fires it either drops the
idle connection or re-arms itself for the time left.
"""

from __future__ import annotations

import json
import logging
import random
import re
import ssl
from collections import deque
from typing import Any, Final

from fsmio.core.errors import GConfigValidateError
from fsmio.core.event import Event
from fsmio.core.gconfig import (
    FLAG_DIRECT_ATTR,
    finite_number,
    fraction,
    non_negative_int,
    number_in,
    port_number,
    positive_number,
)
from fsmio.core.gobj import GObj, Subscription
from fsmio.gobjs.c_sock import GSock
from fsmio.gobjs.c_timer import GTimer

__all__ = ["GCONNEX_FSM", "GCONNEX_GCONFIG", "GConnex", "parse_destinations"]

_LOG = logging.getLogger("fsmio")

Destination = tuple[str, int]


# ----------------------------------------------------------------------------------------
#   Config validators
# ----------------------------------------------------------------------------------------
def _parse_host_port(text: str) -> Destination:
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"{text!r}: an IPv6 destination is written '[addr]:port'")
        return host, port_number(rest[1:])
    host, colon, port = text.rpartition(":")
    if not colon:
        raise ValueError(f"{text!r}: a destination is written 'host:port'")
    if ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets: '[{host}]:{port}'")
    return host, port_number(port)


def _parse_one(item: Any) -> Destination:
    if isinstance(item, str):
        return _parse_host_port(item)
    if isinstance(item, (list, tuple)) and len(item) == 2:
        host, port = item
        if isinstance(host, bytes):
            host = host.decode("ascii")
        if not isinstance(host, str):
            raise ValueError(f"host {host!r} is not a str")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return host, port_number(port)
    raise ValueError(f"{item!r} is not a (host, port) pair nor a 'host:port' string")


def parse_destinations(value: Any) -> list[Destination]:
    """``destinations`` in any accepted form -> a non-empty list of ``(host, port)``.

    Accepted: ``"h1:p1, h2:p2"`` (commas and/or spaces), ``["h:p", ...]``,
    ``[("h", p), ...]``, ``[["h", p], ...]`` (TOML), or one ``("h", p)``.  IPv6 addresses
    are bracketed in strings: ``"[::1]:8000"``.
    """
    if isinstance(value, str):
        items: list[Any] = [w for w in re.split(r"[\s,]+", value.strip()) if w]
    elif isinstance(value, (list, tuple)):
        if (
            len(value) == 2
            and isinstance(value[0], str)
            and isinstance(value[1], int)
            and not isinstance(value[1], bool)
        ):
            items = [tuple(value)]  # one ("host", port) pair
        else:
            items = list(value)
    else:
        raise ValueError(f"{value!r} is not a list of (host, port) nor a 'host:port, ...' string")
    if not items:
        raise ValueError("no destination")
    return [_parse_one(item) for item in items]


def _read_only(default: Any) -> Any:
    def read_only(value: Any) -> Any:
        if value != default:
            raise ValueError(
                "read-only (a view of the current destination); set 'destinations' instead"
            )
        return value

    return read_only


def _ssl_options(value: Any) -> Any:
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else None
    if value is None or isinstance(value, (dict, ssl.SSLContext)):
        return value
    raise ValueError(f"{value!r} is neither a dict nor an ssl.SSLContext")


def _gclass(value: Any) -> Any:
    if value is None or (isinstance(value, type) and issubclass(value, GObj)):
        return value
    raise ValueError(f"{value!r} is not a GObj subclass")


# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
GCONNEX_GCONFIG: Final[dict[str, list[Any]]] = {
    "subscriber": [None, None, 0, None, "Gets every output event; None means the parent."],
    "disabled": [
        bool,
        False,
        FLAG_DIRECT_ATTR,
        None,
        "True: drop and stay down; False: connect again.",
    ],
    "destinations": [
        list,
        [("", 0)],
        0,
        parse_destinations,
        "(host, port) pairs tried in round-robin; or 'h1:p1, h2:p2'.",
    ],
    "timeout_waiting_connected": [
        float,
        60,
        0,
        positive_number,
        "Seconds an attempt may take before it is aborted.",
    ],
    "timeout_between_connections": [
        float,
        5,
        0,
        positive_number,
        "Seconds to wait after a failed round of attempts.",
    ],
    "timeout_inactivity": [
        float,
        -1,
        0,
        finite_number,
        "> 0: drop after this many idle seconds, reconnect on demand; <= 0: off.",
    ],
    "backoff_factor": [
        float,
        1.0,
        0,
        number_in(1),
        "Each failed round multiplies the wait by this (1.0: fixed delay).",
    ],
    "backoff_max": [
        float,
        300.0,
        0,
        positive_number,
        "Cap of the wait (never below timeout_between_connections).",
    ],
    "backoff_jitter": [
        float,
        0.0,
        0,
        fraction,
        "0..1: each wait times a uniform random factor in [1 - j, 1 + j].",
    ],
    "max_attempts": [
        int,
        -1,
        0,
        None,
        "Give up after this many consecutive failed attempts; <= 0: never.",
    ],
    "max_queued_bytes": [
        int,
        0,
        0,
        non_negative_int,
        "Cap of the data queued while not connected; 0: no cap.",
    ],
    "ssl_options": [
        None,
        None,
        0,
        _ssl_options,
        "TLS for the GSock: dict, JSON string or ssl.SSLContext; None: plain TCP.",
    ],
    "gsock_gclass": [None, None, 0, _gclass, "gclass of the child GSock (None: GSock)."],
    "gsock_kw": [dict, {}, 0, None, "Extra parameters for the child GSock."],
    "host": [
        str,
        "",
        FLAG_DIRECT_ATTR,
        _read_only(""),
        "Read-only: host of the current or last attempt.",
    ],
    "port": [int, 0, FLAG_DIRECT_ATTR, _read_only(0), "Read-only: its port."],
    "connected_event_name": [str, "EV_CONNECTED", 0, None, "Output name; None suppresses."],
    "disconnected_event_name": [str, "EV_DISCONNECTED", 0, None, "Output name; None suppresses."],
    "rx_data_event_name": [str, "EV_RX_DATA", 0, None, "Output name; None suppresses."],
    "transmit_ready_event_name": [
        str,
        "EV_TRANSMIT_READY",
        0,
        None,
        "Output name; None suppresses.",
    ],
    "connect_failed_event_name": [
        str,
        None,
        0,
        None,
        "Name of the event broadcast after each failed attempt; None: not broadcast.",
    ],
}


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_connect(self: GConnex, event: Event) -> None:
    """ST_DISCONNECTED: connect now (the start-up kick only if still wanted)."""
    if event.kw.get("startup") and not self._want:
        return
    if self.disabled:
        (self.logger or _LOG).warning("%r: EV_CONNECT ignored: disabled", self)
        return
    self._want = True
    self._reset_backoff()
    self._cancel_timer()
    self._connect()


def ac_connect_ignored(self: GConnex, event: Event) -> None:
    """ST_WAIT_CONNECTED / ST_CONNECTED: already connecting or connected."""


def ac_queue_data(self: GConnex, event: Event) -> int:
    """ST_DISCONNECTED / ST_WAIT_CONNECTED: queue; connect unless something is under way."""
    if self.disabled:
        (self.logger or _LOG).error("%r: EV_SEND_DATA refused: disabled", self)
        return -1
    if not self._enqueue(event.kw.get("data")):
        return -1
    if (
        self.get_current_state() == "ST_DISCONNECTED"
        and not self._retry_pending
        and not self._connect_deferred
    ):
        self._want = True
        self._reset_backoff()
        self._connect()
    else:
        self._want = True
    return 0


def ac_send_data(self: GConnex, event: Event) -> Any:
    """ST_CONNECTED: EV_SEND_DATA / EV_WRITE_OUTPUT_DATA straight to the GSock (the hot
    path)."""
    if self._inactivity_on:
        self._last_activity = self._clock()
    return self.send_event(self._gsock, event.event_name, data=event.kw.get("data"))


def ac_flush(self: GConnex, event: Event) -> None:
    """ST_CONNECTED: EV_FLUSH_OUTPUT_DATA to the GSock."""
    self.send_event(self._gsock, "EV_FLUSH_OUTPUT_DATA")


def ac_drop(self: GConnex, event: Event) -> None:
    """Any state: drop or abort, discard the queue, stay down."""
    self._stop_wanting()
    if self._gsock_active and not self._closing:
        self._close_gsock()


def ac_connected(self: GConnex, event: Event) -> None:
    """ST_WAIT_CONNECTED -> ST_CONNECTED: flush the queue, then tell the subscriber."""
    if not self._is_current(event):
        self.set_new_state("ST_WAIT_CONNECTED")
        return
    self._cancel_timer()
    self._reset_backoff()
    self.connections += 1
    if self._inactivity_on:
        self._last_activity = self._clock()
        self._set_timer(self.config.timeout_inactivity)
    gsock = self._gsock
    queue = self._queue
    while queue and self.get_current_state() == "ST_CONNECTED" and self._gsock is gsock:
        data = queue.popleft()
        self._queued_bytes -= len(data)
        self.send_event(gsock, "EV_SEND_DATA", data=data)
    if self.get_current_state() == "ST_CONNECTED" and self._gsock is gsock:
        self._session_open = True
        self._rebroadcast(self.config.connected_event_name, event)


def ac_stale_connected(self: GConnex, event: Event) -> None:
    """ST_DISCONNECTED / ST_CONNECTED: a connect that was aborted or is a duplicate."""
    (self.logger or _LOG).debug("%r: EV_CONNECTED ignored in %s", self, self.get_current_state())


def ac_attempt_failed(self: GConnex, event: Event) -> None:
    """ST_WAIT_CONNECTED -> ST_DISCONNECTED: the GSock reported a failed connect."""
    if not self._is_current(event):
        self.set_new_state("ST_WAIT_CONNECTED")
        return
    self._gsock_active = False
    self._cancel_timer()
    self._failed(str(event.kw.get("reason") or "disconnected"))


def ac_lost(self: GConnex, event: Event) -> None:
    """ST_CONNECTED -> ST_DISCONNECTED: the peer closed, or an error."""
    if not self._is_current(event):
        self.set_new_state("ST_CONNECTED")
        return
    self._gsock_active = False
    self._cancel_timer()
    self.last_error = str(event.kw.get("reason") or "disconnected")
    if self._inactivity_on and not self._queue:
        self._want = False  # on-demand mode: reconnect when there is data to send
    if self._want and not self.disabled:
        self._failed_attempts = 0
        self._schedule_retry()
    self._end_session(event)


def ac_disconnected_closing(self: GConnex, event: Event) -> None:
    """ST_DISCONNECTED: the GSock confirms a drop or an abort we asked for."""
    if not self._is_current(event) or not self._gsock_active:
        (self.logger or _LOG).debug("%r: unexpected EV_DISCONNECTED ignored", self)
        return
    self._gsock_active = False
    self._closing = False
    deferred = self._connect_deferred
    if deferred:
        self._connect_deferred = False
        self._cancel_timer()
    self._end_session(event)
    if (
        deferred
        and self._want
        and not self.disabled
        and self.get_current_state() == "ST_DISCONNECTED"
    ):
        self._start_attempt()


def ac_attempt_timeout(self: GConnex, event: Event) -> None:
    """ST_WAIT_CONNECTED -> ST_DISCONNECTED: abort the attempt, count it as failed."""
    self._close_gsock()
    self._failed(f"no connection within {self.config.timeout_waiting_connected:g} s")


def ac_inactivity_timeout(self: GConnex, event: Event) -> None:
    """ST_CONNECTED: drop an idle connection, or wait for the rest of the idle time."""
    timeout = self.config.timeout_inactivity
    left = self._last_activity + timeout - self._clock()
    if left > 0:
        self._set_timer(left)
        return
    (self.logger or _LOG).info("%r: idle for %g s, dropping the connection", self, timeout)
    self._want = bool(self._queue)
    self.set_new_state("ST_DISCONNECTED")
    self._close_gsock()


def ac_disconnected_timeout(self: GConnex, event: Event) -> None:
    """ST_DISCONNECTED: the back-off wait is over, or a dropped GSock never confirmed."""
    self._retry_pending = False
    if self._connect_deferred:
        self._connect_deferred = False
        (self.logger or _LOG).warning(
            "%r: the GSock did not report the end of its connection; replacing it", self
        )
        session_was_open = self._session_open
        self._replace_gsock()
        if session_was_open:
            self._session_open = False
            self._broadcast_name(
                self.config.disconnected_event_name,
                gsock=None,
                reason="drop not confirmed by the GSock",
            )
        if self._want and not self.disabled and self.get_current_state() == "ST_DISCONNECTED":
            self._start_attempt()
        return
    if self._want and not self.disabled:
        self._connect()


def ac_rx_data(self: GConnex, event: Event) -> None:
    """Data from the peer: stamp activity, re-broadcast (also while a drop completes)."""
    if self._session_open:
        if self._inactivity_on:
            self._last_activity = self._clock()
        name = self.config.rx_data_event_name
        if name:
            self.broadcast_event(name, connex=self, **event.kw)


def ac_transmit_ready(self: GConnex, event: Event) -> None:
    """ST_CONNECTED: the GSock is ready to transmit more (only told to a subscriber whose
    FSM takes it, as the GSock does)."""
    name = self.config.transmit_ready_event_name
    if name and self.subscribers_take(name):
        self.broadcast_event(name, connex=self, **event.kw)


def ac_ignore(self: GConnex, event: Event) -> None:
    """An event of a GSock that is being dropped."""


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
GCONNEX_FSM: Final[dict[str, Any]] = {
    "event_list": (
        "EV_CONNECT: top input",
        "EV_DROP: top input",
        "EV_SEND_DATA: top input",
        "EV_WRITE_OUTPUT_DATA: top input",
        "EV_FLUSH_OUTPUT_DATA: top input",
        "EV_CONNECTED: bottom input top output",
        "EV_DISCONNECTED: bottom input top output",
        "EV_RX_DATA: bottom input top output",
        "EV_TRANSMIT_READY: bottom input top output",
        "EV_CONNECT_FAILED: top output",
        "EV_TIMEOUT: bottom input",
    ),
    "state_list": ("ST_DISCONNECTED", "ST_WAIT_CONNECTED", "ST_CONNECTED"),
    "machine": {
        "ST_DISCONNECTED": (
            ("EV_CONNECT", ac_connect, None),
            ("EV_SEND_DATA", ac_queue_data, None),
            ("EV_WRITE_OUTPUT_DATA", ac_queue_data, None),
            ("EV_FLUSH_OUTPUT_DATA", ac_ignore, None),
            ("EV_DROP", ac_drop, "ST_DISCONNECTED"),
            ("EV_TIMEOUT", ac_disconnected_timeout, None),
            ("EV_CONNECTED", ac_stale_connected, None),
            ("EV_DISCONNECTED", ac_disconnected_closing, None),
            ("EV_RX_DATA", ac_rx_data, None),
            ("EV_TRANSMIT_READY", ac_ignore, None),
        ),
        "ST_WAIT_CONNECTED": (
            ("EV_CONNECT", ac_connect_ignored, None),
            ("EV_SEND_DATA", ac_queue_data, None),
            ("EV_WRITE_OUTPUT_DATA", ac_queue_data, None),
            ("EV_FLUSH_OUTPUT_DATA", ac_ignore, None),
            ("EV_DROP", ac_drop, "ST_DISCONNECTED"),
            ("EV_TIMEOUT", ac_attempt_timeout, "ST_DISCONNECTED"),
            ("EV_CONNECTED", ac_connected, "ST_CONNECTED"),
            ("EV_DISCONNECTED", ac_attempt_failed, "ST_DISCONNECTED"),
            ("EV_RX_DATA", ac_ignore, None),
            ("EV_TRANSMIT_READY", ac_ignore, None),
        ),
        "ST_CONNECTED": (
            ("EV_CONNECT", ac_connect_ignored, None),
            ("EV_SEND_DATA", ac_send_data, None),
            ("EV_WRITE_OUTPUT_DATA", ac_send_data, None),
            ("EV_FLUSH_OUTPUT_DATA", ac_flush, None),
            ("EV_DROP", ac_drop, "ST_DISCONNECTED"),
            ("EV_TIMEOUT", ac_inactivity_timeout, None),
            ("EV_CONNECTED", ac_stale_connected, None),
            ("EV_DISCONNECTED", ac_lost, "ST_DISCONNECTED"),
            ("EV_RX_DATA", ac_rx_data, None),
            ("EV_TRANSMIT_READY", ac_transmit_ready, None),
        ),
    },
}


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
class GConnex(GObj):
    """A reconnecting client over a child GSock (see the module doc)."""

    # Class defaults: the DIRECT property setters run inside GConfig.__init__, before
    # __init__ sets the instance attributes.
    _disabled = False
    _started = False
    _dst: Destination = ("", 0)

    def __init__(self) -> None:
        GObj.__init__(self, GCONNEX_FSM, GCONNEX_GCONFIG)
        self._gsock: GObj | None = None
        self._timer: GObj | None = None
        self._queue: deque[bytes | str] = deque()
        self._queued_bytes = 0
        self._dst_index = 0
        self._want = False  # reconnect automatically after a failure or a loss
        self._gsock_active = False  # EV_CONNECT sent, the GSock's EV_DISCONNECTED not yet seen
        self._closing = False  # EV_DROP sent to the active GSock
        self._connect_deferred = False  # a connect waits for the closing GSock's EV_DISCONNECTED
        self._retry_pending = False  # the timer is a back-off wait
        self._session_open = False  # EV_CONNECTED re-broadcast, EV_DISCONNECTED not yet
        self._inactivity_on = False
        self._last_activity = 0.0
        self._round_attempts = 0
        self._failed_attempts = 0
        self._next_delay = 0.0
        self._relaying_ready: bool | None = None  # what the GSock was told (None: nothing)
        #: Random source of the jitter (tests may replace it).
        self.rng: random.Random = random.Random()
        #: Statistics.
        self.attempts = 0
        self.connections = 0
        self.last_error = ""

    # ------------------------------------------------------------------------------------
    #   Life cycle
    # ------------------------------------------------------------------------------------
    def start_up(self) -> None:
        subscriber = self.config.subscriber
        if subscriber is not None or self.parent is not None:
            self.subscribe_event(None, subscriber)
        self._next_delay = self.config.timeout_between_connections
        self._inactivity_on = self.config.timeout_inactivity > 0
        self._timer = self.create_gobj("timer", GTimer, self)
        self._gsock = self.create_gsock()
        self._sync_transmit_ready()
        self._started = True
        if not self._disabled:
            self._want = True
            # Posted, so that the creator can subscribe before anything happens.
            self.post_event(self, "EV_CONNECT", startup=True)

    def go_out(self) -> None:
        # The children (GSock, GTimer) are already destroyed: nothing can fire.
        self._want = False
        self._retry_pending = False
        self._connect_deferred = False
        self._discard_queue()

    def subscribe_event(self, event_name: Any, subscriber: Any, **kw: Any) -> Subscription:
        """As ``GObj.subscribe_event``; also tells the GSock whether EV_TRANSMIT_READY is
        wanted now."""
        sub = GObj.subscribe_event(self, event_name, subscriber, **kw)
        self._sync_transmit_ready()
        return sub

    def create_gsock(self) -> GObj:
        """Create the child GSock (override to plug another transport, e.g. a test fake).

        Uses ``gsock_gclass`` (default ``GSock``) with ``gsock_kw`` and ``ssl_options``; the
        GSock's subscriber is this GConnex and its output names are the defaults; a GSock's
        ``connect_timeout`` defaults to ``timeout_waiting_connected``.
        """
        gclass = self.config.gsock_gclass or GSock
        kw = dict(self.config.gsock_kw)
        if issubclass(gclass, GSock):
            # The GSock's own connect deadline follows the watchdog (unless told otherwise).
            kw.setdefault("connect_timeout", self.config.timeout_waiting_connected)
        for name in (
            "subscriber",
            "connected_event_name",
            "disconnected_event_name",
            "rx_data_event_name",
            "transmit_ready_event_name",
        ):
            kw.pop(name, None)
        ssl_options = self.config.ssl_options
        if ssl_options:
            kw["ssl_options"] = ssl_options
        gsock: GObj = self.create_gobj("gsock", gclass, self, **kw)
        return gsock

    # ------------------------------------------------------------------------------------
    #   Properties (DIRECT parameters)
    # ------------------------------------------------------------------------------------
    @property
    def disabled(self) -> bool:
        """True: no connection (dropped, timer cancelled); False: connect again."""
        return self._disabled

    @disabled.setter
    def disabled(self, value: bool) -> None:
        value = bool(value)
        previous = self._disabled
        self._disabled = value
        if not self._started or self._destroyed or value == previous:
            return
        if value:
            self.send_event(self, "EV_DROP")
        else:
            self.send_event(self, "EV_CONNECT")

    @property
    def host(self) -> str:
        """Host of the current (or last) attempt (read-only)."""
        return self._dst[0]

    @host.setter
    def host(self, value: str) -> None:
        pass  # read-only: the validator rejects every value but the default

    @property
    def port(self) -> int:
        """Port of the current (or last) attempt (read-only)."""
        return self._dst[1]

    @port.setter
    def port(self, value: int) -> None:
        pass  # read-only

    def filter_parameters(self, **settings: Any) -> dict[str, Any]:
        """As ``GObj.filter_parameters``, except that a bare ``host`` or ``port`` key (meant
        for the servers and sockets that have them: ``fsmio run --set port=8000``) does not
        reach a GConnex, whose host and port are read-only views of ``destinations``.  A
        key aimed at it (``GConnex.port``, ``<its name>.port``) still raises."""
        return super().filter_parameters(
            **{key: value for key, value in settings.items() if key not in ("host", "port")}
        )

    @property
    def gsock(self) -> GObj | None:
        """The child GSock."""
        return self._gsock

    @property
    def failed_attempts(self) -> int:
        """Consecutive failed attempts (0 after a successful connection)."""
        return self._failed_attempts

    def get_queued_bytes(self) -> int:
        """Bytes queued, waiting for a connection."""
        return self._queued_bytes

    def is_connected(self) -> bool:
        return self.get_current_state() == "ST_CONNECTED"

    def is_disconnected(self) -> bool:
        return self.get_current_state() == "ST_DISCONNECTED"

    def get_next_dst(self) -> Destination:
        """The destination of the next attempt: round-robin over ``destinations``.

        Override for another policy (it is called once per attempt).
        """
        destinations = self.config.destinations
        dst: Destination = destinations[self._dst_index % len(destinations)]
        self._dst_index = (self._dst_index + 1) % len(destinations)
        return dst

    # ------------------------------------------------------------------------------------
    #   Internals
    # ------------------------------------------------------------------------------------
    def _clock(self) -> float:
        t: float = self.gaplic.time()
        return t

    def _set_timer(self, seconds: float) -> None:
        self.send_event(self._timer, "EV_SET_TIMER", seconds=seconds, autostart=False)

    def _cancel_timer(self) -> None:
        self._retry_pending = False
        self.send_event(self._timer, "EV_SET_TIMER", seconds=-1)

    def _sync_transmit_ready(self) -> None:
        """Ask the GSock for EV_TRANSMIT_READY only while a subscriber of ours takes it.

        The GSock says it after every drain; relaying it to nobody costs about a third of
        a client's round trip (measured).  ``ac_transmit_ready`` filters anyway, so this
        is an optimisation: the GSock is asked again on each new subscription and attempt.
        """
        gsock = self._gsock
        if gsock is None or gsock._destroyed:
            return
        name = self.config.transmit_ready_event_name
        relay = bool(name) and self.subscribers_take(name)
        if relay is self._relaying_ready:
            return
        try:
            gsock.write_parameters(transmit_ready_event_name="EV_TRANSMIT_READY" if relay else None)
        except GConfigValidateError:
            return  # a GSock-like child without the parameter: it sends what it sends
        self._relaying_ready = relay

    def _is_current(self, event: Event) -> bool:
        source = event.source
        return bool(source) and source[-1] is self._gsock

    def _enqueue(self, data: Any) -> bool:
        if not isinstance(data, (bytes, bytearray, memoryview, str)):
            (self.logger or _LOG).error(
                "%r: EV_SEND_DATA needs data as bytes or str, not %r", self, type(data)
            )
            return False
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)  # the caller may reuse its buffer
        cap = self.config.max_queued_bytes
        if cap and self._queued_bytes + len(data) > cap:
            (self.logger or _LOG).error(
                "%r: queue full (%d + %d > max_queued_bytes %d): data refused",
                self,
                self._queued_bytes,
                len(data),
                cap,
            )
            return False
        self._queue.append(data)
        self._queued_bytes += len(data)
        return True

    def _discard_queue(self) -> None:
        if self._queue:
            (self.logger or _LOG).debug("%r: %d queued bytes discarded", self, self._queued_bytes)
        self._queue.clear()
        self._queued_bytes = 0

    def _stop_wanting(self) -> None:
        self._want = False
        self._connect_deferred = False
        self._cancel_timer()
        self._discard_queue()
        if self.get_current_state() != "ST_DISCONNECTED":
            self.set_new_state("ST_DISCONNECTED")

    def _close_gsock(self) -> None:
        """EV_DROP to the active GSock; its EV_DISCONNECTED (now or later) ends it."""
        self._closing = True
        self.send_event(self._gsock, "EV_DROP")

    def _replace_gsock(self) -> None:
        old = self._gsock
        self._gsock = None
        self._gsock_active = False
        self._closing = False
        if old is not None:
            GObj.destroy_gobj(old)
        self._gsock = self.create_gsock()
        self._relaying_ready = None
        self._sync_transmit_ready()

    def _connect(self) -> None:
        """Start an attempt, or defer it until the closing GSock has finished."""
        if self._closing and self._gsock_active:
            self._connect_deferred = True
            self._set_timer(self.config.timeout_waiting_connected)
            return
        self._start_attempt()

    def _start_attempt(self) -> None:
        do_exit = getattr(self.gaplic, "do_exit", None)
        if do_exit is not None and do_exit.is_set():
            # The GAplic is stopping: no new connection now; try again later if it runs on.
            self._set_timer(self.config.timeout_between_connections)
            self._retry_pending = True
            return
        if self._gsock_active:  # never two attempts on one GSock
            self._replace_gsock()
        self._dst = host, port = self.get_next_dst()
        self.attempts += 1
        self._gsock_active = True
        self._closing = False
        self._retry_pending = False
        self.set_new_state("ST_WAIT_CONNECTED")
        self._set_timer(self.config.timeout_waiting_connected)
        self._sync_transmit_ready()
        gsock = self._gsock
        try:
            self.send_event(gsock, "EV_CONNECT", host=host, port=port)
        except Exception as exc:
            (self.logger or _LOG).exception("%r: EV_CONNECT to the GSock raised", self)
            if self._gsock is gsock and self.get_current_state() == "ST_WAIT_CONNECTED":
                self._replace_gsock()
                self.set_new_state("ST_DISCONNECTED")
                self._cancel_timer()
                self._failed(f"connect raised {exc!r}")

    def _reset_backoff(self) -> None:
        """A fresh start (connected, or asked to connect): a new round, the base delay."""
        self._failed_attempts = 0
        self._round_attempts = 0
        self._next_delay = self.config.timeout_between_connections

    def _failed(self, reason: str) -> None:
        """An attempt failed: maybe tell the subscriber, then retry (or give up)."""
        self.last_error = reason
        self._failed_attempts += 1
        cap = self.config.max_attempts
        gave_up = cap > 0 and self._failed_attempts >= cap
        retry_in = -1.0
        if gave_up:
            (self.logger or _LOG).error(
                "%r: giving up after %d failed attempts (last: %s:%s: %s)",
                self,
                self._failed_attempts,
                self._dst[0],
                self._dst[1],
                reason,
            )
            self._want = False
            self._discard_queue()
        elif self._want and not self.disabled:
            retry_in = self._schedule_retry()
        name = self.config.connect_failed_event_name
        if name:
            self.broadcast_event(
                name,
                connex=self,
                host=self._dst[0],
                port=self._dst[1],
                reason=reason,
                attempts=self._failed_attempts,
                gave_up=gave_up,
                retry_in=retry_in,
            )

    def _schedule_retry(self) -> float:
        """Arm the timer for the next attempt; return its delay."""
        self._round_attempts += 1
        if self._round_attempts < len(self.config.destinations):
            delay = 0.0  # the next destination of this round, next loop iteration
        else:
            self._round_attempts = 0
            delay = self._backoff_delay()
        self._set_timer(delay)
        self._retry_pending = True
        return delay

    def _backoff_delay(self) -> float:
        config = self.config
        cap = max(config.backoff_max, config.timeout_between_connections)
        delay = min(self._next_delay, cap)
        self._next_delay = min(self._next_delay * config.backoff_factor, cap)
        jitter = config.backoff_jitter
        if jitter:
            delay = min(delay * self.rng.uniform(1 - jitter, 1 + jitter), cap)
        return float(delay)

    def _end_session(self, event: Event) -> None:
        if self._session_open:
            self._session_open = False
            self._rebroadcast(self.config.disconnected_event_name, event)

    def _rebroadcast(self, name: str | None, event: Event) -> None:
        if name:
            self.broadcast_event(name, connex=self, **event.kw)

    def _broadcast_name(self, name: str | None, **kw: Any) -> None:
        if name:
            self.broadcast_event(name, connex=self, **kw)
