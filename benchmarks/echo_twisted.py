"""The Twisted echo peer: a ``Protocol`` that writes back what it reads.

    python -m benchmarks.echo_twisted --host 127.0.0.1 --port 0

The echo as Twisted users write it, on Twisted's default reactor (epoll on Linux).  Like
the asyncio peer it has flow control: the transport is registered as its own streaming
producer, so Twisted stops reading a connection while its output is above the write
buffer's limit (a peer that does not read must not make it buffer without bound).
Prints ``READY <host> <port>``; stops on SIGTERM/SIGINT (the reactor's own handlers).
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks.common import raise_nofile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Twisted echo server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    raise_nofile()
    try:
        from twisted.internet import protocol, reactor
    except ImportError:
        raise SystemExit("echo_twisted: Twisted is not installed (pip install twisted)") from None

    class Echo(protocol.Protocol):
        out: Any = None  # the transport (Twisted's interface types are not the class's)

        def connectionMade(self) -> None:
            self.out = self.transport
            self.out.registerProducer(self.out, True)

        def dataReceived(self, data: bytes) -> None:
            self.out.write(data)

    factory = protocol.Factory.forProtocol(Echo)
    rx: Any = reactor  # the module is the installed reactor; its type has no stubs
    port = rx.listenTCP(args.port, factory, backlog=4096, interface=args.host)
    print(f"READY {args.host} {port.getHost().port}", flush=True)
    rx.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
