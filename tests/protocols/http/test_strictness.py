"""Every strictness rule and limit, black-box over a raw socket: the bytes go in, the
status comes back, and the server closes the connection.  A request before the bad one
is still answered (in order), and nothing after it is served."""

from __future__ import annotations

from typing import Any

import pytest

from tests.protocols.http.conftest import exchange, parse_responses

H = b"Host: x\r\n"

BAD: list[tuple[str, bytes, int]] = [
    # framing attacks (llhttp rejects them; 400)
    (
        "cl_and_te",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "te_and_cl",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
        b"Content-Length: 4\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "cl_duplicate",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nab",
        400,
    ),
    (
        "cl_different",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        400,
    ),
    ("cl_plus", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +2\r\n\r\nab", 400),
    ("cl_minus", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -2\r\n\r\nab", 400),
    ("cl_space", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1 2\r\n\r\nab", 400),
    ("cl_comma", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 2, 2\r\n\r\nab", 400),
    (
        "cl_overflow",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\nab",
        400,
    ),
    (
        "te_obfuscated_vt",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "te_chunked_twice",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "te_not_final",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        400,
    ),
    ("te_gzip", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    (
        "te_gzip_chunked",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    ("obs_fold", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\r\n  folded\r\n\r\n", 400),
    ("bare_lf", b"GET / HTTP/1.1\n" + H.replace(b"\r\n", b"\n") + b"\n", 400),
    ("bare_lf_header", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\nX-B: b\r\n\r\n", 400),
    ("bare_cr_value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", 400),
    ("nul_value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", 400),
    ("ctl_value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n", 400),
    ("del_value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x7fb\r\n\r\n", 400),
    ("ctl_target", b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("space_before_colon", b"GET / HTTP/1.1\r\n" + H + b"X-A : a\r\n\r\n", 400),
    ("quote_in_name", b"GET / HTTP/1.1\r\n" + H + b'X-"A": a\r\n\r\n', 400),
    ("bad_method", b"G(T / HTTP/1.1\r\n" + H + b"\r\n", 400),
    (
        "chunk_0x",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk_negative",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n-2\r\nab\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk_size_overflow",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
        b"fffffffffffffffff\r\nab\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk_ext_lf",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2;a\nb\r\nab\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk_bare_lf",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk_no_crlf",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2\r\nabX0\r\n\r\n",
        400,
    ),
    # what fsmio adds
    ("no_host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two_hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("two_hosts_10", b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("version_09", b"GET / HTTP/0.9\r\n" + H + b"\r\n", 505),
    ("version_20", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("version_12", b"GET / HTTP/1.2\r\n" + H + b"\r\n", 400),
    ("asterisk_get", b"GET * HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("connect", b"CONNECT x:443 HTTP/1.1\r\n" + H + b"\r\n", 501),
    (
        "expect_other",
        b"POST / HTTP/1.1\r\n" + H + b"Expect: 200-ok\r\nContent-Length: 2\r\n\r\nab",
        417,
    ),
]


@pytest.mark.parametrize(("name", "data", "status"), BAD, ids=[b[0] for b in BAD])
def test_rejected_with_status_and_close(
    http_server: Any, name: str, data: bytes, status: int
) -> None:
    server = http_server()
    good = b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
    after = b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n"
    out = exchange(server, good + data + after)
    responses = parse_responses(out)
    assert [r[0] for r in responses] == [200, status], out
    assert responses[1][1]["connection"] == "close"
    assert [r.path for r in server.app.requests()] == ["/first"]
    server.wait_for(lambda: len(server.app.close_reasons()) == 1)
    assert server.app.close_reasons()[0] in ("bad_request", "too_large")


def test_http10_chunked_is_read_then_closed(http_server: Any) -> None:
    server = http_server()
    out = exchange(
        server,
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\nGET /next HTTP/1.0\r\n\r\n",
    )
    responses = parse_responses(out)
    assert [(r[0], r[2]) for r in responses] == [(200, b"abc")]
    assert [r.path for r in server.app.requests()] == ["/"]


def test_asterisk_options_and_absolute_form(http_server: Any) -> None:
    server = http_server()
    out = exchange(
        server,
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET http://x/p%41th?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert [r[0] for r in parse_responses(out)] == [200, 200]
    star, absolute = server.app.requests()
    assert star.target == b"*"
    assert absolute.raw_path == b"/p%41th" and absolute.path == "/pAth"
    assert absolute.query == b"q=1"


def test_absolute_form_target_names_the_host(http_server: Any) -> None:
    """RFC 9112 section 3.2.2: the target's authority, not the Host field, is the host."""
    server = http_server()
    out = exchange(
        server,
        b"GET http://user@good.example:8080/a?b HTTP/1.1\r\nHost: evil.example\r\n\r\n"
        b"GET http://plain.example HTTP/1.0\r\n\r\n",
    )
    assert [r[0] for r in parse_responses(out)] == [200, 200]
    first, second = server.app.requests()
    assert first.get_headers("host") == [b"good.example:8080"]
    assert second.get_headers("host") == [b"plain.example"] and second.raw_path == b"/"
    out = exchange(server, b"GET http:///nohost HTTP/1.1\r\nHost: x\r\n\r\n")
    assert parse_responses(out)[0][0] == 400


# ----------------------------------------------------------------------------------------
#   Limits, within one read and across reads
# ----------------------------------------------------------------------------------------
def _send_in_pieces(server: Any, pieces: list[bytes]) -> bytes:
    import time

    with server.connect() as sock:
        for piece in pieces:
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.01)
        from tests.protocols.http.conftest import read_until_close

        return read_until_close(sock)


@pytest.mark.parametrize("split", [False, True], ids=["one_read", "many_reads"])
def test_414_request_line(http_server: Any, split: bool) -> None:
    server = http_server(max_request_line=100)
    data = b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    pieces = [data[i : i + 30] for i in range(0, len(data), 30)] if split else [data]
    out = _send_in_pieces(server, pieces)
    assert parse_responses(out)[0][0] == 414
    ok = b"GET /" + b"a" * 90 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert parse_responses(_send_in_pieces(server, [ok]))[0][0] == 200


@pytest.mark.parametrize("split", [False, True], ids=["one_read", "many_reads"])
def test_431_header_block(http_server: Any, split: bool) -> None:
    server = http_server(max_request_header_size=1000)
    data = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: " + b"v" * 1200 + b"\r\n\r\n"
    pieces = [data[i : i + 100] for i in range(0, len(data), 100)] if split else [data]
    out = _send_in_pieces(server, pieces)
    assert parse_responses(out)[0][0] == 431
    ok = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-A: " + b"v" * 800 + b"\r\n\r\n"
    assert parse_responses(_send_in_pieces(server, [ok]))[0][0] == 200


def test_431_many_small_headers_over_reads(http_server: Any) -> None:
    server = http_server(max_request_header_size=1000)
    head = b"GET / HTTP/1.1\r\nHost: x\r\n"
    pieces = [head] + [b"X-%d: v\r\n" % i for i in range(200)] + [b"\r\n"]
    out = _send_in_pieces(server, pieces)
    assert parse_responses(out)[0][0] == 431


@pytest.mark.parametrize("split", [False, True], ids=["one_read", "many_reads"])
def test_431_header_count(http_server: Any, split: bool) -> None:
    server = http_server(max_headers=10)
    data = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(10))
    data += b"\r\n"
    pieces = [data[i : i + 20] for i in range(0, len(data), 20)] if split else [data]
    out = _send_in_pieces(server, pieces)
    assert parse_responses(out)[0][0] == 431
    ok = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + b"X: v\r\n" * 8 + b"\r\n"
    assert parse_responses(_send_in_pieces(server, [ok]))[0][0] == 200


def test_413_before_reading_when_content_length_is_known(http_server: Any) -> None:
    server = http_server(max_request_body_size=1000)
    with server.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n")
        from tests.protocols.http.conftest import read_until_close

        out = read_until_close(sock)  # answered without a single body byte sent
    assert parse_responses(out)[0][0] == 413
    assert server.app.requests() == []


def test_413_while_reading_a_chunked_body(http_server: Any) -> None:
    server = http_server(max_request_body_size=1000)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    pieces = [head] + [b"100\r\n" + b"z" * 256 + b"\r\n"] * 5 + [b"0\r\n\r\n"]
    out = _send_in_pieces(server, pieces)
    assert parse_responses(out)[0][0] == 413
    server.wait_for(lambda: server.app.close_reasons() == ["too_large"])
