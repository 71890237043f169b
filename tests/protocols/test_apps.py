"""Finding the application: callables, registered names, 'module:attr'."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from fsmio import set_global_app
from fsmio.protocols.apps import AppNotFound, is_asgi_app, load_application


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    return []


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    return None


class AsgiClass:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        return None


class WsgiClass:
    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return []


def test_callable_is_used_as_is() -> None:
    assert load_application(wsgi_app) is wsgi_app


def test_registered_name() -> None:
    set_global_app("test-apps-registered", wsgi_app)
    assert load_application("test-apps-registered") is wsgi_app
    set_global_app("test-apps-not-callable", 42)
    with pytest.raises(AppNotFound, match="is not callable"):
        load_application("test-apps-not-callable")


def test_module_attr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "userapp_mod.py").write_text(
        textwrap.dedent(
            """
            class Holder:
                @staticmethod
                def app(environ, start_response):
                    return []
            def app(environ, start_response):
                return []
            value = 3
            """
        )
    )
    (tmp_path / "broken_mod.py").write_text("raise ImportError('broken on purpose')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert load_application("userapp_mod:app").__name__ == "app"
        assert callable(load_application("userapp_mod:Holder.app"))
        with pytest.raises(AppNotFound, match="has no attribute 'nope'"):
            load_application("userapp_mod:nope")
        with pytest.raises(AppNotFound, match="is not callable"):
            load_application("userapp_mod:value")
        with pytest.raises(AppNotFound, match="no module named 'no_such_mod_xyz'"):
            load_application("no_such_mod_xyz:app")
        with pytest.raises(AppNotFound, match="broken on purpose"):
            load_application("broken_mod:app")
    finally:
        for name in ("userapp_mod", "broken_mod"):
            sys.modules.pop(name, None)


@pytest.mark.parametrize("spec", ["", "   ", None, 12, "no-colon-unregistered", "mod:", ":attr"])
def test_bad_specs(spec: Any) -> None:
    with pytest.raises(AppNotFound, match="application"):
        load_application(spec)


def test_is_asgi_app() -> None:
    assert is_asgi_app(asgi_app)
    assert is_asgi_app(AsgiClass())
    assert not is_asgi_app(wsgi_app)
    assert not is_asgi_app(WsgiClass())
