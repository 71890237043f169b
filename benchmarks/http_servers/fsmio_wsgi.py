"""fsmio's ``GWsgiServer`` hosting the benchmark's WSGI app (the one waitress runs).

    python -m benchmarks.http_servers.fsmio_wsgi --host 127.0.0.1 --port 0

The thread pool keeps its default size, as waitress does.
"""

from __future__ import annotations

import logging
import sys

from benchmarks.http_servers.apps import wsgi_app
from benchmarks.http_servers.cli import parse_args, ready
from fsmio import GAplic
from fsmio.protocols.wsgi import GWsgiServer


def main(argv: list[str] | None = None) -> int:
    args = parse_args("fsmio GWsgiServer with the WSGI app", argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with GAplic("http_wsgi") as gaplic:
        server = gaplic.create_gobj(
            "server", GWsgiServer, None, host=args.host, port=args.port, application=wsgi_app
        )
        ready(args.host, server.config.port)
        gaplic.start()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
