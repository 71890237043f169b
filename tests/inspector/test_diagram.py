"""The card drawing moved to the inspector layer: every state box is findable by the page."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from fsmio.gobjs.c_connex import GConnex
from fsmio.inspector import diagram
from fsmio.tools import draw

SVG = "{http://www.w3.org/2000/svg}"


def test_each_state_box_carries_data_state() -> None:
    model = diagram.model_of(GConnex)
    root = ET.fromstring(diagram.card_svg(model).encode())
    boxes = [g for g in root.iter(f"{SVG}g") if g.get("class") == "state"]
    assert [g.get("data-state") for g in boxes] == list(model.states)
    assert "ST_CONNECTED" in model.states
    transitions = [g for g in root.iter(f"{SVG}g") if g.get("class") == "transition"]
    assert any(
        g.get("data-from") == "ST_WAIT_CONNECTED" and g.get("data-to") == "ST_CONNECTED"
        for g in transitions
    )


def test_the_tools_draw_the_same_card() -> None:
    assert draw.card_svg is diagram.card_svg
    assert draw.model_of(GConnex) == diagram.model_of(GConnex)
