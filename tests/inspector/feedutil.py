"""Helpers of the inspector's tests: a feed client on a real WebSocket, bounded waits."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect


class Feed:
    """A page's side of ``/feed``: JSON messages in, JSON messages out, every wait bounded."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        self.raw: list[str] = []

    def send(self, message: dict[str, Any] | str) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        data = self.ws.recv(timeout=timeout)
        assert isinstance(data, str)
        self.raw.append(data)
        message: dict[str, Any] = json.loads(data)
        self.seen.append(message)
        return message

    def until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """The first message (from now) for which ``predicate`` is true."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                kinds = [m.get("type") for m in self.seen[-20:]]
                raise AssertionError(f"no such message within {timeout} s (last: {kinds})")
            try:
                message = self.recv(timeout=left)
            except TimeoutError:
                continue
            if predicate(message):
                return message

    def of_type(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        return self.until(lambda m: m.get("type") == kind, timeout)

    def collect(self, seconds: float) -> list[dict[str, Any]]:
        """Every message received during ``seconds``."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                out.append(self.recv(timeout=left))
            except TimeoutError:
                break
        return out

    def closed_code(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; its close code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.ws.recv(timeout=deadline - time.monotonic())
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd is not None else None
            except TimeoutError:
                break
        raise AssertionError(f"the feed was not closed within {timeout} s")


@contextmanager
def open_feed(url: str, **kw: Any) -> Iterator[Feed]:
    ws_url = url.replace("http://", "ws://", 1).rstrip("/") + "/feed"
    with connect(ws_url, open_timeout=5, close_timeout=2, **kw) as ws:
        yield Feed(ws)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {what or predicate}")
        time.sleep(0.01)


def port_of(url: str) -> int:
    return int(url.rstrip("/").rpartition(":")[2])


def small_socket(url: str, rcvbuf: int = 4096) -> socket.socket:
    """A connected TCP socket to the inspector with a small receive buffer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port_of(url)))
    return sock
