"""A chat room in the browser: one HTML page and a GWebSocket per tab, on a GHttpServer.

    python -m fsmio.examples.ws_chat --host 127.0.0.1 --port 0 [--max-seconds S]

Open ``http://<host>:<port>/`` in several tabs: what one tab sends appears in every tab.
``GET /`` is the page (``ws_chat.html``, inside the package: no CDN, nothing fetched
from elsewhere); ``GET /ws`` with ``Upgrade: websocket`` becomes a ``GWebSocket`` through
``EV_HTTP_ACCEPT_WEBSOCKET`` (made, and destroyed after it closes, by the GHttpServer);
anything else is 404.

Protocol (JSON text messages).  Tab to server: ``{"name": str, "text": str}``.  Server to
tabs: ``{"type": "welcome", "name", "history": [...], "online"}`` to a new tab,
``{"type": "message", "name", "text", "online"}`` and ``{"type": "note", "text",
"online"}`` (joined, left) to every tab.  The input is hostile:
a message that is not such an object, or too long, is dropped (logged at DEBUG); names
and texts are cut to 32 and 1000 characters; the page shows them as text, never HTML.
An upgrade whose ``Origin`` is not this server's own page is refused with 403 (the
cross-site WebSocket hijacking check); the page's Content-Security-Policy allows only
its own inline script and style and connections back to this server.

Prints exactly one line on stdout, ``READY <host> <port>``, once listening; logs go to
stderr.  Stops on SIGTERM or SIGINT (open tabs get close 1001), or after
``--max-seconds``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import sys
from collections import deque
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from fsmio.core.event import Event
from fsmio.core.gobj import GObj
from fsmio.gobjs.c_timer import GTimer
from fsmio.protocols.http.c_http_server import GHttpServer

from ._cli import interruptible, run_server, server_parser, setup_logging

_LOG = logging.getLogger("fsmio.ws_chat")

MAX_NAME = 32
MAX_TEXT = 1000
HISTORY = 50
#: The GWebSocket's max_message_size: room for a text of MAX_TEXT escaped characters.
MAX_MESSAGE = 16384

# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
WS_CHAT_GCONFIG: dict[str, Any] = {
    "host": [str, "127.0.0.1", 0, None, "Address to listen on."],
    "port": [int, 0, 0, None, "Port (0: a free one)."],
    "max_seconds": [float, -1, 0, None, "Stop after this many seconds; <= 0: run until told."],
}


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_request(self: WsChat, event: Event) -> Any:
    request, channel = event.request, event.channel
    path = request.path
    if path == "/ws" and request.get_header(b"upgrade", b"").lower() == b"websocket":
        if not _same_origin(request):
            return self.send_event(
                channel, "EV_HTTP_RESPONSE", request=request, status=403, body=b"bad Origin"
            )
        return self.send_event(
            channel,
            "EV_HTTP_ACCEPT_WEBSOCKET",
            request=request,
            max_message_size=MAX_MESSAGE,
            ping_interval=20.0,
        )
    if path in ("/", "/index.html") and request.method in ("GET", "HEAD"):
        return self.send_event(
            channel,
            "EV_HTTP_RESPONSE",
            request=request,
            status=200,
            headers=self.page_headers,
            body=self.page,
        )
    return self.send_event(
        channel, "EV_HTTP_RESPONSE", request=request, status=404, body=b"not found"
    )


def ac_on_open(self: WsChat, event: Event) -> None:
    ws = event.ws
    self.n_joined += 1
    name = f"guest{self.n_joined}"
    self.tabs[ws] = name
    self.send_event(
        ws,
        "EV_SEND_JSON_MESSAGE",
        msg={
            "type": "welcome",
            "name": name,
            "history": list(self.history),
            "online": len(self.tabs),
        },
    )
    self._broadcast({"type": "note", "text": f"{name} joined"})


def ac_on_message(self: WsChat, event: Event) -> None:
    ws = event.ws
    message = _parse(event.data)
    if message is None:
        _LOG.debug("%r: dropped a malformed message from %r", self, ws)
        return
    name, text = message
    self.tabs[ws] = name or self.tabs.get(ws, "guest")
    self.history.append({"name": self.tabs[ws], "text": text})
    self._broadcast({"type": "message", "name": self.tabs[ws], "text": text})


def ac_on_close(self: WsChat, event: Event) -> None:
    # The GHttpServer destroys the GWebSocket after this: only forget it here.
    name = self.tabs.pop(event.ws, None)
    if name is not None:
        self._broadcast({"type": "note", "text": f"{name} left"})


def ac_nothing(self: WsChat, event: Event) -> None:
    return None


def ac_timeout(self: WsChat, event: Event) -> None:
    _LOG.info("--max-seconds reached, stopping")
    self.gaplic.stop()


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
WS_CHAT_FSM: dict[str, Any] = {
    "event_list": (
        "EV_HTTP_CHANNEL_OPENED: bottom input",
        "EV_HTTP_REQUEST: bottom input",
        "EV_HTTP_CHANNEL_CLOSED: bottom input",
        "EV_ON_OPEN: bottom input",
        "EV_ON_MESSAGE: bottom input",
        "EV_ON_CLOSE: bottom input",
        "EV_TIMEOUT: bottom input",
    ),
    "state_list": ("ST_CHATTING",),
    "machine": {
        "ST_CHATTING": (
            ("EV_HTTP_CHANNEL_OPENED", ac_nothing, None),
            ("EV_HTTP_REQUEST", ac_request, None),
            ("EV_HTTP_CHANNEL_CLOSED", ac_nothing, None),
            ("EV_ON_OPEN", ac_on_open, None),
            ("EV_ON_MESSAGE", ac_on_message, None),
            ("EV_ON_CLOSE", ac_on_close, None),
            ("EV_TIMEOUT", ac_timeout, None),
        )
    },
}


# ----------------------------------------------------------------------------------------
#   Helpers
# ----------------------------------------------------------------------------------------
def _parse(data: Any) -> tuple[str, str] | None:
    """``(name, text)`` of a tab's message, or None if it is not one."""
    if not isinstance(data, str) or len(data) > MAX_MESSAGE:
        return None
    try:
        message = json.loads(data)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    name, text = message.get("name", ""), message.get("text")
    if not isinstance(name, str) or not isinstance(text, str):
        return None
    name = " ".join(name.split())[:MAX_NAME]
    text = text.strip()[:MAX_TEXT]
    return (name, text) if text else None


def _same_origin(request: Any) -> bool:
    """A browser's upgrade comes from this server's own page (its Origin is our Host)."""
    origin: bytes | None = request.get_header(b"origin")
    if origin is None:
        return True  # not a browser: no cross-site page can be behind it
    host: bytes = request.get_header(b"host", b"")
    try:
        netloc = urlsplit(origin.decode("latin-1")).netloc
    except ValueError:
        return False
    return netloc.lower() == host.decode("latin-1").lower()


def _csp_hash(html: str, tag: str) -> str:
    match = re.search(rf"<{tag}>(.*?)</{tag}>", html, re.S)
    if match is None:
        return "'none'"
    digest = hashlib.sha256(match.group(1).encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def load_page() -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The page (from the package) and its response headers."""
    html = resources.files("fsmio.examples").joinpath("ws_chat.html").read_text("utf-8")
    csp = (
        f"default-src 'none'; script-src {_csp_hash(html, 'script')}; "
        f"style-src {_csp_hash(html, 'style')}; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    headers = [
        (b"Content-Type", b"text/html; charset=utf-8"),
        (b"Content-Security-Policy", csp.encode()),
        (b"X-Content-Type-Options", b"nosniff"),
        (b"Cache-Control", b"no-cache"),
    ]
    return html.encode("utf-8"), headers


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
class WsChat(GObj):
    """Owns the GHttpServer; serves the page and relays every tab's messages to all."""

    def __init__(self) -> None:
        GObj.__init__(self, WS_CHAT_FSM, WS_CHAT_GCONFIG)
        self.server: GHttpServer | None = None
        self.page, self.page_headers = load_page()
        self.tabs: dict[Any, str] = {}
        self.history: deque[dict[str, str]] = deque(maxlen=HISTORY)
        self.n_joined = 0

    def start_up(self) -> None:
        config = self.config
        self.server = self.create_gobj(
            "http", GHttpServer, self, host=config.host, port=config.port
        )
        if config.max_seconds > 0:
            timer = self.create_gobj("timer", GTimer, self)
            self.send_event(timer, "EV_SET_TIMER", seconds=config.max_seconds)

    def listening_on(self) -> tuple[str, int]:
        assert self.server is not None
        sockname = self.server.get_sockname()
        host = self.config.host or (str(sockname[0]) if sockname else "")
        return host, int(self.server.config.port)

    def _broadcast(self, message: dict[str, Any]) -> None:
        message["online"] = len(self.tabs)
        data = json.dumps(message)  # serialized once for every tab
        for ws in list(self.tabs):
            self.send_event(ws, "EV_SEND_MESSAGE", data=data)


def _main(argv: list[str] | None) -> int:
    parser = server_parser(__doc__)
    parser.add_argument("--max-seconds", type=float, default=-1, help="stop after S seconds")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    return run_server(
        "ws_chat", WsChat, args, "chat on http://{host}:{port}/", max_seconds=args.max_seconds
    )


main = interruptible("ws_chat", _main)


if __name__ == "__main__":
    sys.exit(main())
