"""Event (spec §2.2): slots, kw as attributes, copy, source lists, re-sending (§6 #24)."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from fsmio.core.errors import EventError
from fsmio.core.event import Event, new_event
from fsmio.core.gobj import GObj, build_gobj


def ac_keep(self: GObj, event: Event) -> Any:
    self.received.append(event)  # type: ignore[attr-defined]
    return event


KEEP_FSM: dict[str, Any] = {
    "event_list": ("EV_A: top input", "EV_B: top input"),
    "state_list": ("ST_IDLE",),
    "machine": {"ST_IDLE": (("EV_A", ac_keep, None), ("EV_B", ac_keep, None))},
}


class Keeper(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, KEEP_FSM)
        self.received: list[Event] = []


def test_fields_and_kw_as_attributes() -> None:
    ev = Event("dst", "EV_A", None, data=b"x", n=3)
    assert ev.destination == "dst"
    assert ev.event_name == "EV_A"
    assert ev.source == []
    assert ev.kw == {"data": b"x", "n": 3}
    assert ev.data == b"x" and ev.n == 3
    # kw *is* the attribute dict: a change through one is seen through the other.
    ev.kw["extra"] = 1
    assert ev.extra == 1
    ev.more = 2
    assert ev.kw["more"] == 2


def test_slots() -> None:
    assert set(Event.__slots__) == {"__dict__", "destination", "event_name", "source"}
    ev = Event(None, "EV_A")
    # The slots are not in the kw dict.
    assert ev.kw == {}


def test_missing_attribute_raises_attribute_error() -> None:
    ev = Event(None, "EV_A", data=1)
    with pytest.raises(AttributeError, match="nope"):
        _ = ev.nope
    with pytest.raises(AttributeError):
        _ = ev.__nope__


def test_unset_slot_does_not_recurse() -> None:
    bare = Event.__new__(Event)
    with pytest.raises(AttributeError):
        _ = bare.event_name
    with pytest.raises(AttributeError):
        _ = bare.other


@pytest.mark.parametrize(
    ("source", "expected"),
    [(None, []), ("g", ["g"]), (("a", "b"), ["a", "b"]), (["a"], ["a"])],
)
def test_source_normalised_to_a_list(source: Any, expected: list[Any]) -> None:
    ev = Event(None, "EV_A", source)
    assert ev.source == expected
    assert isinstance(ev.source, list)


def test_copy_is_independent() -> None:
    ev = Event("dst", "EV_A", ["s"], data=[1])
    dup = ev.copy()
    assert dup is not ev
    assert (dup.destination, dup.event_name, dup.source, dup.kw) == ("dst", "EV_A", ["s"], ev.kw)
    dup.source.append("t")
    dup.kw["n"] = 2
    assert ev.source == ["s"]
    assert "n" not in ev.kw
    # A shallow copy: the values themselves are shared.
    assert dup.data is ev.data


def test_new_event_takes_ownership() -> None:
    source: list[Any] = ["s"]
    kw = {"a": 1}
    ev = new_event("dst", "EV_A", source, kw)
    assert ev.source is source and ev.kw is kw
    assert isinstance(ev, Event)


def test_repr() -> None:
    text = repr(Event("dst", "EV_A", None, data=1))
    assert text == "Event('EV_A', destination='dst', source=[], kw={'data': 1})"


def test_copy_module_and_pickle() -> None:
    ev = Event("dst", "EV_A", ["s"], data=1)
    dup = copy.copy(ev)
    assert dup.event_name == "EV_A" and dup.kw == {"data": 1}
    back = pickle.loads(pickle.dumps(ev))
    assert (back.destination, back.event_name, back.source, back.kw) == (
        "dst",
        "EV_A",
        ["s"],
        {"data": 1},
    )


def test_send_event_builds_source_and_kw() -> None:
    a = build_gobj("a", Keeper, None, {}, None)
    b = build_gobj("b", Keeper, None, {}, None)
    ev = a.send_event(b, "EV_A", data=b"x")
    assert ev.destination is b
    assert ev.source == [a]
    assert ev.kw == {"data": b"x"}


def test_resending_an_event_appends_source_without_aliasing() -> None:
    a = build_gobj("a", Keeper, None, {}, None)
    b = build_gobj("b", Keeper, None, {}, None)
    c = build_gobj("c", Keeper, None, {}, None)
    first = a.send_event(b, "EV_A", data=1)
    second = b.send_event(c, first, extra=2)
    assert second is not first
    assert second.source == [a, b]
    assert first.source == [a]  # not aliased (spec §6 #24)
    assert second.source is not first.source
    assert second.destination is c
    assert second.event_name == "EV_A"
    # kw merged, the new keys win, and the original kw is untouched.
    assert second.kw == {"data": 1, "extra": 2}
    assert first.kw == {"data": 1}
    third = b.send_event(c, first, data=9)
    assert third.data == 9 and first.data == 1


def test_resending_by_the_last_sender_does_not_duplicate_it() -> None:
    a = build_gobj("a", Keeper, None, {}, None)
    b = build_gobj("b", Keeper, None, {}, None)
    first = a.send_event(b, "EV_A")
    again = a.send_event(b, first)
    assert again.source == [a]
    assert again.source is not first.source


def test_resending_a_renamed_event() -> None:
    # GConnex's idiom: change event_name and send the Event on.
    a = build_gobj("a", Keeper, None, {}, None)
    b = build_gobj("b", Keeper, None, {}, None)
    ev = Event(None, "EV_A", None, data=1)
    ev.event_name = "EV_B"
    got = a.send_event(b, ev)
    assert got.event_name == "EV_B" and got.source == [a] and got.data == 1
    assert ev.source == []


@pytest.mark.parametrize("bad", [None, 3, b"EV_A", ("EV_A",)])
def test_send_event_rejects_non_events(bad: Any) -> None:
    a = build_gobj("a", Keeper, None, {}, None)
    with pytest.raises(EventError):
        a.send_event(a, bad)


def test_posting_an_event_object(gaplic: Any) -> None:
    a = gaplic.create_gobj("a", Keeper, gaplic)
    b = gaplic.create_gobj("b", Keeper, gaplic)
    first = a.send_event(b, "EV_A", data=1)
    b.post_event(a, first, extra=2)
    assert a.received == []
    gaplic._loop()
    [posted] = a.received
    assert posted.source == [a, b] and first.source == [a]
    assert posted.kw == {"data": 1, "extra": 2}


def test_framework_built_events_behave_as_events() -> None:
    a = build_gobj("a", Keeper, None, {}, None)
    ev = a.send_event(a, "EV_A", data=[1])
    assert isinstance(ev, Event)
    assert repr(ev).startswith("Event('EV_A', ")
    dup = ev.copy()
    assert (dup.event_name, dup.kw, dup.source) == ("EV_A", {"data": [1]}, [a])
    assert dup.source is not ev.source and dup.kw is not ev.kw
    shallow = copy.copy(ev)
    assert shallow.kw == ev.kw and shallow.event_name == "EV_A"
    plain = new_event(None, "EV_B", [], {"n": 1})
    back = pickle.loads(pickle.dumps(plain))
    assert isinstance(back, Event) and back.kw == {"n": 1} and back.event_name == "EV_B"
    with pytest.raises(AttributeError, match="nope"):
        _ = ev.nope
