"""``fsmio trace``: a trace file written by ``fsmio run --trace-file`` printed back as the
indented ``-> mach:`` / ``<- mach:`` view, filtered by gobj, event and state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsmio.tools import ToolError
from fsmio.tools.cli import main
from fsmio.tools.trace import format_record, print_trace

from .conftest import ROOT, run_fsmio

DEMO = str(ROOT / "examples" / "timer_demo.toml")


@pytest.fixture
def trace_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "trace.jsonl"
    argv = ["run", DEMO, "--set", "ticker.interval=0.01", "--set", "counter.ticks=2"]
    assert main([*argv, "--trace-file", str(path)]) == 0
    capsys.readouterr()
    return path


def test_whole_trace_is_the_indented_view(
    trace_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["trace", str(trace_file), "--no-time"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # The first tick: GTimer -> Ticker -> Counter, nested by synchronous sends.
    start = lines.index(
        "-> mach: (GTimer:timer_demo.ticker.timer), st: ST_IDLE, ev: (EV_TIMER_EXPIRED), "
        "ac: ac_timer_expired()"
    )
    assert lines[start : start + 6] == [
        (
            "-> mach: (GTimer:timer_demo.ticker.timer), st: ST_IDLE, ev: (EV_TIMER_EXPIRED), "
            "ac: ac_timer_expired()"
        ),
        "  -> mach: (Ticker:timer_demo.ticker), st: ST_RUNNING, ev: (EV_TIMEOUT), ac: ac_timeout()",
        "    -> mach: (Counter:timer_demo.counter), st: ST_COUNTING, ev: (EV_TICK), ac: ac_tick()",
        "    <- mach: (Counter:timer_demo.counter), st: ST_COUNTING, ret: 1",
        "  <- mach: (Ticker:timer_demo.ticker), st: ST_RUNNING, ret: None",
        "<- mach: (GTimer:timer_demo.ticker.timer), st: ST_IDLE, ret: None",
    ]


def test_timestamps(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", str(trace_file)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first[:4].isdigit() and first[23:27] == " -> "  # 'YYYY-mm-dd HH:MM:SS.mmm -> '


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--gobj", "counter"], {("Counter", "EV_TICK")}),
        (["--gobj", "timer_demo.counter"], {("Counter", "EV_TICK")}),
        (
            ["--gobj", "timer_demo.ticker*"],
            {("Ticker", "EV_TIMEOUT"), ("GTimer", "EV_SET_TIMER"), ("GTimer", "EV_TIMER_EXPIRED")},
        ),
        (["--event", "EV_TIMEOUT"], {("Ticker", "EV_TIMEOUT")}),
        (["--state", "ST_COUNTING"], {("Counter", "EV_TICK")}),
        (["--gobj", "timer", "--event", "EV_SET_TIMER"], {("GTimer", "EV_SET_TIMER")}),
        (["--gobj", "counter", "--event", "EV_TIMEOUT"], set()),
    ],
)
def test_filters(
    trace_file: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    expected: set[tuple[str, str]],
) -> None:
    assert main(["trace", str(trace_file), "--no-time", *argv]) == 0
    out = capsys.readouterr().out.splitlines()
    shown = set()
    for line in out:
        gclass = line.split("(", 1)[1].split(":", 1)[0]
        if "ev: (" in line:
            shown.add((gclass, line.split("ev: (", 1)[1].split(")", 1)[0]))
    assert shown == expected
    # A transition is shown whole: as many ends as starts.
    assert sum("-> mach" in line for line in out) == sum("<- mach" in line for line in out)


def test_new_state_and_not_accepted_records() -> None:
    base = {"gclass": "G", "gobj": "a.g", "state": "ST_A", "event": "EV_X", "depth": 1}
    assert format_record({**base, "phase": "-", "next_state": "ST_B"}, False) == (
        "   - mach: (G:a.g), new_st: ST_B"
    )
    assert (
        format_record(
            {
                **base,
                "phase": "!",
                "message": "mach: (...), st: ST_A, ev: EV_X (NOT ACCEPTED, no match action)",
            },
            False,
        )
        == "  <> mach: (G:a.g), st: ST_A, ev: EV_X (NOT ACCEPTED, no match action)"
    )
    assert (
        format_record(
            {
                **base,
                "phase": "<-",
                "next_state": "ST_B",
                "message": "<- ..., raised: ValueError('x')",
            },
            False,
        )
        == "  <- mach: (G:a.g), st: ST_B, raised: ValueError('x')"
    )


def test_bad_lines_are_reported_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cut.jsonl"
    good = {
        "phase": "->",
        "gclass": "G",
        "gobj": "g",
        "state": "S",
        "event": "E",
        "action": "ac",
        "depth": 0,
    }
    path.write_text(json.dumps(good) + "\n" + '{"phase": "->", "gcl' + "\n" + "[1]\n")
    assert main(["trace", str(path), "--no-time"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "-> mach: (G:g), st: S, ev: (E), ac: ac()\n"
    assert f"fsmio trace: warning: {path}:2: not a JSON object" in captured.err
    assert f"fsmio trace: warning: {path}:3: not a trace record (no 'phase')" in captured.err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "no/such/trace.jsonl"]) == 2
    assert "fsmio trace: error: trace file not found: 'no/such/trace.jsonl'" in (
        capsys.readouterr().err
    )
    with pytest.raises(ToolError):
        print_trace("no/such/trace.jsonl")


def test_trace_from_a_subprocess(trace_file: Path) -> None:
    done = run_fsmio("trace", str(trace_file), "--gobj", "counter", "--no-time")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("-> mach: (Counter:timer_demo.counter)") == 2
