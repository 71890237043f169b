"""WebSocket echo servers for benchmarks/ws_bench.py, each the same echo on another stack.

    python -m benchmarks.ws_servers SERVER --port P

SERVER is one of:

* ``fsmio`` — ``fsmio.examples.ws_echo``: a GServerSock, a GWebSocket per connection, a
  user gobj echoing every ``EV_ON_MESSAGE`` with ``EV_SEND_MESSAGE`` (uvloop).
* ``websockets`` — the websockets library's own asyncio server (uvloop), compression off.
* ``aiohttp`` — an aiohttp ``WebSocketResponse`` handler (uvloop), compression off.
* ``uvicorn`` — uvicorn (uvloop, its default WebSocket implementation) with a raw ASGI app.
* ``fsmio-asgi`` — the same raw ASGI app on fsmio's ``GAsgiServer`` (its websocket scope
  on GWebSocket, uvloop).
* ``floor`` — a bare uvloop ``Protocol`` feeding websockets' sans-IO ``ServerProtocol``:
  the least any server built on that layer can cost.

Prints ``READY <port>`` once listening; runs until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any


def _uvloop() -> None:
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _ready(port: int) -> None:
    print(f"READY {port}", flush=True)


async def _forever() -> None:
    await asyncio.Event().wait()


def run_websockets(port: int) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with serve(echo, "127.0.0.1", port, compression=None):
            _ready(port)
            await _forever()

    _uvloop()
    asyncio.run(main())


def run_aiohttp(port: int) -> None:
    from aiohttp import WSMsgType, web

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/ws", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        _ready(port)
        await _forever()

    _uvloop()
    asyncio.run(main())


async def _asgi_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        event = await receive()
        if event["type"] != "websocket.receive":
            return
        if event.get("text") is not None:
            await send({"type": "websocket.send", "text": event["text"]})
        else:
            await send({"type": "websocket.send", "bytes": event["bytes"]})


def run_uvicorn(port: int) -> None:
    import uvicorn

    config = uvicorn.Config(
        _asgi_echo,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.ensure_future(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        _ready(port)
        await task

    _uvloop()
    asyncio.run(main())


def run_floor(port: int) -> None:
    from websockets.frames import Opcode
    from websockets.http11 import Request
    from websockets.server import ServerProtocol

    class Floor(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.proto = ServerProtocol(max_size=1048576)

        def data_received(self, data: bytes) -> None:
            proto = self.proto
            proto.receive_data(data)
            for event in proto.events_received():
                if isinstance(event, Request):
                    proto.send_response(proto.accept(event))
                elif event.opcode is Opcode.TEXT:
                    proto.send_text(event.data)
                elif event.opcode is Opcode.BINARY:
                    proto.send_binary(event.data)
            writes = proto.data_to_send()
            if writes:
                if writes[-1] == b"":
                    self.transport.write(b"".join(writes))
                    self.transport.close()
                else:
                    self.transport.write(b"".join(writes))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_server(Floor, "127.0.0.1", port)
        _ready(port)
        await _forever()

    _uvloop()
    asyncio.run(main())


def run_fsmio(port: int) -> None:
    from fsmio.examples import ws_echo

    sys.exit(ws_echo.main(["--host", "127.0.0.1", "--port", str(port)]))


def run_fsmio_asgi(port: int) -> None:
    from fsmio import GAplic
    from fsmio.protocols.asgi.c_asgi_server import GAsgiServer

    with GAplic("ws-bench-asgi") as gaplic:
        gaplic.create_gobj(
            "asgi",
            GAsgiServer,
            gaplic,
            application=_asgi_echo,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            ready_callback=lambda: _ready(port),
        )
        gaplic.start()


SERVERS = {
    "fsmio": run_fsmio,
    "fsmio-asgi": run_fsmio_asgi,
    "websockets": run_websockets,
    "aiohttp": run_aiohttp,
    "uvicorn": run_uvicorn,
    "floor": run_floor,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("server", choices=sorted(SERVERS))
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    SERVERS[args.server](args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
