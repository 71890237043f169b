"""GAsgiServer over real loopback sockets: a Starlette application, and raw ASGI apps."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from fsmio import GAplic, GAplicThreadWorker, GConfigValidateError
from fsmio.protocols.asgi import GAsgiServer
from tests.protocols.serving import post_chunked, serving, wait_until

# ----------------------------------------------------------------------------------------
#   A Starlette application
# ----------------------------------------------------------------------------------------
EVENTS: list[str] = []
DISCONNECTED = threading.Event()


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    EVENTS.append("startup")
    yield {"greeting": "hello from the lifespan"}
    EVENTS.append("shutdown")


async def home(request: Request) -> Response:
    return JSONResponse(
        {
            "greeting": request.state.greeting,
            "path": request.url.path,
            "root_path": request.scope["root_path"],
            "query": dict(request.query_params),
            "client": request.client.host if request.client else None,
        }
    )


async def item(request: Request) -> Response:
    return PlainTextResponse(f"item {request.path_params['n']}")


async def upload(request: Request) -> Response:
    digest = hashlib.sha256()
    size = 0
    async for piece in request.stream():
        digest.update(piece)
        size += len(piece)
    return JSONResponse({"size": size, "sha256": digest.hexdigest()})


async def body(request: Request) -> Response:
    return PlainTextResponse((await request.body())[::-1])


async def stream(request: Request) -> Response:
    async def numbers() -> AsyncIterator[bytes]:
        for n in range(100):
            yield f"{n}\n".encode()
            if n % 10 == 0:
                await asyncio.sleep(0)

    return StreamingResponse(numbers(), media_type="text/plain")


async def big_stream(request: Request) -> Response:
    async def blocks() -> AsyncIterator[bytes]:
        block = b"s" * 65536
        for _ in range(128):  # 8 MiB
            yield block

    return StreamingResponse(blocks(), media_type="application/octet-stream")


async def wait_disconnect(request: Request) -> Response:
    for _ in range(1000):
        if await request.is_disconnected():
            DISCONNECTED.set()
            break
        await asyncio.sleep(0.01)
    return PlainTextResponse("late")


async def boom(request: Request) -> Response:
    raise RuntimeError("starlette handler failed")


def starlette_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/", home),
            Route("/items/{n:int}", item),
            Route("/upload", upload, methods=["POST"]),
            Route("/body", body, methods=["POST"]),
            Route("/stream", stream),
            Route("/big", big_stream),
            Route("/wait", wait_disconnect),
            Route("/boom", boom),
        ],
        lifespan=lifespan,
    )


def test_starlette_routes_body_and_lifespan_state() -> None:
    EVENTS.clear()
    with serving(GAsgiServer, application=starlette_app()) as srv:
        assert EVENTS == ["startup"]
        with httpx.Client(base_url=srv.url, timeout=10) as client:
            home_reply = client.get("/?a=1&b=two")
            assert home_reply.status_code == 200
            assert home_reply.json() == {
                "greeting": "hello from the lifespan",
                "path": "/",
                "root_path": "",
                "query": {"a": "1", "b": "two"},
                "client": "127.0.0.1",
            }
            assert client.get("/items/42").text == "item 42"
            assert client.get("/items/x").status_code == 404
            assert client.post("/body", content=b"abc").text == "cba"
            assert client.get("/upload").status_code == 405
    assert EVENTS == ["startup", "shutdown"]


def test_starlette_streaming_response() -> None:
    with (
        serving(GAsgiServer, application=starlette_app()) as srv,
        httpx.Client(timeout=10) as client,
        client.stream("GET", srv.url + "/stream") as response,
    ):
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        text = b"".join(response.iter_bytes()).decode()
    assert text == "".join(f"{n}\n" for n in range(100))


def test_starlette_big_streaming_response_to_a_slow_reader() -> None:
    """Starlette listens for http.disconnect (receive) while it streams (send): both wait
    on the connection without blocking each other."""
    with (
        serving(GAsgiServer, application=starlette_app()) as srv,
        httpx.Client(timeout=30) as client,
        client.stream("GET", srv.url + "/big") as response,
    ):
        received = 0
        for n, piece in enumerate(response.iter_bytes()):
            received += len(piece)
            if n < 20:
                time.sleep(0.01)  # a slow start: the server waits on EV_TRANSMIT_READY
    assert received == 128 * 65536


@pytest.mark.parametrize("size", [0, 1000, 3 * 1024 * 1024])
def test_starlette_request_body_streamed(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    with (
        serving(GAsgiServer, application=starlette_app()) as srv,
        httpx.Client(timeout=30) as client,
    ):
        fixed = client.post(srv.url + "/upload", content=payload)
        status, chunked = post_chunked(srv.port, "/upload", [payload[:10], payload[10:]])
    expected = {"size": size, "sha256": hashlib.sha256(payload).hexdigest()}
    assert fixed.json() == expected
    assert status == 200
    assert json.loads(chunked) == expected


def test_http_disconnect_reaches_the_application() -> None:
    DISCONNECTED.clear()
    with serving(GAsgiServer, application=starlette_app()) as srv:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        sock.sendall(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: bool(srv.server._cycles), what="the request is in the application")
        sock.close()
        assert DISCONNECTED.wait(10), "the application never saw http.disconnect"


def test_application_error_is_a_500_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.ERROR),
        serving(GAsgiServer, application=starlette_app()) as srv,
        httpx.Client(timeout=10) as client,
    ):
        response = client.get(srv.url + "/boom")
        assert client.get(srv.url + "/items/1").status_code == 200  # the server goes on
    assert response.status_code == 500
    assert b"starlette handler failed" not in response.content
    records = [r for r in caplog.records if "starlette handler failed" in str(r.exc_info)]
    assert len(records) == 1
    assert records[0].getMessage().startswith("Exception in ASGI application")


def test_lifespan_startup_failure_stops_the_server(caplog: pytest.LogCaptureFixture) -> None:
    @contextlib.asynccontextmanager
    async def failing(app: Starlette) -> AsyncIterator[None]:
        raise ConnectionError("database unreachable")
        yield  # pragma: no cover

    app = Starlette(routes=[Route("/", home)], lifespan=failing)
    gaplic = GAplic("asgi-startup-fails")
    try:
        server = gaplic.create_gobj(
            "server", GAsgiServer, gaplic, application=app, host="127.0.0.1", port=0
        )
        worker = GAplicThreadWorker(gaplic)
        with caplog.at_level(logging.ERROR):
            worker.start()
            worker.join(15)
        assert not worker.is_alive(), "the GAplic did not stop after the failed start-up"
        assert gaplic.exit_code == 3
        assert not server.serving
        assert "database unreachable" in (server.startup_error or "")
        messages = [r.getMessage() for r in caplog.records]
        assert any(
            "ASGI lifespan startup failed" in m and "database unreachable" in m for m in messages
        ), messages
    finally:
        gaplic.close()


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan here")
    path = scope["path"][len(scope["root_path"]) :]
    if path.startswith("/scope"):
        text = f"{scope['root_path']}|{scope['path']}|{scope['raw_path']!r}|{scope['scheme']}"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": text.encode()})
    elif path == "/nothing":
        return
    elif path == "/half":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
    elif path == "/bad":
        await send({"type": "http.response.start", "status": "200"})
    elif path == "/upgrade":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["type"].encode()})
    elif path == "/big":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        chunk = b"b" * 65536
        for _ in range(256):  # 16 MiB
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def test_root_path_and_raw_asgi_app() -> None:
    with serving(GAsgiServer, application=raw_app, root_path="/api/") as srv:
        status = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        try:
            status.request("GET", "/scope%20x")
            response = status.getresponse()
            assert response.read() == b"/api|/api/scope x|b'/api/scope%20x'|http"
        finally:
            status.close()


def test_incomplete_responses(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.ERROR),
        serving(GAsgiServer, application=raw_app) as srv,
        httpx.Client(base_url=srv.url, timeout=10) as client,
    ):
        assert client.get("/nothing").status_code == 500
        assert client.get("/bad").status_code == 500
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/half")
    assert "without starting response" in caplog.text
    assert "without completing response" in caplog.text
    assert "'status' must be an int" in caplog.text


def test_websocket_upgrade_gets_a_plain_http_response_without_websocket_scope() -> None:
    with serving(GAsgiServer, application=raw_app, websocket=None) as srv:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        try:
            sock.sendall(
                b"GET /upgrade HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            data = b""
            for _ in range(100):
                piece = sock.recv(4096)
                if not piece:
                    break
                data += piece
                if data.endswith(b"http"):
                    break
        finally:
            sock.close()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"\r\n\r\nhttp")


def test_a_client_that_does_not_read_slows_the_producer() -> None:
    """send() waits for EV_TRANSMIT_READY: the response is produced at the client's pace."""
    with serving(GAsgiServer, application=raw_app) as srv:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        try:
            sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_until(lambda: bool(srv.server._cycles))
            channel = next(iter(srv.server._cycles))
            time.sleep(0.5)
            pending = channel.output_pending()
            assert pending <= 2 * 65536 + 4096, pending
            received = 0
            for _ in range(100_000):
                piece = sock.recv(1 << 20)
                if not piece:
                    break
                received += len(piece)
                if received >= 16 * 1024 * 1024:
                    break
            assert received >= 16 * 1024 * 1024
        finally:
            sock.close()


def test_bad_configuration() -> None:
    with GAplic("asgi-bad") as gaplic:
        with pytest.raises(GConfigValidateError, match="lifespan"):
            gaplic.create_gobj("a", GAsgiServer, gaplic, application=raw_app, lifespan="maybe")
        with pytest.raises(GConfigValidateError, match="root_path"):
            gaplic.create_gobj("b", GAsgiServer, gaplic, application=raw_app, root_path="api")


def test_stopping_lets_a_running_request_finish() -> None:
    entered = threading.Event()

    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        entered.set()
        await asyncio.sleep(0.3)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"finished"})

    results: list[httpx.Response] = []
    with serving(GAsgiServer, application=slow, lifespan="off") as srv:
        client = threading.Thread(
            target=lambda: results.append(httpx.get(srv.url + "/", timeout=10))
        )
        client.start()
        assert entered.wait(10)
    client.join(10)
    assert results and results[0].status_code == 200
    assert results[0].text == "finished"


@pytest.mark.parametrize(("mode", "stops"), [("on", True), ("auto", False), ("off", False)])
def test_lifespan_modes_with_an_app_without_lifespan(mode: str, stops: bool) -> None:
    gaplic = GAplic(f"asgi-lifespan-{mode}")
    ready = threading.Event()
    try:
        server = gaplic.create_gobj(
            "server",
            GAsgiServer,
            gaplic,
            application=raw_app,  # raises on the lifespan scope
            host="127.0.0.1",
            port=0,
            lifespan=mode,
            ready_callback=ready.set,
        )
        worker = GAplicThreadWorker(gaplic)
        worker.start()
        if stops:
            worker.join(15)
            assert not worker.is_alive()
            assert gaplic.exit_code == 3
            assert "no lifespan here" in (server.startup_error or "")
        else:
            assert ready.wait(10)
            response = httpx.get(f"http://127.0.0.1:{server.config.port}/upgrade", timeout=10)
            assert response.text == "http"
            worker.stop(15)
            assert not worker.is_alive()
            assert gaplic.exit_code == 0
    finally:
        gaplic.close()


def test_pipelined_requests_are_answered_in_order() -> None:
    async def echo_path(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"].endswith("/slow"):
            await asyncio.sleep(0.05)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    paths = [f"/p{n}" + ("/slow" if n % 5 == 0 else "") for n in range(16)]
    with serving(GAsgiServer, application=echo_path, lifespan="off") as srv:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        try:
            sock.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in paths))
            data = b""
            for _ in range(10_000):
                if data.count(b"HTTP/1.1 200 OK") == len(paths) and data.endswith(
                    paths[-1].encode()
                ):
                    break
                piece = sock.recv(65536)
                assert piece, data
                data += piece
        finally:
            sock.close()
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in data.split(b"HTTP/1.1 200 OK")[1:]]
    assert [b.decode() for b in bodies] == paths
