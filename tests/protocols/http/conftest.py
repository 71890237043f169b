"""Fixtures of the HTTP tests: a GHttpServer with a scriptable application gobj, run by a
GAplic in a thread so that blocking clients (raw sockets, http.client, httpx) can talk to
it from the test."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fsmio import GAplic, GObj
from fsmio.core.event import Event
from fsmio.protocols.http.c_http_server import GHttpServer

Hook = Callable[["App", Event], Any]


def _answer(self: App, event: Event) -> Any:
    request = event.request
    return self.send_event(
        event.channel,
        "EV_HTTP_RESPONSE",
        request=request,
        status=200,
        headers=[("Content-Type", "text/plain")],
        body=request.body or b"hello",
    )


def _dispatch(self: App, event: Event) -> Any:
    self.events.append((event.event_name, dict(event.kw)))
    hook = self.hooks.get(event.event_name)
    if hook is not None:
        return hook(self, event)
    if event.event_name == "EV_HTTP_REQUEST":
        return _answer(self, event)
    return None


APP_FSM: dict[str, Any] = {
    "event_list": (
        "EV_HTTP_CHANNEL_OPENED: bottom input",
        "EV_HTTP_REQUEST: bottom input",
        "EV_HTTP_REQUEST_BODY: bottom input",
        "EV_HTTP_CHANNEL_CLOSED: bottom input",
        "EV_TRANSMIT_READY: bottom input",
        "EV_CALL: input",
    ),
    "state_list": ("ST_IDLE",),
    "machine": {
        "ST_IDLE": (
            ("EV_HTTP_CHANNEL_OPENED", _dispatch, None),
            ("EV_HTTP_REQUEST", _dispatch, None),
            ("EV_HTTP_REQUEST_BODY", _dispatch, None),
            ("EV_HTTP_CHANNEL_CLOSED", _dispatch, None),
            ("EV_TRANSMIT_READY", _dispatch, None),
            ("EV_CALL", lambda self, ev: ev.fn(), None),
        )
    },
}


class App(GObj):
    """Records every event; ``hooks[event_name](self, event)`` overrides the default
    (EV_HTTP_REQUEST: 200 with the body, or ``hello``)."""

    def __init__(self) -> None:
        GObj.__init__(self, APP_FSM)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.hooks: dict[str, Hook] = {}

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def requests(self) -> list[Any]:
        return [kw["request"] for name, kw in self.events if name == "EV_HTTP_REQUEST"]

    def close_reasons(self) -> list[str]:
        return [kw["reason"] for name, kw in self.events if name == "EV_HTTP_CHANNEL_CLOSED"]


class HttpServerThread:
    """A GAplic running a GHttpServer (subscriber: an ``App``) in a thread."""

    def __init__(self, **server_kw: Any) -> None:
        self.gaplic = GAplic(f"http-{uuid.uuid4().hex[:8]}", **server_kw.pop("gaplic_kw", {}))
        self.app: App = self.gaplic.create_gobj("app", App, self.gaplic)
        self.server: GHttpServer = self.gaplic.create_gobj(
            "http", GHttpServer, self.app, host="127.0.0.1", port=0, **server_kw
        )
        self.port = int(self.server.config.port)
        self.thread = threading.Thread(target=self.gaplic.start, daemon=True)

    def start(self) -> HttpServerThread:
        self.thread.start()
        return self

    def call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run ``fn()`` on the server's loop thread and return its result."""
        done = threading.Event()
        result: list[Any] = []

        def run() -> None:
            try:
                result.append(fn())
            finally:
                done.set()

        self.gaplic.loop.call_soon_threadsafe(run)
        assert done.wait(timeout), "the server loop did not run the call"
        return result[0] if result else None

    def wait_for(self, until: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not reached within {timeout} s")
            time.sleep(0.005)

    def connect(self, timeout: float = 5.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def stop(self) -> None:
        self.gaplic.stop()
        self.thread.join(15)
        assert not self.thread.is_alive(), "the server thread did not stop"
        self.gaplic.close()


@pytest.fixture
def http_server() -> Iterator[Callable[..., HttpServerThread]]:
    """``http_server(**GHttpServer config)`` starts a server; all are stopped after."""
    started: list[HttpServerThread] = []

    def make(**kw: Any) -> HttpServerThread:
        server = HttpServerThread(**kw)
        started.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in started:
            server.stop()


def read_until_close(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes (bounded by ``timeout``)."""
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            break
        if not data:
            break
        chunks.append(data)
    else:
        raise AssertionError("the server did not close the connection in time")
    return b"".join(chunks)


def exchange(server: HttpServerThread, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` on a new connection and return everything until the server closes."""
    with server.connect(timeout) as sock:
        sock.sendall(data)
        return read_until_close(sock, timeout)


def parse_responses(
    data: bytes, heads: tuple[bool, ...] = ()
) -> list[tuple[int, dict[str, str], bytes]]:
    """Split a byte stream of HTTP/1.x responses into (status, headers with lower-case
    names, body); ``heads[i]`` True: the i-th answers a HEAD (no body).  A body without
    Content-Length or chunked framing runs to the end of the data."""
    out: list[tuple[int, dict[str, str], bytes]] = []
    rest = data
    while rest:
        end = rest.find(b"\r\n\r\n")
        assert end >= 0, f"incomplete response head: {rest[:200]!r}"
        lines = rest[:end].split(b"\r\n")
        rest = rest[end + 4 :]
        status = int(lines[0].split(b" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.decode().lower()] = value.strip().decode("latin-1")
        head_only = len(out) < len(heads) and heads[len(out)]
        if head_only or status < 200 or status in (204, 304):
            body = b""
        elif "content-length" in headers:
            n = int(headers["content-length"])
            body, rest = rest[:n], rest[n:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                line_end = rest.index(b"\r\n")
                size = int(rest[:line_end].split(b";")[0], 16)
                rest = rest[line_end + 2 :]
                if size == 0:
                    trailer_end = rest.index(b"\r\n")
                    while trailer_end != 0:
                        rest = rest[trailer_end + 2 :]
                        trailer_end = rest.index(b"\r\n")
                    rest = rest[2:]
                    break
                body += rest[:size]
                assert rest[size : size + 2] == b"\r\n"
                rest = rest[size + 2 :]
        else:
            body, rest = rest, b""
        out.append((status, headers, body))
    return out
