"""``HttpRequest``: one parsed HTTP/1.x request, as the channel hands it to the application.

Made by the parser (``fsmio.protocols.http.parser``) when a request head is complete; the
channel (``GHttpCliSrv``) fills the body and delivers it in ``EV_HTTP_REQUEST``.

Attributes (all set before the application sees the request):

=================  =========================================================================
name               meaning
=================  =========================================================================
method             ``'GET'``, ``'POST'``... (str, as received: methods are case-sensitive)
target             the request-target exactly as received (bytes), query included
raw_path           the path part of the target, not decoded, without the query (bytes)
path               ``raw_path`` percent-decoded once, as UTF-8 (str; bad bytes replaced)
query              the query string without the ``?`` (bytes; ``b''`` when none)
http_version       ``'1.0'`` or ``'1.1'``
headers            ``[(name, value), ...]``: bytes, names lower-cased, in received order
keep_alive         whether the connection may serve another request after this one
body               the whole body (bytes) when it was read for the application; ``b''``
                   when there is none or it is streamed
streaming          True: the body is pulled with ``EV_HTTP_READ_BODY`` and arrives in
                   ``EV_HTTP_REQUEST_BODY`` events
expect_continue    the client sent ``Expect: 100-continue``
content_length     the declared Content-Length (int), or None (chunked, or no body)
chunked            the body is chunked
id                 1, 2, 3... per connection (pipelined requests are answered in this order)
channel            the ``GHttpCliSrv`` it arrived on
url_scheme         ``'http'`` or ``'https'`` (the server's ``url_scheme``)
upgrade            the request asks for a protocol upgrade (``Connection: upgrade``)
trailers           trailer fields of a chunked body (list like ``headers``), once read
error              None, or the ``HttpError`` that this (rejected) request stands for
=================  =========================================================================

ginsfsm's names, for ported programs: ``command`` (the method), ``version`` (the HTTP
version), ``uri`` (the target as str), ``query`` is bytes here (it was str), and
``get_body_stream()``.  ginsfsm's ``headers`` was a dict of upper-cased names; here it is the
list above and ``get_header(name)`` looks one up, case-insensitively.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

__all__ = ["HttpRequest"]


class HttpRequest:
    """One HTTP request (see the module documentation)."""

    # No __slots__: a request lives for one exchange, and most of its attributes keep
    # their class default (an instance stores only what the parser sets: measured 0.3 us
    # against 0.8 us per request with every slot filled).
    method = "GET"
    target = b"/"
    raw_path = b"/"
    query = b""
    path = "/"
    http_version = "1.1"
    headers: list[tuple[bytes, bytes]] = []  # replaced per request, never mutated
    keep_alive = True
    body = b""
    streaming = False
    expect_continue = False
    content_length: int | None = None
    chunked = False
    id = 0
    channel: Any = None
    url_scheme = "http"
    upgrade = False
    trailers: list[tuple[bytes, bytes]] | tuple[()] = ()
    error: Any = None
    # The channel's body bookkeeping (pieces parsed but not yet handed over).
    _body_chunks: list[bytes] | tuple[()] = ()
    _body_buffered = 0
    _body_received = 0
    _body_complete = False

    def __init__(
        self,
        method: str = "GET",
        target: bytes = b"/",
        http_version: str = "1.1",
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = [] if headers is None else headers
        self.raw_path, self.query, self.path = split_target(target)
        self.keep_alive = http_version == "1.1"

    # ------------------------------------------------------------------------------------
    #   Lookups
    # ------------------------------------------------------------------------------------
    def get_header(self, name: str | bytes, default: Any = None) -> Any:
        """The value (bytes) of the first header called ``name`` (any case), or
        ``default``."""
        key = name.lower().encode("latin-1") if isinstance(name, str) else name.lower()
        for hname, value in self.headers:
            if hname == key:
                return value
        return default

    def get_headers(self, name: str | bytes) -> list[bytes]:
        """Every value of the headers called ``name`` (any case), in received order."""
        key = name.lower().encode("latin-1") if isinstance(name, str) else name.lower()
        return [value for hname, value in self.headers if hname == key]

    @property
    def body_complete(self) -> bool:
        """Every byte of the body has been received (and parsed)."""
        return self._body_complete

    # ------------------------------------------------------------------------------------
    #   ginsfsm's names
    # ------------------------------------------------------------------------------------
    @property
    def command(self) -> str:
        """ginsfsm's name of ``method``."""
        return self.method

    @property
    def version(self) -> str:
        """ginsfsm's name of ``http_version``."""
        return self.http_version

    @property
    def uri(self) -> str:
        """The request-target as a str (latin-1)."""
        return self.target.decode("latin-1")

    @property
    def connection_close(self) -> bool:
        """ginsfsm's name: the connection closes after this request."""
        return not self.keep_alive

    def get_body_stream(self) -> BytesIO:
        """ginsfsm's: the (buffered) body as a file."""
        return BytesIO(self.body)

    def __repr__(self) -> str:
        return (
            f"<HttpRequest #{self.id} {self.method} {self.target!r} "
            f"HTTP/{self.http_version}{' streaming' if self.streaming else ''}>"
        )


def split_target(target: bytes) -> tuple[bytes, bytes, str]:
    """``(raw_path, query, path)`` of a request-target (origin or absolute form)."""
    raw = target
    if raw[:1] != b"/" and b"://" in raw[:10]:
        # absolute-form: the path starts after the authority
        slash = raw.find(b"/", raw.index(b"://") + 3)
        raw = raw[slash:] if slash >= 0 else b"/"
    hash_at = raw.find(b"#")
    if hash_at >= 0:
        raw = raw[:hash_at]
    qmark = raw.find(b"?")
    if qmark >= 0:
        raw_path, query = raw[:qmark], raw[qmark + 1 :]
    else:
        raw_path, query = raw, b""
    if b"%" in raw_path:
        from urllib.parse import unquote

        path = unquote(raw_path.decode("latin-1"), errors="replace")
    else:
        path = raw_path.decode("latin-1")
    return raw_path, query, path
