"""The Sphinx extension: the reStructuredText made for a gclass (no Sphinx needed), and a
real Sphinx build of docs/ (where Sphinx is installed: ``pip install -e '.[docs]'``)."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fsmio.gobjs.c_connex import GConnex
from fsmio.gobjs.c_timer import GTimer
from fsmio.sphinxext import gclass_rst

from .conftest import ROOT


def test_gtimer_rst_has_config_events_and_card() -> None:
    rst, warnings = gclass_rst(GTimer)
    assert warnings == []
    assert rst.startswith("``fsmio.gobjs.c_timer:GTimer``\n")
    assert ".. list-table:: GTimer configuration" in rst
    assert "   * - ``seconds``\n     - float\n     - ``-1.0``\n" in rst
    assert "   * - ``trace_mach``" not in rst  # base parameters only with :base-params:
    assert "* ``EV_SET_TIMER`` (top): ST_IDLE → ``ac_set_timer``" in rst
    assert "* ``EV_TIMER_EXPIRED`` (bottom): ST_IDLE → ``ac_timer_expired``" in rst
    assert "**Output events**\n\n* ``EV_TIMEOUT`` (top)\n" in rst
    assert "**States**: ``ST_IDLE`` (initial: ``ST_IDLE``)" in rst
    raw = rst.split("   .. raw:: html\n\n", 1)[1]
    svg = "\n".join(line[6:] for line in raw.splitlines() if line.startswith("      "))
    svg = svg.split('<div class="fsmio-diagram" style="overflow-x: auto">', 1)[1]
    svg = svg.rsplit("</div>", 1)[0]
    assert ET.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"


def test_base_params_and_no_diagram() -> None:
    rst, _ = gclass_rst(GTimer, diagram="none", base_params=True)
    assert "   * - ``trace_mach``" in rst
    assert "raw:: html" not in rst


def test_gconnex_rst_lists_every_input_with_its_states() -> None:
    rst, _ = gclass_rst(GConnex)
    fsm = GConnex()._fsm
    for state, ev, action, _next in fsm.rows:
        line = next(line for line in rst.splitlines() if line.startswith(f"* ``{ev}``"))
        assert f"{state} → ``{action.__name__}``" in line


def test_graph_diagram_without_graphviz_falls_back_to_the_card(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    rst, warnings = gclass_rst(GTimer, diagram="graph")
    assert warnings == [
        (
            "GTimer: Graphviz's `dot` program is needed to render SVG for the graph "
            "style and it is not installed; using the card"
        )
    ]
    assert 'class="state"' in rst


def test_sphinx_build_of_the_docs(tmp_path: Path) -> None:
    pytest.importorskip("sphinx", reason="Sphinx is the optional `docs` extra")
    from sphinx.cmd.build import build_main

    out = tmp_path / "html"
    assert build_main(["-W", "-q", "-b", "html", str(ROOT / "docs"), str(out)]) == 0
    html = (out / "gclasses.html").read_text(encoding="utf-8")
    documented = ("GTimer", "GSock", "GServerSock", "GConnex", "GStdin", "GHttpServer")
    documented += ("GHttpCliSrv", "GWsgiServer", "GAsgiServer", "GWebSocket", "GRemote")
    for name in documented:
        assert f"{name} configuration" in html
    assert html.count('class="fsmio-diagram"') == len(documented)
    assert "ST_WAIT_CONNECTED" in html and "ac_connect" in html


def test_directive_reports_an_unknown_gclass(tmp_path: Path) -> None:
    pytest.importorskip("sphinx", reason="Sphinx is the optional `docs` extra")
    from sphinx.cmd.build import build_main

    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text('extensions = ["fsmio.sphinxext"]\n')
    (src / "index.rst").write_text("X\n=\n\n.. fsmio-gclass:: fsmio.gobjs.c_timer:Nope\n")
    warnings = tmp_path / "warnings.txt"
    code = build_main(["-q", "-w", str(warnings), "-b", "html", str(src), str(tmp_path / "out")])
    assert code == 0
    assert "fsmio-gclass fsmio.gobjs.c_timer:Nope: unknown gclass 'Nope'" in warnings.read_text()
