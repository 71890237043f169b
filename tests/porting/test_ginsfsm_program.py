"""A ginsfsm 0.7 program runs on fsmio after changing only its imports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ORIGINAL = Path(__file__).with_name("ginsfsm_program.py.txt")


def port(source: str) -> str:
    """What a user does: ``from ginsfsm.<module> import X`` -> ``from fsmio import X``."""
    return re.sub(r"^from ginsfsm(\.\w+)* import ", "from fsmio import ", source, flags=re.M)


def test_only_import_lines_change() -> None:
    original = ORIGINAL.read_text().splitlines()
    ported = port(ORIGINAL.read_text()).splitlines()
    changed = [(a, b) for a, b in zip(original, ported, strict=True) if a != b]
    assert len(changed) == 5
    assert all(a.startswith("from ginsfsm") and b.startswith("from fsmio") for a, b in changed)


def test_ported_program_runs(tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text(port(ORIGINAL.read_text()))
    result = subprocess.run(
        [sys.executable, str(program)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "counts [(1, 'producer'), (2, 'producer'), (3, 'producer'), (4, 'producer')]"
    assert lines[1] == "state ST_DONE"
    assert lines[2] == "children ['timer']"
    assert lines[3] == "path /producer porting.producer.timer"
    # The one warning the program provokes on purpose: the unknown event.
    assert "EV_UNKNOWN (NOT ACCEPTED by UNKNOWN)" in result.stderr
