"""``fsmio check MODULE...``: find every problem of the gclasses of modules.

Each MODULE is ``package.module`` or a path to a ``.py`` file (as a pre-commit hook
passes them).  The module is imported; every FSM dict and config template assigned at
its top level, and every gclass defined in it, is checked; each problem is printed as
``FILE:LINE: KIND: message`` (the line of the FSM row, event, state or parameter when the
tables are literals in the module, else of the assignment or the class), and the exit
code is 1 if any was found.

Problem kinds (``--ignore KIND,...`` leaves some out):

==================  ========  ===============================================================
kind                severity  what
==================  ========  ===============================================================
import-error        error     the module cannot be imported (syntax error, failing import...)
init-error          error     ``GClass()`` raises, or does not call ``GObj.__init__``
undeclared-event    error     a ``machine`` row uses an event missing from ``event_list``
bad-next-state      error     a row's next state is not in ``state_list``
bad-action          error     a row's action is neither None nor callable
bad-row             error     a row is not ``(event, action, next_state)``
duplicate-row       error     two rows of one state for the same event
duplicate-name      error     an event or state declared twice
unknown-state       error     a ``machine`` key that is not in ``state_list``
missing-state       error     a state of ``state_list`` with no ``machine`` entry
unused-event        error     an event neither used in ``machine`` nor declared ``output``
fsm-invalid         error     any other FSM error (the core's message)
unreachable-state   error     no transition (nor ``set_new_state('ST_X')`` in an action)
                              leads to the state from the initial one
unhandled-input     error     an event declared ``input`` that no state accepts
template-error      error     a malformed config template entry, or an invalid default
dead-end-state      warning   a state that accepts no event (the machine stops there)
unannotated-event   warning   an event handled by the FSM but annotated neither input nor
                              output (diagrams cannot place it)
no-description      warning   a config parameter without a description
unused-action       warning   an ``ac_*`` function of the module that no FSM row uses
==================  ========  ===============================================================

Warnings count as problems for the exit code too (a pre-commit hook should be strict);
ignore their kinds to relax it.  The checks read the *compiled* FSM (what the core would
run), so they can never disagree with it; only the line numbers come from the source.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from fsmio.core.errors import GConfigTemplateError, GConfigValidateError, MachineError
from fsmio.core.gconfig import compile_gconfig
from fsmio.core.gobj import GOBJ_GCONFIG, GObj
from fsmio.core.smachine import CompiledFSM, compile_fsm

from . import EXIT_FAILURE, ToolError, gclasses_in, import_module

__all__ = ["KINDS", "Problem", "check_gclass", "check_module", "load_module", "run_check"]

KINDS: Final[dict[str, str]] = {
    "import-error": "error",
    "init-error": "error",
    "undeclared-event": "error",
    "bad-next-state": "error",
    "bad-action": "error",
    "bad-row": "error",
    "duplicate-row": "error",
    "duplicate-name": "error",
    "unknown-state": "error",
    "missing-state": "error",
    "unused-event": "error",
    "fsm-invalid": "error",
    "unreachable-state": "error",
    "unhandled-input": "error",
    "template-error": "error",
    "dead-end-state": "warning",
    "unannotated-event": "warning",
    "no-description": "warning",
    "unused-action": "warning",
}

# The core's MachineError items -> problem kinds (checked in order).
_MACHINE_KINDS: Final = (
    (re.compile(r"next state .* is not in state_list"), "bad-next-state"),
    (re.compile(r"is not in event_list"), "undeclared-event"),
    (re.compile(r"neither None nor callable"), "bad-action"),
    (re.compile(r"is not \(event, action, next_state\)|must be a tuple of rows"), "bad-row"),
    (re.compile(r"has more than one row"), "duplicate-row"),
    (re.compile(r"OVERFILLED"), "duplicate-name"),
    (re.compile(r"neither used in 'machine' nor declared 'output'"), "unused-event"),
    (re.compile(r"has no entry in 'machine'"), "missing-state"),
    (re.compile(r"^machine: state .* is not in state_list"), "unknown-state"),
)
_QUOTED = r"('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"


@dataclass
class Problem:
    """One problem: its kind, a message, and where (file and line when known)."""

    kind: str
    message: str
    file: str | None = None
    line: int | None = None

    @property
    def severity(self) -> str:
        return KINDS.get(self.kind, "error")

    def render(self) -> str:
        where = (
            f"{self.file}:{self.line}: "
            if self.file and self.line
            else (f"{self.file}: " if self.file else "")
        )
        return f"{where}{self.kind}: {self.message}"


# ----------------------------------------------------------------------------------------
#   Where things are in the source
# ----------------------------------------------------------------------------------------
def _const(node: ast.AST | None) -> Any:
    return node.value if isinstance(node, ast.Constant) else None


def _dict_get(node: ast.AST | None, key: str) -> ast.AST | None:
    if isinstance(node, ast.Dict):
        for k, v in zip(node.keys, node.values, strict=True):
            if _const(k) == key:
                return v
    return None


def _elements(node: ast.AST | None) -> list[ast.expr]:
    return list(node.elts) if isinstance(node, (ast.Tuple, ast.List)) else []


def _source_file(module: ModuleType) -> str | None:
    """The source file of ``module``; for a compiled extension module (the compiled build,
    docs/compiled.md), the ``.py`` beside it that it was compiled from."""
    file = inspect.getsourcefile(module)
    path = module.__file__
    if file is None and path:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            if path.endswith(suffix) and Path(path[: -len(suffix)] + ".py").is_file():
                return path[: -len(suffix)] + ".py"
    return file


class Locator:
    """Lines of FSM tables and templates written as literals in one source file."""

    def __init__(self, module: ModuleType) -> None:
        self.file: str | None = None
        self.assigned: dict[str, ast.AST] = {}
        self.lines: dict[str, int] = {}
        self.functions: dict[str, int] = {}
        self.tree: ast.Module | None = None
        self.jumps: set[str] = set()
        try:
            self.file = _source_file(module)
            source = Path(self.file).read_text(encoding="utf-8") if self.file else ""
            self.tree = ast.parse(source)
        except (OSError, TypeError, SyntaxError, ValueError):
            return
        self.jumps = set_new_state_targets(self.tree)
        for stmt in self.tree.body:
            targets: list[ast.expr] = []
            value: ast.AST | None = None
            if isinstance(stmt, ast.Assign):
                targets, value = stmt.targets, stmt.value
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                targets, value = [stmt.target], stmt.value
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions[stmt.name] = stmt.lineno
            for target in targets:
                if isinstance(target, ast.Name) and value is not None:
                    self.assigned[target.id] = value
                    self.lines[target.id] = stmt.lineno

    def node_of(self, module: ModuleType, obj: object) -> tuple[str | None, ast.AST | None]:
        """The global name holding ``obj`` in ``module`` and its literal's AST node."""
        for name, value in vars(module).items():
            if value is obj and name in self.assigned:
                return name, self.assigned[name]
        return None, None

    @staticmethod
    def event_line(node: ast.AST | None, event: str, last: bool = False) -> int | None:
        found = [
            elt.lineno
            for elt in _elements(_dict_get(node, "event_list"))
            if isinstance(text := _const(elt), str) and text.split(":")[0].strip() == event
        ]
        return (found[-1] if last else found[0]) if found else None

    @staticmethod
    def state_line(node: ast.AST | None, state: str) -> int | None:
        for elt in _elements(_dict_get(node, "state_list")):
            if _const(elt) == state:
                return elt.lineno
        return Locator.machine_line(node, state)

    @staticmethod
    def machine_line(node: ast.AST | None, state: str) -> int | None:
        machine = _dict_get(node, "machine")
        if isinstance(machine, ast.Dict):
            for key in machine.keys:
                if key is not None and _const(key) == state:
                    return key.lineno
        return None

    @staticmethod
    def row_line(node: ast.AST | None, state: str, event: str, last: bool = False) -> int | None:
        rows = _dict_get(_dict_get(node, "machine"), state)
        found = [
            row.lineno
            for row in _elements(rows)
            if (elts := _elements(row)) and _const(elts[0]) == event
        ]
        if found:
            return found[-1] if last else found[0]
        return Locator.machine_line(node, state)

    @staticmethod
    def bad_row_line(node: ast.AST | None, state: str) -> int | None:
        for row in _elements(_dict_get(_dict_get(node, "machine"), state)):
            if not isinstance(row, (ast.Tuple, ast.List)) or len(row.elts) != 3:
                return row.lineno
        return Locator.machine_line(node, state)

    @staticmethod
    def param_line(node: ast.AST | None, param: str) -> int | None:
        if isinstance(node, ast.Dict):
            for key in node.keys:
                if key is not None and _const(key) == param:
                    return key.lineno
        return None


def set_new_state_targets(tree: ast.AST | None) -> set[str]:
    """State names given as literals to ``set_new_state(...)`` anywhere in ``tree``.

    Real gclasses change state outside the table too (in a protocol callback, a helper
    method): such a state counts as reachable, and so do the states its rows lead to.
    """
    found: set[str] = set()
    for node in ast.walk(tree) if tree is not None else ():
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "set_new_state"
            and node.args
            and isinstance(_const(node.args[0]), str)
        ):
            found.add(node.args[0].value)  # type: ignore[attr-defined]
    return found


# ----------------------------------------------------------------------------------------
#   Checks
# ----------------------------------------------------------------------------------------
def _machine_problems(
    exc: MachineError, label: str, file: str | None, node: ast.AST | None, fallback: int | None
) -> list[Problem]:
    problems: list[Problem] = []
    items = [line.strip()[2:] for line in str(exc).splitlines() if line.strip().startswith("- ")]
    if not items:
        items = [str(exc)]
    for item in items:
        kind = next((k for regex, k in _MACHINE_KINDS if regex.search(item)), "fsm-invalid")
        line: int | None = None
        if m := re.match(rf"machine\[{_QUOTED}\]\[{_QUOTED}\]", item):
            line = Locator.row_line(node, ast.literal_eval(m[1]), ast.literal_eval(m[2]))
        elif m := re.match(rf"machine\[{_QUOTED}\]: event {_QUOTED}", item):
            line = Locator.row_line(
                node, ast.literal_eval(m[1]), ast.literal_eval(m[2]), last=kind == "duplicate-row"
            )
        elif kind == "bad-row" and (m := re.match(rf"machine\[{_QUOTED}\]", item)):
            line = Locator.bad_row_line(node, ast.literal_eval(m[1]))
        elif (m := re.match(rf"machine\[{_QUOTED}\]", item)) or (
            m := re.match(rf"machine: state {_QUOTED}", item)
        ):
            line = Locator.machine_line(node, ast.literal_eval(m[1]))
        elif m := re.search(rf"event_list(?: OVERFILLED)?: {_QUOTED}", item):
            with_name = ast.literal_eval(m[1])
            line = Locator.event_line(node, str(with_name), last=kind == "duplicate-name")
        elif m := re.search(rf"state(?:_list)?(?: OVERFILLED)?:? {_QUOTED}", item):
            line = Locator.state_line(node, str(ast.literal_eval(m[1])))
        problems.append(Problem(kind, f"{label}: {item}", file, line or fallback))
    return problems


def check_compiled_fsm(
    fsm: CompiledFSM,
    label: str,
    file: str | None,
    node: ast.AST | None,
    fallback: int | None,
    jumps: set[str] | None = None,
) -> list[Problem]:
    """The checks the core does not make, on a compiled FSM.  ``jumps``: the states the
    code enters with ``set_new_state`` (reachable too)."""
    problems: list[Problem] = []
    edges: dict[str, set[str]] = {state: set() for state in fsm.state_list}
    for state, _ev, _action, next_state in fsm.rows:
        if next_state is not None:
            edges[state].add(next_state)
    reached: set[str] = set()
    todo = [fsm.initial_state] if fsm.initial_state else []
    todo += sorted((jumps or set()) & set(fsm.state_list))
    while todo:
        state = todo.pop()
        if state not in reached:
            reached.add(state)
            todo.extend(edges[state] - reached)
    for state in fsm.state_list:
        if state not in reached:
            problems.append(
                Problem(
                    "unreachable-state",
                    f"{label}: state {state!r} cannot be reached from the initial state "
                    f"{fsm.initial_state!r} (no row leads to it, and no "
                    f"set_new_state({state!r}) in the code)",
                    file,
                    Locator.state_line(node, state) or fallback,
                )
            )
        if not fsm.transitions[state] and len(fsm.state_list) > 1:
            problems.append(
                Problem(
                    "dead-end-state",
                    f"{label}: state {state!r} accepts no event: the machine stops there",
                    file,
                    Locator.state_line(node, state) or fallback,
                )
            )
    handled = {ev for _st, ev, _a, _n in fsm.rows}
    problems.extend(
        Problem(
            "unhandled-input",
            f"{label}: event {ev!r} is declared input but no state accepts it",
            file,
            Locator.event_line(node, ev) or fallback,
        )
        for ev in fsm.events_with("input")
        if ev not in handled
    )
    for ev in fsm.event_list:
        groups = fsm.event_attrs[ev]
        if ev in handled and not any(("input" in g or "output" in g) for g in groups):
            problems.append(
                Problem(
                    "unannotated-event",
                    f"{label}: event {ev!r} is annotated neither input nor output "
                    f"(write '{ev}: top input' or '{ev}: bottom input')",
                    file,
                    Locator.event_line(node, ev) or fallback,
                )
            )
    return problems


def _is_fsm_dict(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        and "machine" in value
        and ("state_list" in value or "event_list" in value)
    )


def _is_template(name: str, value: object) -> bool:
    if not isinstance(value, Mapping) or not value:
        return False
    if name.endswith("GCONFIG"):
        return True
    return all(isinstance(v, (list, tuple)) and len(v) == 5 for v in value.values())


def _template_problems(
    template: Mapping[str, Any],
    label: str,
    file: str | None,
    node: ast.AST | None,
    fallback: int | None,
) -> list[Problem]:
    problems: list[Problem] = []
    for param, definition in template.items():
        line = Locator.param_line(node, str(param)) or fallback
        try:
            compile_gconfig([{param: definition}], label)
        except (GConfigTemplateError, GConfigValidateError) as exc:
            problems.append(Problem("template-error", str(exc), file, line))
            continue
        if template is not GOBJ_GCONFIG and not (
            isinstance(definition, (list, tuple)) and definition[4]
        ):
            problems.append(
                Problem(
                    "no-description", f"{label}: parameter {param!r} has no description", file, line
                )
            )
    return problems


def check_gclass(gclass: type[GObj], _done: set[int] | None = None) -> list[Problem]:
    """Every problem of one gclass: its FSM (core errors and the extra checks) and its
    config template."""
    done = _done if _done is not None else set()
    module = sys.modules.get(gclass.__module__)
    locator = Locator(module) if module is not None else None
    file = locator.file if locator else None
    try:
        class_line: int | None = inspect.getsourcelines(gclass)[1]
    except (OSError, TypeError):
        class_line = None
    label = gclass.__name__
    try:
        gobj = gclass()
        # (Not `in vars(gobj)`: _fsm is a slot, or a C field of the compiled build.)
        if getattr(gobj, "_fsm", None) is None or getattr(gobj, "_gconfig", None) is None:
            raise TypeError(
                f"{gclass.__name__}.__init__ must call GObj.__init__(self, FSM, GCONFIG)"
            )
    except MachineError as exc:
        return [] if id(gclass) in done else _machine_problems(exc, label, file, None, class_line)
    except (GConfigTemplateError, GConfigValidateError) as exc:
        return [] if id(gclass) in done else [Problem("template-error", str(exc), file, class_line)]
    except Exception as exc:
        return [Problem("init-error", f"{label}(): {type(exc).__name__}: {exc}", file, class_line)]
    problems: list[Problem] = []
    fsm = gobj._fsm
    if id(fsm.fsm) not in done:
        done.add(id(fsm.fsm))
        name, node = locator.node_of(module, fsm.fsm) if locator and module else (None, None)
        fallback = locator.lines.get(name, class_line) if locator and name else class_line
        jumps: set[str] = set()
        for cls in gclass.__mro__:
            cls_module = sys.modules.get(cls.__module__)
            if cls_module is not None and not cls.__module__.startswith("fsmio.core"):
                jumps |= (
                    Locator(cls_module).jumps
                    if cls_module is not module
                    else (locator.jumps if locator else set())
                )
        problems += check_compiled_fsm(fsm, f"{label} FSM", file, node, fallback, jumps)
    for template in gobj._gconfig.templates:
        if template is GOBJ_GCONFIG or id(template) in done:
            continue
        done.add(id(template))
        name, node = locator.node_of(module, template) if locator and module else (None, None)
        fallback = locator.lines.get(name, class_line) if locator and name else class_line
        problems += _template_problems(template, label, file, node, fallback)
    return problems


def check_module(module: ModuleType, all_gclasses: bool = False) -> list[Problem]:
    """Every problem of the FSM dicts, templates and gclasses of ``module``."""
    locator = Locator(module)
    file = locator.file
    problems: list[Problem] = []
    done: set[int] = set()
    broken = False  # a module-level FSM or template the core rejects
    used_actions: set[str] = set()
    for name, value in list(vars(module).items()):
        if name.startswith("__") or name not in locator.assigned:
            continue
        node = locator.assigned[name]
        line = locator.lines.get(name)
        if _is_fsm_dict(value):
            machine = value.get("machine")
            if isinstance(machine, Mapping):
                for rows in machine.values():
                    for row in rows if isinstance(rows, (list, tuple)) else ():
                        if isinstance(row, (list, tuple)) and len(row) == 3:
                            used_actions.add(getattr(row[1], "__name__", ""))
            try:
                compiled = compile_fsm(value)
            except MachineError as exc:
                broken = True
                problems += _machine_problems(exc, name, file, node, line)
                continue
            done.add(id(value))
            problems += check_compiled_fsm(compiled, name, file, node, line, locator.jumps)
        elif _is_template(name, value):
            done.add(id(value))
            found = _template_problems(value, name, file, node, line)
            broken = broken or any(p.kind == "template-error" for p in found)
            problems += found
    for gclass in gclasses_in(module, defined_here=not all_gclasses):
        if broken:
            done.add(id(gclass))  # its error is that of a module-level table, reported
        problems += check_gclass(gclass, done)
        for row in getattr(getattr(gclass, "_fsm", None), "rows", ()):
            used_actions.add(getattr(row[2], "__name__", ""))
    for fname, fline in locator.functions.items():
        if fname.startswith("ac_") and fname not in used_actions:
            problems.append(
                Problem(
                    "unused-action",
                    f"function {fname!r} looks like an action but no FSM row uses it",
                    file,
                    fline,
                )
            )
    return sorted(problems, key=lambda p: (p.file or "", p.line or 0))


def load_module(target: str) -> ModuleType:
    """Import ``package.module``, or a ``.py`` file by its path."""
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_file():
            raise ToolError(f"no such file: {target!r}")
        name = "_fsmio_check_" + re.sub(r"\W", "_", str(path.resolve().with_suffix("")))
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ToolError(f"cannot load {target!r} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        parent = str(path.resolve().parent)
        if parent not in sys.path:
            sys.path.insert(0, parent)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            where = (
                f"{exc.filename}:{exc.lineno}: "
                if isinstance(exc, SyntaxError) and exc.filename
                else ""
            )
            raise ToolError(
                f"cannot import {target!r}: {where}{type(exc).__name__}: {exc}"
            ) from None
        return module
    return import_module(target)


def run_check(
    targets: Iterable[str], ignore: Iterable[str] = (), all_gclasses: bool = False
) -> int:
    """``fsmio check``: print every problem of every target; 1 if any, else 0."""
    ignored = set(ignore)
    unknown = ignored - set(KINDS)
    if unknown:
        raise ToolError(
            f"--ignore: unknown kind(s) {', '.join(sorted(unknown))} (kinds: {', '.join(KINDS)})"
        )
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    count = 0
    checked = 0
    for target in targets:
        try:
            module = load_module(target)
        except ToolError as exc:
            if "import-error" not in ignored:
                print(f"{target}: import-error: {exc.message}")
                count += 1
            continue
        gclasses = gclasses_in(module, defined_here=not all_gclasses)
        checked += len(gclasses)
        for problem in check_module(module, all_gclasses):
            if problem.kind not in ignored:
                print(problem.render())
                count += 1
    summary = f"{count} problem{'s' if count != 1 else ''} in {checked} gclass" + (
        "es" if checked != 1 else ""
    )
    print(summary if count else f"ok: {summary}", file=sys.stderr)
    return EXIT_FAILURE if count else 0
