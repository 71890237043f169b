"""An ASGI demo: a small ASGI 3 application (no framework) served by ``GAsgiServer``.

    python -m fsmio.examples.asgi_demo --host 127.0.0.1 --port 0

Routes: ``GET /`` says hello (and how many requests were served since the lifespan
start-up); ``POST /echo`` streams the request body back as it arrives; ``GET /stream``
streams ten numbered lines; anything else is a 404.

Prints exactly one line on stdout, ``READY <host> <port>``, once serving (after the
lifespan start-up; port 0 picks a free port); logs go to stderr.  Stops cleanly on
SIGTERM or SIGINT (the lifespan shutdown runs): exit 0.  A port in use: a one-line error
on stderr, exit 1.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from fsmio.aplic.gaplic import GAplic
from fsmio.core.errors import GConfigValidateError
from fsmio.protocols.asgi.c_asgi_server import GAsgiServer

from ._cli import interruptible, server_parser, setup_logging

_LOG = logging.getLogger("fsmio.asgi_demo")

Message = dict[str, Any]


async def _lifespan(receive: Any, send: Any, state: dict[str, Any]) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            state["served"] = [0]
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            _LOG.info("lifespan shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The demo's ASGI application."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send, scope["state"])
        return
    if scope["type"] != "http":
        return
    served = scope.get("state", {}).get("served")
    if served is not None:
        served[0] += 1
    path, method = scope["path"], scope["method"]
    if path == "/" and method in ("GET", "HEAD"):
        count = served[0] if served is not None else 0
        body = f"Hello from fsmio (ASGI), request {count}\n".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/echo" and method == "POST":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            more = message.get("more_body", False)
            await send(
                {"type": "http.response.body", "body": message.get("body", b""), "more_body": more}
            )
        return
    if path == "/stream":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        for n in range(10):
            await send(
                {"type": "http.response.body", "body": f"line {n}\n".encode(), "more_body": True}
            )
        await send({"type": "http.response.body", "body": b""})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"Not Found\n"})


def _main(argv: list[str] | None) -> int:
    parser = server_parser(__doc__)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    with GAplic("asgi_demo") as gaplic:
        holder: list[GAsgiServer] = []

        def announce() -> None:
            server = holder[0]
            print(f"READY {args.host} {server.config.port}", flush=True)
            _LOG.info("serving the ASGI demo on http://%s:%s", args.host, server.config.port)

        try:
            server = gaplic.create_gobj(
                "asgi-demo",
                GAsgiServer,
                gaplic,
                application=application,
                host=args.host,
                port=args.port,
                ready_callback=announce,
            )
        except (OSError, GConfigValidateError) as exc:
            print(f"asgi_demo: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        holder.append(server)
        gaplic.start()
        return gaplic.exit_code


main = interruptible("asgi_demo", _main)


if __name__ == "__main__":
    sys.exit(main())
