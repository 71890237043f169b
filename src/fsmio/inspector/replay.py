"""Reading a JSONL trace file (``fsmio run --trace-file``) as the inspector's events.

``read_trace`` yields the file's records (moved here from ``fsmio.tools.trace``, which
uses it for ``fsmio trace``); ``load_replay`` turns them into what ``fsmio inspect
TRACE.jsonl`` serves: the gobjs seen (tree nodes) and one ``EV`` per transition.

A transition is written as up to three records of one gobj at one depth: ``->`` (it
starts: state, event, action, the table's next state), ``-`` (the state changed) and
``<-`` (the action returned: ``ret: ...`` or ``raised: ...`` in the message).  Nested
sends are records of a greater depth between a ``->`` and its ``<-``, so a stack pairs
them.  A ``!`` record (an event not accepted) is an event with ``error`` set.  The
``EV.seq`` is the order of the ``->`` records (outer before inner, as live), ``t`` the
time of the ``->`` record, ``src`` is unknown (null) in a trace file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsmio.core.gobj import GObj

from .feed import MAX_REPR

__all__ = ["Replay", "TraceError", "find_gclass", "gclass_key", "load_replay", "read_trace"]

_RET = re.compile(r"(ret|raised): (.*)$", re.S)


class TraceError(ValueError):
    """A trace file that cannot be read at all (missing, unreadable)."""


def read_trace(path: str | Path, errors: list[str]) -> Iterator[dict[str, Any]]:
    """The records of a trace file; bad lines are described in ``errors`` and skipped."""
    file = Path(path)
    try:
        stream = file.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise TraceError(f"trace file not found: {str(file)!r}") from None
    except OSError as exc:
        raise TraceError(f"cannot read trace file {str(file)!r}: {exc.strerror}") from None
    with stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                errors.append(f"{file}:{number}: not a JSON object ({msg})")
                continue
            if not isinstance(record, dict) or "phase" not in record:
                errors.append(f"{file}:{number}: not a trace record (no 'phase')")
                continue
            yield record


def gclass_key(gclass: type) -> str:
    """The key a gclass's diagram is served under (``/diagram/<key>.svg``)."""
    return f"{gclass.__module__}.{gclass.__qualname__}"


def find_gclass(name: str) -> type[GObj] | None:
    """The loaded GObj subclass whose key or bare name is ``name`` (None: none, or the
    bare name is ambiguous)."""
    found: list[type[GObj]] = []
    todo: list[type[GObj]] = [GObj]
    seen: set[type[GObj]] = set()
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub in seen:
                continue
            seen.add(sub)
            todo.append(sub)
            if gclass_key(sub) == name:
                return sub
            if sub.__name__ == name:
                found.append(sub)
    return found[0] if len(found) == 1 else None


@dataclass
class Replay:
    """What a trace file holds, as the inspector's tree nodes and events."""

    path: str
    nodes: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    app: str = ""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _cut(text: str) -> str:
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


def load_replay(path: str | Path) -> Replay:
    """Read ``path`` (a JSONL trace file) into a ``Replay``; ``TraceError`` if it cannot
    be read, bad lines listed in ``errors``."""
    replay = Replay(str(path))
    ids: dict[str, int] = {}
    nodes: dict[str, dict[str, Any]] = {}
    stack: list[dict[str, Any]] = []
    seq = 0

    def node_of(gobj: str, gclass: str | None, state: str | None) -> int:
        ident = ids.get(gobj)
        if ident is None:
            ident = ids[gobj] = len(ids) + 1
            cls = find_gclass(gclass) if gclass else None
            nodes[gobj] = {
                "id": ident,
                "parent": None,
                "name": gobj,
                "gclass": gclass or "?",
                "gclass_key": gclass_key(cls) if cls is not None else (gclass or "?"),
                "state": state,
                "unique": False,
            }
        return ident

    for record in read_trace(path, replay.errors):
        phase = record.get("phase")
        gobj = _text(record.get("gobj"))
        if gobj is None or phase not in ("->", "-", "<-", "!"):
            continue  # remote-* records and others: not a dispatch
        gclass = _text(record.get("gclass"))
        state = _text(record.get("state"))
        event = _text(record.get("event")) or "?"
        depth = record.get("depth")
        depth = depth if isinstance(depth, int) and not isinstance(depth, bool) else 0
        ts = record.get("ts")
        t = float(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else 0.0
        if phase in ("->", "!"):
            dst = node_of(gobj, gclass, state)
            seq += 1
            ev: dict[str, Any] = {
                "seq": seq,
                "t": t,
                "depth": depth,
                "src": None,
                "src_name": None,
                "dst": dst,
                "dst_name": gobj,
                "gclass": gclass or "?",
                "event": event,
                "state": state,
                "next_state": _text(record.get("next_state")) or state,
                "ret": "",
                "error": None,
            }
            replay.events.append(ev)
            if phase == "!":
                ev["error"] = "not accepted"
                ev["ret"] = "EventNotAcceptedError"
            else:
                stack.append(ev)
            continue
        # "-" and "<-": the innermost open transition of this gobj.
        while stack and stack[-1]["depth"] > depth:
            stack.pop()  # a record lost (a file cut short inside a nested send)
        if not stack or stack[-1]["dst_name"] != gobj:
            continue
        top = stack[-1]
        if phase == "-":
            top["next_state"] = _text(record.get("next_state")) or top["next_state"]
            continue
        stack.pop()
        found = _RET.search(str(record.get("message", "")))
        if found is not None:
            if found.group(1) == "ret":
                top["ret"] = _cut(found.group(2))
            else:
                top["error"] = _cut(found.group(2))
    # Parents: the nearest dotted prefix that is a gobj of the file.
    for path_name, node in nodes.items():
        prefix = path_name
        while "." in prefix:
            prefix = prefix.rpartition(".")[0]
            if prefix in nodes:
                node["parent"] = nodes[prefix]["id"]
                break
    ordered = sorted(nodes.values(), key=_depth_then_id)
    replay.nodes = ordered
    roots = [n["name"] for n in ordered if n["parent"] is None]
    replay.app = roots[0].partition(".")[0] if roots else ""
    return replay


def _depth_then_id(node: dict[str, Any]) -> tuple[int, int]:
    return (str(node["name"]).count("."), int(node["id"]))
