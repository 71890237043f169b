"""PEP 3333 on a worker thread: the environ, ``start_response``, ``write()``, the
response hand-off to the loop.

``build_environ`` makes the environ of a request (an ``HttpRequest`` of
``fsmio.protocols.http``, or anything with its attributes).  A ``WsgiExchange`` is one
request's run of the application: ``run()`` is called on a worker thread; the loop
takes what it produced with ``commit_info()`` / ``pop_chunk()`` and is woken through the
``wake`` callable the server gives (thread-safe: ``GAplic.add_callback``).

Theory of operation
-------------------
The worker thread calls the application, iterates the response and hands each non-empty
chunk over (``_handoff``): chunks wait in a deque until the loop writes them to the
connection.  The deque is bounded by ``window`` bytes: past it the worker thread *waits*
(a slow client blocks its worker thread; memory stays bounded).  A single chunk larger
than the window is taken when the deque is empty, so any chunk gets through.

The loop is woken (at most one wake pending) when the response is *committed* — the first
non-empty chunk, or the end — and for each chunk after.  Until then ``start_response``
can still be called again with ``exc_info`` and the status and headers replaced (PEP
3333); after it, ``exc_info`` re-raises.  If the worker finished before the loop looked,
the loop sends the whole response in one piece (Content-Length computed).

An application error before the commit becomes a ``500 Internal Server Error`` (with the
traceback in the body only when ``expose_tracebacks``); after it, the connection is
aborted (the status is out).  Either way it is logged once, with the traceback.  The
response iterable's ``close()`` is always called, on the worker thread, whatever
happened.  ``abort()`` (the client went away, the server is stopping) wakes a waiting
worker with ``ClientDisconnected`` (an ``OSError``, as waitress's).
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import IO, Any, Final
from urllib.parse import unquote_to_bytes

__all__ = [
    "HOP_BY_HOP",
    "ClientDisconnected",
    "FileWrapper",
    "WsgiExchange",
    "build_environ",
]

_LOG = logging.getLogger("fsmio")

#: Headers a WSGI application may not set (PEP 3333, "Other HTTP Features").
HOP_BY_HOP: Final = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    )
)

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class ClientDisconnected(OSError):
    """The client went away (or the server is stopping) while the response was written."""


class FileWrapper:
    """``wsgi.file_wrapper``: iterate a file-like object in blocks of ``block_size``.

    The blocks are read on the worker thread (the loop never touches the file) and go
    through the same bounded hand-off as any chunk.  ``close()`` closes the file.
    """

    def __init__(self, filelike: Any, block_size: int = 65536) -> None:
        self.filelike = filelike
        self.block_size = block_size if block_size > 0 else 65536
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.block_size)
        if data:
            return bytes(data)
        raise StopIteration


def _latin1(data: bytes) -> str:
    return data.decode("latin-1")


def build_environ(
    request: Any,
    *,
    server_name: str,
    server_port: int | str,
    remote_addr: str = "",
    remote_port: int | str = "",
    url_scheme: str = "http",
    script_name: str = "",
    wsgi_input: IO[bytes] | None = None,
    errors: Any = None,
) -> dict[str, Any]:
    """The PEP 3333 environ of ``request``.

    ``PATH_INFO`` is the percent-decoded path as a latin-1 string (bytes-as-str, PEP 3333),
    without ``script_name`` when it starts with it.  Header fields become ``HTTP_*``
    (repeated fields joined with ``,``; a name holding ``_`` is left out, so that
    ``X_Forwarded_For`` cannot pose as ``X-Forwarded-For``); Content-Type and
    Content-Length become ``CONTENT_TYPE`` / ``CONTENT_LENGTH``.
    """
    raw_path: bytes = request.raw_path
    path_info = _latin1(unquote_to_bytes(raw_path))
    if script_name and (path_info == script_name or path_info.startswith(script_name + "/")):
        path_info = path_info[len(script_name) :]
    query = request.query or b""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": _latin1(query) if isinstance(query, bytes) else str(query),
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": f"HTTP/{request.http_version}",
        "SERVER_SOFTWARE": "fsmio",
        "REMOTE_ADDR": remote_addr,
        "REMOTE_PORT": str(remote_port),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url_scheme,
        "wsgi.input": wsgi_input if wsgi_input is not None else _EmptyInput(),
        "wsgi.input_terminated": True,
        "wsgi.errors": errors if errors is not None else sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
    }
    for raw_name, raw_value in request.headers:
        name = _latin1(raw_name).lower()
        value = _latin1(raw_value)
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
            continue
        if name == "content-length":
            environ["CONTENT_LENGTH"] = value
            continue
        if "_" in name:
            continue
        key = "HTTP_" + name.upper().replace("-", "_")
        if key in environ:
            environ[key] = f"{environ[key]},{value}"
        else:
            environ[key] = value
    return environ


class _EmptyInput:
    """``wsgi.input`` of a request without a body."""

    def read(self, size: int = -1) -> bytes:
        return b""

    def readline(self, size: int = -1) -> bytes:
        return b""

    def readlines(self, hint: int = -1) -> list[bytes]:
        return []

    def __iter__(self) -> _EmptyInput:
        return self

    def __next__(self) -> bytes:
        raise StopIteration

    def close(self) -> None:
        return None


def _check_headers(headers: Any) -> list[tuple[str, str]]:
    if not isinstance(headers, list):
        raise AssertionError(f"response headers must be a list, not {type(headers).__name__}")
    out: list[tuple[str, str]] = []
    for item in headers:
        if not isinstance(item, tuple) or len(item) != 2:
            raise AssertionError(f"a response header must be a (name, value) tuple: {item!r}")
        name, value = item
        if type(name) is not str:
            raise AssertionError(f"header name {name!r} is not a str in {item!r}")
        if type(value) is not str:
            raise AssertionError(f"header value {value!r} is not a str in {item!r}")
        if not name or any(c in name for c in "\r\n\0:") or name != name.strip():
            raise AssertionError(f"invalid header name {name!r}")
        if any(c in value for c in "\r\n\0"):
            raise AssertionError(f"CR, LF or NUL in the value of header {name!r}")
        if name.lower() in HOP_BY_HOP:
            raise AssertionError(
                f'{name} is a "hop-by-hop" header; it cannot be used by a WSGI application '
                "(see PEP 3333)"
            )
        try:
            name.encode("latin-1")
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise AssertionError(f"header {item!r} is not latin-1 (PEP 3333)") from None
        out.append((name, value))
    return out


def _check_status(status: Any) -> str:
    if type(status) is not str:
        raise AssertionError(f"status {status!r} is not a str")
    code = status[:3]
    if len(status) < 4 or not code.isdigit() or status[3] != " " or not 100 <= int(code) <= 999:
        raise AssertionError(f"status {status!r}: expected '<3 digits> <reason>' ('200 OK')")
    if any(c in status for c in "\r\n\0"):
        raise AssertionError(f"CR, LF or NUL in status {status!r}")
    return status


class WsgiExchange:
    """One request's application run and its response hand-off (see the module docs)."""

    def __init__(
        self,
        application: Callable[..., Iterable[bytes]],
        environ: dict[str, Any],
        wake: Callable[[WsgiExchange], None],
        *,
        window: int = 262144,
        logger: logging.Logger | None = None,
        expose_tracebacks: bool = False,
        on_done: Callable[[WsgiExchange], None] | None = None,
    ) -> None:
        self.application = application
        self.environ = environ
        self.window = window
        self.logger = logger or _LOG
        self.expose_tracebacks = expose_tracebacks
        self._wake_fn = wake
        self._on_done = on_done
        self._cond = threading.Condition(threading.Lock())
        # Worker-thread state (read by the loop under the lock once committed).
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self._chunks: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self.committed = False
        self.finished = False
        #: The application failed after the commit: the loop aborts the connection.
        self.broken = False
        self.aborted = False
        self._wake_pending = False
        self.bytes_out = 0
        #: Loop-side bookkeeping of the server (the request, whether START was sent...).
        self.request: Any = None
        self.channel: Any = None
        self.started = False
        self.ended = False
        self.waiting_ready = False
        #: The request body being read before the application runs (a spooled file).
        self.spool: Any = None
        #: The exchange holds one of the server's worker slots.
        self.counted = False

    # ------------------------------------------------------------------------------------
    #   Worker thread
    # ------------------------------------------------------------------------------------
    def run(self) -> None:
        """Call the application and hand its response over (on a worker thread)."""
        app_iter: Any = None
        try:
            try:
                app_iter = self.application(self.environ, self.start_response)
                length = _len_or_none(app_iter)
                for chunk in app_iter:
                    if type(chunk) is not bytes:
                        if isinstance(chunk, (bytearray, memoryview)):
                            chunk = bytes(chunk)
                        else:
                            raise TypeError(
                                f"the response iterable yielded {type(chunk).__name__}, "
                                "not bytes (PEP 3333)"
                            )
                    if chunk:
                        if not self.committed and length == 1:
                            self._add_content_length(len(chunk))
                        self._handoff(chunk)
                if self.status is None:
                    raise AssertionError("the application returned without calling start_response")
            finally:
                close = getattr(app_iter, "close", None)
                if close is not None:
                    try:
                        close()
                    except Exception as exc:
                        if not isinstance(exc, ClientDisconnected):
                            self._log_error("the response iterable's close() raised", exc)
        except ClientDisconnected:
            self.logger.debug("%s: client gone while the response was written", self._what())
        except Exception as exc:
            self._failed(exc)
        finally:
            self._finish()

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        """PEP 3333's ``start_response``: returns ``write``."""
        if exc_info:
            try:
                if self.committed:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        checked_status = _check_status(status)
        checked = _check_headers(headers)
        with self._cond:
            if self.committed:  # only reachable through exc_info, handled above
                raise AssertionError("start_response after the response was committed")
            self.status = checked_status
            self.headers = checked
        return self.write

    def write(self, data: Any) -> None:
        """PEP 3333's ``write()`` callable (blocking while the hand-off is full)."""
        if self.status is None:
            raise AssertionError("write() before start_response")
        if type(data) is not bytes:
            if not isinstance(data, (bytearray, memoryview)):
                raise TypeError(f"write() takes bytes, not {type(data).__name__}")
            data = bytes(data)
        if data:
            self._handoff(data)

    def _add_content_length(self, size: int) -> None:
        if not any(name.lower() == "content-length" for name, _ in self.headers):
            self.headers.append(("Content-Length", str(size)))

    def _handoff(self, chunk: bytes) -> None:
        cond = self._cond
        wake = False
        with cond:
            if self.status is None:
                raise AssertionError("the response iterable yielded data before start_response")
            # Bounded: waits while the loop has not taken enough (a slow client); the loop
            # always wakes us (chunk taken, or abort), the timeout only re-checks.
            while self._queued and self._queued + len(chunk) > self.window and not self.aborted:
                cond.wait(1.0)
            if self.aborted:
                raise ClientDisconnected("the client went away")
            self.committed = True
            self._chunks.append(chunk)
            self._queued += len(chunk)
            self.bytes_out += len(chunk)
            if not self._wake_pending:
                self._wake_pending = wake = True
        if wake:
            self._wake_fn(self)

    def _failed(self, exc: BaseException) -> None:
        self._log_error("application error", exc)
        with self._cond:
            if self.committed:
                self.broken = True
                return
            body = b"Internal Server Error\n"
            if self.expose_tracebacks:
                text = "".join(traceback.format_exception(exc))
                body += b"\n" + text.encode("utf-8", "replace")
            self.status = "500 Internal Server Error"
            self.headers = [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ]
            self._chunks.clear()
            self._chunks.append(body)
            self._queued = len(body)

    def _finish(self) -> None:
        wake = False
        with self._cond:
            self.finished = True
            self.committed = True
            # Even when aborted: the loop learns that the worker is free.
            if not self._wake_pending:
                self._wake_pending = wake = True
        if wake:
            self._wake_fn(self)
        if self._on_done is not None:
            self._on_done(self)

    def _what(self) -> str:
        env = self.environ
        return f"{env.get('REQUEST_METHOD')} {env.get('SCRIPT_NAME', '')}{env.get('PATH_INFO')}"

    def _log_error(self, message: str, exc: BaseException) -> None:
        self.logger.error("WSGI %s: %s: %r", self._what(), message, exc, exc_info=exc)

    # ------------------------------------------------------------------------------------
    #   Loop side
    # ------------------------------------------------------------------------------------
    def woken(self) -> tuple[bool, bool]:
        """Called by the loop when a wake arrives: ``(committed, finished)``."""
        with self._cond:
            self._wake_pending = False
            return self.committed, self.finished

    def pop_chunk(self) -> bytes | None:
        """The next chunk the worker handed over (None: none now); frees window room."""
        with self._cond:
            if not self._chunks:
                return None
            chunk = self._chunks.popleft()
            self._queued -= len(chunk)
            self._cond.notify_all()
            return chunk

    def take_all(self) -> bytes:
        """Every chunk handed over, joined (for a response sent in one piece)."""
        with self._cond:
            data = b"".join(self._chunks)
            self._chunks.clear()
            self._queued = 0
            self._cond.notify_all()
            return data

    def has_chunks(self) -> bool:
        with self._cond:
            return bool(self._chunks)

    def all_in(self) -> bool:
        """Whether the worker finished: every chunk there will be is queued."""
        with self._cond:
            return self.finished

    def abort(self) -> None:
        """The client is gone (or the server stops): a waiting worker gets
        ``ClientDisconnected``; queued chunks are dropped."""
        with self._cond:
            self.aborted = True
            self._chunks.clear()
            self._queued = 0
            self._cond.notify_all()


def _len_or_none(obj: Any) -> int | None:
    try:
        return len(obj)
    except Exception:
        return None
