"""fsmio run FILE.ini: ginsfsm's PasteDeploy deployment files, checked and run in-process.
(The same through the command line, with logging sections: tests/porting.)"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fsmio import GAplic
from fsmio.core import registry
from fsmio.tools import ToolError
from fsmio.tools.ini import check_ini, load_ini
from fsmio.tools.runner import run_app

MODULE = """
from fsmio import GAplic, GObj, GTimer

def ac_timeout(self, event):
    self.ticks += 1
    if self.ticks >= self.config.ticks:
        self.gaplic.stop()

class Ticker(GObj):
    def __init__(self):
        GObj.__init__(self, {
            "event_list": ("EV_TIMEOUT: bottom input",),
            "state_list": ("ST_IDLE",),
            "machine": {"ST_IDLE": (("EV_TIMEOUT", ac_timeout, None),)},
        }, {"ticks": [int, 1, 0, None, "ticks before stopping"],
            "interval": [float, 0.01, 0, None, "seconds"]})
        self.ticks = 0

    def start_up(self):
        self.timer = self.create_gobj("timer", GTimer, self)
        self.send_event(self.timer, "EV_SET_TIMER", seconds=self.config.interval, autostart=True)

def main(global_conf, **local_conf):
    ga = GAplic(name="ini_ticker", **local_conf)
    ga.create_gobj("ticker", Ticker, ga)
    return ga

def not_a_gaplic(global_conf, **local_conf):
    return object()
"""


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    name = f"ini_app_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_main_gaplic", [])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "module_name").write_text(name)
    yield tmp_path
    sys.modules.pop(name, None)


def write(app_dir: Path, body: str) -> Path:
    name = (app_dir / "module_name").read_text()
    path = app_dir / "app.ini"
    path.write_text(body.replace("MOD", name))
    return path


GOOD = """\
[composite:main]
use = call:fsmio:gaplic_factory
main = ticker-app

[app:ticker-app]
use = call:MOD:main
ticker.ticks = 3
Ticker.interval = 0.01
GObj.trace_creation = false
"""


def test_a_good_file_checks_and_runs(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(app_dir, GOOD)
    assert run_app(path, check_only=True) == 0
    assert capsys.readouterr().out == f"{path}: ok\n"
    seen: list[tuple[GAplic, Any]] = []
    assert run_app(path, on_started=lambda ga: seen.append((ga, next(iter(ga.dl_childs))))) == 0
    [(gaplic, ticker)] = seen
    assert gaplic.name == "ini_ticker"
    # The app section's keys were the GAplic's settings, converted from strings; the
    # GAplic ran until the ticker stopped it, then was closed.
    assert ticker.config.ticks == 3 and ticker.config.interval == 0.01
    assert ticker.ticks == 3
    assert registry.get_global_main_gaplic() is gaplic
    assert ticker._destroyed


def test_set_and_trace_reach_the_created_gobjs(app_dir: Path) -> None:
    path = write(app_dir, GOOD)
    seen: list[tuple[GAplic, Any]] = []
    code = run_app(
        path,
        sets=["ticker.ticks=2"],
        traces="creation",
        on_started=lambda ga: seen.append((ga, next(iter(ga.dl_childs)))),
    )
    assert code == 0
    [(gaplic, ticker)] = seen
    # Written over what the file said, to the gobjs made already, and kept in the
    # GAplic's settings for those made later.
    assert ticker.config.ticks == 2 and ticker.ticks == 2
    assert ticker.trace_creation is True
    assert gaplic.ini_settings["ticker.ticks"] == "2"
    assert gaplic.ini_settings["GObj.trace_creation"] is True


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            GOOD.replace("call:fsmio:gaplic_factory", "call:ginsfsm.gaplic:gaplic_factory"),
            (
                "app.ini:2: [composite:main] use: 'call:ginsfsm.gaplic:gaplic_factory' is "
                "ginsfsm's; with fsmio write call:fsmio:gaplic_factory"
            ),
        ),
        (
            GOOD.replace("main = ticker-app", "main = nowhere"),
            "app.ini:3: [composite:main] main: no section [app:nowhere]",
        ),
        (
            GOOD.replace("main = ticker-app", "main = ticker-app\nsubprocesses = ticker-app"),
            "[composite:main] subprocesses: GAplics in subprocesses are not available",
        ),
        (
            GOOD.replace("[composite:main]", "[composite:other]"),
            "app.ini: no section [composite:main] or [app:main] to run",
        ),
        (
            GOOD.replace("call:MOD:main", "call:no_such_module_here:main"),
            "app.ini:6: [app:ticker-app] use: ",
        ),
        (
            GOOD.replace("call:MOD:main", "call:MOD:nothing"),
            "app.ini:6: [app:ticker-app] use: module ",
        ),
        (
            GOOD.replace("Ticker.interval = 0.01", "Ticker.intervl = 0.01"),
            (
                "app.ini:8: [app:ticker-app] Ticker.intervl: Ticker: unknown parameter 'intervl'; "
                "did you mean 'interval'?"
            ),
        ),
        (
            GOOD + "trace_creation = perhaps\n",
            "app.ini:10: [app:ticker-app] trace_creation: ",
        ),
        (
            GOOD + "[loggers]\nkeys = root\n[logger_root]\nlevel = LOUD\nhandlers = console\n",
            "app.ini:13: [logger_root] level: unknown level 'LOUD'",
        ),
        (
            GOOD + "[loggers]\nkeys = root\n[logger_root]\nlevel = INFO\nhandlers = console\n",
            "app.ini:14: [logger_root] handlers: handler 'console' is not in [handlers] keys",
        ),
    ],
)
def test_check_names_file_line_section_and_key(
    app_dir: Path, body: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(app_dir, body)
    with pytest.raises(ToolError, match="nothing was run"):
        run_app(path, check_only=True)
    err = capsys.readouterr().err
    assert expected in err, err


def test_syntax_error_has_the_line(app_dir: Path) -> None:
    path = write(app_dir, GOOD + "this line is not a key\n")
    with pytest.raises(ToolError, match=r"app.ini:10: ini syntax error"):
        load_ini(path)


def test_a_factory_that_does_not_return_a_gaplic(app_dir: Path) -> None:
    path = write(app_dir, GOOD.replace("call:MOD:main", "call:MOD:not_a_gaplic"))
    with pytest.raises(ToolError, match="must return a GAplic"):
        run_app(path)


def test_notes_for_gobj_names(app_dir: Path) -> None:
    ini = load_ini(write(app_dir, GOOD))
    assert check_ini(ini) == []
    assert ini.notes == [
        (
            f"{ini.path}:7: [app:ticker-app] ticker.ticks: no known gclass 'ticker': it applies "
            "only to a gobj of that name (or is read by the factory)"
        )
    ]


def test_without_pastedeploy(app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_paste(name: str, *args: Any, **kw: Any) -> Any:
        if name.startswith("paste"):
            raise ImportError(name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_paste)
    with pytest.raises(ToolError, match=r"needs PasteDeploy: pip install 'fsmio\[ini\]'"):
        run_app(write(app_dir, GOOD), check_only=True)


def test_a_missing_file() -> None:
    with pytest.raises(ToolError, match="config file not found"):
        run_app("nowhere/app.ini")


def test_a_ginsfsm_logger_section_gets_a_note(app_dir: Path) -> None:
    logging_sections = (
        "[loggers]\nkeys = root, ginsfsm\n[handlers]\nkeys =\n"
        "[logger_root]\nlevel = INFO\nhandlers =\n"
        "[logger_ginsfsm]\nlevel = DEBUG\nhandlers =\nqualname = ginsfsm\n"
    )
    ini = load_ini(write(app_dir, GOOD + logging_sections))
    assert check_ini(ini) == []
    assert f"{ini.path}:20: [logger_ginsfsm] qualname: fsmio logs to the logger 'fsmio', " in (
        "\n".join(ini.notes)
    )
