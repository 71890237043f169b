"""``Pinger``: a slow, endless echo client, so that an inspected program has something to
show (``examples/echo_inspect.toml``, ``start_inspected_echo``).

Every ``interval`` seconds it sends one message through its GConnex to an echo server and
counts the echoes; after every ``reconnect_every`` messages it drops the connection and
connects again at the next tick, so the server's connection gobjs come and go and the
GConnex walks through its states.

Configuration:

===============  =====  =========  ===========================================================
name             type   default    description
===============  =====  =========  ===========================================================
server           str    ''         The unique name of an echo server gobj whose ``port`` is
                                   used (read at start-up); '' uses ``host``/``port``.
host             str    127.0.0.1  The echo server's address.
port             int    0          Its port.
interval         float  0.5        Seconds between messages.
size             int    32         Bytes per message.
reconnect_every  int    10         Drop and reconnect after this many messages; 0 never.
===============  =====  =========  ===========================================================

Input events (bottom, from its GConnex and GTimer): ``EV_CONNECTED``, ``EV_DISCONNECTED``,
``EV_RX_DATA``, ``EV_TIMEOUT``.  No output events.  States ``ST_DISCONNECTED`` and
``ST_CONNECTED``.

``start_inspected_echo`` (for the page's browser tests) runs an ``Echo`` server, a
``Pinger`` and a ``GInspector`` in a GAplic in a thread.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from fsmio.aplic.gaplic import GAplic, GAplicThreadWorker
from fsmio.core.event import Event
from fsmio.core.gconfig import non_negative_int, port_number, positive_int, positive_number
from fsmio.core.gobj import GObj
from fsmio.gobjs.c_connex import GConnex
from fsmio.gobjs.c_timer import GTimer

__all__ = ["PINGER_FSM", "PINGER_GCONFIG", "InspectedEcho", "Pinger", "start_inspected_echo"]

_LOG = logging.getLogger("fsmio.inspector")

# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
PINGER_GCONFIG: dict[str, list[Any]] = {
    "server": [str, "", 0, None, "Unique name of the echo server gobj ('' : host/port)."],
    "host": [str, "127.0.0.1", 0, None, "The echo server's address."],
    "port": [int, 0, 0, port_number, "Its port."],
    "interval": [float, 0.5, 0, positive_number, "Seconds between messages."],
    "size": [int, 32, 0, positive_int, "Bytes per message."],
    "reconnect_every": [int, 10, 0, non_negative_int, "Reconnect after this many; 0 never."],
}


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_connected(self: Pinger, event: Event) -> None:
    self.connections += 1


def ac_disconnected(self: Pinger, event: Event) -> None:
    return None


def ac_rx_data(self: Pinger, event: Event) -> None:
    self.echoed_bytes += len(event.kw.get("data", b""))


def ac_tick_disconnected(self: Pinger, event: Event) -> None:
    self.send_event(self.connex, "EV_CONNECT")


def ac_tick_connected(self: Pinger, event: Event) -> None:
    self.sent += 1
    every = self.config.reconnect_every
    if every and self.sent % every == 0:
        self.send_event(self.connex, "EV_DROP")
        return
    data = (f"ping {self.sent} ".encode() * self.config.size)[: self.config.size]
    self.send_event(self.connex, "EV_SEND_DATA", data=data)


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
PINGER_FSM: dict[str, Any] = {
    "event_list": (
        "EV_CONNECTED: bottom input",
        "EV_DISCONNECTED: bottom input",
        "EV_RX_DATA: bottom input",
        "EV_TIMEOUT: bottom input",
    ),
    "state_list": ("ST_DISCONNECTED", "ST_CONNECTED"),
    "machine": {
        "ST_DISCONNECTED": (
            ("EV_CONNECTED", ac_connected, "ST_CONNECTED"),
            ("EV_DISCONNECTED", ac_disconnected, None),
            ("EV_TIMEOUT", ac_tick_disconnected, None),
        ),
        "ST_CONNECTED": (
            ("EV_RX_DATA", ac_rx_data, None),
            ("EV_DISCONNECTED", ac_disconnected, "ST_DISCONNECTED"),
            ("EV_TIMEOUT", ac_tick_connected, None),
        ),
    },
}


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
class Pinger(GObj):
    """An endless, slow echo client (see the module doc)."""

    def __init__(self) -> None:
        GObj.__init__(self, PINGER_FSM, PINGER_GCONFIG)
        self.connex: GConnex | None = None
        self.sent = 0
        self.connections = 0
        self.echoed_bytes = 0

    def start_up(self) -> None:
        config = self.config
        host, port = config.host, config.port
        if config.server:
            gaplic = self.gaplic
            server = gaplic.find_unique_gobj(config.server) if gaplic is not None else None
            if server is None:
                raise ValueError(f"Pinger: no unique gobj named {config.server!r}")
            listening_on = getattr(server, "listening_on", None)
            if listening_on is None:
                raise ValueError(f"Pinger: {config.server!r} has no listening_on() (not an Echo)")
            host, port = listening_on()
        self.connex = self.create_gobj(
            "connex", GConnex, self, destinations=[(host, port)], timeout_between_connections=0.5
        )
        timer = self.create_gobj("timer", GTimer, self)
        self.send_event(timer, "EV_SET_TIMER", seconds=config.interval, autostart=True)
        self.send_event(self.connex, "EV_CONNECT")


@dataclass
class InspectedEcho:
    """An echo server, a Pinger and a GInspector running in a thread."""

    gaplic: GAplic
    worker: GAplicThreadWorker
    url: str
    inspector: Any

    def stop(self) -> None:
        """Stop the GAplic, wait for its thread (10 s at most) and close it."""
        self.worker.stop(10.0)
        if not self.worker.is_alive():
            self.gaplic.close()


def start_inspected_echo(
    port: int = 0,
    *,
    token: str | None = None,
    interval: float = 0.2,
    reconnect_every: int = 10,
    name: str = "inspected_echo",
    **inspector_config: Any,
) -> InspectedEcho:
    """Start an echo server, a ``Pinger`` (one message every ``interval`` s, reconnecting
    every ``reconnect_every`` messages) and a ``GInspector`` on ``127.0.0.1:port`` in a
    GAplic running in a new thread; return once it serves (``url``).  Call ``stop()``."""
    from fsmio.examples.echo_server import Echo

    from .c_inspector import GInspector

    gaplic = GAplic(name)
    try:
        gaplic.create_gobj("echo", Echo, gaplic, host="127.0.0.1", port=0, __unique_name__=True)
        gaplic.create_gobj(
            "pinger",
            Pinger,
            gaplic,
            server="echo",
            interval=interval,
            reconnect_every=reconnect_every,
        )
        inspector = gaplic.create_gobj(
            "inspector",
            GInspector,
            gaplic,
            host="127.0.0.1",
            port=port,
            token=token,
            **inspector_config,
        )
    except BaseException:
        gaplic.close()
        raise
    started = threading.Event()
    gaplic.add_callback(started.set)
    worker = GAplicThreadWorker(gaplic)
    worker.start()
    if not started.wait(10.0):
        worker.stop(10.0)
        raise RuntimeError("start_inspected_echo: the GAplic did not start within 10 s")
    return InspectedEcho(gaplic, worker, inspector.url, inspector)
