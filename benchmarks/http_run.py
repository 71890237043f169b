"""The HTTP benchmark: server CPU per request, fsmio's HTTP servers beside their peers.

    python -m benchmarks.http_run [--quick] [--out benchmarks/results/<date>-http.md]

Every server (``benchmarks/http_servers/``) is its own process pinned to one CPU with
``taskset``; ``wrk`` (one thread, 100 keep-alive connections) is pinned to another.  In
one run, side by side: the floor (a bare uvloop Protocol on httptools), uvicorn and
fsmio's GAsgiServer with the same raw ASGI app, aiohttp's own server, waitress and fsmio's
GWsgiServer with the same WSGI app, and fsmio's native GHttpServer with a user gobj.  Each
answers a 13-byte ``hello`` (``/``) and a 64 KiB body (``/64k``).

The figure that counts is the **server CPU seconds per 100 000 requests**: user + system
time of the server process (all its threads) from ``/proc/PID/stat``, sampled before
``wrk`` starts and after it exits, divided by the requests ``wrk`` completed.  Every cell
runs ``--repeat`` times (the server order rotating) and the table gives the median.  A
run with any error (wrk's non-2xx responses, socket errors, or a byte count per response
that does not match the body) makes its row invalid.  ``wrk``'s own CPU share is reported:
at 90 % or more its core is saturated, so the request rate is a lower bound (the CPU per
request stays valid).

``wrk`` is looked up on ``PATH``; when it is missing and this runs as root it is installed
with ``apt-get`` (Debian package ``wrk``), otherwise the benchmark stops with a message
saying how to get it.  A server whose program cannot start (its package is not
installed, or fsmio does not have that server yet) is reported "not available" with the
reason; the others still run.

``--profile`` runs the servers under cProfile and writes where their time goes next to
the table (``<out>-cprofile.md``); the figures of such a run are inflated by the profiler.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import importlib.metadata
import io
import json
import os
import platform
import pstats
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmarks.common import cpu_busy_seconds, cpu_seconds, loadavg, raise_nofile
from benchmarks.http_servers.apps import ROUTES
from benchmarks.run import cpu_plan

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


@dataclass(frozen=True)
class ServerSpec:
    module: str  # under benchmarks.http_servers
    what: str


#: name -> server program, in the order of the tables.
SERVERS: dict[str, ServerSpec] = {
    "floor": ServerSpec("floor", "bare uvloop `asyncio.Protocol` on httptools (no framework)"),
    "fsmio-native": ServerSpec(
        "fsmio_native", "fsmio `GHttpServer`, a user gobj answering `EV_HTTP_REQUEST`"
    ),
    "fsmio-asgi": ServerSpec("fsmio_asgi", "fsmio `GAsgiServer`, the raw ASGI app"),
    "uvicorn": ServerSpec(
        "uvicorn_asgi", "uvicorn, the raw ASGI app, 1 worker, uvloop + httptools, no access log"
    ),
    "aiohttp": ServerSpec("aiohttp_web", "aiohttp `web.Application` on uvloop, no access log"),
    "fsmio-wsgi": ServerSpec("fsmio_wsgi", "fsmio `GWsgiServer`, the WSGI app"),
    "waitress": ServerSpec("waitress_wsgi", "waitress, the WSGI app, default 4 threads"),
}


@dataclass(frozen=True)
class Size:
    name: str
    path: str
    title: str

    @property
    def body(self) -> bytes:
        return ROUTES[self.path]


SIZES: dict[str, Size] = {
    "hello": Size("hello", "/", "hello (13 bytes)"),
    "64k": Size("64k", "/64k", "64 KiB"),
}

#: wrk's core at this share or more is saturated: the request rate is then a lower bound.
WRK_SATURATED = 0.90
#: Other processes' share of the server's core above which the run is flagged noisy.
NOISY_NEIGHBOURS = 0.10
#: The most bytes of head (status line and headers) a response may carry.
MAX_HEAD_BYTES = 2048
#: The issue's targets: (what, server, base server or None for an absolute limit, size, limit)
TARGETS: list[tuple[str, str, str | None, str, float]] = [
    ("fsmio native, hello: server CPU s/100k", "fsmio-native", None, "hello", 1.0),
    ("fsmio native, 64 KiB: server CPU s/100k", "fsmio-native", None, "64k", 1.5),
    ("GAsgiServer / uvicorn, hello", "fsmio-asgi", "uvicorn", "hello", 0.8),
    ("GAsgiServer / uvicorn, 64 KiB", "fsmio-asgi", "uvicorn", "64k", 0.8),
    ("GWsgiServer / waitress, hello", "fsmio-wsgi", "waitress", "hello", 0.8),
    ("GWsgiServer / waitress, 64 KiB", "fsmio-wsgi", "waitress", "64k", 0.8),
]


# ----------------------------------------------------------------------------------------
#   wrk: finding it, running it, reading its output
# ----------------------------------------------------------------------------------------
class WrkUnavailableError(RuntimeError):
    """wrk is not installed and this process cannot install it."""


def find_wrk(log: Callable[[str], None]) -> tuple[str, str]:
    """(path of wrk, how it was found); installs it with apt-get when root."""
    path = shutil.which("wrk")
    if path:
        return path, "found on PATH"
    if os.geteuid() != 0:
        raise WrkUnavailableError(
            "wrk (the HTTP load generator) is not on PATH. Install it (Debian/Ubuntu: "
            "`sudo apt-get install wrk`; macOS: `brew install wrk`), or run the benchmark as "
            "root and it installs the Debian package itself."
        )
    log("wrk not found: installing the Debian package with apt-get (running as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    attempts = [["apt-get", "install", "-y", "-q", "wrk"], ["apt-get", "update", "-q"]]
    outputs: list[str] = []
    for argv in [attempts[0], attempts[1], attempts[0]]:
        try:
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            raise WrkUnavailableError(
                f"wrk is not on PATH and `{' '.join(argv)}` failed: {exc}"
            ) from exc
        outputs.append(proc.stderr.strip()[-300:])
        path = shutil.which("wrk")
        if path:
            return path, "installed by this run with apt-get"
    raise WrkUnavailableError(
        "wrk is not on PATH and `apt-get install wrk` did not provide it: " + " | ".join(outputs)
    )


def wrk_version(wrk: str) -> str:
    with suppress(OSError, subprocess.SubprocessError):
        proc = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
        first = (proc.stdout + proc.stderr).strip().splitlines()
        if first:
            return first[0].split(" Copyright")[0].strip()
    return "unknown"


@dataclass
class WrkResult:
    requests: int
    seconds: float
    bytes_read: float
    requests_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    connect_errors: int = 0
    read_errors: int = 0
    write_errors: int = 0
    timeouts: int = 0
    non_2xx: int = 0

    @property
    def errors(self) -> int:
        return (
            self.connect_errors + self.read_errors + self.write_errors + self.timeouts
            + self.non_2xx
        )  # fmt: skip


_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_BYTE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if not m:
        raise ValueError(f"not a wrk duration: {value!r}")
    return float(m[1]) * _TIME_UNITS[m[2]]


def parse_wrk(text: str) -> WrkResult:
    """Read wrk 4's report (run with ``--latency``); a missing summary line is an error."""
    summary = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)([KMGT]?B) read",
                        text, re.M)  # fmt: skip
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if not summary or not rate:
        raise ValueError(
            "wrk's output has no 'N requests in T, B read' or 'Requests/sec:' line; got:\n"
            + text[-1000:]
        )
    pct = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)", text, re.M))
    result = WrkResult(
        requests=int(summary[1]),
        seconds=_ms(summary[2] + summary[3]) / 1e3,
        bytes_read=float(summary[4]) * _BYTE_UNITS[summary[5]],
        requests_per_s=float(rate[1]),
        p50_ms=_ms(pct["50"]) if "50" in pct else None,
        p99_ms=_ms(pct["99"]) if "99" in pct else None,
    )
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        result.connect_errors, result.read_errors, result.write_errors, result.timeouts = (
            int(g) for g in sock.groups()
        )
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        result.non_2xx = int(non2xx[1])
    return result


# ----------------------------------------------------------------------------------------
#   CPUs and processes
# ----------------------------------------------------------------------------------------
def pinned(argv: list[str], cpus: set[int]) -> list[str]:
    """``argv`` run under ``taskset``: every thread it ever starts stays on ``cpus``.

    (``os.sched_setaffinity`` on a child's pid after it started would pin its main thread
    only, and not the threads it had already started: waitress's, a GWsgiServer's pool.)
    """
    taskset = shutil.which("taskset")
    if taskset is None:
        raise RuntimeError("taskset (util-linux) is needed to pin the processes to CPUs")
    return [taskset, "-c", ",".join(map(str, sorted(cpus))), *argv]


def children_cpu_seconds() -> float:
    """User + system seconds of this process's children that have been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Server:
    """A server program, started pinned, waited for READY, and checked with one request."""

    def __init__(
        self,
        name: str,
        spec: ServerSpec,
        cpus: set[int],
        timeout: float = 30.0,
        profile: Path | None = None,
    ) -> None:
        self.name = name
        self.profile = profile
        # Under cProfile the stats are written when the program ends by itself: stop() then
        # sends SIGINT, which every server here turns into a normal exit or an exception.
        profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
        self.argv = [PY, *profiler, "-m", f"benchmarks.http_servers.{spec.module}",
                     "--host", "127.0.0.1", "--port", "0"]  # fmt: skip
        # Closed by stop(), which every path through here and the callers reach.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            pinned(self.argv, cpus),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,  # a file: a chatty server must never block on a full pipe
        )
        line = self._readline(timeout)
        if not line.startswith("READY "):
            err = self.stop()
            raise RuntimeError(f"{name}: {_failure_reason(err) or f'no READY line ({line!r})'}")
        _, self.host, port = line.split()
        self.port = int(port)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _readline(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline().decode(errors="replace").strip() if ready else ""

    def stop(self) -> str:
        """Stop the server (SIGTERM, then SIGKILL) and return the end of its stderr."""
        if self.proc.poll() is None and self.profile:
            self.proc.send_signal(signal.SIGINT)
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._stderr.seek(0)
        err = self._stderr.read().decode(errors="replace")
        self._stderr.close()
        return err[-4000:]


def _failure_reason(stderr: str) -> str:
    """The line that says why a program died (its exception), else its last line."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception)\b", ln):
            return ln[:300]
    return lines[-1][:300] if lines else ""


def probe(host: str, port: int, timeout: float = 10.0) -> None:
    """GET every resource once with http.client; raise if a response is not the expected one."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        for path, body in ROUTES.items():
            conn.request("GET", path)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200 or data != body:
                raise RuntimeError(
                    f"GET {path} answered {resp.status} with {len(data)} bytes "
                    f"({data[:40]!r}...), expected 200 with {len(body)} bytes"
                )
            length = resp.getheader("content-length")
            if length is not None and int(length) != len(body):
                raise RuntimeError(f"GET {path}: Content-Length {length}, body {len(body)}")
    finally:
        conn.close()


@contextmanager
def servers(
    names: list[str],
    cpus: set[int],
    unavailable: dict[str, str],
    log: Callable[[str], None],
    profile_dir: Path | None = None,
) -> Iterator[dict[str, Server]]:
    """Start the servers; one that cannot start or answers wrong goes to ``unavailable``.

    With ``profile_dir`` each runs under cProfile, writing ``<name>.prof`` there on exit.
    """
    live: dict[str, Server] = {}
    try:
        for name in names:
            try:
                prof = profile_dir / f"{name}.prof" if profile_dir else None
                server = Server(name, SERVERS[name], cpus, profile=prof)
            except RuntimeError as exc:
                unavailable[name] = str(exc).removeprefix(f"{name}: ")
                log(f"{name}: not available: {unavailable[name]}")
                continue
            try:
                probe(server.host, server.port)
            except (OSError, RuntimeError, http.client.HTTPException) as exc:
                err = server.stop()
                unavailable[name] = f"answered wrong: {exc}; {_failure_reason(err)}".strip("; ")
                log(f"{name}: not available: {unavailable[name]}")
                continue
            live[name] = server
        yield live
    finally:
        for server in live.values():
            server.stop()


# ----------------------------------------------------------------------------------------
#   The measurement
# ----------------------------------------------------------------------------------------
@dataclass
class HttpRun:
    server: str
    size: str
    repeat: int
    requests: int
    seconds: float  # wrk's measured time
    wall: float  # the CPU sampling window: wrk's start to its exit
    requests_per_s: float
    server_cpu: float
    wrk_cpu: float
    neighbours: float | None  # other processes' share of the server's core(s)
    p50_ms: float | None
    p99_ms: float | None
    bytes_per_response: float
    errors: int
    error_detail: str = ""

    @property
    def cpu_per_100k(self) -> float:
        return self.server_cpu / self.requests * 1e5 if self.requests else float("nan")

    @property
    def wrk_share(self) -> float:
        return self.wrk_cpu / self.wall if self.wall else float("nan")

    @property
    def server_share(self) -> float:
        return self.server_cpu / self.wall if self.wall else float("nan")


def bytes_per_response_ok(per_response: float, body: int, requests: int, conns: int) -> bool:
    """Whether wrk's bytes read per request fit responses of ``body`` bytes plus a head.

    wrk prints the bytes read with three significant digits (0.5 % at worst) and counts
    the responses still in flight on every connection at the end, but not their requests.
    """
    if not requests:
        return False
    most = (body + MAX_HEAD_BYTES) * (1 + conns / requests) * 1.005
    return body * 0.995 <= per_response <= most


def wrk_command(wrk: str, url: str, seconds: int, connections: int) -> list[str]:
    return [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency", url]


def run_wrk(argv: list[str], cpus: set[int], timeout: float) -> tuple[str, float, float]:
    """(wrk's stdout, its CPU seconds, its wall seconds); raises if it fails."""
    rusage0 = children_cpu_seconds()
    t0 = time.monotonic()
    proc = subprocess.Popen(pinned(argv, cpus), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"{' '.join(argv)} did not finish within {timeout:.0f} s") from None
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {err.strip()[-500:]}")
    return out, children_cpu_seconds() - rusage0, wall


def measure(
    server: Server,
    size: Size,
    repeat: int,
    *,
    wrk: str,
    seconds: int,
    connections: int,
    server_cpus: set[int],
    load_cpus: set[int],
) -> HttpRun:
    """One wrk run against one server; the server's CPU over exactly wrk's lifetime."""
    url = f"http://{server.host}:{server.port}{size.path}"
    argv = wrk_command(wrk, url, seconds, connections)
    busy0 = cpu_busy_seconds(server_cpus)
    cpu0 = cpu_seconds(server.pid)
    out, wrk_cpu, wall = run_wrk(argv, load_cpus, timeout=seconds + 60.0)
    server_cpu = cpu_seconds(server.pid) - cpu0
    busy = cpu_busy_seconds(server_cpus) - busy0
    result = parse_wrk(out)
    per_response = result.bytes_read / result.requests if result.requests else 0.0
    details = []
    if result.errors:
        details.append(
            f"wrk: non-2xx {result.non_2xx}, connect {result.connect_errors}, read "
            f"{result.read_errors}, write {result.write_errors}, timeout {result.timeouts}"
        )
    size_error = not bytes_per_response_ok(per_response, len(size.body), result.requests,
                                           connections)  # fmt: skip
    if size_error:
        details.append(
            f"{per_response:.0f} bytes read per response for a {len(size.body)}-byte body"
        )
    if server.proc.poll() is not None:
        details.append(f"the server exited ({server.proc.returncode})")
    shared = server_cpus & load_cpus
    return HttpRun(
        server=server.name,
        size=size.name,
        repeat=repeat,
        requests=result.requests,
        seconds=result.seconds,
        wall=wall,
        requests_per_s=result.requests_per_s,
        server_cpu=server_cpu,
        wrk_cpu=wrk_cpu,
        neighbours=None if shared else max(0.0, busy - server_cpu) / (wall * len(server_cpus)),
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        bytes_per_response=per_response,
        errors=result.errors + int(size_error) + int(server.proc.poll() is not None),
        error_detail="; ".join(details),
    )


def failed_run(server: str, size: str, repeat: int, why: str) -> HttpRun:
    """The record of a run whose wrk failed: one error, no figures."""
    return HttpRun(server=server, size=size, repeat=repeat, requests=0, seconds=0.0, wall=0.0,
                   requests_per_s=0.0, server_cpu=0.0, wrk_cpu=0.0, neighbours=None,
                   p50_ms=None, p99_ms=None, bytes_per_response=0.0, errors=1,
                   error_detail=why[:500])  # fmt: skip


@dataclass
class Results:
    machine: dict[str, Any]
    settings: dict[str, Any]
    runs: list[HttpRun] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def run_all(
    res: Results,
    names: list[str],
    sizes: list[Size],
    *,
    wrk: str,
    seconds: int,
    warmup: int,
    repeat: int,
    connections: int,
    log: Callable[[str], None],
    profile_dir: Path | None = None,
) -> None:
    server_cpus, load_cpus = cpu_plan()

    def one(server: Server, size: Size, r: int, secs: int) -> HttpRun:
        try:
            return measure(server, size, r, wrk=wrk, seconds=secs, connections=connections,
                           server_cpus=server_cpus, load_cpus=load_cpus)  # fmt: skip
        except (RuntimeError, ValueError) as exc:  # wrk failed: an error of this cell
            return failed_run(server.name, size.name, r, str(exc))

    with servers(names, server_cpus, res.unavailable, log, profile_dir) as live:
        order = [n for n in names if n in live]
        if warmup:
            for name in order:
                for size in sizes:
                    run = one(live[name], size, -1, warmup)
                    if run.errors:
                        res.notes.append(f"warm-up of {name} / {size.name}: {run.error_detail}")
        for r in range(repeat):
            rotated = order[r % len(order) :] + order[: r % len(order)] if order else []
            for size in sizes:
                for name in rotated:
                    run = one(live[name], size, r, seconds)
                    res.runs.append(run)
                    log(
                        f"{size.name:5s} {name:12s} #{r}: {run.requests_per_s:9.0f} req/s  "
                        f"server {run.cpu_per_100k:.3f} s/100k ({run.server_share:.0%} of a "
                        f"core)  wrk {run.wrk_share:.0%}  errors {run.errors}"
                        + (f" ({run.error_detail})" if run.error_detail else "")
                    )


def profile_report(profile_dir: Path, names: list[str], top: int = 30) -> str:
    """The functions where each profiled server spent its time, by own time, as Markdown."""
    parts = [
        "# Where the servers' time goes (cProfile)",
        "",
        (
            "Each server ran the whole benchmark under `python -m cProfile`: the profiler's "
            "own cost inflates every figure (the benchmark's table from this run compares "
            f"nothing). The {top} functions with the most time of their own (tottime), then "
            "by cumulative time. cProfile sees the main thread only: the work of worker "
            "threads (waitress's, GWsgiServer's pool) is not in it. The event loop's own "
            "time (C, waiting included) shows as `run`."
        ),
        "",
    ]
    for name in names:
        path = profile_dir / f"{name}.prof"
        if not path.exists():
            parts += [f"## {name}", "", "no profile written (the server did not exit by itself)"]
            continue
        for order in ("tottime", "cumulative"):
            buf = io.StringIO()
            pstats.Stats(str(path), stream=buf).strip_dirs().sort_stats(order).print_stats(top)
            text = buf.getvalue().strip()
            parts += [f"## {name}, by {order}", "", "```", text[text.find("ncalls") :], "```", ""]
    return "\n".join(parts)


# ----------------------------------------------------------------------------------------
#   The report
# ----------------------------------------------------------------------------------------
def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(runs: list[HttpRun]) -> dict[tuple[str, str], dict[str, Any]]:
    """(server, size) -> the medians of its runs, their spread, and the error count."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for key in dict.fromkeys((r.server, r.size) for r in runs):
        rs = [r for r in runs if (r.server, r.size) == key]
        done = [r for r in rs if r.requests]  # a run whose wrk failed has no figures
        cpus = [r.cpu_per_100k for r in done] or [float("nan")]
        neighbours = [r.neighbours for r in done if r.neighbours is not None]
        out[key] = {
            "cpu": _med(cpus),
            "cpu_min": min(cpus),
            "cpu_max": max(cpus),
            "rate": _med([r.requests_per_s for r in done]),
            "p50": _med([r.p50_ms for r in done if r.p50_ms is not None]),
            "p99": _med([r.p99_ms for r in done if r.p99_ms is not None]),
            "server_share": _med([r.server_share for r in done]),
            "wrk_share": _med([r.wrk_share for r in done]),
            "wrk_max": max((r.wrk_share for r in done), default=float("nan")),
            "neighbours": _med(neighbours) if neighbours else None,
            "bytes": _med([r.bytes_per_response for r in done]),
            "errors": sum(r.errors for r in rs),
            "error_detail": "; ".join(r.error_detail for r in rs if r.error_detail),
            "n": len(rs),
        }
    return out


def ratio(a: float, b: float) -> float:
    """a / b, NaN when either is unknown or b is zero."""
    return a / b if b and a == a and b == b else float("nan")


def valid_cpu(summary: dict[tuple[str, str], dict[str, Any]], server: str, size: str) -> float:
    """The median CPU/100k of a cell, or NaN when it was not measured or had errors."""
    cell = summary.get((server, size))
    if cell is None or cell["errors"]:
        return float("nan")
    return float(cell["cpu"])


def target_rows(
    summary: dict[tuple[str, str], dict[str, Any]], unavailable: dict[str, str]
) -> list[dict[str, Any]]:
    rows = []
    for what, server, base, size, limit in TARGETS:
        value = valid_cpu(summary, server, size)
        if base is not None:
            value = ratio(value, valid_cpu(summary, base, size))
        problems = []
        for name in (server, base):
            if name is None:
                continue
            cell = summary.get((name, size))
            if name in unavailable:
                problems.append(f"{name} not available")
            elif cell is None:
                problems.append(f"{name} not measured")
            elif cell["errors"]:
                problems.append(f"{name} had {cell['errors']} errors")
        why = "; ".join(problems)
        met = not why and value == value and value <= limit
        rows.append(
            {
                "target": what,
                "value": value if value == value else None,
                "limit": limit,
                "ratio": base is not None,
                "met": met,
                "why": why,
            }
        )
    return rows


def _mode(settings: dict[str, Any]) -> str:
    if settings.get("profile"):
        return "PROFILED under cProfile (the profiler's cost inflates every figure)"
    return "QUICK (smoke run: the figures mean nothing)" if settings["quick"] else "full"


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None or v != v else format(v, spec)


def render(res: Results, elapsed: float) -> str:
    m, s = res.machine, res.settings
    summary = summarize(res.runs)
    names = [n for n in SERVERS if n in {r.server for r in res.runs} or n in res.unavailable]
    sizes = [z for z in SIZES.values() if z.name in s["sizes"]]
    lines = [
        f"# fsmio HTTP benchmark - {m['date']}",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {m['cpu']} ({m['cores']} cores, {m['usable_cores']} usable) |",
        f"| Python | {m['python']} |",
        f"| fsmio | {m['fsmio']} (commit {m['commit'] or '?'}) |",
        "| peers | " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + " |",
        f"| load generator | {m['wrk']} ({m['wrk_how']}) |",
        f"| kernel | {m['kernel']} |",
        f"| load average before / after | {m['loadavg_before']} / {m['loadavg_after']} |",
        (
            f"| mode | {_mode(s)}"
            f", {s['repeat']} x {s['seconds']} s per cell after a {s['warmup']} s warm-up, "
            f"{s['connections']} connections, {elapsed:.0f} s in all |"
        ),
        "",
        (
            f"Each server pinned to CPU {s['server_cpus']}, `wrk -t1 -c{s['connections']}` to "
            f"CPU {s['load_cpus']}, every process pinned with `taskset` (threads included). "
            "**Server CPU** is user + system seconds of the server process and its threads "
            "(`/proc/PID/stat`) from just before wrk starts to just after it exits, per "
            "100 000 requests wrk completed: the median of the runs, [min-max]. Lower is "
            "better. A cell with any error (wrk's non-2xx or socket errors, or bytes read per "
            "response not matching the body) is INVALID and takes no part in the ratios."
        ),
        "",
    ]
    for note in busy_notes(res, summary):
        lines += [f"**{note}**", ""]
    lines += [
        "## Server CPU per 100 000 requests",
        "",
        "| server | " + " | ".join(
            f"{z.title}: CPU s/100k | req/s | errors" for z in sizes
        ) + " | ÷ floor (" + " / ".join(z.name for z in sizes) + ") |",
        "|---|" + "---:|---:|---:|" * len(sizes) + "---:|",
    ]  # fmt: skip
    for name in names:
        if name in res.unavailable:
            cells = " | ".join("- | - | -" for _ in sizes)
            lines.append(f"| {name} | {cells} | not available: {res.unavailable[name]} |")
            continue
        cells, vs_floor = [], []
        for z in sizes:
            c = summary.get((name, z.name))
            if c is None:
                cells.append("- | - | -")
                vs_floor.append("-")
                continue
            cpu = f"**{_fmt(c['cpu'])}**" if not c["errors"] else f"~~{_fmt(c['cpu'])}~~ INVALID"
            sat = " (wrk saturated)" if c["wrk_max"] >= WRK_SATURATED else ""
            cells.append(f"{cpu} | {_fmt(c['rate'], ',.0f')}{sat} | {c['errors']}")
            floor = valid_cpu(summary, "floor", z.name)
            vs = ratio(valid_cpu(summary, name, z.name), floor)
            vs_floor.append(f"{vs:.2f}x" if vs == vs else "-")
        lines.append(f"| {name} | {' | '.join(cells)} | {' / '.join(vs_floor)} |")
    lines.append("")
    lines += ["## Targets (issue 10)", "", "| target | measured | limit | met |",
              "|---|---:|---:|---|"]  # fmt: skip
    for t in target_rows(summary, res.unavailable):
        unit = "x" if t["ratio"] else " s"
        value = "-" if t["value"] is None else f"{t['value']:.2f}{unit}"
        met = "met" if t["met"] else "**not met**" + (f" ({t['why']})" if t["why"] else "")
        lines.append(f"| {t['target']} | {value} | ≤ {t['limit']}{unit} | {met} |")
    total_errors = sum(r.errors for r in res.runs)
    lines.append(
        f"| zero response errors in every run | {total_errors} errors in {len(res.runs)} runs "
        f"| 0 | {'met' if not total_errors and res.runs else '**not met**'} |"
    )
    lines.append("")
    for z in sizes:
        lines += [
            f"## Details: {z.title}",
            "",
            (
                "| server | what | req/s | p50 / p99 ms | server CPU s/100k [min-max] "
                "| server's core busy | wrk's core busy | others on the server's core "
                "| bytes / response | errors |"
            ),
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name in names:
            c = summary.get((name, z.name))
            if c is None:
                continue
            sat = " **saturated**" if c["wrk_max"] >= WRK_SATURATED else ""
            errs = str(c["errors"]) + (f": {c['error_detail']}" if c["error_detail"] else "")
            lines.append(
                f"| {name} | {SERVERS[name].what} | {_fmt(c['rate'], ',.0f')} "
                f"| {_fmt(c['p50'])} / {_fmt(c['p99'])} "
                f"| {_fmt(c['cpu'], '.3f')} [{_fmt(c['cpu_min'], '.3f')}-"
                f"{_fmt(c['cpu_max'], '.3f')}] "
                f"| {_fmt(c['server_share'], '.0%')} | {_fmt(c['wrk_share'], '.0%')}{sat} "
                f"| {_fmt(c['neighbours'], '.0%')} "
                f"| {_fmt(c['bytes'], ',.0f')} | {errs} |"
            )
        lines.append("")
    lines += [
        (
            "Reading: *server's core busy* below ~90 % means the server was not the "
            "bottleneck: wrk or the connection count limited the rate; the CPU per request "
            "stays valid. *wrk's core busy* at 90 % or more (**saturated**) means the "
            "request rate is a lower bound for that server."
        ),
        "",
    ]
    if res.unavailable:
        lines.append("Not available in this run:")
        lines.extend(f"- **{n}**: {why}" for n, why in res.unavailable.items())
        lines.append("")
    if res.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in res.notes], ""]
    return "\n".join(lines)


def busy_notes(res: Results, summary: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """Warnings that the machine was busy, so that the figures be read as noisy."""
    notes = []
    before = res.machine.get("loadavg_before", "")
    cores = res.machine.get("usable_cores") or 1
    with suppress(ValueError, IndexError):
        if float(before.split()[0]) >= 0.5 * cores:
            notes.append(
                f"Busy machine: the load average was {before} before the run "
                f"({cores} usable cores); other processes shared the CPUs, so the figures are "
                "noisier than on a quiet machine (the ratios of one run remain comparable)."
            )
    noisy = [f"{srv}/{size} {c['neighbours']:.0%}" for (srv, size), c in summary.items()
             if c["neighbours"] is not None and c["neighbours"] >= NOISY_NEIGHBOURS]  # fmt: skip
    if noisy:
        notes.append(
            "Other processes took 10 % or more of the server's core during: " + ", ".join(noisy)
        )
    return notes


# ----------------------------------------------------------------------------------------
def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


PEER_DISTRIBUTIONS = ("uvloop", "httptools", "uvicorn", "aiohttp", "waitress")


def machine_info(wrk: str, wrk_how: str) -> dict[str, Any]:
    model = platform.processor() or "unknown"
    with suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = ""
    with suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "fsmio": _version("fsmio"),
        "commit": commit,
        "versions": {d: _version(d) for d in PEER_DISTRIBUTIONS},
        "wrk": wrk_version(wrk),
        "wrk_how": wrk_how,
        "kernel": platform.release(),
        "loadavg_before": loadavg(),
        "loadavg_after": "",
    }


def _no_nan(value: Any) -> Any:
    """``value`` with NaN floats as None: strict JSON has no NaN."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fsmio HTTP benchmark: server CPU per request")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 s, one repeat")
    parser.add_argument("--out", help="Markdown file to write, with a .json beside it")
    parser.add_argument("--repeat", type=int, help="runs per cell (default 3; quick 1)")
    parser.add_argument("--seconds", type=int, help="wrk's duration per run (default 5; quick 1)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds per cell (default 1; quick 0)")
    parser.add_argument("--connections", type=int, default=100, help="keep-alive connections")
    parser.add_argument("--servers", help=f"comma-separated among {','.join(SERVERS)}")
    parser.add_argument("--sizes", help=f"comma-separated among {','.join(SIZES)}")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the servers under cProfile and write where their time goes "
        "(<out>-cprofile.md, or print it); the figures are then inflated",
    )
    args = parser.parse_args(argv)
    names = list(SERVERS)
    if args.servers:
        names = [s.strip() for s in args.servers.split(",") if s.strip()]
        if unknown := [s for s in names if s not in SERVERS]:
            parser.error(f"unknown servers {unknown}; known: {', '.join(SERVERS)}")
    sizes = list(SIZES.values())
    if args.sizes:
        wanted = [s.strip() for s in args.sizes.split(",") if s.strip()]
        if unknown := [s for s in wanted if s not in SIZES]:
            parser.error(f"unknown sizes {unknown}; known: {', '.join(SIZES)}")
        sizes = [SIZES[s] for s in wanted]
    repeat = args.repeat or (1 if args.quick else 3)
    seconds = args.seconds or (1 if args.quick else 5)
    warmup = args.warmup if args.warmup is not None else (0 if args.quick else 1)
    if seconds < 1 or repeat < 1 or warmup < 0 or args.connections < 1:
        parser.error("--seconds, --repeat and --connections must be ≥ 1, --warmup ≥ 0")
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    try:
        wrk, how = find_wrk(log)
    except WrkUnavailableError as exc:
        print(f"http_run: {exc}", file=sys.stderr)
        return 2
    log(f"wrk: {wrk} ({how})")
    raise_nofile()
    server_cpus, load_cpus = cpu_plan()
    res = Results(
        machine_info(wrk, how),
        {"quick": args.quick, "repeat": repeat, "seconds": seconds, "warmup": warmup,
         "connections": args.connections, "sizes": [z.name for z in sizes],
         "profile": args.profile,
         "server_cpus": sorted(server_cpus), "load_cpus": sorted(load_cpus)},
    )  # fmt: skip
    if server_cpus == load_cpus:
        res.notes.append("One usable CPU: servers and wrk shared it; the rates mean little.")
    with suppress(OSError):  # this process only waits: keep it off the servers' CPU
        os.sched_setaffinity(0, load_cpus)
    with tempfile.TemporaryDirectory(prefix="fsmio-http-prof-") as tmp:
        profile_dir = Path(tmp) if args.profile else None
        run_all(res, names, sizes, wrk=wrk, seconds=seconds, warmup=warmup, repeat=repeat,
                connections=args.connections, log=log, profile_dir=profile_dir)  # fmt: skip
        profiles = profile_report(Path(tmp), names) if args.profile else ""
    res.machine["loadavg_after"] = loadavg()
    text = render(res, time.monotonic() - t0)
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        summary = summarize(res.runs)
        raw = {
            "machine": res.machine,
            "settings": res.settings,
            "runs": [asdict(r) | {"cpu_per_100k": r.cpu_per_100k, "wrk_share": r.wrk_share,
                                  "server_share": r.server_share} for r in res.runs],
            "summary": [{"server": k[0], "size": k[1], **v} for k, v in summary.items()],
            "targets": target_rows(summary, res.unavailable),
            "unavailable": res.unavailable,
            "notes": res.notes,
        }  # fmt: skip
        out.with_suffix(".json").write_text(json.dumps(_no_nan(raw), indent=1) + "\n")
        log(f"wrote {out} and {out.with_suffix('.json')}")
        if profiles:
            prof_out = out.with_name(f"{out.stem}-cprofile.md")
            prof_out.write_text(profiles + "\n")
            log(f"wrote {prof_out}")
    elif profiles:
        print(profiles)
    errors = sum(r.errors for r in res.runs)
    if errors:
        log(f"{errors} response errors: see the errors columns (those cells are INVALID)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
