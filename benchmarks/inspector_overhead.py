"""What the live inspector costs the echo server when nobody watches (and when one does).

    python -m benchmarks.inspector_overhead [--repeat 6] [--seconds 3] [--no-viewer-run] \\
        [--out benchmarks/results/2026-12-02-inspector-overhead.md]

Three echo servers run side by side (``benchmarks.fsmio_echo``'s ``Echo``: a GServerSock,
its GSocks and a user gobj, on uvloop), each its own process: ``plain`` (no inspector),
``inspector`` (a ``GInspector`` created on 127.0.0.1, nobody connected) and, unless
``--no-viewer-run``, ``watched`` (the same with one feed open, read by this process).
The same load generator (``benchmarks.loadgen``, pipelined: 100 connections x 16 messages
of 64 bytes in flight) drives each in turn; the runs alternate (plain, inspector, watched,
then the reverse order, ...) so that the drift of a busy machine falls on all alike.  For
each run the server's CPU seconds (user + system, from /proc) are divided by the messages
echoed: CPU seconds per 100 000 messages.  The ratio is taken per round (each variant
against the plain run of the same round) and its median and range are shown.

``--serve [--inspect]`` runs one such server (prints ``READY HOST PORT``; with
``--inspect`` also ``INSPECTOR URL``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from benchmarks.common import cpu_seconds, raise_nofile

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
LOAD = ["--mode", "pipelined", "--conns", "100", "--inflight", "16", "--size", "64"]


def serve(inspect: bool) -> int:
    from benchmarks.fsmio_echo import Echo
    from fsmio import GAplic
    from fsmio.gobjs.c_srv_sock import GServerSock
    from fsmio.inspector import GInspector

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    raise_nofile()
    with GAplic("fsmio_echo") as gaplic:
        echo = gaplic.create_gobj("echo", Echo, None)
        server = gaplic.create_gobj(
            "server", GServerSock, echo, host="127.0.0.1", port=0, backlog=4096
        )
        if inspect:
            inspector = gaplic.create_gobj("inspector", GInspector, gaplic, port=0)
            print(f"INSPECTOR {inspector.url}", flush=True)
        print(f"READY 127.0.0.1 {server.config.port}", flush=True)
        gaplic.start()
    return 0


class Server:
    def __init__(self, name: str, inspect: bool) -> None:
        self.name = name
        argv = [PY, "-m", "benchmarks.inspector_overhead", "--serve"]
        self.proc = subprocess.Popen(
            [*argv, *(["--inspect"] if inspect else [])],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.url = ""
        assert self.proc.stdout is not None
        for _ in range(3):
            line = self.proc.stdout.readline().strip()
            if line.startswith("INSPECTOR "):
                self.url = line.split()[1]
            if line.startswith("READY "):
                self.port = int(line.split()[2])
                break
        else:
            self.stop()
            raise RuntimeError(f"{name}: no READY line")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Viewer:
    """One page's feed, read as fast as it comes, in a thread of this process."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(url.replace("http://", "ws://") + "feed", open_timeout=10)
        self.messages = 0
        self.events = 0
        self.dropped = 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        with suppress(ConnectionClosed, OSError):
            for data in self.ws:
                self.messages += 1
                if isinstance(data, str) and data.startswith('{"type":"events"'):
                    message = json.loads(data)
                    self.events += len(message["items"])
                    self.dropped += message["dropped"]

    def close(self) -> None:
        self.ws.close()
        self.thread.join(10)


def one_run(server: Server, seconds: float) -> dict[str, Any]:
    before = cpu_seconds(server.proc.pid)
    done = subprocess.run(
        [PY, "-m", "benchmarks.loadgen", "--port", str(server.port), *LOAD,
         "--seconds", str(seconds)],
        cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60,
    )  # fmt: skip
    cpu = cpu_seconds(server.proc.pid) - before
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed against {server.name}: {done.stderr[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["errors"]:
        raise RuntimeError(f"{server.name}: {result['errors']} echo errors")
    messages = int(result["messages"])
    return {"cpu": cpu, "messages": messages, "per100k": cpu / messages * 100_000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--inspect", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=6, help="rounds (default 6)")
    parser.add_argument("--seconds", type=float, default=3.0, help="load per run (default 3)")
    parser.add_argument("--no-viewer-run", action="store_true", help="skip the watched server")
    parser.add_argument("--out", help="write the Markdown report there too")
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.inspect)

    names = ["plain", "inspector"] + ([] if args.no_viewer_run else ["watched"])
    servers = {name: Server(name, inspect=name != "plain") for name in names}
    viewer: Viewer | None = None
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    started = time.time()
    try:
        if "watched" in servers:
            viewer = Viewer(servers["watched"].url)
        for round_no in range(args.repeat):
            order = names if round_no % 2 == 0 else list(reversed(names))
            for name in order:
                run = one_run(servers[name], args.seconds)
                runs[name].append(run)
                print(
                    f"round {round_no + 1} {name:9s} {run['per100k']:.3f} CPU s/100k msgs "
                    f"({run['messages']} msgs)",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if viewer is not None:
            viewer.close()
        for server in servers.values():
            server.stop()
    report = render(args, runs, viewer, time.time() - started)
    print(report)
    if args.out:
        Path(args.out).write_text(report, encoding="utf-8")
    return 0


def render(
    args: argparse.Namespace,
    runs: dict[str, list[dict[str, Any]]],
    viewer: Viewer | None,
    elapsed: float,
) -> str:
    plain = [r["per100k"] for r in runs["plain"]]
    lines = [
        "# Inspector overhead: the echo server with and without a GInspector",
        "",
        (
            f"`python -m benchmarks.inspector_overhead --repeat {args.repeat} "
            f"--seconds {args.seconds}` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{elapsed:.0f} s."
        ),
        "",
        (
            f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, {platform.system()} {platform.release()}; load "
            f"average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())} (what else ran "
            "on the cores).  The runs alternate (plain, inspector, watched, then the reverse "
            "order) so that drift falls on every variant alike, and the ratio is taken within "
            "each round."
        ),
        "",
        (
            "Load: `benchmarks.loadgen` pipelined, 100 connections x 16 messages of 64 bytes in "
            f"flight, {args.seconds:g} s per run; server CPU (user + system) per 100 000 "
            "messages echoed."
        ),
        "",
        (
            "| server | runs | median CPU s / 100k msgs | min - max | ratio to plain "
            "(median of rounds) | ratio range |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for name, label in (
        ("plain", "`plain`: no inspector"),
        ("inspector", "`inspector`: GInspector created, nobody watching"),
        ("watched", "`watched`: GInspector with one feed open"),
    ):
        if name not in runs or not runs[name]:
            continue
        values = [r["per100k"] for r in runs[name]]
        ratios = [v / p for v, p in zip(values, plain, strict=True)]
        lines.append(
            f"| {label} | {len(values)} | {statistics.median(values):.3f} | "
            f"{min(values):.3f} - {max(values):.3f} | "
            f"{statistics.median(ratios):.3f} | {min(ratios):.3f} - {max(ratios):.3f} |"
        )
    noise = (max(plain) - min(plain)) / statistics.median(plain) if plain else 0.0
    lines += [
        "",
        (
            f"Run-to-run spread of the plain server alone: {noise * 100:.1f} % of its median "
            "(max - min)."
        ),
    ]
    if viewer is not None:
        lines.append(
            f"The watched server's viewer received {viewer.messages} messages holding "
            f"{viewer.events} events, and was told of {viewer.dropped} dropped (coalescing: "
            "at most 10 flushes a second, 1000 events each)."
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
