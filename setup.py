"""Builds fsmio's optional extension modules: Cython compiles the hot-path modules listed
in ``fsmio._compiled.COMPILED_MODULES`` from their ``.py`` sources (the readable
reference), typed by the ``.pxd`` files beside them (docs/compiled.md).

Optional, as in aiohttp and yarl: with ``FSMIO_NO_EXTENSIONS=1``, without Cython, or when
compiling fails (no C compiler), the install goes on and fsmio runs the pure-Python
modules (``fsmio --version`` says which build is running, and why).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

# The list lives in the package (fsmio._compiled), which setup.py reads without importing
# fsmio (nothing is installed yet).
MODULES = (
    "fsmio.core.event",
    "fsmio.core.smachine",
    "fsmio.core.gobj",
    "fsmio.gobjs.c_sock",
)
GENERATED = (".c", ".so", ".pyd", ".pyc")
NO_EXTENSIONS = os.environ.get("FSMIO_NO_EXTENSIONS", "").strip() not in ("", "0")


def _say(message: str) -> None:
    print(f"fsmio setup: {message}", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """build_ext that never fails the install: a module it cannot build is left out (and
    fsmio then runs every hot-path module as pure Python: they are used all or none).

    Cython runs here, at build time, not when setup.py is read: an sdist carries the .py
    sources and the .pxd files, never generated C.
    """

    def finalize_options(self) -> None:
        # Before build_ext's own: it prepares the Extension objects it is given.
        self.distribution.ext_modules = cythonized(self.distribution.ext_modules or [])
        super().finalize_options()

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all (DistutilsPlatformError...)
            _say(f"extension modules not built ({exc!r}); fsmio runs as pure Python")

    def build_extension(self, ext: Any) -> None:
        try:
            for source in ext.sources:
                if source.endswith(".c"):
                    _init_managed_dicts(source)
            super().build_extension(ext)
        except Exception as exc:
            _say(f"extension {ext.name} not built ({exc!r}); fsmio runs as pure Python")
            # Not the stale one of an earlier build (build/lib...) in its place.
            stale = self.get_ext_fullpath(ext.name)
            if os.path.exists(stale):
                os.remove(stale)


# Cython allocates an extension type's instances with tp_alloc.  For a Python subclass
# (every gobj: GObj is one of MachineCore) CPython 3.11+ sets up the instance's *managed*
# __dict__ values in object_new, so that path skips it and the first attribute store makes
# a real dict: about 200 bytes more per gobj, and slower attribute reads from Python code.
# The generated allocator is pointed at object_new for such subclasses (as it already is
# for abstract types).  If Cython's code changes shape the build goes on without this.
_ALLOC_LINE = "if (is_final || likely(!__Pyx_PyType_HasFeature(t, Py_TPFLAGS_IS_ABSTRACT))) {"
_ALLOC_FIXED = (
    "if (is_final || likely(!__Pyx_PyType_HasFeature(t, "
    "Py_TPFLAGS_IS_ABSTRACT | FSMIO_MANAGED_DICT))) {"
)
_ALLOC_FUNCTION = "static PyObject *__Pyx_AllocateExtensionType(PyTypeObject *t, int is_final) {"
_ALLOC_DEFINE = (
    "#ifdef Py_TPFLAGS_MANAGED_DICT\n#define FSMIO_MANAGED_DICT Py_TPFLAGS_MANAGED_DICT\n"
    "#else\n#define FSMIO_MANAGED_DICT 0\n#endif\n"
)


def _init_managed_dicts(c_file: str) -> None:
    with open(c_file, encoding="utf-8") as f:
        code = f.read()
    if _ALLOC_FIXED in code or code.count(_ALLOC_LINE) != 1 or _ALLOC_FUNCTION not in code:
        return
    code = code.replace(_ALLOC_LINE, _ALLOC_FIXED).replace(
        _ALLOC_FUNCTION, _ALLOC_DEFINE + _ALLOC_FUNCTION
    )
    with open(c_file, "w", encoding="utf-8") as f:
        f.write(code)


class BuildPyWithoutGenerated(build_py):
    """Package data is every file under src/fsmio (pyproject.toml) except what a build
    leaves beside the sources: the generated C, the extension modules, bytecode."""

    def find_data_files(self, package: str, src_dir: str) -> list[str]:
        files: list[str] = super().find_data_files(package, src_dir)
        return [f for f in files if not f.endswith(GENERATED) and "__pycache__" not in f]


def cythonized(modules: list[Any]) -> list[Any]:
    if NO_EXTENSIONS or not modules:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        _say("Cython is not installed: pure-Python install")
        return []
    try:
        return list(
            cythonize(
                modules,
                language_level=3,
                compiler_directives={
                    # Types come from the .pxd files only: the .py annotations are for mypy
                    # (Cython would otherwise turn `x: dict` into a runtime type check).
                    "annotation_typing": False,
                    "binding": True,
                    # A typed argument may be None (``MachineCore.inject_event(None, ev)``):
                    # checked, raising AttributeError, never a crash.
                    "nonecheck": True,
                    "embedsignature": False,
                },
            )
        )
    except Exception as exc:
        _say(f"Cython failed ({exc!r}): pure-Python install")
        return []


def extensions() -> list[Any]:
    if NO_EXTENSIONS:
        _say("FSMIO_NO_EXTENSIONS is set: pure-Python install")
        return []
    return [Extension(name, [os.path.join("src", *name.split(".")) + ".py"]) for name in MODULES]


setup(
    ext_modules=extensions(),
    cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildPyWithoutGenerated},
)
