"""GWsgiServer over real loopback sockets, with http.client, httpx and raw sockets."""

from __future__ import annotations

import hashlib
import http.client
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fsmio import GAplic, GConfigValidateError
from fsmio.protocols.apps import AppNotFound
from fsmio.protocols.wsgi import GWsgiServer, URLMap
from tests.protocols.serving import post_chunked, serving, wait_until


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello World\n"]


def get(port: int, path: str, method: str = "GET", body: bytes | None = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_hello_and_keep_alive() -> None:
    with serving(GWsgiServer, application=hello) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        try:
            for _ in range(3):
                conn.request("GET", "/")
                response = conn.getresponse()
                assert response.status == 200
                assert response.reason == "OK"
                assert response.getheader("Content-Length") == "12"
                assert response.read() == b"Hello World\n"
            conn.request("HEAD", "/")
            response = conn.getresponse()
            assert response.status == 200
            assert response.read() == b""
        finally:
            conn.close()


def test_environ_over_the_wire() -> None:
    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(dict(environ))
        start_response("299 Custom Reason", [("X-Reply", "yes")])
        return [b"ok"]

    with serving(GWsgiServer, application=app, script_name="/mnt") as srv:
        with httpx.Client(timeout=10) as client:
            response = client.get(f"{srv.url}/mnt/a%20b?x=1", headers={"X-Test": "v"})
        assert response.status_code == 299
        assert response.reason_phrase == "Custom Reason"
        assert response.headers["x-reply"] == "yes"
    env = seen[0]
    assert env["SCRIPT_NAME"] == "/mnt"
    assert env["PATH_INFO"] == "/a b"
    assert env["QUERY_STRING"] == "x=1"
    assert env["HTTP_X_TEST"] == "v"
    assert env["HTTP_HOST"] == f"127.0.0.1:{srv.port}"
    assert env["SERVER_PORT"] == str(srv.port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert int(env["REMOTE_PORT"]) > 0
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is True


def test_the_application_runs_on_a_worker_thread() -> None:
    threads: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        threads.append(threading.current_thread().name)
        start_response("200 OK", [])
        return [b"x"]

    with serving(GWsgiServer, application=app) as srv:
        assert get(srv.port, "/")[0] == 200
    assert threads[0].startswith("wsgi-server-")


def test_pool_fills_reading_pauses_and_nothing_is_lost() -> None:
    release = threading.Event()
    entered = threading.Semaphore(0)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        entered.release()
        assert release.wait(20)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode()]

    results: dict[int, Any] = {}
    with serving(GWsgiServer, application=app, threads=2) as srv:
        server: GWsgiServer = srv.server

        def client(n: int) -> None:
            results[n] = get(srv.port, f"/r{n}")

        clients = [threading.Thread(target=client, args=(n,)) for n in range(6)]
        for thread in clients:
            thread.start()
        assert entered.acquire(timeout=10) and entered.acquire(timeout=10)
        wait_until(lambda: server.waiting == 4, what="4 requests waiting for a worker")
        assert server.running == 2
        # the connections of the waiting requests are not read any more
        waiting = list(server._waiting)
        assert all(exchange.channel.gsock.reading_paused for exchange in waiting)
        # a connection with two pipelined requests, arriving while the pool is full
        pipelined = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
        pipelined.sendall(b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: server.waiting == 5, what="the pipelined request waits too")
        assert not entered.acquire(timeout=0.2)  # no third thread
        release.set()
        for thread in clients:
            thread.join(20)
        replies = b""
        for _ in range(1000):
            if replies.count(b"HTTP/1.1 200 OK") == 2 and replies.endswith(b"/p2"):
                break
            replies += pipelined.recv(65536)
        pipelined.close()
        wait_until(lambda: server.running == 0 and server.waiting == 0)
    assert sorted(results) == list(range(6))
    for n, (status, _, body) in results.items():
        assert status == 200
        assert body == f"/r{n}".encode()
    assert replies.index(b"/p1") < replies.index(b"/p2")


def test_application_error_is_a_500_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise ValueError("the application failed")

    with caplog.at_level(logging.ERROR), serving(GWsgiServer, application=app) as srv:
        status, _headers, body = get(srv.port, "/boom")
        # and the server goes on
        assert get(srv.port, "/boom")[0] == 500
    assert status == 500
    assert body == b"Internal Server Error\n"
    errors = [r for r in caplog.records if "the application failed" in r.getMessage()]
    assert len(errors) == 2  # once per request
    assert all(r.levelno == logging.ERROR and r.exc_info for r in errors)


def test_expose_tracebacks() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise ValueError("visible detail")

    with serving(GWsgiServer, application=app, expose_tracebacks=True) as srv:
        status, _, body = get(srv.port, "/")
    assert status == 500
    assert b"visible detail" in body


def test_write_callable_exc_info_and_close() -> None:
    closed = threading.Event()

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"-iterated"

        def close(self) -> None:
            closed.set()

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("200 OK", [("X-First", "1")])
        try:
            raise RuntimeError("changed my mind")
        except RuntimeError:
            write = start_response("202 Accepted", [("X-Second", "2")], sys.exc_info())
        write(b"written")
        return Body()

    with serving(GWsgiServer, application=app) as srv:
        status, headers, body = get(srv.port, "/")
        assert closed.wait(5)
    assert status == 202
    assert headers.get("X-Second") == "2"
    assert "X-First" not in headers
    assert body == b"written-iterated"


def test_close_called_when_the_client_goes_away() -> None:
    closed = threading.Event()
    produced: list[int] = []

    class Endless:
        def __iter__(self) -> Iterator[bytes]:
            for n in range(10**9):
                produced.append(n)
                yield b"z" * 65536

        def close(self) -> None:
            closed.set()

    def app(environ: dict[str, Any], start_response: Any) -> Endless:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Endless()

    with serving(GWsgiServer, application=app) as srv:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(1000).startswith(b"HTTP/1.1 200 OK")
        sock.close()
        assert closed.wait(10), "close() was not called after the client went away"
        wait_until(lambda: srv.server.running == 0)


def test_a_client_that_does_not_read_blocks_its_worker() -> None:
    """The worker waits on the bounded hand-off: what it produced stays bounded."""
    produced = [0]
    total = 32 * 1024 * 1024

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", str(total))])
        chunk = b"q" * 65536
        for _ in range(total // len(chunk)):
            produced[0] += len(chunk)
            yield chunk

    with serving(GWsgiServer, application=app) as srv:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        try:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_until(lambda: produced[0] > 0)
            # It stalls (kernel buffers + the GSock's queue + the hand-off window full):
            # production stops changing, well below the 64 MiB of the response.
            stalled = -1
            for _ in range(40):  # at most 12 s
                time.sleep(0.3)
                if produced[0] == stalled:
                    break
                stalled = produced[0]
            else:
                raise AssertionError(f"the worker never stalled: {produced[0]} bytes")
            assert stalled < 16 * 1024 * 1024, stalled
            received = 0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                data = sock.recv(1 << 20)
                if not data:
                    break
                received += len(data)
                if received >= total:
                    head_end = data.find(b"\r\n\r\n")
                    del head_end
                if produced[0] == total and received > total:
                    break
        finally:
            sock.close()
    assert produced[0] == total
    assert received > total  # the body and its head


def test_file_wrapper(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(range(256)) * 4096)  # 1 MiB

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open(path, "rb"), 32768)

    with serving(GWsgiServer, application=app) as srv, httpx.Client(timeout=10) as client:
        response = client.get(srv.url)
    assert response.status_code == 200
    assert response.content == path.read_bytes()


def digest_app(info: list[tuple[str, bool]]) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        digest = hashlib.sha256()
        first = stream.readline(100)
        digest.update(first)
        while True:
            piece = stream.read(50_000)
            if not piece:
                break
            digest.update(piece)
        info.append((environ.get("CONTENT_LENGTH", ""), bool(getattr(stream, "_rolled", False))))
        start_response("200 OK", [])
        return [digest.hexdigest().encode()]

    return app


def payload_of(size: int) -> bytes:
    return (b"line one\n" + bytes(range(256)) * (size // 256 + 1))[:size]


@pytest.mark.parametrize("size", [10, 200_000, 3 * 1024 * 1024])
def test_large_wsgi_input_spooled(size: int) -> None:
    info: list[tuple[str, bool]] = []
    payload = payload_of(size)
    with (
        serving(GWsgiServer, application=digest_app(info), wsgi_spool_size=100_000) as srv,
        httpx.Client(timeout=30) as client,
    ):
        response = client.post(srv.url + "/upload", content=payload)
    assert response.status_code == 200
    assert response.content == hashlib.sha256(payload).hexdigest().encode()
    assert info[0][0] == str(size)
    # past wsgi_spool_size, the body went to a temporary file
    assert info[0][1] is (size > 100_000)


@pytest.mark.parametrize("size", [10, 200_000, 2 * 1024 * 1024])
def test_chunked_wsgi_input(size: int) -> None:
    info: list[tuple[str, bool]] = []
    payload = payload_of(size)
    pieces = [payload[i : i + 70_000] for i in range(0, len(payload), 70_000)]
    with serving(GWsgiServer, application=digest_app(info), wsgi_spool_size=100_000) as srv:
        status, body = post_chunked(srv.port, "/upload", pieces)
    assert status == 200
    assert body == hashlib.sha256(payload).hexdigest().encode()
    assert info[0][0] == ""  # chunked: no CONTENT_LENGTH
    assert info[0][1] is (size > 100_000)


def test_chunked_wsgi_input_whose_end_arrives_late() -> None:
    """The terminating chunk alone, after the body was pulled: the pull is answered."""
    info: list[tuple[str, bool]] = []
    payload = payload_of(200_000)
    with serving(
        GWsgiServer, application=digest_app(info), body_timeout=3.0, wsgi_spool_size=100_000
    ) as srv:
        status, body = post_chunked(srv.port, "/upload", [payload], pause_before_end=0.3)
    assert status == 200
    assert body == hashlib.sha256(payload).hexdigest().encode()


def test_urlmap_behind_the_server() -> None:
    def named(name: str) -> Any:
        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            start_response("200 OK", [])
            return [f"{name}:{environ['SCRIPT_NAME']}:{environ['PATH_INFO']}".encode()]

        return app

    urlmap = URLMap()
    urlmap["/"] = named("root")
    urlmap["/api"] = named("api")
    with serving(GWsgiServer, application=urlmap) as srv:
        assert get(srv.port, "/api/v1")[2] == b"api:/api:/v1"
        assert get(srv.port, "/other")[2] == b"root::/other"


def test_application_by_registered_name_and_module_path() -> None:
    from fsmio import set_global_app

    set_global_app("wsgi-test-registered", hello)
    with serving(GWsgiServer, application="wsgi-test-registered") as srv:
        assert get(srv.port, "/")[2] == b"Hello World\n"
    with serving(GWsgiServer, application="fsmio.examples.wsgi_demo:application") as srv:
        assert get(srv.port, "/")[2] == b"Hello from fsmio (WSGI)\n"


def test_a_name_registered_after_start_is_found_at_the_first_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from fsmio import set_global_app

    with serving(GWsgiServer, application="wsgi-test-late") as srv:
        with caplog.at_level(logging.ERROR):
            assert get(srv.port, "/")[0] == 500
        assert "no application registered as 'wsgi-test-late'" in caplog.text
        set_global_app("wsgi-test-late", hello)
        assert get(srv.port, "/")[2] == b"Hello World\n"


def test_bad_configuration() -> None:
    with GAplic("wsgi-bad") as gaplic:
        with pytest.raises(AppNotFound, match="no application given"):
            gaplic.create_gobj("w", GWsgiServer, gaplic, host="127.0.0.1")
        with pytest.raises(AppNotFound, match="no module named"):
            gaplic.create_gobj(
                "w2", GWsgiServer, gaplic, host="127.0.0.1", application="nosuchmod_q:app"
            )
        with pytest.raises(GConfigValidateError, match="threads"):
            gaplic.create_gobj("w3", GWsgiServer, gaplic, application=hello, threads=0)
        with pytest.raises(GConfigValidateError, match="script_name"):
            gaplic.create_gobj("w4", GWsgiServer, gaplic, application=hello, script_name="x")


def test_stopping_lets_a_running_request_finish() -> None:
    entered = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        entered.set()
        time.sleep(0.3)
        start_response("200 OK", [])
        return [b"finished"]

    results: list[Any] = []
    with serving(GWsgiServer, application=app) as srv:
        client = threading.Thread(target=lambda: results.append(get(srv.port, "/")))
        client.start()
        assert entered.wait(10)
    # the with block stopped the GAplic while the application was running
    client.join(10)
    assert results and results[0][0] == 200
    assert results[0][2] == b"finished"


def test_a_body_that_cannot_be_spooled_is_a_503(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import errno
    import tempfile

    class DiskFull(tempfile.SpooledTemporaryFile):  # type: ignore[type-arg]
        def write(self, data: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(
        "fsmio.protocols.wsgi.c_wsgi_server.tempfile.SpooledTemporaryFile", DiskFull
    )
    with caplog.at_level(logging.ERROR), serving(GWsgiServer, application=hello) as srv:
        status, _headers, _body = get(srv.port, "/upload", "POST", b"u" * 300_000)
    assert status == 503
    assert "spooling a request body failed" in caplog.text


@pytest.mark.parametrize("size", [2000, 200_000])
def test_expect_100_continue(size: int) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        data = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [str(len(data)).encode()]

    with serving(GWsgiServer, application=app) as srv:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        try:
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                b"Expect: 100-continue\r\n\r\n" % size
            )
            assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(b"x" * size)
            reply = b""
            while not reply.endswith(str(size).encode()):
                piece = sock.recv(4096)
                assert piece, reply
                reply += piece
        finally:
            sock.close()
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_request_after_the_pool_stopped_is_a_503() -> None:
    with serving(GWsgiServer, application=hello) as srv:
        assert get(srv.port, "/")[0] == 200
        assert srv.server._pool.shutdown(wait=5)  # as when the GAplic is stopping
        status, headers, _ = get(srv.port, "/")
    assert status == 503
    assert headers.get("Connection") == "close"
