"""Streaming both ways: request bodies pulled with EV_HTTP_READ_BODY (and 100-continue on
demand), responses written in pieces and paced by EV_TRANSMIT_READY, memory bounded
against a client that never reads, and the upgrade hand-over."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest

from fsmio import GObj
from fsmio.core.event import Event
from tests.protocols.http.conftest import App, exchange, parse_responses, read_until_close


def _pull_body_then_answer(self: App, event: Event) -> Any:
    request = event.request
    assert request.streaming
    self.body_pieces = []
    return self.send_event(event.channel, "EV_HTTP_READ_BODY", request=request)


def _on_body(self: App, event: Event) -> Any:
    self.body_pieces.append(event.data)
    if event.more:
        return self.send_event(event.channel, "EV_HTTP_READ_BODY", request=event.request)
    body = b"".join(self.body_pieces)
    return self.send_event(
        event.channel,
        "EV_HTTP_RESPONSE",
        request=event.request,
        status=200,
        body=hashlib.sha256(body).hexdigest().encode() + b" %d" % len(body),
    )


@pytest.mark.parametrize("chunked", [False, True])
def test_big_body_streams_by_credit(http_server: Any, chunked: bool) -> None:
    server = http_server(max_buffered_body=1024)
    server.app.hooks["EV_HTTP_REQUEST"] = _pull_body_then_answer
    server.app.hooks["EV_HTTP_REQUEST_BODY"] = _on_body
    body = bytes(range(256)) * 4000  # 1 MB
    import httpx

    with httpx.Client() as client:
        content: Any = iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
        response = client.post(
            f"http://127.0.0.1:{server.port}/up", content=content if chunked else body
        )
    assert response.status_code == 200
    assert response.content == hashlib.sha256(body).hexdigest().encode() + b" %d" % len(body)
    (request,) = server.app.requests()
    assert request.streaming and request.body == b""
    assert request.chunked is chunked
    pieces = [kw for name, kw in server.app.events if name == "EV_HTTP_REQUEST_BODY"]
    assert [p["more"] for p in pieces][-1] is False
    assert all(p["more"] for p in pieces[:-1])


def test_nothing_beyond_one_read_until_asked(http_server: Any) -> None:
    """The application holds the request without reading: the client's body stops at the
    kernel buffers (reading is paused), and nothing is delivered until it asks."""
    server = http_server(max_buffered_body=1024)
    held: list[tuple[Any, Any]] = []
    server.app.hooks["EV_HTTP_REQUEST"] = lambda self, ev: held.append((ev.channel, ev.request))
    total = 64 << 20
    with server.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
        sock.setblocking(False)
        sent = 0
        chunk = b"b" * 65536
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and sent < total:
            try:
                sent += sock.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
        server.wait_for(lambda: bool(held))
        channel, request = held[0]
        assert sent < total  # the server stopped reading: the client is blocked
        buffered = server.call(lambda: request._body_buffered)
        assert buffered <= 512 * 1024  # at most what the reads before the pause brought
        assert server.call(lambda: channel.gsock.reading_paused)
        assert "EV_HTTP_REQUEST_BODY" not in server.app.names()
        server.call(lambda: server.app.send_event(channel, "EV_DROP"))
        sock.setblocking(True)


def _raw_100_continue(server: Any, read_body: bool) -> tuple[bytes, bytes]:
    def on_request(self: App, event: Event) -> Any:
        if read_body and event.request.streaming:
            return _pull_body_then_answer(self, event)
        if read_body:
            return self.send_event(
                event.channel, "EV_HTTP_RESPONSE", request=event.request, status=200
            )
        return self.send_event(
            event.channel, "EV_HTTP_RESPONSE", request=event.request, status=413, body=b"no"
        )

    server.app.hooks["EV_HTTP_REQUEST"] = on_request
    server.app.hooks["EV_HTTP_REQUEST_BODY"] = _on_body
    with server.connect() as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        sock.settimeout(5)
        first = sock.recv(65536)
        if read_body:
            sock.sendall(b"hello")
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return first, read_until_close(sock)


def test_100_continue_sent_when_the_body_is_read(http_server: Any) -> None:
    server = http_server()
    first, rest = _raw_100_continue(server, read_body=True)
    assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    data = first[len(b"HTTP/1.1 100 Continue\r\n\r\n") :] + rest
    responses = parse_responses(data)
    assert responses[0][2] == hashlib.sha256(b"hello").hexdigest().encode() + b" 5"
    assert [r[0] for r in responses] == [200, 200]


def test_no_100_continue_when_answered_without_reading(http_server: Any) -> None:
    server = http_server()
    first, rest = _raw_100_continue(server, read_body=False)
    data = first + rest
    assert b"100 Continue" not in data
    (response,) = parse_responses(data)
    assert response[0] == 413
    assert response[1]["connection"] == "close"


def test_unread_small_body_is_drained_and_keep_alive_goes_on(http_server: Any) -> None:
    server = http_server(auto_read_body=False)

    def answer_at_once(self: App, event: Event) -> Any:
        return self.send_event(
            event.channel, "EV_HTTP_RESPONSE", request=event.request, status=200, body=b"ok"
        )

    server.app.hooks["EV_HTTP_REQUEST"] = answer_at_once
    out = exchange(
        server,
        b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert [(s, b) for s, _, b in parse_responses(out)] == [(200, b"ok"), (200, b"ok")]
    assert [r.path for r in server.app.requests()] == ["/1", "/2"]


# ----------------------------------------------------------------------------------------
#   Streamed responses
# ----------------------------------------------------------------------------------------
class _Producer:
    """Streams ``total`` bytes in ``chunk`` pieces while the channel can take them."""

    def __init__(self, total: int, chunk: int, length: bool = False) -> None:
        self.total = total
        self.chunk = b"p" * chunk
        self.length = length
        self.sent = 0
        self.max_pending = 0
        self.channel: Any = None
        self.request: Any = None
        self.ended = False

    def on_request(self, app: App, event: Event) -> Any:
        self.channel, self.request = event.channel, event.request
        headers = [("Content-Length", str(self.total))] if self.length else []
        app.send_event(
            self.channel,
            "EV_HTTP_RESPONSE_START",
            request=self.request,
            status=200,
            headers=headers,
        )
        return self.produce(app)

    def produce(self, app: App) -> None:
        channel = self.channel
        while self.sent < self.total and channel.can_write():
            n = min(len(self.chunk), self.total - self.sent)
            assert (
                app.send_event(
                    channel, "EV_HTTP_RESPONSE_DATA", request=self.request, data=self.chunk[:n]
                )
                >= n
            )
            self.sent += n
            self.max_pending = max(self.max_pending, channel.output_pending())
        if self.sent >= self.total and not self.ended:
            self.ended = True
            app.send_event(channel, "EV_HTTP_RESPONSE_END", request=self.request)


@pytest.mark.parametrize("length", [False, True], ids=["chunked", "content_length"])
def test_streamed_response_paced_by_transmit_ready(http_server: Any, length: bool) -> None:
    server = http_server()
    producer = _Producer(8 << 20, 65536, length)
    server.app.hooks["EV_HTTP_REQUEST"] = producer.on_request
    server.app.hooks["EV_TRANSMIT_READY"] = lambda app, ev: producer.produce(app)
    import httpx

    with httpx.Client(timeout=20) as client:
        response = client.get(f"http://127.0.0.1:{server.port}/stream")
    assert response.status_code == 200
    assert len(response.content) == 8 << 20
    assert ("content-length" in response.headers) is length
    assert (response.headers.get("transfer-encoding") == "chunked") is not length
    assert producer.max_pending <= 65536 + 16


_READER = r"""
import socket, sys
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
sock.connect(("127.0.0.1", int(sys.argv[1])))
sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
sys.stdin.readline()  # not reading until told
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
sock.settimeout(60)
received, tail = 0, b""
while True:
    data = sock.recv(1 << 20)
    if not data:
        break
    received += len(data)
    tail = (tail + data)[-16:]
    if tail.endswith(b"\r\n0\r\n\r\n"):
        break
print(received, flush=True)
"""


@pytest.mark.slow
def test_client_that_never_reads_keeps_server_memory_bounded(http_server: Any) -> None:
    """A 256 MiB streamed response to a client (another process) that does not read: the
    GSock's pending output never goes beyond one chunk (the producer waits for
    EV_TRANSMIT_READY), and once the client reads, every byte arrives."""
    import subprocess
    import sys

    total = 256 << 20
    server = http_server(
        sock_options={
            "outbuf_max": 1 << 20,
            "outbuf_high_water": 1 << 19,
            "tx_buffer_size": 1 << 18,
        }
    )
    producer = _Producer(total, 65536)
    server.app.hooks["EV_HTTP_REQUEST"] = producer.on_request
    server.app.hooks["EV_TRANSMIT_READY"] = lambda app, ev: producer.produce(app)
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(server.port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # not reading: the producer stalls (no progress for 0.3 s) within a few seconds
        server.wait_for(lambda: producer.sent > 0, 15)
        stalled_at = -1
        deadline = time.monotonic() + 15
        while producer.sent != stalled_at:
            assert time.monotonic() < deadline, "the producer never stopped"
            stalled_at = producer.sent
            time.sleep(0.3)
        assert 0 < stalled_at < 32 << 20
        assert producer.max_pending <= 65536 + 16
        assert server.call(lambda: producer.channel.output_pending()) <= 65536 + 16
        out, _ = reader.communicate("go\n", timeout=100)
        assert reader.returncode == 0
        assert producer.sent == total
        assert int(out) > total  # the body plus the head and chunk framing
        assert producer.max_pending <= 65536 + 16
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.communicate(timeout=10)


def test_too_much_for_content_length_closes(http_server: Any) -> None:
    server = http_server()
    results: list[int] = []

    def on_request(app: App, event: Event) -> None:
        ch, rq = event.channel, event.request
        app.send_event(
            ch,
            "EV_HTTP_RESPONSE_START",
            request=rq,
            status=200,
            headers=[(b"Content-Length", b"3")],
        )
        results.append(app.send_event(ch, "EV_HTTP_RESPONSE_DATA", request=rq, data=b"abcd"))

    server.app.hooks["EV_HTTP_REQUEST"] = on_request
    exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert results == [-1]
    server.wait_for(lambda: server.app.close_reasons() == ["response_error"])


def test_less_than_content_length_closes_without_keep_alive(http_server: Any) -> None:
    server = http_server()

    def on_request(app: App, event: Event) -> None:
        ch, rq = event.channel, event.request
        app.send_event(
            ch,
            "EV_HTTP_RESPONSE_START",
            request=rq,
            status=200,
            headers=[(b"Content-Length", b"10")],
        )
        app.send_event(ch, "EV_HTTP_RESPONSE_DATA", request=rq, data=b"abc")
        app.send_event(ch, "EV_HTTP_RESPONSE_END", request=rq)

    server.app.hooks["EV_HTTP_REQUEST"] = on_request
    out = exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.endswith(b"\r\n\r\nabc")
    assert len(server.app.requests()) == 1


def test_chunked_trailers_and_response_splitting_refused(http_server: Any) -> None:
    server = http_server()
    errors: list[str] = []

    def on_request(app: App, event: Event) -> None:
        ch, rq = event.channel, event.request
        for bad in ([("X-A", "a\r\nSet-Cookie: x")], [("X-A\n", "a")], [("X-A", "a\x00")]):
            try:
                app.send_event(ch, "EV_HTTP_RESPONSE", request=rq, status=200, headers=bad)
            except ValueError as exc:
                errors.append(str(exc))
        app.send_event(ch, "EV_HTTP_RESPONSE_START", request=rq, status=200, headers=())
        app.send_event(ch, "EV_HTTP_RESPONSE_DATA", request=rq, data=b"xyz")
        app.send_event(ch, "EV_HTTP_RESPONSE_END", request=rq, trailers=[("X-Sum", "1")])

    server.app.hooks["EV_HTTP_REQUEST"] = on_request
    out = exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert len(errors) == 3 and all("CR, LF or NUL" in e or "token" in e for e in errors)
    assert b"Set-Cookie" not in out
    assert out.endswith(b"3\r\nxyz\r\n0\r\nX-Sum: 1\r\n\r\n")


# ----------------------------------------------------------------------------------------
#   Upgrade hand-over
# ----------------------------------------------------------------------------------------
def _echo_rx(self: GObj, event: Event) -> None:
    self.received.append(event.data)
    self.send_event(event.gsock, "EV_SEND_DATA", data=b"echo:" + event.data)


_ECHO_FSM: dict[str, Any] = {
    "event_list": (
        "EV_RX_DATA: bottom input",
        "EV_DISCONNECTED: bottom input",
        "EV_TRANSMIT_READY: bottom input",
        "EV_CONNECTED: bottom input",
    ),
    "state_list": ("ST_OPEN",),
    "machine": {
        "ST_OPEN": (
            ("EV_RX_DATA", _echo_rx, None),
            ("EV_DISCONNECTED", None, None),
            ("EV_TRANSMIT_READY", None, None),
            ("EV_CONNECTED", None, None),
        )
    },
}


class _Echo(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, _ECHO_FSM)
        self.received: list[bytes] = []


def test_upgrade_hands_the_gsock_over_with_the_bytes_after_the_head(http_server: Any) -> None:
    server = http_server()
    echoes: list[_Echo] = []

    def on_request(app: App, event: Event) -> None:
        echo = app.create_gobj(None, _Echo, app)
        echoes.append(echo)
        # the 101 first: the bytes read past the head reach the new subscriber at once
        app.send_event(
            event.channel.gsock,
            "EV_SEND_DATA",
            data=b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n"
            b"Connection: Upgrade\r\n\r\n",
        )
        gsock = event.channel.hand_over_gsock(event.request, echo)
        assert gsock is not None

    server.app.hooks["EV_HTTP_REQUEST"] = on_request
    with server.connect() as sock:
        sock.sendall(
            b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nEARLY"
            b"GET /not-a-request HTTP/1.1\r\n\r\n"
        )
        sock.settimeout(5)
        got = b""
        deadline = time.monotonic() + 5
        while b"echo:EARLY" not in got and time.monotonic() < deadline:
            got += sock.recv(65536)
        assert got.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        sock.sendall(b"later")
        while b"echo:later" not in got and time.monotonic() < deadline:
            got += sock.recv(65536)
    assert b"echo:later" in got
    assert len(server.app.requests()) == 1
    server.wait_for(lambda: server.app.close_reasons() == ["upgraded"])
    assert echoes[0].received[0].startswith(b"EARLY")


def test_end_of_a_chunked_body_arriving_alone_is_delivered(http_server: Any) -> None:
    """The last chunk (``0\\r\\n\\r\\n``) in a read of its own, while the application waits
    for more: it gets EV_HTTP_REQUEST_BODY(more=False)."""
    server = http_server(max_buffered_body=4)
    server.app.hooks["EV_HTTP_REQUEST"] = _pull_body_then_answer
    server.app.hooks["EV_HTTP_REQUEST_BODY"] = _on_body
    with server.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"a\r\n0123456789\r\n")
        server.wait_for(lambda: "EV_HTTP_REQUEST_BODY" in server.app.names())
        time.sleep(0.05)
        sock.sendall(b"0\r\n\r\n")
        sock.settimeout(5)
        data = sock.recv(65536)
    assert parse_responses(data)[0][2].endswith(b" 10")


def test_http10_streamed_response_is_close_delimited(http_server: Any) -> None:
    server = http_server()

    def on_request(app: App, event: Event) -> None:
        ch, rq = event.channel, event.request
        app.send_event(ch, "EV_HTTP_RESPONSE_START", request=rq, status=200)
        app.send_event(ch, "EV_HTTP_RESPONSE_DATA", request=rq, data=b"abc")
        app.send_event(ch, "EV_HTTP_RESPONSE_DATA", request=rq, data=b"def")
        app.send_event(ch, "EV_HTTP_RESPONSE_END", request=rq)

    server.app.hooks["EV_HTTP_REQUEST"] = on_request
    out = exchange(server, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert out.startswith(b"HTTP/1.0 200 OK\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Connection: close" in head and b"Transfer-Encoding" not in head
    assert body == b"abcdef"
