"""The ``fsmio`` command itself: sub-commands, help, version, ``python -m fsmio``."""

from __future__ import annotations

import pytest

from fsmio import __version__
from fsmio._compiled import build_info
from fsmio.tools.cli import main

from .conftest import run_fsmio


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    # The build running follows the version: "(compiled)" or "(pure Python (<why>))".
    assert capsys.readouterr().out.strip() == f"fsmio {__version__} ({build_info()})"


@pytest.mark.parametrize("command", ["run", "draw", "check", "trace"])
def test_help_of_each_command(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"usage: fsmio {command}" in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "x.toml", "--sett", "a=b"])
    assert info.value.code == 2
    assert "unrecognized arguments: --sett" in capsys.readouterr().err


def test_python_dash_m_fsmio() -> None:
    done = run_fsmio("--help")
    assert done.returncode == 0
    for command in ("run", "draw", "check", "trace"):
        assert command in done.stdout


def test_traceback_flag_shows_the_cause(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--traceback", "run", "no/such.toml"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "config file not found" in err
