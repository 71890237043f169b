"""Subscriptions and broadcast (spec §2.4, catalogue G7).

Deliberate differences from ginsfsm checked here: subscriptions are delivered in the
order they were made (§6 #25); control keywords count by truth value, not presence (§6
#14); subscriber None means the parent (§6 #14); ``__first_shot__`` works (§6 #14);
``__subscription_reference__`` works without a rename (§6 #12);
``__new_subscriptor_event__`` works (§6 #13); both spellings of
``__deferred_without_oevent__`` are accepted.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmio import GAplic
from fsmio.core.deferred import Deferred
from fsmio.core.errors import EventError, GObjError
from fsmio.core.event import Event
from fsmio.core.gobj import GObj, Subscription, build_gobj

LOG: list[tuple[str, str, dict[str, Any]]] = []


def ac_record(self: GObj, event: Event) -> Any:
    LOG.append((self.name, event.event_name, dict(event.kw)))
    hook = self.hook
    if hook is not None:
        hook(self, event)
    return self.config.ret


SUB_FSM: dict[str, Any] = {
    "event_list": (
        "EV_A: top output",
        "EV_B: top output",
        "EV_IN: top input",
        "EV_RENAMED: top input",
        "EV_NEW_SUB: top input",
    ),
    "state_list": ("ST_IDLE",),
    "machine": {
        "ST_IDLE": (
            ("EV_A", ac_record, None),
            ("EV_B", ac_record, None),
            ("EV_IN", ac_record, None),
            ("EV_RENAMED", ac_record, None),
            ("EV_NEW_SUB", ac_record, None),
        )
    },
}


class Node(GObj):
    """Publishes EV_A and EV_B, and records every event it gets."""

    def __init__(self) -> None:
        GObj.__init__(self, SUB_FSM, {"ret": [None, None, 0, None, "action return value"]})
        self.hook: Any = None


@pytest.fixture(autouse=True)
def _clear_log() -> None:
    LOG.clear()


def node(name: str, parent: GObj | None = None, **kw: Any) -> Node:
    return build_gobj(name, Node, parent, kw, None)  # type: ignore[return-value]


def got(name: str) -> list[tuple[str, dict[str, Any]]]:
    return [(ev, kw) for who, ev, kw in LOG if who == name]


# --------------------------------------------------------------------------------------
#   Event names and subscribers
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("names", "a", "b"),
    [
        ("EV_A", True, False),
        (("EV_A", "EV_B"), True, True),
        (["EV_B"], False, True),
        (None, True, True),
        (("EV_A", None), True, True),
    ],
)
def test_event_name_forms(names: Any, a: bool, b: bool) -> None:
    pub, sub = node("pub"), node("sub")
    pub.subscribe_event(names, sub)
    pub.broadcast_event("EV_A")
    pub.broadcast_event("EV_B")
    assert [ev for ev, _ in got("sub")] == [e for e, on in (("EV_A", a), ("EV_B", b)) if on]


@pytest.mark.parametrize("names", ["EV_IN", ("EV_A", "EV_NOPE"), ("EV_A", 3), 3, b"EV_A"])
def test_bad_event_names(names: Any) -> None:
    pub, sub = node("pub"), node("sub")
    with pytest.raises(EventError):
        pub.subscribe_event(names, sub)
    assert pub.get_subscriptions() == []


def test_subscriber_none_means_parent() -> None:
    parent = node("parent")
    child = node("child", parent)
    sub = child.subscribe_event("EV_A", None)
    assert sub.subscriber is parent
    child.broadcast_event("EV_A")
    assert got("parent") == [("EV_A", {})]
    assert child.delete_subscription("EV_A", None) is True
    orphan = node("orphan")
    with pytest.raises(GObjError, match="there is none"):
        orphan.subscribe_event("EV_A", None)


@pytest.mark.parametrize("bad", [3, object(), ["sub"], b"sub"])
def test_bad_subscriber(bad: Any) -> None:
    with pytest.raises(GObjError, match="a subscriber must be"):
        node("pub").subscribe_event("EV_A", bad)


def test_unique_name_subscriber_resolved_at_broadcast(
    gaplic: GAplic, caplog: pytest.LogCaptureFixture
) -> None:
    pub = gaplic.create_gobj("pub", Node, gaplic)
    pub.subscribe_event("EV_A", "later")
    with caplog.at_level(logging.WARNING, logger="fsmio"):
        pub.broadcast_event("EV_A")
    assert "no unique gobj 'later'" in caplog.text
    gaplic.create_gobj("later", Node, gaplic, __unique_name__=True)
    pub.broadcast_event("EV_A", n=1)
    assert got("later") == [("EV_A", {"n": 1})]


def test_unique_name_subscriber_without_gaplic(caplog: pytest.LogCaptureFixture) -> None:
    pub = node("pub")
    pub.subscribe_event("EV_A", "someone")
    with caplog.at_level(logging.WARNING, logger="fsmio"):
        pub.broadcast_event("EV_A")
    assert "no unique gobj 'someone'" in caplog.text


def test_unique_name_subscriber_compared_by_value(gaplic: GAplic) -> None:
    pub = gaplic.create_gobj("pub", Node, gaplic)
    gaplic.create_gobj("echo", Node, gaplic, __unique_name__=True)
    # Equal names built at run time are distinct str objects: they must still match.
    name1, name2 = "".join(["ec", "ho"]), "".join(["e", "cho"])
    assert name1 == name2 and name1 is not name2
    pub.subscribe_event("EV_A", name1)
    pub.subscribe_event("EV_A", name2)
    assert len(pub.get_subscriptions()) == 1
    assert pub.delete_subscription("EV_A", "".join(["echo"])) is True
    assert pub.get_subscriptions() == []


def test_deferred_subscriber() -> None:
    calls: list[Any] = []
    pub = node("pub")
    d = Deferred("ref", lambda *a, **kw: calls.append((a, kw)), 1, x=2)
    pub.subscribe_event("EV_A", d)
    pub.broadcast_event("EV_A", data=3)
    [(args, kw)] = calls
    assert args == (1,) and kw["x"] == 2
    event = kw["event"]
    assert event.event_name == "EV_A" and event.data == 3 and event.source == [pub]
    assert event.destination is d
    d.cancel()
    pub.broadcast_event("EV_A")
    assert len(calls) == 1


@pytest.mark.parametrize("key", ["__deferred_without_oevent__", "__deferred_witout_oevent__"])
def test_deferred_without_oevent(key: str) -> None:
    calls: list[Any] = []
    pub = node("pub")
    pub.subscribe_event("EV_A", Deferred(None, lambda **kw: calls.append(kw)), **{key: True})
    pub.broadcast_event("EV_A", data=1)
    assert calls == [{}]


# --------------------------------------------------------------------------------------
#   Duplicates, order and dedup
# --------------------------------------------------------------------------------------
def test_duplicate_replaced_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    pub, sub = node("pub"), node("sub")
    first = pub.subscribe_event(("EV_B", "EV_A"), sub, tag=1)
    with caplog.at_level(logging.WARNING, logger="fsmio"):
        second = pub.subscribe_event(("EV_A", "EV_B"), sub, tag=2)
    assert "duplicate subscription" in caplog.text
    assert pub.get_subscriptions() == [second]
    assert first.active is False
    assert second.tag == 2 and second.kw == {"tag": 2}


def test_duplicate_of_a_hard_subscription_keeps_both(caplog: pytest.LogCaptureFixture) -> None:
    pub, sub = node("pub"), node("sub")
    hard = pub.subscribe_event("EV_A", sub, __hard_subscription__=True)
    with caplog.at_level(logging.WARNING, logger="fsmio"):
        soft = pub.subscribe_event("EV_A", sub)
    assert pub.get_subscriptions() == [hard, soft]
    pub.broadcast_event("EV_A")
    assert len(got("sub")) == 1  # still one copy per broadcast


def test_delivery_in_subscription_order() -> None:
    pub = node("pub")
    subs = [node(n) for n in ("s3", "s1", "s2", "s0")]
    for s in subs:
        pub.subscribe_event("EV_A", s)
    pub.broadcast_event("EV_A")
    assert [who for who, _, _ in LOG] == ["s3", "s1", "s2", "s0"]


def test_one_copy_per_broadcast() -> None:
    pub, sub, other = node("pub"), node("sub"), node("other")
    pub.subscribe_event("EV_A", sub)
    pub.subscribe_event(None, sub)
    pub.subscribe_event(("EV_A", "EV_B"), sub)
    pub.subscribe_event("EV_A", other)
    pub.broadcast_event("EV_A")
    assert [who for who, _, _ in LOG] == ["sub", "other"]
    LOG.clear()
    pub.broadcast_event("EV_A")
    assert [who for who, _, _ in LOG] == ["sub", "other"]


def test_each_subscriber_gets_its_own_kw() -> None:
    pub, s1, s2 = node("pub"), node("s1"), node("s2")

    def mutate(self: GObj, event: Event) -> None:
        event.kw["data"].append("s1")  # the values are shared; the dict is not
        event.kw["added"] = True
        event.kw.pop("n")

    s1.hook = mutate
    pub.subscribe_event("EV_A", s1)
    pub.subscribe_event("EV_A", s2)
    pub.broadcast_event("EV_A", n=1, data=[])
    assert got("s2") == [("EV_A", {"n": 1, "data": ["s1"]})]


def test_broadcast_an_event_object() -> None:
    origin, pub, sub = node("origin"), node("pub"), node("sub")
    seen: list[Event] = []
    sub.hook = lambda self, ev: seen.append(ev)
    pub.subscribe_event("EV_A", sub)
    first = origin.send_event(pub, "EV_IN", data=1)  # pub records; returns None
    assert first is None
    ev = Event(pub, "EV_A", [origin], data=1)
    pub.broadcast_event(ev, more=2)
    [delivered] = seen
    assert delivered.source == [origin, pub]
    assert ev.source == [origin]
    assert delivered.kw == {"data": 1, "more": 2}
    # A broadcast by the event's last sender does not add it twice.
    seen.clear()
    pub.broadcast_event(Event(None, "EV_A", [pub]))
    assert seen[0].source == [pub]


def test_broadcast_source_and_names_not_checked() -> None:
    pub, sub = node("pub"), node("sub")
    seen: list[Event] = []
    sub.hook = lambda self, ev: seen.append(ev)
    pub.subscribe_event(None, sub)
    pub.broadcast_event("EV_IN")  # not an output: broadcast does not check (spec §2.4)
    assert seen[0].source == [pub] and seen[0].destination is sub
    with pytest.raises(EventError):
        pub.broadcast_event(3)


def test_broadcast_without_subscribers_is_a_no_op() -> None:
    node("pub").broadcast_event("EV_A")
    assert LOG == []


# --------------------------------------------------------------------------------------
#   Control keywords
# --------------------------------------------------------------------------------------
def test_use_post_event_by_truth_value(gaplic: GAplic) -> None:
    pub = gaplic.create_gobj("pub", Node, gaplic)
    queued = gaplic.create_gobj("queued", Node, gaplic)
    direct = gaplic.create_gobj("direct", Node, gaplic)
    pub.subscribe_event("EV_A", queued, __use_post_event__=True)
    pub.subscribe_event("EV_A", direct, __use_post_event__=False)
    pub.set_owned_event_filter(lambda ret: True)  # not applied to posted deliveries
    pub.broadcast_event("EV_A", n=1)
    assert got("direct") == [("EV_A", {"n": 1})]
    assert got("queued") == []
    gaplic._loop()
    assert got("queued") == [("EV_A", {"n": 1})]


def test_use_post_event_needs_a_gaplic() -> None:
    pub, sub = node("pub"), node("sub")
    pub.subscribe_event("EV_A", sub, __use_post_event__=1)
    with pytest.raises(GObjError, match="needs a GAplic"):
        pub.broadcast_event("EV_A")


def test_rename_event_name() -> None:
    pub, sub = node("pub"), node("sub")
    pub.subscribe_event("EV_A", sub, __rename_event_name__="EV_RENAMED")
    pub.broadcast_event("EV_A", n=1)
    assert got("sub") == [("EV_RENAMED", {"n": 1, "original_event_name": "EV_A"})]


def test_rename_is_per_subscriber() -> None:
    pub, s1, s2 = node("pub"), node("s1"), node("s2")
    pub.subscribe_event("EV_A", s1, __rename_event_name__="EV_RENAMED")
    pub.subscribe_event("EV_A", s2)
    pub.broadcast_event("EV_A")
    assert got("s1") == [("EV_RENAMED", {"original_event_name": "EV_A"})]
    assert got("s2") == [("EV_A", {})]


@pytest.mark.parametrize("rename", [True, False])
def test_subscription_reference(rename: bool) -> None:
    pub, sub = node("pub"), node("sub")
    control: dict[str, Any] = {"__subscription_reference__": "ref-1"}
    if rename:
        control["__rename_event_name__"] = "EV_RENAMED"
    pub.subscribe_event("EV_A", sub, **control)
    pub.broadcast_event("EV_A")
    [(ev, kw)] = got("sub")
    assert kw["__subscription_reference__"] == "ref-1"
    assert ev == ("EV_RENAMED" if rename else "EV_A")
    # A reference of None is still added (presence of the keyword is what counts).
    LOG.clear()
    pub.subscribe_event("EV_B", sub, __subscription_reference__=None)
    pub.broadcast_event("EV_B")
    assert got("sub") == [("EV_B", {"__subscription_reference__": None})]


def test_hard_subscription(caplog: pytest.LogCaptureFixture) -> None:
    pub, hard_sub, soft_sub = node("pub"), node("hard"), node("soft")
    hard = pub.subscribe_event("EV_A", hard_sub, __hard_subscription__=True)
    pub.subscribe_event("EV_A", soft_sub, __hard_subscription__=False)
    with caplog.at_level(logging.ERROR, logger="fsmio"):
        assert pub.delete_subscription("EV_A", hard_sub) is False
    assert "hard subscription" in caplog.text
    assert pub.delete_subscription_by_object(hard) is False
    pub.delete_all_subscriptions()
    assert pub.get_subscriptions() == [hard]
    assert pub.delete_subscription_by_object(hard, force=True) is True
    pub.subscribe_event("EV_A", hard_sub, __hard_subscription__=True)
    pub.delete_all_subscriptions(force=True)
    assert pub.get_subscriptions() == []
    assert hard_sub._held_subscriptions == {}


def test_first_shot() -> None:
    pub, sub = node("pub"), node("sub")
    pub.subscribe_event("EV_A", sub, __first_shot__=True)
    pub.broadcast_event("EV_B")  # not a matching event: the subscription stays
    assert len(pub.get_subscriptions()) == 1
    pub.broadcast_event("EV_A", n=1)
    pub.broadcast_event("EV_A", n=2)
    assert got("sub") == [("EV_A", {"n": 1})]
    assert pub.get_subscriptions() == [] and sub._held_subscriptions == {}


def test_extra_kw_kept_on_the_subscription() -> None:
    pub, sub = node("pub"), node("sub")
    s = pub.subscribe_event("EV_A", sub, __use_post_event__=False, color="red")
    assert s.kw == {"color": "red"} and s.color == "red"
    assert s.use_post_event is False
    assert repr(s) == "Subscription(['EV_A'], 'Node:pub: Lived' -> 'Node:sub: Lived')"
    assert repr(pub.subscribe_event(None, sub)).startswith("Subscription(ALL,")
    pub.broadcast_event("EV_A")
    assert got("sub") == [("EV_A", {})]  # extra kw are not added to the events


def test_new_subscriptor_event() -> None:
    pub = node("pub", __new_subscriptor_event__="EV_NEW_SUB")
    sub = node("sub")
    s = pub.subscribe_event("EV_A", sub)
    [(ev, kw)] = got("pub")
    assert ev == "EV_NEW_SUB" and kw == {"subscriber": sub, "subscription": s}


# --------------------------------------------------------------------------------------
#   Owned events
# --------------------------------------------------------------------------------------
def test_owned_event_filter_stops_delivery() -> None:
    pub = node("pub")
    s1, s2, s3 = node("s1"), node("s2", ret="mine"), node("s3")
    for s in (s1, s2, s3):
        pub.subscribe_event("EV_A", s)
    pub.set_owned_event_filter(lambda ret: ret == "mine")
    pub.broadcast_event("EV_A")
    assert [who for who, _, _ in LOG] == ["s1", "s2"]
    # Only ``True`` itself owns the event: a truthy value does not.
    LOG.clear()
    pub.set_owned_event_filter(lambda ret: ret)
    pub.broadcast_event("EV_A")
    assert [who for who, _, _ in LOG] == ["s1", "s2", "s3"]
    LOG.clear()
    pub.set_owned_event_filter(None)
    pub.broadcast_event("EV_A")
    assert [who for who, _, _ in LOG] == ["s1", "s2", "s3"]


# --------------------------------------------------------------------------------------
#   Deleting
# --------------------------------------------------------------------------------------
def test_delete_subscription(caplog: pytest.LogCaptureFixture) -> None:
    pub, sub = node("pub"), node("sub")
    pub.subscribe_event(("EV_A", "EV_B"), sub)
    with caplog.at_level(logging.ERROR, logger="fsmio"):
        assert pub.delete_subscription("EV_A", sub) is False  # names must match exactly
    assert "has no subscription" in caplog.text
    assert pub.delete_subscription(("EV_B", "EV_A"), sub) is True
    assert pub.get_subscriptions() == [] and sub._held_subscriptions == {}
    pub.broadcast_event("EV_A")
    assert LOG == []


def test_delete_subscription_by_object_of_another_gobj() -> None:
    pub, other, sub = node("pub"), node("other"), node("sub")
    s = other.subscribe_event("EV_A", sub)
    assert pub.delete_subscription_by_object(s) is False
    assert other.get_subscriptions() == [s]


def test_delete_all_subscriptions_keeps_order_of_the_rest() -> None:
    pub = node("pub")
    subs = [node(f"s{i}") for i in range(4)]
    kept = [
        pub.subscribe_event("EV_A", s, __hard_subscription__=i % 2 == 0) for i, s in enumerate(subs)
    ]
    pub.delete_all_subscriptions()
    assert pub.get_subscriptions() == [kept[0], kept[2]]


# --------------------------------------------------------------------------------------
#   G7: changes during a broadcast
# --------------------------------------------------------------------------------------
def test_subscriber_destroyed_during_broadcast_is_skipped() -> None:
    pub, s1, s2, s3 = node("pub"), node("s1"), node("s2"), node("s3")
    for s in (s1, s2, s3):
        pub.subscribe_event("EV_A", s)
    s1.hook = lambda self, ev: GObj.destroy_gobj(s2)
    pub.broadcast_event("EV_A")
    assert [who for who, _, _ in LOG] == ["s1", "s3"]
    assert [s.subscriber for s in pub.get_subscriptions()] == [s1, s3]


def test_subscriber_unsubscribed_during_broadcast_is_skipped() -> None:
    pub, s1, s2, s3 = node("pub"), node("s1"), node("s2"), node("s3")
    for s in (s1, s2, s3):
        pub.subscribe_event("EV_A", s)
    s1.hook = lambda self, ev: pub.delete_subscription("EV_A", s2)
    pub.broadcast_event("EV_A")
    assert [who for who, _, _ in LOG] == ["s1", "s3"]


def test_subscription_added_during_broadcast_waits_for_the_next() -> None:
    pub, s1, late = node("pub"), node("s1"), node("late")
    pub.subscribe_event("EV_A", s1)
    s1.hook = lambda self, ev: pub.subscribe_event("EV_A", late)
    pub.broadcast_event("EV_A")
    assert [who for who, _, _ in LOG] == ["s1"]
    s1.hook = None
    pub.broadcast_event("EV_A")
    assert [who for who, _, _ in LOG] == ["s1", "s1", "late"]


def test_publisher_destroyed_during_broadcast() -> None:
    pub, s1, s2 = node("pub"), node("s1"), node("s2")
    pub.subscribe_event("EV_A", s1)
    pub.subscribe_event("EV_A", s2)
    s1.hook = lambda self, ev: GObj.destroy_gobj(pub)
    pub.broadcast_event("EV_A")
    assert [who for who, _, _ in LOG] == ["s1"]


def test_subscriber_destroyed_no_longer_gets_events() -> None:
    pub, sub = node("pub"), node("sub")
    pub.subscribe_event("EV_A", sub)
    GObj.destroy_gobj(sub)
    assert pub.get_subscriptions() == []
    pub.broadcast_event("EV_A")
    assert LOG == []


def test_subscribing_a_destroyed_gobj_is_an_error() -> None:
    pub, sub = node("pub"), node("sub")
    GObj.destroy_gobj(sub)
    with pytest.raises(GObjError, match="destroyed"):
        pub.subscribe_event("EV_A", sub)
    with pytest.raises(GObjError, match="destroyed"):
        sub.subscribe_event("EV_A", pub)
    assert pub.get_subscriptions() == [] and pub._held_subscriptions == {}


def test_subscription_object_type() -> None:
    pub, sub = node("pub"), node("sub")
    s = pub.subscribe_event("EV_A", sub)
    assert isinstance(s, Subscription)
    assert s.publisher is pub and s.subscriber is sub and s.event_names == frozenset({"EV_A"})
    assert list(sub._held_subscriptions) == [s]


def test_subscribers_take() -> None:
    """Whether a broadcast would reach a subscriber whose FSM has a row for the event."""

    def noop(self: GObj, event: Event) -> None:
        return None

    publisher_fsm = {
        "event_list": ("EV_OUT: top output", "EV_OTHER: top output"),
        "state_list": ("ST",),
        "machine": {"ST": ()},
    }
    taker_fsm = {
        "event_list": ("EV_OUT: top input", "EV_RENAMED: top input"),
        "state_list": ("ST",),
        "machine": {"ST": (("EV_OUT", noop, None), ("EV_RENAMED", noop, None))},
    }

    class Publisher(GObj):
        def __init__(self) -> None:
            GObj.__init__(self, publisher_fsm)

    class Taker(GObj):
        def __init__(self) -> None:
            GObj.__init__(self, taker_fsm)

    class Deaf(GObj):
        def __init__(self) -> None:
            GObj.__init__(self)

    pub = Publisher()
    assert not pub.subscribers_take("EV_OUT")
    pub.subscribe_event("EV_OUT", Deaf())
    assert not pub.subscribers_take("EV_OUT")
    taker = Taker()
    sub = pub.subscribe_event("EV_OTHER", taker, __rename_event_name__="EV_RENAMED")
    assert pub.subscribers_take("EV_OTHER")  # delivered renamed, which it takes
    assert not pub.subscribers_take("EV_OUT")
    pub.delete_subscription_by_object(sub)
    pub.subscribe_event(None, taker)
    assert pub.subscribers_take("EV_OUT") and not pub.subscribers_take("EV_OTHER")
    pub.subscribe_event("EV_OTHER", Deferred(None, lambda **kw: None))
    assert pub.subscribers_take("EV_OTHER")  # a Deferred: cannot tell, deliver


def test_single_subscription_fast_path_follows_changes() -> None:
    """broadcast_event's cached single-subscription path is renewed on every change."""
    pub, s1, s2 = node("pub"), node("s1"), node("s2")
    first = pub.subscribe_event("EV_A", s1)
    pub.broadcast_event("EV_A", n=1)
    pub.broadcast_event("EV_B", n=2)  # not subscribed
    pub.subscribe_event("EV_A", s2)
    pub.broadcast_event("EV_A", n=3)
    pub.delete_subscription_by_object(first)
    pub.broadcast_event("EV_A", n=4)
    renamed = pub.get_subscriptions()[0]
    pub.delete_subscription_by_object(renamed)
    pub.subscribe_event("EV_A", s1, __rename_event_name__="EV_RENAMED")
    pub.broadcast_event("EV_A", n=5)
    assert got("s1") == [
        ("EV_A", {"n": 1}),
        ("EV_A", {"n": 3}),
        ("EV_RENAMED", {"n": 5, "original_event_name": "EV_A"}),
    ]
    assert got("s2") == [("EV_A", {"n": 3}), ("EV_A", {"n": 4})]
    GObj.destroy_gobj(s1)
    pub.broadcast_event("EV_A", n=6)  # the only subscriber is gone: nothing, no error
    assert len(LOG) == 5


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 19)), max_size=80))
def test_many_subscribers_keep_their_order(steps: list[tuple[bool, int]]) -> None:
    """Subscribing and unsubscribing across the tuple/dict switch of the publisher's
    subscriptions (see _SUBS_TUPLE_MAX) keeps delivery in subscription order."""
    pub = node("pub")
    subs = [node(f"s{i}") for i in range(20)]
    model: list[int] = []
    for add, i in steps:
        if add and i not in model:
            pub.subscribe_event("EV_A", subs[i])
            model.append(i)
        elif not add and i in model:
            assert pub.delete_subscription("EV_A", subs[i])
            model.remove(i)
        LOG.clear()
        pub.broadcast_event("EV_A")
        assert [who for who, _, _ in LOG] == [f"s{i}" for i in model]
    assert [s.subscriber for s in pub.get_subscriptions()] == [subs[i] for i in model]
