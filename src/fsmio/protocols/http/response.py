"""Responses: the bytes of a response head, and ginsfsm's response classes.

``encode_head`` builds the status line and header block of a response for a request: it
computes the framing (Content-Length, chunked on HTTP/1.1 when the length is unknown,
close-delimited on HTTP/1.0), the Connection header, and adds ``Date`` (cached per second)
and ``Server`` (the server's ``identity``; none when it is '').  Header names and values
given by the application are checked: CR, LF or NUL in either, or a name that is not an
HTTP token, raise ``ValueError`` naming the header (response splitting).  HEAD, 1xx, 204
and 304 responses carry no body; 1xx and 204 no Content-Length or Transfer-Encoding.

The channel (``GHttpCliSrv``) writes responses; applications either send it
``EV_HTTP_RESPONSE(request, status, headers, body)`` or one of the ginsfsm classes here:

* ``HttpResponse(request)``: subclass it and override ``execute()``, which calls
  ``write(data)``; ``finish()`` ends it (called by the channel after ``execute`` unless
  ``execute`` raised ``ResponseInterrupt``: then the response stays open and the program
  finishes it later with ``write``/``flush``/``finish``, as in ginsfsm).  Attributes
  ``status`` (``'200 OK'``), ``response_headers`` (list of (str, str)),
  ``close_on_finish``, ``content_length``, ``wrote_header``, ``complete``...
* ``HttpSimpleOkResponse(request, body, toclose=True)``: 200, text/plain, ``body``; closes
  the connection after it unless ``toclose`` is False (ginsfsm's default).
* ``HttpErrorResponse(request)``: the error in ``request.error`` (an ``HttpError`` or any
  object with ginsfsm's ``code``, ``reason`` and ``body``), text/plain, then close.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from email.utils import formatdate
from typing import Any, Final

from fsmio.protocols.http.parser import HttpError, reason_phrase

__all__ = [
    "FRAMING_CHUNKED",
    "FRAMING_CLOSE",
    "FRAMING_LENGTH",
    "FRAMING_NONE",
    "HttpErrorResponse",
    "HttpResponse",
    "HttpSimpleOkResponse",
    "ResponseInterrupt",
    "date_header",
    "encode_head",
    "status_line",
]

#: How the body of a response is delimited.
FRAMING_LENGTH: Final = 0  # Content-Length
FRAMING_CHUNKED: Final = 1  # Transfer-Encoding: chunked
FRAMING_CLOSE: Final = 2  # the end of the connection (HTTP/1.0, length unknown)
FRAMING_NONE: Final = 3  # no body at all (HEAD, 1xx, 204, 304)

_BAD_VALUE = re.compile(rb"[\r\n\x00]").search
_BAD_NAME = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z]").search


class ResponseInterrupt(Exception):
    """Raised by ``HttpResponse.execute()``: the response goes on later (ginsfsm)."""


# ----------------------------------------------------------------------------------------
#   Status lines, Date
# ----------------------------------------------------------------------------------------
_STATUS_LINES: dict[tuple[bool, int], bytes] = {}
# encode_head's lookups: {status int: (code, line)} per version
_STATUS_11: dict[Any, tuple[int, bytes]] = {}
_STATUS_10: dict[Any, tuple[int, bytes]] = {}


def status_line(http11: bool, status: Any) -> tuple[int, bytes]:
    """``(code, b'HTTP/1.x code phrase\\r\\n')`` for an int, ``b'200 OK'`` or ``'200 OK'``."""
    if type(status) is int:
        line = _STATUS_LINES.get((http11, status))
        if line is not None:
            return status, line
        if not 100 <= status <= 999:
            raise ValueError(f"HTTP status {status} is not a 3-digit code")
        line = b"HTTP/1.1 " if http11 else b"HTTP/1.0 "
        line += b"%d %s\r\n" % (status, reason_phrase(status).encode("ascii"))
        if len(_STATUS_LINES) < 512:
            _STATUS_LINES[(http11, status)] = line
        return status, line
    if isinstance(status, str):
        status = status.encode("latin-1")
    if not isinstance(status, bytes):
        raise ValueError(f"HTTP status must be an int, bytes or str, not {status!r}")
    code_part = status[:3]
    if len(code_part) != 3 or not code_part.isdigit() or status[3:4] not in (b"", b" "):
        raise ValueError(f"HTTP status {status!r} does not start with a 3-digit code")
    if _BAD_VALUE(status):
        raise ValueError(f"HTTP status {status!r} contains CR, LF or NUL")
    code = int(code_part)
    if len(status) <= 4:
        return status_line(http11, code)
    return code, (b"HTTP/1.1 " if http11 else b"HTTP/1.0 ") + status + b"\r\n"


_date_second = -1
_date_line = b""


def date_header() -> bytes:
    """``b'Date: <IMF-fixdate>\\r\\n'``, rebuilt at most once a second."""
    global _date_second, _date_line
    now = time.time()
    second = int(now)
    if second != _date_second:
        _date_line = b"Date: " + formatdate(second, usegmt=True).encode("ascii") + b"\r\n"
        _date_second = second
    return _date_line


def server_header(identity: str) -> bytes:
    """The ``Server`` line for ``identity`` (b'' when it is empty)."""
    if not identity:
        return b""
    value = identity.encode("latin-1")
    if _BAD_VALUE(value):
        raise ValueError(f"identity {identity!r} contains CR, LF or NUL")
    return b"Server: " + value + b"\r\n"


# ----------------------------------------------------------------------------------------
#   Heads
# ----------------------------------------------------------------------------------------
def _as_header_bytes(item: Any, what: str) -> bytes:
    if type(item) is bytes:
        return item
    if isinstance(item, str):
        try:
            return item.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"response header {what} {item!r} is not latin-1") from None
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    raise ValueError(f"response header {what} must be str or bytes, not {item!r}")


#: (block, Content-Length, chunked, has Connection, Connection: close) per header tuple.
_HeaderInfo = tuple[bytes, int | None, bool, bool, bool]
_HEADER_CACHE: dict[int, tuple[Any, _HeaderInfo]] = {}


def _encode_headers(headers: Iterable[Any]) -> _HeaderInfo:
    """The application's headers as one block (without Content-Length,
    Transfer-Encoding, Date and Server, which ``encode_head`` writes), checked.  A tuple
    of (bytes or str) pairs is immutable: its result is cached (an application passing
    the same constant tuple pays for the checks once)."""
    cacheable = type(headers) is tuple
    if cacheable:
        hit = _HEADER_CACHE.get(id(headers))
        if hit is not None and hit[0] is headers:
            return hit[1]
    parts: list[bytes] = []
    length: int | None = None
    chunked = False
    has_connection = False
    close = False
    for item in headers:
        if type(item) is not tuple:
            cacheable = False
        try:
            name, value = item
        except (TypeError, ValueError):
            raise ValueError(
                f"a response header must be a (name, value) pair, not {item!r}"
            ) from None
        if not isinstance(name, (bytes, str)) or not isinstance(value, (bytes, str)):
            cacheable = False
        name = _as_header_bytes(name, "name")
        value = _as_header_bytes(value, "value")
        if not name or _BAD_NAME(name):
            raise ValueError(f"response header name {name!r} is not an HTTP token")
        if _BAD_VALUE(value):
            raise ValueError(f"response header {name!r}: value {value!r} contains CR, LF or NUL")
        lname = name.lower()
        if lname == b"content-length":
            stripped = value.strip()
            if not stripped.isdigit():
                raise ValueError(f"response Content-Length {value!r} is not a number")
            length = int(stripped)
            continue
        if lname == b"transfer-encoding":
            if value.strip().lower() != b"chunked":
                raise ValueError(f"response Transfer-Encoding {value!r}: only chunked is done")
            chunked = True
            continue
        if lname == b"connection":
            has_connection = True
            close = close or b"close" in value.lower()
        elif lname == b"date" or lname == b"server":
            continue  # the server's own
        parts += (name, b": ", value, b"\r\n")
    info = (b"".join(parts), length, chunked, has_connection, close)
    if cacheable:
        if len(_HEADER_CACHE) >= 256:
            _HEADER_CACHE.clear()
        _HEADER_CACHE[id(headers)] = (headers, info)
    return info


def encode_head(
    parts: list[bytes],
    request: Any,
    status: Any,
    headers: Iterable[Any],
    body_length: int | None,
    server: bytes,
    keep_alive: bool,
) -> tuple[int, int, int | None, bool]:
    """Append the response head for ``request`` to ``parts``.

    ``body_length``: the length of a whole body, or None (streamed: unknown);
    ``keep_alive``: whether the server would keep the connection open.  Returns
    ``(code, framing, content_length, keep_alive)``: how the body must be written, the
    Content-Length in force (None when not length-framed), and whether the connection
    may serve another request afterwards.  Raises ``ValueError`` for bad headers.
    """
    http11 = request.http_version == "1.1"
    cached = (_STATUS_11 if http11 else _STATUS_10).get(status)
    if cached is not None:
        code, line = cached
    else:
        code, line = status_line(http11, status)
        if type(status) is int and len(_STATUS_11) < 512:
            (_STATUS_11 if http11 else _STATUS_10)[status] = (code, line)
    hit = _HEADER_CACHE.get(id(headers))
    if hit is not None and hit[0] is headers:
        block, app_length, app_te, has_connection, close = hit[1]
    else:
        block, app_length, app_te, has_connection, close = _encode_headers(headers)
    if close:
        keep_alive = False
    head_only = request.method == "HEAD"
    if code < 200 or code == 204:
        app_length = None  # never on 1xx and 204
        app_te = False
        framing = FRAMING_NONE
    elif code == 304 or head_only:
        framing = FRAMING_NONE
    elif app_te and http11:
        framing = FRAMING_CHUNKED
    elif app_length is not None or body_length is not None:
        framing = FRAMING_LENGTH
    elif http11:
        framing = FRAMING_CHUNKED
    else:
        framing = FRAMING_CLOSE
        keep_alive = False
    if (
        framing == FRAMING_LENGTH
        and body_length not in (None, app_length)
        and app_length is not None
    ):
        raise ValueError(
            f"response Content-Length {app_length} but the body has {body_length} bytes"
        )
    # the framing headers: the same for HEAD as for GET
    if app_te and http11 and code >= 200 and code != 204:
        framing_line = b"Transfer-Encoding: chunked\r\n"
    elif app_length is not None:
        framing_line = b"Content-Length: %d\r\n" % app_length
    elif code < 200 or code == 204 or code == 304:
        framing_line = b""
    elif body_length is not None:
        framing_line = b"Content-Length: %d\r\n" % body_length
    elif http11:
        framing_line = b"Transfer-Encoding: chunked\r\n"
    else:
        framing_line = b""
    if has_connection:
        connection = b""
    elif not keep_alive:
        connection = b"Connection: close\r\n"
    elif not http11:
        connection = b"Connection: keep-alive\r\n"
    else:
        connection = b""
    parts += (line, block, server, date_header(), framing_line, connection, b"\r\n")
    if framing == FRAMING_LENGTH:
        content_length = app_length if app_length is not None else body_length
    else:
        content_length = None
    return code, framing, content_length, keep_alive


# ----------------------------------------------------------------------------------------
#   ginsfsm's response classes
# ----------------------------------------------------------------------------------------
def _tobytes(data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode("latin-1")
    return bytes(data)


class HttpResponse:
    """ginsfsm's response: override ``execute()``; it calls ``write()``.

    The channel calls ``start()``, ``execute()`` and then ``finish()`` (unless ``execute``
    raised ``ResponseInterrupt``).
    """

    def __init__(self, request: Any) -> None:
        self.request = request
        self.channel = request.channel
        self.gsock = getattr(request.channel, "gsock", None)
        self.response_headers: list[tuple[str, str]] = []
        version = request.http_version
        self.version = version if version in ("1.0", "1.1") else "1.0"
        self.close_on_finish = False
        self.status = "200 OK"
        self.wrote_header = False
        self.start_time = 0.0
        self.content_length: int | None = None
        self.content_bytes_written = 0
        self.logged_write_excess = False
        self.complete = False
        self.chunked_response = False
        self.finished = False

    def execute(self) -> None:
        """Write the response (override)."""

    def _headers(self) -> list[tuple[str, str]]:
        headers = list(self.response_headers)
        names = {str(name).lower() for name, _ in headers}
        if self.content_length is not None and "content-length" not in names:
            headers.append(("Content-Length", str(self.content_length)))
        if self.close_on_finish and "connection" not in names:
            headers.append(("Connection", "close"))
        return headers

    def build_response_header(self) -> bytes:
        """The bytes of the status line and headers (as they would be sent)."""
        parts: list[bytes] = []
        channel = self.channel
        server = channel.server_line if channel is not None else b""
        keep = bool(self.request.keep_alive)
        encode_head(parts, self.request, self.status, self._headers(), None, server, keep)
        return b"".join(parts)

    def start(self) -> None:
        self.start_time = time.time()

    def write(self, data: Any) -> None:
        """Write body data (the head first, on the first call)."""
        if not self.complete:
            raise RuntimeError("start_response was not called before body written")
        channel = self.channel
        if not self.wrote_header:
            channel.start_response(self.request, self.status, self._headers())
            self.wrote_header = True
            self.chunked_response = channel.response_is_chunked()
        data = _tobytes(data)
        if data:
            self.content_bytes_written += len(data)
            channel.write_response(self.request, data)

    def flush(self, callback: Any = None) -> None:
        """The data is handed to the connection as it is written; ``callback`` (ginsfsm)
        runs from the loop."""
        if callback is not None and self.channel is not None:
            self.channel.gaplic.add_callback(callback)

    def finish(self) -> None:
        """End the response (writes the head if nothing was written)."""
        if self.finished:
            return
        if not self.wrote_header:
            self.write(b"")
        self.finished = True
        self.channel.end_response(self.request)


class HttpErrorResponse(HttpResponse):
    """The error of ``request.error`` as a text/plain response; the connection closes."""

    def __init__(self, request: Any) -> None:
        HttpResponse.__init__(self, request)
        self.complete = True

    def execute(self) -> None:
        error = self.request.error
        if error is None:
            error = HttpError(500, "error", "")
        code = int(getattr(error, "code", 500))
        reason = str(getattr(error, "reason", "") or reason_phrase(code))
        body = f"{reason}\r\n\r\n{getattr(error, 'body', '')}\r\n\r\n(generated by fsmio)"
        data = body.encode("utf-8")
        self.status = f"{code} {reason}"
        self.content_length = len(data)
        self.response_headers.append(("Content-Type", "text/plain; charset=utf-8"))
        self.close_on_finish = True
        self.channel.respond(self.request, self.status, self._headers(), data)
        self.wrote_header = self.finished = True


class HttpSimpleOkResponse(HttpResponse):
    """200 OK, text/plain, ``body``; closes the connection after it if ``toclose``."""

    def __init__(self, request: Any, body: Any, toclose: bool = True) -> None:
        HttpResponse.__init__(self, request)
        self.complete = True
        self.body = body
        self.toclose = toclose

    def execute(self) -> None:
        data = _tobytes(self.body)
        self.content_length = len(data)
        self.response_headers.append(("Content-Type", "text/plain"))
        if self.toclose:
            self.close_on_finish = True
        self.channel.respond(self.request, self.status, self._headers(), data)
        self.wrote_header = self.finished = True
