"""An HTTP "hello" server on fsmio's native HTTP gobjs.

    python -m fsmio.examples.http_hello --host 127.0.0.1 --port 0 [--max-seconds S]

A ``GHttpServer`` hands every request to the ``Hello`` gobj, whose action answers it with
``EV_HTTP_RESPONSE``: ``GET /`` (any path) gives ``Hello, World!``; a request with a
body gets the body back (``POST /echo``).

Prints exactly one line on stdout, ``READY <host> <port>``, once listening; logs go to
stderr.  Stops on SIGTERM or SIGINT (in-flight responses finish), or after
``--max-seconds``.  A port in use: a one-line error on stderr, exit 1.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from fsmio.core.event import Event
from fsmio.core.gobj import GObj
from fsmio.gobjs.c_timer import GTimer
from fsmio.protocols.http.c_http_server import GHttpServer

from ._cli import interruptible, run_server, server_parser, setup_logging

_LOG = logging.getLogger("fsmio.http_hello")

HELLO_GCONFIG: dict[str, Any] = {
    "host": [str, "127.0.0.1", 0, None, "Address to listen on."],
    "port": [int, 0, 0, None, "Port (0: a free one)."],
    "max_seconds": [float, -1, 0, None, "Stop after this many seconds; <= 0: run until told."],
}

_HEADERS = ((b"Content-Type", b"text/plain"),)
_HELLO = b"Hello, World!"


def ac_request(self: Hello, event: Event) -> Any:
    request = event.request
    body = request.body if request.body else _HELLO
    return self.send_event(
        event.channel, "EV_HTTP_RESPONSE", request=request, status=200, headers=_HEADERS, body=body
    )


def ac_nothing(self: Hello, event: Event) -> None:
    return None


def ac_timeout(self: Hello, event: Event) -> None:
    _LOG.info("--max-seconds reached, stopping")
    self.gaplic.stop()


HELLO_FSM: dict[str, Any] = {
    "event_list": (
        "EV_HTTP_CHANNEL_OPENED: bottom input",
        "EV_HTTP_REQUEST: bottom input",
        "EV_HTTP_CHANNEL_CLOSED: bottom input",
        "EV_TIMEOUT: bottom input",
    ),
    "state_list": ("ST_SERVING",),
    "machine": {
        "ST_SERVING": (
            ("EV_HTTP_CHANNEL_OPENED", ac_nothing, None),
            ("EV_HTTP_REQUEST", ac_request, None),
            ("EV_HTTP_CHANNEL_CLOSED", ac_nothing, None),
            ("EV_TIMEOUT", ac_timeout, None),
        )
    },
}


class Hello(GObj):
    """Owns the GHttpServer and answers every request."""

    def __init__(self) -> None:
        GObj.__init__(self, HELLO_FSM, HELLO_GCONFIG)
        self.server: GHttpServer | None = None

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


def _main(argv: list[str] | None) -> int:
    parser = server_parser(__doc__)
    parser.add_argument("--max-seconds", type=float, default=-1, help="stop after S seconds")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    return run_server(
        "http_hello", Hello, args, "serving HTTP on {host}:{port}", max_seconds=args.max_seconds
    )


main = interruptible("http_hello", _main)


if __name__ == "__main__":
    sys.exit(main())
