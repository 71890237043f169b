"""``fsmio draw``: every built-in gclass in every style and format; outputs parse and say
exactly what the compiled FSM says."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fsmio import GObj
from fsmio.aplic.gaplic import GAplic
from fsmio.examples.timer_demo import Counter, Ticker
from fsmio.gobjs.c_connex import GConnex
from fsmio.gobjs.c_sock import GSock
from fsmio.gobjs.c_srv_sock import GServerSock
from fsmio.gobjs.c_stdin import GStdin
from fsmio.gobjs.c_timer import GTimer
from fsmio.protocols.asgi.c_asgi_server import GAsgiServer
from fsmio.protocols.http.c_http_clisrv import GHttpCliSrv
from fsmio.protocols.http.c_http_server import GHttpServer
from fsmio.protocols.websocket.c_websocket import GWebSocket
from fsmio.protocols.wsgi.c_wsgi_server import GWsgiServer
from fsmio.remote.c_remote import GRemote
from fsmio.tools import ToolError
from fsmio.tools.cli import main
from fsmio.tools.draw import (
    card_svg,
    graph_dot,
    graph_mermaid,
    model_of,
    render,
)

from .conftest import ROOT, run_fsmio

BUILTINS: list[type[GObj]] = [GTimer, GSock, GServerSock, GConnex, Counter, Ticker, GAplic]
SVG = "{http://www.w3.org/2000/svg}"
DIAGRAMS = ROOT / "docs" / "diagrams"
DOCUMENTED = [
    GTimer,
    GSock,
    GServerSock,
    GConnex,
    GStdin,
    GHttpServer,
    GHttpCliSrv,
    GWsgiServer,
    GAsgiServer,
    GWebSocket,
    GRemote,
]


def ids(gclasses: list[type[GObj]]) -> list[str]:
    return [g.__name__ for g in gclasses]


# ----------------------------------------------------------------------------------------
#   Card (our own SVG): parses, and holds every row, transition, input and output
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("gclass", BUILTINS, ids=ids(BUILTINS))
def test_card_svg_parses_and_matches_the_fsm(gclass: type[GObj]) -> None:
    model = model_of(gclass)
    root = ET.fromstring(card_svg(model))
    assert root.tag == f"{SVG}svg"
    groups = list(root.iter(f"{SVG}g"))

    def of(cls: str) -> list[dict[str, str]]:
        return [g.attrib for g in groups if g.get("class") == cls]

    fsm = gclass()._fsm
    assert [a["data-state"] for a in of("state")] == list(fsm.state_list)
    rows = {
        (a["data-state"], a["data-event"], a.get("data-action"), a.get("data-next"))
        for a in of("row")
    }
    assert rows == {(st, ev, getattr(ac, "__name__", None), nxt) for st, ev, ac, nxt in fsm.rows}
    changes = {(a["data-from"], a["data-event"], a["data-to"]) for a in of("transition")}
    assert changes == {
        (st, ev, nxt) for st, ev, _ac, nxt in fsm.rows if nxt is not None and nxt != st
    }
    assert {a["data-event"] for a in of("output")} == set(fsm.output_events)
    assert {a["data-event"] for a in of("input")} >= set(fsm.input_events)
    texts = "".join(root.itertext())
    assert gclass.__name__ in texts


def test_card_places_events_by_annotation() -> None:
    model = model_of(GTimer)
    root = ET.fromstring(card_svg(model))
    sides = {
        (g.get("class"), g.get("data-event")): g.get("data-side")
        for g in root.iter(f"{SVG}g")
        if g.get("class") in ("input", "output")
    }
    assert sides == {
        ("input", "EV_SET_TIMER"): "top",
        ("input", "EV_TIMER_EXPIRED"): "bottom",
        ("output", "EV_TIMEOUT"): "top",
    }


# ----------------------------------------------------------------------------------------
#   Graph: Mermaid and DOT text (no dependency), SVG and PNG through Graphviz
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("gclass", BUILTINS, ids=ids(BUILTINS))
def test_mermaid_has_every_transition(gclass: type[GObj]) -> None:
    text = graph_mermaid(model_of(gclass))
    lines = text.splitlines()
    assert lines[:4] == [
        "---",
        f"title: {gclass.__name__} ({gclass.__module__}:{gclass.__name__})",
        "---",
        "stateDiagram-v2",
    ]
    fsm = gclass()._fsm
    ids_ = dict(re.findall(r'^    state "(\w+)" as (s\d+)$', text, re.M))
    assert list(ids_) == list(fsm.state_list)
    for st, ev, ac, nxt in fsm.rows:
        label = f"{ev} / {ac.__name__}" if ac else ev
        assert f"    {ids_[st]} --> {ids_[nxt or st]} : {label}" in lines
    if fsm.state_list:
        assert f"    [*] --> {ids_[fsm.state_list[0]]}" in lines


@pytest.mark.parametrize("gclass", BUILTINS, ids=ids(BUILTINS))
def test_dot_text_has_every_transition(gclass: type[GObj]) -> None:
    text = graph_dot(model_of(gclass))
    assert text.startswith(f'digraph "{gclass.__name__}" {{') and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    fsm = gclass()._fsm
    for state in fsm.state_list:
        assert f'"{state}" [label="{state}"' in text
    for st, ev, ac, nxt in fsm.rows:
        edge = re.search(rf'^  "{st}" -> "{nxt or st}" \[label="([^"]*)"\];$', text, re.M)
        assert edge is not None, (st, nxt)
        label = f"{ev} / {ac.__name__}" if ac else ev
        assert f"{label}\\l" in edge.group(1)


@pytest.mark.parametrize("gclass", BUILTINS, ids=ids(BUILTINS))
def test_dot_renders_svg_and_png(gclass: type[GObj]) -> None:
    # A real part: missing, the test fails (it never skips); .ci/run installs it.
    assert shutil.which("dot"), "Graphviz `dot` is missing: apt-get install graphviz"
    model = model_of(gclass)
    svg = render(model, "graph", "svg")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    texts = " ".join(root.itertext())
    for state in gclass()._fsm.state_list:
        assert state in texts
    png = render(model, "graph", "png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # And Graphviz accepts the DOT text as written.
    done = subprocess.run(
        ["dot", "-Tsvg"], input=graph_dot(model).encode(), capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_svg_without_graphviz_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ToolError) as info:
        render(model_of(GTimer), "graph", "png")
    assert "Graphviz's `dot` program is needed to render PNG" in info.value.message
    assert "apt-get install graphviz" in info.value.message
    assert "brew install graphviz" in info.value.message
    # The card and the text formats need nothing.
    assert render(model_of(GTimer), "card", "svg").startswith(b"<?xml")
    assert render(model_of(GTimer), "graph", "dot").startswith(b"digraph")


def test_card_is_svg_only() -> None:
    with pytest.raises(ToolError, match="the card style is drawn as SVG only, not png"):
        render(model_of(GTimer), "card", "png")


# ----------------------------------------------------------------------------------------
#   The command
# ----------------------------------------------------------------------------------------
def test_draw_to_files_by_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mmd, dot, card = tmp_path / "t.mmd", tmp_path / "t.dot", tmp_path / "t.svg"
    assert main(["draw", "fsmio.gobjs.c_timer:GTimer", "-o", str(mmd)]) == 0
    assert main(["draw", "fsmio.gobjs.c_timer:GTimer", "-o", str(dot)]) == 0
    assert main(["draw", "fsmio.gobjs.c_timer:GTimer", "--style", "card", "-o", str(card)]) == 0
    assert mmd.read_text() == graph_mermaid(model_of(GTimer))
    assert dot.read_text() == graph_dot(model_of(GTimer))
    ET.fromstring(card.read_text())
    assert capsys.readouterr().out.split() == [str(mmd), str(dot), str(card)]


def test_draw_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["draw", "fsmio.gobjs.c_timer:GTimer", "--format", "mmd"]) == 0
    assert capsys.readouterr().out == graph_mermaid(model_of(GTimer))


def test_draw_a_module_to_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d"
    argv = ["draw", "fsmio.examples.timer_demo", "-o", f"{out}/"]
    assert main([*argv, "--style", "all", "--format", "mmd", "--format", "dot"]) == 0
    assert main([*argv, "--style", "card", "--format", "svg"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        f"{g}.{s}" for g in ("Counter", "Ticker") for s in ("graph.mmd", "graph.dot", "card.svg")
    )
    assert capsys.readouterr().out.split() == [
        str(out / n)
        for n in (
            "Counter.graph.mmd",
            "Counter.graph.dot",
            "Ticker.graph.mmd",
            "Ticker.graph.dot",
            "Counter.card.svg",
            "Ticker.card.svg",
        )
    ]


def test_draw_from_a_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "connex.svg"
    done = run_fsmio("draw", "fsmio.gobjs.c_connex:GConnex", "--style", "card", "-o", str(out))
    assert done.returncode == 0, done.stderr
    ET.fromstring(out.read_text())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["draw", "fsmio.gobjs.c_timer:Nope"], "unknown gclass 'Nope'"),
        (["draw", "nosuch.mod:X"], "unknown module 'nosuch.mod'"),
        (
            ["draw", "fsmio.gobjs.c_timer:GTimer", "-o", "x.jpeg"],
            "cannot tell the format from 'x.jpeg'",
        ),
        (["draw", "fsmio.gobjs.c_timer:GTimer", "--style", "card", "-o", "x.png"], "SVG only"),
        (["draw", "fsmio.core.errors"], "module 'fsmio.core.errors' defines no gclass"),
        (["draw", "tests.tools.broken_gclasses:Broken"], "cannot instantiate"),
        (["draw", "fsmio.gobjs.c_timer:GTimer", "fsmio.gobjs.c_sock:GSock"], "need -o DIRECTORY/"),
    ],
)
def test_draw_bad_input(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("fsmio draw: error: ")
    assert "Traceback" not in err


# ----------------------------------------------------------------------------------------
#   The committed diagrams are what the code says today
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("gclass", DOCUMENTED, ids=ids(DOCUMENTED))
def test_committed_diagrams_are_up_to_date(gclass: type[GObj]) -> None:
    model = model_of(gclass)
    regenerate = (
        "docs/diagrams is out of date; regenerate it with: fsmio draw "
        + " ".join(f"{g.__module__}:{g.__name__}" for g in DOCUMENTED)
        + " -o docs/diagrams/ --style all --format mmd --format dot --format svg"
    )
    for name, text in (
        (f"{model.name}.graph.mmd", graph_mermaid(model)),
        (f"{model.name}.graph.dot", graph_dot(model)),
        (f"{model.name}.card.svg", card_svg(model)),
    ):
        path = DIAGRAMS / name
        assert path.exists(), f"{path} is missing. {regenerate}"
        assert path.read_text(encoding="utf-8") == text, f"{path} differs. {regenerate}"
