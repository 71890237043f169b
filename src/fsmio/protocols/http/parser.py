"""The request parser: httptools (llhttp) plus the limits and checks it does not make.

Internal to the HTTP channel.  ``RequestParser.feed(data)`` parses what it can and leaves
its results in ``requests`` (a deque of ``HttpRequest`` whose head is complete, in order;
the channel takes them from the left); the body of each request goes into the request
itself (``_body_chunks``, ``_body_complete``).  A violation raises ``HttpError`` naming the
status to answer and the one-word reason to close with; the parser is dead afterwards.

What httptools (llhttp, strict mode: no ``set_dangerous_leniencies``) already rejects, and
so gives 400 here: Content-Length with Transfer-Encoding, a duplicate or malformed
Content-Length (sign, space, comma, overflow), an obfuscated or non-final chunked
Transfer-Encoding, obs-fold, bare LF or CR line ends, CTLs or NUL in header values or in the
target, a bad chunk size (sign, ``0x``, overflow), LF in a chunk extension, whitespace
before a colon, a bad token in a method or field name.

What this module adds (httptools lets it through):

* the request-target longer than ``max_request_line`` -> 414; the header block bigger
  than ``max_header_size`` or with more than ``max_headers`` fields -> 431.  Counted in
  the callbacks (exact, whatever the reads) and, for a head still incomplete at the end
  of a read, by the bytes fed since it began (so a head trickled over many reads is
  stopped even while llhttp is still accumulating one long field);
* a Content-Length above ``max_body_size`` -> 413 before any body byte is read; a chunked
  body growing past it -> 413 while reading;
* HTTP/1.1 without Host, or any request with two Host fields -> 400;
* versions other than 1.0 and 1.1 (llhttp accepts 0.9 and 2.0) -> 505;
* a Transfer-Encoding other than exactly ``chunked`` (``gzip, chunked`` included: no
  transfer coding but chunked is implemented) -> 501; on HTTP/1.0 a chunked request is
  read and then the connection closes (RFC 9112 section 6.1);
* ``Expect`` other than ``100-continue`` -> 417 (HTTP/1.1 only; ignored on 1.0);
* ``*`` as the target of anything but OPTIONS, a target that is neither origin-form nor
  absolute-form -> 400; CONNECT -> 501;
* an absolute-form target (``GET http://host/path``) names the host: the Host field the
  application sees is replaced by the target's authority (RFC 9112 section 3.2.2: the
  server must ignore the received Host), so a proxy-style request cannot show the
  application one host in the URL and another in Host; a URL without a host -> 400.

Theory of operation
-------------------
httptools calls back per piece: ``on_message_begin``, ``on_url`` (possibly several pieces),
``on_header`` (a whole field: httptools joins the pieces), ``on_headers_complete``,
``on_body``, ``on_message_complete``.  A callback that finds a violation stores the
``HttpError`` and raises it; llhttp then stops with a callback error, which ``feed``
turns back into the stored ``HttpError``.  An upgrade request (``Connection: upgrade``
with ``Upgrade``) makes httptools stop after its head with ``HttpParserUpgrade(offset)``:
the bytes after the offset belong to the next protocol and are kept in ``upgrade_data``;
nothing more is parsed.

``feed`` parses in slices of at most ``SLICE`` bytes and stops early when ``max_queued``
requests are waiting (a pipelined flood of tiny requests in one read does not become
thousands of request objects): it returns how many bytes it consumed, and the caller keeps
the rest for later.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from typing import Final, NoReturn

import httptools

from fsmio.protocols.http.request import HttpRequest, split_target

__all__ = ["SLICE", "HttpError", "RequestParser", "reason_phrase"]

#: Bytes parsed per llhttp call when a read is bigger (see feed()).
SLICE: Final = 16384

_METHODS: dict[bytes, str] = {}


class HttpError(Exception):
    """A request the server refuses: answer ``status`` and close the connection.

    ``close_reason`` is the one word of ``EV_HTTP_CHANNEL_CLOSED`` (``bad_request``,
    ``too_large``...), ``detail`` says what was wrong.  ginsfsm's error attributes are
    there too: ``code`` (the status), ``reason`` (its phrase) and ``body`` (the detail).
    """

    def __init__(self, status: int, close_reason: str, detail: str) -> None:
        super().__init__(f"{status} {detail}")
        self.status = status
        self.close_reason = close_reason
        self.detail = detail

    @property
    def code(self) -> int:
        return self.status

    @property
    def reason(self) -> str:
        return reason_phrase(self.status)

    @property
    def body(self) -> str:
        return self.detail


def reason_phrase(status: int) -> str:
    """The standard reason phrase of ``status`` ('' when unknown)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class RequestParser:
    """httptools' request parser with fsmio's limits and checks (see the module doc)."""

    __slots__ = (
        "_body_limit",
        "_error",
        "_head_fed",
        "_head_size",
        "_headers",
        "_in_head",
        "_parser",
        "_url",
        "current",
        "dead",
        "max_body_size",
        "max_header_size",
        "max_headers",
        "max_queued",
        "max_request_line",
        "requests",
        "upgrade_data",
        "url_scheme",
    )

    def __init__(
        self,
        *,
        max_request_line: int = 8192,
        max_header_size: int = 65536,
        max_headers: int = 100,
        max_body_size: int = 1 << 30,
        max_queued: int = 16,
        url_scheme: str = "http",
    ) -> None:
        self.max_request_line = max_request_line
        self.max_header_size = max_header_size
        self.max_headers = max_headers
        self.max_body_size = max_body_size
        self.max_queued = max_queued
        self.url_scheme = url_scheme
        self.requests: deque[HttpRequest] = deque()
        self.current: HttpRequest | None = None  # the request whose body is being parsed
        self.dead = False
        self.upgrade_data: bytes | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._error: HttpError | None = None
        self._in_head = False
        self._head_fed = 0
        self._head_size = 0
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body_limit = max_body_size

    @property
    def in_head(self) -> bool:
        """A request head has begun and is not complete yet."""
        return self._in_head

    @property
    def in_body(self) -> bool:
        """A request body is being parsed (not complete yet)."""
        return self.current is not None

    # ------------------------------------------------------------------------------------
    #   Feeding
    # ------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> int:
        """Parse ``data``; return how many bytes were consumed (all of them unless
        ``max_queued`` requests are waiting).  Raises ``HttpError``."""
        if self.dead:
            return len(data)
        size = len(data)
        if size <= SLICE:
            # _feed(), inlined: the common case of every request
            try:
                self._parser.feed_data(data)
            except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
                self._stopped(exc, data)
                return size
            if self._in_head:
                self._count_head(size)
            return size
        offset = 0
        view = memoryview(data)
        try:
            while offset < size:
                if len(self.requests) >= self.max_queued:
                    return offset
                end = offset + SLICE
                if self._feed(view[offset:end]):
                    # an upgrade: everything after its head belongs to the next protocol
                    self.upgrade_data = (self.upgrade_data or b"") + bytes(view[end:])
                    return size
                offset = end
        finally:
            view.release()
        return size

    def _feed(self, data: bytes | memoryview) -> bool:
        """Parse one slice; return whether parsing has stopped (an upgrade)."""
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._stopped(exc, data)
            return True
        if self._in_head:
            self._count_head(len(data))
        return False

    def _stopped(self, exc: Exception, data: bytes | memoryview) -> None:
        """llhttp stopped: an upgrade (keep what follows its head), or an error (raise
        the HttpError a callback stored, or a 400)."""
        self.dead = True
        if isinstance(exc, httptools.HttpParserUpgrade):
            offset = int(exc.args[0]) if exc.args else len(data)
            self.upgrade_data = bytes(data[offset:])
            return
        error = self._error
        if error is not None:
            raise error from None
        raise HttpError(400, "bad_request", f"malformed request: {exc}") from None

    def _count_head(self, size: int) -> None:
        """A read ended inside a request head: count it toward the head limits."""
        self._head_fed += size
        if self._head_fed > self.max_request_line + self.max_header_size:
            self.dead = True
            if not self._headers and self._url:
                raise HttpError(414, "too_large", "request line too long")
            raise HttpError(431, "too_large", "request header block too large")

    def _fail(self, status: int, reason: str, detail: str) -> NoReturn:
        error = self._error = HttpError(status, reason, detail)
        raise error

    # ------------------------------------------------------------------------------------
    #   httptools callbacks
    # ------------------------------------------------------------------------------------
    # No on_message_begin: a callback less per request.  A head begins with its target's
    # first piece (llhttp rejects a long or bad method before that); the state of the
    # previous head is reset when it completes.

    def on_url(self, piece: bytes) -> None:
        if self._in_head:
            url = self._url = self._url + piece
        else:
            self._in_head = True
            url = self._url = piece
        if len(url) > self.max_request_line:
            self._fail(414, "too_large", f"request-target longer than {self.max_request_line}")

    def on_header(self, name: bytes, value: bytes) -> None:
        size = self._head_size = self._head_size + len(name) + len(value) + 4
        if value and value[-1] in (32, 9):
            value = value.rstrip(b" \t")
        name = name.lower()
        if not self._in_head:
            # a trailer field of a chunked body
            current = self.current
            if current is not None:
                if size > self.max_header_size:
                    self._fail(431, "too_large", "trailer fields too large")
                current.trailers = [*current.trailers, (name, value)]
            return
        headers = self._headers
        headers.append((name, value))
        if len(headers) > self.max_headers:
            self._fail(431, "too_large", f"more than {self.max_headers} header fields")
        if size > self.max_header_size:
            self._fail(431, "too_large", f"header block larger than {self.max_header_size}")

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._parser
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            self._fail(505, "bad_request", f"HTTP version {version} not supported")
        http11 = version == "1.1"
        raw_method = parser.get_method()
        method = _METHODS.get(raw_method)
        if method is None:
            method = raw_method.decode("ascii")
            if len(_METHODS) < 64:
                _METHODS[raw_method] = method
        headers = self._headers
        self._headers = []
        request = HttpRequest.__new__(HttpRequest)
        # one dict for the instance attributes: cheaper than a store per attribute
        request.__dict__ = {"method": method, "http_version": version, "headers": headers}
        hosts = 0
        keep_alive = http11
        te: bytes | None = None
        for hname, value in headers:
            if hname == b"host":
                hosts += 1
            elif hname == b"content-length":
                length = int(value)  # llhttp checked it: digits, one value, no overflow
                if length > self.max_body_size:
                    self._fail(
                        413, "too_large", f"Content-Length above the limit {self.max_body_size}"
                    )
                request.content_length = length
                if length:
                    request._body_chunks = []
            elif hname == b"connection":
                tokens = value.lower()
                if http11:
                    if b"close" in tokens:
                        keep_alive = False
                elif b"keep-alive" in tokens:
                    keep_alive = True
            elif hname == b"transfer-encoding":
                te = value if te is None else te + b"," + value
            elif hname == b"expect" and http11:
                if value.lower() != b"100-continue":
                    self._fail(417, "bad_request", "only Expect: 100-continue is supported")
                request.expect_continue = True
            elif hname == b"upgrade":
                request.upgrade = parser.should_upgrade()
        if hosts != 1 and (hosts > 1 or http11):
            self._fail(400, "bad_request", "HTTP/1.1 needs exactly one Host header")
        if te is not None:
            if te.strip().lower() != b"chunked":
                self._fail(501, "bad_request", "only the chunked transfer coding is supported")
            request.chunked = True
            request._body_chunks = []
            if not http11:
                keep_alive = False  # RFC 9112 section 6.1
        if method == "CONNECT":
            self._fail(501, "bad_request", "CONNECT is not supported")
        url = self._url
        self._url = b""
        self._head_fed = 0
        request.target = url
        if url[:1] == b"/" and b"?" not in url and b"%" not in url and b"#" not in url:
            request.raw_path = url
            request.path = url.decode("latin-1")
        else:
            if url[:1] != b"/":
                if url == b"*":
                    if method != "OPTIONS":
                        self._fail(400, "bad_request", "'*' is a target for OPTIONS only")
                elif url.startswith((b"http://", b"https://")):
                    request.headers = _host_from_target(url, headers, self._fail)
                else:
                    self._fail(400, "bad_request", "request-target is neither a path nor a URL")
            request.raw_path, request.query, request.path = split_target(url)
        request.keep_alive = keep_alive
        if self.url_scheme != "http":
            request.url_scheme = self.url_scheme
        self.current = request
        self._head_size = 0  # from here on: the trailer fields' size
        self.requests.append(request)

    def on_body(self, piece: bytes) -> None:
        request = self.current
        if request is None:  # pragma: no cover - llhttp sends no body without a head
            return
        received = request._body_received = request._body_received + len(piece)
        if received > self.max_body_size:
            self._fail(413, "too_large", f"body larger than {self.max_body_size}")
        chunks = request._body_chunks
        if isinstance(chunks, tuple):  # pragma: no cover - the head gave it a list
            chunks = request._body_chunks = []
        chunks.append(piece)
        request._body_buffered += len(piece)

    def on_message_complete(self) -> None:
        self._head_size = 0
        request = self.current
        if request is not None:
            request._body_complete = True
            self.current = None


def _host_from_target(
    url: bytes, headers: list[tuple[bytes, bytes]], fail: Callable[[int, str, str], NoReturn]
) -> list[tuple[bytes, bytes]]:
    """The head's fields with Host set to the authority of an absolute-form ``url``."""
    rest = url[url.index(b"://") + 3 :]
    end = len(rest)
    for stop in (b"/", b"?", b"#"):
        at = rest.find(stop)
        if 0 <= at < end:
            end = at
    authority = rest[:end].rpartition(b"@")[2]  # userinfo is not part of the host
    if not authority:
        fail(400, "bad_request", "an absolute-form request-target needs a host")
    fields = [(name, authority if name == b"host" else value) for name, value in headers]
    if not any(name == b"host" for name, _ in headers):
        fields.append((b"host", authority))  # HTTP/1.0 may come without one
    return fields
