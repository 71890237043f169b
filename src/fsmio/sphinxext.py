"""A Sphinx extension: ``.. fsmio-gclass:: package.module:GClass`` documents a gclass.

Install the optional extra (``pip install 'fsmio[docs]'``) and add
``"fsmio.sphinxext"`` to ``extensions`` in ``conf.py``.  The directive renders, from the
gclass itself (so the docs cannot disagree with the code):

* the first paragraph of the class docstring;
* the config template as a table (name, type, default, description) — the gclass's own
  parameters; ``:base-params:`` adds those every gobj has (``trace_mach``...);
* the input events (with the states that accept each and the action run) and the output
  events, with their ``top``/``bottom`` annotations;
* the FSM diagram, inline SVG in HTML: ``:diagram: card`` (default; drawn by fsmio,
  nothing to install), ``graph`` (needs Graphviz's ``dot``; the card is used, with a
  warning, when it is missing) or ``none``.

Options::

    .. fsmio-gclass:: fsmio.gobjs.c_connex:GConnex
       :diagram: card
       :base-params:

``gclass_rst(gclass, ...)`` returns the reStructuredText the directive parses; it needs
no Sphinx, so it is what the tests check first.
"""

from __future__ import annotations

import importlib
from typing import Any

from fsmio._version import __version__
from fsmio.core.gobj import GOBJ_GCONFIG, GObj
from fsmio.tools import ToolError, instantiate, load_gclass, qualified_name
from fsmio.tools.draw import card_svg, model_of, render

__all__ = ["gclass_rst", "setup"]

DIAGRAMS = ("card", "graph", "none")


def _cell(text: str) -> str:
    return text.replace("\n", " ").strip() or " "


def _literal(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"``{text}``" if text.strip() else " "


def _first_paragraph(gclass: type[Any]) -> str:
    doc = gclass.__doc__ or ""
    if doc == GObj.__doc__:
        return ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def gclass_rst(
    gclass: type[GObj], diagram: str = "card", base_params: bool = False
) -> tuple[str, list[str]]:
    """The reStructuredText for ``gclass``, and warnings to report (for the directive)."""
    warnings: list[str] = []
    gobj = instantiate(gclass)
    model = model_of(gclass)
    lines: list[str] = [f"``{qualified_name(gclass)}``", ""]
    summary = _first_paragraph(gclass)
    if summary:
        lines += [summary, ""]

    params = [
        spec
        for name, spec in gobj.get_gconfig_params().items()
        if base_params or name not in GOBJ_GCONFIG or GOBJ_GCONFIG[name][4] != spec.description
    ]
    params = [spec for spec in params if not spec.name.startswith("_")]
    if params:
        lines += [
            f".. list-table:: {gclass.__name__} configuration",
            "   :header-rows: 1",
            "   :widths: 22 8 18 52",
            "",
            "   * - Name",
            "     - Type",
            "     - Default",
            "     - Description",
        ]
        for spec in params:
            lines += [
                f"   * - ``{spec.name}``",
                f"     - {spec.type_name}",
                f"     - {_literal(spec.default)}",
                f"     - {_cell(spec.description)}",
            ]
        lines.append("")
    else:
        lines += ["No configuration parameters of its own.", ""]

    fsm = gobj._fsm

    def sides(event: str, word: str) -> str:
        found = [side for side in ("top", "bottom") if event in fsm.events_with(side, word)]
        return f" ({', '.join(found)})" if found else ""

    if model.inputs:
        lines += ["**Input events**", ""]
        for ev in model.inputs:
            handlers = ", ".join(
                f"{row.state} → ``{row.action or '-'}``"
                + (f" → {row.next_state}" if row.changes_state else "")
                for row in model.rows
                if row.event == ev
            )
            lines.append(f"* ``{ev}``{sides(ev, 'input')}: {handlers or 'not handled'}")
        lines.append("")
    if model.outputs:
        lines += ["**Output events**", ""]
        lines += [f"* ``{ev}``{sides(ev, 'output')}" for ev in model.outputs]
        lines.append("")
    if model.states:
        lines += [
            (
                f"**States**: {', '.join(f'``{st}``' for st in model.states)} "
                f"(initial: ``{model.initial}``)"
            ),
            "",
        ]

    if diagram != "none":
        if diagram == "graph":
            try:
                svg = render(model, "graph", "svg").decode()
            except ToolError as exc:
                warnings.append(f"{gclass.__name__}: {exc.message.split('. ')[0]}; using the card")
                svg = card_svg(model)
        else:
            svg = card_svg(model)
        svg = svg.split("?>", 1)[1] if svg.startswith("<?xml") else svg
        lines += [".. only:: html", "", "   .. raw:: html", ""]
        lines.append('      <div class="fsmio-diagram" style="overflow-x: auto">')
        lines += [f"      {line}" for line in svg.strip().splitlines() if line.strip()]
        lines += ["      </div>", ""]
    return "\n".join(lines) + "\n", warnings


def _directive_class() -> type[Any]:
    """The directive class (made only when Sphinx is there)."""
    docutils_nodes: Any = importlib.import_module("docutils.nodes")
    directives: Any = importlib.import_module("docutils.parsers.rst.directives")
    statemachine: Any = importlib.import_module("docutils.statemachine")
    sphinx_docutils: Any = importlib.import_module("sphinx.util.docutils")
    sphinx_logging: Any = importlib.import_module("sphinx.util.logging")
    logger = sphinx_logging.getLogger(__name__)

    def diagram_choice(argument: str) -> str:
        return str(directives.choice(argument, DIAGRAMS))

    class GClassDirective(sphinx_docutils.SphinxDirective):  # type: ignore[misc]
        """``.. fsmio-gclass:: package.module:GClass``."""

        required_arguments = 1
        has_content = False
        option_spec = {"diagram": diagram_choice, "base-params": directives.flag}

        def run(self) -> list[Any]:
            target = self.arguments[0].strip()
            try:
                gclass = load_gclass(target)
                rst, warnings = gclass_rst(
                    gclass,
                    diagram=self.options.get("diagram", "card"),
                    base_params="base-params" in self.options,
                )
            except ToolError as exc:
                raise self.error(f"fsmio-gclass {target}: {exc.message}") from None
            for warning in warnings:
                logger.warning(warning, location=self.get_location())
            container = docutils_nodes.container(classes=["fsmio-gclass"])
            source = f"<fsmio-gclass {target}>"
            content = statemachine.StringList(rst.splitlines(), source=source)
            self.state.nested_parse(content, self.content_offset, container)
            return [container]

    return GClassDirective


def setup(app: Any) -> dict[str, Any]:
    """The Sphinx entry point (``extensions = ["fsmio.sphinxext"]``)."""
    app.add_directive("fsmio-gclass", _directive_class())
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
