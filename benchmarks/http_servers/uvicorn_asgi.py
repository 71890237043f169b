"""uvicorn serving the raw ASGI app of the benchmark.

    python -m benchmarks.http_servers.uvicorn_asgi --host 127.0.0.1 --port 0

The same configuration as ``uvicorn benchmarks.http_servers.apps:asgi_app --workers 1
--loop uvloop --http httptools --no-access-log`` (uvicorn[standard]'s fast path), run
through ``uvicorn.Server`` so that it can listen on a socket bound here to port 0.
"""

from __future__ import annotations

import uvicorn

from benchmarks.http_servers.apps import asgi_app
from benchmarks.http_servers.cli import listening_socket, parse_args, ready


def main(argv: list[str] | None = None) -> int:
    args = parse_args("uvicorn with the raw ASGI app", argv)
    sock = listening_socket(args.host, args.port)
    config = uvicorn.Config(
        asgi_app,
        loop="uvloop",
        http="httptools",
        access_log=False,
        workers=1,
        log_level="warning",
    )
    # Connections made before uvicorn accepts wait in the backlog: ready already.
    ready(args.host, sock.getsockname()[1])
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
