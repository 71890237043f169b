"""The echo examples run as programs: ``python -m fsmio.examples.echo_server`` and
``python -m fsmio.examples.echo_client``, from a directory outside the checkout.

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
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

SERVER = "fsmio.examples.echo_server"
CLIENT = "fsmio.examples.echo_client"
OK_LINE = re.compile(r"^OK messages=(\d+) bytes=(\d+) seconds=([\d.]+) round_trips_per_s=([\d.]+)$")


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


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_ready_round_trips_and_a_signal_stops_with_exit_0(
    start_server: Callable[..., Server], tmp_path: Path, sig: signal.Signals
) -> None:
    server = start_server("--port", "0")
    port = ready(server)
    result = run_client(tmp_path, "--port", str(port), "--count", "300", "--size", "1000")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    match = OK_LINE.match(lines[0])
    assert match, lines[0]
    assert (int(match.group(1)), int(match.group(2))) == (300, 300_000)
    assert float(match.group(4)) > 0
    # A second client, big messages: the server keeps serving.
    result = run_client(tmp_path, "--port", str(port), "--count", "5", "--size", "2000000")
    assert result.returncode == 0, result.stderr
    assert server.stop(sig) == 0, server.stderr()
    assert server.extra_stdout == b""  # exactly one line on stdout
    assert "stopped after" in server.stderr()
    assert "Traceback" not in server.stderr()


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:  # pragma: no cover - a machine without IPv6
        return False


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6")
def test_ipv6_round_trip(start_server: Callable[..., Server], tmp_path: Path) -> None:
    server = start_server("--host", "::1", "--port", "0")
    match = re.fullmatch(r"READY ::1 (\d+)", server.wait_ready())
    assert match
    args = ("--host", "::1", "--port", match.group(1), "--count", "50", "--size", "3000")
    result = run_client(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert OK_LINE.match(result.stdout.strip())
    assert server.stop(signal.SIGTERM) == 0, server.stderr()


def test_sigterm_right_after_ready_still_exits_0(start_server: Callable[..., Server]) -> None:
    server = start_server("--port", "0")
    ready(server)
    assert server.stop(signal.SIGTERM) == 0, server.stderr()
    assert server.extra_stdout == b""


def test_max_seconds_stops_the_server(start_server: Callable[..., Server]) -> None:
    server = start_server("--port", "0", "--max-seconds", "0.3")
    ready(server)
    assert server.wait(timeout=15) == 0, server.stderr()


def test_port_in_use_is_a_clear_error(start_server: Callable[..., Server]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = start_server("--port", str(port))
        assert server.wait(timeout=15) == 1
    assert server.extra_stdout == b""
    assert f"cannot listen on 127.0.0.1:{port}" in server.stderr()


def test_tls_round_trip_with_a_test_ca(start_server: Callable[..., Server], tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = (tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    server = start_server("--port", "0", "--tls-cert", str(cert_file), "--tls-key", str(key_file))
    port = ready(server)
    args = ("--port", str(port), "--count", "100", "--size", "5000")
    result = run_client(tmp_path, *args, "--tls-ca", str(ca_file))
    assert result.returncode == 0, result.stderr
    assert OK_LINE.match(result.stdout.strip())
    # Without the test CA the client refuses the certificate: verification is on by default.
    result = run_client(tmp_path, *args, "--tls", "--connect-attempts", "1")
    assert result.returncode == 1
    assert "FAILED: cannot connect to 127.0.0.1" in result.stderr
    assert "tls_verify_failed" in result.stderr
    # A missing CA file is a clear error at start, not a traceback.
    result = run_client(tmp_path, *args, "--tls-ca", str(tmp_path / "missing.pem"))
    assert result.returncode == 1
    assert "FAILED" in result.stderr and "cafile" in result.stderr
    assert "Traceback" not in result.stderr
    # Plain TCP to the TLS port: the server drops it and goes on serving.
    result = run_client(tmp_path, *args)
    assert result.returncode == 1
    assert "FAILED: connection lost" in result.stderr
    result = run_client(tmp_path, *args, "--tls-ca", str(ca_file))
    assert result.returncode == 0, result.stderr
    assert server.stop(signal.SIGTERM) == 0, server.stderr()


def test_client_against_a_closed_port_fails_clearly(tmp_path: Path) -> None:
    port = closed_port()
    started = time.monotonic()
    result = run_client(tmp_path, "--port", str(port), "--count", "3", "--size", "10")
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"echo_client: FAILED: cannot connect to 127.0.0.1:{port}: refused" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 30


def _silent_server(listener: socket.socket, stop: threading.Event, corrupt: bool) -> None:
    """Accept one client; echo with the 10th byte flipped (corrupt), or never answer."""
    listener.settimeout(10)
    try:
        conn, _ = listener.accept()
    except OSError:
        return
    with conn:
        conn.settimeout(0.1)
        sent = 0
        while not stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            if corrupt:
                out = bytearray(data)
                if sent <= 9 < sent + len(out):
                    out[9 - sent] ^= 0xFF
                sent += len(out)
                conn.sendall(bytes(out))


@pytest.mark.parametrize("corrupt", [True, False], ids=["corrupt", "silent"])
def test_client_detects_corruption_and_times_out(tmp_path: Path, corrupt: bool) -> None:
    stop = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        thread = threading.Thread(target=_silent_server, args=(listener, stop, corrupt))
        thread.start()
        try:
            result = run_client(
                tmp_path, "--port", str(port), "--count", "5", "--size", "100", "--timeout", "1"
            )
        finally:
            stop.set()
            thread.join(15)
    assert not thread.is_alive()
    assert result.returncode == 1
    if corrupt:
        assert "FAILED: message 1: echoed byte 9 differs" in result.stderr
    else:
        assert "FAILED: timeout after 1 s: 0 of 5 messages echoed" in result.stderr
