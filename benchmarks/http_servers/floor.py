"""The floor of the HTTP benchmark: a bare uvloop ``asyncio.Protocol`` on httptools.

    python -m benchmarks.http_servers.floor --host 127.0.0.1 --port 0

No framework, no application interface, no limits: it parses with httptools, answers each
complete request with one ``writelines`` of a cached head and the body object as it is
(no copy), keeps the connection alive unless the client asked otherwise, and stops
reading while the transport's buffer is above its high-water mark.  What any Python HTTP
server on uvloop + httptools can at best spend per request.
"""

from __future__ import annotations

import asyncio
import signal
import time
from email.utils import formatdate
from typing import Any

import httptools
import uvloop

from benchmarks.http_servers.apps import CONTENT_TYPE, body_for
from benchmarks.http_servers.cli import listening_socket, parse_args, ready

_REASON = {200: b"OK", 404: b"Not Found"}
_heads: dict[str, bytes] = {}  # path (or "" for any 404) -> head
_heads_second = 0


def _head(url: bytes) -> tuple[bytes, bytes]:
    """The response head and body for ``url``; heads are rebuilt once a second (Date)."""
    global _heads_second
    now = int(time.time())
    if now != _heads_second:
        _heads.clear()
        _heads_second = now
    path = url.split(b"?", 1)[0].decode("latin-1")
    status, body = body_for(path)
    key = path if status == 200 else ""
    head = _heads.get(key)
    if head is None:
        head = _heads[key] = (
            b"HTTP/1.1 %d %s\r\ndate: %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n"
            % (status, _REASON[status], formatdate(now, usegmt=True).encode(), CONTENT_TYPE,
               len(body))
        )  # fmt: skip
    return head, body


class HttpProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        head, body = _head(self.url)
        self.url = b""
        self.transport.writelines((head, body))
        if not self.parser.should_keep_alive():
            self.transport.close()

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HttpProtocol, sock=listening_socket(host, port))
    ready(host, server.sockets[0].getsockname()[1])
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args("the floor: a bare uvloop Protocol on httptools", argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
