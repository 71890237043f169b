"""The example config files run as documented: the timer demo, and the echo server with
the echo client talking to it on 127.0.0.1."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from typing import Any

import pytest

from fsmio.tools.cli import main
from fsmio.tools.runner import run_app

from .conftest import ROOT
from .test_runner import StderrLines, _kill

EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_passes_check(path: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(path), "--check"]) == 0, capsys.readouterr().err
    assert "ok (" in capsys.readouterr().out


def test_examples_are_there() -> None:
    assert {p.name for p in EXAMPLES} >= {"timer_demo.toml", "echo_server.toml", "echo_client.toml"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_echo_server(port: int) -> tuple[subprocess.Popen[str], StderrLines]:
    """`fsmio run examples/echo_server.toml` on ``port``, its stderr read line by line."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fsmio",
            "run",
            "examples/echo_server.toml",
            "--set",
            f"echo.port={port}",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return server, StderrLines(server)


def test_echo_client_against_echo_server() -> None:
    port = _free_port()
    server, stderr = _start_echo_server(port)
    try:
        stderr.wait_for("running 1 gobj(s)")
        seen: dict[str, Any] = {}
        code = run_app(
            ROOT / "examples" / "echo_client.toml",
            sets=[f"client.port={port}", "client.count=50", "client.size=300", "client.timeout=20"],
            on_started=lambda gaplic: seen.update(client=gaplic.find_unique_gobj("client")),
        )
        assert code == 0
        client = seen["client"]
        assert client.error is None
        assert client.echoed_bytes == 50 * 300
        server.send_signal(signal.SIGTERM)
        err = stderr.finish()
    finally:
        _kill(server)
    assert server.returncode == 0, err
    assert "GAplic 'echo_server' stopped" in err


def test_sigterm_closes_the_listener_and_the_connections() -> None:
    port = _free_port()
    server, stderr = _start_echo_server(port)
    try:
        stderr.wait_for("running 1 gobj(s)")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"hello")
            echoed = b""
            while len(echoed) < 5:
                chunk = conn.recv(100)
                assert chunk, "closed before the echo"
                echoed += chunk
            assert echoed == b"hello"
            server.send_signal(signal.SIGTERM)
            assert conn.recv(100) == b""  # the server closed the connection
        err = stderr.finish()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        _kill(server)
    assert server.returncode == 0, err
    assert "SIGTERM received, stopping" in err


def test_echo_in_one_process(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", str(ROOT / "examples" / "echo.toml"), "--set", "client.count=40"]
    assert main(argv) == 0, capsys.readouterr().err


def test_a_failing_program_exits_with_its_code(capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing listens on the port: the client gives up and sets GAplic.exit_code.
    argv = [
        "run",
        str(ROOT / "examples" / "echo_client.toml"),
        "--set",
        f"client.port={_free_port()}",
        "--set",
        "client.connect_attempts=1",
    ]
    assert main(argv) == 1
    assert "stopped, exit code 1" in capsys.readouterr().err
