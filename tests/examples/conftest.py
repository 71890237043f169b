"""Helpers of the example tests: the echo server and client run as programs
(``python -m ...``) from a directory outside the checkout.

Every wait is bounded; every process is killed and reaped at the end of its test.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SERVER = "fsmio.examples.echo_server"
CLIENT = "fsmio.examples.echo_client"
OK_LINE = re.compile(
    r"^OK messages=(\d+) bytes=(\d+) seconds=([\d.]+) round_trips_per_s=([\d.]+)"
    r" reconnections=(\d+)$"
)


class Server:
    """A running echo_server: its READY line, then signals and the exit code."""

    def __init__(self, proc: subprocess.Popen[bytes], stderr: Path) -> None:
        self.proc = proc
        self.stderr_path = stderr
        self.extra_stdout = b""
        self.host = ""
        self.port = 0

    def wait_ready(self, timeout: float = 15.0) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no READY line in {timeout} s: {self.stderr()}")
                if sel.select(left):
                    chunk = os.read(fd, 4096)
                    if not chunk:
                        raise AssertionError(f"exited before READY: {self.stderr()}")
                    buf += chunk
        line, self.extra_stdout = buf.split(b"\n", 1)
        return line.decode()

    def stop(self, sig: signal.Signals, timeout: float = 15.0) -> int:
        self.proc.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 15.0) -> int:
        assert self.proc.stdout is not None
        out, _ = self.proc.communicate(timeout=timeout)
        self.extra_stdout += out
        return self.proc.returncode

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(*args: str) -> Server:
        err = tmp_path / f"server{len(servers)}.err"
        with err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", SERVER, "--host", "127.0.0.1", *args],
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=tmp_path,
            )
        server = Server(proc, err)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
        server.proc.communicate(timeout=15)


def run_client(cwd: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", CLIENT, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def ready(server: Server) -> int:
    line = server.wait_ready()
    match = re.fullmatch(r"READY 127\.0\.0\.1 (\d+)", line)
    assert match, line
    port = int(match.group(1))
    assert 0 < port < 65536
    return port


_HELD_PORTS: list[socket.socket] = []


def closed_port() -> int:
    """A port on 127.0.0.1 that refuses connections until the test ends: bound and never
    listening, so nothing else can take it meanwhile (a port merely closed again can be
    reused by another program, and a client retrying it can even connect to itself)."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    _HELD_PORTS.append(held)
    return int(held.getsockname()[1])


@pytest.fixture(autouse=True)
def _release_closed_ports() -> Iterator[None]:
    yield
    while _HELD_PORTS:
        _HELD_PORTS.pop().close()
