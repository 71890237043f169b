"""waitress serving the benchmark's WSGI app, with its default thread pool (4 threads).

python -m benchmarks.http_servers.waitress_wsgi --host 127.0.0.1 --port 0
"""

from __future__ import annotations

import waitress

from benchmarks.http_servers.apps import wsgi_app
from benchmarks.http_servers.cli import listening_socket, parse_args, ready


def main(argv: list[str] | None = None) -> int:
    args = parse_args("waitress with the WSGI app", argv)
    sock = listening_socket(args.host, args.port)
    ready(args.host, sock.getsockname()[1])
    waitress.serve(wsgi_app, sockets=[sock], _quiet=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
