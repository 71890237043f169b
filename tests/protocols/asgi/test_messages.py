"""ASGI scopes and message checks, without sockets."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from fsmio.protocols.asgi.lifespan import Lifespan
from fsmio.protocols.asgi.messages import (
    AsgiProtocolError,
    build_http_scope,
    response_body,
    response_start,
)


def test_http_scope() -> None:
    req = SimpleNamespace(
        method="GET",
        path="/a b",
        raw_path=b"/a%20b",
        query=b"q=1",
        http_version="1.1",
        headers=[(b"host", b"x")],
    )
    state = {"db": "conn"}
    scope = build_http_scope(
        req,
        server=("127.0.0.1", 8000),
        client=("127.0.0.1", 5000),
        root_path="/api",
        scheme="https",
        state=state,
    )
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["path"] == "/api/a b"
    assert scope["raw_path"] == b"/api/a%20b"
    assert scope["root_path"] == "/api"
    assert scope["query_string"] == b"q=1"
    assert scope["headers"] == [(b"host", b"x")]
    assert scope["scheme"] == "https"
    assert scope["server"] == ("127.0.0.1", 8000)
    assert scope["client"] == ("127.0.0.1", 5000)
    assert scope["state"] == state and scope["state"] is not state
    plain = build_http_scope(req, server=None, client=None)
    assert plain["path"] == "/a b" and plain["raw_path"] == b"/a%20b"
    assert "state" not in plain


def test_response_start_and_body() -> None:
    assert response_start({"status": 200, "headers": [(b"a", b"1"), [b"b", bytearray(b"2")]]}) == (
        200,
        [(b"a", b"1"), (b"b", b"2")],
    )
    assert response_start({"status": 204}) == (204, [])
    assert response_body({"body": b"x", "more_body": True}) == (b"x", True)
    assert response_body({}) == (b"", False)


@pytest.mark.parametrize(
    ("message", "match"),
    [
        ({"status": "200"}, "'status' must be an int"),
        ({"status": 99}, "'status' must be an int"),
        ({"status": 200, "headers": 5}, "'headers' must be an iterable"),
        ({"status": 200, "headers": [(b"a",)]}, "each header must be a"),
        ({"status": 200, "headers": [("a", b"1")]}, "a header name must be bytes"),
        ({"status": 200, "headers": [(b"a", "1")]}, "must be bytes"),
    ],
)
def test_bad_start(message: dict[str, Any], match: str) -> None:
    with pytest.raises(AsgiProtocolError, match=match):
        response_start(message)


@pytest.mark.parametrize(
    ("message", "match"),
    [
        ({"body": "text"}, "'body' must be bytes"),
        ({"body": b"", "more_body": 1}, "'more_body' must be a bool"),
    ],
)
def test_bad_body(message: dict[str, Any], match: str) -> None:
    with pytest.raises(AsgiProtocolError, match=match):
        response_body(message)


LOG = logging.getLogger("fsmio.test")


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 5))


def test_lifespan_startup_and_shutdown_with_state() -> None:
    events: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            events.append(message["type"])
            if message["type"] == "lifespan.startup":
                scope["state"]["ready"] = True
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def main() -> Lifespan:
        lifespan = Lifespan(app, "auto", LOG)
        assert await lifespan.startup()
        await lifespan.shutdown()
        return lifespan

    lifespan = run(main())
    assert events == ["lifespan.startup", "lifespan.shutdown"]
    assert lifespan.state == {"ready": True}
    assert lifespan.supported


def test_lifespan_startup_failed_message() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})

    async def main() -> Lifespan:
        lifespan = Lifespan(app, "auto", LOG)
        assert not await lifespan.startup()
        return lifespan

    assert run(main()).error == "database unreachable"


def test_lifespan_unsupported_auto_and_on(caplog: pytest.LogCaptureFixture) -> None:
    async def http_only(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http", "only http"

    async def main(mode: str) -> Lifespan:
        lifespan = Lifespan(http_only, mode, LOG)
        ok = await lifespan.startup()
        assert ok is (mode != "on")
        await lifespan.shutdown()
        return lifespan

    with caplog.at_level(logging.INFO, logger="fsmio.test"):
        run(main("auto"))
    assert "appears unsupported" in caplog.text
    assert "only http" in (run(main("on")).error or "")


def test_lifespan_off_never_calls_the_app() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("called")

    async def main() -> None:
        lifespan = Lifespan(app, "off", LOG)
        assert await lifespan.startup()
        await lifespan.shutdown()

    run(main())
    with pytest.raises(ValueError, match="expected one of auto, on, off"):
        Lifespan(app, "sometimes", LOG)
