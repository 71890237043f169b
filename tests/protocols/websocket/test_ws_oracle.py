"""wsproto as an independent reading of the same bytes, and hypothesis over
fragmentations: any split of valid messages across frames and reads gives the same
messages, and what the server sends back parses in wsproto to the same messages."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode

from fsmio import GAplic
from tests.helpers import drive

from .wsutil import RawWs, client_frame, serve

messages_st = st.lists(
    st.one_of(st.text(max_size=300), st.binary(max_size=300)), min_size=1, max_size=6
)


def _wsproto_client(gaplic: GAplic, port: int) -> tuple[socket.socket, WSConnection]:
    conn = WSConnection(ConnectionType.CLIENT)
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(conn.send(Request(host="127.0.0.1", target="/oracle")))
    sock.setblocking(False)
    accepted: list[Any] = []

    def until() -> bool:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return False
        conn.receive_data(data or None)
        accepted.extend(e for e in conn.events() if isinstance(e, AcceptConnection))
        return bool(accepted) or not data

    drive(gaplic, until)
    assert accepted
    return sock, conn


def _read_messages(
    gaplic: GAplic, sock: socket.socket, conn: WSConnection, n: int
) -> list[str | bytes]:
    got: list[str | bytes] = []
    parts: list[Any] = []

    def until() -> bool:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return len(got) >= n
        conn.receive_data(data or None)
        for event in conn.events():
            if isinstance(event, Message):
                parts.append(event.data)
                if event.message_finished:
                    got.append(("" if isinstance(event, TextMessage) else b"").join(parts))
                    parts.clear()
        return len(got) >= n or not data

    drive(gaplic, until)
    return got


def test_wsproto_client_round_trip_and_close(gaplic: GAplic) -> None:
    app, port = serve(gaplic)
    sock, conn = _wsproto_client(gaplic, port)
    sock.sendall(conn.send(TextMessage(data="ünïcode")) + conn.send(BytesMessage(data=b"\0\1")))
    assert _read_messages(gaplic, sock, conn, 2) == ["ünïcode", b"\0\1"]
    sock.sendall(conn.send(CloseConnection(code=1000, reason="done")))
    closed: list[Any] = []

    def until() -> bool:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return False
        conn.receive_data(data or None)
        closed.extend(e for e in conn.events() if isinstance(e, CloseConnection))
        return not data

    drive(gaplic, until)
    assert closed and closed[0].code == CloseReason.NORMAL_CLOSURE
    sock.close()
    drive(gaplic, lambda: app.closes())
    assert app.closes() == [{"code": 1000, "reason": "done", "clean": True}]


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(messages=messages_st, data=st.data())
def test_any_fragmentation_and_read_split_gives_the_same_messages(
    gaplic: GAplic, messages: list[str | bytes], data: st.DataObject
) -> None:
    if not hasattr(gaplic, "_ws_oracle_port"):
        gaplic._ws_oracle_app, gaplic._ws_oracle_port = serve(gaplic)  # type: ignore[attr-defined]
    app = gaplic._ws_oracle_app  # type: ignore[attr-defined]
    port = gaplic._ws_oracle_port  # type: ignore[attr-defined]
    wire = b""
    for message in messages:
        payload = message.encode() if isinstance(message, str) else message
        # Split each message into frames at arbitrary points (through UTF-8 sequences too).
        cuts = sorted(data.draw(st.lists(st.integers(0, len(payload)), max_size=4, unique=True)))
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
        opcode = 1 if isinstance(message, str) else 2
        for i, piece in enumerate(pieces):
            wire += client_frame(opcode if i == 0 else 0, piece, fin=i == len(pieces) - 1)
        if data.draw(st.booleans()):
            wire += client_frame(9, b"interleaved ping")  # control frames may interleave
    reads = sorted(data.draw(st.lists(st.integers(1, max(1, len(wire) - 1)), max_size=5)))
    raw = RawWs(gaplic, port)
    try:
        raw.handshake()
        before = len(app.messages())
        for a, b in zip([0, *reads], [*reads, len(wire)], strict=True):
            if wire[a:b]:
                raw.send(wire[a:b])
        drive(gaplic, lambda: len(app.messages()) >= before + len(messages))
        assert app.messages()[before:] == messages
        # What came back (the echo) reads the same in wsproto.
        echoed: list[str | bytes] = []
        frames = FrameProtocol(client=True, extensions=[])
        parts: list[Any] = []

        def until() -> bool:
            raw._read()
            if raw.buf:
                frames.receive_bytes(raw.buf)
                raw.buf = b""
                for frame in frames.received_frames():
                    if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION):
                        parts.append(frame.payload)
                        if frame.message_finished:
                            text = isinstance(parts[0], str)
                            echoed.append(("" if text else b"").join(parts))
                            parts.clear()
            return len(echoed) >= len(messages)

        drive(gaplic, until)
        assert echoed == messages
    finally:
        raw.close()
