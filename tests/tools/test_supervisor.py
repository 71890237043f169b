"""fsmio run --workers N: worker processes share a port (SO_REUSEPORT), supervised."""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

APP = """\
[gaplic]
name = "who"
shutdown_grace = 2.0

[logging]
level = "INFO"

[[gobj]]
name = "who"
gclass = "tests.tools.whoami:WhoAmI"
config = {{ port = {port} }}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ask(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(100)
            if not chunk:
                break
            data += chunk
    return data.decode().strip()


def ask_until(port: int, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ask(port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def child_pids(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT balances only on Linux")
def test_two_workers_share_a_port_and_one_killed_is_replaced(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "who.toml"
    config.write_text(APP.format(port=port))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fsmio", "run", str(config), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the cleanup ends workers too
    )
    try:
        ask_until(port)
        deadline = time.monotonic() + 30
        names: collections.Counter[str] = collections.Counter()
        while len(names) < 2 and time.monotonic() < deadline:
            names.update(ask(port) for _ in range(50))
        assert set(names) == {"who-w0", "who-w1"}, names
        # Both listen now: the kernel spreads new connections between them (the asks made
        # while the second one was still starting all went to the first).
        names = collections.Counter(ask(port) for _ in range(400))
        assert set(names) == {"who-w0", "who-w1"}, names
        total = sum(names.values())
        assert all(count >= 0.25 * total for count in names.values()), names
        # Kill one worker: the other keeps serving, and the supervisor starts a new one.
        workers = child_pids(proc.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        # A connection the kernel had already queued on the dead worker's socket is reset
        # (Linux); every other one is served by the survivor.
        served = [ask_until(port) for _ in range(100)]
        assert len(served) == 100
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = child_pids(proc.pid)
            if len(now) == 2 and workers[0] not in now:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the killed worker was not replaced")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        _, err = proc.communicate(timeout=30)
    assert "exited with -9" in err and "restarting" in err, err[-3000:]


def test_workers_with_a_bad_config_exit_2_at_once(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[gobj]]\nname = "x"\ngclass = "no.such.module:Nope"\n')
    result = subprocess.run(
        [sys.executable, "-m", "fsmio", "run", str(config), "--workers", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr


STUCK = """\
[gaplic]
name = "stuck"

[[gobj]]
name = "stuck"
gclass = "tests.tools.whoami:Stuck"
"""


@pytest.mark.slow
def test_second_sigint_kills_the_workers_at_once(tmp_path: Path) -> None:
    config = tmp_path / "stuck.toml"
    config.write_text(STUCK)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fsmio", "run", str(config), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        for _ in range(2):  # both workers are inside their blocking callback
            assert proc.stdout.readline().strip() == "STUCK"
        workers = child_pids(proc.pid)
        assert len(workers) == 2
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert proc.poll() is None  # the graceful stop waits for the stuck workers
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130
        assert time.monotonic() - started < 5
        for pid in workers:  # killed and reaped by the supervisor
            assert not Path(f"/proc/{pid}").exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.communicate(timeout=30)
