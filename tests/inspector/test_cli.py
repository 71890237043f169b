"""The command line: ``fsmio run ... --inspect``, ``fsmio serve ... --inspect`` and
``fsmio inspect TRACE.jsonl``, as a user runs them (subprocesses, real sockets)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from fsmio.tools.cli import main

from .feedutil import open_feed

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"inspector listening on (http://127\.0\.0\.1:\d+/)")


class Running:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 20.0) -> re.Match[str]:
        import time

        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.log.append(line)
            found = pattern.search(line)
            if found:
                return found
        raise AssertionError(f"{pattern.pattern!r} not logged within {timeout} s: {self.log}")


@contextmanager
def fsmio(*args: str, env: dict[str, str] | None = None) -> Iterator[Running]:
    process = subprocess.Popen(
        [sys.executable, "-m", "fsmio", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        yield Running(process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


@pytest.mark.slow
def test_fsmio_run_inspect_serves_the_page_and_the_feed() -> None:
    with fsmio("run", "examples/echo_inspect.toml", "--inspect", "127.0.0.1:0") as running:
        url = running.wait_for(LISTENING).group(1)
        page = httpx.get(url, timeout=5)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        with open_feed(url) as feed:
            hello = feed.recv()
            assert hello["app"] == "echo_inspect" and hello["control"] is False
            names = {n["name"] for n in feed.of_type("tree")["nodes"]}
            assert {"echo", "pinger", "connex"} <= names
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=20) == 0


@pytest.mark.slow
def test_the_token_can_come_from_the_environment() -> None:
    with fsmio(
        "run",
        "examples/echo_inspect.toml",
        "--inspect",
        "127.0.0.1:0",
        env={"FSMIO_INSPECT_TOKEN": "from-env"},
    ) as running:
        url = running.wait_for(LISTENING).group(1)
        with open_feed(url) as feed:
            assert feed.recv()["control"] is True
            feed.send({"type": "auth", "token": "from-env"})
            assert feed.of_type("auth")["ok"] is True


@pytest.mark.slow
def test_fsmio_serve_inspect() -> None:
    with fsmio(
        "serve",
        "fsmio.examples.asgi_demo:application",
        "--port",
        "0",
        "--inspect",
        "127.0.0.1:0",
    ) as running:
        url = running.wait_for(LISTENING).group(1)
        with open_feed(url) as feed:
            assert feed.recv()["app"] == "fsmio-serve"
            gclasses = {n["gclass"] for n in feed.of_type("tree")["nodes"]}
            assert "GAsgiServer" in gclasses


@pytest.mark.slow
def test_fsmio_inspect_replays_a_trace_file(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fsmio",
            "run",
            "examples/echo.toml",
            "--set",
            "client.count=2",
            "--trace-file",
            str(trace),
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0
    with fsmio(
        "inspect", str(trace), "--listen", "127.0.0.1:0", "--module", "fsmio.examples.echo_server"
    ) as running:
        url = running.wait_for(LISTENING).group(1)
        assert httpx.get(url, timeout=5).status_code == 200
        with open_feed(url) as feed:
            assert feed.recv()["mode"] == "replay"
            keys = {n["gclass_key"] for n in feed.of_type("tree")["nodes"]}
            history = feed.of_type("history")
            assert history["complete"] is True and len(history["items"]) > 10
            key = "fsmio.examples.echo_server.Echo"
            assert {key, "fsmio.gobjs.c_connex.GConnex"} <= keys
        svg = httpx.get(f"{url}diagram/{key}.svg", timeout=5)
        assert svg.status_code == 200 and 'data-state="ST_ECHOING"' in svg.text


def test_bad_inspect_options_are_clear_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSMIO_INSPECT_TOKEN", raising=False)
    echo = str(ROOT / "examples" / "echo.toml")
    assert main(["run", echo, "--inspect", "nope"]) == 2
    assert "--inspect: expected HOST:PORT" in capsys.readouterr().err
    assert main(["run", echo, "--inspect", "127.0.0.1:99999"]) == 2
    assert "0 to 65535" in capsys.readouterr().err
    assert main(["run", echo, "--inspect", "0.0.0.0:0"]) == 2
    assert "not a loopback address" in capsys.readouterr().err
    assert main(["run", echo, "--inspect", "127.0.0.1:0", "--workers", "2"]) == 2
    assert "not with --workers" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "missing.jsonl"), "--listen", "127.0.0.1:0"]) == 2
    assert "trace file not found" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["inspect", str(empty), "--listen", "127.0.0.1:0"]) == 2
    assert "no machine-trace record" in capsys.readouterr().err


def test_help_says_what_workers_do() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fsmio", "run", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "--inspect HOST:PORT" in done.stdout and "Not with --workers" in done.stdout
    assert "FSMIO_INSPECT_TOKEN" in done.stdout
