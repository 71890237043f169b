"""The HTTP benchmark's harness works, without wrk (CI does not have it).

What is asserted: wrk's report is read right (real wrk 4.1.0 output, captured), every
kind of error in it is counted; the /proc CPU accounting counts a child's threads; each
server program that the test environment guarantees (the floor and fsmio's own) starts,
answers both resources byte for byte and stops; a server whose module is missing is
reported "not available" with the reason; the whole harness runs end to end with a
stand-in for wrk (a small Python client printing wrk's report format) and writes its
table and JSON; the table marks errors, a saturated wrk and the targets; a missing wrk
gives a clear message, and as root it is installed with apt-get.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from benchmarks.common import CLK_TCK

from benchmarks import http_run

ROOT = Path(__file__).resolve().parents[2]
HELLO, BIG = http_run.ROUTES["/"], http_run.ROUTES["/64k"]

# Servers the test environment always has: the floor needs httptools and uvloop (fsmio's
# runtime dependencies), the others are fsmio's.  The peers (uvicorn, aiohttp, waitress)
# are in the bench extra only.
GUARANTEED = ["floor", "fsmio-native", "fsmio-asgi", "fsmio-wsgi"]

# Captured from wrk 4.1.0 (Debian) against the floor server: -t1 -c10 -d1s --latency.
WRK_HELLO = """\
Running 1s test @ http://127.0.0.1:45401/
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   152.16us  306.51us   6.31ms   97.21%
    Req/Sec    77.56k    20.88k  102.71k    40.00%
  Latency Distribution
     50%   97.00us
     75%  143.00us
     90%  202.00us
     99%    1.61ms
  77074 requests in 1.00s, 8.45MB read
Requests/sec:  77030.71
Transfer/sec:      8.45MB
"""

# The same against a path that answers 404; the "Socket errors" line is wrk's format
# (src/wrk.c: "  Socket errors: connect %d, read %d, write %d, timeout %d").
WRK_ERRORS = """\
Running 1s test @ http://127.0.0.1:45401/nope
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   183.22us  437.26us   7.87ms   96.31%
    Req/Sec    78.81k    10.81k   92.15k    63.64%
  Latency Distribution
     50%   99.00us
     75%  146.00us
     90%  213.00us
     99%    2.31ms
  85985 requests in 1.10s, 9.59MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 85985
Requests/sec:  78158.23
Transfer/sec:      8.72MB
"""

WRK_64K = """\
Running 1s test @ http://127.0.0.1:45401/64k
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   398.47us  406.50us   6.73ms   96.62%
    Req/Sec    18.51k     2.44k   21.83k    60.00%
  Latency Distribution
     50%  341.00us
     75%  426.00us
     90%  506.00us
     99%    2.37ms
  18451 requests in 1.00s, 1.13GB read
Requests/sec:  18409.39
Transfer/sec:      1.13GB
"""


def test_parse_wrk_reads_the_report() -> None:
    r = http_run.parse_wrk(WRK_HELLO)
    assert (r.requests, r.seconds, r.requests_per_s) == (77074, 1.0, 77030.71)
    assert r.bytes_read == pytest.approx(8.45 * 1024**2)
    assert r.p50_ms == pytest.approx(0.097) and r.p99_ms == pytest.approx(1.61)
    assert r.errors == 0
    big = http_run.parse_wrk(WRK_64K)
    assert big.requests == 18451 and big.bytes_read == pytest.approx(1.13 * 1024**3)
    per_response = big.bytes_read / big.requests
    assert http_run.bytes_per_response_ok(per_response, len(BIG), big.requests, 10)
    assert not http_run.bytes_per_response_ok(per_response, len(HELLO), big.requests, 10)


def test_parse_wrk_counts_every_error() -> None:
    r = http_run.parse_wrk(WRK_ERRORS)
    assert (r.connect_errors, r.read_errors, r.write_errors, r.timeouts) == (1, 2, 3, 4)
    assert r.non_2xx == 85985
    assert r.errors == 85985 + 10
    assert r.seconds == pytest.approx(1.1)


def test_parse_wrk_refuses_output_without_a_summary() -> None:
    with pytest.raises(ValueError, match="requests in"):
        http_run.parse_wrk("unable to connect to 127.0.0.1:9 Connection refused\n")


def test_bytes_per_response_bounds() -> None:
    ok = http_run.bytes_per_response_ok
    assert ok(13 + 120, 13, 100_000, 100)
    assert not ok(5, 13, 100_000, 100)  # shorter than the body
    assert not ok(65536 + 5000, 65536, 100_000, 100)  # a head of 5000 bytes
    # few requests: the responses in flight at the end may double the bytes per request
    assert ok(2 * 65536, 65536, 100, 100)
    assert not ok(100.0, 13, 0, 100)


_BURNER = """
import sys, threading, time
def burn():
    while time.process_time() < 0.3:
        pass
t = threading.Thread(target=burn)
t.start()
t.join()
print(time.process_time(), flush=True)
sys.stdin.readline()
"""


def test_cpu_seconds_counts_the_threads_of_a_child() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _BURNER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdin is not None
        own = float(proc.stdout.readline())
        measured = http_run.cpu_seconds(proc.pid)
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdin, proc.stdout):
            if stream:
                stream.close()
    # All of it was burnt in a second thread: /proc/PID/stat counts the process's threads.
    assert own >= 0.3
    assert measured == pytest.approx(own, abs=3 / CLK_TCK + 0.02)


def test_children_cpu_counts_a_waited_child() -> None:
    before = http_run.children_cpu_seconds()
    code = "import time\nwhile time.process_time() < 0.2: pass"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert http_run.children_cpu_seconds() - before >= 0.2


@pytest.mark.parametrize("name", GUARANTEED)
def test_server_answers_both_resources(name: str) -> None:
    server = http_run.Server(name, http_run.SERVERS[name], set(http_run.cpu_plan()[0]))
    try:
        http_run.probe(server.host, server.port)
    finally:
        err = server.stop()
    assert "Traceback" not in err, err


def test_a_missing_server_module_is_reported_not_available(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(http_run.SERVERS, "ghost", http_run.ServerSpec("no_such_module", "-"))
    unavailable: dict[str, str] = {}
    cpus = set(http_run.cpu_plan()[0])
    with http_run.servers(["ghost", "floor"], cpus, unavailable, lambda _m: None) as live:
        assert list(live) == ["floor"]
    assert "No module named" in unavailable["ghost"], unavailable


def test_profile_of_a_server(tmp_path: Path) -> None:
    cpus = set(http_run.cpu_plan()[0])
    with http_run.servers(["floor"], cpus, {}, lambda _m: None, profile_dir=tmp_path) as live:
        assert list(live) == ["floor"]  # and probe() sent it both requests
    report = http_run.profile_report(tmp_path, ["floor"], top=5000)  # 2 requests: imports lead
    assert "## floor, by tottime" in report and "## floor, by cumulative" in report
    assert "floor.py" in report and "(on_message_complete)" in report


# A stand-in for wrk: the same arguments, keep-alive GETs on a few connections, and the
# report lines the harness reads, in wrk's format.  Not a load generator: it proves the
# harness's plumbing (pinning, CPU window, parsing, checks, table) without wrk.
_FAKE_WRK = """\
#!{python}
import socket, sys, time
args = sys.argv[1:]
if args == ["-v"]:
    print("wrk fake-for-tests [python]")
    sys.exit(1)
url = args[-1]
host, rest = url.removeprefix("http://").split(":", 1)
port, _, path = rest.partition("/")
request = ("GET /%s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n" % (path, host)).encode()
t0 = time.monotonic()
n = total = non2xx = 0
for _ in range(3):
    s = socket.create_connection((host, int(port)), timeout=10)
    buf = b""
    for _ in range(40):
        s.sendall(request)
        while b"\\r\\n\\r\\n" not in buf:
            buf += s.recv(65536)
        head, _, buf = buf.partition(b"\\r\\n\\r\\n")
        length = int([l.split(b":")[1] for l in head.split(b"\\r\\n")
                      if l.lower().startswith(b"content-length")][0])
        while len(buf) < length:
            buf += s.recv(65536)
        buf = buf[length:]
        n += 1
        total += len(head) + 4 + length
        non2xx += head.split()[1] != b"200"
    s.close()
secs = time.monotonic() - t0
print("  Latency Distribution")
print("     50%   97.00us")
print("     99%    1.61ms")
print("  %d requests in %.2fs, %.2fKB read" % (n, secs, total / 1024))
if non2xx:
    print("  Non-2xx or 3xx responses: %d" % non2xx)
print("Requests/sec: %.2f" % (n / secs))
"""


@pytest.fixture
def fake_wrk_path(tmp_path: Path) -> Iterator[str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrk = bindir / "wrk"
    wrk.write_text(_FAKE_WRK.format(python=sys.executable))
    wrk.chmod(wrk.stat().st_mode | stat.S_IXUSR)
    yield f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.mark.slow
def test_the_harness_runs_end_to_end_with_a_stand_in_wrk(
    tmp_path: Path, fake_wrk_path: str
) -> None:
    out = tmp_path / "http.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.http_run", "--quick", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
        env={**os.environ, "PATH": fake_wrk_path},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    for heading in ("## Server CPU per 100 000 requests", "## Targets (issue 10)",
                    "## Details: hello", "## Details: 64 KiB"):  # fmt: skip
        assert heading in text
    assert "QUICK" in text and "wrk fake-for-tests" in text
    raw = json.loads(out.with_suffix(".json").read_text())
    measured = {r["server"] for r in raw["runs"]}
    assert set(GUARANTEED) <= measured, raw["unavailable"]
    # Every server was either measured or reported with the reason it could not run.
    for name in http_run.SERVERS:
        assert (name in measured) != (name in raw["unavailable"]), name
        if name in raw["unavailable"]:
            assert raw["unavailable"][name] and f"| {name} |" in text
    for r in raw["runs"]:
        assert r["errors"] == 0 and r["requests"] == 120, r
        assert r["server_cpu"] >= 0 and r["wrk_cpu"] > 0
    assert {(r["server"], r["size"]) for r in raw["runs"]} == {
        (s, z) for s in measured for z in ("hello", "64k")
    }
    assert len(raw["targets"]) == len(http_run.TARGETS)


def _run(server: str, size: str, cpu: float, *, errors: int = 0, wrk_cpu: float = 0.5) -> Any:
    return http_run.HttpRun(
        server=server, size=size, repeat=0, requests=100_000, seconds=1.0, wall=1.0,
        requests_per_s=100_000.0, server_cpu=cpu, wrk_cpu=wrk_cpu, neighbours=0.0,
        p50_ms=1.0, p99_ms=2.0, bytes_per_response=120.0, errors=errors,
        error_detail="wrk: non-2xx 3" if errors else "",
    )  # fmt: skip


def test_the_table_marks_errors_saturation_and_targets() -> None:
    machine = http_run.machine_info("true", "found on PATH")  # `true -v`: version unknown
    machine["loadavg_before"] = machine["loadavg_after"] = "0.00 0.00 0.00"
    settings = {"quick": False, "repeat": 1, "seconds": 5, "warmup": 1, "connections": 100,
                "sizes": ["hello", "64k"], "server_cpus": [0], "load_cpus": [1]}  # fmt: skip
    res = http_run.Results(machine, settings)
    res.runs = [
        _run("floor", "hello", 0.5, wrk_cpu=0.95),
        _run("floor", "64k", 1.2),
        _run("fsmio-native", "hello", 0.9),
        _run("fsmio-native", "64k", 1.4, errors=3),
        _run("uvicorn", "hello", 2.0),
        _run("uvicorn", "64k", 2.5),
        _run("fsmio-asgi", "hello", 1.0),
        _run("fsmio-asgi", "64k", 2.4),
        http_run.failed_run("fsmio-wsgi", "hello", 0, "wrk exited 1: unable to connect"),
    ]
    res.unavailable = {"waitress": "ModuleNotFoundError: No module named 'waitress'"}
    text = http_run.render(res, 1.0)
    rows = {t["target"]: t for t in http_run.target_rows(http_run.summarize(res.runs),
                                                         res.unavailable)}  # fmt: skip
    assert rows["fsmio native, hello: server CPU s/100k"]["met"]
    assert not rows["fsmio native, 64 KiB: server CPU s/100k"]["met"]
    assert "fsmio-native had 3 errors" in rows["fsmio native, 64 KiB: server CPU s/100k"]["why"]
    assert rows["GAsgiServer / uvicorn, hello"]["value"] == pytest.approx(0.5)
    assert rows["GAsgiServer / uvicorn, hello"]["met"]
    assert rows["GAsgiServer / uvicorn, 64 KiB"]["value"] == pytest.approx(0.96)
    assert not rows["GAsgiServer / uvicorn, 64 KiB"]["met"]
    assert rows["GWsgiServer / waitress, hello"]["why"] == (
        "fsmio-wsgi had 1 errors; waitress not available"
    )
    assert "| fsmio-native | **0.90** | 100,000 | 0 | ~~1.40~~ INVALID | 100,000 | 3 |" in text
    assert "(wrk saturated)" in text and "**saturated**" in text
    assert "| GAsgiServer / uvicorn, hello | 0.50x | ≤ 0.8x | met |" in text
    assert "| 0.96x | ≤ 0.8x | **not met** |" in text
    assert "| 4 errors in 9 runs | 0 | **not met** |" in text
    assert "| fsmio-wsgi | ~~-~~ INVALID | - | 1 |" in text
    assert "1: wrk exited 1: unable to connect |" in text
    assert "not available: ModuleNotFoundError: No module named 'waitress'" in text


def test_a_missing_wrk_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_run.shutil, "which", lambda _name: None)
    monkeypatch.setattr(http_run.os, "geteuid", lambda: 1000)
    with pytest.raises(http_run.WrkUnavailableError, match="apt-get install wrk"):
        http_run.find_wrk(lambda _m: None)
    assert http_run.main(["--quick"]) == 2


def test_wrk_is_installed_with_apt_get_as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_run(argv: list[str], **_kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(http_run.shutil, "which", lambda _n: "/usr/bin/wrk" if calls else None)
    monkeypatch.setattr(http_run.os, "geteuid", lambda: 0)
    monkeypatch.setattr(http_run.subprocess, "run", fake_run)
    logged: list[str] = []
    path, how = http_run.find_wrk(logged.append)
    assert (path, how) == ("/usr/bin/wrk", "installed by this run with apt-get")
    assert calls == [["apt-get", "install", "-y", "-q", "wrk"]]
    assert "apt-get" in logged[0]


def test_wrk_install_failure_says_what_apt_get_said(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(argv: list[str], **_kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 100, "", "E: Unable to locate package wrk")

    monkeypatch.setattr(http_run.shutil, "which", lambda _n: None)
    monkeypatch.setattr(http_run.os, "geteuid", lambda: 0)
    monkeypatch.setattr(http_run.subprocess, "run", fake_run)
    with pytest.raises(http_run.WrkUnavailableError, match="Unable to locate package wrk"):
        http_run.find_wrk(lambda _m: None)
