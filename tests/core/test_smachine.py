"""SMachine: the FSM dict format, its validation (spec §1.3) and dispatch (spec §2.1).

Hypothesis drives random valid FSMs with random event sequences against a simple model,
enumerates every (state, event) pair, and builds random invalid FSMs whose MachineError
must name every injected problem.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsmio.core import smachine as smachine_mod
from fsmio.core.errors import (
    EventError,
    EventNotAcceptedError,
    MachineError,
    SendDepthError,
    StateError,
)
from fsmio.core.event import Event
from fsmio.core.gobj import GObj, build_gobj
from fsmio.core.smachine import EMPTY_FSM, MAX_SEND_DEPTH, SMachine, compile_fsm, exception_where

# --------------------------------------------------------------------------------------
#   A small FSM used by most tests
# --------------------------------------------------------------------------------------
CALLS: list[tuple[str, str | None, str]] = []


def ac_connect(self: SMachine, event: Event) -> Any:
    CALLS.append(("connect", self.get_current_state(), event.event_name))
    return "connected"


def ac_data(self: SMachine, event: Event) -> Any:
    CALLS.append(("data", self.get_current_state(), event.event_name))
    return event.kw.get("data")


def ac_stay_elsewhere(self: SMachine, event: Event) -> Any:
    # A None next state lets the action choose.
    self.set_new_state("ST_IDLE")
    return "moved"


FSM: dict[str, Any] = {
    "event_list": (
        "EV_CONNECT: top input",
        "EV_DATA: top input: bottom output",
        "EV_DROP: top input",
        "EV_NOP: bottom input",
        "EV_CONNECTED: top output ST_WAIT ST_CONNECTED",
        "EV_RX: bottom output ST_CONNECTED: top input",
    ),
    "state_list": ("ST_IDLE", "ST_WAIT", "ST_CONNECTED"),
    "machine": {
        "ST_IDLE": (
            ("EV_CONNECT", ac_connect, "ST_WAIT"),
            ("EV_NOP", None, None),
        ),
        "ST_WAIT": (
            ("EV_CONNECTED", None, "ST_CONNECTED"),
            ("EV_DROP", ac_stay_elsewhere, None),
        ),
        "ST_CONNECTED": (
            ("EV_DATA", ac_data, None),
            ("EV_DROP", None, "ST_IDLE"),
        ),
    },
}


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING]


# --------------------------------------------------------------------------------------
#   Validation
# --------------------------------------------------------------------------------------
def test_empty_dict_is_a_valid_empty_fsm() -> None:
    m = SMachine({})
    assert m.get_current_state() is None
    assert m.get_event_list() == []
    assert m.get_state_list() == []
    assert SMachine(EMPTY_FSM).get_current_state() is None


def test_first_state_is_initial() -> None:
    assert SMachine(FSM).get_current_state() == "ST_IDLE"


@pytest.mark.parametrize("fsm", [None, [], "fsm", 3, ("event_list",)])
def test_fsm_not_a_dict(fsm: Any) -> None:
    with pytest.raises(MachineError, match="must be a dict"):
        SMachine(fsm)


def _problems(fsm: Any) -> str:
    with pytest.raises(MachineError) as info:
        compile_fsm(fsm)
    return str(info.value)


def test_machine_key_not_in_state_list() -> None:
    msg = _problems(
        {
            "event_list": ("EV_A",),
            "state_list": ("ST_A",),
            "machine": {"ST_A": (("EV_A", None, None),), "ST_GHOST": ()},
        }
    )
    assert "'ST_GHOST' is not in state_list" in msg


def test_state_without_machine_entry() -> None:
    msg = _problems({"event_list": (), "state_list": ("ST_A", "ST_B"), "machine": {"ST_A": ()}})
    assert "'ST_B' is in state_list but has no entry" in msg


def test_state_list_overfilled() -> None:
    msg = _problems({"event_list": (), "state_list": ("ST_A", "ST_A"), "machine": {"ST_A": ()}})
    assert "state_list OVERFILLED" in msg and "'ST_A'" in msg


def test_event_used_but_not_declared() -> None:
    msg = _problems(
        {"event_list": (), "state_list": ("ST_A",), "machine": {"ST_A": (("EV_X", None, None),)}}
    )
    assert "event 'EV_X' is not in event_list" in msg


def test_event_neither_used_nor_output() -> None:
    msg = _problems(
        {"event_list": ("EV_IN: top input",), "state_list": ("ST_A",), "machine": {"ST_A": ()}}
    )
    assert "'EV_IN' is neither used in 'machine' nor declared 'output'" in msg


def test_output_only_event_is_fine() -> None:
    m = SMachine(
        {"event_list": ("EV_OUT: top output",), "state_list": ("ST_A",), "machine": {"ST_A": ()}}
    )
    assert m.get_output_event_list() == ["EV_OUT"]


def test_event_list_overfilled() -> None:
    msg = _problems(
        {
            "event_list": ("EV_A: top input", "EV_A: output"),
            "state_list": ("ST_A",),
            "machine": {"ST_A": (("EV_A", None, None),)},
        }
    )
    assert "event_list OVERFILLED: 'EV_A'" in msg


def test_next_state_unknown() -> None:
    msg = _problems(
        {
            "event_list": ("EV_A",),
            "state_list": ("ST_A",),
            "machine": {"ST_A": (("EV_A", None, "ST_NOWHERE"),)},
        }
    )
    assert "next state 'ST_NOWHERE' is not in state_list" in msg


def test_action_not_callable() -> None:
    msg = _problems(
        {
            "event_list": ("EV_A",),
            "state_list": ("ST_A",),
            "machine": {"ST_A": (("EV_A", "ac_not_a_function", None),)},
        }
    )
    assert "action 'ac_not_a_function' is neither None nor callable" in msg


def test_duplicate_row_is_an_error() -> None:
    # Deliberate: ginsfsm let the last row silently win; a duplicate is almost always a bug.
    msg = _problems(
        {
            "event_list": ("EV_A",),
            "state_list": ("ST_A",),
            "machine": {"ST_A": (("EV_A", None, None), ("EV_A", ac_data, None))},
        }
    )
    assert "event 'EV_A' has more than one row" in msg


@pytest.mark.parametrize(
    ("fsm", "expected"),
    [
        ({"events": ()}, "unknown FSM key 'events'"),
        ({"event_list": "EV_A"}, "'event_list' must be a tuple or list"),
        ({"state_list": "ST_A"}, "'state_list' must be a tuple or list"),
        ({"machine": ()}, "'machine' must be a dict"),
        ({"event_list": (3,)}, "event_list: 3 is not an event name"),
        ({"event_list": (": output",)}, "is not an event name"),
        ({"state_list": ("",), "machine": {}}, "state_list: '' is not a state name"),
        ({"state_list": (None,), "machine": {}}, "state_list: None is not a state name"),
        ({"state_list": ("ST_A",), "machine": {"ST_A": 5}}, "must be a tuple of rows"),
        ({"state_list": ("ST_A",), "machine": {"ST_A": (("EV_A", None),)}}, "is not (event"),
        ({"state_list": ("ST_A",), "machine": {"ST_A": ("EV_A",)}}, "is not (event"),
        ({"state_list": ("ST_A",), "machine": {"ST_A": ((1, None, None),)}}, "event 1 is not"),
    ],
)
def test_extra_rules_of_compile_fsm(fsm: dict[str, Any], expected: str) -> None:
    assert expected in _problems(fsm)


def test_one_error_lists_all_problems() -> None:
    msg = _problems(
        {
            "event_list": ("EV_A", "EV_A", "EV_UNUSED"),
            "state_list": ("ST_A", "ST_A", "ST_B"),
            "machine": {
                "ST_A": (("EV_A", 42, "ST_Z"), ("EV_Q", None, None)),
                "ST_X": (),
            },
        }
    )
    expected = [
        "event_list OVERFILLED: 'EV_A'",
        "state_list OVERFILLED: 'ST_A'",
        "'ST_B' is in state_list but has no entry",
        "action 42 is neither None nor callable",
        "next state 'ST_Z' is not in state_list",
        "event 'EV_Q' is not in event_list",
        "state 'ST_X' is not in state_list",
        "'EV_UNUSED' is neither used",
    ]
    for text in expected:
        assert text in msg
    assert msg.startswith(f"invalid FSM ({len(expected)} problems)")


def test_single_problem_message_is_singular() -> None:
    assert "(1 problem)" in _problems({"state_list": ("ST_A",), "machine": {}})


def test_compiled_once_per_fsm_dict_and_shared() -> None:
    a, b = SMachine(FSM), SMachine(FSM)
    assert a._fsm is b._fsm is compile_fsm(FSM)
    # An equal but distinct dict is compiled on its own.
    assert compile_fsm(dict(FSM)) is not compile_fsm(FSM)


def test_invalid_fsm_not_cached() -> None:
    bad = {"state_list": ("ST_A",), "machine": {}}
    for _ in range(2):
        with pytest.raises(MachineError):
            compile_fsm(bad)


def test_list_fsm_parts_accepted() -> None:
    m = SMachine(
        {
            "event_list": ["EV_A"],
            "state_list": ["ST_A", "ST_B"],
            "machine": {"ST_A": [["EV_A", None, "ST_B"]], "ST_B": []},
        }
    )
    m.inject_event("EV_A")
    assert m.get_current_state() == "ST_B"


# --------------------------------------------------------------------------------------
#   Dispatch
# --------------------------------------------------------------------------------------
def test_next_state_is_set_before_the_action() -> None:
    m = SMachine(FSM)
    assert m.inject_event("EV_CONNECT") == "connected"
    assert CALLS == [("connect", "ST_WAIT", "EV_CONNECT")]
    assert m.get_current_state() == "ST_WAIT"


def test_none_action_changes_state_and_returns_none() -> None:
    m = SMachine(FSM)
    m.inject_event("EV_CONNECT")
    assert m.inject_event("EV_CONNECTED") is None
    assert m.get_current_state() == "ST_CONNECTED"


def test_none_next_state_stays_and_action_may_move() -> None:
    m = SMachine(FSM)
    m.set_new_state("ST_CONNECTED")
    assert m.inject_event(Event(None, "EV_DATA", data=b"x")) == b"x"
    assert m.get_current_state() == "ST_CONNECTED"
    m.set_new_state("ST_WAIT")
    assert m.inject_event("EV_DROP") == "moved"
    assert m.get_current_state() == "ST_IDLE"


def test_none_action_none_next_state_is_a_no_op() -> None:
    m = SMachine(FSM)
    assert m.inject_event("EV_NOP") is None
    assert m.get_current_state() == "ST_IDLE"


def test_inject_any_object_with_event_name() -> None:
    class Duck:
        event_name = "EV_CONNECT"
        kw: dict[str, Any] = {}

    m = SMachine(FSM)
    assert m.inject_event(Duck()) == "connected"  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [None, 3, b"EV_CONNECT", object()])
def test_inject_non_event_raises_event_error(bad: Any) -> None:
    with pytest.raises(EventError):
        SMachine(FSM).inject_event(bad)


@pytest.mark.parametrize(
    ("event", "why"),
    [("EV_UNKNOWN", "NOT ACCEPTED by UNKNOWN"), ("EV_DATA", "NOT ACCEPTED, no match action")],
)
def test_not_accepted_returns_the_class_and_warns_once(
    caplog: pytest.LogCaptureFixture, event: str, why: str
) -> None:
    m = SMachine(FSM)
    m.logger = logging.getLogger("fsmio.test")  # the original crashed here with a logger
    with caplog.at_level(logging.WARNING):
        ret = m.inject_event(event)
        ret2 = m.inject_event(Event(None, event))
    assert ret is EventNotAcceptedError and ret2 is EventNotAcceptedError
    assert m.get_current_state() == "ST_IDLE"
    assert CALLS == []
    records = warnings_of(caplog)
    assert len(records) == 2
    assert why in records[0].getMessage()
    assert f"ev: {event}" in records[0].getMessage()
    assert "st: ST_IDLE" in records[0].getMessage()
    assert records[0].fsm_event == event  # type: ignore[attr-defined]
    assert records[0].fsm_state == "ST_IDLE"  # type: ignore[attr-defined]


def test_not_accepted_does_not_touch_the_depth_counter() -> None:
    m = SMachine(FSM)
    before = m._ctx.depth
    for _ in range(5):
        m.inject_event("EV_UNKNOWN")
    assert m._ctx.depth == before == 0


@pytest.mark.parametrize("event", ["EV_UNKNOWN", "EV_DATA"])
def test_strict_events_raises(caplog: pytest.LogCaptureFixture, event: str) -> None:
    m = SMachine(FSM)
    m.strict_events = True
    with caplog.at_level(logging.WARNING), pytest.raises(EventNotAcceptedError) as info:
        m.inject_event(event)
    assert event in str(info.value)
    assert m.get_current_state() == "ST_IDLE"
    assert warnings_of(caplog) == []


# --------------------------------------------------------------------------------------
#   States
# --------------------------------------------------------------------------------------
def test_set_new_state_and_errors() -> None:
    m = SMachine(FSM)
    m.set_new_state("ST_CONNECTED")
    assert m.get_current_state() == "ST_CONNECTED"
    # The new state's table is used.
    assert m.inject_event("EV_DROP") is None
    assert m.get_current_state() == "ST_IDLE"
    for bad in ("ST_NOPE", None, 1, ""):
        with pytest.raises(StateError):
            m.set_new_state(bad)  # type: ignore[arg-type]
    assert m.get_current_state() == "ST_IDLE"


def test_set_new_state_private_by_index() -> None:
    m = SMachine(FSM)
    m._set_new_state(3)
    assert m.get_current_state() == "ST_CONNECTED"
    m._set_new_state(1)
    assert m.get_current_state() == "ST_IDLE"
    for bad in (0, 4, -1, "1", 1.0):
        with pytest.raises(StateError):
            m._set_new_state(bad)  # type: ignore[arg-type]


def test_set_new_state_on_empty_fsm() -> None:
    with pytest.raises(StateError):
        SMachine({}).set_new_state("ST_A")


# --------------------------------------------------------------------------------------
#   Introspection
# --------------------------------------------------------------------------------------
def test_event_lists_in_declaration_order() -> None:
    m = SMachine(FSM)
    assert m.get_event_list() == [
        "EV_CONNECT",
        "EV_DATA",
        "EV_DROP",
        "EV_NOP",
        "EV_CONNECTED",
        "EV_RX",
    ]
    assert m.get_output_event_list() == ["EV_DATA", "EV_CONNECTED", "EV_RX"]
    assert m.get_state_list() == ["ST_IDLE", "ST_WAIT", "ST_CONNECTED"]
    assert m._event_list == tuple(m.get_event_list())
    assert m._state_list == tuple(m.get_state_list())
    assert m._output_set == frozenset({"EV_DATA", "EV_CONNECTED", "EV_RX"})
    assert m._event_index == {"": 0, **{ev: i for i, ev in enumerate(m.get_event_list(), 1)}}
    assert m._state_index == {"": 0, "ST_IDLE": 1, "ST_WAIT": 2, "ST_CONNECTED": 3}
    assert m._event_attrs["EV_DATA"] == (
        frozenset({"top", "input"}),
        frozenset({"bottom", "output"}),
    )
    # Lists are copies: changing one does not change the machine.
    m.get_event_list().append("EV_X")
    assert "EV_X" not in m.get_event_list()


def test_annotation_queries() -> None:
    m = SMachine(FSM)
    assert m.get_top_input_events() == ["EV_CONNECT", "EV_DATA", "EV_DROP", "EV_RX"]
    assert m.get_top_output_events() == ["EV_CONNECTED"]
    assert m.get_bottom_input_events() == ["EV_NOP"]
    assert m.get_bottom_output_events() == ["EV_DATA", "EV_RX"]
    # Deliberate: the states of *the given* event (ginsfsm ignored the argument).
    assert m.get_top_output_event_states("EV_CONNECTED") == ["ST_CONNECTED", "ST_WAIT"]
    assert m.get_top_output_event_states("EV_RX") == []
    assert m.get_bottom_output_event_states("EV_RX") == ["ST_CONNECTED"]
    assert m.get_bottom_output_event_states("EV_DATA") == []
    assert m.get_bottom_output_event_states("EV_UNKNOWN") == []


def test_annotation_words_split_on_whitespace_comma_dot() -> None:
    m = SMachine(
        {
            "event_list": ("EV_A:top,output.ST_A", "EV_B :  bottom\tinput"),
            "state_list": ("ST_A",),
            "machine": {"ST_A": (("EV_B", None, None),)},
        }
    )
    assert m.get_event_list() == ["EV_A", "EV_B"]
    assert m.get_top_output_events() == ["EV_A"]
    assert m.get_top_output_event_states("EV_A") == ["ST_A"]
    assert m.get_bottom_input_events() == ["EV_B"]
    # Words of one group go together: "top" and "output" here are in the same group.
    assert m.get_top_input_events() == []


def test_repr_and_name() -> None:
    m = SMachine(FSM)
    assert repr(m) == "SMachine:"
    m.name = "m1"
    assert repr(m) == "SMachine:m1"


# --------------------------------------------------------------------------------------
#   Exceptions in actions and the depth guard
# --------------------------------------------------------------------------------------
def ac_boom(self: SMachine, event: Event) -> Any:
    raise ValueError("boom")


def ac_forward(self: GObj, event: Event) -> Any:
    return self.send_event(self.config.peer, "EV_GO")


def ac_self_loop(self: GObj, event: Event) -> Any:
    return self.send_event(self, "EV_GO")


BOOM_FSM: dict[str, Any] = {
    "event_list": ("EV_GO",),
    "state_list": ("ST_A", "ST_B"),
    "machine": {"ST_A": (("EV_GO", ac_boom, "ST_B"),), "ST_B": ()},
}
FORWARD_FSM: dict[str, Any] = {
    "event_list": ("EV_GO",),
    "state_list": ("ST_A",),
    "machine": {"ST_A": (("EV_GO", ac_forward, None),)},
}
LOOP_FSM: dict[str, Any] = {
    "event_list": ("EV_GO",),
    "state_list": ("ST_A",),
    "machine": {"ST_A": (("EV_GO", ac_self_loop, None),)},
}


class Boom(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, BOOM_FSM)


class Forward(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, FORWARD_FSM, {"peer": [None, None, 0, None, "next gobj"]})


class SelfLoop(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, LOOP_FSM)


def test_exception_in_action_gets_one_note_naming_the_innermost() -> None:
    boom = build_gobj("boom", Boom, None, {}, None)
    fwd = build_gobj("fwd", Forward, None, {"peer": boom}, None)
    with pytest.raises(ValueError, match="boom") as info:
        fwd.send_event(fwd, "EV_GO")
    notes = [n for n in getattr(info.value, "__notes__", []) if n.startswith("fsmio")]
    assert len(notes) == 1
    assert "Boom:boom" in notes[0] and "state ST_A" in notes[0] and "EV_GO" in notes[0]
    assert exception_where(info.value) == "'Boom:boom: Lived', state ST_A, event EV_GO"
    # The next state was set before the action ran; it stays set.
    assert boom.get_current_state() == "ST_B"
    assert boom._ctx.depth == 0


def test_exception_where_of_a_plain_exception() -> None:
    assert exception_where(ValueError()) is None


def test_synchronous_cycle_raises_send_depth_error_not_recursion_error() -> None:
    a = build_gobj("a", SelfLoop, None, {}, None)
    with pytest.raises(SendDepthError) as info:
        a.send_event(a, "EV_GO")
    assert str(MAX_SEND_DEPTH) in str(info.value)
    assert "EV_GO" in str(info.value)
    assert a._ctx.depth == 0
    # The machine still works after the cycle was broken.
    with pytest.raises(SendDepthError):
        a.send_event(a, "EV_GO")
    assert a._ctx.depth == 0


def _helper3(gobj: GObj) -> Any:
    return gobj.send_event(gobj, "EV_GO")


def _helper2(gobj: GObj) -> Any:
    return _helper3(gobj)


def _helper1(gobj: GObj) -> Any:
    return _helper2(gobj)


def ac_through_helpers(self: GObj, event: Event) -> Any:
    return _helper1(self)


class HelperLoop(GObj):
    def __init__(self) -> None:
        GObj.__init__(
            self,
            {
                "event_list": ("EV_GO",),
                "state_list": ("ST_A",),
                "machine": {"ST_A": (("EV_GO", ac_through_helpers, None),)},
            },
        )


@pytest.mark.parametrize("trace", [0, 1])
def test_cycle_through_helper_calls_still_ends_in_send_depth_error(
    caplog: pytest.LogCaptureFixture, trace: int
) -> None:
    # Real actions call helpers that call send_event: several frames per nesting level.
    # The guard must trip before Python's recursion limit does.
    a = build_gobj("a", HelperLoop, None, {"trace_mach": trace, "logger": _SILENT}, None)
    with pytest.raises(SendDepthError):
        a.send_event(a, "EV_GO")
    assert a._ctx.depth == 0


def test_ping_pong_cycle_raises_send_depth_error() -> None:
    a = build_gobj("a", Forward, None, {}, None)
    b = build_gobj("b", Forward, None, {"peer": a}, None)
    a.write_parameters(peer=b)
    with pytest.raises(SendDepthError):
        a.send_event(b, "EV_GO")
    assert a._ctx.depth == 0


def test_traced_cycle_raises_send_depth_error(caplog: pytest.LogCaptureFixture) -> None:
    a = build_gobj("a", SelfLoop, None, {"trace_mach": True}, None)
    with caplog.at_level(logging.INFO, logger="fsmio"), pytest.raises(SendDepthError):
        a.send_event(a, "EV_GO")
    assert a._ctx.depth == 0


def test_depth_counts_nesting() -> None:
    seen: list[int] = []

    def ac_record(self: SMachine, event: Event) -> Any:
        seen.append(self._ctx.depth)
        if len(seen) < 3:
            self.inject_event("EV_GO")

    m = SMachine(
        {
            "event_list": ("EV_GO",),
            "state_list": ("ST_A",),
            "machine": {"ST_A": (("EV_GO", ac_record, None),)},
        }
    )
    m.inject_event("EV_GO")
    assert seen == [1, 2, 3]
    assert m._ctx.depth == 0


# --------------------------------------------------------------------------------------
#   Hypothesis: random valid FSMs against a model
# --------------------------------------------------------------------------------------
@st.composite
def valid_fsms(draw: st.DrawFn) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    """A random valid FSM and its model ``{(state, event): (action_tag, next_state)}``."""
    n_states = draw(st.integers(1, 5))
    n_events = draw(st.integers(0, 6))
    states = [f"ST_{i}" for i in range(n_states)]
    events = [f"EV_{i}" for i in range(n_events)]
    model: dict[tuple[str, str], Any] = {}
    machine: dict[str, list[tuple[str, Any, Any]]] = {s: [] for s in states}
    for s in states:
        for ev in events:
            if draw(st.booleans()):
                tag = draw(st.one_of(st.none(), st.integers(0, 1000)))
                nxt = draw(st.one_of(st.none(), st.sampled_from(states)))
                action = None if tag is None else _make_action(tag)
                machine[s].append((ev, action, nxt))
                model[(s, ev)] = (tag, nxt)
    used = {ev for (_, ev) in model}
    event_list = [ev if ev in used else f"{ev}: top output" for ev in events]
    # Shuffle the state order in 'machine' (the initial state is state_list[0]).
    order = draw(st.permutations(states))
    fsm = {
        "event_list": tuple(event_list),
        "state_list": tuple(states),
        "machine": {s: tuple(machine[s]) for s in order},
    }
    return fsm, model


def _make_action(tag: int) -> Any:
    def action(self: SMachine, event: Event) -> Any:
        self.calls.append((tag, self.get_current_state()))  # type: ignore[attr-defined]
        return tag

    return action


class Recorder(SMachine):
    def __init__(self, fsm: dict[str, Any]) -> None:
        super().__init__(fsm)
        self.calls: list[tuple[int, str | None]] = []


EVENT_NAMES = st.sampled_from([f"EV_{i}" for i in range(7)] + ["EV_NEVER"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_fsms(), st.lists(EVENT_NAMES, max_size=30), st.sampled_from([0, 1, 2]))
def test_random_fsm_follows_the_model(
    fsm_model: tuple[dict[str, Any], dict[tuple[str, str], Any]], sequence: list[str], trace: int
) -> None:
    fsm, model = fsm_model
    m = Recorder(fsm)
    m.logger = _SILENT
    m.trace_mach = trace  # the traced path must behave exactly like the plain one
    try:
        _drive_against_model(m, fsm, model, sequence)
    finally:
        m.trace_mach = 0


def _drive_against_model(
    m: Recorder, fsm: dict[str, Any], model: dict[tuple[str, str], Any], sequence: list[str]
) -> None:
    state = fsm["state_list"][0]
    assert m.get_current_state() == state
    for ev in sequence:
        calls_before = len(m.calls)
        ret = m.inject_event(ev)
        if (state, ev) in model:
            tag, nxt = model[(state, ev)]
            if nxt is not None:
                state = nxt
            assert ret == tag
            if tag is None:
                assert len(m.calls) == calls_before
            else:
                # The action ran once and saw the new state.
                assert m.calls[calls_before:] == [(tag, state)]
        else:
            assert ret is EventNotAcceptedError
            assert len(m.calls) == calls_before
        assert m.get_current_state() == state


@settings(max_examples=60, deadline=None)
@given(valid_fsms())
def test_random_fsm_every_state_event_pair(
    fsm_model: tuple[dict[str, Any], dict[tuple[str, str], Any]],
) -> None:
    fsm, model = fsm_model
    m = Recorder(fsm)
    m.logger = _SILENT
    for state in fsm["state_list"]:
        for ev in [*m.get_event_list(), "EV_NEVER"]:
            m.set_new_state(state)
            ret = m.inject_event(ev)
            if (state, ev) in model:
                tag, nxt = model[(state, ev)]
                assert ret == tag
                assert m.get_current_state() == (nxt if nxt is not None else state)
            else:
                assert ret is EventNotAcceptedError
                assert m.get_current_state() == state
    # Strict machines raise on exactly the illegal pairs.
    m.strict_events = True
    for state in fsm["state_list"]:
        for ev in [*m.get_event_list(), "EV_NEVER"]:
            m.set_new_state(state)
            if (state, ev) in model:
                m.inject_event(ev)
            else:
                with pytest.raises(EventNotAcceptedError):
                    m.inject_event(ev)
                assert m.get_current_state() == state


_SILENT = logging.getLogger("fsmio.tests.silent")
_SILENT.addHandler(logging.NullHandler())
_SILENT.propagate = False


# --------------------------------------------------------------------------------------
#   Hypothesis: random invalid FSMs
# --------------------------------------------------------------------------------------
INJECTIONS = {
    "ghost_state": "'ST_GHOST' is not in state_list",
    "missing_machine": "'ST_MISSING' is in state_list but has no entry",
    "dup_state": "state_list OVERFILLED: 'ST_0'",
    "undeclared_event": "event 'EV_UNDECLARED' is not in event_list",
    "unused_event": "'EV_UNUSED' is neither used",
    "dup_event": "event_list OVERFILLED: 'EV_0'",
    "bad_next": "next state 'ST_NOWHERE' is not in state_list",
    "bad_action": "action 'not callable' is neither None nor callable",
    "dup_row": "event 'EV_0' has more than one row",
}


@settings(max_examples=80, deadline=None)
@given(st.sets(st.sampled_from(sorted(INJECTIONS)), min_size=1), st.integers(1, 4))
def test_random_invalid_fsm_reports_every_problem(injected: set[str], n_states: int) -> None:
    states = [f"ST_{i}" for i in range(n_states)]
    event_list = ["EV_0"]
    machine: dict[str, list[Any]] = {s: [("EV_0", None, None)] for s in states}
    state_list = list(states)
    if "ghost_state" in injected:
        machine["ST_GHOST"] = []
    if "missing_machine" in injected:
        state_list.append("ST_MISSING")
    if "dup_state" in injected:
        state_list.append("ST_0")
    if "undeclared_event" in injected:
        machine["ST_0"].append(("EV_UNDECLARED", None, None))
    if "unused_event" in injected:
        event_list.append("EV_UNUSED: top input")
    if "dup_event" in injected:
        event_list.append("EV_0: output")
    if "bad_next" in injected:
        event_list.append("EV_NEXT")
        machine["ST_0"].append(("EV_NEXT", None, "ST_NOWHERE"))
    if "bad_action" in injected:
        event_list.append("EV_ACTION")
        machine["ST_0"].append(("EV_ACTION", "not callable", None))
    if "dup_row" in injected:
        machine["ST_0"].append(("EV_0", None, None))
    fsm = {"event_list": tuple(event_list), "state_list": tuple(state_list), "machine": machine}
    with pytest.raises(MachineError) as info:
        SMachine(fsm)
    msg = str(info.value)
    for key in injected:
        assert INJECTIONS[key] in msg, key
    for key in set(INJECTIONS) - injected:
        assert INJECTIONS[key] not in msg, key


def test_module_constants() -> None:
    assert smachine_mod.EMPTY_FSM == {"event_list": (), "state_list": (), "machine": {}}
    assert 32 <= MAX_SEND_DEPTH <= 100
