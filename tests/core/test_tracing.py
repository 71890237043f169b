"""Tracing through ``logging`` (spec §2.8): machine, creation and subscription traces.

The library never configures logging; these tests read the records with ``caplog``: the
documented line shapes (``-> mach:``, `` - mach: ... new_st:``, ``<- mach: ... ret:``,
indented by nesting depth) and the structured ``extra`` fields (``fsm_*``) that let a
handler filter or format them without parsing text.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from fsmio.core.event import Event
from fsmio.core.gobj import GObj, build_gobj
from fsmio.core.smachine import SMachine


def ac_go(self: GObj, event: Event) -> Any:
    peer = self.config.peer
    if peer is not None:
        self.send_event(peer, "EV_GO")
    return "done"


def ac_fail(self: GObj, event: Event) -> Any:
    raise RuntimeError("nope")


TRACE_FSM: dict[str, Any] = {
    "event_list": ("EV_GO: top input", "EV_STAY: top input", "EV_FAIL", "EV_OUT: top output"),
    "state_list": ("ST_A", "ST_B"),
    "machine": {
        "ST_A": (("EV_GO", ac_go, "ST_B"), ("EV_STAY", None, "ST_A"), ("EV_FAIL", ac_fail, None)),
        "ST_B": (("EV_GO", ac_go, "ST_A"), ("EV_STAY", None, None)),
    },
}


class Tracer(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, TRACE_FSM, {"peer": [None, None, 0, None, "next gobj"]})


def new(name: str, parent: GObj | None = None, **kw: Any) -> Tracer:
    return build_gobj(name, Tracer, parent, kw, None)  # type: ignore[return-value]


def trace_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if hasattr(r, "fsm_phase")]


# --------------------------------------------------------------------------------------
#   trace_mach
# --------------------------------------------------------------------------------------
def test_no_trace_when_off(caplog: pytest.LogCaptureFixture) -> None:
    a = new("a")
    with caplog.at_level(logging.DEBUG):
        a.send_event(a, "EV_GO")
    assert caplog.records == []


def test_machine_trace_lines_and_fields(caplog: pytest.LogCaptureFixture) -> None:
    a = new("a", trace_mach=True)
    with caplog.at_level(logging.INFO, logger="fsmio"):
        assert a.send_event(a, "EV_GO", n=1) == "done"
    records = trace_records(caplog)
    assert [r.getMessage() for r in records] == [
        "-> mach: ('Tracer:a: Lived'), st: ST_A, ev: (EV_GO), ac: ac_go()",
        " - mach: ('Tracer:a: Lived'), new_st: ST_B",
        "<- mach: ('Tracer:a: Lived'), st: ST_B, ret: 'done'",
    ]
    assert all(r.levelno == logging.INFO and r.name == "fsmio" for r in records)
    assert [r.fsm_phase for r in records] == ["->", "-", "<-"]  # type: ignore[attr-defined]
    first = records[0]
    assert {
        k: getattr(first, k)
        for k in (
            "fsm_gclass",
            "fsm_gobj",
            "fsm_state",
            "fsm_event",
            "fsm_action",
            "fsm_next_state",
            "fsm_depth",
        )
    } == {
        "fsm_gclass": "Tracer",
        "fsm_gobj": "a",
        "fsm_state": "ST_A",
        "fsm_event": "EV_GO",
        "fsm_action": "ac_go",
        "fsm_next_state": "ST_B",
        "fsm_depth": 0,
    }


def test_trace_level_two_adds_the_kw(caplog: pytest.LogCaptureFixture) -> None:
    a = new("a", trace_mach=2)
    with caplog.at_level(logging.INFO, logger="fsmio"):
        a.send_event(a, "EV_GO", n=1)
    assert "ev: (EV_GO, {'n': 1}), ac: ac_go()" in trace_records(caplog)[0].getMessage()


def test_no_new_state_line_without_a_change(caplog: pytest.LogCaptureFixture) -> None:
    a = new("a", trace_mach=True)
    with caplog.at_level(logging.INFO, logger="fsmio"):
        assert a.send_event(a, "EV_STAY") is None  # None action, same next state
        a.set_new_state("ST_B")
        a.send_event(a, "EV_STAY")  # None next state
    messages = [r.getMessage() for r in trace_records(caplog)]
    assert messages == [
        "-> mach: ('Tracer:a: Lived'), st: ST_A, ev: (EV_STAY), ac: None()",
        "<- mach: ('Tracer:a: Lived'), st: ST_A, ret: None",
        "-> mach: ('Tracer:a: Lived'), st: ST_B, ev: (EV_STAY), ac: None()",
        "<- mach: ('Tracer:a: Lived'), st: ST_B, ret: None",
    ]
    assert trace_records(caplog)[0].fsm_action is None  # type: ignore[attr-defined]


def test_nested_sends_are_indented(caplog: pytest.LogCaptureFixture) -> None:
    c = new("c", trace_mach=True)
    b = new("b", trace_mach=True, peer=c)
    a = new("a", trace_mach=True, peer=b)
    with caplog.at_level(logging.INFO, logger="fsmio"):
        a.send_event(a, "EV_GO")
    records = trace_records(caplog)
    shapes = [(r.getMessage().split(" mach:")[0], r.fsm_gobj) for r in records]  # type: ignore[attr-defined]
    assert shapes == [
        ("->", "a"),
        (" -", "a"),
        ("  ->", "b"),
        ("   -", "b"),
        ("    ->", "c"),
        ("     -", "c"),
        ("    <-", "c"),
        ("  <-", "b"),
        ("<-", "a"),
    ]
    assert [r.fsm_depth for r in records if r.fsm_phase == "->"] == [0, 1, 2]  # type: ignore[attr-defined]


def test_trace_of_an_action_that_raises(caplog: pytest.LogCaptureFixture) -> None:
    a = new("a", trace_mach=True)
    with caplog.at_level(logging.INFO, logger="fsmio"), pytest.raises(RuntimeError):
        a.send_event(a, "EV_FAIL")
    last = trace_records(caplog)[-1]
    assert last.getMessage() == (
        "<- mach: ('Tracer:a: Lived'), st: ST_A, raised: RuntimeError('nope')"
    )
    assert last.fsm_phase == "<-"  # type: ignore[attr-defined]
    assert a._ctx.depth == 0


def test_global_trace_mach(caplog: pytest.LogCaptureFixture) -> None:
    a = new("a")
    SMachine.global_trace_mach(True)
    assert a.trace_mach == 1
    with caplog.at_level(logging.INFO, logger="fsmio"):
        a.send_event(a, "EV_GO")
    assert len(trace_records(caplog)) == 3
    SMachine.global_trace_mach(False)
    assert a.trace_mach == 0
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fsmio"):
        a.send_event(a, "EV_GO")
    assert trace_records(caplog) == []


def test_trace_mach_setter_logs_on_off(caplog: pytest.LogCaptureFixture) -> None:
    a = new("a")
    with caplog.at_level(logging.INFO, logger="fsmio"):
        a.trace_mach = True
        a.trace_mach = 2  # still on: no new line
        a.trace_mach = False
        a.trace_mach = 0
    assert [r.getMessage() for r in caplog.records] == [
        "* 'Tracer:a: Lived': trace_mach ON",
        "* 'Tracer:a: Lived': trace_mach OFF",
    ]


def test_trace_goes_to_the_gobj_logger(caplog: pytest.LogCaptureFixture) -> None:
    mine = logging.getLogger("fsmio.tests.mine")
    a = new("a", trace_mach=True, logger=mine)
    with caplog.at_level(logging.INFO, logger="fsmio.tests.mine"):
        a.send_event(a, "EV_GO")
        a.send_event(a, "EV_NOPE")
    assert {r.name for r in caplog.records} == {"fsmio.tests.mine"}


def test_not_accepted_warning_fields(caplog: pytest.LogCaptureFixture) -> None:
    a = new("a", trace_mach=True)
    with caplog.at_level(logging.INFO, logger="fsmio"):
        a.send_event(a, "EV_OUT")
    [record] = trace_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "mach: ('Tracer:a: Lived'), st: ST_A, ev: EV_OUT (NOT ACCEPTED, no match action)"
    )
    assert (record.fsm_phase, record.fsm_state, record.fsm_event) == ("!", "ST_A", "EV_OUT")  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------
#   trace_creation and trace_subscription
# --------------------------------------------------------------------------------------
def test_creation_trace(caplog: pytest.LogCaptureFixture) -> None:
    root = new("root")
    with caplog.at_level(logging.INFO, logger="fsmio"):
        kid = new("kid", root, trace_creation=True)
        GObj.destroy_gobj(kid)
    records = [
        r for r in caplog.records if getattr(r, "fsm_phase", "").startswith(("creat", "destr"))
    ]
    # caplog.text was formatted when logged (a record's message would show the gobj now).
    lines = [re.sub(r"^\S+\s+\S+ ", "", line) for line in caplog.text.splitlines()]
    assert lines == [
        "Creating --> 'Tracer:kid'",
        "Created <-- 'Tracer:root.Tracer:kid: Lived'",
        "Destroying --> 'Tracer:root.Tracer:kid: Destroyed'",
        "Destroyed! <-- 'Tracer:root.Tracer:kid: Destroyed'",
    ]
    assert [r.fsm_phase for r in records] == ["creating", "created", "destroying", "destroyed"]  # type: ignore[attr-defined]
    assert {r.fsm_gclass for r in records} == {"Tracer"}  # type: ignore[attr-defined]
    assert records[-1].fsm_gobj == "root.kid"  # type: ignore[attr-defined]


def test_creation_trace_marks_unique_names(gaplic: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="fsmio"):
        gaplic.create_gobj("u", Tracer, gaplic, trace_creation=True, __unique_name__=True)
    assert "Created <--! 'GAplic:test.Tracer:u: Lived'" in caplog.text


def test_no_creation_trace_when_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="fsmio"):
        GObj.destroy_gobj(new("quiet"))
    assert caplog.records == []


def test_subscription_trace(caplog: pytest.LogCaptureFixture) -> None:
    pub = new("pub", trace_subscription=True)
    sub = new("sub")
    with caplog.at_level(logging.INFO, logger="fsmio"):
        s = pub.subscribe_event("EV_OUT", sub)
        pub.broadcast_event("EV_OUT", n=1)
        pub.delete_subscription("EV_OUT", sub)
    records = [r for r in caplog.records if r.levelno == logging.INFO]
    assert [r.getMessage() for r in records] == [
        f"NEW Subscription: {s!r}",
        "BROADCAST event: 'Tracer:pub: Lived' EV_OUT {'n': 1}",
        f"DEL Subscription: {s!r}",
    ]
    assert [r.fsm_phase for r in records] == ["subscribe", "broadcast", "unsubscribe"]  # type: ignore[attr-defined]
    assert {r.fsm_gobj for r in records} == {"pub"}  # type: ignore[attr-defined]
    assert records[1].fsm_event == "EV_OUT"  # type: ignore[attr-defined]
    assert records[0].fsm_event == ["EV_OUT"]  # type: ignore[attr-defined]
