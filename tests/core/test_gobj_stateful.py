"""A hypothesis stateful test of the gobj tree and its subscriptions.

Random sequences of create / destroy / subscribe / unsubscribe / delete-all / broadcast /
send, on live gobjs and on stale references to destroyed ones, checked against a model:

* no event ever reaches a destroyed gobj (its action records a violation);
* a broadcast reaches exactly the subscribers the model expects, once each, in
  subscription order — also when a subscriber destroys another gobj during it (G7);
* no subscription refers to a destroyed gobj on either side (no leak), and each
  subscription is recorded on both sides;
* parent and children links agree, and children keep their insertion order.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fsmio.core.errors import GObjError
from fsmio.core.event import Event
from fsmio.core.gobj import GObj, build_gobj

_SILENT = logging.getLogger("fsmio.tests.stateful")
_SILENT.addHandler(logging.NullHandler())
_SILENT.propagate = False


def ac_receive(self: Node, event: Event) -> Any:
    if self._destroyed:
        self.violations.append(f"{self.name} got {event.event_name} after destroy")
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
        self.hook: Any = None


NAMES: list[Any] = ["EV_A", "EV_B", None, ("EV_A", "EV_B")]
ModelSub = tuple[frozenset[str] | None, Node, bool]


def as_set(names: Any) -> frozenset[str] | None:
    if names is None:
        return None
    return frozenset((names,) if isinstance(names, str) else names)


class GObjTreeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.violations: list[str] = []
        self.all: list[Node] = []  # live and destroyed, for stale references
        self.children: dict[Node | None, list[Node]] = {None: []}
        self.subs: dict[Node, list[ModelSub]] = {}
        self.counter = itertools.count()

    # ----------------------------------------------------------------------------------
    def live(self) -> list[Node]:
        return [g for g in self.all if not g._destroyed]

    def pick(self, i: int, live_only: bool = True) -> Node:
        pool = self.live() if live_only else self.all
        return pool[i % len(pool)]

    def has_live(self) -> bool:
        return bool(self.live())

    def subtree(self, g: Node) -> list[Node]:
        out = [g]
        for child in self.children.get(g, []):
            out.extend(self.subtree(child))
        return out

    def model_destroy(self, g: Node) -> None:
        dead = set(self.subtree(g))
        parent = g.parent
        self.children[parent if parent is not None else None].remove(g)
        for d in dead:
            self.children.pop(d, None)
            self.subs.pop(d, None)
        for pub, subs in self.subs.items():
            self.subs[pub] = [s for s in subs if s[1] not in dead]

    def expected_receivers(self, pub: Node, name: str) -> list[Node]:
        out: list[Node] = []
        for names, sub, _ in self.subs.get(pub, []):
            if (names is None or name in names) and sub not in out:
                out.append(sub)
        return out

    # ----------------------------------------------------------------------------------
    @rule(parent_i=st.integers(0, 10_000), root=st.booleans())
    def create(self, parent_i: int, root: bool) -> None:
        parent = None if root or not self.has_live() else self.pick(parent_i)
        g: Node = build_gobj(f"g{next(self.counter)}", Node, parent, {"logger": _SILENT}, None)  # type: ignore[assignment]
        g.violations = self.violations
        self.all.append(g)
        self.children[parent].append(g)
        self.children[g] = []
        self.subs[g] = []

    @precondition(has_live)
    @rule(i=st.integers(0, 10_000))
    def destroy(self, i: int) -> None:
        g = self.pick(i)
        self.model_destroy(g)
        GObj.destroy_gobj(g)

    @precondition(has_live)
    @rule(
        pub_i=st.integers(0, 10_000),
        sub_i=st.integers(0, 10_000),
        names=st.sampled_from(NAMES),
        hard=st.booleans(),
    )
    def subscribe(self, pub_i: int, sub_i: int, names: Any, hard: bool) -> None:
        pub, sub = self.pick(pub_i), self.pick(sub_i)
        key = as_set(names)
        model = self.subs[pub]
        for old in list(model):
            if old[0] == key and old[1] is sub and not old[2]:
                model.remove(old)
        pub.subscribe_event(names, sub, __hard_subscription__=hard)
        model.append((key, sub, hard))

    @precondition(lambda self: any(g._destroyed for g in self.all) and self.has_live())
    @rule(stale_i=st.integers(0, 10_000), live_i=st.integers(0, 10_000), as_pub=st.booleans())
    def subscribe_stale(self, stale_i: int, live_i: int, as_pub: bool) -> None:
        stale = [g for g in self.all if g._destroyed][stale_i % sum(g._destroyed for g in self.all)]
        live = self.pick(live_i)
        pub, sub = (stale, live) if as_pub else (live, stale)
        with pytest.raises(GObjError, match="destroyed"):
            pub.subscribe_event("EV_A", sub)

    @precondition(has_live)
    @rule(pub_i=st.integers(0, 10_000), sub_i=st.integers(0, 10_000), names=st.sampled_from(NAMES))
    def unsubscribe(self, pub_i: int, sub_i: int, names: Any) -> None:
        pub, sub = self.pick(pub_i), self.pick(sub_i)
        key = as_set(names)
        model = self.subs[pub]
        match = next((s for s in model if s[0] == key and s[1] is sub), None)
        expected = match is not None and not match[2]
        if expected:
            model.remove(match)  # type: ignore[arg-type]
        assert pub.delete_subscription(names, sub) is expected

    @precondition(has_live)
    @rule(pub_i=st.integers(0, 10_000), force=st.booleans())
    def delete_all(self, pub_i: int, force: bool) -> None:
        pub = self.pick(pub_i)
        self.subs[pub] = [] if force else [s for s in self.subs[pub] if s[2]]
        pub.delete_all_subscriptions(force=force)

    @precondition(has_live)
    @rule(pub_i=st.integers(0, 10_000), name=st.sampled_from(["EV_A", "EV_B"]))
    def broadcast(self, pub_i: int, name: str) -> None:
        pub = self.pick(pub_i)
        expected = self.expected_receivers(pub, name)
        for g in self.all:
            g.inbox.clear()
        pub.broadcast_event(name)
        got = [g for g in self.all if g.inbox]
        assert all(g.inbox == [name] for g in got)
        assert set(got) == set(expected)

    @precondition(has_live)
    @rule(
        pub_i=st.integers(0, 10_000),
        victim_i=st.integers(0, 10_000),
        name=st.sampled_from(["EV_A", "EV_B"]),
    )
    def broadcast_while_destroying(self, pub_i: int, victim_i: int, name: str) -> None:
        """The first receiver destroys a gobj: later receivers in its subtree are skipped."""
        pub, victim = self.pick(pub_i), self.pick(victim_i)
        expected = self.expected_receivers(pub, name)
        for g in self.all:
            g.inbox.clear()
        if expected:
            first = expected[0]
            dead = set(self.subtree(victim))

            def kill() -> None:
                GObj.destroy_gobj(victim)

            first.hook = kill
            self.model_destroy(victim)
            pub_dead = pub in dead
            # Order of delivery: the first receiver, then the ones still alive and
            # subscribed (nothing, if the publisher itself was destroyed).
            expected = [first] + ([] if pub_dead else [g for g in expected[1:] if g not in dead])
        pub.broadcast_event(name)
        first_hook_left = [g for g in self.all if g.hook is not None]
        assert first_hook_left == []
        got = [g for g in self.all if g.inbox]
        assert set(got) == set(expected)

    @precondition(lambda self: bool(self.all))
    @rule(src_i=st.integers(0, 10_000), dst_i=st.integers(0, 10_000))
    def send(self, src_i: int, dst_i: int) -> None:
        src, dst = self.pick(src_i, live_only=False), self.pick(dst_i, live_only=False)
        ret = src.send_event(dst, "EV_PING")
        assert ret == (-1 if dst._destroyed else None)

    # ----------------------------------------------------------------------------------
    @invariant()
    def no_event_reached_a_destroyed_gobj(self) -> None:
        assert self.violations == []

    @invariant()
    def tree_links_consistent_and_ordered(self) -> None:
        for g in self.all:
            if g._destroyed:
                assert list(g.dl_childs) == []
                if g.parent is not None:
                    assert g not in g.parent.dl_childs
                continue
            assert list(g.dl_childs) == self.children[g]
            for child in g.dl_childs:
                assert child.parent is g and not child._destroyed
            if g.parent is not None:
                assert not g.parent._destroyed
                assert g in g.parent.dl_childs
        roots = [g for g in self.all if not g._destroyed and g.parent is None]
        assert roots == self.children[None]

    @invariant()
    def no_subscription_leaks(self) -> None:
        for g in self.all:
            if g._destroyed:
                assert g._dl_subscriptions == {} and g._held_subscriptions == {}
                continue
            for sub in g._dl_subscriptions:
                assert sub.publisher is g and sub.active
                assert not sub.subscriber._destroyed
                assert sub in sub.subscriber._held_subscriptions
            for sub in g._held_subscriptions:
                assert sub.subscriber is g and sub.active
                assert not sub.publisher._destroyed
                assert sub in sub.publisher._dl_subscriptions
            model = [(names, sub, hard) for names, sub, hard in self.subs[g]]
            actual = [(s.event_names, s.subscriber, s.hard) for s in g.get_subscriptions()]
            assert actual == model


GObjTreeMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestGObjTree = GObjTreeMachine.TestCase
