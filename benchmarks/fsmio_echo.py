"""The fsmio echo server of the benchmark: GServerSock + GSock + a user gobj.

    python -m benchmarks.fsmio_echo --host 127.0.0.1 --port 0 [--loop uvloop|asyncio]

Every message goes the FSM way: the connection's GSock broadcasts ``EV_RX_DATA`` to the
``Echo`` gobj, whose action sends the data back with ``EV_SEND_DATA``.  The same program a
user writes.  It does not take ``EV_TRANSMIT_READY``: an echo has no use for it (and a
GSock emits it only after output that had to wait, to a subscriber that takes it).
Prints ``READY <host> <port>``; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from benchmarks.common import raise_nofile
from fsmio import GAplic, GObj
from fsmio.core.event import Event
from fsmio.gobjs.c_srv_sock import GServerSock


def ac_rx_data(self: Echo, event: Event) -> Any:
    return self.send_event(event.gsock, "EV_SEND_DATA", data=event.data)


ECHO_FSM: dict[str, Any] = {
    "event_list": (
        "EV_CONNECTED: bottom input",
        "EV_RX_DATA: bottom input",
        "EV_DISCONNECTED: bottom input",
    ),
    "state_list": ("ST_ECHOING",),
    "machine": {
        "ST_ECHOING": (
            ("EV_CONNECTED", None, None),
            ("EV_RX_DATA", ac_rx_data, None),
            ("EV_DISCONNECTED", None, None),
        )
    },
}


class Echo(GObj):
    """Echoes the data of every connection of its GServerSock child."""

    def __init__(self) -> None:
        GObj.__init__(self, ECHO_FSM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fsmio echo server (benchmark)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    raise_nofile()
    with GAplic("fsmio_echo", use_uvloop=args.loop == "uvloop") as gaplic:
        echo = gaplic.create_gobj("echo", Echo, None)
        server = gaplic.create_gobj(
            "server", GServerSock, echo, host=args.host, port=args.port, backlog=4096
        )
        print(f"READY {args.host} {server.config.port}", flush=True)
        gaplic.start()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
