"""A reconnecting echo client on GConnex: sends messages one at a time, checks every
echoed byte, and resumes after the connection is lost.

    python -m fsmio.examples.echo_client --connect 127.0.0.1:8000 [--connect HOST:PORT ...] \\
        [--tls] [--cafile ca.pem] [--server-hostname NAME] --count 1000 --size 1024 \\
        [--deadline 30] [--connect-timeout 10] [--retry-interval 0.5] [--backoff-factor 1] \\
        [--backoff-max 30] [--backoff-jitter 0] [--inactivity-timeout S] [--connect-attempts N]

``--connect`` is repeatable and takes a comma list (``--connect a:1,b:2``); IPv6 is written
``[::1]:8000``.  ``--host H --port P`` is the same as ``--connect H:P``.  The destinations
are tried in round-robin (GConnex): after a failure the next one at once, and after a
whole round of failures the client waits ``--retry-interval`` seconds, multiplied by
``--backoff-factor`` after each failed round, up to ``--backoff-max``, each wait jittered by
``±--backoff-jitter`` (a fraction).  One attempt may take ``--connect-timeout`` seconds
(resolving, connecting, the TLS handshake).  ``--inactivity-timeout``: a connection on
which nothing came or went for that long (a server that stopped echoing) is dropped and a
new one made.  ``--tls`` verifies the server's certificate against the system's CAs,
``--cafile`` against that file (and implies ``--tls``), ``--server-hostname`` is the name
checked in the certificate and sent as SNI (default: the destination's host).

Message ``i`` is ``--size`` bytes cut at an offset that depends on ``i`` from a block of
pseudo-random bytes, so consecutive messages differ.  The next message goes out when the
previous one has come back whole and equal.

Resuming: exactly one message is in flight.  When the connection is lost, the part of it
already echoed is checked against what was sent (a difference is a data mismatch) and
thrown away, and the whole message is handed to the GConnex again at once: the GConnex
queues it and sends it first on the next connection, to the same destination or the next
one.  Only whole echoed messages are counted, so a message half echoed before the loss is
counted once, when its second echo has come back whole; nothing that was echoed whole is
sent again.

Logging (stderr): at the default level one line per failed attempt (with the reason), one
per lost connection (with the reason) and one per reconnection; ``--log-level INFO`` adds
the first connection, ``DEBUG`` the GSock's own lines.  On success it prints one line on
stdout and exits 0::

    OK messages=1000 bytes=1024000 seconds=0.412 round_trips_per_s=2427.2 reconnections=0

Otherwise it prints ``echo_client: FAILED: <why>`` on stderr and exits 1: the run is not
over after ``--deadline`` seconds (``--timeout`` is an older name of it), an echoed byte
differs, or ``--connect-attempts`` consecutive attempts failed (default: never give up).
Stopped by SIGINT or SIGTERM before the end: ``FAILED: interrupted``, exit 1; a second
SIGINT leaves at once with exit 130, like ``fsmio run``.

As a gobj (``fsmio run examples/echo_client.toml``, ``examples/echo.toml``) the
``EchoClient`` takes the parameters of ``CLIENT_GCONFIG``: ``destinations`` (or ``host``
and ``port``), ``count``, ``size``, ``timeout`` (the deadline), ``connect_attempts``,
``ssl_options``, and the GConnex's own ``timeout_waiting_connected``,
``timeout_between_connections``, ``backoff_factor``, ``backoff_max``, ``backoff_jitter`` and
``timeout_inactivity``, handed to it as they are.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from fsmio.aplic.gaplic import GAplic
from fsmio.core.errors import GConfigValidateError
from fsmio.core.event import Event
from fsmio.core.gconfig import (
    finite_number,
    fraction,
    non_negative_int,
    number_in,
    port_number,
    positive_int,
    positive_number,
)
from fsmio.core.gobj import GObj
from fsmio.gobjs.c_connex import GConnex, parse_destinations
from fsmio.gobjs.c_timer import GTimer
from fsmio.tools import EXIT_INTERRUPTED

_LOG = logging.getLogger("fsmio.echo_client")
#: The logger of the client's GSock: its "connect failed" and "connection lost" lines say
#: what this client's own lines say, so main() shows them only at DEBUG.
GSOCK_LOG = logging.getLogger("fsmio.echo_client.gsock")

# Messages are windows of this many extra bytes' worth of offsets into one random block.
_OFFSETS = 251


def _optional_destinations(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_destinations(value)


# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
CLIENT_GCONFIG: dict[str, Any] = {
    "host": [str, "127.0.0.1", 0, None, "Server host (when destinations is not set)."],
    "port": [int, 0, 0, None, "Server port (when destinations is not set)."],
    "destinations": [
        None,
        None,
        0,
        _optional_destinations,
        "Servers tried in round-robin: 'h1:p1, h2:p2' or a list; None: host and port.",
    ],
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
    "timeout": [float, 30.0, 0, positive_number, "Deadline of the whole run (seconds)."],
    "connect_attempts": [
        int,
        0,
        0,
        None,
        "Give up after this many consecutive failed connects; <= 0: never.",
    ],
    # The GConnex's own names, for what the client hands it as it is.
    "timeout_waiting_connected": [
        float,
        10.0,
        0,
        positive_number,
        "Seconds one connect attempt may take (the connect timeout).",
    ],
    "timeout_between_connections": [
        float,
        0.5,
        0,
        positive_number,
        "Seconds to wait after a failed round of attempts (the retry interval).",
    ],
    "backoff_factor": [float, 1.0, 0, number_in(1), "Each failed round multiplies the wait."],
    "backoff_max": [float, 30.0, 0, positive_number, "Cap of the wait between rounds."],
    "backoff_jitter": [float, 0.0, 0, fraction, "0..1: each wait times 1 ± a random jitter."],
    "timeout_inactivity": [
        float,
        -1.0,
        0,
        finite_number,
        "> 0: drop a connection idle this long and make a new one; <= 0: off.",
    ],
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
    if self.done:
        return
    now = time.monotonic()
    where = self.destination()
    if not self.started:
        self.started = now
        _LOG.info("connected to %s", where)
    else:
        self.reconnections += 1
        _LOG.warning(
            "reconnected to %s after %.1f s down; resuming at message %d of %d",
            where,
            now - self.lost_at,
            self.echoed + 1,
            self.config.count,
        )
    if not self.in_flight:
        # After a loss the message in flight was queued again and has gone out already.
        self.send_next()


def ac_rx_data(self: EchoClient, event: Event) -> None:
    if self.done:
        return
    buf = self.rx
    buf += event.kw["data"]
    size = self.config.size
    if len(buf) > size:
        self.fail(f"message {self.echoed + 1}: {len(buf)} bytes came back for {size} sent")
    elif len(buf) == size:
        if not self.check_echo(buf):
            return
        self.echoed += 1
        self.echoed_bytes += size
        self.in_flight = False
        buf.clear()
        self.send_next()


def ac_disconnected(self: EchoClient, event: Event) -> None:
    if self.done or self.gaplic.do_exit.is_set():
        return  # finished, or the GAplic is stopping (a signal): not a loss to resume
    self.lost_at = time.monotonic()
    partial = len(self.rx)
    if partial and not self.check_echo(self.rx):
        return
    self.rx.clear()
    _LOG.warning(
        "connection to %s lost: %s; %d of %d messages echoed%s",
        self.destination(),
        event.kw.get("reason"),
        self.echoed,
        self.config.count,
        f", {partial} bytes of message {self.echoed + 1} thrown away" if partial else "",
    )
    if self.in_flight:
        # Queued in the GConnex, which sends it first on the next connection.
        self.send_message()


def ac_connect_failed(self: EchoClient, event: Event) -> None:
    kw = event.kw
    if self.done:
        return
    if kw["gave_up"]:
        # The GConnex has logged this last attempt ("giving up after ...").
        self.fail(
            f"cannot connect to {kw['host']}:{kw['port']}: {kw['reason']} "
            f"({kw['attempts']} attempt{'s' if kw['attempts'] != 1 else ''})"
        )
        return
    retry_in = kw.get("retry_in", -1)
    _LOG.warning(
        "connect to %s failed: %s (attempt %d); %s",
        _host_port(kw["host"], kw["port"]),
        kw["reason"],
        kw["attempts"],
        "next destination now"
        if retry_in == 0
        else f"next attempt in {retry_in:.3g} s"
        if retry_in > 0
        else "no retry",
    )


def ac_timeout(self: EchoClient, event: Event) -> None:
    if self.done:
        return
    last_error = self.connex.last_error
    self.fail(
        f"timeout after {self.config.timeout:g} s: "
        f"{self.echoed} of {self.config.count} messages echoed"
        + (f"; last error: {last_error}" if last_error else "")
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
#   Helpers
# ----------------------------------------------------------------------------------------
def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
class EchoClient(GObj):
    """Drives one GConnex through ``count`` echo round trips, resuming after losses."""

    def __init__(self) -> None:
        GObj.__init__(self, CLIENT_FSM, CLIENT_GCONFIG)
        self.rx = bytearray()
        self.echoed = 0  # messages echoed whole and checked
        self.in_flight = False  # message `echoed` is out (maybe queued in the GConnex)
        self.echoed_bytes = 0
        self.reconnections = 0
        self.started = 0.0
        self.finished = 0.0
        self.lost_at = 0.0
        self.done = False
        self.error: str | None = None
        self._block = b""

    def start_up(self) -> None:
        config = self.config
        self._block = random.Random(config.seed).randbytes(config.size + _OFFSETS)
        destinations = config.destinations or [(config.host, config.port)]
        if config.server:
            server = self.gaplic.find_unique_gobj(config.server) if self.gaplic else None
            listening_on = getattr(server, "listening_on", None)
            if listening_on is None:
                raise GConfigValidateError(
                    f"{self!r}: server {config.server!r} is not a unique echo_server Echo gobj "
                    "created before this one"
                )
            destinations = [listening_on()]
        self.connex = self.create_gobj(
            "connex",
            GConnex,
            self,
            destinations=destinations,
            ssl_options=config.ssl_options or None,
            connect_failed_event_name="EV_CONNECT_FAILED",
            max_attempts=config.connect_attempts,
            timeout_waiting_connected=config.timeout_waiting_connected,
            timeout_between_connections=config.timeout_between_connections,
            backoff_factor=config.backoff_factor,
            backoff_max=config.backoff_max,
            backoff_jitter=config.backoff_jitter,
            timeout_inactivity=config.timeout_inactivity,
            gsock_kw={"logger": GSOCK_LOG},
        )
        timer = self.create_gobj("timer", GTimer, self)
        self.send_event(timer, "EV_SET_TIMER", seconds=config.timeout)

    def destination(self) -> str:
        return _host_port(self.connex.host, self.connex.port)

    def message(self, i: int) -> bytes:
        offset = (i * 7) % _OFFSETS
        return self._block[offset : offset + self.config.size]

    def check_echo(self, echoed: bytearray) -> bool:
        """Whether ``echoed`` is the message in flight (or the start of it); fail if not."""
        expected = self.message(self.echoed)
        if echoed == expected[: len(echoed)]:
            return True
        first = next(i for i in range(len(echoed)) if echoed[i] != expected[i])
        self.fail(f"message {self.echoed + 1}: echoed byte {first} differs from what was sent")
        return False

    def send_next(self) -> None:
        if self.echoed >= self.config.count:
            self.finish()
            return
        self.in_flight = True
        self.send_message()

    def send_message(self) -> None:
        if self.send_event(self.connex, "EV_SEND_DATA", data=self.message(self.echoed)) != -1:
            return
        if self.connex.is_connected():
            # The GSock is closing (the peer's EOF came with the last echo): its
            # EV_DISCONNECTED follows, and the message goes again on the next connection.
            _LOG.debug("message %d refused by a closing connection", self.echoed + 1)
        else:
            self.fail(f"message {self.echoed + 1}: the GConnex refused it")

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
                    "OK: %d messages, %d bytes echoed intact in %.3f s (%.1f round trips/s, "
                    "%d reconnections)",
                    self.config.count,
                    self.echoed_bytes,
                    seconds,
                    self.config.count / seconds,
                    self.reconnections,
                )
        self.send_event(self.connex, "EV_DROP")
        self.gaplic.stop()

    def fail(self, why: str) -> None:
        self.error = why
        self.finish()


# ----------------------------------------------------------------------------------------
#   Command line
# ----------------------------------------------------------------------------------------
def _checked(validator: Callable[[Any], Any], convert: Callable[[Any], Any] = float) -> Any:
    """An argparse ``type``: the GConfig validator's message on bad input."""

    def check(text: str) -> Any:
        try:
            return convert(validator(text))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    check.__name__ = getattr(validator, "__name__", "value")
    return check


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fsmio.examples.echo_client",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--connect",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="a server; repeat it or give a comma list for several (round-robin failover)",
    )
    add("--host", default="127.0.0.1", help="server host (with --port)")
    add(
        "--port",
        type=_checked(port_number, int),
        help="server port (with --host: --connect HOST:PORT)",
    )
    add("--tls", action="store_true", help="use TLS, verifying against the system's CAs")
    add(
        "--cafile",
        "--tls-ca",
        dest="cafile",
        metavar="PEM",
        help="CA file to verify with (implies --tls)",
    )
    add(
        "--server-hostname",
        metavar="NAME",
        help="name checked in the certificate and sent as SNI (--tls)",
    )
    add(
        "--count",
        type=_checked(non_negative_int, int),
        default=100,
        metavar="N",
        help="messages to send (default 100)",
    )
    add(
        "--size",
        type=_checked(positive_int, int),
        default=1024,
        metavar="BYTES",
        help="bytes per message (default 1024)",
    )
    add(
        "--deadline",
        "--timeout",
        dest="deadline",
        metavar="S",
        type=_checked(positive_number),
        default=30.0,
        help="seconds for the whole run, reconnections included (default 30)",
    )
    add(
        "--connect-timeout",
        metavar="S",
        type=_checked(positive_number),
        default=10.0,
        help="seconds one connect attempt may take (default 10)",
    )
    add(
        "--retry-interval",
        metavar="S",
        type=_checked(positive_number),
        default=0.5,
        help="seconds between rounds of failed attempts (default 0.5)",
    )
    add(
        "--backoff-factor",
        metavar="F",
        type=_checked(number_in(1)),
        default=1.0,
        help="each failed round multiplies the interval by this (default 1: fixed)",
    )
    add(
        "--backoff-max",
        metavar="S",
        type=_checked(positive_number),
        default=30.0,
        help="the longest wait between rounds (default 30)",
    )
    add(
        "--backoff-jitter",
        metavar="J",
        type=_checked(fraction),
        default=0.0,
        help="0..1: each wait is multiplied by a random 1 ± this (default 0)",
    )
    add(
        "--inactivity-timeout",
        metavar="S",
        type=_checked(positive_number),
        help="drop a connection idle this many seconds and make a new one (default: off)",
    )
    add(
        "--connect-attempts",
        metavar="N",
        type=int,
        default=0,
        help="give up after this many consecutive failed attempts (default 0: never)",
    )
    add(
        "--log-level",
        default="WARNING",
        metavar="LEVEL",
        help="logging level (stderr; default WARNING)",
    )
    return parser


def _destinations(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    if args.connect and args.port is not None:
        parser.error("give the servers with --connect or with --host/--port, not both")
    if args.port is not None:
        return [(args.host, args.port)]
    if not args.connect:
        parser.error("no server: give --connect HOST:PORT (or --host and --port)")
    destinations = []
    for text in args.connect:
        try:
            destinations += parse_destinations(text)
        except ValueError as exc:
            parser.error(f"--connect {text!r}: {exc}")
    return destinations


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # The second Ctrl-C: out at once, as `fsmio run` does (see tools/runner.py): the
        # work it cut off is not news, so asyncio is not let to report it on the way out.
        logging.getLogger("asyncio").disabled = True
        print("echo_client: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    destinations = _destinations(parser, args)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        GSOCK_LOG.setLevel(logging.WARNING)
    ssl_options: dict[str, Any] = {}
    if args.tls or args.cafile or args.server_hostname:
        # An empty dict means plain TCP; this one means TLS with the default settings.
        ssl_options["minimum_version"] = "TLSv1_2"
        if args.cafile:
            ssl_options["cafile"] = args.cafile
        if args.server_hostname:
            ssl_options["server_hostname"] = args.server_hostname
    with GAplic("echo_client") as gaplic:
        try:
            client: EchoClient = gaplic.create_gobj(
                "client",
                EchoClient,
                gaplic,
                destinations=destinations,
                ssl_options=ssl_options,
                count=args.count,
                size=args.size,
                timeout=args.deadline,
                connect_attempts=args.connect_attempts,
                timeout_waiting_connected=args.connect_timeout,
                timeout_between_connections=args.retry_interval,
                backoff_factor=args.backoff_factor,
                backoff_max=args.backoff_max,
                backoff_jitter=args.backoff_jitter,
                timeout_inactivity=args.inactivity_timeout or -1.0,
                log_result=False,  # printed below
            )
        except GConfigValidateError as exc:
            print(f"echo_client: FAILED: {exc}", file=sys.stderr, flush=True)
            return 1
        gaplic.start()
    if client.error is not None or not client.done:
        why = client.error or (f"interrupted: {client.echoed} of {args.count} messages echoed")
        print(f"echo_client: FAILED: {why}", file=sys.stderr, flush=True)
        return 1
    seconds = max(client.finished - client.started, 1e-9)
    print(
        f"OK messages={args.count} bytes={client.echoed_bytes} seconds={seconds:.3f} "
        f"round_trips_per_s={args.count / seconds:.1f} reconnections={client.reconnections}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
