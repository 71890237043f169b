"""aiohttp's own server (``web.Application``) answering the benchmark's resources, on uvloop.

    python -m benchmarks.http_servers.aiohttp_web --host 127.0.0.1 --port 0

aiohttp has its own handler interface (not ASGI): the handler returns a ``web.Response``
with the same bytes and content type as the other servers.  The access log is off, and
the loop is uvloop, as for every other server of the benchmark.
"""

from __future__ import annotations

import asyncio
import signal

import uvloop
from aiohttp import web

from benchmarks.http_servers.apps import CONTENT_TYPE, ROUTES
from benchmarks.http_servers.cli import listening_socket, parse_args, ready


def make_app() -> web.Application:
    app = web.Application()
    for path, body in ROUTES.items():

        async def handler(_request: web.Request, body: bytes = body) -> web.Response:
            return web.Response(body=body, content_type=CONTENT_TYPE.decode())

        app.router.add_get(path, handler)
    return app


async def serve(host: str, port: int) -> None:
    runner = web.AppRunner(make_app(), access_log=None, handle_signals=False)
    await runner.setup()
    sock = listening_socket(host, port)
    await web.SockSite(runner, sock).start()
    ready(host, sock.getsockname()[1])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args("aiohttp's web.Application", argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
