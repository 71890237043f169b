"""``GServerSock``: a TCP (or TLS) listener whose connections are child GSocks.

The listening socket is made, bound and put to listen *synchronously* in ``start_up``, so
a port in use (or a bad host) fails at ``create_gobj`` with an ``OSError`` that names the
address; the bound port is then in ``config.port`` (port 0 picks a free one) and in
``get_sockname()``.  Accepting starts when the GAplic's loop runs
(its own accept loop on ``loop.add_reader``: asyncio 3.11 floods the log on EMFILE and
uvloop closes the server, so neither one's ``create_server`` is used).

Each accepted connection becomes a child GSock named ``clisrv_<hex n>`` whose parent is
the server and whose subscriber is the server's subscriber (None: the server's parent):
that subscriber gets ``EV_CONNECTED``, ``EV_RX_DATA``, ``EV_TRANSMIT_READY`` and
``EV_DISCONNECTED`` of every connection (``gsock`` tells which).  After its
``EV_DISCONNECTED`` the child is destroyed by the server (through its queue, so the
subscriber's action runs first) — unless the subscriber took it over with
``server.release_gsock(gsock)``; then destroying it is the taker's job.

Configuration: every GSock parameter (the child GSocks inherit ``send_bytes``,
``outbuf_overflow``, ``tx_buffer_size``, ``close_when_flushed``, ``trace_dump``, the
``*_event_name``, ``drop_timeout``, ``outbuf_high_water``/``low_water``/``max`` and
``spill_dir``), plus:

==================  =====  =======  =========================================================
name                type   default  description
==================  =====  =======  =========================================================
host                str    ''       Address to listen on: '' = all interfaces (IPv6 and IPv4
                                    on one dual-stack socket where possible), an IPv4 or IPv6
                                    address, or a name (resolved once, at start_up).
port                int    0        Port; 0 = a free one; written with the bound port.
ports               tuple  ()       With ``use_multi_ports``: listen on the first of these
                                    that is free (``port`` is written with it).
ssl_options         dict   {}       TLS server side (``certfile`` required; see tls.py).
n_gsocks            int    0        Written: live connections (after EV_CONNECTED, before
                                    EV_DISCONNECTED).
backlog             int    1024     listen() backlog (asyncio also accepts up to this many
                                    connections per readiness event).
reuse_address       bool   True     SO_REUSEADDR.
reuse_port          bool   False    SO_REUSEPORT (several processes on one port).
==================  =====  =======  =========================================================

Input events:

* ``EV_DROP`` — stop listening (connections already accepted go on).
* ``EV_DESTROY_GSOCK`` (bottom) — ``gsock``: destroy a disconnected child.

No output events of its own: the children's events go straight to the subscriber.

Theory of operation
-------------------
The server runs its own accept loop (``loop.add_reader`` on the listening socket), not
``loop.create_server``: on EMFILE, asyncio 3.11 keeps looping and logs a traceback per
try (measured: 56 000 log lines in 2 s) and uvloop closes the listener.  Each readiness
event accepts up to ``backlog`` connections.  Errors about one peer (ECONNABORTED,
EPROTO, EPERM, ECONNRESET, ETIMEDOUT) are skipped; running out of descriptors or memory
(EMFILE, ENFILE, ENOBUFS, ENOMEM) — or any other accept error — removes the reader and
tries again after ``accept_retry_delay``: no busy loop, one log line when it starts (then
at most one every 10 s) and one when accepting works again.

An accepted socket is given to ``loop.connect_accepted_socket`` (with the TLS context,
``ssl_handshake_timeout`` and ``ssl_shutdown_timeout`` when ``ssl_options`` is set) in a
task; the child GSock gets ``connection_made`` — and its subscriber ``EV_CONNECTED`` —
when that finishes (for TLS, after the handshake).  A connection that fails there (a
plaintext client on a TLS port, a handshake cut or timed out, a peer that reset at once)
is logged in one INFO line and its child destroyed: the subscriber never hears of it.

Memory per connection (issue #4): the server keeps a child in its ``_live`` dict while it
is connected (``get_gsocks()``, ``n_gsocks``) and in ``_attaching`` only while
``connect_accepted_socket`` runs; ``_attaching`` is replaced by a fresh dict whenever it
empties, since a dict never gives back the table a burst of accepts made it grow to.

Differences from ginsfsm: the GServerSock is not a GSock subclass (it has the GSock
configuration, plus its own); ``host`` '' listens on IPv6 and IPv4; the bound port is
written to ``config.port``; the server learns of a child's disconnection directly (not
through a hard subscription to its renamable EV_DISCONNECTED), and a subscriber takes a
connection over with ``release_gsock`` instead of re-subscribing; EV_CONNECTED comes from
the loop, not synchronously inside accept.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import socket
from typing import TYPE_CHECKING, Any, Final

from fsmio.core.event import Event
from fsmio.core.gconfig import add_gconfig, positive_int, positive_number
from fsmio.core.gobj import GObj
from fsmio.gobjs.c_sock import GSOCK_GCONFIG, GSock, socket_map_of
from fsmio.gobjs.tls import make_ssl_context

if TYPE_CHECKING:
    from fsmio.aplic.gaplic import TimerHandle

__all__ = ["GSERVERSOCK_FSM", "GSERVERSOCK_GCONFIG", "GServerSock"]

_LOG = logging.getLogger("fsmio")


# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
GSERVERSOCK_GCONFIG: Final[dict[str, list[Any]]] = add_gconfig(
    GSOCK_GCONFIG,
    {
        "backlog": [int, 1024, 0, positive_int, "listen() backlog."],
        "reuse_address": [bool, True, 0, None, "SO_REUSEADDR."],
        "reuse_port": [bool, False, 0, None, "SO_REUSEPORT."],
        "accept_retry_delay": [
            float,
            0.25,
            0,
            positive_number,
            "Out of descriptors on accept: retry after this many seconds.",
        ],
    },
)

# GSock parameters the children inherit from their server.
_CHILD_PARAMS: Final = (
    "send_bytes",
    "outbuf_overflow",
    "tx_buffer_size",
    "close_when_flushed",
    "trace_dump",
    "connected_event_name",
    "disconnected_event_name",
    "rx_data_event_name",
    "transmit_ready_event_name",
    "drop_timeout",
    "outbuf_high_water",
    "outbuf_low_water",
    "outbuf_max",
    "spill_dir",
)


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_stop_listening(self: GServerSock, event: Event) -> None:
    self.stop_listening()


def ac_destroy_gsock(self: GServerSock, event: Event) -> None:
    gsock = event.kw.get("gsock")
    if isinstance(gsock, GSock) and not gsock._destroyed and gsock.parent is self:
        GObj.destroy_gobj(gsock)


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
GSERVERSOCK_FSM: Final[dict[str, Any]] = {
    "event_list": (
        "EV_DROP: top input",
        "EV_DESTROY_GSOCK: bottom input",
    ),
    "state_list": ("ST_LISTENING", "ST_STOPPED"),
    "machine": {
        "ST_LISTENING": (
            ("EV_DROP", ac_stop_listening, "ST_STOPPED"),
            ("EV_DESTROY_GSOCK", ac_destroy_gsock, None),
        ),
        "ST_STOPPED": (("EV_DESTROY_GSOCK", ac_destroy_gsock, None),),
    },
}


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
# Accept errors that mean "out of resources": stop accepting for accept_retry_delay.
_RESOURCE_ERRNOS: Final = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
# Accept errors about one peer (it went away, a firewall said no): take the next one.
_PEER_ERRNOS: Final = frozenset(
    (errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ECONNRESET, errno.ETIMEDOUT)
)
# While accept keeps failing for lack of resources, log at most once per this many seconds.
_RESOURCE_LOG_INTERVAL: Final = 10.0


class _Attach:
    """An accepted socket being attached to its child GSock (a task)."""

    __slots__ = ("conn", "started", "task")

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.started = False
        self.task: asyncio.Task[None] | None = None


class GServerSock(GObj):
    """A listening socket; accepted connections are child GSocks (see the module doc)."""

    _socket_map: dict[int, GObj]
    trace_dump: bool
    addr: Any
    _impl_poll: Any

    def __init__(self) -> None:
        GObj.__init__(self, GSERVERSOCK_FSM, GSERVERSOCK_GCONFIG)
        self._sock: socket.socket | None = None
        self._fd = -1
        self._reader_loop: asyncio.AbstractEventLoop | None = None
        self._retry: TimerHandle | None = None
        self._resource_errors = 0
        self._resource_logged_at = -math.inf
        self._ssl_ctx: Any = None
        self._child_subscriber: Any = None
        self._child_kw: dict[str, Any] = {}
        self._seq = 0
        self._live: dict[GSock, None] = {}
        self._released: set[GSock] = set()
        self._attaching: dict[GSock, _Attach] = {}
        self._sockname: Any = None
        self.accept_wakeups = 0  # stats: readiness events handled (tests check no spin)

    # ------------------------------------------------------------------------------------
    #   Life cycle
    # ------------------------------------------------------------------------------------
    def start_up(self) -> None:
        """Check TLS options, bind and listen (errors raise here), schedule accepting."""
        if self.gaplic is None:
            raise RuntimeError(f"{self!r}: a GServerSock needs a GAplic")
        self._ssl_ctx = make_ssl_context(self.config.ssl_options, True, repr(self))
        self._child_subscriber = self.config.subscriber or self.parent
        # Only what differs from GSock's defaults: a child's config stores what is written.
        self._child_kw = {
            name: value
            for name in _CHILD_PARAMS
            if (value := self.read_parameter(name)) != GSOCK_GCONFIG[name][1]
        }
        self._socket_map = socket_map_of(self.gaplic)
        self._sock = self._listen()
        self._fd = self._sock.fileno()
        self._socket_map[self._fd] = self
        self._sockname = self._sock.getsockname()
        self.write_parameters(port=self._sockname[1])
        self.gaplic.add_callback(self._start_accepting)

    def go_out(self) -> None:
        self.stop_listening()
        for attach in list(self._attaching.values()):
            self._cancel_attach(attach)
        self._attaching.clear()

    # ------------------------------------------------------------------------------------
    #   Public methods
    # ------------------------------------------------------------------------------------
    def get_sockname(self) -> Any:
        """The address listened on (the bound port is the second item)."""
        return self._sockname

    def get_peername(self) -> Any:
        """A listener has no peer: None."""
        return None

    def stop_listening(self) -> None:
        """Close the listening socket (idempotent); accepted connections go on."""
        if self._state == "ST_LISTENING":
            self.set_new_state("ST_STOPPED")
        self._stop_reading()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        sock = self._sock
        self._sock = None
        if sock is not None:
            sock.close()
        if self._fd >= 0:
            if self._socket_map.get(self._fd) is self:
                del self._socket_map[self._fd]
            self._fd = -1

    def is_listening(self) -> bool:
        """Whether the listening socket is open."""
        return self._sock is not None

    def release_gsock(self, gsock: GSock) -> None:
        """The subscriber takes ``gsock`` over: the server will not destroy it after its
        EV_DISCONNECTED (the taker calls ``destroy_gobj`` when done with it)."""
        self._released.add(gsock)

    def get_gsocks(self) -> list[GSock]:
        """The live connections."""
        return list(self._live)

    # ------------------------------------------------------------------------------------
    #   Listening
    # ------------------------------------------------------------------------------------
    def _candidates(self) -> list[int]:
        config = self.config
        if config.use_multi_ports and config.ports:
            return list(config.ports)
        return [config.port]

    def _listen(self) -> socket.socket:
        host = self.config.host
        errors: list[str] = []
        last: OSError | None = None
        for port in self._candidates():
            try:
                return self._bind(host, port)
            except OSError as exc:
                last = exc
                errors.append(f"{host or '*'}:{port}: {exc.strerror or exc}")
        assert last is not None
        raise OSError(last.errno, f"{self!r}: cannot listen on {', '.join(errors)}") from last

    def _bind(self, host: str, port: int) -> socket.socket:
        config = self.config
        address: Any
        if not host:
            if socket.has_dualstack_ipv6():
                family, address, dual = socket.AF_INET6, ("::", port), True
            else:  # pragma: no cover - depends on the machine
                family, address, dual = socket.AF_INET, ("0.0.0.0", port), False
        else:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            family, _, _, _, sockaddr = infos[0]
            address = sockaddr[:2] if family == socket.AF_INET else sockaddr
            dual = False
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if config.reuse_address:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if config.reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual else 1)
            sock.bind(address)
            sock.listen(config.backlog)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    # ------------------------------------------------------------------------------------
    #   Accepting
    # ------------------------------------------------------------------------------------
    def _start_accepting(self) -> None:
        self._retry = None
        sock = self._sock
        if self._destroyed or sock is None or self._reader_loop is not None:
            return
        loop = self.gaplic.loop
        loop.add_reader(sock.fileno(), self._on_acceptable)
        self._reader_loop = loop

    def _stop_reading(self) -> None:
        loop = self._reader_loop
        self._reader_loop = None
        if loop is not None and self._sock is not None and not loop.is_closed():
            loop.remove_reader(self._sock.fileno())

    def _on_acceptable(self) -> None:
        self.accept_wakeups += 1
        sock = self._sock
        if sock is None:
            return
        for _ in range(self.config.backlog):
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno in _PEER_ERRNOS:
                    continue
                self._accept_backoff(exc)
                return
            if self._resource_errors:
                (self.logger or _LOG).info(
                    "%r: accepting again (%d retries while out of resources)",
                    self,
                    self._resource_errors,
                )
                self._resource_errors = 0
                self._resource_logged_at = -math.inf
            self._accepted(conn, addr)

    def _accept_backoff(self, exc: OSError) -> None:
        """Out of descriptors (or another accept error): stop accepting for a while."""
        self._resource_errors += 1
        now = self.gaplic.time()
        if now - self._resource_logged_at >= _RESOURCE_LOG_INTERVAL:
            self._resource_logged_at = now
            level = logging.WARNING if exc.errno in _RESOURCE_ERRNOS else logging.ERROR
            (self.logger or _LOG).log(
                level,
                "%r: accept() failed: %s; retrying every %.2f s",
                self,
                exc,
                self.config.accept_retry_delay,
            )
        self._stop_reading()
        if self._retry is None:
            self._retry = self.gaplic.call_later(
                self.config.accept_retry_delay, self._start_accepting
            )

    def _accepted(self, conn: socket.socket, addr: Any) -> None:
        conn.setblocking(False)
        n = self._seq
        self._seq += 1
        try:
            child: GSock = self.create_gobj(
                f"clisrv_{n:x}",
                GSock,
                self,
                subscriber=self._child_subscriber,
                **self._child_kw,
            )
            child._prepare_accepted(self, conn, addr)
        except Exception as exc:
            conn.close()
            self.gaplic.handle_exception(exc, f"{self!r}: creating a connection gobj")
            return
        attach = _Attach(conn)
        self._attaching[child] = attach
        attach.task = self.gaplic.loop.create_task(self._attach(child, attach))

    async def _attach(self, child: GSock, attach: _Attach) -> None:
        attach.started = True
        loop = asyncio.get_running_loop()
        kw: dict[str, Any] = {}
        if self._ssl_ctx is not None:
            kw["ssl"] = self._ssl_ctx
            kw["ssl_handshake_timeout"] = self.config.ssl_handshake_timeout
            kw["ssl_shutdown_timeout"] = self.config.ssl_shutdown_timeout
        try:
            await loop.connect_accepted_socket(lambda: child, attach.conn, **kw)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A failed TLS handshake, or the peer gone already: one line, no traceback.
            (self.logger or _LOG).info("%r: connection not set up: %r", self, exc)
            if not child._destroyed and child._transport is None:
                GObj.destroy_gobj(child)
        finally:
            self._forget_attach(child, attach)

    def _forget_attach(self, child: GSock, attach: _Attach | None = None) -> _Attach | None:
        """Remove ``child``'s entry (only if it is ``attach``, when given); return it."""
        attaching = self._attaching
        found = attaching.get(child)
        if found is None or (attach is not None and found is not attach):
            return None
        del attaching[child]
        if not attaching:
            # A dict keeps its table at its largest: after a burst of accepts, ten thousand
            # idle connections would each keep paying for a slot of it.
            self._attaching = {}
        return found

    def _shutdown_attaching(self) -> list[asyncio.Task[None]]:
        """The GAplic stops: destroy the children still being set up (their subscriber
        never heard of them); return their tasks, to be waited for."""
        tasks = [a.task for a in self._attaching.values() if a.task is not None]
        for child in list(self._attaching):
            if child._transport is None:  # connected ones are closed like the others
                GObj.destroy_gobj(child)
        return tasks

    def _cancel_attach(self, attach: _Attach) -> None:
        task = attach.task
        if task is not None and not task.done():
            task.cancel()
        if not attach.started:
            # The task never ran: the socket is still ours.
            attach.conn.close()

    # ------------------------------------------------------------------------------------
    #   Children
    # ------------------------------------------------------------------------------------
    def _child_connected(self, child: GSock) -> None:
        self._live[child] = None
        self.write_parameters(n_gsocks=len(self._live))

    def _child_disconnected(self, child: GSock) -> None:
        if child in self._live:
            del self._live[child]
            self.write_parameters(n_gsocks=len(self._live))
        if child in self._released:
            self._released.discard(child)
            return
        if not self._destroyed:
            self.post_event(self, "EV_DESTROY_GSOCK", gsock=child)

    def _child_destroyed(self, child: GSock) -> None:
        self._released.discard(child)
        attach = self._forget_attach(child)
        if attach is not None:
            self._cancel_attach(attach)
        if child in self._live:
            del self._live[child]
            self.write_parameters(n_gsocks=len(self._live))
