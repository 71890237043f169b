"""WebSocket echo benchmark: GWebSocket against other Python WebSocket servers, one run.

    python -m benchmarks.ws_bench [--servers floor,fsmio,fsmio-asgi,websockets,aiohttp,uvicorn]
        [--conns 100] [--inflight 4] [--seconds 5] [--repeat 3] [--out FILE.md]

Builds the compiled load generator (``benchmarks/wsload.c``, with ``cc -O2``) in a
temporary directory, then for each server (``benchmarks/ws_servers.py``), in turn and
``--repeat`` times: starts it pinned to CPU 0, runs the load pinned to CPU 1 (``--conns``
connections, ``--inflight`` 64-byte text messages in flight on each, every echoed byte
checked), and reads the server's CPU time from ``/proc/PID/stat`` over the measured window
(after a warm-up second).  Prints a Markdown table: echoed messages per second and
**server CPU seconds per 100 000 messages** (the median of the repeats), and the ratio to
the floor (a bare uvloop Protocol on websockets' sans-IO layer).  A server that is not
installed is reported so.  Ratios, not absolute figures: the machines here are shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.common import NoCompilerError, build_c, cpu_seconds

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODULES = {"aiohttp": "aiohttp", "uvicorn": "uvicorn", "websockets": "websockets"}


def build_loadgen(workdir: str) -> str:
    try:
        return build_c("wsload.c", workdir)
    except NoCompilerError as exc:
        raise SystemExit(f"ws_bench: {exc}") from None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > cpu:
        return ["taskset", "-c", str(cpu)]
    return []


def _installed(server: str) -> bool:
    module = MODULES.get(server)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def run_one(server: str, exe: str, args: argparse.Namespace) -> dict[str, Any]:
    port = _free_port()
    proc = subprocess.Popen(
        [*_pin(0), sys.executable, "-m", "benchmarks.ws_servers", server, "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"{server}: did not start ({line!r})")
        load = subprocess.Popen(
            [
                *_pin(1),
                exe,
                "127.0.0.1",
                str(port),
                str(args.conns),
                str(args.inflight),
                "1",
                str(args.seconds),
                "64",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert load.stdout is not None
        start = load.stdout.readline().strip()
        cpu0 = cpu_seconds(proc.pid)
        stop = load.stdout.readline().split()
        cpu1 = cpu_seconds(proc.pid)
        load.wait(timeout=30)
        if start != "START" or len(stop) != 4 or stop[0] != "STOP":
            raise RuntimeError(f"{server}: load generator failed ({start!r}, {stop!r})")
        messages, seconds, errors = int(stop[1]), float(stop[2]), int(stop[3])
        return {
            "messages": messages,
            "seconds": seconds,
            "errors": errors,
            "cpu": cpu1 - cpu0,
            "msgs_per_s": messages / seconds,
            "cpu_per_100k": (cpu1 - cpu0) / messages * 100_000 if messages else float("nan"),
        }
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def render(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> str:
    floor = results.get("floor")
    floor_cpu = statistics.median(r["cpu_per_100k"] for r in floor) if floor else None
    title = (
        f"WebSocket echo, 64-byte text messages, {args.conns} connections x {args.inflight} "
        f"in flight, {args.seconds:g} s measured per run, median of {args.repeat}; server on "
        "CPU 0, compiled load generator on CPU 1.  "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs."
    )
    command = "python -m benchmarks.ws_bench " + " ".join(sys.argv[1:])
    lines = [
        f"# WebSocket echo benchmark ({time.strftime('%Y-%m-%d', time.gmtime())})",
        "",
        f"`{command.strip()}`",
        "",
        title,
        "",
        "| server | messages/s | server CPU s / 100k msgs | vs floor | errors |",
        "|---|---:|---:|---:|---:|",
    ]
    for server in args.servers:
        runs = results.get(server)
        if runs is None:
            lines.append(f"| {server} | not installed | | | |")
            continue
        cpu = statistics.median(r["cpu_per_100k"] for r in runs)
        rate = statistics.median(r["msgs_per_s"] for r in runs)
        ratio = f"{cpu / floor_cpu:.2f}x" if floor_cpu else "-"
        errors = sum(r["errors"] for r in runs)
        lines.append(f"| {server} | {rate:,.0f} | {cpu:.2f} | {ratio} | {errors} |")
    lines += ["", *_targets(results)]
    return "\n".join(lines) + "\n"


def _targets(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Issue 11's targets, from this run: GWebSocket <= 1.3 s/100k; GAsgiServer's
    websocket scope <= 0.8x uvicorn with the same ASGI app."""

    def cpu(server: str) -> float | None:
        runs = results.get(server)
        return statistics.median(r["cpu_per_100k"] for r in runs) if runs else None

    rows = ["| target | measured | limit | met |", "|---|---:|---:|---|"]
    native, asgi, uvicorn = cpu("fsmio"), cpu("fsmio-asgi"), cpu("uvicorn")
    if native is not None:
        met = "met" if native <= 1.3 else "**not met**"
        rows.append(f"| GWebSocket: server CPU s/100k | {native:.2f} | <= 1.3 | {met} |")
    if asgi is not None and uvicorn:
        ratio = asgi / uvicorn
        met = "met" if ratio <= 0.8 else "**not met**"
        rows.append(f"| GAsgiServer websocket scope / uvicorn | {ratio:.2f}x | <= 0.8x | {met} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--servers", default="floor,fsmio,fsmio-asgi,websockets,aiohttp,uvicorn")
    parser.add_argument("--conns", type=int, default=100)
    parser.add_argument("--inflight", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", help="write the Markdown table (and a .json) there")
    args = parser.parse_args(argv)
    args.servers = [s for s in args.servers.split(",") if s]
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="ws_bench-") as workdir:
        exe = build_loadgen(workdir)
        for _ in range(args.repeat):
            for server in args.servers:
                if not _installed(server):
                    continue
                run = run_one(server, exe, args)
                results.setdefault(server, []).append(run)
                print(f"{server}: {json.dumps(run)}", file=sys.stderr, flush=True)
                time.sleep(0.5)
    table = render(results, args)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)
        with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
            json.dump(results, f, indent=1)
    return 1 if any(r["errors"] for runs in results.values() for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
