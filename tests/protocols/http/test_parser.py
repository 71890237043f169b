"""The request parser against h11, the oracle: any split of a valid stream of pipelined
requests (bodies, chunked, trailers) across reads gives the requests h11 reads from the
whole stream.  Plus the parser's own limits and checks, without sockets."""

from __future__ import annotations

from typing import Any

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsmio.protocols.http.parser import HttpError, RequestParser

_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_VALUE = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789-_.;=/,\t", min_size=0, max_size=30
).map(lambda v: v.strip(" \t"))
_PATH = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~%/", max_size=30).map(
    lambda p: "/" + p.replace("%", "%25")
)


@st.composite
def requests_strategy(draw: Any) -> dict[str, Any]:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]))
    path = draw(_PATH)
    query = draw(st.one_of(st.just(""), _TOKEN.map(lambda q: "?" + q + "=1")))
    headers = draw(
        st.lists(
            st.tuples(_TOKEN.map(lambda t: "x-" + t), _VALUE), max_size=5, unique_by=lambda h: h[0]
        )
    )
    body = draw(st.binary(max_size=300)) if method in ("POST", "PUT", "PATCH") else b""
    framing = draw(st.sampled_from(["length", "chunked"])) if body else "none"
    chunks: list[bytes] = []
    if framing == "chunked":
        cuts = sorted(draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=3)))
        last = 0
        for cut in [*cuts, len(body)]:
            if cut > last:
                chunks.append(body[last:cut])
                last = cut
    trailers = (
        draw(st.lists(st.tuples(_TOKEN.map(lambda t: "t-" + t), _VALUE), max_size=2))
        if framing == "chunked"
        else []
    )
    return {
        "method": method,
        "target": path + query,
        "headers": headers,
        "body": body,
        "framing": framing,
        "chunks": chunks,
        "trailers": trailers,
    }


def encode(request: dict[str, Any]) -> bytes:
    lines = [f"{request['method']} {request['target']} HTTP/1.1", "Host: example.org"]
    lines += [f"{name}: {value}" for name, value in request["headers"]]
    if request["framing"] == "length":
        lines.append(f"Content-Length: {len(request['body'])}")
    elif request["framing"] == "chunked":
        lines.append("Transfer-Encoding: chunked")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if request["framing"] == "length":
        return head + request["body"]
    if request["framing"] == "chunked":
        out = head
        for chunk in request["chunks"]:
            out += b"%x;ext=1\r\n" % len(chunk) + chunk + b"\r\n"
        out += b"0\r\n"
        for name, value in request["trailers"]:
            out += f"{name}: {value}\r\n".encode("latin-1")
        return out + b"\r\n"
    return head


def with_h11(stream: bytes) -> list[tuple[str, bytes, list[tuple[bytes, bytes]], bytes]]:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(stream)
    out = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            return out
        assert isinstance(event, h11.Request), event
        body = b""
        while True:
            ev = conn.next_event()
            if isinstance(ev, h11.Data):
                body += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                break
            else:  # pragma: no cover
                raise AssertionError(ev)
        headers = [(k.lower(), v) for k, v in event.headers]
        out.append((event.method.decode(), event.target, headers, body))
        conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
        conn.send(h11.EndOfMessage())
        conn.start_next_cycle()


def with_fsmio(pieces: list[bytes]) -> list[tuple[str, bytes, list[tuple[bytes, bytes]], bytes]]:
    parser = RequestParser(max_queued=1_000_000)
    done = []
    for piece in pieces:
        assert parser.feed(piece) == len(piece)
    for request in parser.requests:
        assert request._body_complete
        done.append(
            (request.method, request.target, request.headers, b"".join(request._body_chunks))
        )
    return done


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    requests=st.lists(requests_strategy(), min_size=1, max_size=5),
    cuts=st.lists(st.integers(0, 5000), max_size=12),
)
def test_any_split_gives_what_h11_reads(requests: list[dict[str, Any]], cuts: list[int]) -> None:
    stream = b"".join(encode(r) for r in requests)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    pieces = [p for p in pieces if p]
    expected = with_h11(stream)
    got = with_fsmio(pieces)
    assert got == expected
    # trailers are kept on the request
    parser = RequestParser(max_queued=1000)
    parser.feed(stream)
    for request, spec in zip(parser.requests, requests, strict=True):
        assert [(n.decode(), v.decode()) for n, v in request.trailers] == [
            (n, v) for n, v in spec["trailers"]
        ]


def test_max_queued_stops_a_pipelined_flood() -> None:
    parser = RequestParser(max_queued=4)
    flood = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 5000
    consumed = parser.feed(flood)
    assert consumed < len(flood)
    assert 4 <= len(parser.requests) < 4 + 16384 // 20


def test_upgrade_keeps_the_rest() -> None:
    parser = RequestParser()
    parser.feed(
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nRAW"
    )
    assert parser.dead and parser.upgrade_data == b"RAW"
    (request,) = parser.requests
    assert request.upgrade


def test_error_carries_status_and_reason() -> None:
    parser = RequestParser(max_headers=1)
    with pytest.raises(HttpError) as info:
        parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n\r\n")
    assert info.value.status == 431 and info.value.code == 431
    assert info.value.close_reason == "too_large"
    assert info.value.reason == "Request Header Fields Too Large"
    assert parser.dead
