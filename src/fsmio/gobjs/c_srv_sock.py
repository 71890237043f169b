"""``GServerSock``: a TCP (or TLS) listener whose connections are child GSocks.

The listening socket is made, bound and put to listen *synchronously* in ``start_up``, so
a port in use (or a bad host) fails at ``create_gobj`` with an ``OSError`` that names the
address; the bound port is then in ``config.port`` (port 0 picks a free one) and in
``get_sockname()``.  Accepting starts when the GAplic's loop runs
(``loop.create_server(sock=...)``).

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

Running out of descriptors (EMFILE/ENFILE) on accept: the loop stops accepting for a while
and retries (asyncio: 1 s; uvloop/libuv sheds the waiting peer with its reserve-fd
trick), so there is no busy loop.  TLS: a connection whose handshake fails never reaches
the subscriber; its child is destroyed once ``ssl_handshake_timeout`` has passed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Final

from fsmio.core.event import Event
from fsmio.core.gconfig import add_gconfig
from fsmio.core.gobj import GObj
from fsmio.gobjs.c_sock import GSOCK_GCONFIG, GSock, socket_map_of
from fsmio.gobjs.tls import make_ssl_context

__all__ = ["GSERVERSOCK_FSM", "GSERVERSOCK_GCONFIG", "GServerSock"]

_LOG = logging.getLogger("fsmio")


# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
def _backlog(value: Any) -> Any:
    number = int(value)
    if number <= 0:
        raise ValueError(f"{value!r} is not > 0")
    return number


GSERVERSOCK_GCONFIG: Final[dict[str, list[Any]]] = add_gconfig(
    GSOCK_GCONFIG,
    {
        "backlog": [int, 1024, 0, _backlog, "listen() backlog."],
        "reuse_address": [bool, True, 0, None, "SO_REUSEADDR."],
        "reuse_port": [bool, False, 0, None, "SO_REUSEPORT."],
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
class _Refuse(asyncio.Protocol):
    """Given to asyncio when a child could not be made: close the connection at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()  # type: ignore[attr-defined]


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
        self._aio_server: asyncio.AbstractServer | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._ssl_ctx: Any = None
        self._child_subscriber: Any = None
        self._child_kw: dict[str, Any] = {}
        self._seq = 0
        self._live: dict[GSock, None] = {}
        self._released: set[GSock] = set()
        self._reapers: dict[GSock, Any] = {}
        self._sockname: Any = None

    # ------------------------------------------------------------------------------------
    #   Life cycle
    # ------------------------------------------------------------------------------------
    def start_up(self) -> None:
        """Check TLS options, bind and listen (errors raise here), schedule serving."""
        if self.gaplic is None:
            raise RuntimeError(f"{self!r}: a GServerSock needs a GAplic")
        self._ssl_ctx = make_ssl_context(self.config.ssl_options, True, repr(self))
        self._child_subscriber = self.config.subscriber or self.parent
        self._child_kw = {name: self.read_parameter(name) for name in _CHILD_PARAMS}
        self._socket_map = socket_map_of(self.gaplic)
        self._sock = self._listen()
        self._fd = self._sock.fileno()
        self._socket_map[self._fd] = self
        self._sockname = self._sock.getsockname()
        self.write_parameters(port=self._sockname[1])
        self.gaplic.add_callback(self._start_serving)

    def go_out(self) -> None:
        self.stop_listening()
        for handle in self._reapers.values():
            handle.cancel()
        self._reapers.clear()

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
        task = self._serve_task
        self._serve_task = None
        if task is not None and not task.done():
            task.cancel()
        server = self._aio_server
        self._aio_server = None
        if server is not None:
            server.close()
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
        return self._sock is not None or self._aio_server is not None

    def release_gsock(self, gsock: GSock) -> None:
        """The subscriber takes ``gsock`` over: the server will not destroy it after its
        EV_DISCONNECTED (the taker calls ``destroy_gobj`` when done with it)."""
        self._released.add(gsock)

    def get_gsocks(self) -> list[GSock]:
        """The live connections."""
        return list(self._live)

    # ------------------------------------------------------------------------------------
    #   Internals
    # ------------------------------------------------------------------------------------
    def _candidates(self) -> list[int]:
        config = self.config
        if config.use_multi_ports and config.ports:
            return list(config.ports)
        return [config.port]

    def _listen(self) -> socket.socket:
        config = self.config
        host = config.host
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

    def _start_serving(self) -> None:
        if self._destroyed or self._sock is None:
            return
        loop = self.gaplic.loop
        self._serve_task = loop.create_task(self._serve(self._sock))

    async def _serve(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        kw: dict[str, Any] = {}
        if self._ssl_ctx is not None:
            kw["ssl"] = self._ssl_ctx
            kw["ssl_handshake_timeout"] = self.config.ssl_handshake_timeout
            kw["ssl_shutdown_timeout"] = self.config.ssl_shutdown_timeout
        try:
            server = await loop.create_server(
                self._protocol_factory, sock=sock, backlog=self.config.backlog, **kw
            )
        except Exception as exc:
            self.gaplic.handle_exception(exc, f"{self!r}: create_server")
            return
        # The socket now belongs to the asyncio server (it closes it).
        self._sock = None
        if self._serve_task is None or self._destroyed:
            server.close()
            return
        self._aio_server = server
        self._serve_task = None

    def _protocol_factory(self) -> asyncio.Protocol:
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
            child._prepare_accepted(self)
        except Exception as exc:
            self.gaplic.handle_exception(exc, f"{self!r}: creating a connection gobj")
            return _Refuse()
        if self._ssl_ctx is not None:
            # A failed handshake never calls connection_made nor connection_lost.
            self._reapers[child] = self.gaplic.call_later(
                self.config.ssl_handshake_timeout + 1.0, self._reap, child
            )
        return child

    def _child_destroyed(self, child: GSock) -> None:
        self._released.discard(child)
        handle = self._reapers.pop(child, None)
        if handle is not None:
            handle.cancel()
        if child in self._live:
            del self._live[child]
            self.write_parameters(n_gsocks=len(self._live))

    def _reap(self, child: GSock) -> None:
        self._reapers.pop(child, None)
        if (
            not child._destroyed
            and child._transport is None
            and child.parent is self
            and child.get_current_state() == "ST_WAIT_CONNECTED"
        ):
            GObj.destroy_gobj(child)

    def _child_connected(self, child: GSock) -> None:
        handle = self._reapers.pop(child, None)
        if handle is not None:
            handle.cancel()
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
