"""Where the memory of an idle fsmio connection goes: Python heap per connection, by line.

    python -m benchmarks.conn_memory [--conns 2000] [--top 20]

Runs the benchmark's echo server in-process (GServerSock + GSock + user gobj), opens
``--conns`` loopback connections to it (each echoes one byte), and prints the tracemalloc
difference per connection, grouped by the line that allocated it.  The client sockets
live in the same process: their lines (``socket.py``) are not the server's cost.
"""

from __future__ import annotations

import argparse
import gc
import socket
import tracemalloc

from benchmarks.common import raise_nofile
from benchmarks.fsmio_echo import Echo
from fsmio import GAplic
from fsmio.gobjs.c_srv_sock import GServerSock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Python heap per idle fsmio connection")
    parser.add_argument("--conns", type=int, default=2000)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    raise_nofile()
    clients: list[socket.socket] = []
    with GAplic("conn-memory") as ga:
        ga._loop()
        echo = ga.create_gobj("echo", Echo, None)
        server = ga.create_gobj("server", GServerSock, echo, host="127.0.0.1", port=0)
        port = server.config.port

        def spin(n: int) -> None:
            for _ in range(n):
                ga._loop()

        try:
            warm = socket.create_connection(("127.0.0.1", port))
            clients.append(warm)
            spin(50)
            warm.sendall(b"w")
            spin(50)
            warm.recv(1)
            gc.collect()
            tracemalloc.start(1)
            before = tracemalloc.take_snapshot()
            for i in range(args.conns):
                clients.append(socket.create_connection(("127.0.0.1", port)))
                if i % 100 == 99:
                    spin(20)
            spin(200)
            for c in clients[1:]:
                c.sendall(b"x")
            spin(200)
            for c in clients[1:]:
                c.settimeout(10.0)
                c.recv(1)
            gc.collect()
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            stats = after.compare_to(before, "lineno")
            n = args.conns
            print(f"{sum(s.size_diff for s in stats) / n:.0f} B of Python heap per connection")
            for s in stats[: args.top]:
                print(f"{s.size_diff / n:7.0f} B {s.count_diff / n:5.1f} blocks  {s.traceback[0]}")
        finally:
            for c in clients:
                c.close()
            spin(100)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
