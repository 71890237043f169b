"""``GInspector``: watch the running GAplic in a browser (the live inspector).

It owns a ``GHttpServer`` that serves one page (``static/index.html`` and its files,
inside the package: no CDN, no build step), each gclass's card diagram
(``/diagram/<gclass_key>.svg``) and a WebSocket feed (``/feed``): the gobj tree growing
and shrinking, every gobj's current state, the event stream (filtered in this process),
counters once a second, the retained history, and — with a token — sending an input
event to a gobj or toggling its ``trace_mach``.  The wire contract is in
``docs/inspector.md``.

Once listening it logs (INFO, logger ``fsmio.inspector``) exactly one line::

    inspector listening on http://HOST:PORT/

(the port is the bound one, so ``port = 0`` can be read back from the log or from
``inspector.url``).

Configuration:

============  =====  ===========  ==========================================================
name          type   default      description
============  =====  ===========  ==========================================================
host          str    127.0.0.1    Address to listen on.  Not a loopback address: refused
                                  without a ``token`` (and logged as a warning with one).
port          int    8765         Port; 0 = a free one (written back once listening).
token         str    None         Unlocks control (send_event, trace) for a page that
                                  sends it (``#token=...`` in the page URL); None:
                                  read-only.  Compared in constant time.
history_size  int    10000        Events retained (the ring buffer) while viewed.
rate          int    10           Most feed flushes per second (each viewer gets at most
                                  one message of each kind per flush).
max_batch     int    1000         Most events in one ``events`` message; older ones of
                                  the flush are dropped and counted.
max_viewers   int    8            More feeds at once are refused (503).
replay        None   None         A ``fsmio.inspector.replay.Replay``: serve it (mode
                                  ``replay``) instead of watching this GAplic.
n_viewers     int    0            Written: the feeds open now.
============  =====  ===========  ==========================================================

Input events (bottom, from its GHttpServer, GWebSockets and GTimers):
``EV_HTTP_CHANNEL_OPENED``, ``EV_HTTP_REQUEST``, ``EV_HTTP_CHANNEL_CLOSED``,
``EV_ON_OPEN``, ``EV_ON_MESSAGE``, ``EV_ON_CLOSE``, ``EV_TRANSMIT_READY``, ``EV_FLUSH``
(the flush timer), ``EV_TICK`` (the one-second timer).  No output events.

Theory of operation
-------------------
*Nothing while nobody watches.*  The dispatch and lifecycle observers of the core
(``add_dispatch_observer``, ``add_lifecycle_observer``) are installed when the first
feed opens and removed when the last one closes; the two GTimers run only then too.
Without a viewer the program pays the core's one flag test per dispatch, nothing more.

*While watched.*  On the first viewer the tree is snapshotted by walking the GAplic's
gobjs; from then on the lifecycle observer keeps it (ids are small ints, never reused in
the process).  The dispatch observer appends one tuple per event to the ring buffer
(``fsmio.inspector.feed``) and notes the destination's state after the action; JSON is
built only at flush time, ``rate`` times a second.  Each viewer is a cursor into the
ring: a viewer whose WebSocket is backed up (``ws.write_paused``) is skipped at that
flush and later told how many events it lost (``dropped``), and gets a full ``tree``
again if it missed tree changes; its memory is O(1), and what the GSock holds for it is
at most one flush beyond its transport's high-water mark.  The inspector's own gobjs
(its HTTP server, channels, WebSockets, timers) are not shown and their events are not
recorded: watching would otherwise watch itself.

*Security.*  Binds 127.0.0.1 by default; a non-loopback ``host`` needs a ``token``.
Requests whose ``Host`` is not this server (DNS rebinding) get 403 on a loopback bind;
the feed's upgrade is refused (403) when its ``Origin`` is not this server's page.  Every
message from a page is checked (``feed.parse_message``): a bad one gets an ``error``
message naming what was wrong, ten in a row close the feed (1008); over 64 KiB closes
it (1009).  Control needs the token (``auth``): ``send_event`` only posts an input event
the target's FSM declares, with JSON keyword values; ``trace`` sets ``trace_mach`` only.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from importlib import resources
from typing import Any, Final
from urllib.parse import urlsplit

from fsmio.core.event import Event
from fsmio.core.gconfig import port_number, positive_int
from fsmio.core.gobj import (
    GObj,
    add_lifecycle_observer,
    lineage,
    remove_lifecycle_observer,
)
from fsmio.core.smachine import add_dispatch_observer, remove_dispatch_observer
from fsmio.gobjs.c_sock import GSock
from fsmio.gobjs.c_timer import GTimer
from fsmio.protocols.http.c_http_server import GHttpServer

from .diagram import card_svg, model_from_compiled
from .feed import (
    MAX_MESSAGE,
    PROTOCOL_VERSION,
    EventFilter,
    EvTuple,
    FeedError,
    RingBuffer,
    ViewerCursor,
    dumps,
    ev_dict,
    parse_message,
    short_repr,
)
from .replay import Replay, find_gclass, gclass_key

__all__ = ["GINSPECTOR_FSM", "GINSPECTOR_GCONFIG", "GInspector", "is_loopback"]

_new_ev = tuple.__new__

_LOG = logging.getLogger("fsmio.inspector")

#: Bad messages in a row before a feed is closed (1008).
MAX_BAD_MESSAGES: Final = 10
#: Parameter names whose values the detail view does not show.
_SECRET_WORDS: Final = ("token", "password", "passwd", "secret", "passphrase", "seed", "cred")
#: Numeric attributes shown as a gobj's stats when it has them.
_STATS: Final = (
    "rxed_msgs",
    "rxed_bytes",
    "txed_msgs",
    "txed_bytes",
    "pending_output",
    "n_gsocks",
    "n_channels",
    "n_websockets",
    "connections",
    "attempts",
    "accept_wakeups",
    "queued_frames",
)
_CONTENT_TYPES: Final = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
    ".json": b"application/json",
    ".ico": b"image/x-icon",
}
_COMMON_HEADERS: Final = (
    (b"Cache-Control", b"no-store"),
    (b"X-Content-Type-Options", b"nosniff"),
    (
        b"Content-Security-Policy",
        (
            b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            b"connect-src 'self'"
        ),
    ),
    (b"Referrer-Policy", b"no-referrer"),
)


def _validate_host(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"host must be an address to listen on, not {value!r}")
    return value.strip()


# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
GINSPECTOR_GCONFIG: Final[dict[str, list[Any]]] = {
    "host": [str, "127.0.0.1", 0, _validate_host, "Address to listen on (loopback default)."],
    "port": [int, 8765, 0, port_number, "Port; 0 = a free one (written back)."],
    "token": [str, None, 0, None, "Unlocks control for a page that sends it; None: read-only."],
    "history_size": [int, 10000, 0, positive_int, "Events retained while viewed."],
    "rate": [int, 10, 0, positive_int, "Most feed flushes per second."],
    "max_batch": [int, 1000, 0, positive_int, "Most events in one events message."],
    "max_viewers": [int, 8, 0, positive_int, "More feeds at once are refused (503)."],
    "replay": [None, None, 0, None, "A Replay (fsmio inspect TRACE): serve it instead."],
    "n_viewers": [int, 0, 0, None, "Written: the feeds open now."],
}


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_ignore(self: GInspector, event: Event) -> None:
    return None


def ac_request(self: GInspector, event: Event) -> Any:
    return self._http_request(event.request, event.channel)


def ac_on_open(self: GInspector, event: Event) -> None:
    self._viewer_opened(event.ws)


def ac_on_message(self: GInspector, event: Event) -> None:
    viewer = self._viewers.get(event.ws)
    if viewer is not None:
        self._viewer_message(viewer, event.kw.get("data"))


def ac_on_close(self: GInspector, event: Event) -> None:
    self._viewer_closed(event.ws)


def ac_transmit_ready(self: GInspector, event: Event) -> None:
    # A backed-up feed has drained: the next flush sends to it again (the whole tree if
    # it missed changes, and the events its cursor has not lapped).
    viewer = self._viewers.get(event.kw.get("ws"))
    if viewer is not None:
        viewer.stalled = False


def ac_flush(self: GInspector, event: Event) -> None:
    self._flush()


def ac_tick(self: GInspector, event: Event) -> None:
    self._tick()


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
GINSPECTOR_FSM: Final[dict[str, Any]] = {
    "event_list": (
        "EV_HTTP_CHANNEL_OPENED: bottom input",
        "EV_HTTP_REQUEST: bottom input",
        "EV_HTTP_CHANNEL_CLOSED: bottom input",
        "EV_ON_OPEN: bottom input",
        "EV_ON_MESSAGE: bottom input",
        "EV_ON_CLOSE: bottom input",
        "EV_TRANSMIT_READY: bottom input",
        "EV_FLUSH: bottom input",
        "EV_TICK: bottom input",
    ),
    "state_list": ("ST_SERVING",),
    "machine": {
        "ST_SERVING": (
            ("EV_HTTP_CHANNEL_OPENED", ac_ignore, None),
            ("EV_HTTP_REQUEST", ac_request, None),
            ("EV_HTTP_CHANNEL_CLOSED", ac_ignore, None),
            ("EV_ON_OPEN", ac_on_open, None),
            ("EV_ON_MESSAGE", ac_on_message, None),
            ("EV_ON_CLOSE", ac_on_close, None),
            ("EV_TRANSMIT_READY", ac_transmit_ready, None),
            ("EV_FLUSH", ac_flush, None),
            ("EV_TICK", ac_tick, None),
        ),
    },
}


# ----------------------------------------------------------------------------------------
#   Helpers
# ----------------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only listens on this machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class _Node:
    """What the inspector knows of one watched gobj."""

    __slots__ = ("gclass", "gclass_key", "id", "name", "parent", "state", "unique")

    def __init__(
        self, ident: int, parent: int | None, gobj: GObj, unique: bool, state: str | None
    ) -> None:
        self.id = ident
        self.parent = parent
        cls = type(gobj)
        self.gclass = cls.__name__
        self.gclass_key = gclass_key(cls)
        self.name = gobj.name or f"<{self.gclass}#{ident}>"
        self.unique = unique
        self.state = state

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parent": self.parent,
            "name": self.name,
            "gclass": self.gclass,
            "gclass_key": self.gclass_key,
            "state": self.state,
            "unique": self.unique,
        }


class _Viewer:
    """One open feed."""

    __slots__ = ("authed", "bad", "cursor", "needs_tree", "selected", "stalled", "ws")

    def __init__(self, ws: Any, cursor: ViewerCursor) -> None:
        self.ws = ws
        self.cursor = cursor
        self.authed = False
        self.bad = 0
        self.selected: int | None = None
        self.needs_tree = False
        self.stalled = False


def _json_safe(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value if not isinstance(value, str) else value[:1000]
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if depth < 3 and isinstance(value, (list, tuple)) and len(value) <= 50:
        return [_json_safe(v, depth + 1) for v in value]
    if depth < 3 and isinstance(value, dict) and len(value) <= 50:
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    return short_repr(value)


def _secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
class GInspector(GObj):
    """The live inspector of its GAplic (see the module doc)."""

    def __init__(self) -> None:
        GObj.__init__(self, GINSPECTOR_FSM, GINSPECTOR_GCONFIG)
        self.server: GHttpServer | None = None
        self._flush_timer: GTimer | None = None
        self._tick_timer: GTimer | None = None
        self._viewers: dict[Any, _Viewer] = {}
        self._ring = RingBuffer(10000)
        self._nodes: dict[GObj, _Node] = {}
        self._by_id: dict[int, GObj] = {}
        self._next_id = 1
        self._added: dict[int, _Node] = {}
        self._removed: list[int] = []
        self._state_changes: dict[int, str | None] = {}
        self._tree_overflow = False
        self._diagrams: dict[str, bytes] = {}
        self._fsm_of: dict[str, Any] = {}
        self._static: dict[str, bytes] = {}
        self._watching = False
        self._retired_rx = 0
        self._retired_tx = 0
        self._last_total = 0
        self._last_tick = 0.0
        self._tick_due = 0.0
        self._loop_lag = 0.0
        self._allowed_hosts: frozenset[str] = frozenset()
        self.url = ""
        # One bound method object each: the core removes an observer by identity, and
        # every ``self._on_dispatch`` access makes a new bound method.
        self._dispatch_observer = self._on_dispatch
        self._lifecycle_observer = self._on_lifecycle

    # ------------------------------------------------------------------------------------
    #   Life cycle
    # ------------------------------------------------------------------------------------
    def start_up(self) -> None:
        config = self.config
        host = config.host
        loopback = is_loopback(host)
        if not loopback and not config.token:
            raise ValueError(
                f"GInspector: host {host!r} is not a loopback address: the inspector would "
                "show this program to the network; give it a token (--inspect-token, "
                "FSMIO_INSPECT_TOKEN or the token parameter), or bind 127.0.0.1"
            )
        replay = config.replay
        if replay is not None and not isinstance(replay, Replay):
            raise ValueError(f"GInspector: replay must be a Replay, not {type(replay).__name__}")
        self._ring = RingBuffer(config.history_size)
        self._static = _load_static()
        self.server = self.create_gobj(
            "http",
            GHttpServer,
            self,
            host=host,
            port=config.port,
            responseless_timeout=10.0,
            sock_options={"outbuf_max": 64 * 1024 * 1024},
        )
        port = int(self.server.config.port)
        self.write_parameters(port=port)
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}/"
        if loopback:
            self._allowed_hosts = frozenset(
                f"{name}:{port}" for name in (shown.lower(), "localhost", "127.0.0.1", "[::1]")
            )
        else:
            _LOG.warning(
                "inspector: listening on %s, not a loopback address: anyone who can reach "
                "it sees this program (read-only without the token)",
                host,
            )
        _LOG.info("inspector listening on %s", self.url)

    def go_out(self) -> None:
        self._stop_watching()

    # ------------------------------------------------------------------------------------
    #   HTTP
    # ------------------------------------------------------------------------------------
    def _respond(
        self,
        channel: Any,
        request: Any,
        status: int,
        body: bytes,
        content_type: bytes = b"text/plain; charset=utf-8",
    ) -> Any:
        # (A HEAD gets the same head without the body: the HTTP layer's rule.)
        headers = ((b"Content-Type", content_type), *_COMMON_HEADERS)
        return self.send_event(
            channel, "EV_HTTP_RESPONSE", request=request, status=status, headers=headers, body=body
        )

    def _http_request(self, request: Any, channel: Any) -> Any:
        if self._allowed_hosts:
            host = request.get_header(b"host", b"").decode("latin-1").lower()
            if host not in self._allowed_hosts:
                return self._respond(channel, request, 403, b"bad Host header\n")
        path = request.path
        if path == "/feed":
            if request.get_header(b"upgrade", b"").lower() != b"websocket":
                return self._respond(channel, request, 400, b"the feed is a WebSocket\n")
            if not self._same_origin(request):
                return self._respond(channel, request, 403, b"bad Origin\n")
            if len(self._viewers) >= self.config.max_viewers:
                return self._respond(channel, request, 503, b"too many viewers\n")
            return self.send_event(
                channel,
                "EV_HTTP_ACCEPT_WEBSOCKET",
                request=request,
                max_message_size=MAX_MESSAGE,
                ping_interval=20.0,
            )
        if request.method not in ("GET", "HEAD"):
            return self._respond(channel, request, 405, b"method not allowed\n")
        if path in ("/", "/index.html"):
            return self._static_file(channel, request, "index.html")
        if path.startswith("/static/"):
            return self._static_file(channel, request, path[len("/static/") :])
        if path.startswith("/diagram/") and path.endswith(".svg"):
            svg = self._diagram(path[len("/diagram/") : -len(".svg")])
            if svg is not None:
                return self._respond(channel, request, 200, svg, b"image/svg+xml")
        return self._respond(channel, request, 404, b"not found\n")

    def _static_file(self, channel: Any, request: Any, name: str) -> Any:
        body = self._static.get(name)
        if body is None:
            return self._respond(channel, request, 404, b"not found\n")
        suffix = name[name.rfind(".") :] if "." in name else ""
        kind = _CONTENT_TYPES.get(suffix, b"application/octet-stream")
        return self._respond(channel, request, 200, body, kind)

    def _same_origin(self, request: Any) -> bool:
        origin: bytes | None = request.get_header(b"origin")
        if origin is None:
            return True  # not a browser: no other site's page is behind it
        host: bytes = request.get_header(b"host", b"")
        try:
            parts = urlsplit(origin.decode("latin-1"))
        except ValueError:
            return False
        return parts.scheme in ("http", "https") and (
            parts.netloc.lower() == host.decode("latin-1").lower()
        )

    def _diagram(self, key: str) -> bytes | None:
        svg = self._diagrams.get(key)
        if svg is not None:
            return svg
        fsm = self._fsm_of.get(key)
        if fsm is None:
            cls = find_gclass(key) if self.config.replay is not None else None
            if cls is None or gclass_key(cls) != key:
                return None
            try:
                fsm = cls()._fsm
            except Exception:
                return None
        name = key.rpartition(".")[2]
        svg = card_svg(model_from_compiled(fsm, name, key)).encode("utf-8")
        self._diagrams[key] = svg
        return svg

    # ------------------------------------------------------------------------------------
    #   Watching (only while a viewer is connected)
    # ------------------------------------------------------------------------------------
    def _is_mine(self, gobj: GObj) -> bool:
        return any(node is self for node in lineage(gobj))

    def _start_watching(self) -> None:
        if self._watching or self.config.replay is not None:
            return
        self._watching = True
        self._ring.clear()
        self._nodes.clear()
        self._by_id.clear()
        gaplic = self.gaplic
        if gaplic is not None:
            self._add_node(gaplic, None)
            todo: list[tuple[GObj, int | None]] = [
                (child, self._nodes[gaplic].id) for child in reversed(list(gaplic.dl_childs))
            ]
            todo.extend((root, None) for root in reversed(list(getattr(gaplic, "_roots", ()))))
            while todo:
                gobj, parent = todo.pop()
                if gobj is self or gobj in self._nodes or gobj._destroyed:
                    continue
                node = self._add_node(gobj, parent)
                todo.extend((child, node.id) for child in reversed(list(gobj.dl_childs)))
        self._added.clear()
        self._removed.clear()
        self._state_changes.clear()
        self._retired_rx = self._retired_tx = 0
        self._last_total = self._ring.total
        self._last_tick = time.monotonic()
        add_lifecycle_observer(self._lifecycle_observer)
        add_dispatch_observer(self._dispatch_observer)
        self._flush_timer = self.create_gobj("flush", GTimer, self, timeout_event_name="EV_FLUSH")
        self.send_event(
            self._flush_timer, "EV_SET_TIMER", seconds=1.0 / self.config.rate, autostart=True
        )
        self._tick_timer = self.create_gobj("tick", GTimer, self, timeout_event_name="EV_TICK")
        self._arm_tick()

    def _stop_watching(self) -> None:
        remove_dispatch_observer(self._dispatch_observer)
        remove_lifecycle_observer(self._lifecycle_observer)
        if not self._watching:
            return
        self._watching = False
        for timer in (self._flush_timer, self._tick_timer):
            if timer is not None and not timer._destroyed:
                GObj.destroy_gobj(timer)
        self._flush_timer = self._tick_timer = None
        # Nothing is kept that holds a gobj alive, nor what nobody will read.
        self._nodes.clear()
        self._by_id.clear()
        self._added.clear()
        self._removed.clear()
        self._state_changes.clear()
        self._ring.clear()

    def _arm_tick(self) -> None:
        if self._tick_timer is None:
            return
        gaplic = self.gaplic
        self._tick_due = (gaplic.time() if gaplic is not None else time.monotonic()) + 1.0
        self.send_event(self._tick_timer, "EV_SET_TIMER", seconds=1.0)

    def _add_node(self, gobj: GObj, parent: int | None) -> _Node:
        ident = self._next_id
        self._next_id += 1
        node = _Node(ident, parent, gobj, bool(gobj.__unique_name__), gobj.get_current_state())
        self._nodes[gobj] = node
        self._by_id[ident] = gobj
        if node.gclass_key not in self._fsm_of:
            self._fsm_of[node.gclass_key] = gobj._fsm
        return node

    def _on_lifecycle(self, what: str, gobj: GObj) -> None:
        if gobj._gaplic is not self._gaplic:
            return  # another GAplic of the process (another thread)
        if what == "created":
            parent = gobj.parent
            parent_node = self._nodes.get(parent) if parent is not None else None
            if parent_node is None and (parent is not None or self._is_mine(gobj)):
                return  # under the inspector, or under a gobj not shown
            node = self._add_node(gobj, parent_node.id if parent_node else None)
            self._added[node.id] = node
            if len(self._added) > self.config.history_size:
                self._tree_overflow = True
                self._added.clear()
                self._removed.clear()
        else:
            gone = self._nodes.pop(gobj, None)
            if gone is None:
                return
            node = gone
            self._by_id.pop(node.id, None)
            self._state_changes.pop(node.id, None)
            if isinstance(gobj, GSock):
                self._retired_rx += gobj.rxed_bytes
                self._retired_tx += gobj.txed_bytes
            if self._added.pop(node.id, None) is None:
                self._removed.append(node.id)
                if len(self._removed) > self.config.history_size:
                    self._tree_overflow = True
                    self._added.clear()
                    self._removed.clear()

    def _on_dispatch(
        self,
        seq: int,
        depth: int,
        machine: Any,
        event: Event,
        state: Any,
        next_state: Any,
        ret: Any,
        exc: BaseException | None,
    ) -> None:
        nodes = self._nodes
        node = nodes.get(machine)
        if node is None:
            return  # not a gobj of this GAplic, or one of the inspector's own
        source = getattr(event, "source", None)
        src = source[-1] if source else None
        src_node = nodes.get(src) if isinstance(src, GObj) else None
        after = machine._state
        if after != node.state:
            node.state = after
            self._state_changes[node.id] = after
        # RingBuffer.append inlined, and the tuple made without NamedTuple's __new__
        # (this runs for every dispatch while someone watches).
        ring = self._ring
        ring._items.append(
            _new_ev(
                EvTuple,
                (
                    seq,
                    time.time(),
                    depth,
                    src_node.id if src_node is not None else None,
                    src_node.name if src_node is not None else None,
                    node.id,
                    node.name,
                    node.gclass,
                    event.event_name,
                    state,
                    after,
                    short_repr(ret) if exc is None else "",
                    None if exc is None else short_repr(exc),
                ),
            )
        )
        ring.total += 1

    # ------------------------------------------------------------------------------------
    #   Viewers
    # ------------------------------------------------------------------------------------
    def _send(self, viewer: _Viewer, message: dict[str, Any] | str) -> None:
        data = message if isinstance(message, str) else dumps(message)
        self.send_event(viewer.ws, "EV_SEND_MESSAGE", data=data)

    def _hello(self) -> dict[str, Any]:
        config = self.config
        gaplic = self.gaplic
        return {
            "type": "hello",
            "version": PROTOCOL_VERSION,
            "mode": "live" if config.replay is None else "replay",
            "app": (gaplic.name if gaplic is not None else "")
            if config.replay is None
            else config.replay.app,
            "pid": os.getpid(),
            "control": bool(config.token) and config.replay is None,
            "authed": False,
            "history_size": config.history_size,
            "rate": config.rate,
        }

    def _tree(self) -> dict[str, Any]:
        replay = self.config.replay
        if replay is not None:
            return {"type": "tree", "nodes": replay.nodes}
        return {"type": "tree", "nodes": [node.as_dict() for node in self._nodes.values()]}

    def _viewer_opened(self, ws: Any) -> None:
        viewer = _Viewer(ws, ViewerCursor(self._ring))
        first = not self._viewers
        self._viewers[ws] = viewer
        self.write_parameters(n_viewers=len(self._viewers))
        if first:
            self._start_watching()
        viewer.cursor = ViewerCursor(self._ring)
        self._send(viewer, self._hello())
        self._send(viewer, self._tree())
        replay = self.config.replay
        if replay is not None:
            self._send(viewer, {"type": "history", "items": replay.events, "complete": True})

    def _viewer_closed(self, ws: Any) -> None:
        if self._viewers.pop(ws, None) is None:
            return
        self.write_parameters(n_viewers=len(self._viewers))
        if not self._viewers:
            self._stop_watching()

    def _error(self, viewer: _Viewer, message: str) -> None:
        viewer.bad += 1
        self._send(viewer, {"type": "error", "message": message})
        if viewer.bad >= MAX_BAD_MESSAGES:
            _LOG.info("inspector: %d bad messages in a row from a viewer: closing it", viewer.bad)
            self.send_event(viewer.ws, "EV_CLOSE", code=1008, reason="too many bad messages")

    def _viewer_message(self, viewer: _Viewer, data: Any) -> None:
        try:
            message = parse_message(data)
        except FeedError as exc:
            self._error(viewer, str(exc))
            return
        kind = message["type"]
        problem: str | None = None
        if kind == "auth":
            token = self.config.token
            ok = bool(token) and hmac.compare_digest(
                message["token"].encode("utf-8"), str(token).encode("utf-8")
            )
            viewer.authed = ok and self.config.replay is None
            self._send(viewer, {"type": "auth", "ok": viewer.authed})
        elif kind == "filter":
            viewer.cursor.filter = EventFilter(
                message["gclass"], message["gobj"], message["state"], message["event"]
            )
        elif kind == "select":
            viewer.selected = message["id"]
            if viewer.selected is not None:
                detail = self._detail(viewer.selected)
                if detail is None:
                    problem = f"select: no gobj with id {viewer.selected} (gone, or never shown)"
                    viewer.selected = None
                else:
                    self._send(viewer, detail)
        elif kind == "history":
            self._send(viewer, self._history(viewer))
        else:
            problem = self._control(viewer, message)
        if problem is not None:
            self._error(viewer, problem)
        else:
            viewer.bad = 0

    def _history(self, viewer: _Viewer) -> dict[str, Any]:
        replay = self.config.replay
        if replay is not None:
            return {"type": "history", "items": replay.events, "complete": True}
        items = viewer.cursor.filter.select(self._ring)
        items.sort(key=lambda ev: ev.seq)
        return {
            "type": "history",
            "items": [ev_dict(ev) for ev in items],
            "complete": self._ring.first == 0,
        }

    def _control(self, viewer: _Viewer, message: dict[str, Any]) -> str | None:
        """``send_event`` and ``trace``: the result message, or the problem to report."""
        kind = message["type"]
        if not viewer.authed:
            self._send(
                viewer,
                {
                    "type": "result",
                    "request": kind,
                    "ok": False,
                    "message": f"{kind}: not allowed: "
                    + (
                        "this inspector is read-only (no token configured)"
                        if not self.config.token or self.config.replay is not None
                        else "send {'type': 'auth', 'token': ...} first"
                    ),
                    "ret": None,
                },
            )
            return None
        gobj = self._by_id.get(message["id"])
        if gobj is None or gobj._destroyed:
            return f"{kind}: no gobj with id {message['id']} (gone, or never shown)"
        if kind == "trace":
            gobj.trace_mach = 1 if message["on"] else 0
            self._send(
                viewer,
                {
                    "type": "result",
                    "request": "trace",
                    "ok": True,
                    "message": f"trace_mach of {gobj.name or type(gobj).__name__} is "
                    + ("on" if message["on"] else "off"),
                    "ret": None,
                },
            )
            return None
        event_name = message["event"]
        inputs = gobj._fsm.input_set
        if event_name not in inputs:
            return (
                f"send_event: {event_name[:80]!r} is not an input event of "
                f"{type(gobj).__name__} (its input events: {', '.join(sorted(inputs))})"
            )
        self.post_event(gobj, event_name, **message["kw"])
        self._send(
            viewer,
            {
                "type": "result",
                "request": "send_event",
                "ok": True,
                "message": f"{event_name} posted to {gobj.name or type(gobj).__name__}",
                "ret": None,
            },
        )
        return None

    def _id_of(self, gobj: Any) -> int | None:
        node = self._nodes.get(gobj) if isinstance(gobj, GObj) else None
        return node.id if node is not None else None

    def _name_of(self, gobj: Any) -> str:
        node = self._nodes.get(gobj) if isinstance(gobj, GObj) else None
        if node is not None:
            return node.name
        if isinstance(gobj, GObj):
            return gobj.name or type(gobj).__name__
        return short_repr(gobj)

    def _detail(self, ident: int) -> dict[str, Any] | None:
        gobj = self._by_id.get(ident)
        node = self._nodes.get(gobj) if gobj is not None else None
        if gobj is None or node is None or gobj._destroyed:
            return None
        fsm = gobj._fsm
        params = gobj.get_gconfig_params()
        config: dict[str, Any] = {}
        for name in params:
            if _secret(name):
                config[name] = "(hidden)"
                continue
            try:
                config[name] = _json_safe(gobj.read_parameter(name))
            except Exception as exc:
                config[name] = f"<unreadable: {type(exc).__name__}>"
        stats: dict[str, float] = {}
        for name in _STATS:
            # An attribute (GSock's counters) or a written parameter (n_gsocks).
            value = gobj.read_parameter(name) if name in params else getattr(gobj, name, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                stats[name] = value
        subscriptions = [
            {
                "event": event_name,
                "subscriber": self._id_of(sub.subscriber),
                "subscriber_name": self._name_of(sub.subscriber),
            }
            for sub in gobj.get_subscriptions()
            for event_name in (sorted(sub.event_names) if sub.event_names else [None])
        ]
        subscribed = [
            {
                "event": event_name,
                "publisher": self._id_of(sub.publisher),
                "publisher_name": self._name_of(sub.publisher),
            }
            for sub in list(gobj._held_subscriptions)
            for event_name in (sorted(sub.event_names) if sub.event_names else [None])
        ]
        return {
            "type": "detail",
            "id": ident,
            "name": node.name,
            "gclass": node.gclass,
            "gclass_key": node.gclass_key,
            "state": gobj.get_current_state(),
            "states": list(fsm.state_list),
            "input_events": list(fsm.input_events),
            "output_events": list(fsm.output_events),
            "config": config,
            "stats": stats,
            "subscriptions": subscriptions,
            "subscribed": subscribed,
            "trace_mach": int(gobj._trace_mach),
        }

    # ------------------------------------------------------------------------------------
    #   Flushing (the GTimers; only while watched)
    # ------------------------------------------------------------------------------------
    def _shared_deltas(self) -> tuple[list[str], bool]:
        """The tree messages every up-to-date viewer gets at this flush (JSON built
        once), and whether the tree changed."""
        messages: list[str] = []
        changed = bool(self._added or self._removed or self._state_changes)
        if self._tree_overflow:
            messages.append(dumps(self._tree()))
        else:
            if self._added:
                messages.append(
                    dumps({"type": "added", "nodes": [n.as_dict() for n in self._added.values()]})
                )
            if self._removed:
                messages.append(dumps({"type": "removed", "ids": self._removed}))
        if self._state_changes:
            changes = [[k, v] for k, v in self._state_changes.items()]
            messages.append(dumps({"type": "states", "changes": changes}))
        self._added = {}
        self._removed = []
        self._state_changes = {}
        changed = changed or self._tree_overflow
        self._tree_overflow = False
        return messages, changed

    def _flush(self) -> None:
        if not self._viewers:
            return
        messages, changed = self._shared_deltas()
        for viewer in list(self._viewers.values()):
            self._flush_viewer(viewer, messages, changed)

    def _flush_viewer(self, viewer: _Viewer, messages: list[str], changed: bool) -> None:
        ws = viewer.ws
        if ws._destroyed:
            return
        if ws.write_paused:
            # Backed up: send nothing more now; the ring keeps the events (a cursor lapped
            # by it counts them dropped) and the tree is resent whole when it drains.
            viewer.stalled = True
            viewer.needs_tree = viewer.needs_tree or changed
            return
        if viewer.needs_tree:
            viewer.needs_tree = False
            self._send(viewer, self._tree())
        else:
            for data in messages:
                self._send(viewer, data)
        taken = viewer.cursor.take(self._ring, self.config.max_batch)
        if taken is not None:
            items, dropped = taken
            self._send(
                viewer,
                {"type": "events", "items": [ev_dict(ev) for ev in items], "dropped": dropped},
            )

    def _tick(self) -> None:
        gaplic = self.gaplic
        now_mono = gaplic.time() if gaplic is not None else time.monotonic()
        self._loop_lag = max(0.0, now_mono - self._tick_due)
        self._arm_tick()
        if not self._viewers:
            return
        now = time.monotonic()
        elapsed = max(1e-6, now - self._last_tick)
        total = self._ring.total
        rate = (total - self._last_total) / elapsed
        self._last_tick, self._last_total = now, total
        connections = 0
        rx, tx = self._retired_rx, self._retired_tx
        for gobj in list(getattr(gaplic, "_socket_map", {}).values()):
            if isinstance(gobj, GSock) and gobj in self._nodes and gobj.connected:
                connections += 1
        for gobj in self._nodes:
            if isinstance(gobj, GSock):
                rx += gobj.rxed_bytes
                tx += gobj.txed_bytes
        queue = len(getattr(gaplic, "_qevent", ()))
        for viewer in list(self._viewers.values()):
            if viewer.ws._destroyed or viewer.stalled:
                continue
            self._send(
                viewer,
                {
                    "type": "counters",
                    "t": time.time(),
                    "events_per_s": round(rate, 1),
                    "gobjs": len(self._nodes),
                    "connections": connections,
                    "bytes_in": rx,
                    "bytes_out": tx,
                    "queue": queue,
                    "loop_lag_ms": round(self._loop_lag * 1000.0, 3),
                    "dropped": viewer.cursor.dropped_total + viewer.cursor.dropped,
                    "viewers": len(self._viewers),
                },
            )
            if viewer.selected is not None:
                detail = self._detail(viewer.selected)
                if detail is not None:
                    self._send(viewer, detail)

    @property
    def viewers(self) -> int:
        """The feeds open now."""
        return len(self._viewers)


def _load_static() -> dict[str, bytes]:
    """The page's files (``static/`` in this package), by name."""
    files: dict[str, bytes] = {}
    try:
        folder = resources.files("fsmio.inspector").joinpath("static")
        if not folder.is_dir():
            return files
        for entry in folder.iterdir():
            if entry.is_file() and not entry.name.startswith("."):
                files[entry.name] = entry.read_bytes()
    except (OSError, ModuleNotFoundError) as exc:
        _LOG.warning("inspector: cannot read the page files: %s", exc)
    return files
