"""The inspector's feed, without I/O: the ring buffer, the event filter, the viewer's
coalescing cursor, the checks of what a page sends, and the JSON of what it gets.

The wire contract is ``INSPECTOR-PROTOCOL`` (reproduced in ``docs/inspector.md``); this
module is the part of it that needs no socket, so that it is tested exactly.

Theory of operation
-------------------
While a viewer is connected every dispatch is appended to one ``RingBuffer`` as a small
tuple (``EvTuple``: no JSON, no string formatting but a bounded ``repr`` of the return
value).  The ring is the retained history *and* every viewer's pending queue: a
``ViewerCursor`` only remembers how far into the ring its viewer has been sent (the
ring's running count), so a viewer costs O(1) memory whatever it does.  At each flush
(at most ``rate`` per second) a viewer gets, in one ``events`` message, the items that
arrived since its cursor and pass its filter, at most ``max_batch`` of them (the newest;
the older ones are counted as dropped); a viewer whose socket is backed up is skipped,
and when the ring laps its cursor the lapped items are counted as dropped too.  Memory is
therefore bounded by the ring's capacity, never by how slow a viewer is.
"""

from __future__ import annotations

import itertools
import json
import math
import reprlib
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, Final, NamedTuple

__all__ = [
    "MAX_ID",
    "MAX_MESSAGE",
    "MAX_NAMES",
    "PROTOCOL_VERSION",
    "EvTuple",
    "EventFilter",
    "FeedError",
    "RingBuffer",
    "ViewerCursor",
    "dumps",
    "ev_dict",
    "parse_message",
    "short_repr",
]

PROTOCOL_VERSION: Final = 1
#: The largest message a page may send (bytes); the GWebSocket closes with 1009 above it.
MAX_MESSAGE: Final = 65536
#: The most names one filter list may hold.
MAX_NAMES: Final = 256
#: Ids are small ints; anything larger cannot be one (JSON allows huge integers).
MAX_ID: Final = 2**53
#: ``repr`` of a return value is cut to this many characters.
MAX_REPR: Final = 200
_MAX_NAME_LEN: Final = 512

_repr = reprlib.Repr()
_repr.maxstring = MAX_REPR
_repr.maxother = MAX_REPR
_repr.maxlong = 60
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 8
_repr.maxlevel = 3


def short_repr(value: Any) -> str:
    """``repr(value)``, bounded in time and size (a huge bytes value is not copied)."""
    if value is None:
        return "None"
    kind = type(value)
    if (kind is int and -(2**63) < value < 2**63) or kind is bool:  # the common returns
        return repr(value)
    try:
        text = _repr.repr(value)
    except Exception as exc:  # a broken __repr__ must not break the observer
        text = f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


class EvTuple(NamedTuple):
    """One dispatch as the observer records it (cheap to build; JSON only at flush)."""

    seq: int
    t: float
    depth: int
    src: int | None
    src_name: str | None
    dst: int
    dst_name: str
    gclass: str
    event: str
    state: str | None
    next_state: str | None
    ret: str
    error: str | None


def ev_dict(ev: EvTuple) -> dict[str, Any]:
    """The protocol's ``EV`` object of a recorded dispatch."""
    return ev._asdict()


def dumps(message: dict[str, Any]) -> str:
    """A message as compact JSON text (non-finite floats, which JSON lacks, as null)."""
    try:
        return json.dumps(message, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(message), separators=(",", ":"))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# ----------------------------------------------------------------------------------------
#   The ring buffer
# ----------------------------------------------------------------------------------------
class RingBuffer:
    """The last ``capacity`` items, and the running count of every item ever appended.

    Item ``n`` (0-based, in append order) is in the ring while ``n >= total -
    len(ring)``; ``since(n)`` gives the items from ``n`` on that are still there.
    """

    __slots__ = ("_items", "capacity", "total")

    def __init__(self, capacity: int) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"a ring buffer's capacity must be an int >= 1, not {capacity!r}")
        self.capacity = capacity
        self._items: deque[Any] = deque(maxlen=capacity)
        self.total = 0

    def append(self, item: Any) -> None:
        self._items.append(item)
        self.total += 1

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    @property
    def first(self) -> int:
        """The running number of the oldest item held."""
        return self.total - len(self._items)

    def since(self, start: int) -> list[Any]:
        """The items numbered ``start`` and after that are still held, oldest first."""
        count = self.total - max(start, self.first)
        if count <= 0:
            return []
        if count >= len(self._items):
            return list(self._items)
        # From the newest end: O(count), not O(capacity).
        out = list(itertools.islice(reversed(self._items), count))
        out.reverse()
        return out

    def clear(self) -> None:
        """Forget the items (the running count goes on: cursors stay meaningful)."""
        self._items.clear()


# ----------------------------------------------------------------------------------------
#   The filter
# ----------------------------------------------------------------------------------------
class EventFilter:
    """A viewer's filter: lists of exact names; an empty list does not constrain.

    ``gobj`` matches the destination or the source name; ``state`` the state before or
    after the transition.
    """

    __slots__ = ("event", "gclass", "gobj", "state")

    def __init__(
        self,
        gclass: Iterable[str] = (),
        gobj: Iterable[str] = (),
        state: Iterable[str] = (),
        event: Iterable[str] = (),
    ) -> None:
        self.gclass = frozenset(gclass)
        self.gobj = frozenset(gobj)
        self.state = frozenset(state)
        self.event = frozenset(event)

    @property
    def empty(self) -> bool:
        return not (self.gclass or self.gobj or self.state or self.event)

    def matches(self, ev: EvTuple) -> bool:
        if self.gclass and ev.gclass not in self.gclass:
            return False
        if self.event and ev.event not in self.event:
            return False
        if self.gobj and ev.dst_name not in self.gobj and ev.src_name not in self.gobj:
            return False
        return not (self.state and ev.state not in self.state and ev.next_state not in self.state)

    def select(self, items: Iterable[EvTuple]) -> list[EvTuple]:
        if self.empty:
            return list(items)
        return [ev for ev in items if self.matches(ev)]


# ----------------------------------------------------------------------------------------
#   A viewer's cursor into the ring: coalescing and drops
# ----------------------------------------------------------------------------------------
class ViewerCursor:
    """How far one viewer has been sent; ``take`` makes its next ``events`` message."""

    __slots__ = ("dropped", "dropped_total", "filter", "next")

    def __init__(self, ring: RingBuffer) -> None:
        self.next = ring.total
        self.filter = EventFilter()
        #: Events lost since the last message sent (reset by ``take``).
        self.dropped = 0
        #: Events lost since the viewer connected.
        self.dropped_total = 0

    def pending(self, ring: RingBuffer) -> int:
        """Items appended since the last ``take`` (before filtering)."""
        return ring.total - self.next

    def take(self, ring: RingBuffer, max_batch: int) -> tuple[list[EvTuple], int] | None:
        """The items to send now (filtered, at most ``max_batch``, the newest kept) and
        the count of those dropped since the last message; None when there is nothing to
        say.  Advances the cursor to the ring's end."""
        lapped = max(0, ring.first - self.next)
        items = self.filter.select(ring.since(self.next))
        self.next = ring.total
        over = max(0, len(items) - max_batch)
        if over:
            items = items[over:]
        self.dropped += lapped + over
        if not items and not self.dropped:
            return None
        dropped, self.dropped = self.dropped, 0
        self.dropped_total += dropped
        items.sort(key=_seq)
        return items, dropped

    def skip(self, ring: RingBuffer) -> None:
        """Note items that will never be sent (the ring was cleared)."""
        self.next = ring.total


def _seq(ev: EvTuple) -> int:
    return ev.seq


# ----------------------------------------------------------------------------------------
#   What a page sends
# ----------------------------------------------------------------------------------------
class FeedError(ValueError):
    """A message from a page that is not what the protocol expects (the text says why)."""


_TYPES: Final = ("auth", "filter", "select", "history", "send_event", "trace")


def parse_message(data: Any) -> dict[str, Any]:
    """Check one message from a page; return it normalized, or raise ``FeedError``.

    Everything is hostile: wrong JSON types, missing fields, huge ids, long lists.
    """
    if not isinstance(data, str):
        raise FeedError("expected a JSON text message, got a binary one")
    if len(data) > MAX_MESSAGE:
        raise FeedError(f"message too long: {len(data)} characters, at most {MAX_MESSAGE}")
    try:
        message = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise FeedError(f"not JSON ({type(exc).__name__}); expected a JSON object") from None
    if not isinstance(message, dict):
        raise FeedError(f"expected a JSON object, got a {_json_type(message)}")
    kind = message.get("type")
    if not isinstance(kind, str):
        raise FeedError(f"missing 'type' (a string, one of {', '.join(_TYPES)})")
    if kind == "auth":
        return {"type": "auth", "token": _field(message, "token", str)}
    if kind == "filter":
        out: dict[str, Any] = {"type": "filter"}
        for key in ("gclass", "gobj", "state", "event"):
            out[key] = _names(message, key)
        return out
    if kind == "select":
        if "id" not in message:
            raise FeedError("select: missing 'id' (an int, or null to clear the selection)")
        value = message["id"]
        return {"type": "select", "id": None if value is None else _id(value, "select")}
    if kind == "history":
        return {"type": "history"}
    if kind == "send_event":
        target = _id(_field(message, "id", object), "send_event")
        event = _field(message, "event", str)
        if not event or len(event) > _MAX_NAME_LEN:
            raise FeedError("send_event: 'event' must be a non-empty event name")
        kw = message.get("kw", {})
        if not isinstance(kw, dict):
            raise FeedError(f"send_event: 'kw' must be a JSON object, not a {_json_type(kw)}")
        for key in kw:
            if key.startswith("__"):
                raise FeedError(
                    f"send_event: kw key {key[:40]!r}: names starting with '__' are "
                    "control keywords and cannot be sent from the inspector"
                )
        return {"type": "send_event", "id": target, "event": event, "kw": kw}
    if kind == "trace":
        target = _id(_field(message, "id", object), "trace")
        on = _field(message, "on", bool)
        return {"type": "trace", "id": target, "on": on}
    raise FeedError(f"unknown type {kind[:40]!r}; expected one of {', '.join(_TYPES)}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _field(message: dict[str, Any], key: str, kind: type) -> Any:
    kind_name = {str: "a string", bool: "true or false"}.get(kind, "a value")
    if key not in message:
        raise FeedError(f"{message['type']}: missing {key!r} ({kind_name})")
    value = message[key]
    if kind is not object and not isinstance(value, kind):
        raise FeedError(
            f"{message['type']}: {key!r} must be {kind_name}, not a {_json_type(value)}"
        )
    return value


def _id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FeedError(f"{what}: 'id' must be an integer gobj id, not a {_json_type(value)}")
    if not 0 <= value < MAX_ID:
        raise FeedError(f"{what}: 'id' {value} is out of range (ids are small non-negative ints)")
    return value


def _names(message: dict[str, Any], key: str) -> list[str]:
    value = message.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise FeedError(f"filter: {key!r} must be a list of names, not a {_json_type(value)}")
    if len(value) > MAX_NAMES:
        raise FeedError(f"filter: {key!r} has {len(value)} names, at most {MAX_NAMES}")
    for name in value:
        if not isinstance(name, str) or len(name) > _MAX_NAME_LEN:
            raise FeedError(f"filter: {key!r} must hold strings (names), not {_json_type(name)}")
    return list(value)
