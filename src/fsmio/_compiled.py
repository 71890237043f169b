"""Which build of fsmio's hot path is running: the compiled extension modules or the
pure-Python reference (see docs/compiled.md).

The hot-path modules listed in ``COMPILED_MODULES`` exist twice in an install built with a
C compiler: the ``.py`` source (the readable reference) and an extension module compiled
from it by Cython (``event.cpython-311-x86_64-linux-gnu.so`` beside ``event.py``).
Python's import system prefers the extension.  This module, imported by ``fsmio`` before
anything else, decides once per process which of the two is used, *all or nothing*: the
compiled modules know each other's classes at the C level, so a mix would not import.

* ``FSMIO_NO_EXTENSIONS`` set (to anything but ``""`` or ``0``): the ``.py`` modules
  (the same variable makes ``pip install`` skip building them);
* an extension missing (no C compiler at install time, or a failed build), or older than
  its source (a ``.py`` edited after ``pip install -e .``): the ``.py`` modules, and
  ``build_info()`` says why;
* otherwise the extensions.

When the ``.py`` modules are chosen, a finder placed first on ``sys.meta_path`` loads
those modules from their source files; nothing else is affected.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Final

__all__ = ["COMPILED_MODULES", "ENV_VAR", "build_info", "compiled_in_use"]

#: The environment variable that forces the pure-Python modules (at build and at import).
ENV_VAR: Final = "FSMIO_NO_EXTENSIONS"

#: The modules compiled into extensions (by setup.py, from these very files).
COMPILED_MODULES: Final = (
    "fsmio.core.event",
    "fsmio.core.smachine",
    "fsmio.core.gobj",
    "fsmio.gobjs.c_sock",
)

# An extension whose source is newer by more than this is stale (the tolerance covers an
# installer that writes the .py a moment after the .so).
_STALE_AFTER_S: Final = 2.0


def env_forces_pure() -> bool:
    """Whether ``FSMIO_NO_EXTENSIONS`` asks for the pure-Python modules."""
    return os.environ.get(ENV_VAR, "").strip() not in ("", "0")


def _source_and_extension(name: str, root: str) -> tuple[str, str | None]:
    """The ``.py`` file of module ``name`` under the package directory ``root``, and its
    extension module file (None if there is none)."""
    parts = name.split(".")[1:]
    base = os.path.join(root, *parts)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if os.path.isfile(base + suffix):
            return base + ".py", base + suffix
    return base + ".py", None


def _decide(root: str) -> tuple[bool, str]:
    """(use the extensions?, why) for the package installed at ``root``."""
    if env_forces_pure():
        return False, f"forced by {ENV_VAR}"
    for name in COMPILED_MODULES:
        source, extension = _source_and_extension(name, root)
        if extension is None:
            return False, f"extension {name} not built (no C compiler at install time?)"
        try:
            if os.path.getmtime(source) > os.path.getmtime(extension) + _STALE_AFTER_S:
                return False, f"extension {name} older than its source: pip install -e ."
        except OSError:
            pass  # no source beside it (an install without .py files): the extension
    return True, "extension modules"


class _SourceFinder:
    """Loads the modules of ``COMPILED_MODULES`` from their ``.py`` source."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in COMPILED_MODULES:
            return None
        leaf = fullname.rpartition(".")[2] + ".py"
        for entry in path or ():
            candidate = os.path.join(entry, leaf)
            if os.path.isfile(candidate):
                return importlib.util.spec_from_file_location(fullname, candidate)
        return None


_ROOT = os.path.dirname(os.path.abspath(__file__))
_USE_EXTENSIONS, _REASON = _decide(_ROOT)
if not _USE_EXTENSIONS and not any(isinstance(f, _SourceFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _SourceFinder())


def compiled_in_use() -> bool:
    """Whether the hot-path modules running are the compiled ones (checked on the
    modules actually imported)."""
    for name in COMPILED_MODULES:
        module = sys.modules.get(name) or importlib.import_module(name)
        if (module.__file__ or "").endswith(".py"):
            return False
    return True


def build_info() -> str:
    """``"compiled"`` or ``"pure Python (<why>)"``: what ``fsmio --version`` prints."""
    if compiled_in_use():
        return "compiled"
    why = _REASON if not _USE_EXTENSIONS else "extension modules not loaded"
    return f"pure Python ({why})"
