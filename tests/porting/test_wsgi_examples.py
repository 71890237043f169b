"""ginsfsm's WSGI examples (``examples/wsgi/simple_wsgi_server.py`` and
``multiple_wsgi_server.py``, and their ``.ini`` deployment files), ported by changing
their imports (``use = call:...`` lines) to fsmio and binding them to 127.0.0.1 on a free
port, run as programs (and with ``fsmio run X.ini``, as ``gserve X.ini`` ran them) and
answering as the originals did."""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

HERE = Path(__file__).parent
LISTENING = re.compile(r"serving WSGI on http://127\.0\.0\.1:(\d+)")


class Program:
    """A ported example running in a subprocess; stderr (its log) read in a thread."""

    def __init__(self, name: str) -> None:
        # A .py runs as a program (as `python simple_wsgi_server.py`); an .ini with
        # `fsmio run` (as `gserve simple_wsgi_server.ini`), from the repository root so
        # that its `use = call:tests.porting...` lines import.
        if name.endswith(".ini"):
            command = [sys.executable, "-m", "fsmio", "run", str(HERE / name)]
        else:
            command = [sys.executable, str(HERE / name)]
        self.proc = subprocess.Popen(
            command,
            cwd=HERE if name.endswith(".py") else HERE.parents[1],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        assert self.proc.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def port(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            match = LISTENING.search(line)
            if match:
                return int(match.group(1))
        raise AssertionError(f"the program did not start; its log: {''.join(self.seen)}")

    def stop(self) -> int:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=30)
            self._reader.join(timeout=10)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()


def exchange(port: int, requests: bytes, responses: int) -> list[tuple[bytes, bytes]]:
    """Send ``requests`` (possibly pipelined) on one connection; read ``responses``
    (status line, body) pairs of Content-Length or chunked responses."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    buf = b""
    out: list[tuple[bytes, bytes]] = []
    try:
        sock.sendall(requests)
        for _ in range(10_000):
            while len(out) < responses:
                parsed = _parse_one(buf)
                if parsed is None:
                    break
                status, body, buf = parsed
                out.append((status, body))
            if len(out) == responses:
                return out
            data = sock.recv(65536)
            if not data:
                break
            buf += data
    finally:
        sock.close()
    raise AssertionError(f"got {len(out)} of {responses} responses: {buf!r}")


def _parse_one(buf: bytes) -> tuple[bytes, bytes, bytes] | None:
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = buf[:head_end].split(b"\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(b":") for h in head[1:])}
    rest = buf[head_end + 4 :]
    if b"content-length" in fields:
        size = int(fields[b"content-length"])
        if len(rest) < size:
            return None
        return head[0], rest[:size], rest[size:]
    assert fields.get(b"transfer-encoding") == b"chunked", head
    body = b""
    while True:
        line_end = rest.find(b"\r\n")
        if line_end < 0:
            return None
        size = int(rest[:line_end], 16)
        if len(rest) < line_end + 2 + size + 2:
            return None
        body += rest[line_end + 2 : line_end + 2 + size]
        rest = rest[line_end + 2 + size + 2 :]
        if size == 0:
            return head[0], body, rest


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["simple_wsgi_server.py", "simple_wsgi_server.ini"])
def test_simple_wsgi_server(name: str) -> None:
    program = Program(name)
    try:
        port = program.port()
        # one request, then two pipelined (the original was verified with both)
        assert exchange(port, get("/"), 1) == [(b"HTTP/1.1 200 OK", b"Hello World\n")]
        assert exchange(port, get("/a") + get("/b"), 2) == [
            (b"HTTP/1.1 200 OK", b"Hello World\n"),
            (b"HTTP/1.1 200 OK", b"Hello World\n"),
        ]
    finally:
        code = program.stop()
    assert code == 0, "".join(program.seen)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["multiple_wsgi_server.py", "multiple_wsgi_server.ini"])
def test_multiple_wsgi_server(name: str) -> None:
    program = Program(name)
    try:
        port = program.port()
        replies = exchange(
            port, get("/") + get("/app2") + get("/app3/deeper") + get("/elsewhere"), 4
        )
        assert replies == [
            (b"HTTP/1.1 200 OK", b"Hello World ONE!\n"),
            (b"HTTP/1.1 200 OK", b"Hello World TWO!\n"),
            (b"HTTP/1.1 200 OK", b"Hello World THREE!\n"),
            (b"HTTP/1.1 200 OK", b"Hello World ONE!\n"),
        ]
    finally:
        code = program.stop()
    assert code == 0, "".join(program.seen)


def test_only_imports_and_binding_differ_from_the_originals() -> None:
    for name in ("simple_wsgi_server.py", "multiple_wsgi_server.py"):
        text = (HERE / name).read_text()
        assert "ginsfsm." not in text.replace(":class:`fsmio", "")
        assert '"wsgi-server.host": "127.0.0.1"' in text
        assert '"wsgi-server.port": 0' in text
        assert "from fsmio import" in text
    for name in ("simple_wsgi_server.ini", "multiple_wsgi_server.ini"):
        text = (HERE / name).read_text()
        assert "call:ginsfsm" not in text
        assert "wsgi-server.host = 127.0.0.1" in text
        assert "wsgi-server.port = 0" in text
