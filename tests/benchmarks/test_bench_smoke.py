"""The benchmark still works: a smoke run of every piece (tiny counts, no timing asserts).

What is asserted is that each piece runs and reports what it should — every micro row
has a figure or says "not installed", the echo runs verify their bytes with no error, the
table has its sections — and that both load generators (the compiled ``echoload``, built
here with the system's C compiler, and the Python fallback) do catch a server that echoes
wrong bytes (otherwise "verifies every echoed byte" would be untested).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from benchmarks.common import build_c

from benchmarks import micro

ROOT = Path(__file__).resolve().parents[2]


def test_micro_quick_reports_every_row() -> None:
    results = micro.run_all(quick=True, log=lambda _msg: None)
    benches = {r.bench for r in results}
    assert {"toggle", "toggle + kw", "broadcast_event to 10", "create_gobj + destroy_gobj"} <= (
        benches
    )
    assert any(b.startswith("post_event") for b in benches)
    for r in results:
        if r.impl.startswith("fsmio"):
            assert (r.rates and r.best > 0) or r.extra, r
        else:
            assert r.note == "not installed" or r.best > 0, r
    timers = next(r for r in results if r.bench.endswith("armed GTimers"))
    assert timers.extra["late_max_ms"] >= 0


def test_micro_reports_a_missing_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(micro.PEERS, "automat (TypeMachine)", lambda: None)
    results = micro.bench_toggle(10, 1)
    missing = [r for r in results if r.impl == "automat (TypeMachine)"]
    assert missing and all(r.note == "not installed" and not r.rates for r in missing)


class _CorruptingEcho:
    """A TCP server (a thread) that echoes every read with its first byte changed."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conns: list[socket.socket] = []
        try:
            while not self.stop.is_set():
                try:
                    conn, _ = self.sock.accept()
                except TimeoutError:
                    continue
                conns.append(conn)
                threading.Thread(target=self._echo, args=(conn,), daemon=True).start()
        finally:
            for conn in conns:
                conn.close()

    def _echo(self, conn: socket.socket) -> None:
        conn.settimeout(5.0)
        try:
            while not self.stop.is_set():
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(bytes([data[0] ^ 0xFF]) + data[1:])
        except OSError:
            return


@pytest.fixture
def corrupting_echo() -> Iterator[_CorruptingEcho]:
    server = _CorruptingEcho()
    try:
        yield server
    finally:
        server.stop.set()
        server.thread.join(5.0)
        server.sock.close()


def test_loadgen_catches_wrong_bytes(corrupting_echo: _CorruptingEcho) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.loadgen", "--port", str(corrupting_echo.port),
         "--mode", "pingpong", "--conns", "1", "--seconds", "0.2", "--loop", "asyncio"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["messages"] > 0
    assert result["errors"] == result["messages"]
    assert "echoed wrong" in result["first_error"]


@pytest.mark.slow
def test_run_quick_writes_the_table(tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--servers", "fsmio,asyncio",
         "--idle", "20", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text()
    for heading in ("## Echo servers", "## Idle connections", "## In-process micro", "## Targets"):
        assert heading in text
    assert "QUICK" in text
    raw = json.loads(out.with_suffix(".json").read_text())
    servers = {e["server"] for e in raw["echo"]}
    assert servers == {"fsmio", "asyncio"}, raw.get("unavailable")
    modes = {e["mode"] for e in raw["echo"]}
    assert modes == {"pingpong-100", "pipelined", "stream", "connect"}
    assert raw["machine"]["loadgen_compiled"] is True
    assert "## Summary" in text and "fsmio / asyncio" in text
    assert "FALLBACK" not in text
    assert all(e["errors"] == 0 and e["messages"] > 0 for e in raw["echo"])
    assert all(e["load_cpu"] >= 0 and e["core_busy"] >= 0 for e in raw["echo"])
    assert all(e["server_cpu"] >= 0 for e in raw["echo"])
    assert {i["server"] for i in raw["idle"]} == {"fsmio", "asyncio"}
    assert all(i["connections"] == 20 and i["errors"] == 0 for i in raw["idle"])


# ----------------------------------------------------------------------------------------
#   The compiled load generator
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def echoload(tmp_path_factory: pytest.TempPathFactory) -> str:
    """benchmarks/echoload.c built with the system's C compiler (a missing one fails)."""
    return build_c("echoload.c", tmp_path_factory.mktemp("echoload"))


@pytest.fixture
def fsmio_echo_port() -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fsmio_echo", "--port", "0"],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY "), line
        yield int(line.split()[2])
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def _echoload(exe: str, port: int, *args: str, stdin: str | None = None) -> dict[str, object]:
    out = subprocess.run(
        [exe, "--port", str(port), "--warmup", "0.05", "--seconds", "0.2", *args],
        input=stdin, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    result: dict[str, object] = json.loads(lines[-1])
    return result


@pytest.mark.parametrize(
    ("mode", "args"),
    [
        ("pingpong", ["--conns", "4"]),
        ("pipelined", ["--conns", "4", "--inflight", "16"]),
        ("stream", ["--conns", "2", "--chunk", "65536"]),
        ("connect", ["--conns", "2"]),
    ],
)
def test_echoload_against_the_fsmio_server_checks_every_byte(
    echoload: str, fsmio_echo_port: int, mode: str, args: list[str]
) -> None:
    out = subprocess.run(
        [echoload, "--port", str(fsmio_echo_port), "--mode", mode, *args, "--warmup", "0.05",
         "--seconds", "0.2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    start, stop, last = out.stdout.strip().splitlines()
    assert (start, stop) == ("START", "STOP")
    result = json.loads(last)
    assert result["errors"] == 0, result["first_error"]
    assert result["messages"] > 0
    assert 0.15 < result["seconds"] < 5
    # Everything echoed was compared, the drain after STOP included.
    size = 65536 if mode == "stream" else 64
    assert result["checked_bytes"] >= result["messages"] * (1 if mode == "stream" else size)
    if mode != "stream":
        assert result["p50_us"] > 0 and result["p99_us"] >= result["p50_us"]


def test_echoload_idle_holds_the_connections_until_told(
    echoload: str, fsmio_echo_port: int
) -> None:
    result = _echoload(echoload, fsmio_echo_port, "--mode", "idle", "--conns", "5",
                       stdin="close\n")  # fmt: skip
    assert result["messages"] == 5 and result["errors"] == 0


def test_echoload_catches_wrong_bytes(echoload: str, corrupting_echo: _CorruptingEcho) -> None:
    result = _echoload(echoload, corrupting_echo.port, "--mode", "pingpong", "--conns", "1")
    assert result["messages"] > 0
    assert result["errors"] >= result["messages"]
    assert "differ" in str(result["first_error"])


def test_echoload_rejects_bad_arguments(echoload: str) -> None:
    out = subprocess.run([echoload, "--mode", "sideways", "--port", "1"], capture_output=True,
                         text=True, timeout=10)  # fmt: skip
    assert out.returncode == 2 and "usage" in out.stderr


@pytest.mark.slow
def test_run_with_the_python_fallback_says_its_ratios_are_compressed(tmp_path: Path) -> None:
    out = tmp_path / "fallback.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--python-loadgen", "--servers",
         "fsmio,asyncio", "--modes", "pingpong-100", "--no-idle", "--no-micro", "--out",
         str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "FALLBACK" in proc.stderr and "COMPRESSED" in proc.stderr
    text = out.read_text()
    assert "FALLBACK LOAD GENERATOR" in text and "COMPRESSED" in text
    raw = json.loads(out.with_suffix(".json").read_text())
    assert raw["machine"]["loadgen_compiled"] is False
    assert {e["server"] for e in raw["echo"]} == {"fsmio", "asyncio"}
    assert all(e["errors"] == 0 and e["messages"] > 0 for e in raw["echo"])
