"""The benchmark still works: a smoke run of every piece (tiny counts, no timing asserts).

What is asserted is that each piece runs and reports what it should — every micro row
has a figure or says "not installed", the echo runs verify their bytes with no error, the
table has its sections — and that the load generator does catch a server that echoes
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
    assert modes == {"pingpong-1", "pingpong-100", "pipelined", "stream", "churn"}
    assert all(e["errors"] == 0 and e["messages"] > 0 for e in raw["echo"])
    assert all(e["server_cpu"] >= 0 for e in raw["echo"])
    assert {i["server"] for i in raw["idle"]} == {"fsmio", "asyncio"}
    assert all(i["connections"] == 20 and i["errors"] == 0 for i in raw["idle"])
