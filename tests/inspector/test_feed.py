"""The feed without I/O: the ring buffer, the filter, the coalescing cursor, the checks of
what a page sends."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmio.inspector.feed import (
    MAX_MESSAGE,
    MAX_REPR,
    EventFilter,
    EvTuple,
    FeedError,
    RingBuffer,
    ViewerCursor,
    dumps,
    ev_dict,
    parse_message,
    short_repr,
)


def ev(n: int, **kw: Any) -> EvTuple:
    fields: dict[str, Any] = {
        "seq": n,
        "t": 1.0 * n,
        "depth": 0,
        "src": None,
        "src_name": None,
        "dst": 1,
        "dst_name": "echo",
        "gclass": "Echo",
        "event": "EV_RX_DATA",
        "state": "ST_A",
        "next_state": "ST_A",
        "ret": "None",
        "error": None,
    }
    fields.update(kw)
    return EvTuple(**fields)


# ----------------------------------------------------------------------------------------
#   Ring buffer
# ----------------------------------------------------------------------------------------
def test_ring_keeps_the_last_capacity_items_and_counts_all() -> None:
    ring = RingBuffer(3)
    for i in range(5):
        ring.append(i)
    assert list(ring) == [2, 3, 4]
    assert len(ring) == 3 and ring.total == 5 and ring.first == 2
    assert ring.since(0) == [2, 3, 4]
    assert ring.since(3) == [3, 4]
    assert ring.since(5) == []
    ring.clear()
    assert list(ring) == [] and ring.total == 5 and ring.since(0) == []


@pytest.mark.parametrize("capacity", [0, -1, 1.5, True, "3"])
def test_ring_capacity_must_be_a_positive_int(capacity: Any) -> None:
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(capacity)


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=50),
    appends=st.integers(min_value=0, max_value=300),
    start=st.integers(min_value=0, max_value=320),
)
def test_ring_property_bounded_and_since_is_the_tail(
    capacity: int, appends: int, start: int
) -> None:
    ring = RingBuffer(capacity)
    for i in range(appends):
        ring.append(i)
        assert len(ring) <= capacity
    assert len(ring) == min(capacity, appends)
    assert ring.total == appends
    expected = [i for i in range(max(0, appends - capacity), appends) if i >= start]
    assert ring.since(start) == expected


# ----------------------------------------------------------------------------------------
#   Filter
# ----------------------------------------------------------------------------------------
def test_empty_filter_passes_everything() -> None:
    assert EventFilter().empty
    assert EventFilter().matches(ev(1))


def test_filter_lists_all_must_match() -> None:
    f = EventFilter(gclass=["Echo"], event=["EV_RX_DATA", "EV_CONNECTED"])
    assert f.matches(ev(1))
    assert not f.matches(ev(1, gclass="GSock"))
    assert not f.matches(ev(1, event="EV_TIMEOUT"))


def test_filter_gobj_matches_source_or_destination_and_state_before_or_after() -> None:
    f = EventFilter(gobj=["client"])
    assert f.matches(ev(1, src_name="client"))
    assert f.matches(ev(1, dst_name="client"))
    assert not f.matches(ev(1))
    g = EventFilter(state=["ST_CONNECTED"])
    assert g.matches(ev(1, state="ST_WAIT", next_state="ST_CONNECTED"))
    assert g.matches(ev(1, state="ST_CONNECTED", next_state="ST_IDLE"))
    assert not g.matches(ev(1))


# ----------------------------------------------------------------------------------------
#   The cursor: coalescing and drops
# ----------------------------------------------------------------------------------------
def test_cursor_takes_what_arrived_since_the_last_take_in_seq_order() -> None:
    ring = RingBuffer(100)
    cursor = ViewerCursor(ring)
    assert cursor.take(ring, 10) is None
    # Appended in post-order (inner before outer), sent in seq (pre-) order.
    ring.append(ev(2, depth=1))
    ring.append(ev(1))
    taken = cursor.take(ring, 10)
    assert taken is not None
    items, dropped = taken
    assert [e.seq for e in items] == [1, 2] and dropped == 0
    assert cursor.take(ring, 10) is None


def test_many_events_in_one_flush_make_one_message_of_at_most_max_batch() -> None:
    ring = RingBuffer(10_000)
    cursor = ViewerCursor(ring)
    for i in range(5000):
        ring.append(ev(i))
    taken = cursor.take(ring, 100)
    assert taken is not None
    items, dropped = taken
    assert len(items) == 100 and dropped == 4900
    assert [e.seq for e in items] == list(range(4900, 5000))  # the newest kept
    assert cursor.dropped_total == 4900


def test_a_lapped_cursor_counts_what_the_ring_overwrote() -> None:
    ring = RingBuffer(10)
    cursor = ViewerCursor(ring)
    for i in range(25):
        ring.append(ev(i))
    taken = cursor.take(ring, 100)
    assert taken is not None
    items, dropped = taken
    assert [e.seq for e in items] == list(range(15, 25))
    assert dropped == 15


def test_filtered_out_events_are_not_taken_nor_counted_dropped() -> None:
    ring = RingBuffer(100)
    cursor = ViewerCursor(ring)
    cursor.filter = EventFilter(event=["EV_TIMEOUT"])
    for i in range(50):
        ring.append(ev(i, event="EV_TIMEOUT" if i % 10 == 0 else "EV_RX_DATA"))
    taken = cursor.take(ring, 100)
    assert taken is not None
    items, dropped = taken
    assert [e.seq for e in items] == [0, 10, 20, 30, 40] and dropped == 0


@settings(max_examples=100, deadline=None)
@given(
    bursts=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=20),
    capacity=st.integers(min_value=1, max_value=200),
    max_batch=st.integers(min_value=1, max_value=100),
)
def test_cursor_property_every_event_is_sent_or_counted_once(
    bursts: list[int], capacity: int, max_batch: int
) -> None:
    ring = RingBuffer(capacity)
    cursor = ViewerCursor(ring)
    sent: list[int] = []
    dropped_sum = 0
    n = 0
    for burst in bursts:
        for _ in range(burst):
            ring.append(ev(n))
            n += 1
        taken = cursor.take(ring, max_batch)  # one flush: at most one message
        if taken is not None:
            items, dropped = taken
            assert len(items) <= max_batch
            sent.extend(e.seq for e in items)
            dropped_sum += dropped
    assert sent == sorted(sent) and len(set(sent)) == len(sent)
    assert len(sent) + dropped_sum == n
    assert cursor.dropped_total == dropped_sum


# ----------------------------------------------------------------------------------------
#   JSON out
# ----------------------------------------------------------------------------------------
def test_ev_dict_has_the_protocol_fields() -> None:
    assert set(ev_dict(ev(1))) == {
        "seq",
        "t",
        "depth",
        "src",
        "src_name",
        "dst",
        "dst_name",
        "gclass",
        "event",
        "state",
        "next_state",
        "ret",
        "error",
    }


def test_dumps_replaces_non_finite_numbers() -> None:
    assert json.loads(dumps({"a": math.inf, "b": [math.nan, 1.5]})) == {"a": None, "b": [None, 1.5]}


def test_short_repr_is_bounded_and_survives_a_broken_repr() -> None:
    assert short_repr(None) == "None"
    assert len(short_repr(b"x" * 10_000_000)) <= MAX_REPR
    assert len(short_repr(list(range(100_000)))) <= MAX_REPR

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert "Broken" in short_repr(Broken())


# ----------------------------------------------------------------------------------------
#   What a page sends
# ----------------------------------------------------------------------------------------
def test_valid_messages_are_normalized() -> None:
    assert parse_message('{"type":"auth","token":"t"}') == {"type": "auth", "token": "t"}
    assert parse_message('{"type":"filter","event":["EV_X"]}') == {
        "type": "filter",
        "gclass": [],
        "gobj": [],
        "state": [],
        "event": ["EV_X"],
    }
    assert parse_message('{"type":"select","id":null}') == {"type": "select", "id": None}
    assert parse_message('{"type":"select","id":3}') == {"type": "select", "id": 3}
    assert parse_message('{"type":"history"}') == {"type": "history"}
    assert parse_message('{"type":"send_event","id":2,"event":"EV_X","kw":{"a":[1]}}') == {
        "type": "send_event",
        "id": 2,
        "event": "EV_X",
        "kw": {"a": [1]},
    }
    assert parse_message('{"type":"trace","id":2,"on":true}') == {
        "type": "trace",
        "id": 2,
        "on": True,
    }


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"{}", "binary"),
        ("x" * (MAX_MESSAGE + 1), "too long"),
        ("{", "not JSON"),
        ("[1, 2]", "got a array"),
        ('"text"', "got a string"),
        ("{}", "missing 'type'"),
        ('{"type": 5}', "missing 'type'"),
        ('{"type": "nope"}', "unknown type 'nope'"),
        ('{"type": "auth"}', "missing 'token'"),
        ('{"type": "auth", "token": 1}', "'token' must be a string"),
        ('{"type": "filter", "gclass": "Echo"}', "'gclass' must be a list"),
        ('{"type": "filter", "event": [1]}', "must hold strings"),
        ('{"type": "filter", "event": ' + json.dumps(["e"] * 300) + "}", "at most 256"),
        ('{"type": "select"}', "missing 'id'"),
        ('{"type": "select", "id": "3"}', "must be an integer"),
        ('{"type": "select", "id": true}', "must be an integer"),
        ('{"type": "select", "id": 1.5}', "must be an integer"),
        ('{"type": "select", "id": 99999999999999999999999}', "out of range"),
        ('{"type": "select", "id": -1}', "out of range"),
        ('{"type": "send_event", "id": 1}', "missing 'event'"),
        ('{"type": "send_event", "id": 1, "event": ""}', "non-empty"),
        ('{"type": "send_event", "id": 1, "event": "EV", "kw": [1]}', "must be a JSON object"),
        ('{"type": "send_event", "id": 1, "event": "EV", "kw": {"__x": 1}}', "control keyword"),
        ('{"type": "trace", "id": 1, "on": "yes"}', "true or false"),
        ('{"type": "trace", "on": true}', "missing 'id'"),
        ("[" * 100_000 + "]" * 100_000, "too long"),
        ("[" * 30_000 + "]" * 30_000, "JSON"),
    ],
)
def test_hostile_messages_say_what_was_wrong_and_what_was_expected(data: Any, says: str) -> None:
    with pytest.raises(FeedError, match=says.replace("[", r"\[").replace("(", r"\(")):
        parse_message(data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    message=st.dictionaries(
        st.sampled_from(["type", "id", "token", "event", "kw", "on", "gclass", "gobj", "x"]),
        _json | st.sampled_from(["auth", "filter", "select", "history", "send_event", "trace"]),
    )
)
def test_any_json_object_is_accepted_or_a_feed_error(message: dict[str, Any]) -> None:
    try:
        out = parse_message(json.dumps(message))
    except FeedError as exc:
        assert str(exc)
    else:
        assert out["type"] == message["type"]
