"""What every server program of the HTTP benchmark shares: its arguments and its READY line."""

from __future__ import annotations

import argparse
import socket

from benchmarks.common import raise_nofile


def parse_args(description: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    raise_nofile()
    return args


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket, for the servers that accept one (port 0 works)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    return sock


def ready(host: str, port: int) -> None:
    """Tell the benchmark where to connect (it waits for this line)."""
    print(f"READY {host} {port}", flush=True)
