"""GAsgiServer's ``websocket`` scope over real loopback sockets: a Starlette WebSocket
endpoint unchanged, raw ASGI apps for the details (denial response, close codes,
backpressure), all with the ``websockets`` client."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from fsmio import GConfigValidateError
from fsmio.protocols.asgi import GAsgiServer
from tests.protocols.serving import serving, wait_until

# ----------------------------------------------------------------------------------------
#   A Starlette application with a WebSocket endpoint
# ----------------------------------------------------------------------------------------
SEEN: list[Any] = []


async def home(request: Request) -> Response:
    return PlainTextResponse("home")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept(
        subprotocol="chat.v1" if "chat.v1" in websocket.scope["subprotocols"] else None,
        headers=[(b"x-from", b"starlette")],
    )
    SEEN.append(("query", websocket.query_params.get("who")))
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                SEEN.append(("disconnect", message["code"]))
                return
            if message.get("text") is not None:
                text = message["text"]
                if text == "close please":
                    await websocket.close(code=4001, reason="asked")
                    return
                await websocket.send_text(text.upper())
            else:
                await websocket.send_bytes(message["bytes"][::-1])
    except WebSocketDisconnect as exc:  # pragma: no cover - receive() above returns it
        SEEN.append(("disconnect", exc.code))


async def json_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    data = await websocket.receive_json()
    await websocket.send_json({"got": data})
    await websocket.close()


async def refuse(websocket: WebSocket) -> None:
    await websocket.close()  # before accept: 403


async def deny(websocket: WebSocket) -> None:
    await websocket.send_denial_response(PlainTextResponse("go away", status_code=401))


async def boom(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.receive_text()
    raise RuntimeError("boom in the endpoint")


starlette_app = Starlette(
    routes=[
        Route("/", home),
        WebSocketRoute("/ws", echo),
        WebSocketRoute("/json", json_echo),
        WebSocketRoute("/refuse", refuse),
        WebSocketRoute("/deny", deny),
        WebSocketRoute("/boom", boom),
    ]
)


def _status_of(url: str) -> int:
    try:
        with connect(url, open_timeout=10):
            return 101
    except InvalidStatus as exc:
        return int(exc.response.status_code)


def test_starlette_websocket_endpoint_runs_unchanged() -> None:
    SEEN.clear()
    with serving(GAsgiServer, application=starlette_app) as srv:
        assert httpx.get(srv.url + "/", timeout=10).text == "home"
        url = f"ws://127.0.0.1:{srv.port}"
        with connect(url + "/ws?who=me", subprotocols=["chat.v1"], open_timeout=10) as ws:
            assert ws.subprotocol == "chat.v1"
            assert ws.response.headers["x-from"] == "starlette"
            ws.send("hello")
            assert ws.recv(timeout=10) == "HELLO"
            ws.send(b"\x01\x02\x03")
            assert ws.recv(timeout=10) == b"\x03\x02\x01"
            for n in range(50):  # many in a row, answered in order
                ws.send(f"m{n}")
            assert [ws.recv(timeout=10) for _ in range(50)] == [f"M{n}" for n in range(50)]
        wait_until(lambda: ("disconnect", 1000) in SEEN, 10)
        assert ("query", "me") in SEEN
        with connect(url + "/ws", open_timeout=10) as ws:
            assert ws.subprotocol is None
            ws.send("close please")
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
            assert ws.close_code == 4001 and ws.close_reason == "asked"
        with connect(url + "/json", open_timeout=10) as ws:
            ws.send('{"a": 1}')
            assert ws.recv(timeout=10) == '{"got":{"a":1}}'
        assert _status_of(url + "/refuse") == 403
        assert _status_of(url + "/nowhere") == 403  # Starlette closes unknown routes
        wait_until(lambda: not srv.server._ws_cycles and not srv.server._tasks, 10)


def test_denial_response_extension() -> None:
    with serving(GAsgiServer, application=starlette_app) as srv:
        try:
            with connect(f"ws://127.0.0.1:{srv.port}/deny", open_timeout=10):
                pytest.fail("the upgrade should have been denied")
        except InvalidStatus as exc:
            assert exc.response.status_code == 401
            assert exc.response.body == b"go away"


def test_an_exception_after_accept_closes_1011(caplog: pytest.LogCaptureFixture) -> None:
    with (
        serving(GAsgiServer, application=starlette_app) as srv,
        connect(f"ws://127.0.0.1:{srv.port}/boom", open_timeout=10) as ws,
    ):
        ws.send("x")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 1011
    assert "boom in the endpoint" in caplog.text


# ----------------------------------------------------------------------------------------
#   Raw ASGI applications
# ----------------------------------------------------------------------------------------
RAW: dict[str, Any] = {}


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan")
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["type"].encode()})
        return
    path = scope["path"]
    RAW["scope"] = scope
    assert await receive() == {"type": "websocket.connect"}
    if path == "/return-early":
        return  # neither accept nor close: 403
    if path == "/raise-early":
        raise RuntimeError("before accept")
    if path == "/bad-accept":
        await send({"type": "websocket.accept", "subprotocol": 5})
        return
    if path == "/bad-header":
        await send({"type": "websocket.accept", "headers": [(b"x-a", b"1\r\nx-b: 2")]})
        return
    await send({"type": "websocket.accept"})
    if path == "/slow":
        # Reads nothing until told: the client's messages wait in the GWebSocket / kernel.
        gate: asyncio.Event = RAW["gate"]
        await gate.wait()
        count = 0
        for _ in range(100_000):
            message = await receive()
            if message["type"] == "websocket.disconnect":
                break
            count += 1
            if count == RAW["expect"]:
                await send({"type": "websocket.send", "text": f"got {count}"})
        RAW["count"] = count
        return
    if path == "/after-close":
        await send({"type": "websocket.close", "code": 1000})
        message = await receive()
        RAW["after"] = message
        try:
            await send({"type": "websocket.send", "text": "late"})
        except OSError as exc:
            RAW["send_error"] = type(exc).__name__
        return
    if path == "/flood":
        RAW["sent"] = 0
        for n in range(RAW["n_flood"]):
            await send({"type": "websocket.send", "bytes": n.to_bytes(4, "big") * 16384})
            RAW["sent"] = n + 1
        await send({"type": "websocket.close", "code": 1000})
        return
    if path == "/return-open":
        await send({"type": "websocket.send", "bytes": b"bye"})
        return  # open: the server closes 1000
    message = await receive()
    RAW["received"] = message
    message = await receive()
    RAW["disconnect"] = message


def test_raw_scope_and_disconnect_code() -> None:
    RAW.clear()
    with serving(GAsgiServer, application=raw_app, lifespan="off", root_path="/api") as srv:
        with connect(
            f"ws://127.0.0.1:{srv.port}/x%20y?q=1", subprotocols=["a", "b"], open_timeout=10
        ) as ws:
            ws.send("one")
            ws.close(code=4321, reason="done")
        wait_until(lambda: "disconnect" in RAW, 10)
    scope = RAW["scope"]
    assert scope["type"] == "websocket" and scope["scheme"] == "ws"
    assert scope["path"] == "/api/x y" and scope["raw_path"] == b"/api/x%20y"
    assert scope["query_string"] == b"q=1" and scope["root_path"] == "/api"
    assert scope["subprotocols"] == ["a", "b"]
    assert scope["asgi"]["spec_version"] == "2.4"
    assert "websocket.http.response" in scope["extensions"]
    assert RAW["received"] == {"type": "websocket.receive", "text": "one"}
    assert RAW["disconnect"] == {"type": "websocket.disconnect", "code": 4321, "reason": "done"}


@pytest.mark.parametrize(("path", "status"), [("/return-early", 403), ("/raise-early", 500)])
def test_no_accept_is_an_http_error(path: str, status: int) -> None:
    with serving(GAsgiServer, application=raw_app, lifespan="off") as srv:
        assert _status_of(f"ws://127.0.0.1:{srv.port}{path}") == status


def test_bad_accept_message_is_a_500(caplog: pytest.LogCaptureFixture) -> None:
    with serving(GAsgiServer, application=raw_app, lifespan="off") as srv:
        assert _status_of(f"ws://127.0.0.1:{srv.port}/bad-accept") == 500
        assert _status_of(f"ws://127.0.0.1:{srv.port}/bad-header") == 500
    assert "'subprotocol' must be a str" in caplog.text
    assert "CR, LF or NUL" in caplog.text


def test_returning_open_closes_1000_and_send_after_close_raises() -> None:
    RAW.clear()
    with serving(GAsgiServer, application=raw_app, lifespan="off") as srv:
        with connect(f"ws://127.0.0.1:{srv.port}/return-open", open_timeout=10) as ws:
            assert ws.recv(timeout=10) == b"bye"
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
            assert ws.close_code == 1000
        with (
            connect(f"ws://127.0.0.1:{srv.port}/after-close", open_timeout=10) as ws,
            pytest.raises(ConnectionClosed),
        ):
            ws.recv(timeout=10)
        wait_until(lambda: "send_error" in RAW, 10)
    assert RAW["after"]["type"] == "websocket.disconnect" and RAW["after"]["code"] == 1000
    assert RAW["send_error"] == "ClientDisconnected"


def test_websocket_config_is_checked() -> None:
    with (
        pytest.raises(GConfigValidateError, match="set by the server"),
        serving(GAsgiServer, application=raw_app, websocket={"ack_messages": False}),
    ):
        pass


@pytest.mark.slow
def test_a_slow_application_bounds_what_is_buffered() -> None:
    """The application reads nothing: at ``max_queue`` messages the GWebSocket stops
    reading, so the rest waits in the kernel (the client's sends block), not in memory."""
    RAW.clear()
    n_messages, size = 2000, 16 * 1024
    with serving(
        GAsgiServer,
        application=raw_app,
        lifespan="off",
        websocket={"max_queue": 4},
    ) as srv:
        RAW["gate"] = asyncio.Event()
        RAW["expect"] = n_messages
        sent = 0
        done = threading.Event()
        with connect(f"ws://127.0.0.1:{srv.port}/slow", open_timeout=10) as ws:

            def sender() -> None:
                nonlocal sent
                for _ in range(n_messages):
                    ws.send(b"x" * size)
                    sent += 1
                done.set()

            thread = threading.Thread(target=sender, daemon=True)
            thread.start()
            # 32 MiB cannot all fit in the kernel buffers: the sender must block
            assert not done.wait(1.5), "everything was read although nothing was consumed"
            ws_cycle = next(iter(srv.server._ws_cycles.values()))
            assert len(ws_cycle.messages) <= 4
            srv.gaplic.loop.call_soon_threadsafe(RAW["gate"].set)
            assert done.wait(30)
            assert ws.recv(timeout=30) == f"got {n_messages}"
            thread.join(10)
        wait_until(lambda: "count" in RAW, 10)
    assert RAW["count"] == n_messages


@pytest.mark.slow
def test_a_client_that_does_not_read_slows_the_sender() -> None:
    """``websocket.send`` waits while the connection has output waiting: an application
    sending 25 MiB to a client that reads nothing is held back, not buffered."""
    RAW.clear()
    RAW["n_flood"] = n = 400  # 64 KiB each
    with (
        serving(GAsgiServer, application=raw_app, lifespan="off") as srv,
        connect(f"ws://127.0.0.1:{srv.port}/flood", open_timeout=10, max_size=None) as ws,
    ):
        wait_until(lambda: RAW.get("sent", 0) > 0, 10)
        time_to_fill = 1.0
        threading.Event().wait(time_to_fill)
        assert RAW["sent"] < n, "everything was sent although the client read nothing"
        for k in range(n):
            assert ws.recv(timeout=30) == k.to_bytes(4, "big") * 16384
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 1000
