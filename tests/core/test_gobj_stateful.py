"""A hypothesis stateful test of the gobj tree and its subscriptions.

Random sequences of create / destroy / subscribe (by gobj or by unique name) / unsubscribe
/ delete-all / broadcast / send / post / run-the-loop, on live gobjs and on stale
references to destroyed ones, checked against a model:

* no event ever reaches a destroyed gobj (its action records a violation) — neither sent,
  broadcast, nor posted before the destroy and dequeued after it;
* a broadcast reaches exactly the subscribers the model expects, once each — also when a
  subscriber destroys another gobj during it (G7); every posted event to a gobj that
  stays alive is delivered;
* no subscription refers to a destroyed gobj on either side (no leak), and each
  subscription is recorded on both sides, in the order the model made them;
* parent and children links agree, and children keep their insertion order.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from fsmio import GAplic
from fsmio.core.errors import GObjError
from fsmio.core.event import Event
from fsmio.core.gobj import GObj

_SILENT = logging.getLogger("fsmio.tests.stateful")
_SILENT.addHandler(logging.NullHandler())
_SILENT.propagate = False


def ac_receive(self: Node, event: Event) -> Any:
    if self._destroyed:
        self.violations.append(f"{self.name} got {event.event_name} after destroy")
    if event.event_name == "EV_PING":
        self.pings += 1
    else:
        self.inbox.append(event.event_name)
    hook = self.hook
    if hook is not None:
        self.hook = None
        hook()
    return None


NODE_FSM: dict[str, Any] = {
    "event_list": ("EV_A: top output", "EV_B: top output", "EV_PING: top input"),
    "state_list": ("ST_IDLE",),
    "machine": {
        "ST_IDLE": (
            ("EV_A", ac_receive, None),
            ("EV_B", ac_receive, None),
            ("EV_PING", ac_receive, None),
        )
    },
}


class Node(GObj):
    violations: list[str]

    def __init__(self) -> None:
        GObj.__init__(self, NODE_FSM)
        self.inbox: list[str] = []
        self.pings = 0
        self.hook: Any = None


NAMES: list[Any] = ["EV_A", "EV_B", None, ("EV_A", "EV_B")]
Subscriber = Node | str
ModelSub = tuple[frozenset[str] | None, Subscriber, bool]
INDEX = st.integers(0, 10_000)


def as_set(names: Any) -> frozenset[str] | None:
    if names is None:
        return None
    return frozenset((names,) if isinstance(names, str) else names)


def same(a: Subscriber, b: Subscriber) -> bool:
    return a is b or (isinstance(a, str) and a == b)


class GObjTreeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.gaplic = GAplic("stateful", logger=_SILENT)
        self.violations: list[str] = []
        self.all: list[Node] = []  # live and destroyed, for stale references
        self.children: dict[Node | None, list[Node]] = {None: []}
        self.subs: dict[Node, list[ModelSub]] = {}
        self.expected_pings: dict[Node, int] = {}
        self.counter = itertools.count()

    def teardown(self) -> None:
        self.gaplic.close()

    # ----------------------------------------------------------------------------------
    def live(self) -> list[Node]:
        return [g for g in self.all if not g._destroyed]

    def pick(self, i: int, live_only: bool = True) -> Node:
        pool = self.live() if live_only else self.all
        return pool[i % len(pool)]

    def pick_victim(self, i: int) -> Node:
        # Newest first: hypothesis favours small numbers, and the oldest gobj is often the
        # root of everything; destroying it every time would leave nothing to check (and
        # subscribers picked the same way are not always their own publishers).
        pool = self.live()
        return pool[-1 - i % len(pool)]

    def has_live(self) -> bool:
        return bool(self.live())

    def by_name(self, name: str) -> Node | None:
        return next((g for g in self.live() if g.name == name), None)

    def subtree(self, g: Node) -> list[Node]:
        out = [g]
        for child in self.children.get(g, []):
            out.extend(self.subtree(child))
        return out

    def model_destroy(self, g: Node) -> set[Node]:
        dead = set(self.subtree(g))
        parent = g.parent
        self.children[parent if parent is not None else None].remove(g)  # type: ignore[arg-type]
        for d in dead:
            self.children.pop(d, None)
            self.subs.pop(d, None)
            self.expected_pings.pop(d, None)
        for pub, subs in self.subs.items():
            # Subscriptions by unique name hold a name, not the gobj: they stay.
            self.subs[pub] = [s for s in subs if isinstance(s[1], str) or s[1] not in dead]
        return dead

    def expected_receivers(self, pub: Node, name: str) -> list[Node]:
        out: list[Node] = []
        for names, sub, _ in self.subs.get(pub, []):
            target = self.by_name(sub) if isinstance(sub, str) else sub
            if target is not None and (names is None or name in names) and target not in out:
                out.append(target)
        return out

    def clear_inboxes(self) -> None:
        for g in self.all:
            g.inbox.clear()

    # ----------------------------------------------------------------------------------
    @initialize(shape=st.lists(st.integers(0, 3), min_size=1, max_size=4))
    def forest(self, shape: list[int]) -> None:
        """Start from a few roots with a few children each: more to subscribe and destroy."""
        for n_children in shape:
            self.add(None)
            root = self.all[-1]
            for _ in range(n_children):
                self.add(root)

    @rule(parent_i=INDEX, root=st.booleans())
    def create(self, parent_i: int, root: bool) -> None:
        self.add(None if root or not self.has_live() else self.pick(parent_i))

    def add(self, parent: Node | None) -> None:
        g: Node = self.gaplic.create_gobj(
            f"g{next(self.counter)}", Node, parent, __unique_name__=True
        )
        g.violations = self.violations
        self.all.append(g)
        self.children[parent].append(g)
        self.children[g] = []
        self.subs[g] = []
        self.expected_pings[g] = 0

    @precondition(has_live)
    @rule(i=INDEX)
    def destroy(self, i: int) -> None:
        g = self.pick_victim(i)
        self.model_destroy(g)
        GObj.destroy_gobj(g)

    @precondition(lambda self: bool(self.all))
    @rule(
        pub_i=INDEX,
        sub_i=INDEX,
        names=st.sampled_from(NAMES),
        hard=st.booleans(),
        by_name=st.booleans(),
    )
    def subscribe(self, pub_i: int, sub_i: int, names: Any, hard: bool, by_name: bool) -> None:
        # A subscription by name may name a gobj that is gone (or not there yet).
        if not self.has_live():
            return
        pub = self.pick(pub_i)
        pool = self.all if by_name else self.live()
        target = pool[-1 - sub_i % len(pool)]  # newest first, as for the victims
        # A fresh str each time: names are compared by value, not identity.
        sub: Subscriber = "".join(["", target.name]) if by_name else target
        key = as_set(names)
        model = self.subs[pub]
        for old in list(model):
            if old[0] == key and same(old[1], sub) and not old[2]:
                model.remove(old)
        pub.subscribe_event(names, sub, __hard_subscription__=hard)
        model.append((key, sub, hard))

    @precondition(lambda self: any(g._destroyed for g in self.all) and self.has_live())
    @rule(stale_i=INDEX, live_i=INDEX, as_pub=st.booleans())
    def subscribe_stale(self, stale_i: int, live_i: int, as_pub: bool) -> None:
        stale_ones = [g for g in self.all if g._destroyed]
        stale = stale_ones[stale_i % len(stale_ones)]
        live = self.pick(live_i)
        pub, sub = (stale, live) if as_pub else (live, stale)
        with pytest.raises(GObjError, match="destroyed"):
            pub.subscribe_event("EV_A", sub)

    @precondition(has_live)
    @rule(pub_i=INDEX, sub_i=INDEX, names=st.sampled_from(NAMES), by_name=st.booleans())
    def unsubscribe(self, pub_i: int, sub_i: int, names: Any, by_name: bool) -> None:
        pub, target = self.pick(pub_i), self.pick(sub_i)
        sub: Subscriber = "".join(["", target.name]) if by_name else target
        key = as_set(names)
        model = self.subs[pub]
        match = next((s for s in model if s[0] == key and same(s[1], sub)), None)
        expected = match is not None and not match[2]
        if expected:
            model.remove(match)  # type: ignore[arg-type]
        assert pub.delete_subscription(names, sub) is expected

    @precondition(has_live)
    @rule(pub_i=INDEX, force=st.booleans())
    def delete_all(self, pub_i: int, force: bool) -> None:
        pub = self.pick(pub_i)
        self.subs[pub] = [] if force else [s for s in self.subs[pub] if s[2]]
        pub.delete_all_subscriptions(force=force)

    @precondition(has_live)
    @rule(pub_i=INDEX, name=st.sampled_from(["EV_A", "EV_B"]))
    def broadcast(self, pub_i: int, name: str) -> None:
        pub = self.pick(pub_i)
        expected = self.expected_receivers(pub, name)
        self.clear_inboxes()
        pub.broadcast_event(name)
        got = [g for g in self.all if g.inbox]
        assert all(g.inbox == [name] for g in got)
        assert set(got) == set(expected)

    @precondition(has_live)
    @rule(pub_i=INDEX, victim_i=INDEX, name=st.sampled_from(["EV_A", "EV_B"]))
    def broadcast_while_destroying(self, pub_i: int, victim_i: int, name: str) -> None:
        """The first receiver destroys a gobj: later receivers in its subtree are skipped."""
        pub, victim = self.pick(pub_i), self.pick_victim(victim_i)
        expected = self.expected_receivers(pub, name)
        self.clear_inboxes()
        if expected:
            first = expected[0]
            first.hook = lambda: GObj.destroy_gobj(victim)
            dead = self.model_destroy(victim)
            # The first receiver, then those still alive (none if the publisher died).
            rest = [] if pub in dead else [g for g in expected[1:] if g not in dead]
            expected = [first, *rest]
        pub.broadcast_event(name)
        assert [g for g in self.all if g.hook is not None] == []
        assert {g for g in self.all if g.inbox} == set(expected)

    @precondition(lambda self: bool(self.all))
    @rule(src_i=INDEX, dst_i=INDEX)
    def send(self, src_i: int, dst_i: int) -> None:
        src, dst = self.pick(src_i, live_only=False), self.pick(dst_i, live_only=False)
        ret = src.send_event(dst, "EV_PING")
        if dst._destroyed:
            assert ret == -1
        else:
            assert ret is None
            self.expected_pings[dst] += 1

    @precondition(has_live)
    @rule(src_i=INDEX, dst_i=INDEX, by_name=st.booleans())
    def post(self, src_i: int, dst_i: int, by_name: bool) -> None:
        src, dst = self.pick(src_i), self.pick(dst_i)
        src.post_event(dst.name if by_name else dst, "EV_PING")
        self.expected_pings[dst] += 1

    @rule()
    def run_loop(self) -> None:
        for _ in range(5):
            if not self.gaplic._loop():
                break
        assert not self.gaplic._qevent
        for g in self.live():
            assert g.pings == self.expected_pings[g], g

    # ----------------------------------------------------------------------------------
    @invariant()
    def no_event_reached_a_destroyed_gobj(self) -> None:
        assert self.violations == []

    @invariant()
    def tree_links_consistent_and_ordered(self) -> None:
        for g in self.all:
            if g._destroyed:
                assert list(g.dl_childs) == []
                assert self.gaplic.find_unique_gobj(g.name) is None
                if g.parent is not None:
                    assert g not in g.parent.dl_childs
                continue
            assert self.gaplic.find_unique_gobj(g.name) is g
            assert list(g.dl_childs) == self.children[g]
            for child in g.dl_childs:
                assert child.parent is g and not child._destroyed
            if g.parent is not None:
                assert not g.parent._destroyed
                assert g in g.parent.dl_childs
        roots = [g for g in self.all if not g._destroyed and g.parent is None]
        assert roots == self.children[None]
        assert list(self.gaplic._roots) == roots

    @invariant()
    def no_subscription_leaks(self) -> None:
        for g in self.all:
            if g._destroyed:
                assert not g._dl_subscriptions and g._held_subscriptions == {}
                continue
            for sub in g._dl_subscriptions:
                assert sub.publisher is g and sub.active
                if isinstance(sub.subscriber, GObj):
                    assert not sub.subscriber._destroyed
                    assert sub in sub.subscriber._held_subscriptions
            for sub in g._held_subscriptions:
                assert sub.subscriber is g and sub.active
                assert not sub.publisher._destroyed
                assert sub in sub.publisher._dl_subscriptions
            actual = [(s.event_names, s.subscriber, s.hard) for s in g.get_subscriptions()]
            assert len(actual) == len(self.subs[g])
            for (names, sub, hard), (m_names, m_sub, m_hard) in zip(
                actual, self.subs[g], strict=True
            ):
                assert (names, hard) == (m_names, m_hard)
                assert same(sub, m_sub)


GObjTreeMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestGObjTree = GObjTreeMachine.TestCase
