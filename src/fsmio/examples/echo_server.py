"""An echo server: a GServerSock whose every connection is echoed by a user gobj.

    python -m fsmio.examples.echo_server --host 127.0.0.1 --port 0 \\
        [--tls-cert cert.pem --tls-key key.pem] [--max-seconds S]

Every message goes through the FSM path: the connection's GSock broadcasts ``EV_RX_DATA``
to the ``Echo`` gobj, whose action sends the data back with ``EV_SEND_DATA``.

Prints exactly one line on stdout, ``READY <host> <port>``, once listening (port 0 picks a
free port, and the line tells which); everything else (logs, the closing statistics) goes
to stderr.  Stops cleanly on SIGTERM or SIGINT, or after ``--max-seconds``: exit 0.  A
second SIGINT while it stops (pending output being delivered) leaves at once: exit 130,
like ``fsmio run``.  A port in use or bad TLS files: a one-line error on stderr, exit 1.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from fsmio.aplic.gaplic import GAplic
from fsmio.core.errors import GConfigValidateError
from fsmio.core.event import Event
from fsmio.core.gobj import GObj
from fsmio.gobjs.c_srv_sock import GServerSock
from fsmio.gobjs.c_timer import GTimer

from ._cli import interruptible, server_parser, setup_logging

_LOG = logging.getLogger("fsmio.echo_server")

# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
ECHO_GCONFIG: dict[str, Any] = {
    "host": [str, "127.0.0.1", 0, None, "Address to listen on."],
    "port": [int, 0, 0, None, "Port (0: a free one)."],
    "ssl_options": [dict, {}, 0, None, "TLS server options (certfile, keyfile)."],
    "max_seconds": [float, -1, 0, None, "Stop after this many seconds; <= 0: run until told."],
}


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_connected(self: Echo, event: Event) -> None:
    self.connections += 1
    _LOG.debug("connection from %s", event.kw.get("peername"))


def ac_rx_data(self: Echo, event: Event) -> Any:
    data = event.kw["data"]
    self.messages += 1
    self.bytes += len(data)
    return self.send_event(event.kw["gsock"], "EV_SEND_DATA", data=data)


def ac_disconnected(self: Echo, event: Event) -> None:
    _LOG.debug("connection %s closed: %s", event.kw.get("gsock"), event.kw.get("reason"))


def ac_timeout(self: Echo, event: Event) -> None:
    _LOG.info("--max-seconds reached, stopping")
    self.gaplic.stop()


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
ECHO_FSM: dict[str, Any] = {
    # No EV_TRANSMIT_READY: this gobj has no use for it, and a GSock (or GConnex) does not
    # send it to a subscriber whose FSM does not take it.
    "event_list": (
        "EV_CONNECTED: bottom input",
        "EV_RX_DATA: bottom input",
        "EV_DISCONNECTED: bottom input",
        "EV_TIMEOUT: bottom input",
    ),
    "state_list": ("ST_ECHOING",),
    "machine": {
        "ST_ECHOING": (
            ("EV_CONNECTED", ac_connected, None),
            ("EV_RX_DATA", ac_rx_data, None),
            ("EV_DISCONNECTED", ac_disconnected, None),
            ("EV_TIMEOUT", ac_timeout, None),
        )
    },
}


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
class Echo(GObj):
    """Owns the GServerSock and echoes the data of every connection."""

    def __init__(self) -> None:
        GObj.__init__(self, ECHO_FSM, ECHO_GCONFIG)
        self.connections = 0
        self.messages = 0
        self.bytes = 0
        self.server: GServerSock | None = None

    def start_up(self) -> None:
        config = self.config
        # Listening is synchronous: a port in use fails here, at create_gobj.
        self.server = self.create_gobj(
            "server",
            GServerSock,
            self,
            host=config.host,
            port=config.port,
            ssl_options=config.ssl_options,
        )
        if config.max_seconds > 0:
            timer = self.create_gobj("timer", GTimer, self)
            self.send_event(timer, "EV_SET_TIMER", seconds=config.max_seconds)

    def listening_on(self) -> tuple[str, int]:
        assert self.server is not None
        sockname = self.server.get_sockname()
        host = self.config.host or (str(sockname[0]) if sockname else "")
        return host, int(self.server.config.port)


def _main(argv: list[str] | None) -> int:
    parser = server_parser(__doc__)
    parser.add_argument("--tls-cert", help="PEM certificate chain (enables TLS)")
    parser.add_argument("--tls-key", help="PEM private key (default: inside --tls-cert)")
    parser.add_argument("--max-seconds", type=float, default=-1, help="stop after S seconds")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    ssl_options: dict[str, Any] = {}
    if args.tls_cert:
        ssl_options["certfile"] = args.tls_cert
        if args.tls_key:
            ssl_options["keyfile"] = args.tls_key
    elif args.tls_key:
        parser.error("--tls-key needs --tls-cert")

    with GAplic("echo_server") as gaplic:
        try:
            echo: Echo = gaplic.create_gobj(
                "echo",
                Echo,
                gaplic,
                host=args.host,
                port=args.port,
                ssl_options=ssl_options,
                max_seconds=args.max_seconds,
            )
        except (OSError, GConfigValidateError) as exc:
            print(f"echo_server: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        host, port = echo.listening_on()

        def announce() -> None:
            # From inside the running loop: SIGTERM/SIGINT handlers are installed by now,
            # so a signal sent as soon as READY is read still stops the server cleanly.
            print(f"READY {host} {port}", flush=True)
            _LOG.info("echoing on %s:%s%s", host, port, " (TLS)" if ssl_options else "")

        gaplic.add_callback(announce)
        started = time.monotonic()
        gaplic.start()
        _LOG.info(
            "stopped after %.1f s: %d connections, %d messages, %d bytes echoed",
            time.monotonic() - started,
            echo.connections,
            echo.messages,
            echo.bytes,
        )
    return 0


main = interruptible("echo_server", _main)


if __name__ == "__main__":
    sys.exit(main())
