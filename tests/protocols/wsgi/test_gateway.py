"""The PEP 3333 gateway without sockets: environ, start_response, write(), the hand-off."""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmio.protocols.wsgi.gateway import (
    ClientDisconnected,
    FileWrapper,
    WsgiExchange,
    build_environ,
)
from fsmio.protocols.wsgi.workers import WorkerPool


def request(
    method: str = "GET",
    raw_path: bytes = b"/",
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    version: str = "1.1",
) -> Any:
    return SimpleNamespace(
        method=method, raw_path=raw_path, query=query, headers=headers or [], http_version=version
    )


def environ_of(req: Any, **kw: Any) -> dict[str, Any]:
    return build_environ(req, server_name="localhost", server_port=8080, **kw)


def test_environ_keys() -> None:
    req = request(
        "POST",
        b"/a%20b/%C3%A9",
        b"x=1&y=%20",
        [
            (b"host", b"example.com"),
            (b"content-type", b"text/plain"),
            (b"content-length", b"5"),
            (b"x-thing", b"1"),
            (b"x-thing", b"2"),
            (b"x_forwarded_for", b"spoof"),
            (b"accept", b"\xe9"),
        ],
        "1.0",
    )
    body = io.BytesIO(b"hello")
    env = environ_of(req, remote_addr="10.0.0.1", remote_port=5555, wsgi_input=body)
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    # bytes-as-latin-1 (PEP 3333): the UTF-8 é is two latin-1 characters
    assert env["PATH_INFO"] == "/a b/\xc3\xa9"
    assert env["QUERY_STRING"] == "x=1&y=%20"
    assert env["SERVER_NAME"] == "localhost"
    assert env["SERVER_PORT"] == "8080"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert env["REMOTE_ADDR"] == "10.0.0.1"
    assert env["REMOTE_PORT"] == "5555"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "5"
    assert "HTTP_CONTENT_TYPE" not in env
    assert env["HTTP_HOST"] == "example.com"
    assert env["HTTP_X_THING"] == "1,2"
    assert env["HTTP_ACCEPT"] == "\xe9"
    assert "HTTP_X_FORWARDED_FOR" not in env  # an underscore name cannot pose as a dash one
    assert env["wsgi.version"] == (1, 0)
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.input"] is body
    assert env["wsgi.input_terminated"] is True
    assert env["wsgi.errors"] is sys.stderr
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["wsgi.file_wrapper"] is FileWrapper


def test_environ_script_name_and_empty_input() -> None:
    env = environ_of(request(raw_path=b"/mount/x"), script_name="/mount", url_scheme="https")
    assert env["SCRIPT_NAME"] == "/mount"
    assert env["PATH_INFO"] == "/x"
    assert env["wsgi.url_scheme"] == "https"
    assert env["wsgi.input"].read() == b""
    assert env["wsgi.input"].readline() == b""
    assert list(env["wsgi.input"]) == []
    other = environ_of(request(raw_path=b"/mountain"), script_name="/mount")
    assert other["PATH_INFO"] == "/mountain"


class Loop:
    """The loop's side of an exchange, run by the test: collects what it takes."""

    def __init__(self) -> None:
        self.wakes = 0
        self.woken = threading.Event()

    def wake(self, exchange: WsgiExchange) -> None:
        self.wakes += 1
        self.woken.set()


def run_app(app: Any, env: dict[str, Any] | None = None, **kw: Any) -> tuple[WsgiExchange, bytes]:
    loop = Loop()
    exchange = WsgiExchange(app, env or environ_of(request()), loop.wake, **kw)
    exchange.run()
    assert exchange.finished
    return exchange, exchange.take_all()


def simple(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello ", b"World"]


def test_simple_app() -> None:
    exchange, body = run_app(simple)
    assert exchange.status == "200 OK"
    assert exchange.headers == [("Content-Type", "text/plain")]
    assert body == b"Hello World"
    assert not exchange.broken


def test_single_item_iterable_gets_content_length() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"abc"]

    exchange, body = run_app(app)
    assert exchange.headers == [("Content-Length", "3")]
    assert body == b"abc"


def test_write_callable_and_close_called() -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Any:
            yield b" and iterated"

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        write = start_response("200 OK", [])
        write(b"written")
        return Body()

    _exchange, body = run_app(app)
    assert body == b"written and iterated"
    assert closed == [True]


def test_close_called_when_iteration_raises(caplog: pytest.LogCaptureFixture) -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Any:
            raise ValueError("boom in iteration")

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("200 OK", [])
        return Body()

    with caplog.at_level(logging.ERROR, logger="fsmio"):
        exchange, body = run_app(app)
    assert closed == [True]
    assert exchange.status == "500 Internal Server Error"
    assert body == b"Internal Server Error\n"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "boom in iteration" in errors[0].getMessage()


def test_error_with_expose_tracebacks() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("secret detail")

    exchange, body = run_app(app, expose_tracebacks=True)
    assert exchange.status == "500 Internal Server Error"
    assert b"secret detail" in body and b"Traceback" in body
    exchange, body = run_app(app)
    assert b"secret detail" not in body


def test_exc_info_before_commit_replaces_the_response() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("X-First", "1")])
        try:
            raise KeyError("late")
        except KeyError:
            start_response("503 Service Unavailable", [("X-Second", "2")], sys.exc_info())
        return [b"sorry"]

    exchange, body = run_app(app)
    assert exchange.status == "503 Service Unavailable"
    assert ("X-Second", "2") in exchange.headers
    assert ("X-First", "1") not in exchange.headers
    assert body == b"sorry"


def test_exc_info_after_commit_reraises_and_breaks(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        write = start_response("200 OK", [])
        write(b"partial")
        try:
            raise KeyError("after headers")
        except KeyError:
            start_response("500 Oops", [], sys.exc_info())
        yield b"never"

    with caplog.at_level(logging.ERROR, logger="fsmio"):
        exchange, body = run_app(app)
    assert exchange.broken
    assert exchange.status == "200 OK"
    assert body == b"partial"
    assert sum(r.levelno >= logging.ERROR for r in caplog.records) == 1


def test_second_start_response_without_exc_info_is_an_error() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        start_response("200 OK", [])
        return []

    exchange, _ = run_app(app)
    assert exchange.status == "500 Internal Server Error"


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (200, []),
        ("200", []),
        ("OK 200", []),
        ("200 OK\r\nX: y", []),
        ("200 OK", [("Connection", "close")]),
        ("200 OK", [("Transfer-Encoding", "chunked")]),
        ("200 OK", [("X-Bad", "a\r\nInjected: 1")]),
        ("200 OK", [(b"X-Bytes", "v")]),
        ("200 OK", [("X-Bytes", b"v")]),
        ("200 OK", [("X-Bad Name:", "v")]),
        ("200 OK", [("X-Euro", "\u20ac")]),
        ("200 OK", ("not", "a list")),
        ("200 OK", [("one",)]),
    ],
)
def test_bad_status_or_headers_give_500(status: Any, headers: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(status, headers)
        return [b"x"]

    exchange, body = run_app(app)
    assert exchange.status == "500 Internal Server Error"
    assert body == b"Internal Server Error\n"


def test_str_chunk_and_missing_start_response_give_500() -> None:
    def gives_str(environ: dict[str, Any], start_response: Any) -> list[Any]:
        start_response("200 OK", [])
        return ["text"]

    def never_starts(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return []

    assert run_app(gives_str)[0].status == "500 Internal Server Error"
    assert run_app(never_starts)[0].status == "500 Internal Server Error"


def test_file_wrapper(tmp_path: Any) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 100)
    handles: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        handle = open(path, "rb")  # noqa: SIM115 - the wrapper closes it
        handles.append(handle)
        return environ["wsgi.file_wrapper"](handle, 1000)

    _exchange, body = run_app(app)
    assert body == path.read_bytes()
    assert handles[0].closed


def test_handoff_is_bounded_and_the_worker_waits() -> None:
    """A producer faster than the 'client' waits: at most a window of bytes is queued."""
    produced: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        for n in range(50):
            produced.append(n)
            yield b"x" * 1000

    loop = Loop()
    exchange = WsgiExchange(app, environ_of(request()), loop.wake, window=4000)
    worker = threading.Thread(target=exchange.run)
    worker.start()
    try:
        assert loop.woken.wait(5)
        deadline = time.monotonic() + 5
        # the worker stops at the window: 4 chunks queued, the 5th one waiting
        while len(produced) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        assert len(produced) == 5
        received = b""
        for _ in range(10_000):
            chunk = exchange.pop_chunk()
            if chunk is not None:
                received += chunk
                continue
            if exchange.all_in() and not exchange.has_chunks():
                break
            time.sleep(0.001)
        assert received == b"x" * 50_000
    finally:
        exchange.abort()
        worker.join(5)
    assert not worker.is_alive()


def test_abort_wakes_a_waiting_worker_and_close_is_called() -> None:
    closed = threading.Event()

    class Endless:
        def __iter__(self) -> Any:
            while True:
                yield b"y" * 1000

        def close(self) -> None:
            closed.set()

    def app(environ: dict[str, Any], start_response: Any) -> Endless:
        start_response("200 OK", [])
        return Endless()

    loop = Loop()
    exchange = WsgiExchange(app, environ_of(request()), loop.wake, window=2000)
    worker = threading.Thread(target=exchange.run)
    worker.start()
    assert loop.woken.wait(5)
    exchange.abort()
    worker.join(5)
    assert not worker.is_alive()
    assert closed.is_set()
    assert exchange.finished


def test_write_after_abort_raises_client_disconnected() -> None:
    seen: list[BaseException] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        exchange.abort()
        try:
            write(b"data")
        except ClientDisconnected as exc:
            seen.append(exc)
            raise
        return []

    loop = Loop()
    exchange = WsgiExchange(app, environ_of(request()), loop.wake)
    exchange.run()
    assert len(seen) == 1 and isinstance(seen[0], OSError)


def test_worker_pool_bounds_and_shutdown() -> None:
    pool = WorkerPool(2, name="t")
    release = threading.Event()
    started = threading.Semaphore(0)

    def job() -> None:
        started.release()
        release.wait(5)

    pool.submit(job)
    pool.submit(job)
    assert started.acquire(timeout=5) and started.acquire(timeout=5)
    assert pool.busy == 2
    assert not pool.idle()
    release.set()
    deadline = time.monotonic() + 5
    while pool.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.idle()
    assert pool.shutdown(wait=5)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(job)
    with pytest.raises(ValueError, match="size must be >= 1"):
        WorkerPool(0)


def test_worker_pool_survives_a_raising_job(caplog: pytest.LogCaptureFixture) -> None:
    pool = WorkerPool(1, name="r")
    done = threading.Event()

    def bad() -> None:
        raise RuntimeError("job failed")

    with caplog.at_level(logging.ERROR, logger="fsmio"):
        pool.submit(bad)
        pool.submit(done.set)
        assert done.wait(5)
    assert "a job raised" in caplog.text
    assert pool.shutdown(wait=5)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(min_size=0, max_size=40), query=st.binary(max_size=20))
def test_path_info_is_the_decoded_bytes_as_latin1(raw: bytes, query: bytes) -> None:
    from urllib.parse import quote_from_bytes

    target = b"/" + quote_from_bytes(raw, safe="").encode("ascii")
    env = environ_of(request(raw_path=target, query=query))
    assert env["PATH_INFO"].encode("latin-1") == b"/" + raw
    assert env["QUERY_STRING"].encode("latin-1") == query
