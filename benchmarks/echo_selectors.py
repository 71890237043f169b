"""The pure-Python floor: a minimal hand-written ``selectors`` (epoll) echo loop.

    python -m benchmarks.echo_selectors --host 127.0.0.1 --port 0

Non-blocking sockets, one ``select()`` per iteration, ``recv`` then ``send`` back; what
the kernel does not take is kept and the socket stops being read until it is written
(bounded memory).  Prints ``READY <host> <port>``; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import selectors
import signal
import socket
from typing import Any

from benchmarks.common import raise_nofile

READ_SIZE = 256 * 1024


def serve(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(4096)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    pending: dict[socket.socket, memoryview] = {}
    running = [True]

    def stop(*_: Any) -> None:
        running[0] = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"READY {host} {listener.getsockname()[1]}", flush=True)

    def close(conn: socket.socket) -> None:
        sel.unregister(conn)
        pending.pop(conn, None)
        conn.close()

    while running[0]:
        for key, mask in sel.select(1.0):
            conn = key.fileobj
            if key.data is None:  # the listener
                for _ in range(256):
                    try:
                        new, _addr = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:  # out of fds, etc.: try again next round
                        break
                    new.setblocking(False)
                    new.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sel.register(new, selectors.EVENT_READ, 1)
                continue
            assert isinstance(conn, socket.socket)
            if mask & selectors.EVENT_WRITE:
                rest = pending[conn]
                try:
                    sent = conn.send(rest)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    close(conn)
                    continue
                if sent < len(rest):
                    pending[conn] = rest[sent:]
                else:
                    del pending[conn]
                    sel.modify(conn, selectors.EVENT_READ, 1)
                continue
            try:
                data = conn.recv(READ_SIZE)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                close(conn)
                continue
            if not data:
                close(conn)
                continue
            try:
                sent = conn.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                close(conn)
                continue
            if sent < len(data):
                pending[conn] = memoryview(data)[sent:]
                sel.modify(conn, selectors.EVENT_WRITE, 1)
    for key in list(sel.get_map().values()):
        sock = key.fileobj
        assert isinstance(sock, socket.socket)  # only sockets are registered here
        sock.close()
    sel.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="selectors echo server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    raise_nofile()
    serve(args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
