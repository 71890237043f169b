"""ginsfsm's ``essential_gobjs/ongsock.py`` on fsmio: one request per connection.

The original sends its request on ``EV_TRANSMIT_READY``.  With the event's ginsfsm meaning
(after connect, and after output that had to wait has drained) that is one request per
connection; had the event followed every flush, it would send thousands.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.porting.test_ginsfsm_program import port

ORIGINAL = Path(__file__).with_name("ongsock.py.txt")
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"


class CountingHttpPeer:
    """A local HTTP peer that answers every request and counts them per connection."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.requests_per_connection: list[int] = []
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept)
        self.acceptor.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            index = len(self.requests_per_connection)
            self.requests_per_connection.append(0)
            thread = threading.Thread(target=self._serve, args=(conn, index))
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, index: int) -> None:
        conn.settimeout(0.2)
        buffered = b""
        with conn:
            while not self.stopping.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                buffered += data
                while b"\r\n\r\n" in buffered:
                    _, _, buffered = buffered.partition(b"\r\n\r\n")
                    self.requests_per_connection[index] += 1
                    try:
                        conn.sendall(RESPONSE)
                    except OSError:
                        return

    def close(self) -> None:
        self.stopping.set()
        self.acceptor.join(timeout=5)
        for thread in self.threads:
            thread.join(timeout=5)
        self.listener.close()


def test_only_import_lines_change() -> None:
    original = ORIGINAL.read_text().splitlines()
    ported = port(ORIGINAL.read_text()).splitlines()
    changed = [(a, b) for a, b in zip(original, ported, strict=True) if a != b]
    assert len(changed) == 6
    assert all(a.startswith("from ginsfsm") and b.startswith("from fsmio") for a, b in changed)


@pytest.mark.slow
def test_ongsock_sends_one_request_per_connection(tmp_path: Path) -> None:
    program = tmp_path / "ongsock.py"
    program.write_text(port(ORIGINAL.read_text()))
    peer = CountingHttpPeer()
    args = ["1", "127.0.0.1", str(peer.port), "-v", "1", "--run-for", "5.5"]
    try:
        result = subprocess.run(
            [sys.executable, str(program), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        peer.close()
    assert result.returncode == 0, result.stderr
    # connect at 1 s, drop at 2 s, reconnect at 3 s, drop at 4 s, reconnect at 5 s
    assert len(peer.requests_per_connection) >= 2, result.stderr
    assert set(peer.requests_per_connection[:2]) == {1}, peer.requests_per_connection
    assert all(n <= 1 for n in peer.requests_per_connection)
    assert result.stdout.count("Send b'GET / HTTP/1.1") == sum(peer.requests_per_connection)
    assert "Receiving 69 bytes" in result.stdout
