"""The Python load generator: the FALLBACK of ``benchmarks/echoload.c``.

    python -m benchmarks.loadgen --host H --port P --mode MODE [options]

``benchmarks.run`` uses it only where there is no C compiler: being Python, it saturates
its own core before the faster servers saturate theirs, so they idle part of the time and
the ratios between them come out compressed towards 1.00x (the report says so).  Same
modes, options and JSON result as the compiled one.

Modes (a separate process, on uvloop when installed, so that the load costs as little CPU
as it can):

* ``pingpong`` — ``--conns`` connections, each with one ``--size``-byte message in flight.
* ``pipelined`` — ``--conns`` connections, each with ``--inflight`` messages in flight.
* ``stream`` — ``--conns`` connections writing ``--chunk``-byte blocks of a known stream
  (at most ``--window`` bytes not yet echoed per connection).
* ``connect`` — ``--conns`` workers, each in a loop: connect, echo one message, close.
* ``idle`` — open ``--conns`` connections (each echoes one byte, so the server has set it
  up), print ``IDLE <n>``, wait for a line on stdin, close them all.

Every echoed byte is compared with what was sent (messages come from a set of 251
different ones, the stream is a pattern whose period is not a multiple of the block size,
so a lost, doubled or reordered piece shows).  The result is one JSON line on stdout:
``messages`` (round trips; bytes for ``stream``; connections for ``connect``), ``seconds``,
``p50_us``/``p99_us`` (round-trip latency), ``errors`` (mismatches and failures).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import json
import socket
import sys
import time
from array import array
from typing import Any

from benchmarks.common import raise_nofile

perf = time.perf_counter


def _messages(size: int, count: int = 251) -> list[bytes]:
    return [(b"%0*d" % (size, i))[-size:] for i in range(count)]


class Stats:
    def __init__(self) -> None:
        self.messages = 0
        self.errors = 0
        self.lat = array("d")
        self.first_error = ""

    def error(self, what: str) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = what


# ----------------------------------------------------------------------------------------
#   Ping-pong and pipelined: `inflight` messages outstanding per connection
# ----------------------------------------------------------------------------------------
class Pipeline(asyncio.Protocol):
    def __init__(self, stats: Stats, msgs: list[bytes], inflight: int, run: Run) -> None:
        self.stats = stats
        self.msgs = msgs
        self.size = len(msgs[0])
        self.inflight = inflight
        self.run = run
        self.buf = bytearray()
        self.sent: collections.deque[tuple[int, float]] = collections.deque()
        self.next_index = 0
        self.transport: Any = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def _send(self, k: int) -> None:
        if not self.run.sending:
            if not self.sent and not self.done.done():
                self.done.set_result(None)
            return
        msgs = self.msgs
        now = perf()
        parts = []
        for _ in range(k):
            i = self.next_index
            self.next_index = (i + 1) % len(msgs)
            self.sent.append((i, now))
            parts.append(msgs[i])
        self.transport.write(b"".join(parts) if k > 1 else parts[0])

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        size = self.size
        n = len(buf) // size
        if not n:
            return
        now = perf()
        stats = self.stats
        msgs = self.msgs
        sent = self.sent
        lat = stats.lat
        for k in range(n):
            if not sent:
                stats.error("more data echoed than sent")
                break
            i, t0 = sent.popleft()
            if buf[k * size : (k + 1) * size] != msgs[i]:
                stats.error(f"message {i} echoed wrong")
            lat.append(now - t0)
        del buf[: n * size]
        stats.messages += n
        self._send(n)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.sent:
            self.stats.error(f"connection lost with {len(self.sent)} messages in flight: {exc}")
        if not self.done.done():
            self.done.set_result(None)


class Run:
    """Shared switch: keep sending until the deadline."""

    def __init__(self) -> None:
        self.sending = True


async def run_pipeline(
    host: str, port: int, conns: int, size: int, inflight: int, seconds: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stats = Stats()
    msgs = _messages(size)
    run = Run()
    run.sending = False  # connect everything first
    protos: list[Pipeline] = []
    for _ in range(conns):
        _, proto = await loop.create_connection(
            lambda: Pipeline(stats, msgs, inflight, run), host, port
        )
        protos.append(proto)
    run.sending = True
    t0 = perf()
    for proto in protos:
        proto._send(inflight)
    await asyncio.sleep(seconds)
    run.sending = False
    await asyncio.wait([p.done for p in protos], timeout=10.0)
    elapsed = perf() - t0
    for proto in protos:
        if proto.sent:
            stats.error(f"{len(proto.sent)} messages never echoed")
        proto.transport.close()
    await asyncio.sleep(0.05)
    return _result(stats, elapsed, stats.messages)


# ----------------------------------------------------------------------------------------
#   Streaming
# ----------------------------------------------------------------------------------------
PERIOD = 65_537  # prime: a 64 KiB block never lines up with the pattern


class Stream(asyncio.Protocol):
    def __init__(self, stats: Stats, pattern: bytes, chunk: int, window: int, run: Run) -> None:
        self.stats = stats
        self.pattern = pattern
        self.chunk = chunk
        self.window = window
        self.run = run
        self.sent = 0
        self.received = 0
        self.paused = False
        self.transport: Any = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def pump(self) -> None:
        while self.run.sending and not self.paused and self.sent - self.received < self.window:
            off = self.sent % PERIOD
            self.transport.write(self.pattern[off : off + self.chunk])
            self.sent += self.chunk
        if not self.run.sending and self.received >= self.sent and not self.done.done():
            self.done.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.pump()

    def data_received(self, data: bytes) -> None:
        off = self.received % PERIOD
        n = len(data)
        if n > len(self.pattern) - off:
            self.stats.error("read larger than the check pattern")
        elif data != self.pattern[off : off + n]:
            self.stats.error(f"stream corrupt at byte {self.received}")
        self.received += n
        if self.received > self.sent:
            self.stats.error("more bytes echoed than sent")
        self.pump()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.received < self.sent:
            self.stats.error(f"connection lost with {self.sent - self.received} bytes unechoed")
        if not self.done.done():
            self.done.set_result(None)


async def run_stream(
    host: str, port: int, conns: int, chunk: int, window: int, seconds: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stats = Stats()
    base = bytes((i * 7 + (i >> 8) * 13) & 0xFF for i in range(PERIOD))
    # Long enough to check any one read (uvloop reads at most 256 KiB) at any offset.
    pattern = base * (2 + (max(chunk, 1 << 20) // PERIOD))
    run = Run()
    protos: list[Stream] = []
    for _ in range(conns):
        _, proto = await loop.create_connection(
            lambda: Stream(stats, pattern, chunk, window, run), host, port
        )
        protos.append(proto)
    t0 = perf()
    for proto in protos:
        proto.pump()
    await asyncio.sleep(seconds)
    run.sending = False
    for proto in protos:
        proto.pump()
    await asyncio.wait([p.done for p in protos], timeout=10.0)
    elapsed = perf() - t0
    total = 0
    for proto in protos:
        if proto.received != proto.sent:
            stats.error(f"{proto.sent - proto.received} bytes never echoed")
        total += proto.received
        proto.transport.close()
    await asyncio.sleep(0.05)
    return _result(stats, elapsed, total)


# ----------------------------------------------------------------------------------------
#   Connect: connect, echo one message, close
# ----------------------------------------------------------------------------------------
class Once(asyncio.Protocol):
    def __init__(self, msg: bytes) -> None:
        self.msg = msg
        self.buf = b""
        self.transport: Any = None
        self.echoed: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.msg)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= len(self.msg) and not self.echoed.done():
            self.echoed.set_result(self.buf)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.echoed.done():
            self.echoed.set_exception(ConnectionError(f"closed before the echo: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)


async def run_connect(
    host: str, port: int, workers: int, size: int, seconds: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stats = Stats()
    msgs = _messages(size)
    deadline = perf() + seconds

    async def worker(w: int) -> None:
        i = w
        while perf() < deadline:
            msg = msgs[i % len(msgs)]
            i += 1
            t0 = perf()
            try:
                _, proto = await loop.create_connection(functools.partial(Once, msg), host, port)
                echoed = await asyncio.wait_for(proto.echoed, 10.0)
            except (OSError, TimeoutError) as exc:
                stats.error(f"connection failed: {exc!r}")
                await asyncio.sleep(0.01)
                continue
            if echoed != msg:
                stats.error("connect message echoed wrong")
            proto.transport.close()
            await proto.closed
            stats.lat.append(perf() - t0)
            stats.messages += 1

    t0 = perf()
    await asyncio.gather(*(worker(w) for w in range(workers)))
    return _result(stats, perf() - t0, stats.messages)


# ----------------------------------------------------------------------------------------
#   Idle connections
# ----------------------------------------------------------------------------------------
async def run_idle(host: str, port: int, conns: int, batch: int = 250) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stats = Stats()
    protos: list[Once] = []
    t0 = perf()

    async def one() -> None:
        try:
            _, proto = await loop.create_connection(lambda: Once(b"i"), host, port)
            if await asyncio.wait_for(proto.echoed, 30.0) != b"i":
                stats.error("idle byte echoed wrong")
            protos.append(proto)
        except (OSError, TimeoutError) as exc:
            stats.error(f"connection failed: {exc!r}")

    for start in range(0, conns, batch):
        await asyncio.gather(*(one() for _ in range(min(batch, conns - start))))
        if stats.errors > 50:
            break
    setup = perf() - t0
    print(f"IDLE {len(protos)}", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    for proto in protos:
        proto.transport.close()
    await asyncio.sleep(0.2)
    return _result(stats, setup, len(protos))


# ----------------------------------------------------------------------------------------
def _result(stats: Stats, seconds: float, messages: int) -> dict[str, Any]:
    lat = sorted(stats.lat)

    def pct(p: float) -> float | None:
        return 1e6 * lat[min(len(lat) - 1, int(len(lat) * p))] if lat else None

    return {
        "messages": messages,
        "seconds": seconds,
        "p50_us": pct(0.50),
        "p99_us": pct(0.99),
        "errors": stats.errors,
        "first_error": stats.first_error,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="echo load generator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--mode", choices=("pingpong", "pipelined", "stream", "connect", "idle"), required=True
    )
    parser.add_argument("--conns", type=int, default=1)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=65536)
    parser.add_argument("--window", type=int, default=4 * 65536)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args(argv)
    raise_nofile()
    if args.mode == "pingpong":
        coro = run_pipeline(args.host, args.port, args.conns, args.size, 1, args.seconds)
    elif args.mode == "pipelined":
        coro = run_pipeline(
            args.host, args.port, args.conns, args.size, args.inflight, args.seconds
        )
    elif args.mode == "stream":
        coro = run_stream(args.host, args.port, args.conns, args.chunk, args.window, args.seconds)
    elif args.mode == "connect":
        coro = run_connect(args.host, args.port, args.conns, args.size, args.seconds)
    else:
        coro = run_idle(args.host, args.port, args.conns)
    factory = None
    if args.loop == "uvloop":
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(coro)
    result["mode"] = args.mode
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    raise SystemExit(main())
