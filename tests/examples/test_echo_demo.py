"""The README's run command: examples/echo.toml, a server and a client in one process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fsmio", "run", str(EXAMPLES / "echo.toml"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_echo_demo_round_trips_every_byte() -> None:
    result = run("--set", "client.count=200", "--set", "client.size=3000")
    assert result.returncode == 0, result.stderr
    assert "OK: 200 messages, 600000 bytes echoed intact" in result.stderr


def test_echo_demo_failure_gives_a_non_zero_exit() -> None:
    # A run that cannot finish in time fails, and says so.
    result = run("--set", "client.count=100000000", "--set", "client.timeout=0.2")
    assert result.returncode == 1, result.stderr
    assert "FAILED: timeout after 0.2 s" in result.stderr
