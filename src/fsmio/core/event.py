"""``Event``: an event name, its destination, who sent it, and its keyword data.

Theory of operation
-------------------
Every ``send_event`` builds one Event, so its cost is the inner loop of the framework.
The fixed fields live in ``__slots__`` and the keyword data *is* the instance ``__dict__``:
``event.data`` and ``event.kw['data']`` are the same entry of the same dict, read at C
speed, and building an event from the ``**kw`` dict that the caller already owns copies
nothing.  (A kw key that collides with a slot name — ``destination``, ``event_name``,
``source`` — is still in ``event.kw`` but the attribute is the slot.)

The events the framework builds (``send_event``, ``post_event``, ``broadcast_event``) are
instances of ``_FastEvent``, a subclass that adds nothing but the C-level constructor
(``object.__init__``): calling it and storing the four fields costs less than
``object.__new__(Event)`` or the Python ``__init__``.  It *is* an ``Event`` in every
respect a program can see (``isinstance``, attributes, ``kw``, ``repr``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any


class Event:
    """An event: ``destination``, ``event_name``, ``source`` (list) and keyword data.

    ``source`` is the list of gobjs the event went through: ``source[0]`` is the one that
    first sent it and ``source[-1]`` the nearest sender.  Every keyword argument is in
    ``event.kw`` and is also an attribute: ``event.data is event.kw['data']``.
    """

    __slots__ = ("__dict__", "destination", "event_name", "source")

    destination: Any
    event_name: str
    source: list[Any]

    def __init__(
        self,
        destination: Any,
        event_name: str,
        source: Any = None,
        **kw: Any,
    ) -> None:
        self.destination = destination
        self.event_name = event_name
        if source is None:
            self.source = []
        elif isinstance(source, list):
            self.source = source
        elif isinstance(source, tuple):
            self.source = list(source)
        else:
            self.source = [source]
        self.__dict__ = kw

    if TYPE_CHECKING:
        # For type checkers only: kw entries are attributes.  A real __getattr__ would
        # put a Python-level hook on *every* attribute read of every event (measured: 5 to
        # 10 % of the echo path), so a missing one raises Python's plain AttributeError.
        def __getattr__(self, name: str) -> Any: ...

    @property
    def kw(self) -> dict[str, Any]:
        """The keyword data (the same dict that backs the attributes)."""
        return self.__dict__

    def copy(self) -> Event:
        """A new Event with the same fields, its own ``source`` list and its own kw dict."""
        return new_event(self.destination, self.event_name, list(self.source), dict(self.__dict__))

    def __repr__(self) -> str:
        return (
            f"Event({self.event_name!r}, destination={self.destination!r}, "
            f"source={self.source!r}, kw={self.__dict__!r})"
        )


class _FastEvent(Event):
    """An Event built by the framework (see the module doc): no Python ``__init__``."""

    __slots__ = ()
    __init__ = object.__init__


def new_event(destination: Any, event_name: str, source: list[Any], kw: dict[str, Any]) -> Event:
    """Build an Event without copying: ``source`` and ``kw`` become the event's own.

    The internal fast path of ``send_event``/``broadcast_event``; callers pass a fresh
    list and a dict nobody else holds.
    """
    event: Event = _FastEvent()
    event.destination = destination
    event.event_name = event_name
    event.source = source
    event.__dict__ = kw
    return event
