"""``python -m fsmio.examples.ws_chat`` in a subprocess, for the example's tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def ws_chat_process() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """The chat server on 127.0.0.1 (a free port): ``(process, port)``; killed after."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fsmio.examples.ws_chat", "--port", "0", "--max-seconds", "100"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()  # bounded by --max-seconds
        assert line.startswith("READY 127.0.0.1 "), line + proc.stderr.read().decode()  # type: ignore[union-attr]
        yield proc, int(line.split()[2])
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
