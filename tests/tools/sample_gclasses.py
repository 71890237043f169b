"""Small gclasses that the runner tests name in their TOML files."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fsmio import GObj
from fsmio.core.event import Event

_LOG = logging.getLogger("fsmio")


# ----------------------------------------------------------------------------------------
#   Forever: runs until the GAplic is stopped; its shutdown callback can take its time
# ----------------------------------------------------------------------------------------
FOREVER_GCONFIG: dict[str, list[Any]] = {
    "hang": [float, 0.0, 0, None, "Seconds the shutdown callback takes."],
}


def ac_ping(self: Forever, event: Event) -> str:
    return "pong"


FOREVER_FSM: dict[str, Any] = {
    "event_list": ("EV_PING: top input",),
    "state_list": ("ST_IDLE",),
    "machine": {"ST_IDLE": (("EV_PING", ac_ping, None),)},
}


class Forever(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, FOREVER_FSM, FOREVER_GCONFIG)

    def start_up(self) -> None:
        self.gaplic.add_shutdown_callback(self._on_shutdown)
        self.post_event(self, "EV_PING")

    def _on_shutdown(self) -> Any:
        _LOG.warning("Forever %s: shutdown callback (hang %.1f s)", self.name, self.config.hang)
        if self.config.hang > 0:
            return asyncio.sleep(self.config.hang)
        return None


# ----------------------------------------------------------------------------------------
#   Boom: start_up raises
# ----------------------------------------------------------------------------------------
BOOM_FSM: dict[str, Any] = {
    "event_list": ("EV_PING: top input",),
    "state_list": ("ST_IDLE",),
    "machine": {"ST_IDLE": (("EV_PING", ac_ping, None),)},
}


class Boom(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, BOOM_FSM)

    def start_up(self) -> None:
        raise RuntimeError("boom in start_up")


class NotAGclass:
    """Not a GObj subclass."""
