"""Helpers for the tool tests: run ``fsmio`` in a subprocess, write TOML files."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_fsmio(
    *args: str, timeout: float = 60, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """``python -m fsmio ARGS`` from the repository root, bounded in time."""
    return subprocess.run(
        [sys.executable, "-m", "fsmio", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def write_toml(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a TOML file in the test's temporary directory; return its path."""

    def write(text: str, name: str = "app.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
