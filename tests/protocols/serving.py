"""Run a server gobj on a GAplic in a thread, for tests with real clients (bounded waits)."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fsmio import GAplic, GAplicThreadWorker

_names = itertools.count()


@dataclass
class Served:
    gaplic: GAplic
    server: Any
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Poll ``condition`` every 5 ms; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {what or condition}")
        time.sleep(0.005)


@contextmanager
def serving(gclass: type, ready: bool = True, **config: Any) -> Iterator[Served]:
    """A ``gclass`` server on 127.0.0.1 (free port) running in a thread; stopped after."""
    gaplic = GAplic(f"serving-{next(_names)}", shutdown_grace=5.0)
    is_ready = threading.Event()
    config.setdefault("host", "127.0.0.1")
    config.setdefault("port", 0)
    try:
        server = gaplic.create_gobj("server", gclass, gaplic, ready_callback=is_ready.set, **config)
    except BaseException:
        gaplic.close()
        raise
    worker = GAplicThreadWorker(gaplic)
    worker.start()
    try:
        if ready:
            assert is_ready.wait(10), "the server did not become ready within 10 s"
        yield Served(gaplic, server, "127.0.0.1", int(server.config.port))
    finally:
        worker.stop(15)
        assert not worker.is_alive(), "the GAplic thread did not stop within 15 s"
        gaplic.close()


def post_chunked(
    port: int, path: str, pieces: list[bytes], pause_before_end: float = 0.0
) -> tuple[int, bytes]:
    """POST ``pieces`` as a chunked body on a new connection; ``(status, body)`` of the
    answer (Content-Length framed).  The head and the chunks go in one write; with
    ``pause_before_end`` the terminating chunk goes that many seconds later, alone."""
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        if pause_before_end:
            sock.sendall(head + body)
            time.sleep(pause_before_end)
            sock.sendall(b"0\r\n\r\n")
        else:
            sock.sendall(head + body + b"0\r\n\r\n")
        data = b""
        for _ in range(100_000):
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
    finally:
        sock.close()
    head_end = data.index(b"\r\n\r\n")
    status = int(data.split(b" ", 2)[1])
    return status, data[head_end + 4 :]
