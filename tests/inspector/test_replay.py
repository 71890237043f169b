"""``fsmio inspect TRACE.jsonl``: a trace written by a real traced run, read back as the
inspector's tree and events, and served in replay mode."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fsmio import GAplic
from fsmio.aplic.gaplic import GAplicThreadWorker
from fsmio.core.gobj import GObj
from fsmio.inspector import GInspector, TraceError, load_replay
from fsmio.inspector.replay import find_gclass, read_trace

from .feedutil import open_feed

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trace of ``fsmio run examples/echo.toml`` sending 3 messages."""
    path = tmp_path_factory.mktemp("trace") / "echo.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fsmio",
            "run",
            "examples/echo.toml",
            "--set",
            "client.count=3",
            "--set",
            "client.size=16",
            "--trace-file",
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return path


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_replay_gives_the_same_event_sequence_as_the_trace(trace_file: Path) -> None:
    replay = load_replay(trace_file)
    assert replay.errors == []
    starts = [r for r in records(trace_file) if r["phase"] in ("->", "!")]
    assert len(starts) > 20
    assert [(e["dst_name"], e["event"], e["state"]) for e in replay.events] == [
        (r["gobj"], r["event"], r["state"]) for r in starts
    ]
    assert [e["seq"] for e in replay.events] == list(range(1, len(starts) + 1))
    assert [e["depth"] for e in replay.events] == [r["depth"] for r in starts]
    # The <- record's outcome and the - record's new state are on the event.
    ends = [r for r in records(trace_file) if r["phase"] == "<-"]
    returned = sum(1 for r in ends if "ret:" in r["message"])
    assert sum(1 for e in replay.events if e["ret"]) == returned
    changed = [e for e in replay.events if e["state"] != e["next_state"]]
    assert any(e["gclass"] == "GConnex" and e["next_state"] == "ST_CONNECTED" for e in changed)
    assert all(e["src"] is None for e in replay.events)


def test_replay_tree_has_every_gobj_seen_parents_first(trace_file: Path) -> None:
    replay = load_replay(trace_file)
    names = {r["gobj"] for r in records(trace_file) if "gobj" in r}
    assert {n["name"] for n in replay.nodes} == names
    seen: set[int] = set()
    for node in replay.nodes:
        assert node["parent"] is None or node["parent"] in seen
        seen.add(node["id"])
    by_name = {n["name"]: n for n in replay.nodes}
    # The diagram key of a gclass loaded once under its name (fsmio inspect --module
    # MODULE loads more); the bare name when none or several are (see below).
    connex = [n for n in replay.nodes if n["gclass"] == "GConnex"]
    assert connex and {n["gclass_key"] for n in connex} == {"fsmio.gobjs.c_connex.GConnex"}
    assert by_name["echo_demo.echo.server"]["parent"] == by_name["echo_demo.echo"]["id"]
    assert replay.app == "echo_demo"


def test_bad_lines_are_reported_and_skipped(tmp_path: Path, trace_file: Path) -> None:
    path = tmp_path / "cut.jsonl"
    lines = trace_file.read_text().splitlines()
    path.write_text("\n".join([*lines[:10], "{not json", '["x"]', lines[10][:20], *lines[11:]]))
    replay = load_replay(path)
    assert len(replay.errors) == 3
    assert "cut.jsonl:11: not a JSON object" in replay.errors[0]
    assert "not a trace record" in replay.errors[1]
    assert replay.events
    with pytest.raises(TraceError, match="not found"):
        load_replay(tmp_path / "missing.jsonl")
    errors: list[str] = []
    assert list(read_trace(path, errors)) and len(errors) == 3


def test_find_gclass_by_key_or_unambiguous_name() -> None:
    from fsmio.gobjs.c_sock import GSock

    assert find_gclass("fsmio.gobjs.c_sock.GSock") is GSock
    assert find_gclass("GSock") is GSock
    assert find_gclass("NoSuchGClass") is None

    def twin() -> type[GObj]:
        class Twin(GObj):
            pass

        return Twin

    twins = twin(), twin()
    assert find_gclass("Twin") is None  # two gclasses of that name: which one?
    assert all(issubclass(t, GObj) for t in twins)


@pytest.fixture
def replaying(trace_file: Path) -> Iterator[str]:
    gaplic = GAplic("replay")
    inspector = gaplic.create_gobj(
        "inspector", GInspector, gaplic, port=0, replay=load_replay(trace_file)
    )
    worker = GAplicThreadWorker(gaplic)
    worker.start()
    try:
        yield inspector.url
    finally:
        worker.stop(10)
        gaplic.close()


def test_the_replay_is_served_hello_tree_then_the_whole_history(
    replaying: str, trace_file: Path
) -> None:
    replay = load_replay(trace_file)
    with open_feed(replaying) as feed:
        hello = feed.recv()
        assert hello["mode"] == "replay" and hello["app"] == "echo_demo"
        assert hello["control"] is False
        tree = feed.recv()
        assert tree["type"] == "tree" and tree["nodes"] == replay.nodes
        history = feed.recv()
        assert history["type"] == "history" and history["complete"] is True
        assert history["items"] == replay.events
        # Nothing live follows; asking again gives the same history; control is refused.
        assert [m["type"] for m in feed.collect(0.5)] == []
        feed.send({"type": "history"})
        assert feed.of_type("history")["items"] == replay.events
        feed.send({"type": "auth", "token": "x"})
        assert feed.of_type("auth")["ok"] is False
