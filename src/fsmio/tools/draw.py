"""``fsmio draw``: diagrams of a gclass's FSM, generated from the compiled FSM only.

Two styles:

* ``graph`` — a state graph: states as nodes (an arrow from a start point into the
  initial state), one edge per transition labelled ``EV_X / ac_y``.  A row whose next
  state is ``None`` (stay) is drawn as a loop.  Written as Mermaid (``.mmd``,
  ``stateDiagram-v2``) or Graphviz DOT (``.dot``) text with no dependency; SVG and PNG
  are rendered from the DOT text by Graphviz's ``dot`` program when it is installed.
* ``card`` — the ginsfsm "fsmdraw" card, drawn as SVG by this module (nothing to
  install): the gclass name on top; one box per state (the initial one first and marked)
  listing each event it accepts and the action run; input events enter on the left (top
  inputs from above, bottom inputs from below), output events leave on the right (top
  outputs upwards, bottom outputs downwards); each state change is a black arrow from the
  row to the target state.  Each event has its own colour.  The card is SVG only.

Where an output event leaves from: the states named in its ``output`` annotation
(``'EV_X: top output ST_CONNECTED'``); else the rows that handle an input event of the
same name (an event passed on, as GConnex does with EV_CONNECTED); else a stub at the
frame, as in the original, since the FSM table does not say which action broadcasts it.

Only the table is drawn: a state change an action makes itself with
``set_new_state('ST_X')`` (GSock and GConnex do, from asyncio callbacks) is not in the
table, so it is not in the diagram — write the next state in the row when it is known
there.  ``fsmio check`` does read such calls, so it does not call those states
unreachable.

Every element of the card carries ``class`` and ``data-*`` attributes (``data-state``,
``data-event``, ``data-action``, ``data-next``) and a ``<title>`` tooltip, so a test (or
an inspector page) can find each row and transition in the SVG.  The card itself is drawn
by ``fsmio.inspector.diagram`` (the live inspector serves the same drawing).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from fsmio.core.gobj import GObj
from fsmio.inspector.diagram import FsmModel, Row, card_svg, model_from_compiled

from . import EXIT_FAILURE, ToolError, instantiate, qualified_name

__all__ = [
    "FORMATS",
    "STYLES",
    "FsmModel",
    "Row",
    "card_svg",
    "dot_available",
    "graph_dot",
    "graph_mermaid",
    "model_from_compiled",
    "model_of",
    "render",
]

STYLES: Final = ("graph", "card")
FORMATS: Final = ("mmd", "dot", "svg", "png")
INSTALL_GRAPHVIZ: Final = (
    "Graphviz's `dot` program is needed to render {fmt} for the graph style and it is not "
    "installed. Install Graphviz (Debian/Ubuntu: `sudo apt-get install graphviz`, Fedora: "
    "`sudo dnf install graphviz`, macOS: `brew install graphviz`), or write .dot or .mmd "
    "text instead (no dependency), or use `--style card` for an SVG that needs nothing."
)


def model_of(gclass: type[GObj]) -> FsmModel:
    """The model of ``gclass``'s FSM (the gclass is instantiated outside any tree; a
    ``ToolError`` says why it cannot be)."""
    gobj = instantiate(gclass)
    return model_from_compiled(gobj._fsm, gclass.__name__, qualified_name(gclass))


# ----------------------------------------------------------------------------------------
#   Graph style: Graphviz DOT and Mermaid text
# ----------------------------------------------------------------------------------------
def _dot_id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _grouped_edges(model: FsmModel) -> dict[tuple[str, str], list[Row]]:
    edges: dict[tuple[str, str], list[Row]] = {}
    for row in model.rows:
        edges.setdefault((row.state, row.next_state or row.state), []).append(row)
    return edges


def graph_dot(model: FsmModel) -> str:
    """The state graph as Graphviz DOT text."""
    title = _dot_id(model.name)[:-1] + "\\n" + _dot_id(model.qualname)[1:]
    lines = [
        f"digraph {_dot_id(model.name)} {{",
        f'  graph [rankdir=LR, labelloc=t, fontname="Helvetica", fontsize=18, label={title}];',
        '  node [shape=box, style="rounded,filled", fillcolor="#faf1e8", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    if model.initial is not None:
        lines.append(
            '  "__start__" [shape=point, width=0.15, style=filled, fillcolor=black, label=""];'
        )
    for state in model.states:
        extra = ", penwidth=2" if state == model.initial else ""
        lines.append(f"  {_dot_id(state)} [label={_dot_id(state)}{extra}];")
    if model.initial is not None:
        lines.append(f'  "__start__" -> {_dot_id(model.initial)};')
    for (src, dst), rows in _grouped_edges(model).items():
        label = "\\l".join(row.label.replace('"', '\\"') for row in rows) + "\\l"
        lines.append(f'  {_dot_id(src)} -> {_dot_id(dst)} [label="{label}"];')
    if model.outputs:
        legend = "output events:\\l" + "".join(f"  {ev}\\l" for ev in model.outputs)
        lines.append(
            f'  "__outputs__" [shape=note, style=filled, fillcolor="#f8f8f8", label="{legend}"];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def graph_mermaid(model: FsmModel) -> str:
    """The state graph as Mermaid ``stateDiagram-v2`` text."""
    ids = {state: f"s{i}" for i, state in enumerate(model.states)}
    lines = ["---", f"title: {model.name} ({model.qualname})", "---", "stateDiagram-v2"]
    lines.append(f"    %% inputs: {', '.join(model.inputs) or '-'}")
    lines.append(f"    %% outputs: {', '.join(model.outputs) or '-'}")
    for state, sid in ids.items():
        lines.append(f'    state "{state}" as {sid}')
    if model.initial is not None:
        lines.append(f"    [*] --> {ids[model.initial]}")
    for row in model.rows:
        dst = ids[row.next_state or row.state]
        lines.append(f"    {ids[row.state]} --> {dst} : {row.label}")
    return "\n".join(lines) + "\n"


def dot_available() -> str | None:
    """The path of Graphviz's ``dot``, or None."""
    return shutil.which("dot")


def run_dot(dot_text: str, fmt: str) -> bytes:
    """Render DOT text to ``fmt`` (svg, png) with Graphviz; ToolError if it is missing."""
    exe = dot_available()
    if exe is None:
        raise ToolError(INSTALL_GRAPHVIZ.format(fmt=fmt.upper()), EXIT_FAILURE)
    try:
        done = subprocess.run(
            [exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolError(f"running {exe} failed: {exc}", EXIT_FAILURE) from None
    if done.returncode != 0:
        raise ToolError(
            f"{exe} -T{fmt} failed: {done.stderr.decode(errors='replace').strip()}", EXIT_FAILURE
        )
    return done.stdout


# ----------------------------------------------------------------------------------------
#   Entry point used by the CLI
# ----------------------------------------------------------------------------------------
def render(model: FsmModel, style: str, fmt: str) -> bytes:
    """The diagram of ``model`` in ``style`` and ``fmt`` (see ``STYLES`` and ``FORMATS``)."""
    if style not in STYLES:
        raise ToolError(f"unknown style {style!r} (styles: {', '.join(STYLES)})")
    if fmt not in FORMATS:
        raise ToolError(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")
    if style == "card":
        if fmt != "svg":
            raise ToolError(
                f"the card style is drawn as SVG only, not {fmt}; "
                "use --format svg (or -o NAME.svg), or --style graph for .mmd/.dot/.png"
            )
        return card_svg(model).encode()
    if fmt == "mmd":
        return graph_mermaid(model).encode()
    if fmt == "dot":
        return graph_dot(model).encode()
    return run_dot(graph_dot(model), fmt)


def format_of(path: Path | None, fmt: str | None) -> str:
    """The format given, or the one the output file's suffix says."""
    if fmt:
        return fmt
    if path is None:
        return "svg"
    suffix = path.suffix.lower().lstrip(".")
    aliases = {"mermaid": "mmd", "gv": "dot"}
    suffix = aliases.get(suffix, suffix)
    if suffix not in FORMATS:
        raise ToolError(
            f"cannot tell the format from {str(path)!r}: use a suffix among "
            f"{', '.join('.' + f for f in FORMATS)} or --format"
        )
    return suffix


def draw_all(
    gclasses: Iterable[type[GObj]], out_dir: Path, styles: Iterable[str], formats: Iterable[str]
) -> list[Path]:
    """Write every gclass in every style and format to ``out_dir`` as
    ``<GClass>.<style>.<format>``, skipping combinations a style does not have."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for gclass in gclasses:
        model = model_of(gclass)
        for style in styles:
            for fmt in formats:
                if style == "card" and fmt != "svg":
                    continue
                path = out_dir / f"{model.name}.{style}.{fmt}"
                path.write_bytes(render(model, style, fmt))
                written.append(path)
    return written
