"""``fsmio check``: each kind of problem found in a deliberately broken module, at its line;
the built-in gclasses are clean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fsmio.tools.check import KINDS, check_module, load_module
from fsmio.tools.cli import main

from . import broken_gclasses
from .conftest import ROOT, run_fsmio

BROKEN = Path(broken_gclasses.__file__)
BUILTIN_MODULES = [
    "fsmio.gobjs.c_timer",
    "fsmio.gobjs.c_sock",
    "fsmio.gobjs.c_srv_sock",
    "fsmio.gobjs.c_connex",
    "fsmio.examples.timer_demo",
    "fsmio.aplic.gaplic",
]


def marked_lines() -> dict[str, int]:
    """``kind -> line`` from the ``# <- kind`` markers of broken_gclasses.py."""
    found: dict[str, int] = {}
    for number, line in enumerate(BROKEN.read_text().splitlines(), 1):
        if m := re.search(r"# <- ([a-z-]+)$", line):
            found[m[1]] = number
    return found


def test_every_kind_is_marked_in_the_broken_module() -> None:
    # import-error is tested with a file of its own; fsm-invalid is the fallback kind.
    assert set(marked_lines()) == set(KINDS) - {"import-error", "fsm-invalid"}


@pytest.mark.parametrize("kind", sorted(set(KINDS) - {"import-error", "fsm-invalid"}))
def test_each_kind_is_found_at_its_line(kind: str) -> None:
    problems = check_module(broken_gclasses)
    line = marked_lines()[kind]
    found = [p for p in problems if p.kind == kind]
    assert found, f"no {kind} found; problems: {[p.render() for p in problems]}"
    assert all(p.file == str(BROKEN) for p in found)
    assert line in [p.line for p in found], [p.render() for p in found]


def test_each_problem_is_reported_once() -> None:
    rendered = [p.render() for p in check_module(broken_gclasses)]
    assert len(rendered) == len(set(rendered))
    # The template error of ODD_GCONFIG is not repeated for the gclass that uses it.
    assert sum("template-error" in r for r in rendered) == 1


def test_messages_say_what_is_wrong() -> None:
    rendered = "\n".join(p.render() for p in check_module(broken_gclasses))
    for text in (
        "next state 'ST_NOWHERE' is not in state_list",
        "event 'EV_UNDECLARED' is not in event_list",
        "action 'not callable' is neither None nor callable",
        "state 'ST_ISLAND' cannot be reached from the initial state 'ST_IDLE'",
        "event 'EV_NEVER' is declared input but no state accepts it",
        "invalid default 'eighty' for parameter 'port': expected an int",
        "NoInit.__init__ must call GObj.__init__(self, FSM, GCONFIG)",
        "function 'ac_forgotten' looks like an action but no FSM row uses it",
    ):
        assert text in rendered


def test_set_new_state_in_the_code_makes_a_state_reachable() -> None:
    rendered = "\n".join(p.render() for p in check_module(broken_gclasses))
    # ST_JUMPED is entered by ac_jump's set_new_state('ST_JUMPED'): not unreachable.
    assert "'ST_JUMPED' cannot be reached" not in rendered


@pytest.mark.parametrize("module", BUILTIN_MODULES)
def test_builtin_gclasses_are_clean(module: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", module]) == 0, capsys.readouterr().out
    assert "ok: 0 problems" in capsys.readouterr().err


def test_cli_exit_code_and_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "tests.tools.broken_gclasses"]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == len(check_module(broken_gclasses))
    assert all(line.startswith(f"{BROKEN}:") for line in lines)
    assert re.search(r"^\d+ problems in 4 gclasses$", captured.err.strip())


def test_ignore(capsys: pytest.CaptureFixture[str]) -> None:
    kinds = ",".join(k for k in KINDS if k not in ("unused-action",))
    assert main(["check", "tests.tools.broken_gclasses", "--ignore", kinds]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "unused-action" in out


def test_ignore_unknown_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "fsmio.gobjs.c_timer", "--ignore", "typo"]) == 2
    assert "--ignore: unknown kind(s) typo" in capsys.readouterr().err


def test_file_path_like_a_pre_commit_hook(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(BROKEN)]) == 1
    assert "unreachable-state" in capsys.readouterr().out
    module = load_module(str(ROOT / "src" / "fsmio" / "gobjs" / "c_timer.py"))
    assert check_module(module) == []


def test_import_error_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad_syntax.py"
    bad.write_text("from fsmio import GObj\n\nclass X(GObj:\n    pass\n")
    assert main(["check", str(bad), "nosuch.module.here"]) == 1
    out = capsys.readouterr().out
    assert f"{bad}: import-error: cannot import '{bad}': {bad}:3: SyntaxError" in out
    assert "nosuch.module.here: import-error: unknown module 'nosuch.module.here'" in out


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "no/such/file.py"]) == 1
    assert "import-error: no such file: 'no/such/file.py'" in capsys.readouterr().out


def test_check_from_a_subprocess() -> None:
    done = run_fsmio("check", "tests/tools/broken_gclasses.py", "fsmio.gobjs.c_connex")
    assert done.returncode == 1
    assert "bad-next-state" in done.stdout
    assert "c_connex" not in done.stdout
    assert "Traceback" not in done.stderr
