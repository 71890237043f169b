"""The remote-event benchmark runs (tiny counts; no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_remote_benchmark_quick_run() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.remote", "--seconds", "0.3", "--events", "2000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for label in ("request/reply, 1", "request/reply, 16", "one-way"):
        assert f"| {label} | nats-py |" in out and f"| {label} | fsmio |" in out
    assert "fsmio/nats-py client CPU per event" in out
