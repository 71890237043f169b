"""``GRemote``: events between GAplics, in this process or on any machine, over NATS.

It replaces ginsfsm's GRouter.  A GAplic with a GRemote (the unique gobj ``router``) is a
NATS *client*: it listens on no port.  ``GAplic.send_event_outside``,
``subscribe_event_outside`` and ``unsubscribe_event_outside`` (ginsfsm's API, same
arguments) reach it through ``gaplic.router``.  Needs ``pip install fsmio[nats]``.

Configuration:

=======================  =====  =======================  ==================================
name                     type   default                  description
=======================  =====  =======================  ==================================
subscriber               None   None                     Gets every output event (None:
                                                         the parent, unless it is the
                                                         GAplic).
servers                  list   [nats://127.0.0.1:4222]  NATS URLs (``nats://``, ``tls://``).
subject_prefix           str    fsmio                    First token(s) of every subject.
user, password           str    ""                       User/password (for development).
token                    str    ""                       Token authentication.
nkeys_seed               str    ""                       Path of an nkey seed file.
creds_file               str    ""                       Path of a JWT creds file.
ssl_options              None   None                     TLS, as GSock's (``cafile``...);
                                                         verified by default.
connect_timeout          float  2.0                      Seconds for one connect attempt.
reconnect_time_wait      float  0.5                      Seconds between attempts.
max_reconnect_attempts   int    -1                       -1: reconnect for ever.
ping_interval            float  20.0                     Seconds between PINGs (a dead
                                                         link is seen after 2 missed).
request_timeout          float  5.0                      Seconds to wait for the answer to
                                                         ``__subscribe_response__``
                                                         (per call: kw ``__timeout__``).
drain_timeout            float  2.0                      Seconds the stop gives to drain.
max_pending_bytes        int    8 MiB                    Outbound bytes not yet written
                                                         to the socket; past it a send
                                                         fails (no unbounded buffer).
max_pending_events       int    65536                    Received events queued per
                                                         subscription; past it they are
                                                         dropped and reported.
peers                    list   []                       GAplic names and roles it may
                                                         send to and subscribe to ([]:
                                                         any); others fail at once.
exported                 list   []                       Unique gobjs whose broadcasts
                                                         are published.
durable                  bool   False                    JetStream: send and receive
                                                         ``__durable__`` events
                                                         (at-least-once; see
                                                         ``fsmio.remote.durable``).
durable_stream           str    FSMIO                    Their stream.
durable_ack_wait         float  30.0                     Seconds before redelivery.
durable_max_deliver      int    5                        Deliveries before a dead letter.
durable_retry_delay      float  1.0                      Seconds before an event whose
                                                         action raised comes again.
durable_publish_timeout  float  30.0                     Seconds to get one stored.
durable_max_queued       int    10000                    Durable events waiting to be
                                                         stored.
trace_remote             bool   False                    Log every remote event sent and
                                                         received, with its subject (also
                                                         on with ``trace_mach``).
=======================  =====  =======================  ==================================

Input events (from its own NATS callbacks; not for users):
``EV_NATS_CONNECTED``, ``EV_NATS_DISCONNECTED``, ``EV_NATS_CLOSED`` (``reason``),
``EV_NATS_ERROR`` (``reason``, ``message``), ``EV_EXPORT`` (a broadcast of an exported
gobj, renamed; ``original_event_name``, ``__subscription_reference__``).

Output events:

* ``EV_REMOTE_CONNECTED`` — connected, and every subscription confirmed by the server
  (after the first connect and after every reconnect).  ``server``: the URL.
* ``EV_REMOTE_DISCONNECTED`` — the connection was lost; it is being re-established.
* ``EV_REMOTE_CLOSED`` — closed for good (stop, reconnect budget spent, authentication
  refused).  ``reason``.
* ``EV_REMOTE_ERROR`` — something failed with nobody waiting for it: a permission
  refusal, a slow consumer (events dropped), an incoming event that could not be
  delivered, a failed connect attempt.  ``reason`` (``permission``, ``slow_consumer``,
  ``auth``, ``bad_payload``, ``gobj_not_found``, ``event_refused``, ``action_failed``,
  ``connect_failed``, ``nats``; for durable events ``durable_not_stored``,
  ``dead_letter``, ``jetstream``), ``message``, ``subject``.

Theory of operation
-------------------
*Subjects* (``fsmio.remote.subjects``): each GAplic subscribes to
``P.ev.<me>.>`` and, per role, to ``P.role.<role>.>`` in the queue group ``<role>``, so an
event to a role reaches exactly one member, and to ``P.all.<role>.>`` (kw
``__all_members__``: every member).  The sender's name is in the subject.

*Sending* never waits: nats-py's ``publish`` only appends to its output buffer, so it is
run to completion synchronously from the action (``_run_now``).  The client's buffering
while disconnected is off (``pending_size=0``): a send while disconnected raises
``RemoteDisconnectedError`` at once, never a publish that a reconnect may or may not
deliver later.  Core NATS is **at-most-once**: a plain event gets no feedback at all.

*``__subscribe_response__``* is a request: the reply subject is
``_INBOX_<me>.<boot>.<n>``, under one wildcard subscription of our own, and its deadline
is a GAplic timer.  The outcome reaches the subscriber gobj as the *same event name* (as
in ginsfsm) with kw ``__action_return__`` and ``__error__``: None, ``no_responders`` (the
server's immediate 503: no such GAplic or role), ``gobj_not_found``, ``event_refused``,
``action_failed``, ``return_not_json``, ``bad_payload`` (the remote's refusal) or
``timeout``.  A request is never retried: the remote may have run the action.  An answer
arriving after its timeout is dropped and logged.

*Receiving*: nats-py runs one task per subscription, so the events of one sender arrive
and are delivered in order; each is delivered with ``send_event`` (so the machine trace
shows it), with kw ``__intra_event__`` (an ``IntraEvent``: origin and destination names,
the subject).  The payload is JSON only (never pickle): an object, the kw plus the
sender's ``__gobj__`` and ``__role__``, with no other ``__reserved__`` key; anything else
is refused.  ``send_event_outside`` checks a destination (names, subscriber) once and
remembers its subject, so a repeated send costs little more than nats-py's publish.

*Readiness*: nats-py's ``flush()`` is not a barrier (its PING can overtake queued SUBs),
so after subscribing it yields to its flusher first, then flushes; only then is
``EV_REMOTE_CONNECTED`` broadcast.  On a reconnect nats-py writes the SUBs before its own
PING, and calls us after the PONG.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import threading
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any, Final, cast

from fsmio.core import smachine as _smachine
from fsmio.core.errors import EventNotAcceptedError, GObjError
from fsmio.core.event import Event
from fsmio.core.gconfig import non_negative_int, positive_int, positive_number
from fsmio.core.gobj import GObj
from fsmio.gobjs.tls import make_ssl_context
from fsmio.remote.durable import ACK, RETRY, TERM, DurableChannel
from fsmio.remote.errors import (
    RemoteDisconnectedError,
    RemoteError,
    RemotePayloadTooLargeError,
)
from fsmio.remote.subjects import TOKEN_RE, ParsedSubject, Subjects, check_prefix, check_token

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription as NatsSubscription

    from fsmio.aplic.gaplic import GAplic, TimerHandle

__all__ = ["GREMOTE_FSM", "GREMOTE_GCONFIG", "GRemote", "IntraEvent"]

_LOG = logging.getLogger("fsmio")

#: Control keywords of send_event_outside: read locally, never sent.
_CONTROL_KW: Final = frozenset(
    (
        "__subscribe_response__",
        "__timeout__",
        "__subscribe_event__",
        "__unsubscribe_event__",
        "__durable__",
        "__all_members__",
    )
)
_FOREIGN_THREAD: Final = (
    "{what} called from a thread that is not its GAplic's: nats-py is not thread-safe; "
    "call it from an action, or through gaplic.add_callback()"
)
#: Destinations checked once and remembered (cleared when it has this many).
_MAX_ROUTES: Final = 4096


def _servers(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [part.strip() for part in value.replace(",", " ").split() if part.strip()]
    servers = list(value)
    if not servers or not all(isinstance(url, str) and "://" in url for url in servers):
        raise ValueError(f"servers must be a list of NATS URLs (nats://host:port), not {value!r}")
    return servers


def _stream_name(value: Any) -> str:
    if not isinstance(value, str) or TOKEN_RE.fullmatch(value) is None:
        raise ValueError(f"durable_stream must be letters, digits, '_' or '-', not {value!r}")
    return value


def _peers(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [part.strip() for part in value.replace(",", " ").split() if part.strip()]
    return [check_token("peer (a GAplic name or a role)", name) for name in value]


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [part.strip() for part in value.replace(",", " ").split() if part.strip()]
    return [check_token("exported gobj name", name) for name in value]


# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
GREMOTE_GCONFIG: Final[dict[str, list[Any]]] = {
    "subscriber": [None, None, 0, None, "Gets every output event; None means the parent."],
    "servers": [list, ["nats://127.0.0.1:4222"], 0, _servers, "NATS server URLs."],
    "subject_prefix": [str, "fsmio", 0, check_prefix, "First token(s) of every subject."],
    "user": [str, "", 0, None, "NATS user (with password; for development)."],
    "password": [str, "", 0, None, "NATS password."],
    "token": [str, "", 0, None, "NATS token."],
    "nkeys_seed": [str, "", 0, None, "Path of an nkey seed file."],
    "creds_file": [str, "", 0, None, "Path of a JWT creds file."],
    "ssl_options": [None, None, 0, None, "TLS options, as GSock's (verified by default)."],
    "connect_timeout": [float, 2.0, 0, positive_number, "Seconds for one connect attempt."],
    "reconnect_time_wait": [float, 0.5, 0, positive_number, "Seconds between attempts."],
    "max_reconnect_attempts": [int, -1, 0, None, "Reconnect attempts; -1: for ever."],
    "ping_interval": [float, 20.0, 0, positive_number, "Seconds between PINGs."],
    "request_timeout": [float, 5.0, 0, positive_number, "Seconds to wait for an answer."],
    "drain_timeout": [float, 2.0, 0, positive_number, "Seconds the stop gives to drain."],
    "max_pending_bytes": [
        int,
        8 * 1024 * 1024,
        0,
        positive_int,
        "Outbound bytes not yet written; past it a send fails.",
    ],
    "max_pending_events": [
        int,
        65536,
        0,
        non_negative_int,
        "Received events queued per subscription; past it they are dropped and reported.",
    ],
    "exported": [list, [], 0, _names, "Unique gobjs whose broadcasts are published."],
    "peers": [list, [], 0, _peers, "GAplics and roles it may send to ([]: any)."],
    "durable": [bool, False, 0, None, "JetStream: receive and send __durable__ events."],
    "durable_stream": [str, "FSMIO", 0, _stream_name, "The JetStream stream of them."],
    "durable_ack_wait": [float, 30.0, 0, positive_number, "Seconds before redelivery."],
    "durable_max_deliver": [int, 5, 0, positive_int, "Deliveries before a dead letter."],
    "durable_retry_delay": [
        float,
        1.0,
        0,
        positive_number,
        "Seconds before an event whose action raised is delivered again.",
    ],
    "durable_publish_timeout": [
        float,
        30.0,
        0,
        positive_number,
        "Seconds to get a durable event stored (retried with the same id).",
    ],
    "durable_max_queued": [int, 10000, 0, positive_int, "Durable events waiting to be stored."],
    "trace_remote": [bool, False, 0, None, "Log every remote event with its subject."],
}


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_connected(self: GRemote, event: Event) -> None:
    self.connections += 1
    self._export_configured()
    self.broadcast_event("EV_REMOTE_CONNECTED", server=event.kw.get("server", ""))


def ac_disconnected(self: GRemote, event: Event) -> None:
    self.broadcast_event("EV_REMOTE_DISCONNECTED")


def ac_closed(self: GRemote, event: Event) -> None:
    reason = event.kw.get("reason", "closed")
    self.broadcast_event("EV_REMOTE_CLOSED", reason=reason)


def ac_error(self: GRemote, event: Event) -> None:
    kw = event.kw
    self.errors += 1
    self.broadcast_event(
        "EV_REMOTE_ERROR",
        reason=kw.get("reason", "nats"),
        message=kw.get("message", ""),
        subject=kw.get("subject", ""),
    )


def ac_export(self: GRemote, event: Event) -> None:
    kw = dict(event.kw)
    name = kw.pop("original_event_name", None)
    gobj_name = kw.pop("__subscription_reference__", None)
    if not isinstance(name, str) or not isinstance(gobj_name, str):
        return
    kw.pop("__intra_event__", None)
    self._publish_broadcast(gobj_name, name, kw)


def ac_ignore(self: GRemote, event: Event) -> None:
    return None


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
GREMOTE_FSM: Final[dict[str, Any]] = {
    "event_list": (
        "EV_NATS_CONNECTED: bottom input",
        "EV_NATS_DISCONNECTED: bottom input",
        "EV_NATS_CLOSED: bottom input",
        "EV_NATS_ERROR: bottom input",
        "EV_EXPORT: bottom input",
        "EV_REMOTE_CONNECTED: top output",
        "EV_REMOTE_DISCONNECTED: top output",
        "EV_REMOTE_CLOSED: top output",
        "EV_REMOTE_ERROR: top output",
    ),
    "state_list": ("ST_CONNECTING", "ST_CONNECTED", "ST_DISCONNECTED", "ST_CLOSED"),
    "machine": {
        "ST_CONNECTING": (
            ("EV_NATS_CONNECTED", ac_connected, "ST_CONNECTED"),
            ("EV_NATS_DISCONNECTED", ac_ignore, None),
            ("EV_NATS_CLOSED", ac_closed, "ST_CLOSED"),
            ("EV_NATS_ERROR", ac_error, None),
            ("EV_EXPORT", ac_export, None),
        ),
        "ST_CONNECTED": (
            ("EV_NATS_CONNECTED", ac_ignore, None),
            ("EV_NATS_DISCONNECTED", ac_disconnected, "ST_DISCONNECTED"),
            ("EV_NATS_CLOSED", ac_closed, "ST_CLOSED"),
            ("EV_NATS_ERROR", ac_error, None),
            ("EV_EXPORT", ac_export, None),
        ),
        "ST_DISCONNECTED": (
            ("EV_NATS_CONNECTED", ac_connected, "ST_CONNECTED"),
            ("EV_NATS_DISCONNECTED", ac_ignore, None),
            ("EV_NATS_CLOSED", ac_closed, "ST_CLOSED"),
            ("EV_NATS_ERROR", ac_error, None),
            ("EV_EXPORT", ac_export, None),
        ),
        "ST_CLOSED": (
            ("EV_NATS_CONNECTED", ac_ignore, None),
            ("EV_NATS_DISCONNECTED", ac_ignore, None),
            ("EV_NATS_CLOSED", ac_ignore, None),
            ("EV_NATS_ERROR", ac_error, None),
            ("EV_EXPORT", ac_export, None),
        ),
    },
}


# ----------------------------------------------------------------------------------------
#   Helpers
# ----------------------------------------------------------------------------------------
class IntraEvent:
    """Where a remote event came from and went to: kw ``__intra_event__`` of the event.

    The names of ginsfsm's IntraEvent (``origin_gaplic``, ``origin_role``,
    ``origin_gobj``, ``destination_gaplic``, ``destination_role``, ``destination_gobj``,
    ``event_name``), plus the NATS ``subject``.  ``origin_gaplic`` comes from the subject,
    which the server's permissions can make unforgeable; ``origin_role`` and
    ``origin_gobj`` are what the sender said.
    """

    __slots__ = (
        "destination_gaplic",
        "destination_gobj",
        "destination_role",
        "event_name",
        "origin_gaplic",
        "origin_gobj",
        "origin_role",
        "subject",
    )

    def __init__(
        self,
        origin_gaplic: str,
        origin_role: str,
        origin_gobj: str,
        destination_gaplic: str,
        destination_role: str,
        destination_gobj: str,
        event_name: str,
        subject: str,
    ) -> None:
        self.origin_gaplic = origin_gaplic
        self.origin_role = origin_role
        self.origin_gobj = origin_gobj
        self.destination_gaplic = destination_gaplic
        self.destination_role = destination_role
        self.destination_gobj = destination_gobj
        self.event_name = event_name
        self.subject = subject

    def __repr__(self) -> str:
        return (
            f"<IntraEvent {self.event_name} {self.origin_gaplic}/{self.origin_gobj} -> "
            f"{self.destination_gaplic or self.destination_role}/{self.destination_gobj} "
            f"({self.subject})>"
        )


class _Route:
    """A destination of send_event_outside, checked once (see ``GRemote._route``)."""

    __slots__ = (
        "event_name",
        "gaplic_name",
        "gobj_name",
        "role",
        "src_role",
        "subject",
        "subscriber",
    )

    def __init__(
        self,
        gaplic_name: str,
        role: str,
        gobj_name: str,
        event_name: str,
        subscriber: str,
        src_role: str,
        subject: str,
    ) -> None:
        self.gaplic_name = gaplic_name
        self.role = role
        self.gobj_name = gobj_name
        self.event_name = event_name
        self.subscriber = subscriber
        self.src_role = src_role
        self.subject = subject


class _Request:
    """A ``__subscribe_response__`` waiting for its answer."""

    __slots__ = ("event_name", "intra", "subscriber", "timer")

    def __init__(self, subscriber: str, event_name: str, intra: IntraEvent) -> None:
        self.subscriber = subscriber
        self.event_name = event_name
        self.intra = intra
        self.timer: TimerHandle | None = None


class _Resume:
    """Let a task finish a coroutine that ``_run_now`` started and that suspended."""

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, None, Any]:
        yielded = self._yielded
        while True:
            yield yielded
            try:
                yielded = self._coro.send(None)
            except StopIteration as stop:
                return stop.value


async def _finish(resume: _Resume) -> Any:
    return await resume


_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_encode_json = _ENCODER.encode
_decode_json = json.JSONDecoder().decode


def _encode(what: str, kw: dict[str, Any]) -> bytes:
    try:
        return _encode_json(kw).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what}: the kw is not JSON-serialisable: {exc}") from None


def _encode_kw(event_name: str, kw: dict[str, Any]) -> bytes:
    try:
        return _encode_json(kw).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"send_event_outside({event_name!r}): the kw is not JSON-serialisable: {exc}"
        ) from None


def _decode(data: bytes) -> tuple[dict[str, Any], str, str]:
    """A received event: ``(kw, sender gobj, sender role)``; ValueError if it is not a
    JSON object, or has ``__reserved__`` keys other than the sender's two."""
    try:
        kw = _decode_json(data.decode()) if data else {}
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"not JSON: {str(exc)[:80]}") from None
    if type(kw) is not dict:
        raise ValueError(f"a JSON object was expected, not {type(kw).__name__}")
    src_gobj = kw.pop("__gobj__", "")
    src_role = kw.pop("__role__", "")
    if type(src_gobj) is not str or type(src_role) is not str:
        raise ValueError("__gobj__ and __role__ must be strings")
    for key in kw:
        if key[:2] == "__" and key[-2:] == "__":
            raise ValueError(f"reserved key {key[:40]!r}")
    return kw, src_gobj, src_role


def _is_auth_error(exc: BaseException) -> bool:
    return "authorization violation" in str(exc).lower()


def _check_outside_args(
    gaplic: Any,
    what: str,
    gaplic_name: Any,
    role: Any,
    gobj_name: Any,
    event_name: Any,
    subscriber_gobj: Any,
    origin_role: Any,
    any_event: bool = False,
) -> str:
    """ginsfsm's checks of send_event_outside, plus the subject-token rules."""
    for label, value in (("gaplic_name", gaplic_name), ("role", role)):
        if not isinstance(value, str):
            raise TypeError(f"{what}: destination {label} {value!r} must be a str")
    if not gaplic_name and not role:
        raise TypeError(f"{what}: give a destination gaplic_name or role")
    if not isinstance(gobj_name, str):
        raise TypeError(f"{what}: destination gobj {gobj_name!r} must be a str")
    if not isinstance(event_name, str):
        raise TypeError(f"{what}: event name {event_name!r} must be a str")
    if gaplic_name == gaplic.name or (not gaplic_name and role in gaplic.roles):
        raise TypeError(f"{what}: please don't use external methods to send to yourself")
    if origin_role and origin_role not in gaplic.roles:
        raise TypeError(f"{what}: unknown origin role {origin_role!r}")
    if gaplic_name:
        check_token("destination GAplic name", gaplic_name)
    else:
        check_token("destination role", role)
    check_token("destination gobj name", gobj_name)
    if event_name or not any_event:
        check_token("event name", event_name)
    if isinstance(subscriber_gobj, GObj):
        subscriber_gobj = subscriber_gobj.name
    if not isinstance(subscriber_gobj, str):
        raise TypeError(f"{what}: subscriber gobj {subscriber_gobj!r} must be a gobj or a name")
    if gaplic.find_unique_gobj(subscriber_gobj) is None:
        raise TypeError(f"{what}: subscriber gobj {subscriber_gobj!r} must be a unique-named gobj")
    check_token("subscriber gobj name", subscriber_gobj)
    return subscriber_gobj


def _run_now(owner: GRemote, coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a nats-py coroutine that does not wait (publish, subscribe, unsubscribe with
    buffering off) to its end, now, from synchronous code; keeps the order of sends.

    If it does suspend (nats-py flushing inline), a task finishes it: the command is
    already in nats-py's buffer by then, so the order is kept.
    """
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return stop.value
    owner._spawn(_finish(_Resume(coro, yielded)))
    return None


class GRemote(GObj):
    """A GAplic's connection to NATS: remote events in and out (see the module doc)."""

    def __init__(self) -> None:
        GObj.__init__(self, GREMOTE_FSM, GREMOTE_GCONFIG)
        self._nc: NatsClient | None = None
        self._subjects: Subjects | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._requests: dict[str, _Request] = {}
        self._routes: dict[tuple[Any, ...], _Route] = {}
        self._parsed: dict[str, ParsedSubject] = {}
        self._max_pending = 0
        self._request_seq = itertools.count(1)
        self._reply_base = ""
        self._outside: dict[tuple[str, str, str, str], NatsSubscription | None] = {}
        self._exported: set[str] = set()
        self._durable: DurableChannel | None = None
        self._ever_connected = False
        self._stopping = False
        self._connect_errors = 0
        #: Statistics.
        self.connections = 0
        self.sent = 0
        self.received = 0
        self.errors = 0
        self.timeouts = 0
        self.late_replies = 0
        self.dropped_broadcasts = 0

    # ------------------------------------------------------------------------------------
    #   Life cycle
    # ------------------------------------------------------------------------------------
    def start_up(self) -> None:
        gaplic = self._gaplic
        if gaplic is None:
            raise GObjError(f"{self!r}: a GRemote needs a GAplic")
        # Every name that will be a subject token is checked now, at start, not at send.
        self._subjects = Subjects(self.config.subject_prefix, gaplic.name)
        for role in gaplic.roles:
            check_token(f"GAplic {gaplic.name!r}: role", role)
        if getattr(gaplic, "router", None) not in (None, self):
            raise GObjError(f"GAplic {gaplic.name!r} already has a router: {gaplic.router!r}")
        # Built now so that a bad ssl_options fails the creation, naming the option.
        make_ssl_context(self.config.ssl_options, server_side=False, owner=repr(self))
        subscriber = self.config.subscriber
        # The GAplic (the parent of a top gobj in `fsmio run`) has no machine to take them.
        if subscriber is not None or self.parent not in (None, gaplic):
            self.subscribe_event(None, subscriber)
        gaplic.router = self
        self._max_pending = self.config.max_pending_bytes
        self._reply_base = f"{self._subjects.inbox_prefix()}.{os.urandom(8).hex()}"
        if self.config.durable:
            config = self.config
            self._durable = DurableChannel(
                me=self._subjects.me,
                prefix=self._subjects.prefix,
                stream=config.durable_stream,
                ack_wait=config.durable_ack_wait,
                max_deliver=config.durable_max_deliver,
                retry_delay=config.durable_retry_delay,
                publish_timeout=config.durable_publish_timeout,
                max_queued=config.durable_max_queued,
                spawn=self._spawn,
                deliver=self._deliver_durable,
                report=self._report_error,
                logger=self.logger,
            )
        gaplic.add_callback(self._start)
        gaplic.add_shutdown_callback(self._shutdown)

    def go_out(self) -> None:
        gaplic = self._gaplic
        if gaplic is not None:
            gaplic.remove_shutdown_callback(self._shutdown)
            if getattr(gaplic, "router", None) is self:
                gaplic.router = None
        self._cancel_requests()
        nc = self._nc
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to close on
                self._spawn(nc.close())

    @property
    def nc(self) -> NatsClient | None:
        """The nats-py client (None before the first connect attempt)."""
        return self._nc

    def is_connected(self) -> bool:
        nc = self._nc
        return nc is not None and nc.is_connected

    # ------------------------------------------------------------------------------------
    #   Connecting
    # ------------------------------------------------------------------------------------
    def _start(self) -> None:
        if self._destroyed or self._connect_task is not None:
            return
        self._connect_task = self._spawn(self._connect())

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = self._loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            gaplic = self._gaplic
            if gaplic is not None:
                gaplic.handle_exception(exc, f"{self!r} task")
            else:  # destroyed meanwhile
                (self.logger or _LOG).error("%r task: %r", self, exc, exc_info=exc)

    def _loop(self) -> asyncio.AbstractEventLoop:
        return self._gaplic_or_fail().loop

    def _gaplic_or_fail(self) -> GAplic:
        gaplic = self._gaplic
        if gaplic is None:
            raise GObjError(f"{self!r}: no GAplic")
        # GObj keeps its GAplic untyped (the core cannot import aplic)
        return cast("GAplic", gaplic)

    def _connect_options(self) -> dict[str, Any]:
        config = self.config
        subjects = self._subjects
        assert subjects is not None
        options: dict[str, Any] = {
            "servers": list(config.servers),
            "name": subjects.me,
            "error_cb": self._on_nats_error,
            "disconnected_cb": self._on_nats_disconnected,
            "reconnected_cb": self._on_nats_reconnected,
            "closed_cb": self._on_nats_closed,
            "connect_timeout": config.connect_timeout,
            "reconnect_time_wait": config.reconnect_time_wait,
            "max_reconnect_attempts": config.max_reconnect_attempts,
            "ping_interval": config.ping_interval,
            "max_outstanding_pings": 2,
            "drain_timeout": config.drain_timeout,
            "inbox_prefix": subjects.inbox_prefix(),
            # No buffering while disconnected: a send then fails at once (module doc).
            "pending_size": 0,
        }
        if config.user:
            options["user"] = config.user
            options["password"] = config.password
        if config.token:
            options["token"] = config.token
        if config.nkeys_seed:
            options["nkeys_seed"] = config.nkeys_seed
        if config.creds_file:
            options["user_credentials"] = config.creds_file
        context = make_ssl_context(config.ssl_options, server_side=False, owner=repr(self))
        if context is not None:
            options["tls"] = context
        return options

    async def _connect(self) -> None:
        try:
            import nats.aio.client
        except ImportError:  # pragma: no cover - the extra is missing
            self._report_error("nats", "nats-py is not installed: pip install 'fsmio[nats]'")
            self.send_event(self, "EV_NATS_CLOSED", reason="nats-py not installed")
            return
        nc = nats.aio.client.Client()
        self._nc = nc
        try:
            await nc.connect(**self._connect_options())
        except asyncio.CancelledError:
            await self._close_quietly(nc)
            raise
        except Exception as exc:
            await self._close_quietly(nc)
            reason = "auth" if _is_auth_error(exc) else "connect_failed"
            (self.logger or _LOG).error("%r: cannot connect to NATS: %s", self, exc or repr(exc))
            self.send_event(self, "EV_NATS_CLOSED", reason=f"{reason}: {exc or repr(exc)}")
            return
        self._ever_connected = True
        subjects = self._subjects
        assert subjects is not None
        limit = self.config.max_pending_events
        await nc.subscribe(subjects.my_events(), cb=self._on_event, pending_msgs_limit=limit)
        gaplic = self._gaplic_or_fail()
        for role in gaplic.roles:
            await nc.subscribe(
                subjects.role_events(role), queue=role, cb=self._on_event, pending_msgs_limit=limit
            )
            await nc.subscribe(
                subjects.all_of_role(role), cb=self._on_event, pending_msgs_limit=limit
            )
        await nc.subscribe(f"{self._reply_base}.*", cb=self._on_reply)
        for key, sub in list(self._outside.items()):
            if sub is None:
                self._outside[key] = await self._subscribe_outside(key)
        # flush() is not a barrier in nats-py: let its flusher write the SUBs first.
        await asyncio.sleep(0)
        await nc.flush(timeout=self.config.connect_timeout)
        if self._durable is not None:
            try:
                await self._durable.start(nc)
            except Exception as exc:
                self._report_error("jetstream", f"durable events unavailable: {exc!r}")
        self._connect_task = None
        if nc.is_connected:
            self._publish_system("STARTED")
            self.send_event(self, "EV_NATS_CONNECTED", server=self._server_url())

    def _server_url(self) -> str:
        nc = self._nc
        url = nc.connected_url if nc is not None else None
        return f"{url.scheme}://{url.hostname}:{url.port}" if url is not None else ""

    @staticmethod
    async def _close_quietly(nc: NatsClient) -> None:
        with contextlib.suppress(Exception):
            await nc.close()

    async def _on_nats_error(self, exc: Exception) -> None:
        if self._connect_task is not None and not self._ever_connected and _is_auth_error(exc):
            # Refused credentials will not get better: end the first connect now (the
            # exception leaves nc.connect(), see _connect) instead of retrying for ever.
            raise exc
        import nats.errors

        message = str(exc) or repr(exc)
        subject = ""
        if isinstance(exc, nats.errors.SlowConsumerError):
            reason = "slow_consumer"
            subject = exc.subject
        elif "permissions violation" in message.lower():
            reason = "permission"
        elif _is_auth_error(exc):
            reason = "auth"
        elif not self._ever_connected or (self._nc is not None and not self._nc.is_connected):
            reason = "connect_failed"
            self._connect_errors += 1
            if self._connect_errors > 1:
                # One line per outage is enough; the event still goes out every time.
                self.send_event(self, "EV_NATS_ERROR", reason=reason, message=message)
                return
        else:
            reason = "nats"
        (self.logger or _LOG).warning("%r: NATS %s: %s", self, reason, message)
        self.send_event(self, "EV_NATS_ERROR", reason=reason, message=message, subject=subject)

    async def _on_nats_disconnected(self) -> None:
        if not self._ever_connected:
            return
        log = self.logger or _LOG
        if self._stopping:
            log.info("%r: disconnected from NATS (stopping)", self)
        else:
            log.warning("%r: disconnected from NATS", self)
        self.send_event(self, "EV_NATS_DISCONNECTED")

    async def _on_nats_reconnected(self) -> None:
        # nats-py wrote the SUBs back before its PING and calls this after the PONG.
        self._connect_errors = 0
        (self.logger or _LOG).info("%r: reconnected to NATS %s", self, self._server_url())
        self.send_event(self, "EV_NATS_CONNECTED", server=self._server_url())

    async def _on_nats_closed(self) -> None:
        if self._ever_connected:
            reason = "stopped" if self._stopping else "reconnect attempts exhausted"
            self.send_event(self, "EV_NATS_CLOSED", reason=reason)

    def _shutdown(self) -> Coroutine[Any, Any, None]:
        return self._drain()

    async def _drain(self) -> None:
        self._stopping = True
        task = self._connect_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._durable is not None:
            await self._durable.stop()
        nc = self._nc
        if nc is not None and not nc.is_closed:
            if nc.is_connected:
                with contextlib.suppress(Exception):
                    await self._publish_now(self._subjects_or_fail().system("STOPPING"), b"")
                try:
                    # Answers the requests already received, flushes, then closes.
                    await nc.drain()
                except Exception as exc:
                    (self.logger or _LOG).warning("%r: NATS drain: %r", self, exc)
            await self._close_quietly(nc)
        self._cancel_requests()
        for pending in list(self._tasks):
            if not pending.done():
                pending.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _cancel_requests(self) -> None:
        for request in self._requests.values():
            if request.timer is not None:
                request.timer.cancel()
        self._requests.clear()

    def _subjects_or_fail(self) -> Subjects:
        if self._subjects is None:
            raise RemoteError(f"{self!r} is not started")
        return self._subjects

    # ------------------------------------------------------------------------------------
    #   Sending
    # ------------------------------------------------------------------------------------
    def _connected_client(self, what: str) -> NatsClient:
        nc = self._nc
        if nc is None or not nc.is_connected:
            raise RemoteDisconnectedError(
                f"{what}: not connected to NATS ({self.get_current_state()}); "
                "nothing was sent (send after EV_REMOTE_CONNECTED)"
            )
        if nc.pending_data_size > self.config.max_pending_bytes:
            raise RemoteDisconnectedError(
                f"{what}: {nc.pending_data_size} bytes wait to be written to NATS, more than "
                f"max_pending_bytes {self.config.max_pending_bytes}; nothing was sent"
            )
        return nc

    def _check_size(self, what: str, nc: NatsClient, payload: bytes) -> None:
        size = len(payload)
        if size > nc.max_payload:
            raise RemotePayloadTooLargeError(
                f"{what}: the event is {size} bytes, more than the NATS server's "
                f"max_payload of {nc.max_payload} bytes"
            )

    def _publish_now(self, subject: str, payload: bytes, reply: str = "") -> Any:
        nc = self._nc
        assert nc is not None
        return _run_now(self, nc.publish(subject, payload, reply=reply))

    def mt_send_event_outside(
        self,
        gaplic_name: str,
        role: str,
        gobj_name: str,
        event_name: str,
        subscriber_gobj: Any,
        origin_role: str | None = None,
        **kw: Any,
    ) -> bool:
        """``GAplic.send_event_outside`` (see there).  Returns True when published."""
        # The hot path of every remote event: few calls; the rare cases go to helpers.
        subscriber = subscriber_gobj.name if isinstance(subscriber_gobj, GObj) else subscriber_gobj
        key = (gaplic_name, role, gobj_name, event_name, subscriber, origin_role)
        try:
            route = self._routes.get(key)
        except TypeError:  # an unhashable argument: _route() says which, clearly
            route = None
        gaplic = self._gaplic
        if gaplic is None or (
            gaplic._loop_thread != threading.get_ident() and gaplic._loop_thread is not None
        ):
            raise RuntimeError(_FOREIGN_THREAD.format(what="send_event_outside()"))
        if route is None or subscriber not in gaplic._unique_named_gobjs:
            route = self._route(key, subscriber_gobj)
        if kw and not _CONTROL_KW.isdisjoint(kw):
            return self._send_controlled(route, kw)
        nc = self._nc
        if nc is None or not nc.is_connected or nc.pending_data_size > self._max_pending:
            nc = self._connected_client(f"send_event_outside({event_name!r})")
        kw["__gobj__"] = subscriber
        if route.src_role:
            kw["__role__"] = route.src_role
        try:
            payload = _encode_json(kw).encode()
        except (TypeError, ValueError):
            payload = _encode_kw(event_name, kw)  # raises the TypeError naming the event
        if len(payload) > nc.max_payload:
            self._check_size(f"send_event_outside({event_name!r})", nc, payload)
        if self.config.trace_remote or (_smachine._trace_any and self.trace_mach):
            self._trace("tx", route.subject, event_name, kw)
        # _run_now(), inlined.
        coro = nc.publish(route.subject, payload)
        try:
            yielded = coro.send(None)
        except StopIteration:
            pass
        except Exception as exc:
            if type(exc).__name__ == "OutboundBufferLimitError":
                raise RemoteDisconnectedError(
                    f"send_event_outside({event_name!r}): not connected to NATS"
                ) from exc
            raise
        else:
            self._spawn(_finish(_Resume(coro, yielded)))
        self.sent += 1
        return True

    def _route(self, key: tuple[Any, ...], subscriber_gobj: Any) -> _Route:
        """Check a destination once (ginsfsm's checks, the token rules) and remember it."""
        gaplic_name, role, gobj_name, event_name, _, origin_role = key
        gaplic = self._gaplic_or_fail()
        what = f"send_event_outside({event_name!r})"
        subscriber = _check_outside_args(
            gaplic, what, gaplic_name, role, gobj_name, event_name, subscriber_gobj, origin_role
        )
        subjects = self._subjects_or_fail()
        peers = self.config.peers
        if peers and (gaplic_name or role) not in peers:
            # What the server's permissions (fsmio nats-config) would refuse silently.
            raise RemoteError(
                f"{what}: {gaplic_name or role!r} is not one of this GAplic's peers "
                f"{peers}: nothing was sent"
            )
        if gaplic_name:
            subject = subjects.to_gaplic(gaplic_name, gobj_name, event_name)
        else:
            subject = subjects.to_role(role, gobj_name, event_name)
        src_role = origin_role or (gaplic.roles[0] if gaplic.roles else "")
        route = _Route(gaplic_name, role, gobj_name, event_name, subscriber, src_role, subject)
        if len(self._routes) >= _MAX_ROUTES:
            self._routes.clear()
        self._routes[key] = route
        return route

    def _publish(self, subject: str, payload: bytes, reply: str, what: str) -> None:
        try:
            self._publish_now(subject, payload, reply)
        except Exception as exc:
            if type(exc).__name__ == "OutboundBufferLimitError":
                raise RemoteDisconnectedError(f"{what}: not connected to NATS") from exc
            raise

    def _send_controlled(self, route: _Route, kw: dict[str, Any]) -> bool:
        """send_event_outside with control keywords: (un)subscribe, durable, request."""
        what = f"send_event_outside({route.event_name!r})"
        if kw.get("__subscribe_event__"):
            return self.mt_subscribe_event_outside(
                route.gaplic_name, route.role, route.gobj_name, route.event_name, route.subscriber
            )
        if kw.get("__unsubscribe_event__"):
            return self.mt_unsubscribe_event_outside(
                route.gaplic_name, route.role, route.gobj_name, route.event_name, route.subscriber
            )
        if kw.get("__durable__"):
            return self._send_durable(what, route, kw)
        want_response = bool(kw.get("__subscribe_response__"))
        subject = route.subject
        if kw.get("__all_members__"):
            if route.gaplic_name or want_response:
                raise TypeError(
                    f"{what}: __all_members__ goes to every member of a role (give no "
                    "gaplic_name) and gets no __action_return__ (it would come from each)"
                )
            subject = self._subjects_or_fail().to_all(route.role, route.gobj_name, route.event_name)
        timeout = kw.get("__timeout__", self.config.request_timeout)
        if want_response and (
            not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0
        ):
            raise ValueError(f"{what}: __timeout__ must be seconds > 0, not {timeout!r}")
        body = {k: v for k, v in kw.items() if k not in _CONTROL_KW}
        body["__gobj__"] = route.subscriber
        if route.src_role:
            body["__role__"] = route.src_role
        payload = _encode_kw(route.event_name, body)
        nc = self._connected_client(what)
        self._check_size(what, nc, payload)
        reply = ""
        token = ""
        if want_response:
            gaplic = self._gaplic_or_fail()
            token = str(next(self._request_seq))
            reply = f"{self._reply_base}.{token}"
            intra = IntraEvent(
                route.gaplic_name,
                route.role,
                route.gobj_name,
                self._subjects_or_fail().me,
                route.src_role,
                route.subscriber,
                route.event_name,
                route.subject,
            )
            request = _Request(route.subscriber, route.event_name, intra)
            request.timer = gaplic.call_at(
                gaplic.time() + float(timeout), self._request_timed_out, token
            )
            self._requests[token] = request
        if self.config.trace_remote or (_smachine._trace_any and self.trace_mach):
            self._trace("tx", subject, route.event_name, kw)
        try:
            self._publish(subject, payload, reply, what)
        except Exception:
            if token:
                self._forget_request(token)
            raise
        self.sent += 1
        return True

    def _send_durable(self, what: str, route: _Route, kw: dict[str, Any]) -> bool:
        durable = self._durable
        if durable is None:
            raise RemoteError(f"{what}: __durable__ needs the GRemote's durable = true")
        if not route.gaplic_name:
            raise RemoteError(f"{what}: a __durable__ event goes to a GAplic, not to a role")
        if kw.get("__subscribe_response__"):
            raise TypeError(
                f"{what}: a __durable__ event gets no __action_return__ (it may run later, "
                "or twice): send an answer event back instead"
            )
        body = {k: v for k, v in kw.items() if k not in _CONTROL_KW}
        body["__gobj__"] = route.subscriber
        if route.src_role:
            body["__role__"] = route.src_role
        payload = _encode_kw(route.event_name, body)
        nc = self._nc
        limit = nc.max_payload if nc is not None and nc.is_connected else 1024 * 1024
        if len(payload) + 64 > limit:
            raise RemotePayloadTooLargeError(
                f"{what}: the event is {len(payload)} bytes, more than the NATS server's "
                f"max_payload of {limit} bytes (less 64 for the message id)"
            )
        subject = durable.subject_to(route.gaplic_name, route.gobj_name, route.event_name)
        if self.config.trace_remote or (_smachine._trace_any and self.trace_mach):
            self._trace("tx", subject, route.event_name, kw)
        durable.send(subject, payload, {})
        self.sent += 1
        return True

    def _deliver_durable(self, msg: Msg, redelivered: bool, last_chance: bool) -> str:
        subjects = self._subjects_or_fail()
        parsed = subjects.parse_event(msg.subject)
        if parsed is None or parsed.kind != "dur":
            self._report_error("bad_subject", "not a durable event subject", msg.subject)
            return TERM
        try:
            kw, src_gobj, src_role = _decode(msg.data)
        except ValueError as exc:
            self._report_error("bad_payload", f"{parsed.event}: {exc}", msg.subject)
            return TERM
        gaplic = self._gaplic_or_fail()
        gobj = gaplic.find_unique_gobj(parsed.gobj)
        if gobj is None:
            self._report_error("gobj_not_found", f"no gobj {parsed.gobj!r}", msg.subject)
            return TERM
        intra = IntraEvent(
            parsed.src_gaplic,
            src_role,
            src_gobj,
            subjects.me,
            "",
            parsed.gobj,
            parsed.event,
            msg.subject,
        )
        self.received += 1
        if self.config.trace_remote or (_smachine._trace_any and self.trace_mach):
            self._trace("rx", msg.subject, parsed.event, kw)
        try:
            ret = self.send_event(
                gobj, parsed.event, __intra_event__=intra, __redelivered__=redelivered, **kw
            )
        except EventNotAcceptedError:
            ret = EventNotAcceptedError
        except Exception as exc:
            gaplic.handle_exception(exc, f"{gobj!r}, durable event {parsed.event}")
            return RETRY
        if ret is EventNotAcceptedError:
            self._report_error(
                "event_refused", f"{parsed.gobj} refused {parsed.event}", msg.subject
            )
            return TERM
        return ACK

    @property
    def durable(self) -> DurableChannel | None:
        """The JetStream channel (``durable = true``), with its statistics; else None."""
        return self._durable

    def _forget_request(self, token: str) -> _Request | None:
        request = self._requests.pop(token, None)
        if request is not None and request.timer is not None:
            request.timer.cancel()
        return request

    def _request_timed_out(self, token: str) -> None:
        request = self._requests.pop(token, None)
        if request is None:
            return
        self.timeouts += 1
        (self.logger or _LOG).warning(
            "%r: no answer to %s on %s in time", self, request.event_name, request.intra.subject
        )
        self._deliver_outcome(request, None, "timeout", "no answer in time")

    def _deliver_outcome(
        self, request: _Request, value: Any, error: str | None, message: str = ""
    ) -> None:
        gaplic = self._gaplic_or_fail()
        subscriber = gaplic.find_unique_gobj(request.subscriber)
        if subscriber is None:
            (self.logger or _LOG).warning(
                "%r: answer to %s for %r dropped: that gobj is gone",
                self,
                request.event_name,
                request.subscriber,
            )
            return
        kw: dict[str, Any] = {
            "__action_return__": value,
            "__error__": error,
            "__intra_event__": request.intra,
        }
        if error is not None:
            kw["__message__"] = message
        try:
            self.send_event(subscriber, request.event_name, **kw)
        except Exception as exc:
            gaplic.handle_exception(exc, f"{subscriber!r}, answer {request.event_name}")

    def _publish_broadcast(self, gobj_name: str, event_name: str, kw: dict[str, Any]) -> None:
        what = f"exported broadcast {gobj_name}.{event_name}"
        try:
            check_token("event name", event_name)
        except RemoteError as exc:
            self._report_error("bad_name", str(exc))
            return
        payload = _encode(what, kw)
        nc = self._nc
        if nc is None or not nc.is_connected:
            # A broadcast has no sender waiting for it: counted, not raised.
            self.dropped_broadcasts += 1
            return
        self._check_size(what, nc, payload)
        subject = self._subjects_or_fail().my_broadcast(gobj_name, event_name)
        if self.config.trace_remote or (_smachine._trace_any and self.trace_mach):
            self._trace("tx", subject, event_name, kw)
        self._publish_now(subject, payload)
        self.sent += 1

    def _publish_system(self, verb: str) -> None:
        nc = self._nc
        if nc is not None and nc.is_connected:
            gaplic = self._gaplic_or_fail()
            info = {"gaplic": gaplic.name, "roles": list(gaplic.roles), "pid": os.getpid()}
            self._publish_now(self._subjects_or_fail().system(verb), json.dumps(info).encode())

    # ------------------------------------------------------------------------------------
    #   Exported gobjs
    # ------------------------------------------------------------------------------------
    def export_gobj(self, gobj: Any) -> None:
        """Publish every output event of ``gobj`` (a unique gobj or its name) on
        ``P.pub.<me>.<gobj>.<EVENT>``, for ``subscribe_event_outside``."""
        gaplic = self._gaplic_or_fail()
        target = gaplic.find_unique_gobj(gobj) if isinstance(gobj, str) else gobj
        if not isinstance(target, GObj) or gaplic.find_unique_gobj(target.name) is not target:
            raise GObjError(f"export_gobj(): {gobj!r} is not a unique gobj of {gaplic.name!r}")
        name = check_token("exported gobj name", target.name)
        if name in self._exported:
            return
        target.subscribe_event(
            None, self, __rename_event_name__="EV_EXPORT", __subscription_reference__=name
        )
        self._exported.add(name)

    def _export_configured(self) -> None:
        gaplic = self._gaplic_or_fail()
        for name in self.config.exported:
            if name in self._exported:
                continue
            if gaplic.find_unique_gobj(name) is None:
                (self.logger or _LOG).error(
                    "%r: exported gobj %r: no unique gobj of that name", self, name
                )
                continue
            self.export_gobj(name)

    # ------------------------------------------------------------------------------------
    #   Remote subscriptions
    # ------------------------------------------------------------------------------------
    def mt_subscribe_event_outside(
        self, gaplic_name: str, role: str, gobj_name: str, event_name: str | None, subscriber: Any
    ) -> bool:
        gaplic = self._gaplic_or_fail()
        what = f"subscribe_event_outside({event_name!r})"
        if gaplic._loop_thread != threading.get_ident() and gaplic._loop_thread is not None:
            raise RuntimeError(_FOREIGN_THREAD.format(what=what))
        if not gaplic_name:
            raise RemoteError(
                f"{what}: needs the GAplic name: broadcasts are published per GAplic, "
                f"not per role ({role!r})"
            )
        subscriber = _check_outside_args(
            gaplic, what, gaplic_name, role, gobj_name, event_name or "", subscriber, None, True
        )
        peers = self.config.peers
        if peers and gaplic_name not in peers:
            raise RemoteError(f"{what}: {gaplic_name!r} is not one of this GAplic's peers {peers}")
        key = (gaplic_name, gobj_name, event_name or "", subscriber)
        if key in self._outside:
            return True
        self._outside[key] = None
        nc = self._nc
        if nc is not None and not nc.is_closed and self._ever_connected:
            self._outside[key] = _run_now(self, self._subscribe_outside(key))
        return True

    async def _subscribe_outside(self, key: tuple[str, str, str, str]) -> NatsSubscription:
        nc = self._nc
        assert nc is not None
        gaplic_name, gobj_name, event_name, subscriber = key
        subject = self._subjects_or_fail().broadcasts(gaplic_name, gobj_name, event_name)

        async def deliver(msg: Msg) -> None:
            self._on_broadcast(msg, subscriber)

        return await nc.subscribe(
            subject, cb=deliver, pending_msgs_limit=self.config.max_pending_events
        )

    def mt_unsubscribe_event_outside(
        self, gaplic_name: str, role: str, gobj_name: str, event_name: str | None, subscriber: Any
    ) -> bool:
        if isinstance(subscriber, GObj):
            subscriber = subscriber.name
        key = (gaplic_name, gobj_name, event_name or "", subscriber)
        if key not in self._outside:
            return False
        sub = self._outside.pop(key)
        if sub is not None:
            nc = self._nc
            if nc is not None and not nc.is_closed:
                _run_now(self, sub.unsubscribe())
        return True

    # ------------------------------------------------------------------------------------
    #   Receiving
    # ------------------------------------------------------------------------------------
    async def _on_event(self, msg: Msg) -> None:
        subjects = self._subjects_or_fail()
        # Subjects repeat (one per sender, gobj and event): parsed once each.
        parsed = self._parsed.get(msg.subject)
        if parsed is None:
            parsed = subjects.parse_event(msg.subject)
            if parsed is None:
                self._refuse(msg, "bad_subject", "not an event subject")
                return
            if len(self._parsed) >= _MAX_ROUTES:
                self._parsed.clear()
            self._parsed[msg.subject] = parsed
        try:
            kw, src_gobj, src_role = _decode(msg.data)
        except ValueError as exc:
            self._refuse(msg, "bad_payload", f"{parsed.event}: {exc}")
            return
        self.received += 1
        gaplic = self._gaplic_or_fail()
        gobj = gaplic.find_unique_gobj(parsed.gobj)
        if gobj is None:
            self._refuse(
                msg, "gobj_not_found", f"GAplic {subjects.me!r} has no gobj {parsed.gobj!r}"
            )
            return
        intra = IntraEvent(
            parsed.src_gaplic,
            src_role,
            src_gobj,
            subjects.me,
            parsed.target if parsed.kind in ("role", "all") else "",
            parsed.gobj,
            parsed.event,
            msg.subject,
        )
        if self.config.trace_remote or (_smachine._trace_any and self.trace_mach):
            self._trace("rx", msg.subject, parsed.event, kw)
        try:
            ret = self.send_event(gobj, parsed.event, __intra_event__=intra, **kw)
        except EventNotAcceptedError:
            ret = EventNotAcceptedError
        except Exception as exc:
            gaplic.handle_exception(exc, f"{gobj!r}, remote event {parsed.event}")
            self._refuse(msg, "action_failed", f"{parsed.event}: {exc!r}")
            return
        if ret is EventNotAcceptedError:
            self._refuse(
                msg,
                "event_refused",
                f"{parsed.gobj} does not accept {parsed.event} in state {gobj.get_current_state()}",
            )
            return
        if msg.reply:
            try:
                payload = _encode(
                    "__action_return__", {"__action_return__": ret, "__gaplic__": subjects.me}
                )
            except TypeError as exc:
                self._refuse(msg, "return_not_json", f"{parsed.event}: {exc}")
                return
            await self._reply(msg.reply, payload)

    async def _reply(self, reply: str, payload: bytes) -> None:
        nc = self._nc
        if nc is None or not nc.is_connected:
            return  # the requester will time out, as it would if the answer was lost
        try:
            await nc.publish(reply, payload)
        except Exception as exc:
            self._report_error("nats", f"cannot answer on {reply}: {exc!r}")

    def _refuse(self, msg: Msg, reason: str, message: str) -> None:
        if msg.reply:
            payload = json.dumps(
                {
                    "__error__": reason,
                    "__message__": message,
                    "__gaplic__": self._subjects_or_fail().me,
                }
            ).encode()
            self._spawn(self._reply(msg.reply, payload))
            if self.config.trace_remote or (_smachine._trace_any and self.trace_mach):
                self._trace("refused", msg.subject, reason, {"message": message})
            return
        self._report_error(reason, message, msg.subject)

    def _report_error(self, reason: str, message: str, subject: str = "") -> None:
        (self.logger or _LOG).warning("%r: %s: %s %s", self, reason, message, subject)
        self.send_event(self, "EV_NATS_ERROR", reason=reason, message=message, subject=subject)

    async def _on_reply(self, msg: Msg) -> None:
        token = msg.subject.rpartition(".")[2]
        request = self._forget_request(token)
        if request is None:
            self.late_replies += 1
            (self.logger or _LOG).info(
                "%r: late or unknown answer on %s dropped", self, msg.subject
            )
            return
        headers = msg.headers or {}
        if headers.get("Status") == "503":
            self._deliver_outcome(
                request, None, "no_responders", f"nobody listens on {request.intra.subject}"
            )
            return
        try:
            answer = json.loads(msg.data)
            if not isinstance(answer, dict):
                raise ValueError("not a JSON object")
        except (ValueError, RecursionError) as exc:
            self._deliver_outcome(request, None, "bad_payload", f"bad answer: {exc}")
            return
        # Who answered: for a role, the member that handled it (informational).
        responder = answer.get("__gaplic__")
        if not request.intra.origin_gaplic and isinstance(responder, str):
            request.intra.origin_gaplic = responder
        error = answer.get("__error__")
        if error is not None:
            self._deliver_outcome(request, None, str(error), str(answer.get("__message__", "")))
            return
        self._deliver_outcome(request, answer.get("__action_return__"), None)

    def _on_broadcast(self, msg: Msg, subscriber_name: str) -> None:
        subjects = self._subjects_or_fail()
        parsed = subjects.parse_broadcast(msg.subject)
        if parsed is None:
            return
        gaplic_name, gobj_name, event_name = parsed
        try:
            kw, _, _ = _decode(msg.data)
        except ValueError as exc:
            self._report_error("bad_payload", f"{event_name}: {exc}", msg.subject)
            return
        subscriber = self._gaplic_or_fail().find_unique_gobj(subscriber_name)
        if subscriber is None:
            return
        self.received += 1
        intra = IntraEvent(
            gaplic_name, "", gobj_name, subjects.me, "", subscriber_name, event_name, msg.subject
        )
        if self.config.trace_remote or (_smachine._trace_any and self.trace_mach):
            self._trace("rx", msg.subject, event_name, kw)
        try:
            self.send_event(subscriber, event_name, __intra_event__=intra, **kw)
        except Exception as exc:
            self._gaplic_or_fail().handle_exception(exc, f"{subscriber!r}, remote {event_name}")

    def _trace(self, phase: str, subject: str, event_name: str, kw: dict[str, Any]) -> None:
        (self.logger or _LOG).info(
            "remote %s: %s ev: %s %r",
            phase,
            subject,
            event_name,
            kw,
            extra={
                "fsm_phase": f"remote-{phase}",
                "fsm_gclass": type(self).__name__,
                "fsm_gobj": str(self),
                "fsm_event": event_name,
                "fsm_subject": subject,
            },
        )
