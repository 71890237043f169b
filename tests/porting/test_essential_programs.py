"""ginsfsm's essential example programs, ported (``programs/``: written for fsmio in the
shape of the originals, only the imports differ), run as a user runs them: in their
own processes, on real loopback sockets and pipes.  And a ginsfsm deployment ini (a
composite and logging sections) under ``fsmio run``."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROGRAMS = Path(__file__).with_name("programs")
ROOT = Path(__file__).resolve().parents[2]


def python(*args: str, **kw: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-W", "error", *args],
        cwd=PROGRAMS,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def read_line(proc: subprocess.Popen[str], timeout: float = 10.0) -> str:
    """The next line of ``proc``'s stdout, waiting at most ``timeout`` seconds."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"no output within {timeout} s")
    return proc.stdout.readline()


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.slow
def test_stress_echo_server_and_client() -> None:
    # ginsfsm examples/essential_gobjs/stress_server_echo.py + stress_client_echo.py
    server = python("stress_server_echo.py", "0")
    try:
        ready = read_line(server)
        assert ready.startswith("READY ")
        port = ready.split()[1]
        client = python("stress_client_echo.py", "127.0.0.1", port, "50", "3")
        try:
            out, err = client.communicate(timeout=60)
        finally:
            if client.poll() is None:
                client.kill()
                client.communicate()
        assert client.returncode == 0, err
        assert out.count("Echoes OK: 50 of 50, gsock counts equal: 50") == 3, out
        assert "BAD ECHO" not in out
        assert out.rstrip().endswith("client done")
        assert "Traceback" not in err
    finally:
        out, err = stop(server)
    # SIGTERM stops the server gracefully: start() returns (it does not raise).
    assert server.returncode == 0, err
    assert out.rstrip().endswith("Program stopped")
    assert "Traceback" not in err


def test_gstdin_reader_through_a_pipe() -> None:
    # ginsfsm's GStdin (c_stdin.py): lines in, events out, EOF ends it
    reader = python("gstdin_reader.py", stdin=subprocess.PIPE)
    try:
        assert reader.stdin is not None
        for n, word in enumerate(["alpha", "beta", "gamma"], 1):
            reader.stdin.write(word + "\n")
            reader.stdin.flush()
            # Each line comes out while the pipe is still open: it is read as it
            # arrives, without blocking the loop on the rest.
            assert read_line(reader) == f"line {n}: {word.upper()}\n"
        # The rest, then the end of the input (communicate closes the pipe).
        out, err = reader.communicate("last, without an end of line", timeout=20)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.communicate()
    assert reader.returncode == 0, err
    assert out == "line 4: LAST, WITHOUT AN END OF LINE\neof after 4 lines\n"
    assert err == ""


def test_gstdin_reader_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "input.txt"
    path.write_text("".join(f"l{i}\n" for i in range(1000)))
    with open(path) as stdin:
        reader = python("gstdin_reader.py", stdin=stdin)
        out, err = reader.communicate(timeout=30)
    assert reader.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "line 1: L0" and lines[999] == "line 1000: L999"
    assert lines[-1] == "eof after 1000 lines"


# --------------------------------------------------------------------------------------
#   A ginsfsm deployment file (gserve's ini) under fsmio run
# --------------------------------------------------------------------------------------
APP_MODULE = '''
from fsmio import GAplic
from fsmio.examples.echo_client import EchoClient
from fsmio.examples.echo_server import Echo


def main(global_conf, **local_conf):
    """As ginsfsm's examples/wsgi/simple_wsgi_server.py:main: the app section's keys
    become the GAplic's settings."""
    ga = GAplic(name="echo_ini", roles="", **local_conf)
    ga.create_gobj("echo", Echo, ga, __unique_name__=True)
    ga.create_gobj("client", EchoClient, ga, server="echo")
    return ga
'''

APP_INI = """\
[composite:main]
use = call:fsmio:gaplic_factory
main = echo-demo

[app:echo-demo]
use = call:echo_ini_app:main
echo.host = 127.0.0.1
echo.port = 0
client.count = 5
client.size = 16
GSock.trace_dump = true
GObj.trace_mach = false

# Begin logging configuration

[loggers]
keys = root, fsmio

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = INFO
handlers = console

[logger_fsmio]
level = INFO
handlers =
qualname = fsmio

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = LOG %(levelname)s %(name)s %(message)s

# End logging configuration
"""


def fsmio_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "fsmio", "run", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def ini_dir(tmp_path: Path) -> Path:
    (tmp_path / "echo_ini_app.py").write_text(APP_MODULE)
    (tmp_path / "app.ini").write_text(APP_INI)
    return tmp_path


def test_ini_composite_runs(ini_dir: Path) -> None:
    started = time.monotonic()
    result = fsmio_run(ini_dir, "app.ini")
    assert result.returncode == 0, result.stderr
    err = result.stderr
    # The logging sections' format; the client's result; the GAplic stopped.
    assert "LOG INFO fsmio.echo_client OK: 5 messages, 80 bytes echoed intact" in err
    assert "LOG INFO fsmio fsmio run: GAplic 'echo_ini' stopped" in err
    # The app section's dotted keys reached the gobjs: GSock.trace_dump on every GSock
    # (the client's and the accepted one), echo.port = 0 (a free port, not 8000).
    assert "GSock:gsock: Lived' TX -> (16 bytes)" in err
    assert "GSock:clisrv_0: Lived' RX <- (16 bytes)" in err
    assert "Traceback" not in err
    assert time.monotonic() - started < 60


def test_ini_check(ini_dir: Path) -> None:
    result = fsmio_run(ini_dir, "app.ini", "--check")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "app.ini: ok\n"
    # gobj names are not gclasses: notes, not errors
    assert "note: app.ini:8: [app:echo-demo] echo.port: no known gclass 'echo'" in result.stderr


def test_ini_check_reports_bad_keys(ini_dir: Path) -> None:
    text = APP_INI.replace(
        "GSock.trace_dump = true", "GSock.trace_dmp = true\nGTimer.seconds = soon"
    )
    (ini_dir / "bad.ini").write_text(text)
    result = fsmio_run(ini_dir, "bad.ini", "--check")
    assert result.returncode == 2
    err = result.stderr
    assert (
        "error: bad.ini:11: [app:echo-demo] GSock.trace_dmp: GSock: unknown parameter "
        "'trace_dmp'; did you mean 'trace_dump'?" in err
    )
    assert "error: bad.ini:12: [app:echo-demo] GTimer.seconds: GTimer: invalid value 'soon'" in err
    assert "fsmio run: error: bad.ini: 2 problems; nothing was run" in err
    # Running it reports the same, and runs nothing.
    result = fsmio_run(ini_dir, "bad.ini")
    assert result.returncode == 2 and "nothing was run" in result.stderr
    assert "echoed intact" not in result.stderr
