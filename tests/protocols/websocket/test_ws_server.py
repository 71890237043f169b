"""GWebSocket, server role, over real loopback sockets: the ``websockets`` sync client for
what users touch, a hand-made client (``RawWs``) for the frames no library sends."""

from __future__ import annotations

import contextlib
import json
import time
import zlib
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect

from fsmio import GAplic
from fsmio.core.errors import GObjError
from tests.helpers import drive, drive_for

from .wsutil import (
    RawWs,
    WsApp,
    WsAppNoPong,
    client_frame,
    close_payload,
    handshake_request,
    make_app_fsm,
    run_in_thread,
    serve,
)

TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10


def _open_raw(gaplic: GAplic, port: int, **extra: str) -> RawWs:
    raw = RawWs(gaplic, port)
    raw.handshake(**extra)
    return raw


# ----------------------------------------------------------------------------------------
#   With the websockets client library
# ----------------------------------------------------------------------------------------
def test_echo_text_binary_fragmented_and_close(gaplic: GAplic) -> None:
    app, port = serve(gaplic)

    def client() -> list[Any]:
        got = []
        with connect(f"ws://127.0.0.1:{port}/chat?room=1") as ws:
            ws.send("héllo")
            got.append(ws.recv())
            ws.send(b"\x00\xff" * 1000)
            got.append(ws.recv())
            ws.send(["frag", "men", "té"])
            got.append(ws.recv())
            ws.send([b"a", b"b"])
            got.append(ws.recv())
        return got

    got = run_in_thread(gaplic, client)
    assert got == ["héllo", b"\x00\xff" * 1000, "fragmenté", b"ab"]
    drive(gaplic, lambda: "EV_ON_CLOSE" in app.names())
    assert app.names().count("EV_ON_OPEN") == 1
    assert app.names().count("EV_ON_CLOSE") == 1
    opened = app.events[0][1]
    assert opened["path"] == "/chat?room=1"
    assert ("Upgrade", "websocket") in opened["headers"]
    assert app.closes() == [{"code": 1000, "reason": "", "clean": True}]
    msgs = [kw for n, kw in app.events if n == "EV_ON_MESSAGE"]
    assert [m["binary"] for m in msgs] == [False, True, False, True]


def test_send_json_ping_pong_and_server_close(gaplic: GAplic) -> None:
    app, port = serve(gaplic, echo=False)
    raw = _open_raw(gaplic, port)
    drive(gaplic, lambda: app.websockets and app.websockets[0].get_current_state() == "ST_OPEN")
    ws = app.websockets[0]
    assert app.send_event(ws, "EV_SEND_JSON_MESSAGE", msg={"a": [1, 2]}) > 0
    opcode, fin, payload = raw.frame()
    assert (opcode, fin, json.loads(payload)) == (TEXT, True, {"a": [1, 2]})
    app.send_event(ws, "EV_SEND_PING", data=b"xyz")
    assert raw.frame()[::2] == (PING, b"xyz")
    raw.send(client_frame(PONG, b"xyz"))
    drive(gaplic, lambda: "EV_ON_PONG" in app.names())
    assert app.events[-1] == ("EV_ON_PONG", {"data": b"xyz"})
    app.send_event(ws, "EV_CLOSE", code=4001, reason="bye")
    assert ws.get_current_state() == "ST_CLOSING"
    assert raw.close_frame() == (4001, b"bye")
    raw.send(client_frame(CLOSE, close_payload(4001, b"bye")))
    raw.wait_eof()  # the server closes TCP first
    drive(gaplic, lambda: "EV_ON_CLOSE" in app.names())
    assert app.closes() == [{"code": 4001, "reason": "bye", "clean": True}]
    assert app.send_event(ws, "EV_SEND_MESSAGE", data="late") == -1
    raw.close()


def test_bad_close_code_and_data_type_raise(gaplic: GAplic) -> None:
    app, port = serve(gaplic, echo=False)
    raw = _open_raw(gaplic, port)
    drive(gaplic, lambda: "EV_ON_OPEN" in app.names())
    ws = app.websockets[0]
    with pytest.raises(ValueError, match="close code"):
        app.send_event(ws, "EV_CLOSE", code=1006)
    with pytest.raises(TypeError, match=r"str \(text\) or bytes"):
        app.send_event(ws, "EV_SEND_MESSAGE", data=123)
    with pytest.raises(ValueError, match="125"):
        app.send_event(ws, "EV_SEND_PING", data=b"x" * 126)
    raw.close()


def test_pong_not_sent_to_a_subscriber_without_a_row(
    gaplic: GAplic, caplog: pytest.LogCaptureFixture
) -> None:
    app, port = serve(gaplic, app_class=WsAppNoPong)
    raw = _open_raw(gaplic, port)
    raw.send(client_frame(PONG, b"unsolicited") + client_frame(TEXT, b"hi"))
    assert raw.frame() == (TEXT, True, b"hi")
    assert "EV_ON_PONG" not in app.names()
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
    raw.close()


def test_subprotocol_selection(gaplic: GAplic) -> None:
    app, port = serve(gaplic, subprotocols=["chat.v2", "chat.v1"])

    def client(offer: list[str]) -> Any:
        with connect(f"ws://127.0.0.1:{port}/", subprotocols=offer) as ws:  # type: ignore[arg-type]
            return ws.subprotocol

    assert run_in_thread(gaplic, lambda: client(["chat.v1", "chat.v2"])) == "chat.v2"
    assert run_in_thread(gaplic, lambda: client(["chat.v1", "other"])) == "chat.v1"
    opens = [kw["subprotocol"] for n, kw in app.events if n == "EV_ON_OPEN"]
    assert opens == ["chat.v2", "chat.v1"]
    # A client offering none of them still connects, without a subprotocol.
    raw = _open_raw(gaplic, port, Sec_WebSocket_Protocol="nope")
    assert b"sec-websocket-protocol" not in raw.head.lower()
    raw.close()


def test_origins_check(gaplic: GAplic) -> None:
    app, port = serve(gaplic, origins=["https://good.example"])
    raw = _open_raw(gaplic, port, Origin="https://good.example")
    raw.close()
    for origin in ("https://evil.example", None):
        bad = RawWs(gaplic, port)
        extra = {"Origin": origin} if origin else {}
        bad.send(handshake_request(**extra))
        head = bad.read_head()
        assert head.startswith(b"HTTP/1.1 403"), head
        bad.wait_eof()
        bad.close()
    drive(gaplic, lambda: len(app.closes()) == 3)
    assert app.names().count("EV_ON_OPEN") == 1
    rejected = app.closes()[1:]
    assert all(c["code"] == 1006 and not c["clean"] for c in rejected)
    assert all("403" in c["reason"] for c in rejected)


@pytest.mark.parametrize(
    ("request_bytes", "status", "header"),
    [
        (b"POST /ws HTTP/1.1\r\nHost: x\r\n", b"405", b"Allow: GET"),
        (b"GET /ws HTTP/1.0\r\nHost: x\r\n", b"505", None),
        (b"GET /ws HTTP/1.1\r\nHost: x\r\n", b"426", b"Upgrade: websocket"),
    ],
)
def test_handshake_method_version_upgrade(
    gaplic: GAplic, request_bytes: bytes, status: bytes, header: bytes | None
) -> None:
    app, port = serve(gaplic)
    raw = RawWs(gaplic, port)
    extra = b"" if status == b"426" else b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    key = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    raw.send(request_bytes + extra + key + b"\r\n")
    head = raw.read_head()
    assert head.split(b" ")[1] == status, head
    if header:
        assert header in head
    raw.wait_eof()
    drive(gaplic, lambda: app.closes())
    assert app.names() == ["EV_ON_CLOSE"]
    raw.close()


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"Sec_WebSocket_Key": "c2hvcnQ="}, b"400"),  # not 16 bytes
        ({"Sec_WebSocket_Key": None}, b"400"),
        ({"Sec_WebSocket_Version": "8"}, b"426"),
        ({"Sec_WebSocket_Version": None}, b"426"),
        ({"Connection": "keep-alive"}, b"426"),
        ({"Upgrade": "h2c"}, b"426"),
    ],
)
def test_handshake_key_version_tokens(gaplic: GAplic, extra: dict[str, Any], status: bytes) -> None:
    _app, port = serve(gaplic)
    raw = RawWs(gaplic, port)
    raw.send(handshake_request(**extra))
    head = raw.read_head()
    assert head.split(b" ")[1] == status, head
    if "Sec_WebSocket_Version" in extra:
        assert b"Sec-WebSocket-Version: 13" in head
    raw.wait_eof()
    raw.close()


def test_connection_tokens_are_case_insensitive_lists(gaplic: GAplic) -> None:
    _app, port = serve(gaplic)
    raw = _open_raw(gaplic, port, Connection="keep-alive, UPGRADE", Upgrade="WebSocket")
    raw.send(client_frame(TEXT, b"ok"))
    assert raw.frame() == (TEXT, True, b"ok")
    raw.close()


def test_open_timeout_cuts_a_silent_client(gaplic: GAplic) -> None:
    app, port = serve(gaplic, open_timeout=0.2)
    raw = RawWs(gaplic, port)
    raw.send(b"GET /ws HTTP/1.1\r\n")  # and then nothing
    assert raw.wait_eof() < 2
    drive(gaplic, lambda: app.closes())
    assert app.closes() == [{"code": 1006, "reason": "open_timeout", "clean": False}]
    raw.close()


# ----------------------------------------------------------------------------------------
#   Broken frames: 1002, 1007, 1009
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "frame",
    [
        client_frame(TEXT, b"unmasked", mask=False),
        client_frame(TEXT, b"rsv", rsv=1),
        client_frame(TEXT, b"rsv", rsv=4),
        client_frame(3, b"reserved opcode"),
        client_frame(0xB, b"reserved control opcode"),
        client_frame(PING, b"fragmented ping", fin=False),
        client_frame(PING, b"x" * 126),
        client_frame(CONT, b"continuation without start"),
        client_frame(TEXT, b"a", fin=False) + client_frame(TEXT, b"b"),
        client_frame(CLOSE, b"\x03"),  # one byte
        client_frame(CLOSE, close_payload(999)),
        client_frame(CLOSE, close_payload(1005)),
        client_frame(CLOSE, close_payload(1006)),
        client_frame(CLOSE, close_payload(1015)),
        client_frame(CLOSE, close_payload(2999)),
        client_frame(CLOSE, close_payload(5000)),
    ],
    ids=[
        "unmasked",
        "rsv1",
        "rsv3",
        "opcode3",
        "opcode11",
        "fragmented-ping",
        "long-ping",
        "cont-without-start",
        "new-message-mid-fragment",
        "close-1-byte",
        "close-999",
        "close-1005",
        "close-1006",
        "close-1015",
        "close-2999",
        "close-5000",
    ],
)
def test_protocol_errors_close_with_1002(gaplic: GAplic, frame: bytes) -> None:
    app, port = serve(gaplic)
    raw = _open_raw(gaplic, port)
    raw.send(frame)
    assert raw.close_frame()[0] == 1002
    raw.wait_eof()
    drive(gaplic, lambda: app.closes())
    assert len(app.closes()) == 1
    assert app.closes()[0]["code"] in (1002,)
    assert app.messages() == []
    raw.close()


def test_messages_before_a_bad_frame_are_answered_before_the_close(gaplic: GAplic) -> None:
    app, port = serve(gaplic)
    raw = _open_raw(gaplic, port)
    # One write: a good message, a bad frame (reserved bit), then a ping never read.
    raw.send(client_frame(TEXT, b"good") + client_frame(TEXT, b"bad", rsv=2) + client_frame(9, b""))
    assert raw.frame() == (TEXT, True, b"good")
    assert raw.close_frame()[0] == 1002
    raw.wait_eof()
    drive(gaplic, lambda: app.closes())
    assert app.messages() == ["good"]
    raw.close()


def test_invalid_utf8_fails_fast_across_fragments(gaplic: GAplic) -> None:
    app, port = serve(gaplic)
    raw = _open_raw(gaplic, port)
    # "é" is C3 A9: split across two frames it is valid so far...
    raw.send(client_frame(TEXT, b"ok \xc3", fin=False))
    raw.send(client_frame(CONT, b"\xa9 and", fin=False))
    drive_for(gaplic, 0.05)
    assert not raw.buf and app.closes() == []
    # ...then a byte that can never be UTF-8, in a frame that is not the last one.
    raw.send(client_frame(CONT, b" \xff more", fin=False))
    assert raw.close_frame()[0] == 1007
    raw.wait_eof()
    drive(gaplic, lambda: app.closes())
    assert app.closes()[0]["code"] in (1007,)
    assert app.messages() == []
    raw.close()


def test_invalid_utf8_in_one_frame_and_truncated_at_the_end(gaplic: GAplic) -> None:
    _app, port = serve(gaplic)
    for frames in (
        [client_frame(TEXT, b"\xed\xa0\x80")],  # a surrogate
        [client_frame(TEXT, b"ab\xc3", fin=False), client_frame(CONT, b"")],  # cut short
    ):
        raw = _open_raw(gaplic, port)
        raw.send(b"".join(frames))
        assert raw.close_frame()[0] == 1007
        raw.wait_eof()
        raw.close()


def test_oversize_message_is_refused_on_the_header(gaplic: GAplic) -> None:
    _app, port = serve(gaplic, max_message_size=1000)
    raw = _open_raw(gaplic, port)
    # Only the header of a 2 MiB frame: the verdict cannot wait for the payload.
    header = bytes([0x82, 0x80 | 127]) + (2 * 1048576).to_bytes(8, "big") + b"mask"
    raw.send(header)
    assert raw.close_frame()[0] == 1009
    raw.wait_eof()
    raw.close()
    # Fragments adding up past the limit: the fragment that crosses it is refused.
    raw = _open_raw(gaplic, port)
    raw.send(client_frame(BINARY, b"x" * 600, fin=False))
    raw.send(bytes([0x80, 0x80 | 126]) + (600).to_bytes(2, "big") + b"mask")
    assert raw.close_frame()[0] == 1009
    raw.close()


def test_fragment_flood_is_bounded(gaplic: GAplic) -> None:
    _app, port = serve(gaplic, max_fragments=100)
    raw = _open_raw(gaplic, port)
    raw.send(client_frame(TEXT, b"", fin=False) + client_frame(CONT, b"", fin=False) * 200)
    assert raw.close_frame()[0] == 1009
    raw.close()


def test_compression_and_bomb(gaplic: GAplic) -> None:
    _app, port = serve(gaplic, compression="deflate", max_message_size=100_000)

    def client() -> Any:
        with connect(f"ws://127.0.0.1:{port}/", compression="deflate") as ws:
            ws.send("z" * 50_000)
            return ws.recv(), ws.protocol.extensions

    data, extensions = run_in_thread(gaplic, client)
    assert data == "z" * 50_000
    assert [e.name for e in extensions] == ["permessage-deflate"]
    # A 10 MB bomb that compresses to ~10 KB: cut at 100 kB of output.
    raw = RawWs(gaplic, port)
    raw.handshake(Sec_WebSocket_Extensions="permessage-deflate")
    assert b"permessage-deflate" in raw.head
    comp = zlib.compressobj(wbits=-15)
    bomb = comp.compress(b"\0" * 10_000_000) + comp.flush(zlib.Z_SYNC_FLUSH)
    raw.send(client_frame(BINARY, bomb[:-4], rsv=4))
    assert raw.close_frame()[0] == 1009
    raw.close()


def test_no_compression_by_default(gaplic: GAplic) -> None:
    _app, port = serve(gaplic)
    raw = _open_raw(gaplic, port, Sec_WebSocket_Extensions="permessage-deflate")
    assert b"permessage-deflate" not in raw.head
    raw.send(client_frame(TEXT, b"x", rsv=4))  # compressed bit without the extension
    assert raw.close_frame()[0] == 1002
    raw.close()


# ----------------------------------------------------------------------------------------
#   Closing handshake, timeouts
# ----------------------------------------------------------------------------------------
def test_close_code_is_echoed_and_one_on_close(gaplic: GAplic) -> None:
    app, port = serve(gaplic)
    raw = _open_raw(gaplic, port)
    raw.send(client_frame(TEXT, b"before"))
    raw.send(client_frame(CLOSE, close_payload(4321, b"done")))
    assert raw.frame() == (TEXT, True, b"before")
    assert raw.close_frame() == (4321, b"done")
    raw.wait_eof()
    drive(gaplic, lambda: app.closes())
    drive_for(gaplic, 0.05)
    assert app.closes() == [{"code": 4321, "reason": "done", "clean": True}]
    raw.close()


def test_close_mid_fragmented_message_is_normal(gaplic: GAplic) -> None:
    _app, port = serve(gaplic)
    raw = _open_raw(gaplic, port)
    raw.send(client_frame(TEXT, b"frag", fin=False) + client_frame(CLOSE, close_payload(1000)))
    assert raw.close_frame()[0] == 1000
    raw.wait_eof()
    raw.close()


def test_empty_close_is_answered_empty(gaplic: GAplic) -> None:
    app, port = serve(gaplic)
    raw = _open_raw(gaplic, port)
    raw.send(client_frame(CLOSE, b""))
    assert raw.close_frame() == (1005, b"")
    raw.wait_eof()
    drive(gaplic, lambda: app.closes())
    assert app.closes() == [{"code": 1005, "reason": "", "clean": True}]
    raw.close()


def test_close_timeout_when_the_peer_stalls(gaplic: GAplic) -> None:
    app, port = serve(gaplic, echo=False, close_timeout=0.3)
    raw = _open_raw(gaplic, port)
    drive(gaplic, lambda: "EV_ON_OPEN" in app.names())
    app.send_event(app.websockets[0], "EV_CLOSE", code=1001, reason="going")
    assert raw.close_frame() == (1001, b"going")
    took = raw.wait_eof()  # never answered: cut after close_timeout
    assert 0.2 < took < 2
    drive(gaplic, lambda: app.closes())
    assert app.closes() == [{"code": 1001, "reason": "going", "clean": False}]
    raw.close()


def test_peer_vanishing_gives_1006(gaplic: GAplic) -> None:
    app, port = serve(gaplic)
    raw = _open_raw(gaplic, port)
    drive(gaplic, lambda: "EV_ON_OPEN" in app.names())
    raw.close()
    drive(gaplic, lambda: app.closes())
    assert app.closes()[0]["code"] == 1006 and not app.closes()[0]["clean"]


def test_ping_timeout_gives_1011(gaplic: GAplic) -> None:
    app, port = serve(gaplic, ping_interval=0.2, ping_timeout=0.3)
    raw = _open_raw(gaplic, port)
    opcode, _, payload = raw.frame(timeout=3)
    assert opcode == PING
    raw.send(client_frame(PONG, payload))  # the first is answered...
    assert raw.frame(timeout=3)[0] == PING  # ...so a second ping comes
    assert raw.close_frame(timeout=3)[0] == 1011  # which is not
    raw.wait_eof()
    drive(gaplic, lambda: app.closes())
    assert app.closes()[0]["code"] == 1011
    raw.close()


@pytest.mark.slow
def test_a_ping_flood_is_answered_at_the_rate_the_peer_reads(gaplic: GAplic) -> None:
    """A peer that pings and never reads: while our output waits only the latest ping is
    kept, so the server's output stays near the kernel's buffers instead of holding a
    pong for every ping (12.7 MB here)."""
    app, port = serve(gaplic, echo=False)
    raw = _open_raw(gaplic, port)
    drive(gaplic, lambda: "EV_ON_OPEN" in app.names())
    ws = app.websockets[0]
    sock = ws.gsock
    assert sock is not None
    count = 100_000
    pings = b"".join(client_frame(PING, i.to_bytes(4, "big") * 31) for i in range(count))
    view = memoryview(pings)
    sent = 0
    deadline = time.monotonic() + 60
    while sent < len(pings):  # non-blocking: the GAplic runs on this thread
        assert time.monotonic() < deadline, f"sent {sent} of {len(pings)} bytes"
        with contextlib.suppress(BlockingIOError):
            sent += raw.sock.send(view[sent : sent + 262144])
        drive_for(gaplic, 0.001)
    drive(gaplic, lambda: sock.rxed_bytes >= len(pings), timeout=30)
    answered = sock.txed_bytes // 126  # a pong: a 2-byte head and the 124-byte payload
    assert answered < count // 2, f"{answered} pongs for {count} pings"
    assert sock.pending_output < 1048576
    # Once the peer reads, the latest ping gets its pong, and the connection is fine.
    last = (count - 1).to_bytes(4, "big") * 31
    payloads: list[bytes] = []
    raw.pump(lambda: _collect_pongs(raw, payloads, last), timeout=30)
    assert payloads[-1] == last
    raw.send(client_frame(TEXT, b"still here"))
    drive(gaplic, lambda: app.messages() == ["still here"])
    raw.close()


def _collect_pongs(raw: RawWs, payloads: list[bytes], last: bytes) -> bool:
    while True:
        parsed = raw._parse()
        if parsed is None:
            return False
        assert parsed[0] == PONG
        payloads.append(parsed[2])
        if parsed[2] == last:
            return True


def test_keepalive_off(gaplic: GAplic) -> None:
    _app, port = serve(gaplic, ping_interval=None)
    raw = _open_raw(gaplic, port)
    drive_for(gaplic, 0.2)
    assert raw.buf == b""
    raw.close()


# ----------------------------------------------------------------------------------------
#   Flow control
# ----------------------------------------------------------------------------------------
def test_max_queue_pauses_reading_until_acknowledged(gaplic: GAplic) -> None:
    app, port = serve(gaplic, echo=False, ack_messages=True, max_queue=2)
    raw = _open_raw(gaplic, port)
    raw.send(b"".join(client_frame(TEXT, str(i).encode()) for i in range(5)))
    drive(gaplic, lambda: len(app.messages()) == 2)
    drive_for(gaplic, 0.05)
    ws = app.websockets[0]
    assert app.messages() == ["0", "1"]
    assert ws.gsock is not None and ws.gsock.reading_paused
    assert ws.queued_frames == 3
    app.send_event(ws, "EV_ACK_MESSAGE")
    assert app.messages() == ["0", "1", "2"]
    assert ws.gsock.reading_paused
    app.send_event(ws, "EV_ACK_MESSAGE", count=3)
    assert app.messages() == ["0", "1", "2", "3", "4"]
    assert ws.queued_frames == 0
    # Two unacknowledged again: still paused, until one is acknowledged.
    assert ws.gsock.reading_paused
    app.send_event(ws, "EV_ACK_MESSAGE", count=4)
    assert not ws.gsock.reading_paused
    raw.send(client_frame(TEXT, b"5"))
    drive(gaplic, lambda: len(app.messages()) == 6)
    raw.close()


def test_held_messages_are_delivered_before_on_close(gaplic: GAplic) -> None:
    app, port = serve(gaplic, echo=False, ack_messages=True, max_queue=1)
    raw = _open_raw(gaplic, port)
    raw.send(b"".join(client_frame(TEXT, str(i).encode()) for i in range(3)))
    drive(gaplic, lambda: len(app.messages()) == 1)
    drive(gaplic, lambda: app.websockets[0].queued_frames == 2)
    # (A paused GSock does not read, so it cannot see the peer leave: this end drops.)
    app.send_event(app.websockets[0], "EV_DROP")
    drive(gaplic, lambda: app.closes())
    assert app.names()[-4:] == ["EV_ON_MESSAGE"] * 3 + ["EV_ON_CLOSE"]
    assert app.messages() == ["0", "1", "2"]
    raw.close()


def test_one_on_close_even_when_the_subscriber_raises(
    gaplic: GAplic, caplog: pytest.LogCaptureFixture
) -> None:
    app, port = serve(gaplic, echo=False)

    def boom(app: WsApp, event: Any) -> None:
        if event.kw["data"] == "2":
            raise RuntimeError("subscriber bug")

    app.hooks["EV_ON_MESSAGE"] = boom
    raw = _open_raw(gaplic, port)
    raw.send(b"".join(client_frame(TEXT, str(i).encode()) for i in range(4)))
    raw.wait_eof()
    drive(gaplic, lambda: app.closes())
    drive_for(gaplic, 0.05)
    assert app.names().count("EV_ON_CLOSE") == 1
    assert app.closes()[0]["reason"] == "handler_error"
    assert "subscriber bug" in caplog.text
    raw.close()


def test_transmit_ready_passes_through(gaplic: GAplic) -> None:
    class ReadyApp(WsApp):
        app_fsm = make_app_fsm(with_ready=True)

    app, port = serve(gaplic, app_class=ReadyApp, echo=False)
    raw = _open_raw(gaplic, port)
    drive(gaplic, lambda: "EV_ON_OPEN" in app.names())
    ws = app.websockets[0]
    assert ws.gsock is not None
    ws.gsock.write_parameters(outbuf_high_water=1 << 30)
    big = b"x" * 1048576
    for _ in range(4):
        app.send_event(ws, "EV_SEND_MESSAGE", data=big)
    assert ws.write_paused
    total = 4 * (len(big) + 10)
    raw.pump(lambda: len(raw.buf) >= total, timeout=20)
    drive(gaplic, lambda: "EV_TRANSMIT_READY" in app.names())
    assert not ws.write_paused
    raw.close()


def test_a_peer_that_never_reads_is_dropped_past_outbuf_max(gaplic: GAplic) -> None:
    limits = {"outbuf_max": 2 * 1048576, "outbuf_high_water": 1048576}
    app, port = serve(gaplic, echo=False, server_kw=limits)
    raw = _open_raw(gaplic, port)
    drive(gaplic, lambda: "EV_ON_OPEN" in app.names())
    ws = app.websockets[0]
    chunk = b"y" * 65536
    for _ in range(200):  # 12.5 MiB to a peer that reads nothing
        if app.send_event(ws, "EV_SEND_MESSAGE", data=chunk) < 0:
            break
    drive(gaplic, lambda: app.closes())
    assert app.closes() == [{"code": 1006, "reason": "tx_overflow", "clean": False}]
    raw.close()


def test_destroying_the_websocket_drops_the_connection(gaplic: GAplic) -> None:
    app, port = serve(gaplic)
    raw = _open_raw(gaplic, port)
    drive(gaplic, lambda: "EV_ON_OPEN" in app.names())
    app.destroy_gobj(app.websockets[0])
    raw.wait_eof()
    drive_for(gaplic, 0.05)
    assert app.closes() == []
    raw.close()


def test_drop_aborts_without_close_frame(gaplic: GAplic) -> None:
    app, port = serve(gaplic, echo=False)
    raw = _open_raw(gaplic, port)
    drive(gaplic, lambda: "EV_ON_OPEN" in app.names())
    app.send_event(app.websockets[0], "EV_DROP")
    raw.wait_eof()
    assert raw.buf == b""
    drive(gaplic, lambda: app.closes())
    assert app.closes()[0]["code"] == 1006
    raw.close()


def test_a_server_needs_a_gsock(gaplic: GAplic) -> None:
    from fsmio.protocols.websocket import GWebSocket

    with pytest.raises(GObjError, match="needs gsock"):
        gaplic.create_gobj(None, GWebSocket, gaplic)


def test_library_client_sees_1009(gaplic: GAplic) -> None:
    _app, port = serve(gaplic, max_message_size=10)

    def client() -> Any:
        with connect(f"ws://127.0.0.1:{port}/") as ws:
            ws.send("x" * 11)
            try:
                ws.recv()
            except ConnectionClosedError as exc:
                return exc.rcvd.code if exc.rcvd else None
        return None

    assert run_in_thread(gaplic, client) == 1009


def test_library_client_rejected_by_origin(gaplic: GAplic) -> None:
    _app, port = serve(gaplic, origins=["https://ok.example"])

    def client() -> Any:
        try:
            with connect(f"ws://127.0.0.1:{port}/", origin="https://bad.example"):  # type: ignore[arg-type]
                return None
        except InvalidStatus as exc:
            return exc.response.status_code

    assert run_in_thread(gaplic, client) == 403
