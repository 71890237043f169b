"""The --workers benchmark runs (tiny load; no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT balances only on Linux")
def test_workers_benchmark_quick_run() -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.workers"),
            *("--seconds", "0.5", "--loaders", "1", "--conns", "5"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "| 1 |" in result.stdout and "| 2 |" in result.stdout
    assert "2 workers / 1 worker:" in result.stdout
