"""The echo examples run as programs: ``python -m fsmio.examples.echo_server`` and
``python -m fsmio.examples.echo_client``, from a directory outside the checkout.

Every wait is bounded; every process is killed and reaped at the end of its test.
"""

from __future__ import annotations

import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from .conftest import OK_LINE, Server, closed_port, ready, run_client


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
    # The name checked in the certificate is --server-hostname's, not the address's.
    tls_args = (*args, "--cafile", str(ca_file), "--connect-attempts", "1")
    result = run_client(tmp_path, *tls_args, "--server-hostname", "other.example")
    assert result.returncode == 1
    assert "tls_verify_failed" in result.stderr
    result = run_client(tmp_path, *tls_args, "--server-hostname", "localhost")
    assert result.returncode == 0, result.stderr
    # Plain TCP to the TLS port: the server drops it and goes on serving; the client
    # reconnects (each loss logged) until its deadline.
    result = run_client(tmp_path, *args, "--deadline", "2", "--retry-interval", "0.2")
    assert result.returncode == 1
    assert "FAILED: timeout after 2 s: 0 of 100 messages echoed; last error:" in result.stderr
    assert f"connection to 127.0.0.1:{port} lost:" in result.stderr
    result = run_client(tmp_path, *args, "--tls-ca", str(ca_file))
    assert result.returncode == 0, result.stderr
    assert server.stop(signal.SIGTERM) == 0, server.stderr()


def test_client_against_a_closed_port_fails_clearly(tmp_path: Path) -> None:
    port = closed_port()
    args = ("--port", str(port), "--count", "3", "--size", "10", "--retry-interval", "0.05")
    result = run_client(tmp_path, *args, "--connect-attempts", "3")
    assert result.returncode == 1
    assert result.stdout == ""
    # One line per failed attempt: two warnings, then the GConnex's "giving up".
    assert result.stderr.count(f"connect to 127.0.0.1:{port} failed: refused (attempt") == 2
    assert result.stderr.count("giving up after 3 failed attempts") == 1
    assert f"echo_client: FAILED: cannot connect to 127.0.0.1:{port}: refused" in result.stderr
    assert "Traceback" not in result.stderr
    # Still one line per failed attempt at INFO (the GSock's own line shows at DEBUG).
    result = run_client(tmp_path, *args, "--connect-attempts", "3", "--log-level", "INFO")
    assert result.stderr.count(f"127.0.0.1:{port} failed") == 2, result.stderr
    result = run_client(tmp_path, *args, "--connect-attempts", "3", "--log-level", "DEBUG")
    assert result.stderr.count(f"127.0.0.1:{port} failed") == 3 + 2, result.stderr
    # By default it never gives up: only its deadline ends the run.
    started = time.monotonic()
    result = run_client(tmp_path, *args, "--deadline", "1")
    assert result.returncode == 1
    assert (
        "echo_client: FAILED: timeout after 1 s: 0 of 3 messages echoed; last error: refused"
        in result.stderr
    )
    assert result.stderr.count(f"connect to 127.0.0.1:{port} failed: refused") >= 5
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
