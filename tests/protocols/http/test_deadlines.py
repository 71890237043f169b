"""Deadlines (not idle timers that bytes push back): keep-alive, header (slowloris),
body, responseless (504); and the graceful shutdown that lets in-flight responses end."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import pytest

from fsmio.core.event import Event
from tests.protocols.http.conftest import App, HttpServerThread, parse_responses, read_until_close


def test_keepalive_timeout_closes_an_idle_connection(http_server: Any) -> None:
    server = http_server(keepalive_timeout=0.3)
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        start = time.monotonic()
        out = read_until_close(sock)
        elapsed = time.monotonic() - start
    assert parse_responses(out)[0][0] == 200
    assert 0.2 < elapsed < 2.0
    server.wait_for(lambda: server.app.close_reasons() == ["keepalive_timeout"])


def test_keepalive_deadline_counts_from_the_last_response(http_server: Any) -> None:
    server = http_server(keepalive_timeout=0.4)
    with server.connect() as sock:
        sock.settimeout(5)
        for _ in range(4):  # 4 x 0.2 s: longer than the timeout, each gap shorter
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            time.sleep(0.2)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


def test_header_deadline_is_not_pushed_back_by_trickled_bytes(http_server: Any) -> None:
    server = http_server(header_timeout=0.5)
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    with server.connect() as sock:
        start = time.monotonic()
        closed_at = None
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.02)
            if time.monotonic() - start > 3:
                break
        out = read_until_close(sock)
        closed_at = time.monotonic() - start
    assert parse_responses(out)[0][0] == 408
    assert closed_at < 3
    server.wait_for(lambda: server.app.close_reasons() == ["header_timeout"])


@pytest.mark.slow
def test_slowloris_does_not_stop_a_fresh_client(http_server: Any) -> None:
    """Many connections trickling header bytes: a fresh client is served within a second,
    and the trickling ones are closed at the header deadline."""
    server = http_server(header_timeout=1.5)
    n = 100
    slow = [server.connect() for _ in range(n)]
    stop = threading.Event()

    def trickle() -> None:
        for i in range(200):
            if stop.is_set():
                return
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(b"GET / HTTP/1.1\r\n" if i == 0 else b"X")
            time.sleep(0.05)

    thread = threading.Thread(target=trickle)
    thread.start()
    try:
        time.sleep(0.3)
        start = time.monotonic()
        with server.connect() as sock:
            sock.sendall(b"GET /fresh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            out = read_until_close(sock)
        assert time.monotonic() - start < 1.0
        assert parse_responses(out)[0][0] == 200
        server.wait_for(lambda: server.app.close_reasons().count("header_timeout") == n, 5)
        for sock in slow:
            sock.settimeout(2)
            data = read_until_close(sock)
            assert data.startswith(b"HTTP/1.1 408 ")
    finally:
        stop.set()
        thread.join(10)
        for sock in slow:
            sock.close()


def test_body_timeout_408(http_server: Any) -> None:
    server = http_server(body_timeout=0.3)
    with server.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabcde")
        out = read_until_close(sock)
    assert parse_responses(out)[0][0] == 408
    server.wait_for(lambda: server.app.close_reasons() == ["body_timeout"])
    assert server.app.requests() == []


def test_responseless_timeout_504_and_late_response_refused(http_server: Any) -> None:
    server = http_server(responseless_timeout=0.3)
    held: list[tuple[Any, Any]] = []
    server.app.hooks["EV_HTTP_REQUEST"] = lambda app, ev: held.append((ev.channel, ev.request))
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        start = time.monotonic()
        out = read_until_close(sock)
    assert 0.2 < time.monotonic() - start < 3
    (response,) = parse_responses(out)
    assert response[0] == 504
    server.wait_for(lambda: server.app.close_reasons() == ["responseless_timeout"])
    channel, request = held[0]
    late = server.call(
        lambda: server.app.send_event(channel, "EV_HTTP_RESPONSE", request=request, status=200)
    )
    assert late == -1
    assert len(held) == 1


def test_responseless_timeout_zero_is_off(http_server: Any) -> None:
    server = http_server(responseless_timeout=0, keepalive_timeout=0.2)
    held: list[tuple[Any, Any]] = []
    server.app.hooks["EV_HTTP_REQUEST"] = lambda app, ev: held.append((ev.channel, ev.request))
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        server.wait_for(lambda: bool(held))
        time.sleep(0.5)
        channel, request = held[0]
        server.call(
            lambda: server.app.send_event(
                channel, "EV_HTTP_RESPONSE", request=request, status=200, body=b"late"
            )
        )
        out = read_until_close(sock)
    assert parse_responses(out)[0][2] == b"late"


def test_graceful_shutdown_finishes_in_flight_responses() -> None:
    """stop(): the idle connection closes at once; the one waiting for its response gets
    it (with Connection: close) before the server goes."""
    server = HttpServerThread(drain_timeout=5.0, gaplic_kw={"shutdown_grace": 5.0})
    held: list[tuple[Any, Any]] = []

    def hold(app: App, event: Event) -> None:
        held.append((event.channel, event.request))
        app.gaplic.stop()
        # answered 0.3 s later, while the GAplic is shutting down
        app.gaplic.call_later(
            0.3,
            lambda: app.send_event(
                event.channel,
                "EV_HTTP_RESPONSE",
                request=event.request,
                status=200,
                body=b"finished",
            ),
        )

    server.app.hooks["EV_HTTP_REQUEST"] = hold
    server.start()
    idle = server.connect()
    busy = server.connect()
    try:
        time.sleep(0.2)
        busy.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        out = read_until_close(busy)
        assert read_until_close(idle) == b""
    finally:
        idle.close()
        busy.close()
        server.thread.join(10)
        server.gaplic.close()
    (response,) = parse_responses(out)
    assert response[2] == b"finished"
    assert response[1]["connection"] == "close"
    assert sorted(server.app.close_reasons()) == ["shutdown", "shutdown"]


def test_shutdown_stops_listening_and_closes_idle_connections(http_server: Any) -> None:
    server = http_server()
    with server.connect() as idle:
        server.wait_for(lambda: len(server.server.get_channels()) == 1)
        assert server.call(lambda: server.server._shutdown()) is None  # nothing in flight
        assert read_until_close(idle) == b""
    assert not server.call(lambda: server.server.gserversock.is_listening())
    server.wait_for(lambda: server.app.close_reasons() == ["shutdown"])


def test_inactivity_timeout_while_a_streamed_response_stalls(http_server: Any) -> None:
    server = http_server(inactivity_timeout=0.3)

    def stall(app: App, event: Event) -> None:
        app.send_event(event.channel, "EV_HTTP_RESPONSE_START", request=event.request, status=200)
        app.send_event(event.channel, "EV_HTTP_RESPONSE_DATA", request=event.request, data=b"x")

    server.app.hooks["EV_HTTP_REQUEST"] = stall
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        start = time.monotonic()
        out = read_until_close(sock)
    assert 0.2 < time.monotonic() - start < 3
    assert out.endswith(b"1\r\nx\r\n")  # the chunk, never the end of the response
    server.wait_for(lambda: server.app.close_reasons() == ["inactivity"])


def test_shutdown_does_not_wait_beyond_drain_timeout() -> None:
    server = HttpServerThread(drain_timeout=0.3, gaplic_kw={"shutdown_grace": 5.0})
    held: list[Any] = []
    server.app.hooks["EV_HTTP_REQUEST"] = lambda app, ev: held.append(ev.request)
    server.start()
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        server.wait_for(lambda: bool(held))
        start = time.monotonic()
        server.gaplic.stop()
        server.thread.join(10)
        assert not server.thread.is_alive()
        assert time.monotonic() - start < 3
        assert read_until_close(sock) == b""
    server.gaplic.close()
    assert server.app.close_reasons() == ["shutdown"]
