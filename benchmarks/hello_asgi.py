"""The smallest ASGI application, for ``python -m benchmarks.workers --http``: every
request gets ``200 Hello, world!`` (no lifespan, no body read)."""

from __future__ import annotations

from typing import Any

_BODY = b"Hello, world!"
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}
_END = {"type": "http.response.body", "body": _BODY}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(_START)
    await send(_END)
