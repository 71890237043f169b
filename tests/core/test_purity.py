"""``fsmio.core`` is pure: no asyncio, socket, select, selectors or time imports.

Checked twice: in the source (every ``import`` and ``from ... import`` statement, at any
depth, parsed with ``ast`` — ``logging`` itself imports ``time``, so ``sys.modules`` cannot
tell), and in a fresh interpreter, where importing ``fsmio.core`` must not load the I/O
modules at all.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import fsmio.core

CORE = Path(fsmio.core.__file__).parent
FORBIDDEN = {"asyncio", "socket", "select", "selectors", "time"}
SOURCES = sorted(CORE.rglob("*.py"))


def imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and getattr(node.func, "id", getattr(node.func, "attr", ""))
            in {
                "__import__",
                "import_module",
            }
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value))
    return names


def test_the_core_has_sources() -> None:
    assert {p.name for p in SOURCES} >= {"smachine.py", "gobj.py", "gconfig.py", "event.py"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(CORE)))
def test_no_forbidden_import_in_source(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = {name for name in imported_modules(tree) if name.split(".")[0] in FORBIDDEN}
    assert bad == set(), f"{path.name} imports {sorted(bad)}"


def test_the_checker_sees_every_import_form() -> None:
    source = (
        "import os, time\n"
        "from asyncio import sleep\n"
        "def f():\n"
        "    import selectors.x\n"
        "    __import__('socket')\n"
        "    importlib.import_module('select')\n"
        "from . import sibling\n"
    )
    found = imported_modules(ast.parse(source))
    assert {n.split(".")[0] for n in found} >= FORBIDDEN
    assert "sibling" not in found


IO_MODULES = ("asyncio", "socket", "select", "selectors")

# Runs in a fresh interpreter.  The top-level ``fsmio`` package imports the GAplic (and so
# asyncio) for ``from fsmio import ...``; to see what the *core* pulls in, ``fsmio`` is
# replaced by an empty package with the same path before ``import fsmio.core``.
PROBE = f"""
import importlib.util, json, sys, types
spec = importlib.util.find_spec("fsmio")
package = types.ModuleType("fsmio")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["fsmio"] = package
import fsmio.core, fsmio.core.registry
print(json.dumps(sorted(m for m in {IO_MODULES!r} if m in sys.modules)))
"""


def test_importing_the_core_loads_no_io_module() -> None:
    result = subprocess.run(
        [sys.executable, "-I", "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout) == []


def test_the_probe_would_see_an_io_import() -> None:
    probe = PROBE.replace("import fsmio.core,", "import asyncio, fsmio.core,")
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "asyncio" in json.loads(result.stdout)
