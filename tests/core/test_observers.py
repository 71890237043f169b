"""Dispatch and lifecycle observers: the hooks the inspector watches a program through."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from fsmio.core import GObj, smachine
from fsmio.core.gobj import add_lifecycle_observer, remove_lifecycle_observer
from fsmio.core.smachine import add_dispatch_observer, remove_dispatch_observer


def ac_ping(self: Any, event: Any) -> Any:
    if event.kw.get("nested"):
        self.send_event(self, "EV_PONG", value=event.kw["nested"])
    if event.kw.get("boom"):
        raise ValueError("boom")
    return "pinged"


def ac_pong(self: Any, event: Any) -> Any:
    return event.kw["value"]


FSM = {
    "event_list": ("EV_PING: top input", "EV_PONG: top input"),
    "state_list": ("ST_IDLE", "ST_BUSY"),
    "machine": {
        "ST_IDLE": (("EV_PING", ac_ping, "ST_BUSY"),),
        "ST_BUSY": (("EV_PONG", ac_pong, "ST_IDLE"), ("EV_PING", ac_ping, None)),
    },
}


class Pinger(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, FSM, {})


Record = tuple[int, int, Any, str, Any, Any, Any, Any]


@pytest.fixture
def seen() -> Any:
    records: list[Record] = []

    def observer(seq: int, depth: int, machine: Any, event: Any, *rest: Any) -> None:
        records.append((seq, depth, machine, event.event_name, *rest))

    add_dispatch_observer(observer)
    try:
        yield records
    finally:
        remove_dispatch_observer(observer)
    assert not smachine._trace_any


def test_observer_sees_each_dispatch_with_states_and_return(seen: list[Record]) -> None:
    gobj = GObj().create_gobj(None, Pinger, None)
    assert gobj.send_event(gobj, "EV_PING", nested=7) == "pinged"
    # The outer dispatch started first (lower seq) but is reported last.
    (inner, outer) = seen
    assert outer[3] == "EV_PING" and inner[3] == "EV_PONG"
    assert outer[0] < inner[0]
    assert (outer[1], inner[1]) == (0, 1)
    assert (outer[4], outer[5], outer[6], outer[7]) == ("ST_IDLE", "ST_BUSY", "pinged", None)
    assert (inner[4], inner[5], inner[6]) == ("ST_BUSY", "ST_IDLE", 7)
    assert gobj.get_current_state() == "ST_IDLE"


def test_a_row_that_keeps_the_state_reports_the_same_state(seen: list[Record]) -> None:
    gobj = GObj().create_gobj(None, Pinger, None)
    gobj.send_event(gobj, "EV_PING")
    gobj.send_event(gobj, "EV_PING")
    assert (seen[1][4], seen[1][5]) == ("ST_BUSY", "ST_BUSY")


def test_observer_sees_an_action_that_raises(seen: list[Record]) -> None:
    gobj = GObj().create_gobj(None, Pinger, None)
    with pytest.raises(ValueError, match="boom"):
        gobj.send_event(gobj, "EV_PING", boom=True)
    assert isinstance(seen[0][7], ValueError)


def test_a_raising_observer_is_removed_and_dispatch_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def bad(*args: Any) -> None:
        raise RuntimeError("observer bug")

    add_dispatch_observer(bad)
    gobj = GObj().create_gobj(None, Pinger, None)
    with caplog.at_level(logging.ERROR, logger="fsmio"):
        assert gobj.send_event(gobj, "EV_PING") == "pinged"
    assert "dispatch observer" in caplog.text
    assert bad not in smachine._observers
    assert not smachine._trace_any


def test_observers_and_trace_together(seen: list[Record], caplog: pytest.LogCaptureFixture) -> None:
    gobj = GObj().create_gobj(None, Pinger, None, trace_mach=True)
    with caplog.at_level(logging.INFO, logger="fsmio"):
        gobj.send_event(gobj, "EV_PING")
    assert "-> mach:" in caplog.text and "new_st: ST_BUSY" in caplog.text
    assert len(seen) == 1
    gobj.trace_mach = False


def test_lifecycle_observer_sees_creation_and_destruction() -> None:
    events: list[tuple[str, str]] = []

    def observer(what: str, gobj: GObj) -> None:
        events.append((what, gobj.name))

    add_lifecycle_observer(observer)
    try:
        root = GObj()
        parent = root.create_gobj("parent", Pinger, None)
        root.create_gobj("child", Pinger, parent)
        GObj.destroy_gobj(parent)
    finally:
        remove_lifecycle_observer(observer)
    assert events == [
        ("created", "parent"),
        ("created", "child"),
        ("destroyed", "child"),
        ("destroyed", "parent"),
    ]


def test_a_bound_method_observer_is_removed_by_an_equal_bound_method() -> None:
    class Watcher:
        def __init__(self) -> None:
            self.n = 0

        def on_dispatch(self, *args: Any) -> None:
            self.n += 1

        def on_lifecycle(self, what: str, gobj: GObj) -> None:
            self.n += 1

    watcher = Watcher()
    add_dispatch_observer(watcher.on_dispatch)
    add_lifecycle_observer(watcher.on_lifecycle)
    # Each attribute access makes a new bound method: equal, not identical.
    remove_dispatch_observer(watcher.on_dispatch)
    remove_lifecycle_observer(watcher.on_lifecycle)
    assert not smachine._observers
    gobj = GObj().create_gobj(None, Pinger, None)
    gobj.send_event(gobj, "EV_PING")
    assert watcher.n == 0
