"""Finding the application a WSGI or ASGI server runs.

``application`` (of GWsgiServer and GAsgiServer, and the target of ``fsmio serve``) is one
of:

* a callable: used as it is;
* a name registered with ``set_global_app(name, app)`` (ginsfsm resolved the server's
  ``application`` through ``get_global_app``, so that an ini file could name an app that
  PasteDeploy loads after the GAplic); a registered name wins over ``module:attr``;
* ``'package.module:attr'`` (``attr`` may be dotted: ``'pkg.mod:factory.app'``), imported.

``is_asgi_app`` tells an ASGI 3 application (an ``async def`` function, or an object whose
``__call__`` is one) from a WSGI one, as uvicorn's ``--interface auto`` does.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from fsmio.core import registry

__all__ = ["AppNotFound", "is_asgi_app", "load_application", "mount_point"]


class AppNotFound(LookupError):
    """The application named cannot be found (the message says what was tried)."""


def load_application(spec: Any, what: str = "application") -> Any:
    """The callable ``spec`` names (see the module documentation); ``AppNotFound`` saying
    what was wrong and what was expected."""
    if callable(spec):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise AppNotFound(
            f"{what}: expected a callable, a name registered with set_global_app, or "
            f"'package.module:attr', not {spec!r}"
        )
    name = spec.strip()
    with_registry = registry.list_globals()["apps"]
    if name in with_registry:
        app = registry.get_global_app(name)
        if not callable(app):
            raise AppNotFound(f"{what}: the application registered as {name!r} is not callable")
        return app
    module_name, colon, attr = name.partition(":")
    if not colon:
        raise AppNotFound(
            f"{what}: no application registered as {name!r} (set_global_app), and it is "
            "not 'package.module:attr'"
        )
    module_name, attr = module_name.strip(), attr.strip()
    if not module_name or not attr:
        raise AppNotFound(f"{what}: {name!r}: expected 'package.module:attr'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise AppNotFound(f"{what}: {name!r}: no module named {exc.name!r}") from None
        raise AppNotFound(
            f"{what}: {name!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    except Exception as exc:
        raise AppNotFound(
            f"{what}: {name!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppNotFound(
                f"{what}: {name!r}: module {module_name!r} has no attribute {attr!r}"
            ) from None
    if not callable(obj):
        raise AppNotFound(f"{what}: {name!r} is not callable ({type(obj).__name__})")
    return obj


def is_asgi_app(app: Any) -> bool:
    """Whether ``app`` is an ASGI 3 application (a coroutine function, or an object whose
    ``__call__`` is one); anything else callable is taken for WSGI."""
    if inspect.iscoroutinefunction(app):
        return True
    call = getattr(app, "__call__", None)  # noqa: B004 - the method itself is inspected
    return call is not None and inspect.iscoroutinefunction(call)


def mount_point(value: Any) -> str:
    """The GConfig validator of a mount point (ASGI ``root_path``, WSGI ``SCRIPT_NAME``):
    '' or a path starting with '/', without a trailing one."""
    text = str(value or "").rstrip("/")
    if text and not text.startswith("/"):
        raise ValueError(f"a path starting with '/' (or ''), not {value!r}")
    return text
