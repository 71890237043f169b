"""The two builds of the hot path (fsmio._compiled, setup.py, docs/compiled.md).

CI runs the whole suite twice: on the compiled build, then with FSMIO_NO_EXTENSIONS=1.
These tests check that each pass runs the build it claims to, so that an extension that
silently failed to build fails CI instead of passing as pure Python.
"""

from __future__ import annotations

import ast
import importlib.machinery
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fsmio
from fsmio import _compiled
from fsmio.core import smachine

ROOT = Path(__file__).resolve().parents[1]
FORCED_PURE = _compiled.env_forces_pure()
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def _module_files() -> dict[str, str]:
    return {name: sys.modules[name].__file__ or "" for name in _compiled.COMPILED_MODULES}


def test_the_build_in_use_is_the_one_asked_for() -> None:
    files = _module_files()
    if FORCED_PURE:
        assert not _compiled.compiled_in_use()
        assert all(f.endswith(".py") for f in files.values()), files
        assert _compiled.build_info() == "pure Python (forced by FSMIO_NO_EXTENSIONS)"
    elif IN_CI:
        # CI built the extension from a clean clone: it must be the one running.
        assert _compiled.compiled_in_use(), _compiled.build_info()
    if _compiled.compiled_in_use():
        assert _compiled.build_info() == "compiled"
        assert not any(f.endswith(".py") for f in files.values()), files


def test_the_modules_are_used_all_or_none() -> None:
    kinds = {f.endswith(".py") for f in _module_files().values()}
    assert len(kinds) == 1


def test_the_compiled_machine_is_an_extension_type() -> None:
    heap_type = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class statement's type, not a C type
    is_heap = bool(smachine.MachineCore.__flags__ & heap_type)
    assert is_heap is not _compiled.compiled_in_use()
    # Either way gclasses stay Python classes, with a __dict__ for what a program stores.
    assert fsmio.GObj.__flags__ & heap_type
    machine = smachine.SMachine(smachine.EMPTY_FSM)
    machine.anything = 1  # type: ignore[attr-defined]
    assert vars(machine) == {"anything": 1}


def _version(env_extra: dict[str, str]) -> str:
    env = {**os.environ, **env_extra}
    out = subprocess.run(
        [sys.executable, "-m", "fsmio", "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


def test_version_says_which_build_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _version({"FSMIO_NO_EXTENSIONS": "1"}) == (
        f"fsmio {fsmio.__version__} (pure Python (forced by FSMIO_NO_EXTENSIONS))"
    )
    unforced = _version({"FSMIO_NO_EXTENSIONS": ""})
    assert unforced.startswith(f"fsmio {fsmio.__version__} (")
    monkeypatch.delenv("FSMIO_NO_EXTENSIONS", raising=False)
    assert ("(compiled)" in unforced) is _compiled._decide(_compiled._ROOT)[0]


@pytest.mark.parametrize("value", ["", "0"])
def test_an_empty_or_zero_variable_does_not_force(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("FSMIO_NO_EXTENSIONS", value)
    assert not _compiled.env_forces_pure()


def _fake_package(tmp_path: Path, built: bool, source_newer_by: float = 0.0) -> str:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    for name in _compiled.COMPILED_MODULES:
        base = tmp_path.joinpath(*name.split(".")[1:])
        base.parent.mkdir(parents=True, exist_ok=True)
        source = base.with_suffix(".py")
        source.write_text("")
        if built:
            extension = Path(str(base) + suffix)
            extension.write_bytes(b"")
            then = time.time() - 100
            os.utime(extension, (then, then))
            os.utime(source, (then + source_newer_by, then + source_newer_by))
    return str(tmp_path)


def test_decide_missing_and_stale_extensions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSMIO_NO_EXTENSIONS", raising=False)
    use, why = _compiled._decide(_fake_package(tmp_path / "none", built=False))
    assert not use
    assert "not built" in why
    use, why = _compiled._decide(_fake_package(tmp_path / "stale", True, source_newer_by=60))
    assert not use
    assert "older than its source" in why
    # An installer writes the .py a moment after the .so: not stale.
    assert _compiled._decide(_fake_package(tmp_path / "fresh", True, source_newer_by=1)) == (
        True,
        "extension modules",
    )
    monkeypatch.setenv("FSMIO_NO_EXTENSIONS", "1")
    assert _compiled._decide(str(tmp_path / "fresh")) == (
        False,
        "forced by FSMIO_NO_EXTENSIONS",
    )


def test_setup_compiles_exactly_the_listed_modules() -> None:
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    modules = next(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "MODULES" for t in node.targets)
    )
    assert ast.literal_eval(modules) == _compiled.COMPILED_MODULES
    for name in _compiled.COMPILED_MODULES:
        source = ROOT / "src" / Path(*name.split(".")).with_suffix(".py")
        assert source.is_file(), source
