"""``fsmio run --workers N``: echo throughput with 1 worker and with N, in one run.

    python -m benchmarks.workers [--workers 2] [--seconds 5] [--loaders 2] [--conns 100]
    python -m benchmarks.workers --http [--workers 2] [--seconds 5] [--loaders 2] [--conns 50]

Runs ``examples/echo_server.toml`` on a free port with ``fsmio run --workers 1``, then with
``--workers N`` (``SO_REUSEPORT``), each time under the same load: ``--loaders`` load
generator processes (``benchmarks.loadgen``, pipelined mode, every byte verified), each
with ``--conns`` connections, for ``--seconds``.  Prints round trips per second for each
and the ratio.  The load generators need CPU too: on a machine with few cores they, not
the workers, may be the limit, and the ratio then says little about the workers.

``--http``: ``fsmio serve benchmarks.hello_asgi:app --port 0 --workers N`` instead (the
port read from its ``READY HOST PORT`` line), under ``wrk`` (``/usr/bin/wrk``, Debian's
package ``wrk``; HTTP/1.1 keep-alive) with ``--loaders`` threads and ``--loaders * --conns``
connections.  Prints requests per second.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port} after {timeout} s")


def measure(workers: int, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    text = (ROOT / "examples" / "echo_server.toml").read_text()
    text = text.replace("port = 7000", f"port = {port}").replace(
        'level = "INFO"', 'level = "WARNING"'
    )
    with tempfile.TemporaryDirectory(prefix="fsmio-bench-workers-") as tmp:
        config = Path(tmp) / "echo.toml"
        config.write_text(text)
        server = subprocess.Popen(
            [sys.executable, "-m", "fsmio", "run", str(config), "--workers", str(workers)],
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_listening(port)
            time.sleep(1.0)  # every worker bound
            loaders = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.loadgen",
                        "--port",
                        str(port),
                        "--mode",
                        "pipelined",
                        "--conns",
                        str(args.conns),
                        "--seconds",
                        str(args.seconds),
                    ],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for _ in range(args.loaders)
            ]
            results = []
            for loader in loaders:
                out, _ = loader.communicate(timeout=args.seconds + 60)
                results.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    messages = sum(r["messages"] for r in results)
    seconds = max(r["seconds"] for r in results)
    return {
        "workers": workers,
        "rate": messages / seconds if seconds else 0.0,
        "errors": sum(r["errors"] for r in results),
    }


def read_ready(server: subprocess.Popen[str], timeout: float = 60.0) -> int:
    """The port of the ``READY HOST PORT`` line of ``fsmio serve --workers``."""
    assert server.stdout is not None
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([server.stdout], [], [], left)
        if not readable:
            break
        line = server.stdout.readline()
        if not line:
            break
        if line.startswith("READY "):
            return int(line.split()[2])
    raise SystemExit(f"fsmio serve --workers: no READY line after {timeout} s")


def measure_http(workers: int, args: argparse.Namespace) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("--http needs wrk (Debian: apt-get install wrk)")
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "fsmio", "serve", "benchmarks.hello_asgi:app"),
            *("--port", "0", "--workers", str(workers), "--log-level", "warning"),
            *("--lifespan", "off"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        port = read_ready(server)
        result = subprocess.run(
            [
                wrk,
                *("-t", str(args.loaders), "-c", str(args.loaders * args.conns)),
                *("-d", f"{max(1, round(args.seconds))}s"),
                f"http://127.0.0.1:{port}/",
            ],
            capture_output=True,
            text=True,
            timeout=args.seconds + 60,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        if server.stdout is not None:
            server.stdout.close()
    rate = re.search(r"Requests/sec:\s*([\d.]+)", result.stdout)
    if result.returncode or rate is None:
        raise SystemExit(f"wrk failed: {result.stdout}{result.stderr}")
    errors = sum(
        int(n)
        for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", result.stdout)
        + re.findall(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    )
    return {"workers": workers, "rate": float(rate.group(1)), "errors": errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--loaders", type=int, default=2)
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument(
        "--http", action="store_true", help="fsmio serve (ASGI) under wrk instead of echo"
    )
    args = parser.parse_args(argv)
    how = measure_http if args.http else measure
    one = how(1, args)
    many = how(args.workers, args)
    ratio = many["rate"] / one["rate"] if one["rate"] else 0.0
    unit = "requests/s" if args.http else "round trips/s"
    print(f"| workers | {unit} | errors |\n|---|---|---|")
    for r in (one, many):
        print(f"| {r['workers']} | {r['rate']:,.0f} | {r['errors']} |")
    print(
        f"\n{args.workers} workers / 1 worker: {ratio:.2f} ({os.cpu_count()} cores, "
        f"{args.loaders} load generators of {args.conns} connections, {args.seconds:g} s)"
    )
    return 0 if one["errors"] == 0 and many["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
