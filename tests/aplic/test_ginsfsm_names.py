"""ginsfsm's GAplic-level names: gaplic_factory (PasteDeploy composites),
get_gaplic_by_thread_ident, setup_gaplic_process (with a GAplic: a clear error; it takes a
factory, see tests/aplic/test_workers.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from fsmio import (
    GAplic,
    gaplic_factory,
    get_gaplic_by_thread_ident,
    get_global_app,
    get_global_main_gaplic,
    setup_gaplic_process,
    setup_gaplic_thread,
)
from fsmio.core import registry


class FakeLoader:
    """PasteDeploy's loader as gaplic_factory uses it: get_app(section, global_conf=)."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self.apps = apps
        self.asked: list[tuple[str, Any]] = []

    def get_app(self, name: str, global_conf: Any = None) -> Any:
        self.asked.append((name, global_conf))
        return self.apps[name]


@pytest.fixture(autouse=True)
def _clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_apps", {})
    monkeypatch.setattr(registry, "_main_gaplic", [])


@pytest.fixture
def gaplics() -> Iterator[list[GAplic]]:
    made: list[GAplic] = []
    yield made
    for ga in made:
        ga.stop()
        ga.close()


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    return [b""]


def test_gaplic_factory_main_wsgi_and_threads(gaplics: list[GAplic]) -> None:
    main = GAplic("factory-main")
    thread_ga = GAplic("factory-thread")
    gaplics += [main, thread_ga]
    loader = FakeLoader({"server": main, "worker": thread_ga, "wsgi-application": wsgi_app})
    conf = {"here": "/somewhere"}
    got = gaplic_factory(loader, conf, main="server", wsgi="wsgi-application", threads="worker")
    assert got is main
    assert get_global_main_gaplic() is main
    assert get_global_app("wsgi-application") is wsgi_app
    assert [name for name, _ in loader.asked] == ["server", "wsgi-application", "worker"]
    assert all(global_conf is conf for _, global_conf in loader.asked)
    # The thread GAplic runs now; the main one's stop stops and joins it.
    for _ in range(500):
        if thread_ga.is_running():
            break
        threading.Event().wait(0.01)
    assert thread_ga.is_running()
    main.add_callback(main.stop)
    main.start()
    assert not thread_ga.is_running()


def test_gaplic_factory_errors(gaplics: list[GAplic]) -> None:
    main = GAplic("factory-main-2")
    gaplics.append(main)
    with pytest.raises(ValueError, match="needs 'main = <section>'"):
        gaplic_factory(FakeLoader({}), {})
    with pytest.raises(TypeError, match="must return a GAplic"):
        gaplic_factory(FakeLoader({"x": wsgi_app}), {}, main="x")
    with pytest.raises(NotImplementedError, match=r"subprocesses are not available.*threads"):
        gaplic_factory(FakeLoader({"m": main}), {}, main="m", subprocesses="other")


def test_get_gaplic_by_thread_ident(gaplics: list[GAplic]) -> None:
    ga = GAplic("by-thread")
    gaplics.append(ga)
    assert get_gaplic_by_thread_ident() is None  # not running anywhere
    ga._loop()  # driven here: bound to this thread
    assert get_gaplic_by_thread_ident() is ga
    assert get_gaplic_by_thread_ident(threading.get_ident()) is ga
    other = GAplic("in-a-thread")
    gaplics.append(other)
    found: list[Any] = []
    other.add_callback(lambda: (found.append(get_gaplic_by_thread_ident()), other.stop()))
    worker = setup_gaplic_thread(other)
    worker.start()
    worker.join(10)
    assert found == [other]
    assert get_gaplic_by_thread_ident(worker.ident) is None  # stopped: unbound


def test_setup_gaplic_process_refuses_a_gaplic_made_here(gaplics: list[GAplic]) -> None:
    ga = GAplic("process")
    gaplics.append(ga)
    with pytest.raises(TypeError, match="pass a factory"):
        setup_gaplic_process(ga)
