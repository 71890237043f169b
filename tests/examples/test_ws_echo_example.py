"""``python -m fsmio.examples.ws_echo`` as a program: READY line, a WebSocket client's
round trips (text, binary, fragmented, compressed), and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from websockets.sync.client import connect


@pytest.fixture
def ws_echo() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fsmio.examples.ws_echo",
            "--port",
            "0",
            "--max-seconds",
            "60",
            "--compression",
            "deflate",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("READY 127.0.0.1 "), line
        yield proc, int(line.split()[2])
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


@pytest.mark.slow
def test_ws_echo_round_trips_and_stops_on_sigterm(
    ws_echo: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = ws_echo
    with connect(f"ws://127.0.0.1:{port}/any/path", open_timeout=10) as ws:
        ws.send("héllo")
        assert ws.recv(timeout=10) == "héllo"
        ws.send(b"\x00" * 100_000)
        assert ws.recv(timeout=10) == b"\x00" * 100_000
        ws.send(["a", "b", "c"])
        assert ws.recv(timeout=10) == "abc"
        assert ws.protocol.extensions  # permessage-deflate was negotiated
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
