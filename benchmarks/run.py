"""Run the whole benchmark and write a Markdown table of the results.

    python -m benchmarks.run [--quick] [--out benchmarks/results/<date>-echo.md]

1. Echo, side by side in one run: the fsmio echo server (``benchmarks.fsmio_echo``:
   GServerSock + GSock + a user gobj, every message EV_RX_DATA -> action -> EV_SEND_DATA),
   a raw asyncio ``Protocol`` on the standard loop, the same on uvloop, and Twisted.  Each
   server is its own process pinned to CPU 0; the load generator is another process pinned
   to CPU 1 (on a machine with two CPUs or more): ``benchmarks/echoload.c``, compiled by
   the run with ``cc -O2``, so that the servers, not the load, saturate their core.  With
   no C compiler the Python ``benchmarks.loadgen`` stands in, and the report says loudly
   that its ratios are compressed.  Every mode runs every server in turn, ``--repeat``
   times, the order rotating; the servers' CPU time comes from ``/proc/PID/stat``, sampled
   when the load generator starts and stops its measured window.
2. Idle connections: a fresh server per measurement; its RSS with N connections open
   minus its RSS before them, divided by N.
3. In-process micro-benchmarks (``benchmarks.micro``), fsmio beside automat and
   transitions.

``--quick`` is a smoke run (tiny counts, one repeat, seconds in all): it proves the
benchmark works, its figures mean nothing.  The full run takes a few minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import micro
from benchmarks.common import (
    NoCompilerError,
    build_c,
    cpu_busy_seconds,
    cpu_seconds,
    loadavg,
    raise_nofile,
    rss_bytes,
)

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

# name -> command line of the echo server (each prints "READY <host> <port>").
SERVERS: dict[str, list[str]] = {
    "asyncio": [PY, "-m", "benchmarks.echo_asyncio", "--loop", "asyncio"],
    "uvloop": [PY, "-m", "benchmarks.echo_asyncio", "--loop", "uvloop"],
    "twisted": [PY, "-m", "benchmarks.echo_twisted"],
    "fsmio": [PY, "-m", "benchmarks.fsmio_echo"],
}
# Run only when asked for (--servers): the hand-written selectors loop (the pure-Python
# floor), and the example echo server (its options and logging), to see what they cost
# beside the bare benchmark server.
EXTRA_SERVERS: dict[str, list[str]] = {
    "selectors": [PY, "-m", "benchmarks.echo_selectors"],
    "fsmio-example": [PY, "-m", "fsmio.examples.echo_server", "--log-level", "WARNING"],
}
LABELS = {
    "asyncio": "raw asyncio Protocol",
    "uvloop": "raw uvloop Protocol",
    "twisted": "Twisted",
    "fsmio": "fsmio echo (`fsmio_echo.py`)",
    "selectors": "hand-written selectors loop",
    "fsmio-example": "fsmio example echo server",
}


@dataclass
class Mode:
    """One load: its load generator arguments and the unit its CPU figure is given per."""

    name: str
    mode: str  # the load generator's --mode
    args: list[str]
    unit: str  # "msg", "GB" or "conn"
    title: str
    column: str  # its column in the summary table


#: --modes: the echo modes to run (empty: the default ones).
WANTED_MODES: set[str] = set()
#: Run only when asked for with --modes.
EXTRA_MODES = {"pingpong-1"}


def modes(quick: bool) -> list[Mode]:
    if WANTED_MODES:
        return [m for m in _all_modes(quick) if m.name in WANTED_MODES]
    return [m for m in _all_modes(quick) if m.name not in EXTRA_MODES]


def _all_modes(quick: bool) -> list[Mode]:
    return [
        Mode("pingpong-1", "pingpong", ["--conns", "1"], "msg",
             "ping-pong, 1 connection, 64 B", "ping-pong x1"),
        Mode("pingpong-100", "pingpong", ["--conns", "100"], "msg",
             "ping-pong, 100 connections, 64 B", "ping-pong x100"),
        Mode("pipelined", "pipelined", ["--conns", "100", "--inflight", "16"], "msg",
             "pipelined, 100 connections x 16 in flight, 64 B", "pipelined x16"),
        Mode("stream", "stream", ["--conns", "10", "--chunk", "65536"], "GB",
             "streaming, 10 connections, 64 KiB writes (at most 256 KiB unechoed each)",
             "streaming"),
        Mode("connect", "connect", ["--conns", "10"], "conn",
             "connect / echo 64 B / close, 10 at a time", "connect"),
    ]  # fmt: skip


class LoadGen:
    """The load generator: the compiled ``echoload`` or, with no C compiler, the Python one.

    ``measure()`` runs one mode against one server and returns the load generator's JSON
    result with the server's CPU seconds over the measured window (``server_cpu``), the
    load generator's own (``load_cpu``) and the busy CPU seconds of the server's cores
    (``core_busy``: the server's and any other process's).
    """

    def __init__(self, exe: str | None, warmup: float, seconds: float) -> None:
        self.exe = exe
        self.warmup = warmup
        self.seconds = seconds

    @property
    def compiled(self) -> bool:
        return self.exe is not None

    @property
    def name(self) -> str:
        if self.exe is not None:
            return "echoload (benchmarks/echoload.c, cc -O2)"
        return "loadgen.py (Python FALLBACK: ratios compressed)"

    def argv(self, host: str, port: int, mode: str, args: list[str]) -> list[str]:
        where = ["--host", host, "--port", str(port), "--mode", mode, *args]
        if self.exe is not None:
            timing = ["--warmup", str(self.warmup), "--seconds", str(self.seconds)]
            return [self.exe, *where, *timing] if mode != "idle" else [self.exe, *where]
        timing = ["--seconds", str(self.seconds)] if mode != "idle" else []
        return [PY, "-m", "benchmarks.loadgen", *where, *timing]

    def measure(
        self, server: Server, mode: Mode, server_cpus: set[int], load_cpus: set[int]
    ) -> dict[str, Any]:
        compiled = self.exe is not None
        timeout = self.warmup + self.seconds + 60.0
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(
                self.argv(server.host, server.port, mode.mode, mode.args),
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors,
            )  # fmt: skip
            assert proc.stdout is not None
            with suppress(OSError):
                os.sched_setaffinity(proc.pid, load_cpus)
            lines = _Lines(proc.stdout.fileno())
            try:
                # The compiled one: the window is between its START and STOP lines (after
                # the warm-up, before it drains what is in flight and checks the last
                # bytes).  The Python one: its whole life.
                if compiled and lines.readline(timeout) != "START":
                    raise RuntimeError("no START line")
                cpu0, load0 = cpu_seconds(server.pid), cpu_seconds(proc.pid)
                busy0 = cpu_busy_seconds(server_cpus)
                if compiled and lines.readline(timeout) != "STOP":
                    raise RuntimeError("no STOP line")
                cpu1, load1 = cpu_seconds(server.pid), cpu_seconds(proc.pid)
                busy1 = cpu_busy_seconds(server_cpus)
                out = lines.rest(timeout)
                proc.wait(timeout)
                if not compiled:
                    cpu1, busy1 = cpu_seconds(server.pid), cpu_busy_seconds(server_cpus)
                    load1 = load0 = 0.0  # its process is gone: not measured
            except (TimeoutError, subprocess.TimeoutExpired, RuntimeError, OSError) as exc:
                proc.kill()
                proc.wait()
                errors.seek(0)
                err = errors.read().decode(errors="replace")
                raise RuntimeError(
                    f"load {mode.name} against {server.name}: {exc} {err[-500:]}"
                ) from None
            finally:
                proc.stdout.close()
            if proc.returncode != 0 or not out.strip():
                errors.seek(0)
                err = errors.read().decode(errors="replace")
                raise RuntimeError(
                    f"load {mode.name} against {server.name} failed "
                    f"(exit {proc.returncode}): {err[-800:]}"
                )
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        result["server_cpu"] = cpu1 - cpu0
        result["load_cpu"] = load1 - load0
        result["core_busy"] = busy1 - busy0
        return result

    def idle_argv(self, host: str, port: int, conns: int) -> list[str]:
        return self.argv(host, port, "idle", ["--conns", str(conns)])


@dataclass
class EchoRun:
    server: str
    mode: str
    repeat: int
    messages: float  # round trips, bytes (stream) or connections (connect)
    seconds: float
    server_cpu: float
    p50_us: float | None
    p99_us: float | None
    errors: int
    first_error: str = ""
    load_cpu: float = 0.0  # the load generator's own CPU seconds (0: not measured)
    core_busy: float = 0.0  # busy CPU seconds of the server's core(s), anyone's


@dataclass
class IdleRun:
    server: str
    repeat: int
    connections: int
    rss_before: int
    rss_after: int
    errors: int

    @property
    def per_conn(self) -> float:
        return (self.rss_after - self.rss_before) / max(1, self.connections)


@dataclass
class Results:
    machine: dict[str, Any]
    echo: list[EchoRun] = field(default_factory=list)
    idle: list[IdleRun] = field(default_factory=list)
    micro: list[micro.Micro] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------
#   Machine and processes
# ----------------------------------------------------------------------------------------
def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
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
        "usable_cores": len(_CPUS),
        "python": platform.python_version(),
        "uvloop": _version("uvloop"),
        "twisted": _version("twisted"),
        "automat": _version("automat"),
        "transitions": _version("transitions"),
        "fsmio": _version("fsmio"),
        "commit": commit,
        "kernel": platform.release(),
        "loadavg_before": loadavg(),
        "loadavg_after": "",
        "loadgen": "",
    }


# The CPUs this benchmark may use, read once (main() then pins this process).
_CPUS = sorted(os.sched_getaffinity(0))


def cpu_plan() -> tuple[set[int], set[int]]:
    """(server CPUs, load CPUs): one core each where there are two."""
    cpus = _CPUS
    if len(cpus) >= 2:
        return {cpus[0]}, {cpus[1]}
    return set(cpus), set(cpus)


class Server:
    """An echo server process, started and waited for READY."""

    def __init__(self, name: str, argv: list[str], cpus: set[int]) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [*argv, "--host", "127.0.0.1", "--port", "0"],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with suppress(OSError):
            os.sched_setaffinity(self.proc.pid, cpus)
        line = _readline(self.proc, 20.0)
        if not line.startswith("READY "):
            err = self.stop()
            raise RuntimeError(f"{name}: no READY line (got {line!r}); stderr: {err[-500:]}")
        _, self.host, port = line.split()
        self.port = int(port)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        err = self.proc.stderr.read() if self.proc.stderr else ""
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        return err


class _Lines:
    """A child's output, line by line, read without a buffer select() cannot see.

    (A buffered reader may read the next lines along with this one; select() on the pipe
    then waits for output that has already come.)
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""
        self.eof = False

    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the load generator said nothing in time")
        ready, _, _ = select.select([self.fd], [], [], left)
        if ready:
            chunk = os.read(self.fd, 65536)
            self.eof = not chunk
            self.buf += chunk

    def readline(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf and not self.eof:
            self._fill(deadline)
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode().strip()

    def rest(self, timeout: float) -> str:
        """Everything up to the end of the output."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            self._fill(deadline)
        rest, self.buf = self.buf, b""
        return rest.decode()


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().strip() if ready else ""


@contextmanager
def servers(names: list[str], cpus: set[int], res: Results) -> Iterator[dict[str, Server]]:
    live: dict[str, Server] = {}
    try:
        for name in names:
            try:
                live[name] = Server(name, SERVERS[name], cpus)
            except RuntimeError as exc:
                res.unavailable[name] = str(exc).splitlines()[0][:200]
        yield live
    finally:
        for server in live.values():
            server.stop()


# ----------------------------------------------------------------------------------------
#   The runs
# ----------------------------------------------------------------------------------------
def run_echo(
    res: Results, gen: LoadGen, quick: bool, repeat: int, log: Callable[[str], None]
) -> None:
    server_cpus, load_cpus = cpu_plan()
    names = list(SERVERS)
    with servers(names, server_cpus, res) as live:
        order = [n for n in names if n in live]
        for r in range(repeat):
            for mode in modes(quick):
                # Rotate the order each repeat: a noisy neighbour hits every server alike.
                rotated = order[r % len(order) :] + order[: r % len(order)] if order else []
                for name in rotated:
                    out = gen.measure(live[name], mode, server_cpus, load_cpus)
                    run = EchoRun(
                        server=name,
                        mode=mode.name,
                        repeat=r,
                        messages=float(out["messages"]),
                        seconds=float(out["seconds"]),
                        server_cpu=out["server_cpu"],
                        p50_us=out["p50_us"],
                        p99_us=out["p99_us"],
                        errors=int(out["errors"]),
                        first_error=out.get("first_error", ""),
                        load_cpu=out["load_cpu"],
                        core_busy=out["core_busy"],
                    )
                    res.echo.append(run)
                    log(
                        f"echo {mode.name:13s} {name:9s} #{r}: "
                        f"{run.messages / max(run.seconds, 1e-9):12.0f}/s  server cpu "
                        f"{run.server_cpu:.2f} s  load cpu {run.load_cpu:.2f} s  "
                        f"errors {run.errors} {run.first_error}"
                    )


def run_idle(
    res: Results, gen: LoadGen, conns: int, repeat: int, log: Callable[[str], None]
) -> None:
    server_cpus, load_cpus = cpu_plan()
    warm = Mode("warm-up", "connect", ["--conns", "2"], "conn", "", "")
    for r in range(repeat):
        for name, argv in SERVERS.items():
            if name in res.unavailable:
                continue
            try:
                server = Server(name, argv, server_cpus)
            except RuntimeError as exc:
                res.unavailable[name] = str(exc).splitlines()[0][:200]
                continue
            try:
                # Warm up (first connections load code and fill caches), then settle.
                LoadGen(gen.exe, 0.0, 0.2).measure(server, warm, server_cpus, load_cpus)
                time.sleep(0.3)
                before = rss_bytes(server.pid)
                proc = subprocess.Popen(
                    gen.idle_argv(server.host, server.port, conns),
                    cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True,
                )  # fmt: skip
                with suppress(OSError):
                    os.sched_setaffinity(proc.pid, load_cpus)
                line = _readline(proc, 120.0)
                opened = int(line.split()[1]) if line.startswith("IDLE ") else 0
                time.sleep(0.5)
                after = rss_bytes(server.pid)
                out, _ = proc.communicate("close\n", timeout=60.0)
                result = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
                run = IdleRun(name, r, opened, before, after, int(result.get("errors", 1)))
                res.idle.append(run)
                log(
                    f"idle {name:9s} #{r}: {opened} connections, "
                    f"{run.per_conn / 1024:.2f} KiB each (errors {run.errors})"
                )
            finally:
                server.stop()


# ----------------------------------------------------------------------------------------
#   The report
# ----------------------------------------------------------------------------------------
PER = {"msg": (1e5, "s / 100k msg"), "GB": (1e9, "s / GB"), "conn": (1e5, "s / 100k conn")}


def _cpu_per_unit(run: EchoRun, unit: str) -> float:
    scale, _ = PER[unit]
    return run.server_cpu / run.messages * scale if run.messages else float("nan")


def _throughput(value: float, unit: str) -> str:
    if unit == "GB":
        return f"{value / 1e6:.0f} MB/s"
    if unit == "conn":
        return f"{value:.0f} conn/s"
    return f"{value / 1e3:.1f} k msg/s"


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def echo_summary(res: Results, quick: bool) -> dict[tuple[str, str], dict[str, float]]:
    """(mode, server) -> median figures and spread."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for mode in modes(quick):
        for server in SERVERS:
            runs = [e for e in res.echo if e.mode == mode.name and e.server == server]
            if not runs:
                continue
            cpus = [_cpu_per_unit(e, mode.unit) for e in runs]
            out[(mode.name, server)] = {
                "rate": _med([e.messages / e.seconds for e in runs]),
                "cpu": _med(cpus),
                "cpu_min": min(cpus),
                "cpu_max": max(cpus),
                "p50": _med([e.p50_us for e in runs if e.p50_us is not None]),
                "p99": _med([e.p99_us for e in runs if e.p99_us is not None]),
                "errors": sum(e.errors for e in runs),
                "n": len(runs),
                # Shares of the window: the server's own CPU, the load generator's, and
                # everyone else's on the server's core(s).
                "server_busy": _med([e.server_cpu / e.seconds for e in runs if e.seconds]),
                "load_busy": _med([e.load_cpu / e.seconds for e in runs if e.seconds]),
                "others": _med(
                    [max(0.0, e.core_busy - e.server_cpu) / e.seconds for e in runs if e.seconds]
                ),
            }
    return out


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or not b or a != a or b != b:
        return "-"
    return f"{a / b:.2f}x"


def _fmt_us(v: float) -> str:
    if v != v:
        return "-"
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs"


def idle_summary(res: Results) -> dict[str, float]:
    """server -> median bytes per idle connection."""
    per: dict[str, float] = {}
    for server in SERVERS:
        runs = [i for i in res.idle if i.server == server]
        if runs:
            per[server] = _med([i.per_conn for i in runs])
    return per


def gen_measured(res: Results) -> bool:
    """Whether the load generator's own CPU was measured (the compiled one)."""
    return any(e.load_cpu for e in res.echo)


def summary_table(
    res: Results,
    quick: bool,
    summary: dict[tuple[str, str], dict[str, float]],
    idle_per: dict[str, float],
) -> list[str]:
    """Issue 14's table: server CPU per unit of work, per mode, and the fsmio ratios."""
    shown = [m for m in modes(quick) if any((m.name, s) in summary for s in SERVERS)]
    head = ["server", *(f"{m.column} ({PER[m.unit][1]})" for m in shown)]
    if idle_per:
        head.append("idle KiB/conn")
    lines = [
        "## Summary",
        "",
        (
            "Server CPU seconds per unit of work (median of the runs; lower is better), and "
            "KiB of RSS per idle connection. The ratio rows divide fsmio's figure by the "
            "peer's of the same run."
        ),
        "",
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * (len(head) - 1),
    ]

    def cell(mode: Mode, server: str) -> float | None:
        return summary.get((mode.name, server), {}).get("cpu")

    for server in SERVERS:
        row = [LABELS.get(server, server)]
        for mode in shown:
            v = cell(mode, server)
            row.append("-" if v is None else f"{v:.3f}" if v < 10 else f"{v:.2f}")
        if idle_per:
            v = idle_per.get(server)
            row.append("-" if v is None else f"{v / 1024:.2f}")
        lines.append("| " + " | ".join(row) + " |")
    for base in ("asyncio", "uvloop"):
        if "fsmio" not in SERVERS or base not in SERVERS:
            continue
        row = [f"**fsmio / {base}**"]
        row += [_ratio(cell(mode, "fsmio"), cell(mode, base)) for mode in shown]
        if idle_per:
            row.append(_ratio(idle_per.get("fsmio"), idle_per.get(base)))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    return lines


def busy_notes(res: Results, summary: dict[tuple[str, str], dict[str, float]]) -> list[str]:
    """Warnings: the Python load generator stood in; the machine was busy."""
    notes = []
    if not res.machine.get("loadgen_compiled", True):
        notes.append(
            "**FALLBACK LOAD GENERATOR**: the Python load generator (loadgen.py; no C "
            "compiler, or --python-loadgen) drove the load. It saturates its own core before "
            "the faster "
            "servers saturate theirs, so the servers idle part of the time and the ratios "
            "between them are COMPRESSED towards 1.00x. Install a C compiler (cc) and rerun."
        )
    cores = res.machine.get("usable_cores") or 1
    for when in ("loadavg_before", "loadavg_after"):
        with suppress(ValueError, IndexError):
            if float(res.machine.get(when, "").split()[0]) >= 0.5 * cores:
                notes.append(
                    f"Busy machine: the load average was {res.machine['loadavg_before']} "
                    f"before the run and {res.machine['loadavg_after']} after it ({cores} "
                    "usable cores): other processes shared the CPUs, so absolute figures "
                    "and throughputs are noisier than on a quiet machine. CPU time per "
                    "message is the robust figure, and the ratios within this run (servers "
                    "alternated across repeats) are what to compare."
                )
                break
    busy = [v["server_busy"] for v in summary.values() if v.get("server_busy") is not None]
    if busy and _med(busy) < 0.8:
        notes.append(
            f"The servers were not saturated: their median CPU share of the window was "
            f"{_med(busy):.0%} (see *server core*; *others* says who had the rest). A server "
            "that waits does smaller batches per wake-up, so its CPU per message is inflated "
            "and the ratios between servers are compressed; on a quiet machine both are "
            "closer to what the servers really cost."
        )
    noisy = sorted(
        {f"{mode}/{srv} {v['others']:.0%}" for (mode, srv), v in summary.items()
         if v.get("others", 0.0) >= 0.10}
    )  # fmt: skip
    if noisy:
        notes.append(
            "Other processes took 10 % or more of the server's core during: " + ", ".join(noisy)
        )
    return notes


def render(res: Results, quick: bool, elapsed: float) -> str:
    m = res.machine
    lines = [
        f"# fsmio benchmark - {m['date']}",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {m['cpu']} ({m['cores']} cores, {m['usable_cores']} usable) |",
        f"| Python | {m['python']} |",
        f"| uvloop / Twisted | {m['uvloop']} / {m['twisted']} |",
        f"| load generator | {m['loadgen']} |",
        f"| load average before / after | {m['loadavg_before']} / {m['loadavg_after']} |",
        f"| automat / transitions | {m['automat']} / {m['transitions']} |",
        f"| fsmio | {m['fsmio']} (commit {m['commit'] or '?'}) |",
        f"| kernel | {m['kernel']} |",
        (
            f"| mode | {'QUICK (smoke run: the figures mean nothing)' if quick else 'full'}"
            f", {elapsed:.0f} s |"
        ),
        "",
    ]
    if res.unavailable:
        lines.append("Not available in this run:")
        lines.extend(f"- **{n}**: {why}" for n, why in res.unavailable.items())
        lines.append("")
    summary = echo_summary(res, quick)
    idle_per = idle_summary(res)
    if summary or idle_per:
        lines += summary_table(res, quick, summary, idle_per)
    if summary:
        server_cpus, load_cpus = cpu_plan()
        lines += [
            "## Echo servers",
            "",
            (
                f"Servers pinned to CPU {sorted(server_cpus)}, load generator "
                f"({m['loadgen']}) to CPU {sorted(load_cpus)}. Figures are medians of "
                f"{max(v['n'] for v in summary.values())} runs; *server CPU* is user+system "
                "seconds of the server process from /proc/PID/stat over the measured window, "
                "with the [min-max] of the runs. Ratios divide the server CPU figure by raw "
                "asyncio's and raw uvloop's in the same run (lower is better). *server core*: "
                "the server's CPU over the window (near 100 %: saturated, as it should be); "
                "*load gen*: the load generator's own CPU over the window (far below 100 %: "
                "never the limit); *others*: other processes on the server's core."
            ),
            "",
        ]
        for mode in modes(quick):
            rows = [(s, summary[(mode.name, s)]) for s in SERVERS if (mode.name, s) in summary]
            if not rows:
                continue
            _, label = PER[mode.unit]
            base_a = summary.get((mode.name, "asyncio"), {}).get("cpu")
            base_u = summary.get((mode.name, "uvloop"), {}).get("cpu")
            lines += [
                f"### {mode.title}",
                "",
                (
                    f"| server | throughput | p50 | p99 | server CPU ({label}) | vs asyncio "
                    "| vs uvloop | server core | load gen | others | errors |"
                ),
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for server, v in rows:
                lat = mode.unit != "GB"
                load = f"{v['load_busy']:.0%}" if gen_measured(res) else "-"
                lines.append(
                    f"| {server} | {_throughput(v['rate'], mode.unit)} "
                    f"| {_fmt_us(v['p50']) if lat else '-'} | {_fmt_us(v['p99']) if lat else '-'} "
                    f"| {v['cpu']:.3f} [{v['cpu_min']:.3f}-{v['cpu_max']:.3f}] "
                    f"| {_ratio(v['cpu'], base_a)} | {_ratio(v['cpu'], base_u)} "
                    f"| {v['server_busy']:.0%} | {load} | {v['others']:.0%} "
                    f"| {int(v['errors'])} |"
                )
            lines.append("")
    if res.idle:
        lines += [
            "## Idle connections",
            "",
            (
                "RSS of a fresh server with the connections open (each echoed one byte "
                "first) minus its RSS before them, per connection."
            ),
            "",
            "| server | connections | KiB per connection (runs) | vs asyncio | vs uvloop |",
            "|---|---:|---:|---:|---:|",
        ]
        per = idle_per
        for server, value in per.items():
            runs = [i for i in res.idle if i.server == server]
            spread = ", ".join(f"{i.per_conn / 1024:.2f}" for i in runs)
            lines.append(
                f"| {server} | {min(i.connections for i in runs)} | **{value / 1024:.2f}** "
                f"({spread}) | {_ratio(value, per.get('asyncio'))} "
                f"| {_ratio(value, per.get('uvloop'))} |"
            )
        lines.append("")
    if res.micro:
        lines += [
            "## In-process micro-benchmarks",
            "",
            (
                "One process pinned to one CPU; the best of the rounds (the least "
                "disturbed) and every round's figure."
            ),
            "",
            "| benchmark | implementation | best | rounds | fsmio ÷ this |",
            "|---|---|---:|---|---:|",
        ]
        fsmio_best = {r.bench: r.best for r in res.micro if r.impl.startswith("fsmio")}
        for r in res.micro:
            if r.note:
                lines.append(f"| {r.bench} | {r.impl} | {r.note} | | |")
            elif r.extra:
                extra = ", ".join(f"{k} {_num(v)}" for k, v in r.extra.items())
                lines.append(f"| {r.bench} | {r.impl} | {extra} | | |")
            else:
                rounds = ", ".join(micro.format_rate(x) for x in r.rates)
                vs = "" if r.impl.startswith("fsmio") else _ratio(fsmio_best.get(r.bench), r.best)
                lines.append(
                    f"| {r.bench} | {r.impl} | {micro.format_rate(r.best)} {r.unit} "
                    f"| {rounds} | {vs} |"
                )
        lines.append("")
    lines += targets(res, summary)
    notes = busy_notes(res, summary) + res.notes
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)


def targets(res: Results, summary: dict[tuple[str, str], dict[str, float]]) -> list[str]:
    """The issue's targets, each with the measured figure and met / NOT met."""
    rows: list[tuple[str, str, float | None, float, bool]] = []  # (what, fig, value, lim, le)

    def ratio(mode: str, base: str) -> float | None:
        a = summary.get((mode, "fsmio"), {}).get("cpu")
        b = summary.get((mode, base), {}).get("cpu")
        return a / b if a is not None and b else None

    for mode, limit in (("pingpong-100", 0.9), ("pipelined", 0.9), ("stream", 0.9),
                        ("connect", 1.0)):  # fmt: skip
        rows.append((f"server CPU, fsmio / raw asyncio, {mode}", "x", ratio(mode, "asyncio"),
                     limit, True))  # fmt: skip
    rows.extend(
        (f"server CPU, fsmio / raw uvloop, {mode}", "x", ratio(mode, "uvloop"), 1.15, True)
        for mode in ("pingpong-100", "pipelined")
    )
    idle = [i.per_conn for i in res.idle if i.server == "fsmio"]
    rows.append(("RSS per idle connection, fsmio", "KiB",
                 _med(idle) / 1024 if idle else None, 2.5, True))  # fmt: skip
    best = {(r.bench, r.impl): r.best for r in res.micro if r.rates}
    send = best.get(("toggle", "fsmio send_event"))
    automat = max(
        (v for (b, i), v in best.items() if b == "toggle" and i.startswith("automat")),
        default=None,
    )
    rows.append(("send_event, two-state toggle", "M events/s",
                 send / 1e6 if send else None, 2.0, False))  # fmt: skip
    rows.append(("send_event / fastest automat, same run", "x",
                 send / automat if send and automat else None, 1.5, False))  # fmt: skip
    for bench in ("post_event (running uvloop loop)", "post_event (drained by _loop)"):
        post = best.get((bench, "fsmio"))
        rows.append((bench, "M events/s", post / 1e6 if post else None, 1.0, False))
    lines = [
        "## Targets (issue 4)",
        "",
        "| target | measured | limit | met |",
        "|---|---:|---:|---|",
    ]
    for what, unit, value, limit, le in rows:
        if value is None or value != value:
            lines.append(f"| {what} | not measured | {'≤' if le else '≥'} {limit} {unit} | - |")
            continue
        ok = value <= limit if le else value >= limit
        lines.append(
            f"| {what} | {value:.2f} {unit} | {'≤' if le else '≥'} {limit} {unit} "
            f"| {'yes' if ok else '**NO**'} |"
        )
    lines.append("")
    return lines


# ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fsmio benchmark: echo servers and micro")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny counts")
    parser.add_argument("--out", help="Markdown file to write (default: print only)")
    parser.add_argument("--repeat", type=int, help="echo repeats (default 3; quick 1)")
    parser.add_argument("--idle", type=int, help="idle connections (default 10000; quick 50)")
    parser.add_argument("--no-echo", action="store_true", help="skip the echo servers")
    parser.add_argument("--no-idle", action="store_true", help="skip the idle connections")
    parser.add_argument("--no-micro", action="store_true", help="skip the micro-benchmarks")
    parser.add_argument(
        "--servers",
        help=f"comma-separated servers among {','.join([*SERVERS, *EXTRA_SERVERS])} "
        f"(default: {','.join(SERVERS)})",
    )
    parser.add_argument(
        "--modes",
        help=f"comma-separated echo modes among {','.join(m.name for m in _all_modes(False))} "
        f"(default: all but {','.join(sorted(EXTRA_MODES))})",
    )
    parser.add_argument(
        "--seconds", type=float, help="measured seconds per echo run (default 3; quick 0.3)"
    )
    parser.add_argument(
        "--python-loadgen",
        action="store_true",
        help="drive the load with the Python load generator (the fallback: ratios compressed)",
    )
    args = parser.parse_args(argv)
    if args.modes:
        wanted_modes = {m.strip() for m in args.modes.split(",") if m.strip()}
        unknown_modes = wanted_modes - {m.name for m in _all_modes(False)}
        if unknown_modes:
            parser.error(f"unknown modes: {sorted(unknown_modes)}")
        WANTED_MODES.update(wanted_modes)
    repeat = args.repeat or (1 if args.quick else 3)
    idle = args.idle or (50 if args.quick else 10_000)
    if args.servers:
        wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
        known = {**SERVERS, **EXTRA_SERVERS}
        unknown = [s for s in wanted if s not in known]
        if unknown:
            parser.error(f"unknown servers: {unknown}")
        SERVERS.clear()
        SERVERS.update({name: known[name] for name in wanted})
    limit = raise_nofile()
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    res = Results(machine_info())
    if limit < idle + 100:
        res.notes.append(
            f"RLIMIT_NOFILE is {limit}: {idle} idle connections need more; measured "
            f"{limit - 100} instead."
        )
        idle = max(1, limit - 100)
    _, load_cpus = cpu_plan()
    with suppress(OSError):  # this process only waits: keep it off the servers' CPU
        os.sched_setaffinity(0, load_cpus)
    seconds = args.seconds or (0.3 if args.quick else 3.0)
    warmup = 0.1 if args.quick else 0.5
    with tempfile.TemporaryDirectory(prefix="fsmio-bench-") as workdir:
        exe: str | None = None
        if not args.python_loadgen:
            try:
                exe = build_c("echoload.c", workdir)
            except NoCompilerError as exc:
                log(f"!!! {exc}")
        gen = LoadGen(exe, warmup, seconds)
        res.machine["loadgen"] = gen.name
        res.machine["loadgen_compiled"] = gen.compiled
        if not gen.compiled:
            log(
                "!!! FALLBACK: the Python load generator drives the load; it is the limit "
                "before the servers are, so the ratios of this run are COMPRESSED towards 1.00x"
            )
        if not args.no_echo:
            run_echo(res, gen, args.quick, repeat, log)
        if not args.no_idle:
            run_idle(res, gen, idle, 1 if args.quick else repeat, log)
    if not args.no_micro:
        server_cpus, _ = cpu_plan()
        with suppress(OSError):
            os.sched_setaffinity(0, server_cpus)
        res.micro = micro.run_all(args.quick, log=log)
    res.machine["loadavg_after"] = loadavg()
    text = render(res, args.quick, time.monotonic() - t0)
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        raw = {
            "machine": res.machine,
            "echo": [asdict(e) for e in res.echo],
            "idle": [asdict(i) | {"per_conn": i.per_conn} for i in res.idle],
            "micro": [asdict(m) for m in res.micro],
            "unavailable": res.unavailable,
        }
        out.with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n")
        log(f"wrote {out} and {out.with_suffix('.json')}")
    errors = sum(e.errors for e in res.echo) + sum(i.errors for i in res.idle)
    if errors:
        log(f"{errors} verification errors: see the errors columns")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
