"""A WebSocket echo server: a GServerSock with one GWebSocket per connection.

    python -m fsmio.examples.ws_echo --host 127.0.0.1 --port 0 \\
        [--max-message-size N] [--max-fragments N] [--compression deflate]
        [--max-seconds S]

Every accepted connection is taken over by a ``GWebSocket`` (server role, the handshake
read from the connection's own bytes, any path); every message it delivers is sent back
as it came (text as text, binary as binary).  It is also the server Autobahn|Testsuite
is run against (``docs/autobahn.md``).

Prints exactly one line on stdout, ``READY <host> <port>``, once listening; everything
else goes to stderr.  Stops cleanly on SIGTERM or SIGINT, or after ``--max-seconds``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from fsmio.aplic.gaplic import GAplic
from fsmio.core.errors import GConfigValidateError
from fsmio.core.event import Event
from fsmio.core.gobj import GObj
from fsmio.gobjs.c_srv_sock import GServerSock
from fsmio.gobjs.c_timer import GTimer
from fsmio.protocols.websocket.c_websocket import GWebSocket

from ._cli import interruptible, server_parser, setup_logging

_LOG = logging.getLogger("fsmio.ws_echo")

# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
WS_ECHO_GCONFIG: dict[str, Any] = {
    "host": [str, "127.0.0.1", 0, None, "Address to listen on."],
    "port": [int, 0, 0, None, "Port (0: a free one)."],
    "max_message_size": [int, 1048576, 0, None, "GWebSocket max_message_size."],
    "max_fragments": [int, 65536, 0, None, "GWebSocket max_fragments."],
    "compression": [str, None, 0, None, "GWebSocket compression (None or 'deflate')."],
    "max_seconds": [float, -1, 0, None, "Stop after this many seconds; <= 0: run until told."],
}


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_connected(self: WsEcho, event: Event) -> None:
    self.connections += 1
    self.create_gobj(
        None,
        GWebSocket,
        self,
        gsock=event.kw["gsock"],
        max_message_size=self.config.max_message_size,
        max_fragments=self.config.max_fragments,
        compression=self.config.compression,
    )


def ac_on_message(self: WsEcho, event: Event) -> Any:
    self.messages += 1
    return self.send_event(event.kw["ws"], "EV_SEND_MESSAGE", data=event.kw["data"])


def ac_on_close(self: WsEcho, event: Event) -> None:
    # Not from inside the GWebSocket's own action: through the queue.
    self.post_event(self, "EV_DESTROY_WS", ws=event.kw["ws"])


def ac_destroy_ws(self: WsEcho, event: Event) -> None:
    self.destroy_gobj(event.kw["ws"])


def ac_ignore(self: WsEcho, event: Event) -> None:
    return None


def ac_timeout(self: WsEcho, event: Event) -> None:
    _LOG.info("--max-seconds reached, stopping")
    self.gaplic.stop()


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
WS_ECHO_FSM: dict[str, Any] = {
    "event_list": (
        "EV_CONNECTED: bottom input",
        "EV_DISCONNECTED: bottom input",
        "EV_ON_OPEN: bottom input",
        "EV_ON_MESSAGE: bottom input",
        "EV_ON_CLOSE: bottom input",
        "EV_DESTROY_WS: bottom input",
        "EV_TIMEOUT: bottom input",
    ),
    "state_list": ("ST_ECHOING",),
    "machine": {
        "ST_ECHOING": (
            ("EV_CONNECTED", ac_connected, None),
            # The GWebSocket took the connection over: its end comes as EV_ON_CLOSE.
            ("EV_DISCONNECTED", ac_ignore, None),
            ("EV_ON_OPEN", ac_ignore, None),
            ("EV_ON_MESSAGE", ac_on_message, None),
            ("EV_ON_CLOSE", ac_on_close, None),
            ("EV_DESTROY_WS", ac_destroy_ws, None),
            ("EV_TIMEOUT", ac_timeout, None),
        )
    },
}


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
class WsEcho(GObj):
    """Owns the GServerSock; makes a GWebSocket per connection and echoes its messages."""

    def __init__(self) -> None:
        GObj.__init__(self, WS_ECHO_FSM, WS_ECHO_GCONFIG)
        self.connections = 0
        self.messages = 0
        self.server: GServerSock | None = None

    def start_up(self) -> None:
        config = self.config
        self.server = self.create_gobj(
            "server", GServerSock, self, host=config.host, port=config.port
        )
        if config.max_seconds > 0:
            timer = self.create_gobj("timer", GTimer, self)
            self.send_event(timer, "EV_SET_TIMER", seconds=config.max_seconds)

    def listening_on(self) -> tuple[str, int]:
        assert self.server is not None
        return self.config.host, int(self.server.config.port)


def _main(argv: list[str] | None) -> int:
    parser = server_parser(__doc__, log_level="WARNING")
    parser.add_argument(
        "--max-message-size", type=int, default=1048576, help="largest message (0: none)"
    )
    parser.add_argument(
        "--max-fragments", type=int, default=65536, help="most frames in one message"
    )
    parser.add_argument("--compression", choices=["deflate"], help="permessage-deflate")
    parser.add_argument("--max-seconds", type=float, default=-1, help="stop after S seconds")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    with GAplic("ws_echo") as gaplic:
        try:
            echo: WsEcho = gaplic.create_gobj(
                "ws_echo",
                WsEcho,
                gaplic,
                host=args.host,
                port=args.port,
                max_message_size=args.max_message_size,
                max_fragments=args.max_fragments,
                compression=args.compression,
                max_seconds=args.max_seconds,
            )
        except (OSError, GConfigValidateError) as exc:
            print(f"ws_echo: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        host, port = echo.listening_on()

        def announce() -> None:
            print(f"READY {host} {port}", flush=True)

        gaplic.add_callback(announce)
        gaplic.start()
        _LOG.info("stopped: %d connections, %d messages", echo.connections, echo.messages)
    return 0


main = interruptible("ws_echo", _main)


if __name__ == "__main__":
    sys.exit(main())
