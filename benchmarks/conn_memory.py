"""Where the memory of an idle fsmio connection goes: Python heap per connection, by line.

    python -m benchmarks.conn_memory [--conns 2000] [--top 25] [--frames 1] [--objects]

Runs the benchmark's echo server in-process (GServerSock + GSock + user gobj, on the
GAplic's default loop: uvloop when installed), opens ``--conns`` loopback connections to
it from a *separate* process (so the figure is the server's alone), each echoing one byte,
and prints the tracemalloc difference per connection grouped by the line that allocated it
(``--frames N`` groups by the last N frames instead, innermost first).  ``--objects`` adds
the sizes of one connection's own objects (``sys.getsizeof``; what uvloop allocates in C is
only seen in the by-line figure, on the line that called it).

The RSS figure of ``benchmarks.run`` (idle mode) follows this heap figure closely: for
raw uvloop both are about 1.25 KiB per connection.
"""

from __future__ import annotations

import argparse
import gc
import linecache
import select
import socket
import subprocess
import sys
import tracemalloc
from typing import Any

from benchmarks.common import raise_nofile
from benchmarks.fsmio_echo import Echo
from fsmio import GAplic
from fsmio.gobjs.c_srv_sock import GServerSock


def clients(port: int, n: int) -> int:
    """The client process: open ``n`` connections, echo one byte on each, print DONE, and
    keep them open until a line arrives on stdin."""
    raise_nofile()
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    for s in socks:
        s.sendall(b"x")
    for s in socks:
        s.settimeout(10.0)
        if s.recv(1) != b"x":
            raise SystemExit("no echo")
    print("DONE", flush=True)
    sys.stdin.readline()
    for s in socks:
        s.close()
    return 0


def _open(ga: GAplic, port: int, n: int) -> subprocess.Popen[str]:
    """Start a client process with ``n`` connections; run the loop until they echoed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.conn_memory", "--client", str(port), str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for _ in range(1_000_000):
        ga._loop()
        if select.select([proc.stdout], [], [], 0)[0]:
            if not proc.stdout.readline().startswith("DONE"):
                raise RuntimeError("the client process failed")
            break
    for _ in range(50):
        ga._loop()
    return proc


def _close(ga: GAplic, proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("close\n")
    proc.stdin.flush()
    proc.wait(30)
    for _ in range(300):
        ga._loop()


def _objects(server: GServerSock) -> None:
    """The sizes of one idle connection's own objects."""
    child: Any = server.get_gsocks()[0]
    n_dict = len(vars(child))  # (makes this one child's dict: it is measured last)
    rows: list[tuple[str, int]] = [
        ("GSock instance (its slots)", sys.getsizeof(child)),
        (f"  its instance attributes ({n_dict}, about 8 bytes each)", 8 * n_dict),
    ]
    rows.append(("config namespace", sys.getsizeof(child.config)))
    for name in ("_queue", "_peername", "_wants_cache", "_dl_subscriptions", "__name__"):
        value = getattr(child, name, None)
        if value is not None:
            rows.append((f"{name} ({type(value).__name__})", sys.getsizeof(value)))
    rows.extend(("Subscription", sys.getsizeof(sub)) for sub in child.get_subscriptions())
    transport = child._transport
    if transport is not None:
        rows.append((f"transport ({type(transport).__name__})", sys.getsizeof(transport)))
    print("\none connection's objects (sys.getsizeof, bytes):")
    for label, size in rows:
        print(f"{size:7d}  {label}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Python heap per idle fsmio connection")
    parser.add_argument("--conns", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--frames", type=int, default=1, help="group by this many frames")
    parser.add_argument("--objects", action="store_true", help="sizes of one connection")
    parser.add_argument("--client", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        return clients(*args.client)
    raise_nofile()
    with GAplic("conn-memory") as ga:
        ga._loop()
        echo = ga.create_gobj("echo", Echo, None)
        server = ga.create_gobj("server", GServerSock, echo, host="127.0.0.1", port=0, backlog=4096)
        port = server.config.port
        _close(ga, _open(ga, port, 20))  # warm up: code paths, caches, free lists
        gc.collect()
        tracemalloc.start(max(1, args.frames))
        before = tracemalloc.take_snapshot()
        proc = _open(ga, port, args.conns)
        try:
            gc.collect()
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            group = "lineno" if args.frames <= 1 else "traceback"
            stats = after.compare_to(before, group)
            n = args.conns
            total = sum(s.size_diff for s in stats) / n
            blocks = sum(s.count_diff for s in stats) / n
            print(f"{total:.0f} B of the server's Python heap per connection ({blocks:.1f} blocks)")
            for s in stats[: args.top]:
                if abs(s.size_diff) < n:  # under 1 byte per connection
                    continue
                print(f"{s.size_diff / n:7.0f} B {s.count_diff / n:5.2f} blocks")
                for frame in list(s.traceback)[::-1][: args.frames]:
                    line = linecache.getline(frame.filename, frame.lineno).strip()
                    where = "/".join(frame.filename.split("/")[-2:])
                    print(f"          {where}:{frame.lineno}  {line[:80]}")
            if args.objects:
                _objects(server)
        finally:
            _close(ga, proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
