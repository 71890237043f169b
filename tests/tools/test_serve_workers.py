"""``fsmio serve module:app --workers N``: workers share one port, supervised."""

from __future__ import annotations

import contextlib
import http.client
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from fsmio.tools.cli import main

PID_APP = textwrap.dedent(
    """
    import asyncio
    import os
    import sys


    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    print(f"lifespan startup {os.getpid()}", file=sys.stderr, flush=True)
                    await send({"type": "lifespan.startup.complete"})
                else:
                    print(f"lifespan shutdown {os.getpid()}", file=sys.stderr, flush=True)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/slow":
            await asyncio.sleep(1.5)
        elif scope["path"] == "/stuck":
            await asyncio.sleep(60)
        body = str(os.getpid()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
    """
)

FAILING_LIFESPAN_APP = textwrap.dedent(
    """
    async def app(scope, receive, send):
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})
    """
)


class Supervised:
    """``fsmio serve --workers`` in its own process group; stdout and stderr read in
    threads."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fsmio", "serve", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # the cleanup ends the workers too
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.err_lines: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True),
            threading.Thread(target=self._collect, args=(self.proc.stderr,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def _collect(self, stream: IO[str]) -> None:
        for line in stream:
            self.err_lines.append(line)

    @property
    def err(self) -> str:
        return "".join(self.err_lines)

    def ready(self, timeout: float = 60) -> int:
        """Wait for ``READY HOST PORT``; return the port."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            if line.startswith("READY "):
                _, host, port = line.split()
                assert host == "127.0.0.1"
                return int(port)
        raise AssertionError(f"no READY line; stderr: {self.err}")

    def workers(self) -> list[int]:
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            return [int(p) for p in f.read().split()]

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        for thread in self._threads:
            thread.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def get(port: int, path: str = "/", timeout: float = 10) -> tuple[int, str]:
    """One request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def pids_answering(port: int, want: set[int], timeout: float = 30) -> set[int]:
    """Fresh connections until every pid of ``want`` answered, for at most ``timeout``
    seconds and 5000 requests (a worker just started may still be importing)."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    for _ in range(5000):
        status, body = get(port)
        assert status == 200
        seen.add(int(body))
        if want <= seen or time.monotonic() > deadline:
            break
        if len(seen) < len(want):
            time.sleep(0.005)
    return seen


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.05)
    return False


linux_only = pytest.mark.skipif(
    sys.platform != "linux", reason="SO_REUSEPORT balances only on Linux"
)


@pytest.mark.slow
@linux_only
def test_two_workers_answer_on_one_port_and_one_killed_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "pidapp.py").write_text(PID_APP)
    served = Supervised(tmp_path, "pidapp:app", "--port", "0", "--workers", "2")
    try:
        port = served.ready()
        workers = served.workers()
        assert len(workers) == 2
        assert pids_answering(port, set(workers)) == set(workers)
        # Each worker ran the ASGI lifespan itself.
        for pid in workers:
            assert f"lifespan startup {pid}" in served.err

        os.kill(workers[0], signal.SIGKILL)
        # The survivor keeps serving; a connection the kernel had queued on the dead
        # worker's socket may be reset (Linux), so a failed attempt is retried.
        deadline = time.monotonic() + 30
        replaced: list[int] = []
        answered = 0
        while time.monotonic() < deadline:
            try:
                status, _ = get(port)
            except OSError:
                time.sleep(0.05)
                continue
            assert status == 200
            answered += 1
            now = served.workers()
            if len(now) == 2 and workers[0] not in now and answered >= 20:
                replaced = now
                break
        assert replaced, f"the killed worker was not replaced; stderr: {served.err}"
        assert pids_answering(port, set(replaced)) == set(replaced)

        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(30) == 0
    finally:
        served.close()
    assert f"worker 0 (pid {workers[0]}) exited with -9" in served.err, served.err
    assert "restarting in" in served.err


@pytest.mark.slow
@linux_only
def test_sigterm_lets_in_flight_requests_finish_then_exits_0(tmp_path: Path) -> None:
    (tmp_path / "pidapp.py").write_text(PID_APP)
    served = Supervised(tmp_path, "pidapp:app", "--port", "0", "--workers", "2")
    try:
        port = served.ready()
        workers = served.workers()
        results: list[tuple[int, str]] = []
        slow = threading.Thread(target=lambda: results.append(get(port, "/slow")))
        slow.start()
        time.sleep(0.5)  # the request is in a worker's hands
        served.proc.send_signal(signal.SIGTERM)
        slow.join(timeout=30)
        assert served.proc.wait(30) == 0
        assert results and results[0][0] == 200 and int(results[0][1]) in workers
        for pid in workers:
            assert gone(pid)
    finally:
        served.close()
    for pid in workers:
        assert f"lifespan shutdown {pid}" in served.err
    assert "Traceback" not in served.err


@pytest.mark.slow
@linux_only
def test_second_sigint_stops_every_worker_at_once(tmp_path: Path) -> None:
    (tmp_path / "pidapp.py").write_text(PID_APP)
    served = Supervised(tmp_path, "pidapp:app", "--port", "0", "--workers", "2")
    stuck: list[threading.Thread] = []
    try:
        port = served.ready()
        workers = served.workers()
        # A stuck request in each worker keeps the graceful stop waiting.
        for _ in range(8):
            thread = threading.Thread(target=_ignore_errors, args=(port, "/stuck"), daemon=True)
            thread.start()
            stuck.append(thread)
        time.sleep(0.5)
        served.proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert served.proc.poll() is None
        started = time.monotonic()
        served.proc.send_signal(signal.SIGINT)
        assert served.proc.wait(10) == 130
        assert time.monotonic() - started < 5
        for pid in workers:
            assert gone(pid)
    finally:
        served.close()
        for thread in stuck:
            thread.join(timeout=15)


def _ignore_errors(port: int, path: str) -> None:
    with contextlib.suppress(OSError):  # the worker was killed: that is the point
        get(port, path, timeout=10)


@pytest.mark.slow
@linux_only
def test_a_worker_whose_lifespan_fails_stops_the_command_with_3(tmp_path: Path) -> None:
    (tmp_path / "failapp.py").write_text(FAILING_LIFESPAN_APP)
    served = Supervised(tmp_path, "failapp:app", "--port", "0", "--workers", "2")
    try:
        assert served.proc.wait(60) == 3
    finally:
        served.close()
    assert "could not start (exit code 3)" in served.err
    assert "READY" not in "".join(iter(served.lines.get_nowait, None))


def test_unknown_app_with_workers_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "nosuchmodule_xyz:app", "--workers", "2"]) == 2
    assert "nosuchmodule_xyz" in capsys.readouterr().err


def test_workers_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "x:app", "--workers", "0"]) == 2
    assert "--workers must be 1 or more" in capsys.readouterr().err
