"""A server that answers each connection with its GAplic's name and closes it."""

from __future__ import annotations

import sys
from typing import Any

from fsmio import GObj, GServerSock
from fsmio.core.event import Event


def ac_connected(self: WhoAmI, event: Event) -> None:
    gsock = event.kw["gsock"]
    self.send_event(gsock, "EV_SEND_DATA", data=f"{self.gaplic.name}\n".encode())


def ac_ignore(self: WhoAmI, event: Event) -> None:
    return None


WHOAMI_FSM: dict[str, Any] = {
    "event_list": (
        "EV_CONNECTED: bottom input",
        "EV_RX_DATA: bottom input",
        "EV_DISCONNECTED: bottom input",
    ),
    "state_list": ("ST_IDLE",),
    "machine": {
        "ST_IDLE": (
            ("EV_CONNECTED", ac_connected, None),
            ("EV_RX_DATA", ac_ignore, None),
            ("EV_DISCONNECTED", ac_ignore, None),
        )
    },
}


class WhoAmI(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, WHOAMI_FSM, {"port": [int, 0, 0, None, "Port."]})

    def start_up(self) -> None:
        self.create_gobj("server", GServerSock, self, host="127.0.0.1", port=self.config.port)


class Stuck(GObj):
    """Blocks its GAplic's loop for a minute once running: only SIGKILL ends it at once."""

    def __init__(self) -> None:
        GObj.__init__(
            self, {"event_list": (), "state_list": ("ST_IDLE",), "machine": {"ST_IDLE": ()}}
        )

    def start_up(self) -> None:
        import time

        def block() -> None:
            # One write: print() makes two ("STUCK", then the newline) when stdout is
            # unbuffered, and the two workers' lines could interleave on the shared pipe.
            sys.stdout.write("STUCK\n")
            sys.stdout.flush()
            time.sleep(60)

        self.gaplic.add_callback(block)
