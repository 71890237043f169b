"""``Deferred`` and ``DeferredList``: stored callbacks, usable as event subscribers.

A ``Deferred`` given to ``subscribe_event`` in place of a gobj is called with the event:
``deferred(event=event)`` (or with no argument when the subscription says
``__deferred_without_oevent__``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Deferred", "DeferredList"]


class Deferred:
    """A callback with stored arguments: ``Deferred(ref, callback, *args, **kwargs)``.

    Calling it runs ``callback(*args, **{**kwargs, **kw})``; a cancelled Deferred does
    nothing and returns None.
    """

    __slots__ = ("args", "callback", "kwargs", "ref")

    def __init__(self, ref: Any, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if not callable(callback):
            raise TypeError(f"Deferred callback {callback!r} is not callable")
        self.ref = ref
        self.callback: Callable[..., Any] | None = callback
        self.args = args
        self.kwargs = kwargs

    def __call__(self, **kw: Any) -> Any:
        if self.callback is None:
            return None
        return self.callback(*self.args, **{**self.kwargs, **kw})

    def cancel(self) -> None:
        """Forget the callback: later calls do nothing."""
        self.callback = None

    def __repr__(self) -> str:
        return f"Deferred({self.ref!r}, {self.callback!r})"


class DeferredList:
    """An ordered list of ``Deferred`` found by their ``ref``."""

    def __init__(self) -> None:
        self._items: list[Deferred] = []

    def add_callback(
        self, ref: Any, callback: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Deferred:
        deferred = Deferred(ref, callback, *args, **kwargs)
        self._items.append(deferred)
        return deferred

    def __call__(self, ref: Any, **kw: Any) -> Any:
        """Call the first Deferred whose ref is ``ref``; None if there is none."""
        for deferred in self._items:
            if deferred.ref == ref:
                return deferred(**kw)
        return None

    def delete(self, ref: Any) -> bool:
        """Remove the Deferreds whose ref is ``ref``; whether any was removed."""
        before = len(self._items)
        self._items = [d for d in self._items if d.ref != ref]
        return len(self._items) != before

    def __len__(self) -> int:
        return len(self._items)
