"""A gclass for the inspector's control test: ``EV_PING`` (an input event the page may
send with a token) moves it from ``ST_IDLE`` to ``ST_PINGED`` and appends the event's
``text`` to the file named by its ``out`` parameter, so the test sees that the event
arrived, with its keyword values, from outside the process; the action returns the text,
which the page shows as the event's return value (as text, never as HTML).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fsmio import GObj
from fsmio.core.event import Event

RECORDER_GCONFIG: dict[str, list[Any]] = {
    "out": [str, "", 0, None, "File that gets one JSON line per EV_PING."],
}


def ac_ping(self: Recorder, event: Event) -> str:
    self.pings += 1
    text = event.kw.get("text")
    with Path(self.config.out).open("a", encoding="utf-8") as out:
        out.write(json.dumps({"text": text, "n": self.pings}) + "\n")
    return f"ping {self.pings}: {text}"  # shown as the event's return value


RECORDER_FSM: dict[str, Any] = {
    "event_list": ("EV_PING: top input",),
    "state_list": ("ST_IDLE", "ST_PINGED"),
    "machine": {
        "ST_IDLE": (("EV_PING", ac_ping, "ST_PINGED"),),
        "ST_PINGED": (("EV_PING", ac_ping, None),),
    },
}


class Recorder(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, RECORDER_FSM, RECORDER_GCONFIG)
        self.pings = 0
