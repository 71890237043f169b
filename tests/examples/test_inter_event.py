"""The inter_event demo: a bank, a lender and an exchange in three processes over NATS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_with_one_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fsmio.examples.inter_event", "--timeout", "60"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "[bank] EV_LOAN_ACK from lender/loans: total=1000" in out
    assert "[bank] loan from lender (role lenders): {'granted': 1000" in out
    assert "[bank] bought at exchange: {'user': 'ana', 'shares': 10" in out
    assert out.count("[bank] price tick from exchange: FSMIO") == 3
    assert "gobj_not_found: GAplic 'exchange' has no gobj 'nobody'" in out
    assert "[bank] DONE" in out
    assert "[launcher] done, exit 0" in out
    assert "Traceback" not in result.stderr
