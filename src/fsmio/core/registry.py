"""Process-wide registries: GAplics by name and applications by name.

ginsfsm kept these in ``ginsfsm.globals``: ``post_event_from_outside`` finds a GAplic by
name here, and a config value ``'app:<name>'`` is replaced by the application registered
under ``<name>``.  GAplics are held weakly, so a forgotten GAplic can still be collected.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

__all__ = [
    "get_global_app",
    "get_global_main_gaplic",
    "global_get_gaplic",
    "global_get_gobj",
    "list_globals",
    "live_gaplics",
    "register_gaplic",
    "set_global_app",
    "set_global_main_gaplic",
    "unregister_gaplic",
]

_LOG = logging.getLogger("fsmio")
_lock = threading.Lock()
_gaplics: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_apps: dict[str, Any] = {}
_main_gaplic: list[Any] = []


def register_gaplic(gaplic: Any) -> None:
    """Make ``gaplic`` findable by its name (a later GAplic of the same name replaces it)."""
    name = gaplic.name
    if not name:
        return
    with _lock:
        previous = _gaplics.get(name)
        if previous is not None and previous is not gaplic:
            _LOG.debug("GAplic name %r now refers to a new GAplic", name)
        _gaplics[name] = gaplic


def unregister_gaplic(gaplic: Any) -> None:
    """Forget ``gaplic`` (only if its name still refers to it)."""
    name = gaplic.name
    with _lock:
        if name and _gaplics.get(name) is gaplic:
            del _gaplics[name]


def global_get_gaplic(name: str) -> Any:
    """The live GAplic called ``name``, or None."""
    with _lock:
        return _gaplics.get(name)


def live_gaplics() -> list[Any]:
    """Every live GAplic that has a name, in registration order."""
    with _lock:
        return list(_gaplics.values())


def global_get_gobj(gobj_name: str, gaplic_name: str | None = None) -> Any:
    """The unique-named gobj ``gobj_name`` of ``gaplic_name`` (or of any GAplic), or None."""
    with _lock:
        gaplics = (
            [_gaplics.get(gaplic_name)] if gaplic_name is not None else list(_gaplics.values())
        )
    for gaplic in gaplics:
        if gaplic is not None:
            gobj = gaplic.find_unique_gobj(gobj_name)
            if gobj is not None:
                return gobj
    return None


def set_global_app(name: str, app: Any) -> None:
    """Register ``app`` under ``name`` (for ``'app:<name>'`` config values)."""
    with _lock:
        _apps[name] = app


def get_global_app(name: str) -> Any:
    """The application registered under ``name``, or None (logged as an error)."""
    with _lock:
        app = _apps.get(name)
    if app is None:
        _LOG.error("get_global_app(): no application registered as %r", name)
    return app


def set_global_main_gaplic(gaplic: Any) -> None:
    """Record the process's main GAplic (also registered as an app under its name)."""
    with _lock:
        _main_gaplic[:] = [gaplic]
        if gaplic.name:
            _apps[gaplic.name] = gaplic


def get_global_main_gaplic() -> Any:
    """The main GAplic recorded by ``set_global_main_gaplic``, or None."""
    with _lock:
        return _main_gaplic[0] if _main_gaplic else None


def list_globals() -> dict[str, list[str]]:
    """Names of the registered GAplics and applications."""
    with _lock:
        return {"gaplics": sorted(_gaplics.keys()), "apps": sorted(_apps)}
