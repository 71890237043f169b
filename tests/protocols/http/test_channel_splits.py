"""The channel against random read splits: pipelined requests with bodies (small, big,
chunked, with a last chunk alone), read by the application through EV_HTTP_READ_BODY
when streamed, in any size of reads: every request is delivered once, in order, with its
whole body, and every response comes back in order."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import time
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsmio import GAplic
from fsmio.core.event import Event
from fsmio.protocols.http.c_http_server import GHttpServer
from tests.helpers import drive
from tests.protocols.http.conftest import App, parse_responses


def _on_request(app: App, event: Event) -> Any:
    request = event.request
    if request.streaming:
        app.pieces = []
        return app.send_event(event.channel, "EV_HTTP_READ_BODY", request=request)
    return _answer(app, event.channel, request, request.body)


def _on_body(app: App, event: Event) -> Any:
    app.pieces.append(event.data)
    if event.more:
        return app.send_event(event.channel, "EV_HTTP_READ_BODY", request=event.request)
    return _answer(app, event.channel, event.request, b"".join(app.pieces))


def _answer(app: App, channel: Any, request: Any, body: bytes) -> Any:
    digest = hashlib.sha256(body).hexdigest()[:16].encode()
    return app.send_event(
        channel,
        "EV_HTTP_RESPONSE",
        request=request,
        status=200,
        body=request.raw_path + b" " + digest,
    )


@st.composite
def _request(draw: Any) -> tuple[bytes, bytes]:
    i = draw(st.integers(0, 10**6))
    kind = draw(st.sampled_from(["get", "length", "chunked"]))
    size = draw(st.sampled_from([0, 1, 10, 100, 3000, 70000]))
    body = bytes([i % 251]) * size
    path = b"/r%d" % i
    if kind == "get" or not body:
        return path, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path
    if kind == "length":
        head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path, size)
        return path + b" " + hashlib.sha256(body).hexdigest()[:16].encode(), head + body
    head = b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % path
    cut = draw(st.integers(1, size))
    chunked = b"%x\r\n%s\r\n" % (cut, body[:cut])
    if cut < size:
        chunked += b"%x\r\n%s\r\n" % (size - cut, body[cut:])
    return path + b" " + hashlib.sha256(body).hexdigest()[:16].encode(), head + chunked + (
        b"0\r\n\r\n"
    )


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    requests=st.lists(_request(), min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 10**6), max_size=10),
    max_buffered=st.sampled_from([4, 100, 65536]),
    auto_read=st.booleans(),
)
def test_any_split_any_body(
    requests: list[tuple[bytes, bytes]], cuts: list[int], max_buffered: int, auto_read: bool
) -> None:
    expected = []
    for want, _ in requests:
        expected.append(
            want if b" " in want else want + b" " + hashlib.sha256(b"").hexdigest()[:16].encode()
        )
    stream = b"".join(data for _, data in requests)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    pieces = [p for p in pieces if p]
    gaplic = GAplic(f"split-{uuid.uuid4().hex[:8]}")
    try:
        app = gaplic.create_gobj("app", App, gaplic)
        app.hooks["EV_HTTP_REQUEST"] = _on_request
        app.hooks["EV_HTTP_REQUEST_BODY"] = _on_body
        server = gaplic.create_gobj(
            "http",
            GHttpServer,
            app,
            host="127.0.0.1",
            port=0,
            max_buffered_body=max_buffered,
            auto_read_body=auto_read,
        )
        sock = socket.create_connection(("127.0.0.1", server.config.port))
        sock.setblocking(False)
        received = b""
        try:
            drive(gaplic, lambda: bool(server.get_channels()))
            for piece in pieces:
                view = memoryview(piece)
                deadline = time.monotonic() + 10
                while view:
                    assert time.monotonic() < deadline
                    try:
                        sent = sock.send(view)
                        view = view[sent:]
                    except BlockingIOError:
                        pass
                    gaplic._loop()
                    with contextlib.suppress(BlockingIOError):
                        received += sock.recv(1 << 20)

            def complete() -> bool:
                nonlocal received
                with contextlib.suppress(BlockingIOError):
                    received += sock.recv(1 << 20)
                try:
                    return len(parse_responses(received)) == len(requests)
                except (AssertionError, ValueError, IndexError):
                    return False

            try:
                drive(gaplic, complete, timeout=3)
            except AssertionError:
                chs = server.get_channels()
                ch = chs[0] if chs else None
                state = (
                    (
                        ch._st,
                        ch._active,
                        list(ch._parser.requests),
                        ch._parser.current,
                        ch._paused,
                        ch._want_body,
                        ch._unfed,
                        ch.gsock.reading_paused,
                    )
                    if ch
                    else None
                )
                raise AssertionError(f"responses: {received!r} {app.names()} {state}") from None
        finally:
            sock.close()
        bodies = [body for _, _, body in parse_responses(received)]
        assert bodies == expected
        assert [r.id for r in app.requests()] == list(range(1, len(requests) + 1))
        drive(gaplic, lambda: not server.get_channels())
    finally:
        gaplic.close()
