"""GAplic factories for the process-worker tests (imported in spawned children)."""

from __future__ import annotations

import time
from pathlib import Path

from fsmio import GAplic, GObj

EMPTY = {"event_list": (), "state_list": ("ST_IDLE",), "machine": {"ST_IDLE": ()}}


class Marker(GObj):
    """Writes 'started' to ``path`` when created and 'stopped' when the GAplic stops."""

    def __init__(self) -> None:
        GObj.__init__(self, EMPTY, {"path": [str, "", 0, None, "file to write"]})

    def start_up(self) -> None:
        path = Path(self.config.path)
        path.write_text("started\n")

        def stopped() -> None:
            with path.open("a") as file:
                file.write("stopped\n")

        self.gaplic.add_shutdown_callback(stopped)


def make_marker_gaplic(path: str, exit_code: int = 0) -> GAplic:
    gaplic = GAplic("marker")
    gaplic.create_gobj("marker", Marker, None, path=path)
    gaplic.exit_code = exit_code
    return gaplic


def make_stuck_gaplic(path: str) -> GAplic:
    """A GAplic whose loop is blocked (it cannot handle SIGTERM): only SIGKILL stops it."""
    gaplic = make_marker_gaplic(path)

    def block() -> None:
        Path(path).write_text("blocked\n")
        time.sleep(120)

    gaplic.add_callback(block)
    return gaplic


def not_a_gaplic() -> object:
    return object()
