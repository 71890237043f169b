"""GObj (spec §2.3): creation, destruction, the tree, sending and posting, parameters.

Deliberate differences from ginsfsm checked here: the unique name is checked before the
gobj is linked (no half-built gobj left in the tree, §6 #17); an unknown or invalid kw
raises; ``start_up`` raising destroys the gobj; ``destroy_gobj`` removes the subscriptions
the gobj holds on others (§6 #18); ``overwrite_parameters(-1)`` is the whole tree (§6 #15);
children are kept in insertion order (§6 #25).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from fsmio import GAplic
from fsmio.core.errors import (
    EventError,
    EventNotAcceptedError,
    GConfigValidateError,
    GObjError,
)
from fsmio.core.event import Event
from fsmio.core.gobj import GObj, build_gobj, inside, lineage
from tests.helpers import drive

JOURNAL: list[Any] = []


def ac_echo(self: GObj, event: Event) -> Any:
    JOURNAL.append((self.name, event.event_name, dict(event.kw)))
    return event.kw.get("ret", self.name)


ECHO_FSM: dict[str, Any] = {
    "event_list": ("EV_PING: top input", "EV_OUT: top output"),
    "state_list": ("ST_IDLE",),
    "machine": {"ST_IDLE": (("EV_PING", ac_echo, None),)},
}
ECHO_GCONFIG: dict[str, list[Any]] = {
    "p": [int, 0, 0, None, "a number"],
    "q": [str, "", 0, None, "a word"],
}


class Echo(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, ECHO_FSM, ECHO_GCONFIG)

    def start_up(self) -> None:
        JOURNAL.append(("start_up", self.name))

    def go_out(self) -> None:
        JOURNAL.append(("go_out", self.name))


class Other(Echo):
    pass


class Probe(GObj):
    """Records what it sees in start_up, to check create_gobj's order of steps."""

    def __init__(self) -> None:
        GObj.__init__(self, ECHO_FSM, ECHO_GCONFIG)
        self.seen: dict[str, Any] = {}

    def start_up(self) -> None:
        parent = self.parent
        self.seen = {
            "name": self.name,
            "p": self.config.p,
            "linked": parent is not None and self in parent.dl_childs,
            "unique": self.gaplic is not None and self.gaplic.find_unique_gobj(self.name) is self,
            "destroyed": self._destroyed,
        }


class FailingStartUp(Echo):
    def start_up(self) -> None:
        super().start_up()
        raise RuntimeError("cannot start")


class NoInit(GObj):
    def __init__(self) -> None:
        pass


@pytest.fixture(autouse=True)
def _clear_journal() -> None:
    JOURNAL.clear()


def new(name: str | None, parent: GObj | None = None, gclass: Any = Echo, **kw: Any) -> Any:
    return build_gobj(name, gclass, parent, kw, None)


# --------------------------------------------------------------------------------------
#   create_gobj
# --------------------------------------------------------------------------------------
def test_create_gobj_without_gaplic() -> None:
    root = GObj()
    child = root.create_gobj("c", Echo, root, p="3")
    assert child.name == "c" and child.parent is root and child.config.p == 3
    assert list(root.dl_childs) == [child]
    assert JOURNAL == [("start_up", "c")]
    assert child.gaplic is None


def test_create_gobj_order_of_steps(gaplic: GAplic) -> None:
    probe = gaplic.create_gobj("probe", Probe, gaplic, p=5, __unique_name__=True)
    assert probe.seen == {
        "name": "probe",
        "p": 5,
        "linked": True,
        "unique": True,
        "destroyed": False,
    }


@pytest.mark.parametrize(
    ("gclass", "parent", "message"),
    [
        (None, None, "gclass is None"),
        (int, None, "is not a GObj subclass"),
        (Event, None, "is not a GObj subclass"),
        (Echo, "root", "parent 'root' is not a GObj"),
        (Echo, object(), "is not a GObj"),
        (NoInit, None, "must call GObj.__init__"),
    ],
)
def test_create_gobj_errors(gclass: Any, parent: Any, message: str) -> None:
    with pytest.raises(GObjError, match=message):
        build_gobj("x", gclass, parent, {}, None)
    assert JOURNAL == []


@pytest.mark.parametrize("gclass", [ac_echo, "Echo", Echo()])
def test_create_gobj_with_a_gclass_that_is_not_a_class(gclass: Any) -> None:
    # As ginsfsm (its issubclass() raised TypeError), with a message saying what is expected.
    with pytest.raises(TypeError, match="gclass must be a GObj subclass"):
        build_gobj("x", gclass, None, {}, None)


def test_create_gobj_under_a_destroyed_parent() -> None:
    parent = new("parent")
    GObj.destroy_gobj(parent)
    with pytest.raises(GObjError, match="is destroyed"):
        new("child", parent)


def test_random_name() -> None:
    a = new("conn", __random_name__=True)
    b = new("conn", __random_name__=True)
    c = new(None, __random_name__=True)
    assert a.name.startswith("conn_") and b.name.startswith("conn_") and a.name != b.name
    assert c.name.isdigit()
    assert new("x", __random_name__=False).name == "x"
    assert GObj.get_random_name("p").startswith("p_")
    assert GObj.get_random_name().isdigit()


def test_unnamed_gobj() -> None:
    assert new(None).name == "" and new("").name == ""


def test_unknown_kw_raises_and_nothing_is_attached(gaplic: GAplic) -> None:
    parent = gaplic.create_gobj("parent", Echo, gaplic)
    JOURNAL.clear()
    with pytest.raises(GConfigValidateError, match=r"Echo 'kid': unknown parameter 'pp'"):
        gaplic.create_gobj("kid", Echo, parent, pp=1, __unique_name__=True)
    with pytest.raises(GConfigValidateError, match=r"invalid value 'x' for parameter 'p'"):
        gaplic.create_gobj("kid", Echo, parent, p="x", __unique_name__=True)
    assert list(parent.dl_childs) == []
    assert gaplic.find_unique_gobj("kid") is None
    assert JOURNAL == []


def test_start_up_raising_destroys_the_gobj(gaplic: GAplic) -> None:
    parent = gaplic.create_gobj("parent", Echo, gaplic)
    JOURNAL.clear()
    with pytest.raises(RuntimeError, match="cannot start"):
        gaplic.create_gobj("bad", FailingStartUp, parent, __unique_name__=True)
    assert list(parent.dl_childs) == []
    assert gaplic.find_unique_gobj("bad") is None
    assert JOURNAL == [("start_up", "bad"), ("go_out", "bad")]
    # The name is free again.
    ok = gaplic.create_gobj("bad", Echo, parent, __unique_name__=True)
    assert gaplic.find_unique_gobj("bad") is ok


def test_child_already_parented() -> None:
    a, b = new("a"), new("b")
    child = new("c", a)
    with pytest.raises(GObjError, match="already has a parent"):
        b._add_child(child)
    assert list(b.dl_childs) == []


def test_instance_create_gobj_goes_through_the_gaplic(gaplic: GAplic) -> None:
    gaplic.ini_settings["Echo.q"] = "from-ini"
    parent = gaplic.create_gobj("parent", Echo, gaplic, q="kw")
    # ini settings win over kw (as in ginsfsm).
    assert parent.config.q == "from-ini"
    child = parent.create_gobj("child", Echo, parent)
    assert child.gaplic is gaplic and child.config.q == "from-ini"
    assert child.logger is gaplic.logger
    assert child._ctx is gaplic._ctx


# --------------------------------------------------------------------------------------
#   Unique names and the GAplic
# --------------------------------------------------------------------------------------
def test_unique_name_resolution(gaplic: GAplic) -> None:
    echo = gaplic.create_gobj("echo", Echo, gaplic, __unique_name__=True)
    sender = gaplic.create_gobj("sender", Echo, gaplic)
    assert sender.send_event("echo", "EV_PING", ret=7) == 7
    assert gaplic.get_unique_named_gobjs() == ["echo"]
    with pytest.raises(GObjError, match="no unique gobj named 'nobody'"):
        sender.send_event("nobody", "EV_PING")
    GObj.destroy_gobj(echo)
    assert gaplic.find_unique_gobj("echo") is None
    with pytest.raises(GObjError, match="no unique gobj named 'echo'"):
        sender.send_event("echo", "EV_PING")


def test_duplicate_unique_name_leaves_nothing_half_built(gaplic: GAplic) -> None:
    first = gaplic.create_gobj("dup", Echo, gaplic, __unique_name__=True)
    JOURNAL.clear()
    with pytest.raises(GObjError, match="unique name 'dup' is already used"):
        gaplic.create_gobj("dup", Echo, gaplic, __unique_name__=True)
    assert list(gaplic.dl_childs) == [first]
    assert gaplic.find_unique_gobj("dup") is first
    assert JOURNAL == []


def test_unique_name_needs_a_gaplic_and_a_name(gaplic: GAplic) -> None:
    with pytest.raises(GObjError, match="needs a GAplic"):
        new("u", __unique_name__=True)
    with pytest.raises(GObjError, match="needs a name"):
        gaplic.create_gobj(None, Echo, gaplic, __unique_name__=True)
    assert list(gaplic.dl_childs) == []


def test_string_destination_without_gaplic() -> None:
    a = new("a")
    with pytest.raises(GObjError, match="no GAplic"):
        a.send_event("b", "EV_PING")


@pytest.mark.parametrize("bad", [None, 3, b"echo", object()])
def test_bad_destination_type(bad: Any) -> None:
    a = new("a")
    with pytest.raises(GObjError, match="destination must be a GObj or a unique name"):
        a.send_event(bad, "EV_PING")
    with pytest.raises(GObjError, match="destination must be a GObj or a unique name"):
        a.post_event(bad, "EV_PING")


# --------------------------------------------------------------------------------------
#   send_event / post_event
# --------------------------------------------------------------------------------------
def test_send_event_returns_the_action_value() -> None:
    a, b = new("a"), new("b")
    assert a.send_event(b, "EV_PING", ret=42) == 42
    assert JOURNAL[-1] == ("b", "EV_PING", {"ret": 42})


def test_send_event_not_accepted(caplog: pytest.LogCaptureFixture) -> None:
    a, b = new("a"), new("b")
    with caplog.at_level(logging.WARNING, logger="fsmio"):
        assert a.send_event(b, "EV_OUT") is EventNotAcceptedError
        assert a.send_event(b, "EV_NOPE") is EventNotAcceptedError
    assert len(caplog.records) == 2


def test_strict_events_option(gaplic: GAplic) -> None:
    strict = new("s", strict_events=True)
    with pytest.raises(EventNotAcceptedError):
        strict.send_event(strict, "EV_NOPE")
    # A GAplic option (ini setting) reaches every gobj it creates.
    gaplic.ini_settings["strict_events"] = "yes"
    g = gaplic.create_gobj("g", Echo, gaplic)
    assert g.strict_events is True
    with pytest.raises(EventNotAcceptedError):
        g.send_event(g, "EV_NOPE")


def test_send_to_destroyed_gobj_returns_minus_one(caplog: pytest.LogCaptureFixture) -> None:
    a, b = new("a"), new("b")
    GObj.destroy_gobj(b)
    JOURNAL.clear()
    with caplog.at_level(logging.ERROR, logger="fsmio"):
        assert a.send_event(b, "EV_PING") == -1
    assert JOURNAL == []
    [record] = caplog.records
    assert "sends EV_PING to a destroyed gobj" in record.getMessage()


def test_post_event_without_gaplic() -> None:
    a = new("a")
    with pytest.raises(GObjError, match="needs a GAplic"):
        a.post_event(a, "EV_PING")
    with pytest.raises(EventError):
        a.post_event(a, 3)


def test_post_event_is_queued_fifo(gaplic: GAplic) -> None:
    a = gaplic.create_gobj("a", Echo, gaplic, __unique_name__=True)
    b = gaplic.create_gobj("b", Echo, gaplic)
    b.post_event(a, "EV_PING", n=1)
    b.post_event("a", "EV_PING", n=2)
    assert [j for j in JOURNAL if j[0] == "a"] == []
    drive(gaplic, lambda: len([j for j in JOURNAL if j[0] == "a"]) == 2)
    assert [j[2]["n"] for j in JOURNAL if j[0] == "a"] == [1, 2]


def test_post_event_to_a_gobj_destroyed_before_delivery(gaplic: GAplic) -> None:
    a = gaplic.create_gobj("a", Echo, gaplic)
    b = gaplic.create_gobj("b", Echo, gaplic)
    b.post_event(a, "EV_PING")
    GObj.destroy_gobj(a)
    JOURNAL.clear()
    gaplic._loop()
    gaplic._loop()
    assert JOURNAL == []


def test_post_event_from_outside(gaplic: GAplic) -> None:
    gaplic.create_gobj("target", Echo, gaplic, __unique_name__=True)
    thread = threading.Thread(
        target=GObj.post_event_from_outside, args=("test", "target", "EV_PING"), kwargs={"n": 1}
    )
    thread.start()
    thread.join(5)
    drive(gaplic, lambda: ("target", "EV_PING", {"n": 1}) in JOURNAL)
    with pytest.raises(GObjError, match="no GAplic named 'nope'"):
        GObj.post_event_from_outside("nope", "target", "EV_PING")
    with pytest.raises(EventError):
        GObj.post_event_from_outside("test", "target", 3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
#   destroy_gobj
# --------------------------------------------------------------------------------------
class Recorder(Echo):
    """go_out records whether its subscriptions (both sides) were already gone."""

    def go_out(self) -> None:
        JOURNAL.append(
            (
                "go_out",
                self.name,
                len(self._dl_subscriptions),
                len(self._held_subscriptions),
                [c.name for c in self.dl_childs if not c._destroyed],
            )
        )


def test_destroy_children_first_and_go_out_after_subscriptions() -> None:
    root = new("root", gclass=Recorder)
    kid1 = new("kid1", root, gclass=Recorder)
    new("grandkid", kid1, gclass=Recorder)
    kid2 = new("kid2", root, gclass=Recorder)
    other = new("other")
    root.subscribe_event("EV_OUT", other)
    other.subscribe_event(None, kid2)
    kid1.subscribe_event(None, root, __hard_subscription__=True)
    JOURNAL.clear()
    GObj.destroy_gobj(root)
    assert JOURNAL == [
        ("go_out", "grandkid", 0, 0, []),
        ("go_out", "kid1", 0, 0, []),
        ("go_out", "kid2", 0, 0, []),
        ("go_out", "root", 0, 0, []),
    ]
    assert other.get_subscriptions() == []
    assert other._held_subscriptions == {}
    assert all(g._destroyed for g in (root, kid1, kid2))
    assert list(root.dl_childs) == []
    assert "Destroyed" in repr(root)


def test_destroy_reentry_is_a_no_op() -> None:
    class SelfDestroy(Echo):
        def go_out(self) -> None:
            JOURNAL.append(("go_out", self.name))
            GObj.destroy_gobj(self)

    parent = new("parent")
    g = new("g", parent, gclass=SelfDestroy)
    JOURNAL.clear()
    GObj.destroy_gobj(g)
    GObj.destroy_gobj(g)
    assert JOURNAL == [("go_out", "g")]
    assert list(parent.dl_childs) == []


def test_destroy_non_gobj() -> None:
    with pytest.raises(GObjError, match="is not a GObj"):
        GObj.destroy_gobj("g")  # type: ignore[arg-type]


def test_go_out_raising_is_logged_and_destroy_completes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BadGoOut(Echo):
        def go_out(self) -> None:
            raise RuntimeError("go_out failed")

    parent = new("parent")
    g = new("g", parent, gclass=BadGoOut)
    with caplog.at_level(logging.ERROR, logger="fsmio"):
        GObj.destroy_gobj(g)
    assert g._destroyed and list(parent.dl_childs) == []
    assert "go_out() of" in caplog.text and "go_out failed" in caplog.text


def test_destroy_inside_own_action() -> None:
    def ac_die(self: GObj, event: Event) -> Any:
        GObj.destroy_gobj(self)
        return "dead"

    class Mortal(GObj):
        def __init__(self) -> None:
            GObj.__init__(
                self,
                {
                    "event_list": ("EV_DIE",),
                    "state_list": ("ST_A",),
                    "machine": {"ST_A": (("EV_DIE", ac_die, None),)},
                },
            )

    parent = new("parent")
    m = new("m", parent, gclass=Mortal)
    assert parent.send_event(m, "EV_DIE") == "dead"
    assert parent.send_event(m, "EV_DIE") == -1
    assert list(parent.dl_childs) == []


def test_parent_destroys_the_child_whose_event_it_is_handling(gaplic: GAplic) -> None:
    # G5: the child's action goes on after its parent destroyed it; nothing more reaches it.
    def ac_kill_child(self: GObj, event: Event) -> Any:
        GObj.destroy_gobj(event.source[-1])
        return "killed"

    def ac_call_parent(self: GObj, event: Event) -> Any:
        self.post_event(self, "EV_CALL")  # queued for after its destruction: dropped
        ret = self.send_event(self.parent, "EV_KILL")
        JOURNAL.append(("after", self._destroyed, ret))
        return ret

    fsm: dict[str, Any] = {
        "event_list": ("EV_KILL", "EV_CALL"),
        "state_list": ("ST_A",),
        "machine": {"ST_A": (("EV_KILL", ac_kill_child, None), ("EV_CALL", ac_call_parent, None))},
    }

    class Family(GObj):
        def __init__(self) -> None:
            GObj.__init__(self, fsm)

        def go_out(self) -> None:
            JOURNAL.append(("go_out", self.name))

    parent = gaplic.create_gobj("parent", Family, gaplic)
    child = gaplic.create_gobj("child", Family, parent)
    assert parent.send_event(child, "EV_CALL") == "killed"
    assert JOURNAL == [("go_out", "child"), ("after", True, "killed")]
    gaplic._loop()
    gaplic._loop()
    assert JOURNAL == [("go_out", "child"), ("after", True, "killed")]
    assert list(parent.dl_childs) == []


# --------------------------------------------------------------------------------------
#   The tree
# --------------------------------------------------------------------------------------
def test_dl_childs_in_insertion_order_and_iter() -> None:
    root = new("root")
    names = ["z", "a", "m", "b", "y"]
    kids = [new(n, root) for n in names]
    assert list(root.dl_childs) == kids
    assert [c.name for c in root] == names
    GObj.destroy_gobj(kids[2])
    assert [c.name for c in root] == ["z", "a", "b", "y"]
    new("m", root)
    assert [c.name for c in root] == ["z", "a", "b", "y", "m"]
    # Iterating over a snapshot: destroying children while iterating is safe.
    for child in root:
        GObj.destroy_gobj(child)
    assert list(root) == []


def test_getitem_exact_then_re_name(caplog: pytest.LogCaptureFixture) -> None:
    root = new("root")
    pattern = new("pattern", root, re_name=r"user_\d+")
    exact = new("user_1", root)
    assert root["user_1"] is exact  # exact names first, even if a pattern was added earlier
    assert root["user_42"] is pattern
    assert pattern.re_matched_name == "user_42"
    with pytest.raises(KeyError):
        root["user_x"]
    with pytest.raises(KeyError):
        root["pattern"]  # a gobj with re_name is found by its pattern only
    root.write_parameters(trace_traverse=True)
    with caplog.at_level(logging.INFO, logger="fsmio"):
        root["user_1"]
        with pytest.raises(KeyError):
            root["nope"]
    assert "traverse" in caplog.text and "'nope'" in caplog.text


def test_re_name_written_after_creation_counts() -> None:
    root = new("root")
    child = new("child", root)
    assert root["child"] is child
    child.write_parameters(re_name=r"item_[a-z]+")
    assert root["item_abc"] is child
    with pytest.raises(KeyError):
        root["child"]  # now found by its pattern only
    child.write_parameters(re_name=None)
    assert root["child"] is child


def test_bad_re_name_is_invalid() -> None:
    with pytest.raises(GConfigValidateError, match="re_name"):
        new("x", re_name="(")


def test_resource_path_str_repr_inside_lineage() -> None:
    root = new("root")
    a = new("a", root)
    b = new("b", a)
    assert root.resource_path() == "/"
    assert a.resource_path() == "/a"
    assert b.resource_path() == "/a/b"
    assert b.resource_path(".") == ".a.b"
    assert str(b) == "root.a.b"
    assert repr(b) == "'Echo:root.Echo:a.Echo:b: Lived'"
    assert list(lineage(b)) == [b, a, root]
    assert inside(b, root) and inside(b, b) and inside(b, a)
    assert not inside(root, b)
    assert not inside(a, new("elsewhere"))
    GObj.destroy_gobj(b)
    # A destroyed gobj keeps its path for the logs, but its parent no longer lists it.
    assert repr(b) == "'Echo:root.Echo:a.Echo:b: Destroyed'"
    assert list(a.dl_childs) == []


def test_name_and_parent_properties() -> None:
    g = new("g")
    assert g.name == g.__name__ == "g"
    g.name = "h"
    assert g.__name__ == "h"
    assert g.parent is None


def test_gobjs_hash_by_identity() -> None:
    a, b = new("same"), new("same")
    assert a != b and len({a, b}) == 2


# --------------------------------------------------------------------------------------
#   overwrite_parameters
# --------------------------------------------------------------------------------------
def _tree() -> tuple[GObj, GObj, GObj, GObj]:
    root = new("root")
    kid = new("kid", root)
    grandkid = new("grandkid", kid)
    other = new("other", root, gclass=Other)
    return root, kid, grandkid, other


@pytest.mark.parametrize(
    ("level", "expected"),
    [(0, [1, 0, 0, 0]), (1, [1, 1, 0, 1]), (2, [1, 1, 1, 1]), (-1, [1, 1, 1, 1])],
)
def test_overwrite_parameters_levels(level: int, expected: list[int]) -> None:
    tree = _tree()
    tree[0].overwrite_parameters(level, p=1)
    assert [g.config.p for g in tree] == expected


def test_overwrite_parameters_dotted_names_whole_tree() -> None:
    root, kid, grandkid, other = _tree()
    root.overwrite_parameters(-1, **{"p": 1, "grandkid.p": 9, "Other.p": 5, "GObj.q": "all"})
    assert [g.config.p for g in (root, kid, grandkid, other)] == [1, 1, 9, 5]
    assert {g.config.q for g in (root, kid, grandkid, other)} == {"all"}


def test_overwrite_few_parameters() -> None:
    root = new("root")
    root.overwrite_few_parameters(["q"], **{"p": 3, "root.q": "x"})
    assert (root.config.p, root.config.q) == (0, "x")


def test_gobj_direct_base_params() -> None:
    g = new("g", trace_mach="2", trace_creation="yes")
    assert g.trace_mach == 2 and g.trace_creation is True
    g.write_parameters(trace_mach="off")
    assert g.trace_mach == 0
    g.write_parameters(trace_mach=True)
    assert g.trace_mach == 1
    g.write_parameters(trace_mach="no")
    assert g.trace_mach == 0


@pytest.mark.parametrize("word", ["flase", "verbose", "1.5"])
def test_trace_mach_typo_is_invalid(word: str) -> None:
    # Like every bool parameter: a word that is not a bool word must not read as "off".
    with pytest.raises(GConfigValidateError, match="trace_mach"):
        new("g", trace_mach=word)


def test_a_gclass_logger_is_kept_under_a_gaplic(gaplic: GAplic) -> None:
    mine = logging.getLogger("fsmio.tests.own")

    class OwnLogger(Echo):
        def __init__(self) -> None:
            Echo.__init__(self)
            self.logger = mine

    g = gaplic.create_gobj("own", OwnLogger, gaplic)
    assert g.logger is mine
    assert gaplic.create_gobj("plain", Echo, gaplic).logger is gaplic.logger


def test_resolve_a_gobj_is_itself() -> None:
    a = new("a")
    assert a._resolve(a) is a
