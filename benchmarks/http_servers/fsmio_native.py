"""fsmio's native HTTP server: a ``GHttpServer`` and a user gobj answering each request.

    python -m benchmarks.http_servers.fsmio_native --host 127.0.0.1 --port 0

The program a user writes: the server's subscriber gets ``EV_HTTP_REQUEST(channel,
request)`` and answers with ``EV_HTTP_RESPONSE`` sent to the channel, the whole body in
one event.  Every request goes the FSM way (parser -> GHttpCliSrv -> the user's action ->
GHttpCliSrv -> GSock).  On uvloop, the default install.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from benchmarks.http_servers.apps import CONTENT_TYPE, body_for
from benchmarks.http_servers.cli import parse_args, ready
from fsmio import GAplic, GObj
from fsmio.core.event import Event
from fsmio.protocols.http import GHttpServer

_HEADERS = [(b"content-type", CONTENT_TYPE)]


def ac_http_request(self: Hello, event: Event) -> Any:
    request = event.request
    status, body = body_for(request.path)
    return self.send_event(
        event.channel, "EV_HTTP_RESPONSE", request=request, status=status, headers=_HEADERS,
        body=body,
    )  # fmt: skip


HELLO_FSM: dict[str, Any] = {
    "event_list": (
        "EV_HTTP_CHANNEL_OPENED: bottom input",
        "EV_HTTP_REQUEST: bottom input",
        "EV_HTTP_CHANNEL_CLOSED: bottom input",
    ),
    "state_list": ("ST_SERVING",),
    "machine": {
        "ST_SERVING": (
            ("EV_HTTP_CHANNEL_OPENED", None, None),
            ("EV_HTTP_REQUEST", ac_http_request, None),
            ("EV_HTTP_CHANNEL_CLOSED", None, None),
        )
    },
}


class Hello(GObj):
    """Answers every request of its GHttpServer with the benchmark's resources."""

    def __init__(self) -> None:
        GObj.__init__(self, HELLO_FSM)


def main(argv: list[str] | None = None) -> int:
    args = parse_args("fsmio GHttpServer with a user gobj", argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with GAplic("http_native") as gaplic:
        hello = gaplic.create_gobj("hello", Hello, None)
        server = gaplic.create_gobj(
            "server", GHttpServer, None, host=args.host, port=args.port, subscriber=hello
        )
        ready(args.host, server.config.port)
        gaplic.start()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
