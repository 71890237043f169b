"""Deliberately broken gclasses: ``fsmio check`` must find each kind of problem here.

Line numbers matter to tests/tools/test_check.py: it finds the expected lines by
searching this file for the marker comments (``# <- kind``), so edits stay safe.
"""

from __future__ import annotations

from typing import Any

from fsmio import GObj


def ac_ok(self: Any, event: Any) -> None:
    pass


def ac_jump(self: Any, event: Any) -> None:
    self.set_new_state("ST_JUMPED")


def ac_forgotten(self: Any, event: Any) -> None:  # <- unused-action
    pass


# The core rejects this one: every problem of it is reported, each on its own line.
BROKEN_FSM: dict[str, Any] = {
    "event_list": (
        "EV_GO: top input",
        "EV_GO: top input",  # <- duplicate-name
        "EV_NOBODY",  # <- unused-event
    ),
    "state_list": ("ST_A", "ST_B", "ST_LOST"),  # <- missing-state
    "machine": {
        "ST_A": (
            ("EV_GO", ac_ok, "ST_NOWHERE"),  # <- bad-next-state
            ("EV_UNDECLARED", ac_ok, None),  # <- undeclared-event
            ("EV_GO", ac_ok),  # <- bad-row
        ),
        "ST_B": (
            ("EV_GO", "not callable", None),  # <- bad-action
            ("EV_GO", ac_ok, None),  # <- duplicate-row
        ),
        "ST_GHOST": (),  # <- unknown-state
    },
}

# Valid for the core, but wrong all the same.
ODD_FSM: dict[str, Any] = {
    "event_list": (
        "EV_START: top input",
        "EV_PLAIN",  # <- unannotated-event
        "EV_NEVER: top input: bottom output",  # <- unhandled-input
        "EV_JUMP: top input",
    ),
    "state_list": (
        "ST_IDLE",
        "ST_RUNNING",
        "ST_ISLAND",  # <- unreachable-state
        "ST_JUMPED",  # <- dead-end-state
    ),
    "machine": {
        "ST_IDLE": (
            ("EV_START", ac_ok, "ST_RUNNING"),
            ("EV_JUMP", ac_jump, None),
        ),
        "ST_RUNNING": (("EV_PLAIN", ac_ok, "ST_IDLE"),),
        "ST_ISLAND": (("EV_START", ac_ok, "ST_IDLE"),),
        "ST_JUMPED": (),
    },
}

ODD_GCONFIG: dict[str, list[Any]] = {
    "port": [int, "eighty", 0, None, "A default that is not an int."],  # <- template-error
    "quiet": [bool, False, 0, None, ""],  # <- no-description
}


class Broken(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, BROKEN_FSM)


class Odd(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, ODD_FSM)


class OddConfig(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, ODD_FSM, ODD_GCONFIG)


class NoInit(GObj):  # <- init-error
    def __init__(self) -> None:
        pass
