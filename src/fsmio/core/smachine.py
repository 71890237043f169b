"""``SMachine``: the table-driven finite-state machine every gobj is.

Theory of operation
-------------------
An FSM is declared as the ginsfsm "simple-machine" dict::

    FSM = {
        'event_list': ('EV_CONNECT: top input', 'EV_RX_DATA: top output', ...),
        'state_list': ('ST_IDLE', 'ST_WAIT'),          # the first one is the initial state
        'machine': {
            'ST_IDLE': (('EV_CONNECT', ac_connect, 'ST_WAIT'), ...),
            'ST_WAIT': (...),
        },
    }

``compile_fsm`` validates the dict once — every problem is collected and reported in one
``MachineError`` — and compiles it into one dict per state, ``{event_name: row}``, where a
row is ``(action, next_state_table)`` (``None`` when the row does not change the state).
The compiled form is cached per FSM dict, so all the gobjs of a gclass share it.  A machine
holds only its current state's table: ``inject_event`` is one dict lookup, an optional
state switch (one attribute store) and the action call, and the state's *name* is found
from the table when asked for (``get_current_state``, traces, errors).  The next state is
set *before* the action runs, as in ginsfsm: the action sees the new state.

Tracing costs one flag test per event when off: the module flag ``_trace_any`` is true
only while the class-wide ``SMachine.global_trace_mach`` is on, some machine has its own
``trace_mach`` on, or a dispatch observer is installed; then each event checks its
machine's level.  When on, the traced path logs the documented ``-> mach:`` / `` - mach:``
/ ``<- mach:`` lines with structured ``extra`` fields.

Dispatch observers (``add_dispatch_observer``; the live inspector is one) see every
dispatch through that same traced path, so a program with none installed pays nothing
more than the flag test.  Each observer is called once the action has returned or raised,
with a sequence number taken *before* the action ran: sorting by it gives the events in
the order they started (outer before the inner sends its action made).

Synchronous sends nest (an action sends an event whose action sends an event...).  The
nesting depth is counted in a ``DispatchContext`` shared by the gobjs of one GAplic: it
indents the trace, and a depth over ``MAX_SEND_DEPTH`` raises ``SendDepthError`` instead of
letting an event cycle end in a ``RecursionError`` deep inside unrelated code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, cast

from .errors import EventError, EventNotAcceptedError, MachineError, SendDepthError, StateError
from .event import Event, new_event

__all__ = [
    "EMPTY_FSM",
    "MAX_SEND_DEPTH",
    "CompiledFSM",
    "DispatchContext",
    "SMachine",
    "add_dispatch_observer",
    "compile_fsm",
    "filter_event_attrs",
    "remove_dispatch_observer",
]

Action = Callable[[Any, Event], Any]
Row = tuple[Action | None, str | None, dict[str, Any] | None]
#: A compiled row: the action and the next state's table (None: the state does not change).
FastRow = tuple[Action | None, dict[str, Any] | None]

EMPTY_FSM: Final[dict[str, Any]] = {"event_list": (), "state_list": (), "machine": {}}

#: Deepest nesting of synchronous ``send_event`` calls before ``SendDepthError``.
#: Low enough that a cycle whose actions go through several helper calls per send still
#: stops here, well inside the default recursion limit of 1000 frames (catalogue G4).
MAX_SEND_DEPTH: Final = 64

_LOG = logging.getLogger("fsmio")
_WORDS = re.compile(r"[\s,.]+")
_FSM_KEYS = ("event_list", "state_list", "machine")

# Class-wide machine trace level (``SMachine.global_trace_mach``).
_global_trace_mach = 0
# How many machines have their own trace_mach on.
_traced_machines = 0
# The installed dispatch observers (see the module doc); a tuple, so that an observer
# removed while a dispatch is being reported does not disturb the loop over them.
_observers: tuple[DispatchObserver, ...] = ()
# Pre-order number of the dispatches seen while observers are installed.
_dispatch_seq = 0
# True while any trace can be on: the one flag the hot path tests (one LOAD_GLOBAL).
_trace_any = False

#: ``observer(seq, depth, machine, event, state, next_state, ret, exc)``: ``state`` is the
#: state the event arrived in, ``next_state`` the one its row switches to (``state`` when
#: the row does not switch), ``ret`` the action's value and ``exc`` what it raised (or None).
DispatchObserver = Callable[[int, int, Any, Event, Any, Any, Any, "BaseException | None"], None]


def _update_trace_any() -> None:
    global _trace_any
    _trace_any = bool(_global_trace_mach) or _traced_machines > 0 or bool(_observers)


def add_dispatch_observer(observer: DispatchObserver) -> None:
    """Call ``observer`` after every event dispatched to any machine of this process.

    For tools that watch a running program (the inspector).  An observer must be quick
    and must not send events; one that raises is removed and its error logged, so that
    a faulty observer cannot break the program it watches.
    """
    global _observers
    if observer not in _observers:
        _observers = (*_observers, observer)
        _update_trace_any()


def remove_dispatch_observer(observer: DispatchObserver) -> None:
    """Stop calling ``observer``; removing one that is not installed does nothing."""
    global _observers
    if observer in _observers:
        # == (not is): a bound method is a new object at each access, but equal.
        _observers = tuple(o for o in _observers if o != observer)
        _update_trace_any()


def _notify_observers(
    seq: int,
    depth: int,
    machine: Any,
    event: Event,
    state: Any,
    next_state: Any,
    ret: Any,
    exc: BaseException | None,
) -> None:
    for observer in _observers:
        try:
            observer(seq, depth, machine, event, state, next_state, ret, exc)
        except Exception:
            _LOG.exception("dispatch observer %r raised; it is removed", observer)
            remove_dispatch_observer(observer)


class DispatchContext:
    """The nesting depth of synchronous dispatch, shared by the gobjs of one GAplic."""

    __slots__ = ("depth",)

    def __init__(self) -> None:
        self.depth = 0


_DEFAULT_CONTEXT = DispatchContext()


class CompiledFSM:
    """An FSM dict, validated and compiled. Shared by every gobj of a gclass; read-only."""

    __slots__ = (
        "event_attrs",
        "event_list",
        "fsm",
        "initial_state",
        "input_events",
        "input_set",
        "output_events",
        "output_set",
        "rows",
        "state_list",
        "table_state",
        "tables",
        "transitions",
    )

    def __init__(
        self,
        fsm: Mapping[str, Any],
        event_list: tuple[str, ...],
        event_attrs: dict[str, tuple[frozenset[str], ...]],
        state_list: tuple[str, ...],
        rows: tuple[tuple[str, str, Action | None, str | None], ...],
    ) -> None:
        self.fsm = fsm
        self.event_list = event_list
        self.event_attrs = event_attrs
        self.output_events = tuple(
            ev for ev in event_list if any("output" in g for g in event_attrs[ev])
        )
        self.output_set = frozenset(self.output_events)
        self.state_list = state_list
        self.initial_state: str | None = state_list[0] if state_list else None
        self.rows = rows
        used = {ev for _, ev, _, _ in rows}
        self.input_events = tuple(ev for ev in event_list if ev in used)
        self.input_set = frozenset(self.input_events)
        self.transitions: dict[str, dict[str, Row]] = {st: {} for st in state_list}
        for state, ev, action, next_state in rows:
            next_table = self.transitions[next_state] if next_state is not None else None
            self.transitions[state][ev] = (action, next_state, next_table)
        # What inject_event runs on: per state, {event: (action, next state's table)}.
        self.tables: dict[str, dict[str, FastRow]] = {st: {} for st in state_list}
        for state, ev, action, next_state in rows:
            next_fast = self.tables[next_state] if next_state is not None else None
            self.tables[state][ev] = (action, next_fast)
        # The state whose table it is, by id (the tables live as long as this object).
        self.table_state: dict[int, str] = {id(t): st for st, t in self.tables.items()}

    def state_of(self, table: dict[str, FastRow] | None) -> str | None:
        """The name of the state whose compiled table ``table`` is (None if none)."""
        return None if table is None else self.table_state.get(id(table))

    def events_with(self, *words: str) -> list[str]:
        """Events having one annotation group that contains every word given."""
        wanted = set(words)
        return [ev for ev in self.event_list if any(wanted <= g for g in self.event_attrs[ev])]

    def annotated_states(self, event_name: str, *words: str) -> list[str]:
        """State names written in the annotation group of ``event_name`` holding ``words``."""
        wanted = set(words)
        states = set(self.state_list)
        found: list[str] = []
        for group in self.event_attrs.get(event_name, ()):
            if wanted <= group:
                found.extend(w for w in sorted(group) if w in states and w not in found)
        return found


# Compiled FSMs by ``id(fsm)``.  The value keeps the dict alive, so an id is never reused
# for another dict while its entry exists.
_compiled: dict[int, CompiledFSM] = {}


def compile_fsm(fsm: Any) -> CompiledFSM:
    """Validate an FSM dict and compile it (once per dict object).

    Raises ``MachineError`` listing every problem found.
    """
    cached = _compiled.get(id(fsm))
    if cached is not None and cached.fsm is fsm:
        return cached
    compiled = _validate_and_compile(fsm)
    _compiled[id(fsm)] = compiled
    return compiled


def filter_event_attrs(event_list: Iterable[str]) -> list[str]:
    """The event names of an ``event_list``, without their ``:`` annotations (ginsfsm's
    helper): ``['EV_X: top input', 'EV_Y']`` -> ``['EV_X', 'EV_Y']``."""
    return [entry.split(":")[0] for entry in event_list]


def _parse_event_decl(entry: str) -> tuple[str, tuple[frozenset[str], ...]]:
    name, *groups = entry.split(":")
    return name.strip(), tuple(frozenset(w for w in _WORDS.split(g) if w) for g in groups)


def _validate_and_compile(fsm: Any) -> CompiledFSM:
    if not isinstance(fsm, Mapping):
        raise MachineError(f"the FSM must be a dict, not {type(fsm).__name__}")
    problems: list[str] = []
    problems.extend(f"unknown FSM key {key!r}" for key in fsm if key not in _FSM_KEYS)

    raw_events = fsm.get("event_list", ())
    raw_states = fsm.get("state_list", ())
    machine = fsm.get("machine", {})
    if not isinstance(raw_events, (list, tuple)):
        problems.append(f"'event_list' must be a tuple or list, not {type(raw_events).__name__}")
        raw_events = ()
    if not isinstance(raw_states, (list, tuple)):
        problems.append(f"'state_list' must be a tuple or list, not {type(raw_states).__name__}")
        raw_states = ()
    if not isinstance(machine, Mapping):
        problems.append(f"'machine' must be a dict, not {type(machine).__name__}")
        machine = {}

    event_list: list[str] = []
    event_attrs: dict[str, tuple[frozenset[str], ...]] = {}
    for entry in raw_events:
        if not isinstance(entry, str) or not entry.split(":")[0].strip():
            problems.append(f"event_list: {entry!r} is not an event name")
            continue
        name, groups = _parse_event_decl(entry)
        if name in event_attrs:
            problems.append(f"event_list OVERFILLED: {name!r} is declared twice")
            continue
        event_list.append(name)
        event_attrs[name] = groups

    state_list: list[str] = []
    for state in raw_states:
        if not isinstance(state, str) or not state:
            problems.append(f"state_list: {state!r} is not a state name")
        elif state in state_list:
            problems.append(f"state_list OVERFILLED: {state!r} is listed twice")
        else:
            state_list.append(state)
    known_states = set(state_list)
    problems.extend(
        f"state {state!r} is in state_list but has no entry in 'machine'"
        for state in state_list
        if state not in machine
    )

    rows: list[tuple[str, str, Action | None, str | None]] = []
    seen_pairs: set[tuple[str, str]] = set()
    used_events: set[str] = set()
    for state, state_rows in machine.items():
        if state not in known_states:
            problems.append(f"machine: state {state!r} is not in state_list")
            continue
        if not isinstance(state_rows, (list, tuple)):
            problems.append(f"machine[{state!r}] must be a tuple of rows")
            continue
        for row in state_rows:
            if not isinstance(row, (list, tuple)) or len(row) != 3:
                problems.append(
                    f"machine[{state!r}]: row {row!r} is not (event, action, next_state)"
                )
                continue
            ev, action, next_state = row
            if not isinstance(ev, str) or ev not in event_attrs:
                problems.append(f"machine[{state!r}]: event {ev!r} is not in event_list")
                continue
            used_events.add(ev)
            if action is not None and not callable(action):
                problems.append(
                    f"machine[{state!r}][{ev!r}]: action {action!r} is neither None nor callable"
                )
            if next_state is not None and next_state not in known_states:
                problems.append(
                    f"machine[{state!r}][{ev!r}]: next state {next_state!r} is not in state_list"
                )
            if (state, ev) in seen_pairs:
                problems.append(f"machine[{state!r}]: event {ev!r} has more than one row")
            seen_pairs.add((state, ev))
            rows.append((state, ev, action, next_state))

    for ev in event_list:
        is_output = any("output" in group for group in event_attrs[ev])
        if ev not in used_events and not is_output:
            problems.append(
                f"event_list: {ev!r} is neither used in 'machine' nor declared 'output'"
            )
    if problems:
        raise MachineError(
            f"invalid FSM ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n  - "
            + "\n  - ".join(problems)
        )
    return CompiledFSM(fsm, tuple(event_list), event_attrs, tuple(state_list), tuple(rows))


def _action_name(action: Action | None) -> str:
    return getattr(action, "__name__", None) or repr(action)


def _annotate_exception(exc: BaseException, machine: MachineCore, state: Any, event: Event) -> None:
    """Record, once (at the innermost action), where an exception was raised."""
    if getattr(exc, "__fsmio_where__", None) is None:
        where = f"{machine!r}, state {state}, event {event.event_name}"
        try:
            exc.__fsmio_where__ = where  # type: ignore[attr-defined]
        except AttributeError:  # pragma: no cover - exceptions with __slots__ only
            return
        exc.add_note(f"fsmio: raised in the action of {where}")


def exception_where(exc: BaseException) -> str | None:
    """The gobj, state and event whose action raised ``exc``, if it came from one."""
    where = getattr(exc, "__fsmio_where__", None)
    return where if isinstance(where, str) else None


def inject_event(self: MachineCore, event: Event | str) -> Any:
    """Run the transition for ``event`` in the current state; return the action's value.

    ``event`` is an ``Event`` (or any object with a str ``event_name``) or an event
    name.  An unknown event, or one the current state has no row for, is not an error
    of the program's flow: ginsfsm logs a warning and *returns* the class
    ``EventNotAcceptedError`` (with ``strict_events`` on, it is raised).

    ``MachineCore.inject_event`` *is* this function (a method like any other); it is
    written at module level so that the compiled dispatch (``send_event``,
    ``broadcast_event``) calls it at C level (docs/compiled.md).
    """
    table = self._table
    try:
        row = table[event.event_name]  # type: ignore[union-attr]
    except (KeyError, AttributeError, TypeError):
        # A str, something that is not an event, or an event this state has no row
        # for: the slow path sorts them out.
        return self._inject_slow(event)
    # From here ``event`` is an Event (a str has no event_name): the ignores below are for
    # that narrowing, which mypy cannot follow through the except clause.
    if _trace_any and (cast("SMachine", self)._trace_mach or _global_trace_mach or _observers):
        return self._inject_traced(event, row)  # type: ignore[arg-type]
    ctx = self._ctx
    depth = ctx.depth
    if depth >= MAX_SEND_DEPTH:
        raise self._depth_error(event)  # type: ignore[arg-type]
    action, next_table = row
    if next_table is not None:
        self._table = next_table
    if action is None:
        return None
    ctx.depth = depth + 1
    try:
        return action(self, event)  # type: ignore[arg-type]
    except Exception as exc:
        _annotate_exception(exc, self, self._fsm.state_of(table), event)  # type: ignore[arg-type]
        raise
    finally:
        ctx.depth = depth


class MachineCore:
    """What every machine holds, and the dispatch: the compiled FSM, the current state's
    table, the dispatch context, and ``inject_event`` with its slow and traced paths.

    ``SMachine``'s base, a class of its own so that the compiled build can make it an
    extension type with typed fields (``smachine.pxd``, docs/compiled.md) while
    ``SMachine``, ``GObj`` and every gclass stay Python classes, with a ``__dict__`` for
    everything else a program stores.  Not for direct use.
    """

    __slots__ = ("_ctx", "_fsm", "_table")

    def __init__(self, fsm: Mapping[str, Any]) -> None:
        compiled = compile_fsm(fsm)
        self._ctx: DispatchContext = _DEFAULT_CONTEXT
        self._fsm: CompiledFSM = compiled
        initial = compiled.initial_state
        # The current state *is* its compiled table (see the module doc).
        self._table: dict[str, FastRow] = compiled.tables[initial] if initial is not None else {}

    @property
    def _state(self) -> str | None:
        """The current state's name (read from the current table)."""
        return self._fsm.table_state.get(id(self._table))

    # ------------------------------------------------------------------------------------
    #   Dispatch
    # ------------------------------------------------------------------------------------
    #: ``machine.inject_event(event)``: run the transition for ``event`` (see the function).
    inject_event = inject_event

    def _inject_slow(self, event: Any) -> Any:
        if type(event) is str:
            event = new_event(self, event, [], {})
        elif not isinstance(getattr(event, "event_name", None), str):
            raise EventError(f"an event must be a str or an Event, not {event!r}")
        row = self._table.get(event.event_name)
        if row is None:
            return self._event_not_accepted(event)
        return self.inject_event(event)

    def _inject_traced(self, event: Event, row: FastRow) -> Any:
        """The dispatch with the trace lines (when this machine is traced) and the
        dispatch observers (when any is installed)."""
        global _dispatch_seq
        machine = cast("SMachine", self)  # its class attributes: name, logger, levels
        ctx = self._ctx
        depth = ctx.depth + 1
        if depth > MAX_SEND_DEPTH:
            raise self._depth_error(event)
        action, next_table = row
        state = self._state
        next_state = self._fsm.state_of(next_table) if next_table is not None else state
        seq = 0
        if _observers:
            _dispatch_seq += 1
            seq = _dispatch_seq
        level = max(machine._trace_mach, _global_trace_mach)
        log = (machine.logger or _LOG) if level else None
        indent = "  " * ctx.depth
        fields: dict[str, Any] = {}
        if log is not None:
            fields = {
                "fsm_gclass": type(self).__name__,
                "fsm_gobj": str(self),
                "fsm_state": state,
                "fsm_event": event.event_name,
                "fsm_action": _action_name(action) if action is not None else None,
                "fsm_next_state": self._fsm.state_of(next_table),
                "fsm_depth": ctx.depth,
            }
            ev_text = f"{event.event_name}, {event.kw!r}" if level > 1 else event.event_name
            log.info(
                "%s-> mach: (%r), st: %s, ev: (%s), ac: %s()",
                indent,
                self,
                state,
                ev_text,
                fields["fsm_action"],
                extra={**fields, "fsm_phase": "->"},
            )
        if next_table is not None:
            self._table = next_table
            if log is not None and next_state != state:
                log.info(
                    "%s - mach: (%r), new_st: %s",
                    indent,
                    self,
                    next_state,
                    extra={**fields, "fsm_phase": "-"},
                )
        ret = None
        if action is not None:
            ctx.depth = depth
            try:
                ret = action(self, event)
            except Exception as exc:
                _annotate_exception(exc, self, state, event)
                if log is not None:
                    log.info(
                        "%s<- mach: (%r), st: %s, raised: %r",
                        indent,
                        self,
                        self._state,
                        exc,
                        extra={**fields, "fsm_phase": "<-"},
                    )
                if seq:
                    _notify_observers(seq, depth - 1, self, event, state, next_state, None, exc)
                raise
            finally:
                ctx.depth = depth - 1
        if log is not None:
            log.info(
                "%s<- mach: (%r), st: %s, ret: %r",
                indent,
                self,
                self._state,
                ret,
                extra={**fields, "fsm_phase": "<-"},
            )
        if seq:
            _notify_observers(seq, depth - 1, self, event, state, next_state, ret, None)
        return ret

    def _event_not_accepted(self, event: Event) -> Any:
        why = (
            "NOT ACCEPTED, no match action"
            if event.event_name in self._fsm.event_attrs
            else "NOT ACCEPTED by UNKNOWN"
        )
        message = f"mach: ({self!r}), st: {self._state}, ev: {event.event_name} ({why})"
        machine = cast("SMachine", self)
        if machine.strict_events:
            raise EventNotAcceptedError(message)
        (machine.logger or _LOG).warning(
            "%s",
            message,
            extra={
                "fsm_gclass": type(self).__name__,
                "fsm_gobj": str(self),
                "fsm_state": self._state,
                "fsm_event": event.event_name,
                "fsm_phase": "!",
            },
        )
        return EventNotAcceptedError

    def _depth_error(self, event: Event) -> SendDepthError:
        return SendDepthError(
            f"send_event nested deeper than {MAX_SEND_DEPTH} at {self!r}, "
            f"state {self._state}, event {event.event_name}: an event cycle? "
            "Break it with post_event."
        )


class SMachine(MachineCore):
    """A finite-state machine built from a ginsfsm FSM dict.

    ``SMachine(fsm)`` validates and compiles ``fsm`` (once per dict object) and starts in
    the first state of ``state_list``.  ``inject_event`` runs one transition.
    """

    #: The machine's name (a GObj's name overrides it).
    name: str = ""
    #: Logger for traces and warnings; ``None`` means the ``fsmio`` logger.
    logger: logging.Logger | None = None
    #: Raise ``EventNotAcceptedError`` instead of returning it.
    strict_events: bool = False

    # This machine's own trace level: a class default until it is set (8 bytes less in
    # every machine).
    _trace_mach: int = 0

    # ------------------------------------------------------------------------------------
    #   States
    # ------------------------------------------------------------------------------------
    def get_current_state(self) -> str | None:
        """The current state's name, or None for an FSM without states."""
        return self._state

    def set_new_state(self, new_state: str) -> None:
        """Go to ``new_state`` (a state name); ``StateError`` if the FSM has no such state."""
        table = self._fsm.tables.get(new_state) if isinstance(new_state, str) else None
        if table is None:
            raise StateError(
                f"{self!r}: unknown state {new_state!r}; states are {list(self._fsm.state_list)}"
            )
        self._table = table

    def _set_new_state(self, state_id: int) -> None:
        """Go to the state with 1-based index ``state_id`` (ginsfsm's internal form)."""
        states = self._fsm.state_list
        if not isinstance(state_id, int) or not 1 <= state_id <= len(states):
            raise StateError(f"{self!r}: no state with index {state_id!r}")
        self.set_new_state(states[state_id - 1])

    # ------------------------------------------------------------------------------------
    #   Introspection (diagrams, tools)
    # ------------------------------------------------------------------------------------
    def get_event_list(self) -> list[str]:
        """Every declared event name (input and output), in declaration order."""
        return list(self._fsm.event_list)

    def get_output_event_list(self) -> list[str]:
        """The events declared ``output``, in declaration order."""
        return list(self._fsm.output_events)

    def get_state_list(self) -> list[str]:
        """The state names, the initial one first."""
        return list(self._fsm.state_list)

    def get_top_input_events(self) -> list[str]:
        return self._fsm.events_with("top", "input")

    def get_top_output_events(self) -> list[str]:
        return self._fsm.events_with("top", "output")

    def get_bottom_input_events(self) -> list[str]:
        return self._fsm.events_with("bottom", "input")

    def get_bottom_output_events(self) -> list[str]:
        return self._fsm.events_with("bottom", "output")

    def get_top_output_event_states(self, event_name: str) -> list[str]:
        """States named in the ``top output`` annotation of ``event_name``."""
        return self._fsm.annotated_states(event_name, "top", "output")

    def get_bottom_output_event_states(self, event_name: str) -> list[str]:
        """States named in the ``bottom output`` annotation of ``event_name``."""
        return self._fsm.annotated_states(event_name, "bottom", "output")

    @property
    def _event_list(self) -> tuple[str, ...]:
        return self._fsm.event_list

    @property
    def _state_list(self) -> tuple[str, ...]:
        return self._fsm.state_list

    @property
    def _output_set(self) -> frozenset[str]:
        return self._fsm.output_set

    @property
    def _event_attrs(self) -> dict[str, tuple[frozenset[str], ...]]:
        return self._fsm.event_attrs

    @property
    def _event_index(self) -> dict[str, int]:
        return {"": 0, **{ev: i for i, ev in enumerate(self._fsm.event_list, 1)}}

    @property
    def _state_index(self) -> dict[str, int]:
        return {"": 0, **{st: i for i, st in enumerate(self._fsm.state_list, 1)}}

    # ------------------------------------------------------------------------------------
    #   Tracing
    # ------------------------------------------------------------------------------------
    @property
    def trace_mach(self) -> int:
        """Machine trace level of this machine OR-ed with the global one (>1 adds kw)."""
        return max(self._trace_mach, _global_trace_mach)

    @trace_mach.setter
    def trace_mach(self, value: Any) -> None:
        global _traced_machines
        level = int(value) if value else 0
        if bool(level) != bool(self._trace_mach):
            (self.logger or _LOG).info("* %r: trace_mach %s", self, "ON" if level else "OFF")
            _traced_machines += 1 if level else -1
            _update_trace_any()
        if level != self._trace_mach:
            self._trace_mach = level

    def _forget_trace(self) -> None:
        """Drop this machine's own trace level silently (it is being destroyed), so that
        a destroyed traced gobj does not keep the one-flag check of every event on."""
        global _traced_machines
        if self._trace_mach:
            self._trace_mach = 0
            _traced_machines -= 1
            _update_trace_any()

    @staticmethod
    def global_trace_mach(value: Any) -> None:
        """Turn the machine trace on (``True`` or a level) or off for every machine."""
        global _global_trace_mach
        _global_trace_mach = int(value) if value else 0
        _update_trace_any()

    def __repr__(self) -> str:
        return f"{type(self).__name__}:{self.name}"
