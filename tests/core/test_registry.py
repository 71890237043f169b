"""The process-wide registries (spec §2.7 ``globals``): GAplics and apps by name."""

from __future__ import annotations

import gc
import logging
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from fsmio import GAplic
from fsmio.core import registry
from fsmio.core.gobj import GObj


class FakeGaplic:
    def __init__(self, name: str, gobjs: dict[str, Any] | None = None) -> None:
        self.name = name
        self.gobjs = gobjs or {}

    def find_unique_gobj(self, name: str) -> Any:
        return self.gobjs.get(name)


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry, "_gaplics", weakref.WeakValueDictionary())
    monkeypatch.setattr(registry, "_apps", {})
    monkeypatch.setattr(registry, "_main_gaplic", [])
    yield


def test_register_find_unregister() -> None:
    ga = FakeGaplic("one")
    registry.register_gaplic(ga)
    assert registry.global_get_gaplic("one") is ga
    assert registry.global_get_gaplic("two") is None
    other = FakeGaplic("one")
    registry.unregister_gaplic(other)  # not the registered one: nothing happens
    assert registry.global_get_gaplic("one") is ga
    registry.unregister_gaplic(ga)
    assert registry.global_get_gaplic("one") is None
    registry.unregister_gaplic(ga)  # twice is fine


def test_a_later_gaplic_of_the_same_name_replaces(caplog: pytest.LogCaptureFixture) -> None:
    first, second = FakeGaplic("x"), FakeGaplic("x")
    registry.register_gaplic(first)
    registry.register_gaplic(first)
    with caplog.at_level(logging.DEBUG, logger="fsmio"):
        registry.register_gaplic(second)
    assert registry.global_get_gaplic("x") is second
    assert "now refers to a new GAplic" in caplog.text


def test_unnamed_gaplic_is_not_registered() -> None:
    registry.register_gaplic(FakeGaplic(""))
    assert registry.list_globals()["gaplics"] == []


def test_gaplics_are_held_weakly() -> None:
    registry.register_gaplic(FakeGaplic("gone"))
    gc.collect()
    assert registry.global_get_gaplic("gone") is None


def test_global_get_gobj() -> None:
    a = FakeGaplic("a", {"echo": "echo-in-a"})
    b = FakeGaplic("b", {"echo": "echo-in-b", "only_b": "only"})
    registry.register_gaplic(a)
    registry.register_gaplic(b)
    assert registry.global_get_gobj("echo", "b") == "echo-in-b"
    assert registry.global_get_gobj("echo") in ("echo-in-a", "echo-in-b")
    assert registry.global_get_gobj("only_b") == "only"
    assert registry.global_get_gobj("echo", "nope") is None
    assert registry.global_get_gobj("nobody") is None


def test_apps(caplog: pytest.LogCaptureFixture) -> None:
    app = object()
    registry.set_global_app("wsgi", app)
    assert registry.get_global_app("wsgi") is app
    with caplog.at_level(logging.ERROR, logger="fsmio"):
        assert registry.get_global_app("missing") is None
    assert "no application registered as 'missing'" in caplog.text


def test_main_gaplic() -> None:
    assert registry.get_global_main_gaplic() is None
    ga = FakeGaplic("main")
    registry.set_global_main_gaplic(ga)
    assert registry.get_global_main_gaplic() is ga
    assert registry.get_global_app("main") is ga  # also an app under its name
    unnamed = FakeGaplic("")
    registry.set_global_main_gaplic(unnamed)
    assert registry.get_global_main_gaplic() is unnamed


def test_list_globals() -> None:
    keep = [FakeGaplic("b"), FakeGaplic("a")]
    for ga in keep:
        registry.register_gaplic(ga)
    registry.set_global_app("z", 1)
    registry.set_global_app("y", 2)
    assert registry.list_globals() == {"gaplics": ["a", "b"], "apps": ["y", "z"]}


def test_a_real_gaplic_registers_and_close_unregisters() -> None:
    with GAplic("registry-test") as ga:
        assert registry.global_get_gaplic("registry-test") is ga
        target = ga.create_gobj("target", GObj, ga, __unique_name__=True)
        assert registry.global_get_gobj("target", "registry-test") is target
    assert registry.global_get_gaplic("registry-test") is None
