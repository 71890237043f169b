"""fsmio's ``GAsgiServer`` hosting the benchmark's raw ASGI app (the one uvicorn runs).

python -m benchmarks.http_servers.fsmio_asgi --host 127.0.0.1 --port 0
"""

from __future__ import annotations

import logging
import sys

from benchmarks.http_servers.apps import asgi_app
from benchmarks.http_servers.cli import parse_args, ready
from fsmio import GAplic
from fsmio.protocols.asgi import GAsgiServer


def main(argv: list[str] | None = None) -> int:
    args = parse_args("fsmio GAsgiServer with the raw ASGI app", argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with GAplic("http_asgi") as gaplic:
        server = gaplic.create_gobj(
            "server", GAsgiServer, None, host=args.host, port=args.port, application=asgi_app
        )
        ready(args.host, server.config.port)
        gaplic.start()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
