"""An echo client on GConnex: sends messages one at a time and checks every echoed byte.

    python -m fsmio.examples.echo_client --host 127.0.0.1 --port 8000 \\
        [--tls | --tls-ca ca.pem] --count 1000 --size 1024 [--timeout 30]

Message ``i`` is ``--size`` bytes cut at an offset that depends on ``i`` from a block of
pseudo-random bytes, so consecutive messages differ.  The next message goes out when the
previous one has come back whole and equal.

On success it prints one line on stdout and exits 0::

    OK messages=1000 bytes=1024000 seconds=0.412 round_trips_per_s=2427.2

Otherwise it prints ``echo_client: FAILED: <why>`` on stderr and exits 1: the server
cannot be reached (after ``--connect-attempts``), the connection is lost mid-run, an
echoed byte differs, or the whole run takes longer than ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from typing import Any

from fsmio.aplic.gaplic import GAplic
from fsmio.core.errors import GConfigValidateError
from fsmio.core.event import Event
from fsmio.core.gobj import GObj
from fsmio.gobjs.c_connex import GConnex
from fsmio.gobjs.c_timer import GTimer

_LOG = logging.getLogger("fsmio.echo_client")

# Messages are windows of this many extra bytes' worth of offsets into one random block.
_OFFSETS = 251

# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
CLIENT_GCONFIG: dict[str, Any] = {
    "host": [str, "127.0.0.1", 0, None, "Server host."],
    "port": [int, 0, 0, None, "Server port."],
    "server": [
        str,
        "",
        0,
        None,
        (
            "Unique name of an echo_server Echo gobj of the same GAplic: connect to the "
            "address it listens on (host and port are then ignored). For a one-process demo."
        ),
    ],
    "ssl_options": [dict, {}, 0, None, "TLS client options (cafile...); {}: plain TCP."],
    "count": [int, 100, 0, None, "Messages to send."],
    "size": [int, 1024, 0, None, "Bytes per message."],
    "timeout": [float, 30.0, 0, None, "Seconds for the whole run."],
    "connect_attempts": [int, 3, 0, None, "Give up after this many failed connects."],
    "seed": [int, 0, 0, None, "Seed of the message contents."],
    "log_result": [
        bool,
        True,
        0,
        None,
        "Log the outcome (for `fsmio run`; the command line prints it instead).",
    ],
}


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_connected(self: EchoClient, event: Event) -> None:
    if self.started:
        self.fail("the connection was lost and re-established mid-run")
        return
    self.started = time.monotonic()
    _LOG.info("connected to %s", event.kw.get("peername"))
    self.send_next()


def ac_rx_data(self: EchoClient, event: Event) -> None:
    if self.done:
        return
    buf = self.rx
    buf += event.kw["data"]
    size = self.config.size
    if len(buf) > size:
        self.fail(f"message {self.sent}: {len(buf)} bytes came back for {size} sent")
    elif len(buf) == size:
        expected = self.message(self.sent - 1)
        if buf != expected:
            first = next(i for i in range(size) if buf[i] != expected[i])
            self.fail(f"message {self.sent}: echoed byte {first} differs from what was sent")
            return
        self.echoed_bytes += size
        buf.clear()
        self.send_next()


def ac_disconnected(self: EchoClient, event: Event) -> None:
    if not self.done:
        self.fail(
            f"connection lost ({event.kw.get('reason')}) after "
            f"{self.sent - 1 if self.sent else 0} of {self.config.count} messages"
        )


def ac_connect_failed(self: EchoClient, event: Event) -> None:
    kw = event.kw
    _LOG.info("connect to %s:%s failed: %s", kw["host"], kw["port"], kw["reason"])
    if kw["gave_up"] and not self.done:
        self.fail(
            f"cannot connect to {kw['host']}:{kw['port']}: {kw['reason']} "
            f"({kw['attempts']} attempt{'s' if kw['attempts'] != 1 else ''})"
        )


def ac_timeout(self: EchoClient, event: Event) -> None:
    if not self.done:
        self.fail(
            f"timeout after {self.config.timeout:g} s: "
            f"{max(self.sent - 1, 0)} of {self.config.count} messages echoed"
        )


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
CLIENT_FSM: dict[str, Any] = {
    # No EV_TRANSMIT_READY: this gobj has no use for it, and a GSock (or GConnex) does not
    # send it to a subscriber whose FSM does not take it.
    "event_list": (
        "EV_CONNECTED: bottom input",
        "EV_RX_DATA: bottom input",
        "EV_DISCONNECTED: bottom input",
        "EV_CONNECT_FAILED: bottom input",
        "EV_TIMEOUT: bottom input",
    ),
    "state_list": ("ST_RUNNING",),
    "machine": {
        "ST_RUNNING": (
            ("EV_CONNECTED", ac_connected, None),
            ("EV_RX_DATA", ac_rx_data, None),
            ("EV_DISCONNECTED", ac_disconnected, None),
            ("EV_CONNECT_FAILED", ac_connect_failed, None),
            ("EV_TIMEOUT", ac_timeout, None),
        )
    },
}


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
class EchoClient(GObj):
    """Drives one GConnex through ``count`` echo round trips."""

    def __init__(self) -> None:
        GObj.__init__(self, CLIENT_FSM, CLIENT_GCONFIG)
        self.rx = bytearray()
        self.sent = 0  # messages sent so far (the one in flight is number `sent`)
        self.echoed_bytes = 0
        self.started = 0.0
        self.finished = 0.0
        self.done = False
        self.error: str | None = None
        self._block = b""

    def start_up(self) -> None:
        config = self.config
        self._block = random.Random(config.seed).randbytes(config.size + _OFFSETS)
        host, port = config.host, config.port
        if config.server:
            server = self.gaplic.find_unique_gobj(config.server) if self.gaplic else None
            listening_on = getattr(server, "listening_on", None)
            if listening_on is None:
                raise GConfigValidateError(
                    f"{self!r}: server {config.server!r} is not a unique echo_server Echo gobj "
                    "created before this one"
                )
            host, port = listening_on()
        self.connex = self.create_gobj(
            "connex",
            GConnex,
            self,
            destinations=[(host, port)],
            ssl_options=config.ssl_options or None,
            connect_failed_event_name="EV_CONNECT_FAILED",
            max_attempts=config.connect_attempts,
            timeout_between_connections=0.5,
            timeout_waiting_connected=max(1.0, min(config.timeout, 10.0)),
        )
        timer = self.create_gobj("timer", GTimer, self)
        self.send_event(timer, "EV_SET_TIMER", seconds=config.timeout)

    def message(self, i: int) -> bytes:
        offset = (i * 7) % _OFFSETS
        return self._block[offset : offset + self.config.size]

    def send_next(self) -> None:
        if self.sent >= self.config.count:
            self.finish()
            return
        data = self.message(self.sent)
        self.sent += 1
        self.send_event(self.connex, "EV_SEND_DATA", data=data)

    def finish(self) -> None:
        self.done = True
        self.finished = time.monotonic()
        if self.error is not None and self.gaplic is not None:
            self.gaplic.exit_code = 1  # `fsmio run` exits with it
        if self.config.log_result:
            if self.error is not None:
                _LOG.error("FAILED: %s", self.error)
            else:
                seconds = max(self.finished - self.started, 1e-9)
                _LOG.info(
                    "OK: %d messages, %d bytes echoed intact in %.3f s (%.1f round trips/s)",
                    self.config.count,
                    self.echoed_bytes,
                    seconds,
                    self.config.count / seconds,
                )
        self.send_event(self.connex, "EV_DROP")
        self.gaplic.stop()

    def fail(self, why: str) -> None:
        self.error = why
        self.finish()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="server host")
    parser.add_argument("--port", type=int, required=True, help="server port")
    parser.add_argument("--tls", action="store_true", help="use TLS (system CAs)")
    parser.add_argument("--tls-ca", help="PEM CA file: use TLS and trust this CA")
    parser.add_argument("--count", type=int, default=100, help="messages to send")
    parser.add_argument("--size", type=int, default=1024, help="bytes per message")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds for the run")
    parser.add_argument("--connect-attempts", type=int, default=3, help="connect attempts")
    parser.add_argument("--log-level", default="WARNING", help="logging level (stderr)")
    args = parser.parse_args(argv)
    if args.count < 0 or args.size <= 0 or args.timeout <= 0:
        parser.error("--count must be >= 0, --size and --timeout > 0")
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ssl_options: dict[str, Any] = {}
    if args.tls_ca:
        ssl_options["cafile"] = args.tls_ca
    elif args.tls:
        # An empty dict means plain TCP; this one means TLS with the default settings.
        ssl_options["minimum_version"] = "TLSv1_2"
    with GAplic("echo_client") as gaplic:
        try:
            client: EchoClient = gaplic.create_gobj(
                "client",
                EchoClient,
                gaplic,
                host=args.host,
                port=args.port,
                ssl_options=ssl_options,
                count=args.count,
                size=args.size,
                timeout=args.timeout,
                connect_attempts=args.connect_attempts,
                log_result=False,  # printed below
            )
        except GConfigValidateError as exc:
            print(f"echo_client: FAILED: {exc}", file=sys.stderr, flush=True)
            return 1
        gaplic.start()
    if client.error is not None or not client.done:
        why = client.error or "interrupted"
        print(f"echo_client: FAILED: {why}", file=sys.stderr, flush=True)
        return 1
    seconds = max(client.finished - client.started, 1e-9)
    print(
        f"OK messages={args.count} bytes={client.echoed_bytes} seconds={seconds:.3f} "
        f"round_trips_per_s={args.count / seconds:.1f}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
