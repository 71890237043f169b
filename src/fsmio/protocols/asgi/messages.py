"""ASGI 3.0 ``http`` scopes and the checks of the messages an application sends.

``build_http_scope`` makes the scope of a request (an ``HttpRequest`` of
``fsmio.protocols.http``).  ``response_start`` and ``response_body`` check an
``http.response.start`` / ``http.response.body`` message and return what the HTTP layer
needs; a malformed message raises ``AsgiProtocolError`` naming what was wrong and what was
expected (the server turns it into a 500, or drops a response already started).
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "ASGI_VERSION",
    "AsgiProtocolError",
    "build_http_scope",
    "response_body",
    "response_start",
]

#: The ``asgi`` key of every scope.  spec_version 2.3: ``http.disconnect`` is sent when
#: the client goes away, and a send() after it is ignored (uvicorn's behaviour).
ASGI_VERSION: Final[dict[str, str]] = {"version": "3.0", "spec_version": "2.3"}


class AsgiProtocolError(RuntimeError):
    """The application sent a message that breaks the ASGI protocol."""


def build_http_scope(
    request: Any,
    *,
    server: tuple[str, int] | None,
    client: tuple[str, int] | None,
    root_path: str = "",
    scheme: str = "http",
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``http`` scope of ``request``.

    As uvicorn does, ``path`` and ``raw_path`` include ``root_path`` (Starlette strips it
    for routing).  ``state`` is a shallow copy of the lifespan state, per request.
    """
    path: str = request.path
    raw_path: bytes = request.raw_path
    if root_path:
        path = root_path + path
        raw_path = root_path.encode("utf-8") + raw_path
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": request.http_version,
        "server": server,
        "client": client,
        "scheme": scheme,
        "method": request.method,
        "root_path": root_path,
        "path": path,
        "raw_path": raw_path,
        "query_string": request.query or b"",
        "headers": request.headers,
    }
    if state is not None:
        scope["state"] = state.copy()
    return scope


def _as_bytes(value: Any, what: str) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise AsgiProtocolError(f"{what} must be bytes, not {type(value).__name__}")


def response_start(message: Any) -> tuple[int, list[tuple[bytes, bytes]]]:
    """``(status, headers)`` of an ``http.response.start`` message."""
    status = message.get("status")
    if type(status) is not int or not 100 <= status <= 999:
        raise AsgiProtocolError(
            f"http.response.start: 'status' must be an int from 100 to 999, not {status!r}"
        )
    raw = message.get("headers", ())
    headers: list[tuple[bytes, bytes]] = []
    try:
        items = raw if type(raw) is list else list(raw)
    except TypeError:
        raise AsgiProtocolError(
            f"http.response.start: 'headers' must be an iterable of [name, value] pairs, "
            f"not {type(raw).__name__}"
        ) from None
    append = headers.append
    for item in items:
        # The common case (Starlette, FastAPI): a tuple of two bytes, taken as it is.
        if type(item) is tuple and len(item) == 2:
            name, value = item
            if type(name) is bytes and type(value) is bytes:
                append(item)
                continue
        try:
            name, value = item
        except (TypeError, ValueError):
            raise AsgiProtocolError(
                f"http.response.start: each header must be a [name, value] pair, not {item!r}"
            ) from None
        name = _as_bytes(name, "http.response.start: a header name")
        value = _as_bytes(value, f"http.response.start: the value of header {name!r}")
        append((name, value))
    return status, headers


def response_body(message: Any) -> tuple[bytes, bool]:
    """``(body, more_body)`` of an ``http.response.body`` message."""
    body = _as_bytes(message.get("body", b""), "http.response.body: 'body'")
    more = message.get("more_body", False)
    if type(more) is not bool:
        raise AsgiProtocolError(f"http.response.body: 'more_body' must be a bool, not {more!r}")
    return body, more
