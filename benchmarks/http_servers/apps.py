"""The applications every server of the HTTP benchmark serves: the same bytes everywhere.

``/`` answers ``Hello, World!`` (13 bytes) and ``/64k`` answers 65 536 bytes; anything else
is a 404.  ``asgi_app`` is a raw ASGI 3.0 application (no framework: what uvicorn and
GAsgiServer are compared on), ``wsgi_app`` a PEP 3333 one (waitress and GWsgiServer).  Both
set ``Content-Length``, as any framework's response does: without it uvicorn would answer
chunked and the comparison would be of two encodings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

HELLO = b"Hello, World!"
BIG = b"x" * 65536
#: path -> response body
ROUTES: dict[str, bytes] = {"/": HELLO, "/64k": BIG}
NOT_FOUND = b"Not Found"
CONTENT_TYPE = b"text/plain"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


def body_for(path: str) -> tuple[int, bytes]:
    """(status, body) for a request path."""
    body = ROUTES.get(path)
    return (200, body) if body is not None else (404, NOT_FOUND)


# Headers built once: the app's own work per request is a dict lookup, as in a real
# framework's fast path, so what differs between servers is the server.
_ASGI_HEADERS = {
    path: [(b"content-type", CONTENT_TYPE), (b"content-length", str(len(body)).encode())]
    for path, body in [*ROUTES.items(), ("", NOT_FOUND)]
}


async def asgi_app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """A raw ASGI 3.0 application: lifespan, and the two resources over ``http``."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        raise ValueError(f"asgi_app serves 'http' and 'lifespan' scopes, not {scope['type']!r}")
    status, body = body_for(scope["path"])
    headers = _ASGI_HEADERS[scope["path"] if status == 200 else ""]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_WSGI_HEADERS = {
    path: [("Content-Type", CONTENT_TYPE.decode()), ("Content-Length", str(len(body)))]
    for path, body in [*ROUTES.items(), ("", NOT_FOUND)]
}
_WSGI_STATUS = {200: "200 OK", 404: "404 Not Found"}

StartResponse = Callable[..., Any]


def wsgi_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """A PEP 3333 application answering the two resources."""
    path = environ.get("PATH_INFO") or "/"
    status, body = body_for(path)
    start_response(_WSGI_STATUS[status], _WSGI_HEADERS[path if status == 200 else ""])
    return [body]
