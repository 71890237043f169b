"""The gclass card: a drawing of an FSM as SVG, from its compiled table only.

Moved here from ``fsmio.tools.draw`` (which imports it and keeps the ``fsmio draw``
command and the graph styles) so that the inspector, a layer below the tools, serves the
same drawing.

The card is the ginsfsm "fsmdraw" card: the gclass name on top; one box per state (the
initial one first and marked) listing each event it accepts and the action run; input
events enter on the left (top inputs from above, bottom inputs from below), output events
leave on the right (top outputs upwards, bottom outputs downwards); each state change is a
black arrow from the row to the target state.  Each event has its own colour.

Where an output event leaves from: the states named in its ``output`` annotation
(``'EV_X: top output ST_CONNECTED'``); else the rows that handle an input event of the
same name (an event passed on, as GConnex does with EV_CONNECTED); else a stub at the
frame, as in the original, since the FSM table does not say which action broadcasts it.

Every element carries ``class`` and ``data-*`` attributes so that a test or the inspector
page can find it: a state box is ``<g class="state" data-state="ST_X">``, a row ``<g
class="row" data-state data-event data-action data-next>``, a state change ``<g
class="transition" data-event data-action data-from data-to>``, an event lane ``<g
class="input|output" data-event data-side>``; each has a ``<title>`` tooltip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final
from xml.sax.saxutils import escape, quoteattr

from fsmio.core.gobj import GObj
from fsmio.core.smachine import CompiledFSM

__all__ = [
    "PALETTE",
    "FsmModel",
    "Row",
    "card_svg",
    "model_from_compiled",
    "model_of",
]


# ----------------------------------------------------------------------------------------
#   The model: what a diagram shows, taken from the compiled FSM
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    state: str
    event: str
    action: str | None
    next_state: str | None

    @property
    def label(self) -> str:
        return f"{self.event} / {self.action}" if self.action else self.event

    @property
    def changes_state(self) -> bool:
        return self.next_state is not None and self.next_state != self.state


@dataclass
class FsmModel:
    """The drawable content of one gclass's FSM."""

    name: str
    qualname: str
    states: tuple[str, ...]
    events: tuple[str, ...]
    rows: tuple[Row, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    bottom_inputs: frozenset[str] = field(default_factory=frozenset)
    bottom_outputs: frozenset[str] = field(default_factory=frozenset)
    output_states: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def initial(self) -> str | None:
        return self.states[0] if self.states else None

    def rows_of(self, state: str) -> list[Row]:
        return [row for row in self.rows if row.state == state]


def _action_name(action: object) -> str | None:
    if action is None:
        return None
    return getattr(action, "__name__", None) or repr(action)


def model_from_compiled(fsm: CompiledFSM, name: str, qualname: str = "") -> FsmModel:
    """The model of a compiled FSM (``gobj._fsm``)."""
    rows = tuple(
        Row(state, ev, _action_name(action), next_state)
        for state, ev, action, next_state in fsm.rows
    )
    handled = {row.event for row in rows}
    declared_input = set(fsm.events_with("input"))
    inputs = tuple(ev for ev in fsm.event_list if ev in handled or ev in declared_input)
    bottom_inputs = frozenset(fsm.events_with("bottom", "input"))
    bottom_outputs = frozenset(fsm.events_with("bottom", "output"))
    output_states: dict[str, tuple[str, ...]] = {}
    for ev in fsm.output_events:
        named = fsm.annotated_states(ev, "output")
        if named:
            output_states[ev] = tuple(named)
    return FsmModel(
        name=name,
        qualname=qualname or name,
        states=fsm.state_list,
        events=fsm.event_list,
        rows=rows,
        inputs=inputs,
        outputs=fsm.output_events,
        bottom_inputs=bottom_inputs,
        bottom_outputs=bottom_outputs,
        output_states=output_states,
    )


def model_of(gclass: type[GObj]) -> FsmModel:
    """The model of ``gclass``'s FSM (the gclass is instantiated outside any tree: its
    ``__init__`` must take no argument; whatever it raises propagates)."""
    gobj = gclass()
    return model_from_compiled(
        gobj._fsm, gclass.__name__, f"{gclass.__module__}:{gclass.__qualname__}"
    )


# ----------------------------------------------------------------------------------------
#   Card style: our own SVG
# ----------------------------------------------------------------------------------------
# Tango palette (the original's), then more; cycled, so any number of events works.
PALETTE: Final = (
    "#fcaf3e", "#edd400", "#73d216", "#ad7fa8", "#e9b96e", "#ef2929", "#4e9a06",
    "#729fcf", "#c4a000", "#f57900", "#75507b", "#c17d11", "#3465a4", "#cc0000",
    "#8ae234", "#204a87", "#5c3566", "#8f5902", "#a40000", "#ce5c00",
)  # fmt: skip

FONT: Final = "DejaVu Sans Mono, Menlo, Consolas, monospace"
FS: Final = 13  # font size
CW: Final = FS * 0.61  # width of one character of the monospace font
ROW_H: Final = 22
TITLE_H: Final = 26
LANE: Final = 22  # distance between event lanes
CHANGE_LANE: Final = 9  # distance between state-change lanes
STATE_GAP: Final = 34
SIN45: Final = 0.7072


def _text_w(text: str, size: float = FS) -> float:
    return len(text) * size * 0.61


class _Svg:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def open_group(self, cls: str, title: str | None = None, **data: str | None) -> None:
        attrs = "".join(
            f" data-{k.replace('_', '-')}={quoteattr(v)}" for k, v in data.items() if v is not None
        )
        self.add(f"<g class={quoteattr(cls)}{attrs}>")
        if title:
            self.add(f"<title>{escape(title)}</title>")

    def close_group(self) -> None:
        self.add("</g>")

    def text(self, x: float, y: float, text: str, **attrs: str | float) -> None:
        extra = "".join(f" {k.replace('_', '-')}={quoteattr(str(v))}" for k, v in attrs.items())
        self.add(f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(text)}</text>')

    def path(self, d: str, stroke: str, width: float = 3, **attrs: str) -> None:
        extra = "".join(f" {k.replace('_', '-')}={quoteattr(v)}" for k, v in attrs.items())
        self.add(f'<path d="{d}" fill="none" stroke="{stroke}" stroke-width="{width}"{extra}/>')

    def arrow(self, x: float, y: float, direction: str, color: str, size: float = 6) -> None:
        """A filled triangle whose tip is at (x, y), pointing right/left/up/down."""
        s = size
        points = {
            "right": [(x, y), (x - s * 1.4, y - s), (x - s * 1.4, y + s)],
            "left": [(x, y), (x + s * 1.4, y - s), (x + s * 1.4, y + s)],
            "up": [(x, y), (x - s, y + s * 1.4), (x + s, y + s * 1.4)],
            "down": [(x, y), (x - s, y - s * 1.4), (x + s, y - s * 1.4)],
        }[direction]
        pts = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        self.add(f'<polygon points="{pts}" fill="{color}" stroke="none"/>')


def _elbow(x1: float, y1: float, x2: float, y2: float, r: float = 8) -> str:
    """A path from (x1, y1) vertically to y2, then horizontally to x2, rounded corner."""
    if abs(y2 - y1) < 2 * r or abs(x2 - x1) < 2 * r:
        return f"M {x1:.1f} {y1:.1f} L {x1:.1f} {y2:.1f} L {x2:.1f} {y2:.1f}"
    dy = r if y2 > y1 else -r
    dx = r if x2 > x1 else -r
    return (
        f"M {x1:.1f} {y1:.1f} L {x1:.1f} {y2 - dy:.1f} "
        f"Q {x1:.1f} {y2:.1f} {x1 + dx:.1f} {y2:.1f} L {x2:.1f} {y2:.1f}"
    )


def _elbow_hv(x1: float, y1: float, x2: float, y2: float, r: float = 8) -> str:
    """A path from (x1, y1) horizontally to x2, then vertically to y2, rounded corner."""
    if abs(y2 - y1) < 2 * r or abs(x2 - x1) < 2 * r:
        return f"M {x1:.1f} {y1:.1f} L {x2:.1f} {y1:.1f} L {x2:.1f} {y2:.1f}"
    dy = r if y2 > y1 else -r
    dx = r if x2 > x1 else -r
    return (
        f"M {x1:.1f} {y1:.1f} L {x2 - dx:.1f} {y1:.1f} "
        f"Q {x2:.1f} {y1:.1f} {x2:.1f} {y1 + dy:.1f} L {x2:.1f} {y2:.1f}"
    )


def card_svg(model: FsmModel) -> str:
    """The gclass card as an SVG document (see the module doc)."""
    colors = {ev: PALETTE[i % len(PALETTE)] for i, ev in enumerate(model.events)}
    top_in = [ev for ev in model.inputs if ev not in model.bottom_inputs]
    bot_in = [ev for ev in model.inputs if ev in model.bottom_inputs]
    top_out = [ev for ev in model.outputs if ev not in model.bottom_outputs]
    bot_out = [ev for ev in model.outputs if ev in model.bottom_outputs]
    in_lanes = top_in + bot_in
    out_lanes = top_out + bot_out
    changes = [row for row in model.rows if row.changes_state]

    # --- sizes -------------------------------------------------------------------------
    ev_col = max((len(r.event) for r in model.rows), default=0)
    row_texts = {r: f"{r.event.ljust(ev_col)}  {r.action or '-'}" for r in model.rows}
    box_w = max(
        [_text_w(s) + 70 for s in model.states]
        + [_text_w(t) + 40 for t in row_texts.values()]
        + [200]
    )
    label_len = max((_text_w(ev) for ev in in_lanes + out_lanes), default=0)
    top_labels = max((_text_w(ev) for ev in top_in + top_out), default=0)
    bot_labels = max((_text_w(ev) for ev in bot_in + bot_out), default=0)

    margin = 20.0
    title_y = margin + 24
    sub_y = title_y + 20
    bus_top = sub_y + 20 + top_labels * SIN45 + 14
    first_box_y = bus_top + STATE_GAP
    in_x0 = margin + 20
    box_x = in_x0 + len(in_lanes) * LANE + 40
    box_r = box_x + box_w
    change_x0 = box_r + 16
    out_x0 = change_x0 + len(changes) * CHANGE_LANE + 30

    # State boxes: y positions.
    box_y: dict[str, float] = {}
    row_y: dict[Row, float] = {}
    y = first_box_y
    for state in model.states:
        box_y[state] = y
        rows = model.rows_of(state)
        for i, row in enumerate(rows):
            row_y[row] = y + TITLE_H + ROW_H * i + ROW_H / 2 + 2
        y += TITLE_H + ROW_H * max(len(rows), 1) + 8 + STATE_GAP
    box_h = {st: TITLE_H + ROW_H * max(len(model.rows_of(st)), 1) + 8 for st in model.states}
    if not model.states:
        y += 40
    bus_bot = y
    width = max(
        out_x0 + len(out_lanes) * LANE + label_len * SIN45 + margin + 10,
        in_x0 + len(in_lanes) * LANE + label_len * SIN45 + margin,
        margin * 2 + _text_w(model.qualname, 12) + 20,
        box_r + margin + 30,
    )
    height = bus_bot + 14 + bot_labels * SIN45 + margin + 10

    svg = _Svg()
    svg.add(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'font-family="{FONT}" font-size="{FS}">'
    )
    svg.add(f"<title>{escape(model.name)} FSM</title>")
    svg.add(
        "<desc>"
        + escape(
            f"gclass card of {model.qualname}: {len(model.states)} states, "
            f"{len(model.rows)} transitions; generated by fsmio draw from the compiled FSM"
        )
        + "</desc>"
    )
    svg.add(
        "<style>g.input:hover, g.output:hover, g.transition:hover { opacity: 0.5 } "
        "text { fill: #222 }</style>"
    )
    svg.add(f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="white"/>')
    svg.add(
        f'<rect x="1" y="1" width="{width - 2:.0f}" height="{height - 2:.0f}" rx="10" '
        'fill="none" stroke="#888" stroke-dasharray="4 4"/>'
    )
    svg.text(margin + 10, title_y, model.name, font_size=22, font_weight="bold")
    svg.text(margin + 10, sub_y, model.qualname, font_size=12, fill="#555")
    # The inner frame between the two buses.
    svg.add(
        f'<rect x="{in_x0 - 10:.1f}" y="{bus_top:.1f}" '
        f'width="{out_x0 + len(out_lanes) * LANE - in_x0 + 10:.1f}" '
        f'height="{bus_bot - bus_top:.1f}" rx="10" fill="#f8f8f8" stroke="#888a85" '
        'stroke-width="1.5"/>'
    )

    # --- state boxes ---------------------------------------------------------------------
    for state in model.states:
        y0 = box_y[state]
        initial = state == model.initial
        svg.open_group("state", f"state {state}" + (" (initial)" if initial else ""), state=state)
        svg.add(
            f'<rect x="{box_x + 3:.1f}" y="{y0 + 3:.1f}" width="{box_w:.1f}" '
            f'height="{box_h[state]:.1f}" rx="8" fill="#000" opacity="0.25"/>'
        )
        svg.add(
            f'<rect x="{box_x:.1f}" y="{y0:.1f}" width="{box_w:.1f}" height="{box_h[state]:.1f}" '
            f'rx="8" fill="#faf1e8" stroke="#000" stroke-width="{2.5 if initial else 1}"/>'
        )
        svg.text(box_x + 12, y0 + 18, state, font_weight="bold")
        if initial:
            svg.text(box_r - 10, y0 + 18, "initial", font_size=10, fill="#777", text_anchor="end")
        svg.add(
            f'<path d="M {box_x:.1f} {y0 + TITLE_H:.1f} H {box_r:.1f}" stroke="#000" '
            'stroke-width="1"/>'
        )
        rows = model.rows_of(state)
        if not rows:
            svg.text(box_x + 12, y0 + TITLE_H + 16, "(no events)", fill="#999")
        for row in rows:
            ry = row_y[row]
            after = f" -> {row.next_state}" if row.changes_state else ""
            svg.open_group(
                "row",
                f"{state}: {row.label}{after}",
                state=state,
                event=row.event,
                action=row.action,
                next=row.next_state,
            )
            svg.add(
                f'<circle cx="{box_x + 8:.1f}" cy="{ry:.1f}" r="3" fill="{colors[row.event]}"/>'
            )
            svg.text(box_x + 16, ry + 4.5, row.event, fill=colors[row.event], font_weight="bold")
            svg.text(box_x + 16 + ev_col * CW + 14, ry + 4.5, row.action or "-")
            svg.add(
                f'<rect x="{box_r - 3:.1f}" y="{ry - 2:.1f}" width="4" height="4" fill="#000"/>'
            )
            svg.close_group()
        svg.close_group()

    # --- input events: lanes on the left ------------------------------------------------------
    for i, ev in enumerate(in_lanes):
        x = in_x0 + i * LANE
        bottom = ev in model.bottom_inputs
        start = bus_bot + 10 if bottom else bus_top - 10
        color = colors[ev]
        handlers = [row for row in model.rows if row.event == ev]
        svg.open_group(
            "input",
            f"{'bottom' if bottom else 'top'} input {ev}: "
            + (", ".join(f"{r.state} / {r.action}" for r in handlers) or "not handled"),
            event=ev,
            side="bottom" if bottom else "top",
        )
        if not handlers:
            end = start - 14 if bottom else start + 14
            svg.path(f"M {x} {start:.1f} L {x} {end:.1f}", color, stroke_dasharray="3 3")
        for row in handlers:
            svg.path(_elbow(x, start, box_x - 9, row_y[row]), color)
            svg.arrow(box_x - 1, row_y[row], "right", color)
        if bottom:
            svg.text(x - 4, start + 12, ev, transform=f"rotate(45 {x - 4} {start + 12:.1f})")
        else:
            svg.text(x - 4, start - 4, ev, transform=f"rotate(-45 {x - 4} {start - 4:.1f})")
        svg.close_group()

    # --- state changes: black arrows on the right ---------------------------------------------
    for j, row in enumerate(changes):
        assert row.next_state is not None
        x = change_x0 + j * CHANGE_LANE
        sy = row_y[row]
        ty = box_y[row.next_state] + TITLE_H / 2
        svg.open_group(
            "transition",
            f"{row.state} --{row.event} / {row.action}--> {row.next_state}",
            event=row.event,
            action=row.action,
            **{"from": row.state, "to": row.next_state},
        )
        svg.path(f"{_elbow_hv(box_r + 1, sy, x, ty)} L {box_r + 9:.1f} {ty:.1f}", "#000", 1.5)
        svg.arrow(box_r + 1, ty, "left", "#000", 5)
        svg.close_group()

    # --- output events: lanes on the right ----------------------------------------------------
    for k, ev in enumerate(out_lanes):
        x = out_x0 + k * LANE
        bottom = ev in model.bottom_outputs
        color = colors[ev]
        end = bus_bot + 10 if bottom else bus_top - 10
        if ev in model.output_states:
            sources = [
                (st, row_y[rows[0]] if (rows := model.rows_of(st)) else box_y[st] + TITLE_H / 2)
                for st in model.output_states[ev]
            ]
            how = "from " + ", ".join(st for st, _ in sources)
        else:
            passed_on = [row for row in model.rows if row.event == ev]
            sources = [(row.state, row_y[row]) for row in passed_on]
            how = (
                ("passed on from " + ", ".join(st for st, _ in sources))
                if sources
                else "broadcast by an action"
            )
        svg.open_group(
            "output",
            f"{'bottom' if bottom else 'top'} output {ev} ({how})",
            event=ev,
            side="bottom" if bottom else "top",
        )
        if not sources:
            stub = bus_bot - 30 if bottom else bus_top + 30
            svg.path(f"M {x} {stub:.1f} L {x} {end + (-8 if bottom else 8):.1f}", color)
        for _state, sy in sources:
            svg.path(_elbow_hv(box_r + 1, sy, x, end + (-8 if bottom else 8)), color)
        svg.arrow(x, end, "down" if bottom else "up", color)
        if bottom:
            svg.text(x + 4, end + 12, ev, transform=f"rotate(45 {x + 4} {end + 12:.1f})")
        else:
            svg.text(x + 4, end - 4, ev, transform=f"rotate(-45 {x + 4} {end - 4:.1f})")
        svg.close_group()

    svg.add("</svg>")
    return "\n".join(svg.parts) + "\n"
