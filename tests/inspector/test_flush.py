"""Coalescing and slow viewers, exactly: the flushes are driven by hand (no loop runs)
and the viewer is a fake WebSocket gobj whose ``write_paused`` the test sets."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

from fsmio import GAplic
from fsmio.core import smachine
from fsmio.core.event import Event
from fsmio.core.gobj import GObj
from fsmio.inspector import GInspector

from .test_inspector import Spinner


def ac_send(self: FakeWs, event: Event) -> int:
    self.sent.append(json.loads(event.kw["data"]))
    return len(event.kw["data"])


def ac_close(self: FakeWs, event: Event) -> None:
    self.closed = event.kw.get("code")


FAKE_WS_FSM: dict[str, Any] = {
    "event_list": ("EV_SEND_MESSAGE: top input", "EV_CLOSE: top input"),
    "state_list": ("ST_OPEN",),
    "machine": {"ST_OPEN": (("EV_SEND_MESSAGE", ac_send, None), ("EV_CLOSE", ac_close, None))},
}


class FakeWs(GObj):
    """What GInspector uses of a GWebSocket: EV_SEND_MESSAGE and ``write_paused``."""

    def __init__(self) -> None:
        GObj.__init__(self, FAKE_WS_FSM)
        self.sent: list[dict[str, Any]] = []
        self.write_paused = False
        self.closed: int | None = None

    def take(self, kind: str | None = None) -> list[dict[str, Any]]:
        out = [m for m in self.sent if kind is None or m["type"] == kind]
        self.sent.clear()
        return out


def watched(gaplic: GAplic, **config: Any) -> tuple[GInspector, FakeWs, Spinner]:
    inspector: GInspector = gaplic.create_gobj("inspector", GInspector, gaplic, port=0, **config)
    spinner: Spinner = gaplic.create_gobj("spinner", Spinner, gaplic)
    ws: FakeWs = gaplic.create_gobj("ws", FakeWs, inspector)  # the inspector's: not shown
    inspector.send_event(inspector, "EV_ON_OPEN", ws=ws)
    assert [m["type"] for m in ws.take()] == ["hello", "tree"]
    return inspector, ws, spinner


def spin(spinner: Spinner, times: int) -> None:
    for _ in range(times):
        spinner.send_event(spinner, "EV_SPIN")


def flush(inspector: GInspector) -> None:
    inspector.send_event(inspector, "EV_FLUSH")


def test_n_events_between_two_flushes_are_one_message(gaplic: GAplic) -> None:
    inspector, ws, spinner = watched(gaplic, history_size=1000, max_batch=10)
    spin(spinner, 7)
    flush(inspector)
    [events] = ws.take("events")
    assert [e["event"] for e in events["items"]] == ["EV_SPIN"] * 7
    assert events["dropped"] == 0
    flush(inspector)
    assert ws.take("events") == []  # nothing new: nothing sent
    spin(spinner, 50)
    flush(inspector)
    [events] = ws.take("events")
    assert len(events["items"]) == 10 and events["dropped"] == 40
    seqs = [e["seq"] for e in events["items"]]
    assert seqs == sorted(seqs)


def test_a_backed_up_viewer_gets_nothing_then_its_drops_and_a_fresh_tree(
    gaplic: GAplic,
) -> None:
    inspector, ws, spinner = watched(gaplic, history_size=100, max_batch=10)
    ws.write_paused = True
    spin(spinner, 30)
    flush(inspector)
    assert ws.take() == []
    viewer = inspector._viewers[ws]
    assert viewer.stalled
    # Memory while stalled: the ring is the only store, and it is full at 100.
    tracemalloc.start()
    try:
        spin(spinner, 200)
        flush(inspector)
        before, _ = tracemalloc.get_traced_memory()
        spin(spinner, 5000)
        for _ in range(20):
            flush(inspector)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(inspector._ring) == 100 and ws.sent == []
    assert after - before < 64 * 1024, after - before
    gaplic.create_gobj("late", Spinner, gaplic)  # a tree change it misses
    flush(inspector)
    ws.write_paused = False
    inspector.send_event(inspector, "EV_TRANSMIT_READY", ws=ws)
    flush(inspector)
    kinds = [m["type"] for m in ws.sent]
    assert kinds[0] == "tree" and "added" not in kinds
    assert "late" in {n["name"] for n in ws.sent[0]["nodes"]}
    [events] = ws.take("events")
    assert len(events["items"]) == 10
    assert events["dropped"] == 30 + 200 + 5000 - 10


def test_filters_and_states_per_flush(gaplic: GAplic) -> None:
    inspector, ws, spinner = watched(gaplic, history_size=100, max_batch=100)
    inspector.send_event(
        inspector,
        "EV_ON_MESSAGE",
        ws=ws,
        data=json.dumps({"type": "filter", "event": ["EV_START"]}),
    )
    spin(spinner, 5)
    spinner.send_event(spinner, "EV_START", chains=0)
    flush(inspector)
    [events] = ws.take("events")
    assert [e["event"] for e in events["items"]] == ["EV_START"]
    assert events["dropped"] == 0  # filtered out is not dropped


def _traced_elsewhere() -> bool:
    return smachine._traced_machines > 0 or bool(smachine._global_trace_mach)


def test_the_last_viewer_leaving_removes_the_observers(gaplic: GAplic) -> None:
    inspector, ws, _spinner = watched(gaplic)
    assert smachine._trace_any and smachine._observers
    inspector.send_event(inspector, "EV_ON_CLOSE", ws=ws)
    assert not smachine._observers
    # Off again unless something else traces (a machine with trace_mach on).
    assert smachine._trace_any is _traced_elsewhere()
    assert inspector.viewers == 0 and not inspector._nodes
