"""``python -m fsmio.examples.http_hello`` runs as a program from outside the checkout:
READY line, answers with http.client (keep-alive, an echoed body), stops on SIGTERM."""

from __future__ import annotations

import http.client
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path


def test_http_hello_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fsmio.examples.http_hello", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = b""
        deadline = time.monotonic() + 15
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout.fileno(), selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                assert left > 0, "no READY line"
                if sel.select(left):
                    chunk = os.read(proc.stdout.fileno(), 1024)
                    assert chunk, "the server exited before READY"
                    line += chunk
        word, host, port = line.decode().split()
        assert word == "READY" and host == "127.0.0.1"
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"Hello, World!")
        conn.request("POST", "/echo", body=b"ping")
        assert conn.getresponse().read() == b"ping"
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
