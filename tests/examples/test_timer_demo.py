"""The README's example application runs, in-process and as ``python -m``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fsmio.examples import timer_demo


def test_main_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert timer_demo.main(["--ticks", "3", "--interval", "0.01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [f"tick {n} from ticker: n={n}" for n in (1, 2, 3)]
    assert lines[3].startswith("DONE 3 ticks in ")


def test_python_dash_m_with_trace() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fsmio.examples.timer_demo",
            "--ticks",
            "2",
            "--interval",
            "0.01",
            "--trace",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("DONE 2 ticks")
    assert "-> mach: ('GAplic:timer_demo.Counter:counter: Lived'), st: ST_COUNTING" in result.stderr


def test_stops_when_its_reader_goes_away() -> None:
    """``timer_demo | head -1``: once the pipe is closed, the demo stops (exit 1, as
    Python does on EPIPE) instead of ticking on with a traceback per tick."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fsmio.examples.timer_demo",
            "--ticks",
            "1000",
            "--interval",
            "0.01",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith("tick 1 ")
        proc.stdout.close()  # the reader is gone
        assert proc.wait(timeout=30) == 1
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
