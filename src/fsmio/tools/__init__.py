"""Command-line tools: ``fsmio run`` (a GAplic from a TOML file), ``fsmio draw`` (FSM
diagrams), ``fsmio check`` (validate gclasses) and ``fsmio trace`` (read a trace file back).

This package also holds what the tools share: ``ToolError`` (a message for the user and
an exit code; the CLI prints it without a traceback) and the ``package.module:GClass``
loader.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from types import ModuleType
from typing import Any

from fsmio.core.gobj import GObj

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "ToolError",
    "gclasses_in",
    "import_module",
    "instantiate",
    "load_gclass",
    "qualified_name",
]

#: Exit codes of every command: bad command line, file or config; a failure while running
#: (or problems found by ``check``); stopped by a second Ctrl-C.
EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


class ToolError(Exception):
    """A problem to show the user as one clear message (no traceback) and an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def _where(exc: BaseException) -> str:
    """``file:line: `` for a syntax error, else the innermost frame of the traceback."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}: "
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is not None:
        return f"{last.tb_frame.f_code.co_filename}:{last.tb_lineno}: "
    return ""


def import_module(module_name: str) -> ModuleType:
    """Import ``module_name``; ``ToolError`` saying why it cannot be imported."""
    if not module_name or any(not part.isidentifier() for part in module_name.split(".")):
        raise ToolError(f"{module_name!r} is not a module name (expected package.module)")
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ToolError(
                f"unknown module {module_name!r}: no module named {exc.name!r}"
            ) from None
        raise ToolError(
            f"cannot import module {module_name!r}: {_where(exc)}{type(exc).__name__}: {exc}"
        ) from None
    except Exception as exc:
        raise ToolError(
            f"cannot import module {module_name!r}: {_where(exc)}{type(exc).__name__}: {exc}"
        ) from None


def gclasses_in(module: ModuleType, defined_here: bool = True) -> list[type[GObj]]:
    """The GObj subclasses in ``module`` (only those defined in it, by default), in
    source order."""
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, GObj)
        and obj is not GObj
        and (not defined_here or obj.__module__ == module.__name__)
    ]

    def line(cls: type[GObj]) -> int:
        try:
            return inspect.getsourcelines(cls)[1]
        except (OSError, TypeError):
            return sys.maxsize

    return sorted(found, key=line)


def load_gclass(target: str) -> type[GObj]:
    """The gclass named by ``package.module:GClass``; ``ToolError`` saying what is wrong."""
    module_name, colon, class_name = target.partition(":")
    if not colon or not class_name:
        raise ToolError(f"{target!r}: expected package.module:GClass")
    module = import_module(module_name.strip())
    gclass = getattr(module, class_name.strip(), None)
    if gclass is None:
        names = ", ".join(cls.__name__ for cls in gclasses_in(module, defined_here=False))
        raise ToolError(
            f"unknown gclass {class_name!r}: module {module_name!r} has no such name"
            + (f" (gclasses in it: {names})" if names else " (and no gclass at all)")
        )
    if not isinstance(gclass, type) or not issubclass(gclass, GObj):
        raise ToolError(f"{target!r} is not a gclass (a GObj subclass): {gclass!r}")
    return gclass


def instantiate(gclass: type[GObj]) -> GObj:
    """``gclass()`` outside any tree, to reach its FSM and config template."""
    try:
        gobj = gclass()
    except Exception as exc:
        raise ToolError(
            f"cannot instantiate {gclass.__module__}:{gclass.__name__}: {type(exc).__name__}: {exc}"
        ) from None
    # (Not `in vars(gobj)`: _fsm is a slot, or a C field of the compiled build.)
    if getattr(gobj, "_fsm", None) is None or getattr(gobj, "_gconfig", None) is None:
        raise ToolError(f"{gclass.__name__}.__init__ must call GObj.__init__(self, FSM, GCONFIG)")
    return gobj


def qualified_name(gclass: type[Any]) -> str:
    """``package.module:GClass``."""
    return f"{gclass.__module__}:{gclass.__qualname__}"
