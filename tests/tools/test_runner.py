"""``fsmio run``: TOML -> GAplic, --set, --check, traces, logging, signals, bad input."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from fsmio.tools import ToolError
from fsmio.tools.cli import main
from fsmio.tools.runner import load_config, parse_sets, validate

from .conftest import ROOT, run_fsmio

DEMO = str(ROOT / "examples" / "timer_demo.toml")
FAST = ["--set", "ticker.interval=0.01", "--set", "counter.ticks=3"]

FOREVER = """
[gaplic]
name = "forever"
shutdown_grace = {grace}

[[gobj]]
name = "forever"
gclass = "tests.tools.sample_gclasses:Forever"
config = {{ hang = {hang} }}
"""

WriteToml = Callable[..., Path]


# ----------------------------------------------------------------------------------------
#   Running
# ----------------------------------------------------------------------------------------
def test_timer_demo_runs_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", DEMO, *FAST]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("tick")] == [
        "tick 1 from ticker: n=1",
        "tick 2 from ticker: n=2",
        "tick 3 from ticker: n=3",
    ]


def test_timer_demo_runs_from_a_subprocess() -> None:
    done = run_fsmio("run", "examples/timer_demo.toml", *FAST)
    assert done.returncode == 0, done.stderr
    assert "tick 3 from ticker: n=3" in done.stdout
    assert "GAplic 'timer_demo' stopped" in done.stderr


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "fsmio"
    assert script.exists(), "pip install . must install the `fsmio` console script"
    done = subprocess.run(
        [str(script), "run", "examples/timer_demo.toml", *FAST],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "tick 3" in done.stdout


def test_set_overrides_the_file_and_is_converted(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", DEMO, "--set", "ticker.interval=0.01", "--set", "counter.ticks=2"]) == 0
    assert capsys.readouterr().out.count("tick ") == 2


def test_parent_and_unique(write_toml: WriteToml, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_toml(
        """
[[gobj]]
name = "counter"
gclass = "fsmio.examples.timer_demo:Counter"
unique = true
config = { ticks = 1 }

[[gobj]]
name = "ticker"
parent = "counter"
gclass = "fsmio.examples.timer_demo:Ticker"
config = { interval = 0.01 }
"""
    )
    seen: list[str] = []

    def started(gaplic: object) -> None:
        counter = gaplic.find_unique_gobj("counter")  # type: ignore[attr-defined]
        seen.extend(child.name for child in counter.dl_childs)

    from fsmio.tools.runner import run_app

    assert run_app(path, on_started=started) == 0
    assert seen == ["ticker"]
    assert "tick 1" in capsys.readouterr().out


def test_json_logging(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", DEMO, *FAST, "--log-format", "json", "--trace", "mach"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert any(r["message"].startswith("fsmio run: GAplic") for r in records)
    starts = [r for r in records if r.get("phase") == "->"]
    assert starts, records
    assert {"gclass", "gobj", "state", "event", "action", "next_state", "depth"} <= set(starts[0])
    assert {r["gclass"] for r in starts} >= {"GTimer", "Ticker", "Counter"}


def test_trace_mach_and_creation_on_console(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", DEMO, *FAST, "--trace", "mach,creation,subscription"]) == 0
    err = capsys.readouterr().err
    assert "-> mach: ('GAplic:timer_demo.Counter:counter: Lived'), st: ST_COUNTING" in err
    assert "    -> mach:" in err  # nested sends are indented
    assert "Creating --> 'Ticker:ticker'" in err
    assert "NEW Subscription" in err


def test_trace_file_is_json_lines_and_not_on_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "trace.jsonl"
    assert main(["run", DEMO, *FAST, "--trace-file", str(trace)]) == 0
    err = capsys.readouterr().err
    assert "-> mach" not in err and "trace_mach ON" not in err
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    ticks = [r for r in records if r["event"] == "EV_TICK" and r["phase"] == "->"]
    assert len(ticks) == 3
    assert ticks[0]["gobj"] == "timer_demo.counter"
    assert ticks[0]["gclass"] == "Counter"
    assert ticks[0]["state"] == "ST_COUNTING"
    assert ticks[0]["action"] == "ac_tick"
    assert ticks[0]["depth"] == 2  # GTimer -> Ticker -> Counter
    assert [r["seq"] for r in records] == list(range(len(records)))
    ends = [r for r in records if r["event"] == "EV_TICK" and r["phase"] == "<-"]
    assert ends[-1]["message"].endswith("ret: 0")


def test_log_file_in_json(write_toml: WriteToml, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_toml(
        """
[logging]
level = "DEBUG"
format = "json"
file = "run.log"

[[gobj]]
name = "counter"
gclass = "fsmio.examples.timer_demo:Counter"
unique = true
config = { ticks = 1 }

[[gobj]]
name = "ticker"
gclass = "fsmio.examples.timer_demo:Ticker"
config = { interval = 0.01 }
"""
    )
    assert main(["run", str(path)]) == 0
    assert capsys.readouterr().err == ""
    records = [json.loads(line) for line in (path.parent / "run.log").read_text().splitlines()]
    messages = [r["message"] for r in records]
    assert "fsmio run: GAplic 'app' stopped" in messages
    assert all(r["level"] in ("DEBUG", "INFO", "WARNING") for r in records)


def test_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", DEMO, "--check"]) == 0
    captured = capsys.readouterr()
    assert "ok (2 gobjs, 2 gclasses)" in captured.out
    assert "tick" not in captured.out  # nothing ran


def test_check_trace_dump_names_gsock(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", DEMO, "--check", "--trace", "dump"]) == 0


def test_check_lists_every_problem(
    write_toml: WriteToml, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_toml(
        """
[gaplic]
shutdown_grace = "soon"

[settings]
"counter.tics" = 3

[[gobj]]
name = "counter"
gclass = "fsmio.examples.timer_demo:Counter"
config = { ticks = "many" }

[[gobj]]
name = "x"
gclass = "fsmio.examples.timer_demo:Nope"
"""
    )
    assert main(["run", str(path), "--check"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3: GAplic: invalid value 'soon' for parameter 'shutdown_grace'" in err
    assert f"{path}:6: setting 'counter.tics': Counter 'counter': unknown parameter 'tics'" in err
    assert "did you mean 'ticks'?" in err
    assert f"{path}:11: [[gobj]] #1 'counter': Counter 'counter': invalid value 'many'" in err
    assert f"{path}:15: [[gobj]] #2 'x': unknown gclass 'Nope'" in err
    assert "4 problems; nothing was run" in err


def test_check_reports_gclass_problems(
    write_toml: WriteToml, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_toml(
        """
[[gobj]]
name = "odd"
gclass = "tests.tools.broken_gclasses:Odd"
"""
    )
    assert main(["run", str(path), "--check"]) == 2
    err = capsys.readouterr().err
    assert "unreachable-state: Odd FSM: state 'ST_ISLAND'" in err
    assert "dead-end-state" not in err  # warnings are for `fsmio check`


def test_note_for_a_setting_that_names_nothing(
    write_toml: WriteToml, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_toml(
        """
[settings]
ghost.port = 7000

[[gobj]]
name = "counter"
gclass = "fsmio.examples.timer_demo:Counter"
"""
    )
    assert main(["run", str(path), "--check"]) == 0
    err = capsys.readouterr().err
    assert f"note: {path}:3: setting 'ghost.port': no [[gobj]] named 'ghost'" in err


# ----------------------------------------------------------------------------------------
#   Bad input: a clear message and a non-zero exit, never a traceback
# ----------------------------------------------------------------------------------------
def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    err = _fails(["run", "no/such/file.toml"], capsys)
    assert "fsmio run: error: config file not found: 'no/such/file.toml'" in err


def test_toml_syntax_error_names_the_line(
    write_toml: WriteToml, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_toml('[gaplic]\nname = "x"\nport = = 3\n')
    err = _fails(["run", str(path)], capsys)
    assert f"{path}:3: TOML syntax error" in err
    assert "line 3" in err


def test_unknown_module(write_toml: WriteToml, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_toml('[[gobj]]\nname = "a"\ngclass = "nosuch.module:Thing"\n')
    err = _fails(["run", str(path)], capsys)
    assert f"{path}:3: [[gobj]] #1 'a': unknown module 'nosuch.module'" in err


def test_unknown_gclass(write_toml: WriteToml, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_toml('[[gobj]]\nname = "a"\ngclass = "fsmio.examples.timer_demo:Tiker"\n')
    err = _fails(["run", str(path)], capsys)
    assert "unknown gclass 'Tiker': module 'fsmio.examples.timer_demo' has no such name" in err
    assert "Counter" in err and "Ticker" in err


def test_not_a_gclass(write_toml: WriteToml, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_toml('[[gobj]]\nname = "a"\ngclass = "tests.tools.sample_gclasses:NotAGclass"\n')
    err = _fails(["run", str(path)], capsys)
    assert "is not a gclass (a GObj subclass)" in err


def test_bad_gclass_syntax(write_toml: WriteToml, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_toml('[[gobj]]\nname = "a"\ngclass = "fsmio.examples.timer_demo.Counter"\n')
    err = _fails(["run", str(path)], capsys)
    assert "expected package.module:GClass" in err


def test_unknown_parameter(write_toml: WriteToml, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_toml(
        '[[gobj]]\nname = "c"\ngclass = "fsmio.examples.timer_demo:Counter"\n'
        "[gobj.config]\ntics = 3\n"
    )
    err = _fails(["run", str(path)], capsys)
    assert f"{path}:5: [[gobj]] #1 'c': Counter 'c': unknown parameter 'tics'" in err
    assert "did you mean 'ticks'?" in err


def test_invalid_value_from_set(capsys: pytest.CaptureFixture[str]) -> None:
    err = _fails(["run", DEMO, "--set", "counter.ticks=abc"], capsys)
    assert (
        "--set counter.ticks=abc: setting 'counter.ticks': Counter 'counter': "
        "invalid value 'abc' for parameter 'ticks': expected an int"
    ) in err


def test_invalid_value_for_a_gclass_created_at_run_time(capsys: pytest.CaptureFixture[str]) -> None:
    err = _fails(["run", DEMO, "--set", "GTimer.seconds=soon"], capsys)
    assert "setting 'GTimer.seconds': GTimer: invalid value 'soon'" in err


def test_bad_set_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    err = _fails(["run", DEMO, "--set", "counter.ticks"], capsys)
    assert "--set 'counter.ticks': expected KEY=VALUE" in err


def test_unknown_trace_kind(capsys: pytest.CaptureFixture[str]) -> None:
    err = _fails(["run", DEMO, "--trace", "mach,everything"], capsys)
    assert "unknown trace 'everything' (traces: mach, creation, subscription, dump)" in err


def test_layout_problems(write_toml: WriteToml, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_toml(
        """
[aplic]
name = "typo"

[logging]
level = "LOUD"
colour = true

[[gobj]]
name = "b"
parent = "a"
gclass = "fsmio.examples.timer_demo:Counter"
flavour = "x"

[[gobj]]
name = "b"
"""
    )
    err = _fails(["run", str(path)], capsys)
    assert f"{path}:2: unknown section 'aplic'" in err
    assert f"{path}:6: [logging] level must be one of" in err
    assert f"{path}:7: [logging]: unknown key 'colour'" in err
    assert f"{path}:11: [[gobj]] #1 'b': parent 'a' is not the name of an earlier [[gobj]]" in err
    assert f"{path}:13: [[gobj]] #1 'b': unknown key 'flavour'" in err
    assert f"{path}:15: [[gobj]] #2 'b': missing gclass" in err
    assert "the name is already used by [[gobj]] #1" in err


def test_nothing_to_run(write_toml: WriteToml, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_toml('[gaplic]\nname = "empty"\n')
    err = _fails(["run", str(path)], capsys)
    assert "no [[gobj]] to create: nothing to run" in err


def test_start_up_exception(write_toml: WriteToml, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_toml('[[gobj]]\nname = "b"\ngclass = "tests.tools.sample_gclasses:Boom"\n')
    err = _fails(["run", str(path)], capsys, code=1)
    assert (
        "creating [[gobj]] #1 'b' (tests.tools.sample_gclasses:Boom) failed: "
        "RuntimeError: boom in start_up"
    ) in err


def test_port_in_use(write_toml: WriteToml, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = write_toml(
            f"""
[[gobj]]
name = "server"
gclass = "fsmio.gobjs.c_srv_sock:GServerSock"
config = {{ host = "127.0.0.1", port = {port}, reuse_address = false }}
"""
        )
        err = _fails(["run", str(path)], capsys, code=1)
    assert (
        "creating [[gobj]] #1 'server' (fsmio.gobjs.c_srv_sock:GServerSock) failed: port in use"
        in err
    )


def test_bad_input_from_a_subprocess_has_no_traceback(write_toml: WriteToml) -> None:
    path = write_toml('[gaplic]\nname = "x"\n[[gobj]\n')
    done = run_fsmio("run", str(path))
    assert done.returncode == 2
    assert "TOML syntax error" in done.stderr and f"{path}:3" in done.stderr
    assert "Traceback" not in done.stderr


# ----------------------------------------------------------------------------------------
#   The pieces
# ----------------------------------------------------------------------------------------
def test_dotted_keys_are_settings(write_toml: WriteToml) -> None:
    cfg = load_config(
        write_toml(
            '[settings]\necho.port = 7000\n"GSock.trace_dump" = true\n"x.opts" = { a = 1 }\n'
        )
    )
    assert cfg.settings == {"echo.port": 7000, "GSock.trace_dump": True, "x.opts": {"a": 1}}


def test_gaplic_params_reach_only_the_gaplic(write_toml: WriteToml) -> None:
    cfg = load_config(write_toml('[gaplic]\nname = "n"\nroles = "r"\nshutdown_grace = 1.5\n'))
    assert (cfg.name, cfg.roles) == ("n", ["r"])
    assert cfg.ini_settings() == {"GAplic.shutdown_grace": 1.5}
    assert validate(cfg) == []


def test_parse_sets_keeps_raw_strings() -> None:
    assert parse_sets(["a.b=1", "c=x=y", "d="]) == {"a.b": "1", "c": "x=y", "d": ""}
    with pytest.raises(ToolError, match="expected KEY=VALUE"):
        parse_sets(["=3"])


# ----------------------------------------------------------------------------------------
#   Signals
# ----------------------------------------------------------------------------------------
def _start(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fsmio", "run", str(path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


class StderrLines:
    """Reads a process's stderr in a thread, so a test can wait for a line with a
    deadline and still get the whole text at the end."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        self.proc = proc
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} not seen; stderr so far: {''.join(self.lines)}")

    def finish(self, timeout: float = 30) -> str:
        """Wait for the process to exit; the whole of its stderr."""
        self.proc.wait(timeout=timeout)
        self._thread.join(timeout=timeout)
        while not self._queue.empty():
            line = self._queue.get()
            if line is not None:
                self.lines.append(line)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return "".join(self.lines)


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)
    if proc.stderr is not None:
        proc.stderr.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_gracefully(write_toml: WriteToml, sig: signal.Signals) -> None:
    proc = _start(write_toml(FOREVER.format(grace=5.0, hang=0.0)))
    stderr = StderrLines(proc)
    try:
        stderr.wait_for("running 1 gobj(s)")
        proc.send_signal(sig)
        err = stderr.finish()
    finally:
        _kill(proc)
    assert proc.returncode == 0, err
    assert f"{sig.name} received, stopping" in err
    assert "Forever forever: shutdown callback" in err
    assert "GAplic 'forever' stopped" in err
    assert "Traceback" not in err


def test_second_sigint_exits_at_once(write_toml: WriteToml) -> None:
    proc = _start(write_toml(FOREVER.format(grace=60.0, hang=60.0)))
    stderr = StderrLines(proc)
    try:
        stderr.wait_for("running 1 gobj(s)")
        proc.send_signal(signal.SIGINT)
        stderr.wait_for("shutdown callback (hang 60.0 s)")
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        err = stderr.finish()
        elapsed = time.monotonic() - started
    finally:
        _kill(proc)
    assert proc.returncode == 130
    assert elapsed < 10  # not the 60 s grace period
    assert "fsmio run: interrupted" in err
    assert "Traceback" not in err
