"""GHttpServer over real loopback sockets: requests, keep-alive, pipelining, HEAD/204/304,
responses, the events and their attributes."""

from __future__ import annotations

import http.client
from typing import Any

import httpx
import pytest

from fsmio.core.event import Event
from tests.protocols.http.conftest import App, exchange, parse_responses, read_until_close


def test_get_with_http_client_keep_alive(http_server: Any) -> None:
    server = http_server()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        for i in range(3):
            conn.request("GET", f"/a/b%20c?x={i}")
            resp = conn.getresponse()
            assert resp.status == 200
            assert resp.read() == b"hello"
            assert resp.getheader("Server") == "fsmio"
            assert resp.getheader("Date")
            assert resp.getheader("Content-Length") == "5"
    finally:
        conn.close()
    requests = server.app.requests()
    assert [r.id for r in requests] == [1, 2, 3]
    first = requests[0]
    assert first.method == "GET" and first.command == "GET"
    assert first.target == b"/a/b%20c?x=0"
    assert first.raw_path == b"/a/b%20c"
    assert first.path == "/a/b c"
    assert first.query == b"x=0"
    assert first.http_version == "1.1" == first.version
    assert first.keep_alive is True
    assert first.get_header("HOST") == f"127.0.0.1:{server.port}".encode()
    assert first.url_scheme == "http"
    assert len({r.channel for r in requests}) == 1
    server.wait_for(lambda: server.app.close_reasons() == ["eof"])
    names = server.app.names()
    assert names[0] == "EV_HTTP_CHANNEL_OPENED"
    assert names[-1] == "EV_HTTP_CHANNEL_CLOSED"
    # the channel is destroyed (posted) after it closed, and counted out
    server.wait_for(lambda: server.call(lambda: not server.server.get_channels()))
    server.wait_for(lambda: server.call(lambda: first.channel._destroyed))
    assert server.call(lambda: server.server.config.n_channels) == 0
    assert first.channel.name.startswith("channel_")


def test_channel_is_the_source_and_the_kw(http_server: Any) -> None:
    server = http_server()
    seen: list[Any] = []

    def on_request(self: App, event: Event) -> Any:
        seen.append((event.source[-1], event.channel))
        return self.send_event(event.channel, "EV_HTTP_RESPONSE", request=event.request, status=204)

    server.app.hooks["EV_HTTP_REQUEST"] = on_request
    with httpx.Client() as client:
        response = client.get(f"http://127.0.0.1:{server.port}/")
    assert response.status_code == 204
    assert "content-length" not in response.headers
    assert seen and seen[0][0] is seen[0][1]


def test_post_body_delivered_whole_with_httpx(http_server: Any) -> None:
    server = http_server()
    with httpx.Client() as client:
        response = client.post(f"http://127.0.0.1:{server.port}/echo", content=b"x" * 1000)
        assert response.status_code == 200
        assert response.content == b"x" * 1000
        response = client.post(
            f"http://127.0.0.1:{server.port}/echo", content=iter([b"ab", b"cd"])
        )  # chunked
        assert response.content == b"abcd"
    requests = server.app.requests()
    assert requests[0].body == b"x" * 1000 and not requests[0].streaming
    assert requests[1].chunked and requests[1].body == b"abcd"


def test_pipelined_requests_answered_in_order(http_server: Any) -> None:
    server = http_server()
    pending: list[tuple[Any, Any]] = []

    def hold(self: App, event: Event) -> None:
        # answer in reverse order of arrival, once three are... one at a time: the channel
        # gives the next only after the response, so answer later from the loop.
        pending.append((event.channel, event.request))
        self.gaplic.loop.call_later(
            0.01 * (4 - event.request.id),
            lambda ch=event.channel, rq=event.request: self.send_event(
                ch, "EV_HTTP_RESPONSE", request=rq, status=200, body=rq.path.encode()
            ),
        )

    server.app.hooks["EV_HTTP_REQUEST"] = hold
    data = (
        b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(1, 4))
        + b"GET /4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        + b"GET /5 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    out = exchange(server, data)
    responses = parse_responses(out)
    assert [body for _, _, body in responses] == [b"/1", b"/2", b"/3", b"/4"]
    assert responses[-1][1]["connection"] == "close"
    assert [r.path for r in server.app.requests()] == ["/1", "/2", "/3", "/4"]


def test_head_204_304_have_no_body(http_server: Any) -> None:
    server = http_server()

    def answer(self: App, event: Event) -> Any:
        request = event.request
        status = {"/204": 204, "/304": 304}.get(request.path, 200)
        return self.send_event(
            event.channel,
            "EV_HTTP_RESPONSE",
            request=request,
            status=status,
            body=b"body!" if status == 200 else b"",
        )

    server.app.hooks["EV_HTTP_REQUEST"] = answer
    data = (
        b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /204 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /304 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    out = exchange(server, data)
    responses = parse_responses(out, heads=(True,))
    assert [(s, b) for s, _, b in responses] == [
        (200, b""),
        (204, b""),
        (304, b""),
        (200, b"body!"),
    ]
    assert responses[0][1]["content-length"] == "5"  # what the GET would get
    assert "content-length" not in responses[1][1]
    assert "transfer-encoding" not in responses[1][1]


def test_http10_closes_unless_keep_alive(http_server: Any) -> None:
    server = http_server()
    out = exchange(server, b"GET / HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.0 200 OK\r\n")
    assert b"Connection: close\r\n" in out
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        sock.settimeout(5)
        first = sock.recv(65536)
        assert b"Connection: keep-alive\r\n" in first
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        rest = read_until_close(sock)
    assert parse_responses(first + rest)[1][0] == 200


def test_server_identity_off_and_on(http_server: Any) -> None:
    server = http_server(identity="")
    out = exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"Server:" not in out
    server2 = http_server(identity="mine/1.0")
    out = exchange(server2, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"\r\nServer: mine/1.0\r\n" in out


def test_keep_alive_max_requests(http_server: Any) -> None:
    server = http_server(keep_alive_max_requests=2)
    out = exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
    responses = parse_responses(out)
    assert len(responses) == 2
    assert responses[1][1]["connection"] == "close"
    assert (
        server.app.close_reasons() == ["closed"]
        or server.wait_for(lambda: server.app.close_reasons() == ["closed"]) is None
    )


def test_https_with_ssl_options(http_server: Any, tmp_path: Any) -> None:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile, cafile = tmp_path / "s.pem", tmp_path / "s.key", tmp_path / "ca.pem"
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(certfile), append=True)
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    server = http_server(ssl_options={"certfile": str(certfile), "keyfile": str(keyfile)})
    import ssl

    with httpx.Client(verify=ssl.create_default_context(cafile=str(cafile))) as client:
        response = client.get(f"https://127.0.0.1:{server.port}/secure")
        again = client.post(f"https://127.0.0.1:{server.port}/echo", content=b"over tls")
    assert response.status_code == 200 and response.content == b"hello"
    assert again.content == b"over tls"
    assert server.app.requests()[0].url_scheme == "https"


def test_pipeline_bound_pauses_reading_and_loses_nothing(http_server: Any) -> None:
    server = http_server(max_pipeline=4)
    paused: list[bool] = []

    def later(self: App, event: Event) -> None:
        channel, request = event.channel, event.request
        paused.append(channel.gsock.reading_paused)

        def answer() -> None:
            self.send_event(
                channel, "EV_HTTP_RESPONSE", request=request, status=200, body=request.path.encode()
            )

        self.gaplic.call_later(0.001, answer)

    server.app.hooks["EV_HTTP_REQUEST"] = later
    n = 300
    data = b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n))
    data += b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = exchange(server, data, timeout=20)
    bodies = [body for _, _, body in parse_responses(out)]
    assert bodies == [b"/%d" % i for i in range(n)] + [b"/last"]
    assert any(paused)  # the queue filled up: reading was paused meanwhile


def test_an_application_holds_reading_until_it_lets_go(http_server: Any) -> None:
    """EV_PAUSE_READING / EV_RESUME_READING on the channel: the hold keeps the GSock paused
    whatever the channel's own flow control decides meanwhile, and nothing is lost."""
    server = http_server(max_pipeline=2)
    channels: list[Any] = []

    def answer(self: App, event: Event) -> None:
        channel, request = event.channel, event.request
        if request.path == "/hold":
            channels.append(channel)
            self.send_event(channel, "EV_PAUSE_READING")
        self.send_event(
            channel, "EV_HTTP_RESPONSE", request=request, status=200, body=request.path.encode()
        )

    server.app.hooks["EV_HTTP_REQUEST"] = answer
    with server.connect() as sock:
        sock.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        first = sock.recv(65536)
        assert first.endswith(b"/hold")
        assert server.call(lambda: channels[0].gsock.reading_paused)
        sock.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5)))
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(65536)  # held: nothing read, nothing answered
        assert server.call(lambda: channels[0].gsock.reading_paused)
        server.call(lambda: server.app.send_event(channels[0], "EV_RESUME_READING"))
        sock.sendall(b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = read_until_close(sock)
    bodies = [body for _, _, body in parse_responses(out)]
    assert bodies == [b"/%d" % i for i in range(5)] + [b"/last"]


def test_maximum_simultaneous_requests_bounds_the_queue(http_server: Any) -> None:
    server = http_server(maximum_simultaneous_requests=2)
    assert server.server.settings.max_pipeline == 2
    out = exchange(
        server,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 5
        + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert len(parse_responses(out)) == 6


def test_ginsfsm_response_interrupt_and_async_finish(http_server: Any) -> None:
    from fsmio import HttpResponse
    from fsmio.protocols.http.response import ResponseInterrupt

    class Later(HttpResponse):
        def execute(self) -> None:
            self.complete = True
            self.response_headers.append(("Content-Type", "text/plain"))
            self.write(b"part1 ")
            raise ResponseInterrupt()

    def on_request(app: App, event: Event) -> None:
        channel = event.source[-1]
        app.send_event(channel, "EV_HTTP_RESPONSE", response=Later(event.request))

        def finish() -> None:
            channel.write(b"part2")
            channel.finish()

        app.gaplic.call_later(0.05, finish)

    server = http_server()
    server.app.hooks["EV_HTTP_REQUEST"] = on_request
    out = exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    ((status, headers, body),) = parse_responses(out)
    assert status == 200 and body == b"part1 part2"
    assert headers["transfer-encoding"] == "chunked"


def test_application_error_in_ginsfsm_execute_gives_500(http_server: Any) -> None:
    from fsmio import HttpResponse

    class Broken(HttpResponse):
        def execute(self) -> None:
            raise RuntimeError("boom")

    server = http_server()
    server.app.hooks["EV_HTTP_REQUEST"] = lambda app, ev: app.send_event(
        ev.channel, "EV_HTTP_RESPONSE", response=Broken(ev.request)
    )
    out = exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    ((status, headers, body),) = parse_responses(out)
    assert status == 500 and b"boom" not in body
    assert headers["connection"] == "close"
