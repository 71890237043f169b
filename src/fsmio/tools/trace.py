"""``fsmio trace FILE``: print a trace file back as the indented machine trace.

``fsmio run --trace-file FILE`` writes one JSON object per machine-trace record::

    {"ts": 1732456789.123456, "seq": 0, "phase": "->", "gclass": "GTimer",
     "gobj": "demo.ticker.timer", "state": "ST_IDLE", "event": "EV_SET_TIMER",
     "action": "ac_set_timer", "next_state": "ST_IDLE", "depth": 0,
     "level": "INFO", "message": "-> mach: (...), st: ST_IDLE, ev: (EV_SET_TIMER), ..."}

``phase`` is ``->`` (a transition starts), ``-`` (the state changed), ``<-`` (the action
returned; the message holds ``ret:`` or ``raised:``) or ``!`` (an event not accepted).
``depth`` is the nesting of synchronous sends; this command indents by it, as ginsfsm did::

    14:03:09.123 -> mach: (GTimer:demo.ticker.timer), st: ST_IDLE, ev: (EV_TIMER_EXPIRED), ...
    14:03:09.123   -> mach: (Ticker:demo.ticker), st: ST_RUNNING, ev: (EV_TIMEOUT), ...

Filters (each repeatable; records must match every kind of filter given): ``--gobj``
(the gobj's dotted path, its last name, or a glob on the path such as ``'demo.echo.*'``),
``--event``, ``--state`` (the state before the transition).  Each record is filtered on
its own fields, and the ``->``, ``-`` and ``<-`` records of one transition carry the same
fields, so a transition is shown whole or not at all.

A line that is not a JSON object (a file cut short by a crash, say) is reported on
standard error with its line number and skipped; the exit code is then 1.
"""

from __future__ import annotations

import fnmatch
import re
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from fsmio.inspector.replay import TraceError
from fsmio.inspector.replay import read_trace as _read_trace

from . import EXIT_FAILURE, ToolError

__all__ = ["format_record", "matches", "print_trace", "read_trace"]

_RET = re.compile(r"(?:ret|raised): .*$")


def read_trace(path: str | Path, errors: list[str]) -> Iterator[dict[str, Any]]:
    """The records of a trace file; bad lines are described in ``errors`` and skipped
    (``fsmio.inspector.replay.read_trace``, with a missing file as a ``ToolError``)."""
    try:
        yield from _read_trace(path, errors)
    except TraceError as exc:
        raise ToolError(str(exc)) from None


def _gobj_matches(path: str, patterns: Iterable[str]) -> bool:
    last = path.rpartition(".")[2]
    return any(
        pattern in (path, last) or fnmatch.fnmatchcase(path, pattern) for pattern in patterns
    )


def matches(record: dict[str, Any], gobjs: list[str], events: list[str], states: list[str]) -> bool:
    """Whether ``record`` passes the filters (an empty filter passes everything)."""
    if gobjs and not _gobj_matches(str(record.get("gobj", "")), gobjs):
        return False
    if events and record.get("event") not in events:
        return False
    return not (states and record.get("state") not in states)


def format_record(record: dict[str, Any], show_time: bool = True) -> str:
    """One record as ginsfsm's trace line, indented by its depth."""
    depth = record.get("depth")
    indent = "  " * depth if isinstance(depth, int) and depth > 0 else ""
    who = f"{record.get('gclass')}:{record.get('gobj')}"
    phase = record.get("phase")
    message = str(record.get("message", ""))
    if phase == "->":
        text = (
            f"-> mach: ({who}), st: {record.get('state')}, ev: ({record.get('event')}), "
            f"ac: {record.get('action')}()"
        )
    elif phase == "-":
        text = f" - mach: ({who}), new_st: {record.get('next_state')}"
    elif phase == "<-":
        found = _RET.search(message)
        state = record.get("next_state") or record.get("state")
        text = f"<- mach: ({who}), st: {state}" + (f", {found.group(0)}" if found else "")
    elif isinstance(phase, str) and phase.startswith("remote-"):
        text = f"~> {phase}: ({who}), subject: {record.get('subject')}, ev: {record.get('event')}"
    else:
        text = f"<> mach: ({who}), st: {record.get('state')}, ev: {record.get('event')}"
        if "NOT ACCEPTED" in message:
            text += " (" + message[message.index("NOT ACCEPTED") :].rstrip(")") + ")"
    stamp = ""
    if show_time and isinstance(record.get("ts"), (int, float)):
        ts = float(record["ts"])
        stamp = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) + f".{int(ts % 1 * 1000):03d} "
        )
    return f"{stamp}{indent}{text}"


def print_trace(
    path: str | Path,
    *,
    gobjs: list[str] | None = None,
    events: list[str] | None = None,
    states: list[str] | None = None,
    show_time: bool = True,
    out: TextIO | None = None,
) -> int:
    """``fsmio trace``: print the (filtered) records of ``path``; return the exit code."""
    stream = out or sys.stdout
    errors: list[str] = []
    for record in read_trace(path, errors):
        if matches(record, gobjs or [], events or [], states or []):
            print(format_record(record, show_time), file=stream)
    for error in errors:
        print(f"fsmio trace: warning: {error}", file=sys.stderr)
    return EXIT_FAILURE if errors else 0
