"""Deferred and DeferredList (spec §2.7): stored callbacks, also usable as subscribers."""

from __future__ import annotations

from typing import Any

import pytest

from fsmio.core.deferred import Deferred, DeferredList


def test_deferred_merges_kw_over_stored_kwargs() -> None:
    calls: list[Any] = []
    d = Deferred("ref", lambda *a, **kw: calls.append((a, kw)) or "ret", 1, 2, x=1, y=2)
    assert d(y=3, z=4) == "ret"
    assert calls == [((1, 2), {"x": 1, "y": 3, "z": 4})]
    assert d.ref == "ref" and d.args == (1, 2) and d.kwargs == {"x": 1, "y": 2}


def test_cancelled_deferred_does_nothing() -> None:
    calls: list[Any] = []
    d = Deferred(None, lambda **kw: calls.append(kw))
    d.cancel()
    assert d() is None
    assert calls == []
    d.cancel()  # twice is fine
    assert d.callback is None


def test_deferred_needs_a_callable() -> None:
    with pytest.raises(TypeError, match="not callable"):
        Deferred("x", "not callable")  # type: ignore[arg-type]


def test_deferred_repr() -> None:
    def cb() -> None:
        pass

    assert repr(Deferred("a", cb)).startswith("Deferred('a', <function")


def test_deferred_list() -> None:
    dl = DeferredList()
    seen: list[Any] = []
    first = dl.add_callback("a", lambda **kw: seen.append(kw) or "A", k=1)
    dl.add_callback("b", lambda **kw: "B")
    dl.add_callback("a", lambda **kw: "A2")
    assert isinstance(first, Deferred)
    assert len(dl) == 3
    # The first Deferred with the ref is called, with the kw merged.
    assert dl("a", k=2) == "A" and seen == [{"k": 2}]
    assert dl("b") == "B"
    assert dl("zz") is None
    assert dl.delete("a") is True
    assert dl.delete("a") is False
    assert len(dl) == 1
    assert dl("a") is None
