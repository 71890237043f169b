"""A WSGI demo: a small PEP 3333 application served by ``GWsgiServer``'s thread pool.

    python -m fsmio.examples.wsgi_demo --host 127.0.0.1 --port 0 [--threads 8]

Routes: ``GET /`` says hello; ``POST /echo`` answers the request body; ``GET /stream``
streams ten numbered lines through ``write()``-free iteration; anything else is a 404.

Prints exactly one line on stdout, ``READY <host> <port>``, once serving (port 0 picks a
free port); logs go to stderr.  Stops cleanly on SIGTERM or SIGINT: exit 0.  A port in
use: a one-line error on stderr, exit 1.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fsmio.aplic.gaplic import GAplic
from fsmio.core.errors import GConfigValidateError
from fsmio.protocols.wsgi.c_wsgi_server import GWsgiServer

from ._cli import interruptible, server_parser, setup_logging

_LOG = logging.getLogger("fsmio.wsgi_demo")


def _stream() -> Iterator[bytes]:
    for n in range(10):
        yield f"line {n}\n".encode()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The demo's WSGI application."""
    path = environ["PATH_INFO"]
    method = environ["REQUEST_METHOD"]
    if path == "/" and method in ("GET", "HEAD"):
        body = b"Hello from fsmio (WSGI)\n"
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]
    if path == "/echo" and method == "POST":
        data = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [data]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _stream()
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"Not Found\n"]


def _main(argv: list[str] | None) -> int:
    parser = server_parser(__doc__)
    parser.add_argument("--threads", type=int, default=8, help="worker threads")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    with GAplic("wsgi_demo") as gaplic:
        holder: list[GWsgiServer] = []

        def announce() -> None:
            server = holder[0]
            print(f"READY {args.host} {server.config.port}", flush=True)
            _LOG.info("serving the WSGI demo on http://%s:%s", args.host, server.config.port)

        try:
            server = gaplic.create_gobj(
                "wsgi-demo",
                GWsgiServer,
                gaplic,
                application=application,
                host=args.host,
                port=args.port,
                threads=args.threads,
                ready_callback=announce,
            )
        except (OSError, GConfigValidateError) as exc:
            print(f"wsgi_demo: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        holder.append(server)
        gaplic.start()
    return 0


main = interruptible("wsgi_demo", _main)


if __name__ == "__main__":
    sys.exit(main())
