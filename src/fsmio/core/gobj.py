"""``GObj``: a state machine with typed parameters, living in a tree, talking by events.

Every gobj is an ``SMachine`` (its behaviour) and a ``GConfig`` (its parameters).  Gobjs
are created with ``create_gobj(name, gclass, parent, **kw)`` and talk only through events:

* ``send_event(dst, ev, **kw)`` runs ``dst``'s action now and returns its value;
* ``post_event(dst, ev, **kw)`` queues the event in the GAplic, delivered next iteration;
* ``broadcast_event(ev, **kw)`` sends an *output* event to every subscriber of it;
* ``subscribe_event(names, subscriber, **control)`` says who gets which outputs.

Theory of operation
-------------------
Children and subscriptions are insertion-ordered sets, so iteration and delivery order
are deterministic (ginsfsm used sets) and removal is O(1): dicts, except that a
publisher's first few subscriptions are a tuple (memory per connection; see
``_SUBS_TUPLE_MAX``).  A subscription is recorded on both sides — in the publisher's
``_dl_subscriptions`` and in the subscriber's ``_held_subscriptions`` — so destroying a
gobj removes the subscriptions to its outputs *and* those it holds on others: nothing is
ever delivered to a destroyed gobj.

``broadcast_event`` walks a snapshot of the subscriptions and skips any that was removed,
or whose subscriber was destroyed, while the broadcast was running.  Each subscriber gets
its own Event and its own kw dict, so one subscriber changing the kw cannot change what
the next one sees.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Final

from . import registry
from .deferred import Deferred
from .errors import EventError, GObjError
from .event import Event, _FastEvent, new_event
from .gconfig import FLAG_DIRECT_ATTR, GConfig, asbool
from .smachine import _DEFAULT_CONTEXT, EMPTY_FSM, SMachine, inject_event

__all__ = [
    "GOBJ_GCONFIG",
    "GObj",
    "Subscription",
    "add_lifecycle_observer",
    "build_gobj",
    "inside",
    "lineage",
    "remove_lifecycle_observer",
]

_LOG = logging.getLogger("fsmio")

# The shared, read-only "no entries" of a gobj's children and held subscriptions: a
# mapping proxy, so that a write that forgot to make the gobj its own dict fails loudly
# instead of changing every gobj's.
_NO_ENTRIES: Any = MappingProxyType({})
_random_names = itertools.count(1)


#: ``observer(what, gobj)`` with ``what`` ``"created"`` (the gobj is in the tree, its
#: ``start_up()`` about to run) or ``"destroyed"`` (it has left the tree).
LifecycleObserver = Callable[[str, "GObj"], None]
# The installed observers: a tuple, tested once per creation and destruction.
_lifecycle_observers: tuple[LifecycleObserver, ...] = ()


def add_lifecycle_observer(observer: LifecycleObserver) -> None:
    """Call ``observer`` when any gobj of this process is created or destroyed.

    For tools that watch a running program (the inspector).  An observer must be quick;
    one that raises is removed and its error logged.
    """
    global _lifecycle_observers
    if observer not in _lifecycle_observers:
        _lifecycle_observers = (*_lifecycle_observers, observer)


def remove_lifecycle_observer(observer: LifecycleObserver) -> None:
    """Stop calling ``observer``; removing one that is not installed does nothing."""
    global _lifecycle_observers
    # == (not is): a bound method is a new object at each access, but equal.
    _lifecycle_observers = tuple(o for o in _lifecycle_observers if o != observer)


def _notify_lifecycle(what: str, gobj: GObj) -> None:
    for observer in _lifecycle_observers:
        try:
            observer(what, gobj)
        except Exception:
            _LOG.exception("lifecycle observer %r raised; it is removed", observer)
            remove_lifecycle_observer(observer)


def _trace_level(value: Any) -> int:
    """``trace_mach`` takes a bool or a level (2 adds the event kw to the trace)."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word.isdigit():
            return int(word)
        return 1 if asbool(word) else 0  # a typo is invalid, as for every bool parameter
    return int(value) if value else 0


def _regex(value: Any) -> Any:
    """``re_name`` must compile."""
    if value is not None:
        re.compile(value)
    return value


GOBJ_GCONFIG: Final[dict[str, list[Any]]] = {
    "trace_traverse": [bool, False, 0, None, "Log traversal (__getitem__) look-ups."],
    "trace_creation": [bool, False, FLAG_DIRECT_ATTR, None, "Log creation and destruction."],
    "trace_subscription": [bool, False, 0, None, "Log subscribe, delete and broadcast."],
    "__new_subscriptor_event__": [
        str,
        None,
        0,
        None,
        "Event sent to this gobj on each new subscription (kw subscriber, subscription).",
    ],
    "re_name": [str, None, 0, _regex, "Regular expression matched by __getitem__ look-ups."],
    "trace_mach": [
        int,
        0,
        FLAG_DIRECT_ATTR,
        _trace_level,
        "Machine trace: True (or 1), or 2 to add the event kw.",
    ],
    "logger": [None, None, FLAG_DIRECT_ATTR, None, "Logger (None: the GAplic's, or 'fsmio')."],
    "gaplic": [None, None, FLAG_DIRECT_ATTR, None, "The GAplic owning this gobj (set by it)."],
    "__unique_name__": [
        bool,
        False,
        FLAG_DIRECT_ATTR,
        None,
        "Register the name in the GAplic's unique-name registry.",
    ],
    "strict_events": [
        bool,
        False,
        FLAG_DIRECT_ATTR,
        None,
        "Raise EventNotAcceptedError instead of returning it (and logging a warning).",
    ],
}

_CONTROL_KEYS: Final = frozenset(
    (
        "__use_post_event__",
        "__rename_event_name__",
        "__hard_subscription__",
        "__subscription_reference__",
        "__deferred_witout_oevent__",
        "__deferred_without_oevent__",
        "__first_shot__",
    )
)


class Subscription:
    """A subscription of ``subscriber`` to output events of ``publisher``.

    ``event_names`` is a frozenset, or None for every output event.  Keyword arguments
    that are not control keywords are kept in ``kw`` and as attributes.
    """

    __slots__ = (
        "__dict__",
        "active",
        "deferred_without_oevent",
        "event_names",
        "first_shot",
        "hard",
        "has_reference",
        "publisher",
        "reference",
        "rename_event_name",
        "simple",
        "subscriber",
        "use_post_event",
    )

    def __init__(
        self,
        publisher: GObj,
        event_names: frozenset[str] | None,
        subscriber: Any,
        control: Mapping[str, Any],
        kw: dict[str, Any],
    ) -> None:
        self.publisher = publisher
        self.event_names = event_names
        self.subscriber = subscriber
        self.use_post_event = bool(control.get("__use_post_event__"))
        self.rename_event_name: str | None = control.get("__rename_event_name__") or None
        self.hard = bool(control.get("__hard_subscription__"))
        self.has_reference = "__subscription_reference__" in control
        self.reference = control.get("__subscription_reference__")
        self.deferred_without_oevent = bool(
            control.get("__deferred_without_oevent__") or control.get("__deferred_witout_oevent__")
        )
        self.first_shot = bool(control.get("__first_shot__"))
        self.active = True
        # A gobj subscriber getting the event as it is, sent: broadcast_event's fast path.
        self.simple = isinstance(subscriber, GObj) and not (
            self.use_post_event or self.rename_event_name or self.has_reference or self.first_shot
        )
        if kw:  # else the (empty) dict is made only if someone asks for it
            self.__dict__ = kw

    @property
    def kw(self) -> dict[str, Any]:
        return self.__dict__

    def __repr__(self) -> str:
        names = "ALL" if self.event_names is None else sorted(self.event_names)
        return f"Subscription({names}, {self.publisher!r} -> {self.subscriber!r})"


def _trace_fields(gobj: GObj, phase: str, **more: Any) -> dict[str, Any]:
    """The structured ``extra`` of a creation or subscription trace line (as in SMachine's)."""
    return {"fsm_gclass": type(gobj).__name__, "fsm_gobj": str(gobj), "fsm_phase": phase, **more}


def _sub_fields(gobj: GObj, phase: str, sub: Subscription) -> dict[str, Any]:
    names = None if sub.event_names is None else sorted(sub.event_names)
    return _trace_fields(gobj, phase, fsm_event=names, fsm_subscriber=repr(sub.subscriber))


#: A publisher's subscriptions, in the order they were made: a tuple while there are at
#: most this many (a one-item tuple is 48 bytes, a one-item dict 224, and most
#: publishers — a connection's GSock among them — have one), then a dict used as an
#: ordered set, so that subscribing and unsubscribing stay O(1) for a publisher with
#: thousands of subscribers.  Both are iterated, tested with ``in`` and sized alike.
_SUBS_TUPLE_MAX: Final = 8

Subscriptions = tuple[Subscription, ...] | dict[Subscription, None]


def _subs_added(subs: Subscriptions, sub: Subscription) -> Subscriptions:
    if type(subs) is tuple:
        if len(subs) < _SUBS_TUPLE_MAX:
            return (*subs, sub)
        subs = dict.fromkeys(subs)
    assert type(subs) is dict
    subs[sub] = None
    return subs


def _subs_removed(subs: Subscriptions, sub: Subscription) -> Subscriptions:
    if type(subs) is tuple:
        return tuple(s for s in subs if s is not sub) if sub in subs else subs
    assert type(subs) is dict
    subs.pop(sub, None)  # once a dict, it stays one (no flapping at the threshold)
    return subs


def _single_plain(subs: Subscriptions) -> Subscription | None:
    """The only subscription in ``subs`` if it is plain (no tuple of its own is made:
    that would be 56 bytes more per publisher, per connection)."""
    if len(subs) != 1:
        return None
    sub = next(iter(subs))
    return sub if sub.simple else None


def _same_subscriber(a: Any, b: Any) -> bool:
    """Gobjs and Deferreds by identity; unique names by value (equal str need not be one)."""
    return a is b or (type(a) is str and a == b)


def _extended(source: list[Any], sender: Any) -> list[Any]:
    """A new source list: ``source`` and then ``sender`` (unless it is already last)."""
    return [*source, sender] if not source or source[-1] is not sender else list(source)


def lineage(resource: GObj) -> Iterator[GObj]:
    """``resource``, its parent, its grandparent... up to the root."""
    node: GObj | None = resource
    while node is not None:
        yield node
        node = node.__parent__


def inside(resource1: GObj, resource2: GObj) -> bool:
    """Whether ``resource1`` is ``resource2`` or below it in the tree."""
    return any(node is resource2 for node in lineage(resource1))


class GObj(SMachine, GConfig):
    """Base class of every gobj.

    A subclass's ``__init__`` takes no argument and calls
    ``GObj.__init__(self, FSM, GCONFIG)``; ``create_gobj`` does the rest.  Override
    ``start_up()`` (called once, with the parameters written and the gobj in the tree) and
    ``go_out()`` (called by ``destroy_gobj``, after the children and subscriptions are gone).
    """

    _gaplic: Any = None
    _destroyed: bool = False
    # Most gobjs (a connection's GSock) never have children nor hold subscriptions: they
    # read these class-wide read-only empty mappings until they do (_add_child and
    # subscribe_event give the gobj its own dict on the first write).  Class attributes,
    # not instance ones: each instance attribute is 8 bytes in every gobj.
    _dl_childs: dict[GObj, None] = _NO_ENTRIES
    _held_subscriptions: dict[Subscription, None] = _NO_ENTRIES

    # Set by the GAplic-level code; class defaults so plain gobjs pay nothing.
    owned_event_filter: Callable[[Any], Any] | None = None
    re_matched_name: str | None = None

    trace_creation: bool
    __unique_name__: bool

    def __init__(self, fsm: Mapping[str, Any] | None = None, gconfig: Any = None) -> None:
        self.__name__ = ""
        self.__parent__: GObj | None = None
        # An instance attribute, not just the class default: read on every send_event,
        # and an instance attribute is the fast read.
        self._destroyed = False
        # A tuple while small (see _SUBS_TUPLE_MAX): most publishers have one
        # subscription or a few, and a one-item tuple is 48 bytes where a one-item dict
        # is 224; broadcasts walk a tuple without copying it.
        self._dl_subscriptions: Subscriptions = ()
        # The subscription while there is exactly one and it is plain (see
        # Subscription.simple): broadcast_event's fast path.
        self._one_sub: Subscription | None = None
        SMachine.__init__(self, EMPTY_FSM if fsm is None else fsm)
        if gconfig is None:
            templates: tuple[Any, ...] = (GOBJ_GCONFIG,)
        elif isinstance(gconfig, (list, tuple)):
            templates = (GOBJ_GCONFIG, *gconfig)
        else:
            templates = (GOBJ_GCONFIG, gconfig)
        GConfig.__init__(self, templates)

    # ------------------------------------------------------------------------------------
    #   Names and the tree
    # ------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The gobj's name ('' when it has none)."""
        return self.__name__

    @name.setter
    def name(self, value: str) -> None:
        self.__name__ = value

    @property
    def parent(self) -> GObj | None:
        """The parent gobj, or None for a root."""
        return self.__parent__

    @property
    def dl_childs(self) -> Any:
        """The children, in creation order (a set-like view)."""
        return self._dl_childs.keys()

    @property
    def gaplic(self) -> Any:
        """The GAplic this gobj belongs to, or None."""
        return self._gaplic

    @gaplic.setter
    def gaplic(self, value: Any) -> None:
        self._gaplic = value
        self._ctx = value._ctx if value is not None else _DEFAULT_CONTEXT

    def _add_child(self, gobj: GObj) -> None:
        if gobj.__parent__ is not None:
            raise GObjError(f"{gobj!r} already has a parent: {gobj.__parent__!r}")
        gobj.__parent__ = self
        childs = self._dl_childs
        if childs is _NO_ENTRIES:
            childs = self._dl_childs = {}
        childs[gobj] = None

    def _remove_child(self, gobj: GObj) -> None:
        """Unlink the child ``gobj`` (it becomes a root); nothing if it is not a child.
        ``destroy_gobj`` does this itself; ginsfsm's tests call it directly."""
        childs = self._dl_childs
        if childs is not _NO_ENTRIES and gobj in childs:
            del childs[gobj]
            gobj.__parent__ = None
            # A root now: its GAplic must still destroy it when it closes.
            roots = getattr(gobj._gaplic, "_roots", None)
            if roots is not None and gobj._gaplic is not gobj:
                roots[gobj] = None

    def __getitem__(self, name: str) -> GObj:
        """The child called ``name`` (or whose ``re_name`` matches it); KeyError otherwise."""
        for child in self._dl_childs:
            if not child.config.re_name and child.__name__ == name:
                self._trace_traverse(name, child)
                return child
        for child in self._dl_childs:
            # Read at each look-up, so a re_name written after creation counts (the re
            # module caches the compiled pattern).
            pattern = child.config.re_name
            if pattern and re.fullmatch(pattern, name):
                child.re_matched_name = name
                self._trace_traverse(name, child)
                return child
        self._trace_traverse(name, None)
        raise KeyError(name)

    def _trace_traverse(self, name: str, found: GObj | None) -> None:
        if self.config.trace_traverse:
            (self.logger or _LOG).info("traverse %r[%r] -> %r", self, name, found)

    def __iter__(self) -> Iterator[GObj]:
        return iter(list(self._dl_childs))

    def resource_path(self, sep: str = "/") -> str:
        """The names from the root's child down to this gobj, joined by ``sep``."""
        names = [node.__name__ for node in lineage(self)][:-1]
        return sep + sep.join(reversed(names))

    def __str__(self) -> str:
        return ".".join(reversed([node.__name__ for node in lineage(self)]))

    def __repr__(self) -> str:
        path = ".".join(
            reversed([f"{type(node).__name__}:{node.__name__}" for node in lineage(self)])
        )
        return f"'{path}: {'Destroyed' if self._destroyed else 'Lived'}'"

    # Identity semantics: gobjs are dict keys in the tree and in subscriptions.
    __hash__ = object.__hash__

    # ------------------------------------------------------------------------------------
    #   Life cycle
    # ------------------------------------------------------------------------------------
    def start_up(self) -> None:
        """Hook: called once by ``create_gobj``, after the parameters are written."""

    def go_out(self) -> None:
        """Hook: called once by ``destroy_gobj``, after children and subscriptions are gone."""

    def create_gobj(
        self, name: str | None, gclass: type[GObj], parent: GObj | None, **kw: Any
    ) -> Any:
        """Create a gobj of ``gclass`` called ``name`` under ``parent``, with parameters ``kw``.

        Through this gobj's GAplic when it has one (so the GAplic's services and
        ``ini_settings`` apply).
        """
        gaplic = self._gaplic
        if gaplic is not None and gaplic is not self:
            return gaplic.create_gobj(name, gclass, parent, **kw)
        return build_gobj(name, gclass, parent, kw, None)

    @staticmethod
    def destroy_gobj(gobj: GObj) -> None:
        """Destroy ``gobj`` and its subtree.

        Children first; then the subscriptions to its outputs and those it holds on other
        gobjs; then ``go_out()``; then it leaves its parent and the unique-name registry.
        Events still queued for it are dropped when dequeued; its GTimers (children) are
        cancelled.  Destroying a destroyed gobj does nothing.
        """
        if not isinstance(gobj, GObj):
            raise GObjError(f"destroy_gobj(): {gobj!r} is not a GObj")
        if gobj._destroyed:
            (gobj.logger or _LOG).debug("destroy_gobj(): %r is already destroyed", gobj)
            return
        gobj._destroyed = True
        log = gobj.logger or _LOG
        if gobj.trace_creation:
            log.info("Destroying --> %r", gobj, extra=_trace_fields(gobj, "destroying"))
        for child in list(gobj._dl_childs):
            GObj.destroy_gobj(child)
        gobj.delete_all_subscriptions(force=True)
        for sub in list(gobj._held_subscriptions):
            sub.publisher._remove_subscription(sub)
        try:
            gobj.go_out()
        except Exception:
            log.exception("destroy_gobj(): go_out() of %r raised", gobj)
        parent = gobj.__parent__
        if parent is not None and parent._dl_childs is not _NO_ENTRIES:
            parent._dl_childs.pop(gobj, None)
        gaplic = gobj._gaplic
        if gaplic is not None and gaplic is not gobj:
            gaplic._forget_gobj(gobj)
        if gobj.trace_creation:
            log.info("Destroyed! <-- %r", gobj, extra=_trace_fields(gobj, "destroyed"))
        gobj._forget_trace()
        if _lifecycle_observers:
            _notify_lifecycle("destroyed", gobj)

    @staticmethod
    def get_random_name(prefix: str = "") -> str:
        """A process-unique name: ``'<prefix>_<n>'``, or ``'<n>'`` without a prefix."""
        n = next(_random_names)
        return f"{prefix}_{n}" if prefix else str(n)

    # ------------------------------------------------------------------------------------
    #   Parameters
    # ------------------------------------------------------------------------------------
    def overwrite_parameters(self, level: int, **settings: Any) -> None:
        """Write the ``settings`` that apply to this gobj (dotted names, see
        ``filter_parameters``), then to its children down ``level`` generations; ``-1``
        (any negative level) means the whole subtree."""
        self.write_parameters(**self.filter_parameters(**settings))
        if level != 0:
            for child in list(self._dl_childs):
                child.overwrite_parameters(level - 1 if level > 0 else -1, **settings)

    def overwrite_few_parameters(self, parameter_list: list[str], **settings: Any) -> None:
        """Write only the parameters in ``parameter_list`` that ``settings`` sets."""
        self.write_few_parameters(parameter_list, **self.filter_parameters(**settings))

    # ------------------------------------------------------------------------------------
    #   Events
    # ------------------------------------------------------------------------------------
    def _resolve(self, destination: Any) -> GObj:
        if isinstance(destination, GObj):
            return destination
        if isinstance(destination, str):
            gaplic = self._gaplic
            if gaplic is None:
                raise GObjError(
                    f"{self!r}: cannot resolve destination {destination!r}: "
                    "no GAplic (unique names live in a GAplic)"
                )
            found: GObj | None = gaplic.find_unique_gobj(destination)
            if found is None:
                raise GObjError(f"{self!r}: no unique gobj named {destination!r}")
            return found
        raise GObjError(
            f"{self!r}: destination must be a GObj or a unique name, not {destination!r}"
        )

    def _make_event(self, destination: Any, event: Any, kw: dict[str, Any]) -> Event:
        if type(event) is str:
            return new_event(destination, event, [self], kw)
        if isinstance(event, Event):
            source = event.source
            source = [*source, self] if not source or source[-1] is not self else list(source)
            return new_event(destination, event.event_name, source, {**event.kw, **kw})
        raise EventError(f"{self!r}: an event must be a str or an Event, not {event!r}")

    def _event_factory(self, destination: Any, event: Any, **kw: Any) -> Event:
        """A new Event for ``destination`` (a gobj, a unique name or a Deferred).

        ``event`` is an event name, or an Event: then the new one has its name, its kw
        updated with ``kw``, and its source with this gobj appended (unless already
        last).  ``EventError`` for another ``event``, ``GObjError`` for another
        destination (ginsfsm's checks, in its order).
        """
        if not isinstance(event, (str, Event)):
            raise EventError(f"{self!r}: an event must be a str or an Event, not {event!r}")
        if not isinstance(destination, (str, GObj, Deferred)):
            raise GObjError(
                f"{self!r}: destination must be a GObj, a unique name or a Deferred, "
                f"not {destination!r}"
            )
        return self._make_event(destination, event, kw)

    def send_event(self, destination: Any, event: Any, **kw: Any) -> Any:
        """Deliver ``event`` to ``destination`` now; return the action's value.

        ``destination`` is a gobj or a unique name.  A destroyed destination is a logged
        no-op returning ``-1``; an event it does not accept returns
        ``EventNotAcceptedError`` (the class) after a warning.
        """
        dst = destination if isinstance(destination, GObj) else self._resolve(destination)
        if type(event) is str:
            # new_event(), inlined: this is the inner loop of every program.
            ev = _FastEvent()
            ev.destination = dst
            ev.event_name = event
            ev.source = [self]
            ev.__dict__ = kw
        else:
            ev = self._make_event(dst, event, kw)
        if dst._destroyed:
            (self.logger or _LOG).error(
                "send_event(): %r sends %s to a destroyed gobj %r",
                self,
                ev.event_name,
                dst,
            )
            return -1
        # The function behind every gobj's inject_event, called directly: a C call in the
        # compiled build (docs/compiled.md).
        return inject_event(dst, ev)

    def post_event(self, destination: Any, event: Any, **kw: Any) -> None:
        """Queue ``event`` for ``destination``; the GAplic delivers it next iteration."""
        gaplic = self._gaplic
        if type(event) is str and gaplic is not None and isinstance(destination, (GObj, str)):
            # The common case, with new_event() inlined; the checks below in their order
            # for everything else.
            ev = _FastEvent()
            ev.destination = destination
            ev.event_name = event
            ev.source = [self]
            ev.__dict__ = kw
            gaplic.enqueue_event(ev)
            return
        if not isinstance(destination, (GObj, str)):
            raise GObjError(
                f"{self!r}: destination must be a GObj or a unique name, not {destination!r}"
            )
        ev = self._make_event(destination, event, kw)
        gaplic = self._gaplic
        if gaplic is None:
            raise GObjError(f"{self!r}: post_event() needs a GAplic to queue the event")
        gaplic.enqueue_event(ev)

    @staticmethod
    def post_event_from_outside(gaplic_name: str, gobj_name: str, event: str, **kw: Any) -> None:
        """Queue ``event`` for the unique gobj ``gobj_name`` of the GAplic ``gaplic_name``.

        For code outside the gobj tree, and for other threads: thread-safe, and it wakes
        the GAplic's loop.
        """
        gaplic = registry.global_get_gaplic(gaplic_name)
        if gaplic is None:
            raise GObjError(f"post_event_from_outside(): no GAplic named {gaplic_name!r}")
        if not isinstance(event, str):
            raise EventError(f"post_event_from_outside(): event must be a str, not {event!r}")
        gaplic.enqueue_event_threadsafe(new_event(gobj_name, event, [], kw))

    def broadcast_event(self, event: Any, **kw: Any) -> None:
        """Send an output event to its subscribers (a gobj gets at most one copy).

        Delivery follows each subscription: renamed, with a reference, queued
        (``__use_post_event__``) or sent.  After a sent delivery, if
        ``owned_event_filter(return_value)`` is True the event is owned and the remaining
        subscribers are skipped.
        """
        one = self._one_sub
        if one is not None and type(event) is str and not self.config.trace_subscription:
            # The common case (a GSock and its user, a GTimer and its parent): one plain
            # subscription, cached by subscribe/unsubscribe, so no snapshot, no
            # de-duplication, no copy of kw, and no owned_event_filter (there is no later
            # subscriber to skip).
            subscriber = one.subscriber
            names = one.event_names
            if (names is None or event in names) and not subscriber._destroyed:
                oevent = _FastEvent()
                oevent.destination = subscriber
                oevent.event_name = event
                oevent.source = [self]
                oevent.__dict__ = kw
                inject_event(subscriber, oevent)
            return
        subs = self._dl_subscriptions
        if not subs:
            return
        if type(event) is str:
            name = event
            base_source: list[Any] | None = None
        elif isinstance(event, Event):
            name = event.event_name
            base_source = event.source
            kw = {**event.kw, **kw}
        else:
            raise EventError(f"{self!r}: an event must be a str or an Event, not {event!r}")
        if self.config.trace_subscription:
            (self.logger or _LOG).info(
                "BROADCAST event: %r %s %r",
                self,
                name,
                kw,
                extra=_trace_fields(self, "broadcast", fsm_event=name),
            )
        several = len(subs) > 1
        pristine = dict(kw) if several else kw
        served: set[int] | None = set() if several else None
        owned_filter = self.owned_event_filter
        for sub in tuple(subs):
            if not sub.active:
                continue
            names = sub.event_names
            if names is not None and name not in names:
                continue
            subscriber = sub.subscriber
            if isinstance(subscriber, str):
                gaplic = self._gaplic
                found = gaplic.find_unique_gobj(subscriber) if gaplic is not None else None
                if found is None:
                    (self.logger or _LOG).warning(
                        "broadcast_event(): %r: no unique gobj %r subscribed to %s",
                        self,
                        subscriber,
                        name,
                    )
                    continue
                subscriber = found
            if served is not None:
                if id(subscriber) in served:
                    continue
                served.add(id(subscriber))
                event_kw = dict(pristine)
            else:
                event_kw = kw
            if sub.rename_event_name:
                event_kw["original_event_name"] = name
                delivered_name = sub.rename_event_name
            else:
                delivered_name = name
            if sub.has_reference:
                event_kw["__subscription_reference__"] = sub.reference
            source = [self] if base_source is None else _extended(base_source, self)
            if sub.first_shot:
                self._remove_subscription(sub)
            if isinstance(subscriber, Deferred):
                oevent = new_event(subscriber, delivered_name, source, event_kw)
                if sub.deferred_without_oevent:
                    subscriber()
                else:
                    subscriber(event=oevent)
                continue
            if not isinstance(subscriber, GObj) or subscriber._destroyed:
                continue
            oevent = new_event(subscriber, delivered_name, source, event_kw)
            if sub.use_post_event:
                gaplic = self._gaplic
                if gaplic is None:
                    raise GObjError(f"{self!r}: a __use_post_event__ subscription needs a GAplic")
                gaplic.enqueue_event(oevent)
                continue
            ret = inject_event(subscriber, oevent)
            if owned_filter is not None and owned_filter(ret) is True:
                return

    # ------------------------------------------------------------------------------------
    #   Subscriptions
    # ------------------------------------------------------------------------------------
    def _event_names(self, event_name: Any, check_output: bool) -> frozenset[str] | None:
        if event_name is None:
            return None
        names = (event_name,) if isinstance(event_name, str) else event_name
        if not isinstance(names, (tuple, list, set, frozenset)):
            raise EventError(
                f"{self!r}: event names must be a str, a tuple of str or None, not {event_name!r}"
            )
        if None in names:
            return None
        for ev in names:
            if not isinstance(ev, str):
                raise EventError(f"{self!r}: event name {ev!r} is not a str")
            if check_output and ev not in self._fsm.output_set:
                raise EventError(
                    f"{self!r}: {ev!r} is not an output event of {type(self).__name__} "
                    f"(outputs: {list(self._fsm.output_events)})"
                )
        return frozenset(names)

    def _check_subscriber(self, subscriber: Any) -> Any:
        if subscriber is None:
            if self.__parent__ is None:
                raise GObjError(f"{self!r}: subscriber None means the parent, and there is none")
            return self.__parent__
        if isinstance(subscriber, (GObj, str, Deferred)):
            return subscriber
        raise GObjError(
            f"{self!r}: a subscriber must be a GObj, a unique name or a Deferred, "
            f"not {subscriber!r}"
        )

    def subscribe_event(self, event_name: Any, subscriber: Any, **kw: Any) -> Subscription:
        """Subscribe ``subscriber`` to output events of this gobj.

        ``event_name``: an output event name, a tuple of them, or None for all.
        ``subscriber``: a gobj, a unique name, a ``Deferred``, or None for the parent.
        Control keywords: ``__use_post_event__`` (deliver through the queue),
        ``__rename_event_name__='EV_X'`` (deliver as EV_X with kw ``original_event_name``),
        ``__hard_subscription__`` (only a forced delete removes it),
        ``__subscription_reference__=ref`` (add kw ``__subscription_reference__``),
        ``__deferred_without_oevent__`` (call a Deferred with no event),
        ``__first_shot__`` (remove after the first delivery).  Other keywords are kept on
        the subscription.  Subscribing the same names and subscriber again replaces the
        old subscription (with a warning).  A destroyed publisher or subscriber (a stale
        reference) is a ``GObjError``: nothing would ever remove the subscription.
        """
        names = self._event_names(event_name, check_output=True)
        subscriber = self._check_subscriber(subscriber)
        if self._destroyed or (isinstance(subscriber, GObj) and subscriber._destroyed):
            raise GObjError(f"subscribe_event(): {self!r} -> {subscriber!r}: a gobj is destroyed")
        control = {k: v for k, v in kw.items() if k in _CONTROL_KEYS}
        extra = {k: v for k, v in kw.items() if k not in _CONTROL_KEYS}
        for old in tuple(self._dl_subscriptions):
            if old.event_names == names and _same_subscriber(old.subscriber, subscriber):
                (self.logger or _LOG).warning(
                    "subscribe_event(): duplicate subscription %r, replacing it", old
                )
                if not old.hard:
                    self._remove_subscription(old)
        sub = Subscription(self, names, subscriber, control, extra)
        self._dl_subscriptions = subs = _subs_added(self._dl_subscriptions, sub)
        self._one_sub = _single_plain(subs)
        if isinstance(subscriber, GObj):
            held = subscriber._held_subscriptions
            if held is _NO_ENTRIES:
                held = subscriber._held_subscriptions = {}
            held[sub] = None
        if self.config.trace_subscription:
            (self.logger or _LOG).info(
                "NEW Subscription: %r", sub, extra=_sub_fields(self, "subscribe", sub)
            )
        new_subscriptor_event = self.config.__new_subscriptor_event__
        if new_subscriptor_event:
            self.send_event(self, new_subscriptor_event, subscriber=subscriber, subscription=sub)
        return sub

    def _remove_subscription(self, sub: Subscription) -> None:
        sub.active = False
        self._dl_subscriptions = subs = _subs_removed(self._dl_subscriptions, sub)
        self._one_sub = _single_plain(subs)
        subscriber = sub.subscriber
        if isinstance(subscriber, GObj) and subscriber._held_subscriptions is not _NO_ENTRIES:
            subscriber._held_subscriptions.pop(sub, None)
        if self.config.trace_subscription:
            (self.logger or _LOG).info(
                "DEL Subscription: %r", sub, extra=_sub_fields(self, "unsubscribe", sub)
            )

    def delete_subscription(self, event_name: Any, subscriber: Any) -> bool:
        """Remove the subscription of ``subscriber`` to ``event_name``; whether it was found
        and removable (a hard subscription is not)."""
        names = self._event_names(event_name, check_output=False)
        subscriber = self._check_subscriber(subscriber)
        for sub in tuple(self._dl_subscriptions):
            if sub.event_names == names and _same_subscriber(sub.subscriber, subscriber):
                return self.delete_subscription_by_object(sub)
        (self.logger or _LOG).error(
            "delete_subscription(): %r has no subscription of %r to %r",
            self,
            subscriber,
            event_name,
        )
        return False

    def delete_subscription_by_object(self, sub: Subscription, force: bool = False) -> bool:
        """Remove ``sub``; whether it was removed (a hard one only with ``force``)."""
        if sub not in self._dl_subscriptions:
            return False
        if sub.hard and not force:
            (self.logger or _LOG).error(
                "delete_subscription(): %r is a hard subscription; not removed", sub
            )
            return False
        self._remove_subscription(sub)
        return True

    def delete_all_subscriptions(self, force: bool = False) -> None:
        """Remove every subscription to this gobj's outputs (hard ones only with ``force``)."""
        for sub in tuple(self._dl_subscriptions):
            if force or not sub.hard:
                self._remove_subscription(sub)

    def subscribers_take(self, event_name: str) -> bool:
        """Whether a broadcast of ``event_name`` now reaches a subscriber whose FSM has a row
        for it (as delivered: renamed if the subscription renames).  A unique-name or
        ``Deferred`` subscriber counts as taking it.  For frequent optional outputs such as
        EV_TRANSMIT_READY: not sending one that nobody takes spares a warning per event.
        """
        for sub in self._dl_subscriptions:
            names = sub.event_names
            if not sub.active or (names is not None and event_name not in names):
                continue
            subscriber = sub.subscriber
            if not isinstance(subscriber, GObj):
                return True  # cannot tell: deliver
            if (sub.rename_event_name or event_name) in subscriber._fsm.input_set:
                return True
        return False

    def get_subscriptions(self) -> list[Subscription]:
        """The subscriptions to this gobj's outputs, in the order they were made."""
        return list(self._dl_subscriptions)

    def set_owned_event_filter(self, filter_fn: Callable[[Any], Any] | None) -> None:
        """Set the filter that decides, from a subscriber's return value, whether it owned a
        broadcast event (then later subscribers do not get it)."""
        self.owned_event_filter = filter_fn


def build_gobj(
    name: str | None,
    gclass: Any,
    parent: GObj | None,
    kw: dict[str, Any],
    gaplic: Any,
) -> GObj:
    """Create a gobj, in ginsfsm's order of steps, leaving nothing half-built on error.

    1. check gclass and parent; 2. ``__random_name__``; 3. ``gclass()`` and the name;
    4. write ``kw``; 5. write the GAplic's ``ini_settings`` that apply (they win over kw);
    6. check the unique name; 7. link to the parent; 8. register the unique name;
    9. ``start_up()`` — if it raises, the gobj is destroyed and the error propagates.
    """
    if gclass is None:
        raise GObjError("create_gobj(): gclass is None")
    if not isinstance(gclass, type):
        # ginsfsm's issubclass() raised TypeError here; kept, with a message that says why.
        raise TypeError(f"create_gobj(): gclass must be a GObj subclass, not {gclass!r}")
    if not issubclass(gclass, GObj):
        raise GObjError(f"create_gobj(): {gclass!r} is not a GObj subclass")
    if parent is not None:
        if not isinstance(parent, GObj):
            raise GObjError(f"create_gobj(): parent {parent!r} is not a GObj")
        if parent._destroyed:
            raise GObjError(f"create_gobj(): parent {parent!r} is destroyed")
    if kw.pop("__random_name__", False):
        name = GObj.get_random_name(name or "")
    gobj = gclass()
    try:
        # Instance attributes set by GObj.__init__.  (Not `in vars(gobj)`: that would
        # give every gobj a materialized __dict__, 64 bytes more each.)
        gobj._fsm, gobj._gconfig  # noqa: B018
    except AttributeError:
        raise GObjError(
            f"create_gobj(): {gclass.__name__}.__init__ must call GObj.__init__(self, FSM, GCONFIG)"
        ) from None
    gobj.__name__ = name or ""
    if gaplic is not None:
        gobj.gaplic = gaplic
        if gobj.logger is None:
            gobj.logger = gaplic.logger
    if kw:
        gobj.write_parameters(**kw)
    if gaplic is not None and gaplic.ini_settings:
        settings = gobj.filter_parameters(**gaplic.ini_settings)
        if settings:
            gobj.write_parameters(**settings)
    if gobj.trace_creation:
        (gobj.logger or _LOG).info(
            "Creating --> '%s:%s'",
            gclass.__name__,
            gobj.__name__,
            extra=_trace_fields(gobj, "creating"),
        )
    unique = bool(gobj.__unique_name__)
    if unique:
        if gaplic is None:
            raise GObjError(f"create_gobj(): unique name {name!r} needs a GAplic")
        gaplic._check_unique_name(gobj)
    if parent is not None:
        parent._add_child(gobj)
    if gaplic is not None:
        gaplic._adopt_gobj(gobj)
    if gobj.trace_creation:
        (gobj.logger or _LOG).info(
            "Created <--%s %r", "!" if unique else "", gobj, extra=_trace_fields(gobj, "created")
        )
    if _lifecycle_observers:
        _notify_lifecycle("created", gobj)
    try:
        gobj.start_up()
    except BaseException:
        GObj.destroy_gobj(gobj)
        raise
    return gobj
