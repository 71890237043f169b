"""``fsmio run CONFIG.toml``: a GAplic and its gobjs, described by a TOML file.

The file (every section but ``[[gobj]]`` is optional)::

    [gaplic]
    name = "echo"                 # the GAplic's name (default: the file's stem)
    roles = ["server"]            # optional
    shutdown_grace = 2.0          # any GAplic parameter (use_uvloop, all_unique_names, ...)

    [settings]                    # ginsfsm's ini settings, applied to every gobj created
    "GSock.trace_dump" = false    # by gclass name (or a base class: GObj is every gobj)
    "echo.port" = 7000            # by gobj name (the most specific key wins)
    trace_creation = false        # a bare name: every gobj having that parameter

    [logging]
    level = "INFO"                # DEBUG, INFO, WARNING, ERROR or a number
    format = "plain"              # or "json": one JSON object per line
    file = "echo.log"             # default: standard error

    [[gobj]]                      # created in file order
    name = "echo"
    gclass = "fsmio.examples.echo_server:EchoServer"
    parent = ""                   # the name of an earlier [[gobj]]; default: the GAplic
    unique = true                 # register the name in the GAplic (for post_event by name)
    config = { port = 7000 }      # the gobj's parameters (or a [gobj.config] table)

An unquoted dotted key in ``[settings]`` (``echo.port = 7000``) is a TOML sub-table; it is
read back as the setting ``"echo.port"``.  Quote the whole key when the value is itself a
table for a dict parameter (``"echo.ssl_options" = { certfile = "..." }``).

Decisions (where the issue was silent):

* Everything is validated before anything is created, and every problem is reported at
  once (``error: FILE:LINE: ...``, exit 2): unknown sections and keys, unknown module or
  gclass, unknown parameter (with a "did you mean"), invalid value (converted through
  GConfig exactly as ``create_gobj`` would), a ``parent`` that is not an earlier gobj.
  ``--check`` stops there (exit 0 when clean) and also runs ``fsmio check``'s gclass
  checks on every gclass used.  A dotted setting that names no gobj of the file and no
  known gclass is only a note: gobjs created at run time may carry that name.
* ``--set KEY=VALUE`` adds or overrides a ``[settings]`` entry.  VALUE is passed as the
  string it is, and GConfig converts it to the parameter's type (``"7000"`` to an int,
  ``"yes"`` to True, a JSON object to a dict), so its type is checked like any setting.
* ``--trace mach,creation,subscription,dump`` sets ``GObj.trace_mach``,
  ``GObj.trace_creation``, ``GObj.trace_subscription`` and ``GSock.trace_dump``; traces
  are INFO records, so the console shows INFO while a trace is on.
  ``--trace-file FILE`` writes one JSON object per machine-trace record (``->`` start of a
  transition, ``-`` new state, ``<-`` end, ``!`` not accepted) with its structured fields;
  ``fsmio trace FILE`` prints it back.  It turns machine tracing on without printing it
  unless ``--trace mach`` is also given.
* The current directory and the config file's directory are put on ``sys.path``, so a
  gclass in a local module can be named like one in a package.
* Exit codes: 0 after a graceful stop (a gobj stopped the GAplic, or SIGTERM / SIGINT),
  or the ``GAplic.exit_code`` a gobj set to say the program failed; 2 for bad input; 1
  when creating failed (a port in use, an exception in ``start_up``); 130 on a second
  SIGINT, which exits at once.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import re
import signal
import sys
import threading
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

from fsmio.aplic.gaplic import GAPLIC_GCONFIG, GAplic
from fsmio.core.errors import FsmioError, GConfigValidateError
from fsmio.core.gobj import GOBJ_GCONFIG, GObj

from . import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    ToolError,
    instantiate,
    load_gclass,
    qualified_name,
)

__all__ = [
    "TRACE_FIELDS",
    "TRACE_KINDS",
    "AppConfig",
    "GobjSpec",
    "JsonFormatter",
    "TraceFileHandler",
    "add_inspector_or_fail",
    "check_app",
    "check_inspect",
    "load_config",
    "parse_sets",
    "run_app",
    "validate",
    "with_inspector",
]

_LOG = logging.getLogger("fsmio")

TRACE_KINDS: Final[dict[str, str]] = {
    "mach": "GObj.trace_mach",
    "creation": "GObj.trace_creation",
    "subscription": "GObj.trace_subscription",
    "dump": "GSock.trace_dump",
}
_SECTIONS: Final = ("gaplic", "settings", "logging", "gobj")
_GOBJ_KEYS: Final = ("name", "gclass", "parent", "unique", "config")
_LOGGING_KEYS: Final = ("level", "format", "file")
_LEVELS: Final = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
#: The ``extra=`` fields of the machine trace (see SMachine._inject_traced).
TRACE_FIELDS: Final = (
    "fsm_phase",
    "fsm_gclass",
    "fsm_gobj",
    "fsm_state",
    "fsm_event",
    "fsm_action",
    "fsm_next_state",
    "fsm_depth",
    "fsm_subject",
)


# ----------------------------------------------------------------------------------------
#   The config file
# ----------------------------------------------------------------------------------------
@dataclass
class GobjSpec:
    """One ``[[gobj]]`` entry."""

    index: int
    line: int
    name: str
    gclass_path: str
    parent: str = ""
    unique: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    gclass: type[GObj] | None = None

    @property
    def label(self) -> str:
        return f"[[gobj]] #{self.index} {self.name!r}" if self.name else f"[[gobj]] #{self.index}"


@dataclass
class AppConfig:
    """A parsed config file (before validation)."""

    path: Path
    text: str
    name: str
    roles: list[str] = field(default_factory=list)
    gaplic_params: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    log_level: str | int = "INFO"
    log_format: str = "plain"
    log_file: str | None = None
    gobjs: list[GobjSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Settings given on the command line (``--set``, ``--trace``), by key.
    cli_settings: dict[str, str] = field(default_factory=dict)

    def where(self, line: int | None = None) -> str:
        return f"{self.path}:{line}" if line else str(self.path)

    def line_of(self, pattern: str, start: int = 0) -> int | None:
        """The 1-based line of the first match of ``pattern`` at or after line ``start``."""
        regex = re.compile(pattern)
        for number, text in enumerate(self.text.splitlines(), 1):
            if number >= start and regex.search(text):
                return number
        return None

    def key_line(self, key: str, start: int = 0) -> int | None:
        last = re.escape(key.rpartition(".")[2])
        return self.line_of(rf'^\s*(?:"[^"]*"|[\w.\-]*?)?\b{last}"?\s*=', start) or self.line_of(
            re.escape(key), start
        )

    def setting_where(self, key: str) -> str:
        """Where the setting ``key`` comes from: ``--set KEY=VALUE`` or ``FILE:LINE``."""
        if key in self.cli_settings:
            return self.cli_settings[key]
        return self.where(self.key_line(key, self.line_of(r"^\s*\[settings\]") or 0))

    def ini_settings(self) -> dict[str, Any]:
        """What ``GAplic(name, roles, **ini_settings)`` gets."""
        ini = {f"GAplic.{k}": v for k, v in self.gaplic_params.items()}
        ini.update(self.settings)
        return ini


def _flatten_settings(table: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict) and "." not in key:
            for sub, subvalue in value.items():
                flat[f"{key}.{sub}"] = subvalue
        else:
            flat[key] = value
    return flat


def load_config(path: str | Path) -> AppConfig:
    """Read and parse a config file; ``ToolError`` for a missing file, a TOML syntax
    error (with its line) or a file whose layout is wrong (every such problem at once)."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ToolError(f"config file not found: {str(file)!r}") from None
    except IsADirectoryError:
        raise ToolError(f"{str(file)!r} is a directory, not a config file") from None
    except OSError as exc:
        raise ToolError(f"cannot read config file {str(file)!r}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        where = f"{file}:{match.group(1)}" if match else str(file)
        raise ToolError(f"{where}: TOML syntax error: {exc}") from None

    cfg = AppConfig(path=file, text=text, name=file.stem)
    problems: list[str] = []

    def bad(message: str, line: int | None = None) -> None:
        problems.append(f"{cfg.where(line)}: {message}")

    for key in data:
        if key not in _SECTIONS:
            bad(
                f"unknown section {key!r} (sections: {', '.join(_SECTIONS)})",
                cfg.line_of(rf"^\s*\[*\s*{re.escape(key)}\b"),
            )

    gaplic = data.get("gaplic", {})
    if not isinstance(gaplic, dict):
        bad("[gaplic] must be a table")
        gaplic = {}
    for key, value in gaplic.items():
        if key == "name":
            if not isinstance(value, str):
                bad("[gaplic] name must be a string", cfg.key_line("name"))
            else:
                cfg.name = value
        elif key == "roles":
            if isinstance(value, str):
                cfg.roles = [value]
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                cfg.roles = list(value)
            else:
                bad("[gaplic] roles must be a string or a list of strings", cfg.key_line("roles"))
        else:
            cfg.gaplic_params[key] = value

    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        bad("[settings] must be a table")
        settings = {}
    cfg.settings = _flatten_settings(settings)

    log = data.get("logging", {})
    if not isinstance(log, dict):
        bad("[logging] must be a table")
        log = {}
    for key, value in log.items():
        line = cfg.key_line(key, cfg.line_of(r"^\s*\[logging\]") or 0)
        if key not in _LOGGING_KEYS:
            bad(f"[logging]: unknown key {key!r} (keys: {', '.join(_LOGGING_KEYS)})", line)
        elif key == "level":
            try:
                cfg.log_level = _log_level(value)
            except ToolError as exc:
                bad(f"[logging] {exc.message}", line)
        elif key == "format":
            if value not in ("plain", "json"):
                bad(f"[logging] format must be 'plain' or 'json', not {value!r}", line)
            else:
                cfg.log_format = value
        elif key == "file":
            if not isinstance(value, str) or not value:
                bad("[logging] file must be a path (a string)", line)
            else:
                cfg.log_file = str(file.parent / value) if not Path(value).is_absolute() else value

    entries = data.get("gobj", [])
    if not isinstance(entries, list):
        bad("'gobj' must be an array of tables: write each one as [[gobj]]")
        entries = []
    seen: dict[str, int] = {}
    header_line = 0
    for index, entry in enumerate(entries, 1):
        header_line = cfg.line_of(r"^\s*\[\[\s*gobj\s*\]\]", header_line + 1) or header_line
        if not isinstance(entry, dict):
            bad(f"[[gobj]] #{index} must be a table", header_line)
            continue
        spec = GobjSpec(index=index, line=header_line, name="", gclass_path="")
        for key, value in entry.items():
            line = cfg.key_line(key, header_line) or header_line
            if key not in _GOBJ_KEYS:
                bad(f"{spec.label}: unknown key {key!r} (keys: {', '.join(_GOBJ_KEYS)})", line)
            elif key == "name":
                if isinstance(value, str):
                    spec.name = value
                else:
                    bad(f"[[gobj]] #{index}: name must be a string", line)
            elif key == "gclass":
                if isinstance(value, str):
                    spec.gclass_path = value
                else:
                    bad(f"{spec.label}: gclass must be a string 'package.module:GClass'", line)
            elif key == "parent":
                if isinstance(value, str):
                    spec.parent = value
                else:
                    bad(f"{spec.label}: parent must be the name of an earlier [[gobj]]", line)
            elif key == "unique":
                if isinstance(value, bool):
                    spec.unique = value
                else:
                    bad(f"{spec.label}: unique must be true or false", line)
            elif key == "config":
                if isinstance(value, dict):
                    spec.config = dict(value)
                else:
                    bad(f"{spec.label}: config must be a table of parameters", line)
        if not spec.gclass_path:
            bad(f"{spec.label}: missing gclass = 'package.module:GClass'", header_line)
        if spec.parent and spec.parent not in seen:
            bad(
                f"{spec.label}: parent {spec.parent!r} is not the name of an earlier [[gobj]]",
                cfg.key_line("parent", header_line) or header_line,
            )
        if spec.name:
            if spec.name in seen:
                bad(
                    f"{spec.label}: the name is already used by [[gobj]] #{seen[spec.name]}",
                    header_line,
                )
            seen[spec.name] = index
        cfg.gobjs.append(spec)
    if problems:
        raise ToolError("\n".join(problems))
    return cfg


def _log_level(value: Any) -> str | int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().upper() in _LEVELS:
        return value.strip().upper()
    raise ToolError(f"level must be one of {', '.join(_LEVELS)} or a number, not {value!r}")


def parse_sets(items: list[str]) -> dict[str, str]:
    """``--set KEY=VALUE`` items as a dict of raw strings (GConfig converts them)."""
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ToolError(f"--set {item!r}: expected KEY=VALUE (for example echo.port=7000)")
        out[key] = value
    return out


def parse_traces(text: str | None) -> list[str]:
    """``--trace mach,creation`` as a list of trace kinds."""
    if not text:
        return []
    kinds = [word.strip() for word in text.split(",") if word.strip()]
    for kind in kinds:
        if kind not in TRACE_KINDS:
            raise ToolError(f"--trace: unknown trace {kind!r} (traces: {', '.join(TRACE_KINDS)})")
    return kinds


# ----------------------------------------------------------------------------------------
#   Validation: everything that can be checked without creating anything
# ----------------------------------------------------------------------------------------
def _known_gclasses() -> dict[str, list[type[GObj]]]:
    """Every GObj subclass imported so far, by class name."""
    found: dict[str, list[type[GObj]]] = {"GObj": [GObj]}
    stack: list[type[GObj]] = [GObj]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in found.setdefault(sub.__name__, []):
                found[sub.__name__].append(sub)
                stack.append(sub)
    return found


@contextlib.contextmanager
def _quiet_fsmio() -> Iterator[None]:
    """Silence the ``fsmio`` logger while gobjs are built only to validate values."""
    logger = logging.getLogger("fsmio")
    disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = disabled


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ToolError) else str(exc)


def validate(cfg: AppConfig, *, with_gclass_checks: bool = False) -> list[str]:
    """Every problem of ``cfg`` (resolved gclasses are stored in its specs); notes about
    settings that apply to nothing known go to ``cfg.notes``."""
    problems: list[str] = []
    ini = cfg.ini_settings()
    with _quiet_fsmio():
        # The GAplic's own parameters, and the settings that reach the GAplic.
        for key, value in ini.items():
            try:
                probe = GAplic(None, **{key: value})
            except (FsmioError, ValueError) as exc:
                if key in cfg.settings:
                    where = cfg.setting_where(key)
                else:
                    line = cfg.key_line(key[len("GAplic.") :], cfg.line_of(r"^\s*\[gaplic\]") or 0)
                    where = cfg.where(line)
                problems.append(f"{where}: {_message(exc)}")
            else:
                probe.close()

        gclasses: set[type[GObj]] = set()
        for spec in cfg.gobjs:
            if not spec.gclass_path:
                continue
            try:
                spec.gclass = load_gclass(spec.gclass_path)
                probe_gobj = instantiate(spec.gclass)
            except ToolError as exc:
                line = cfg.key_line("gclass", spec.line) or spec.line
                problems.append(f"{cfg.where(line)}: {spec.label}: {exc.message}")
                spec.gclass = None
                continue
            gclasses.add(spec.gclass)
            probe_gobj.name = spec.name
            for key, value in spec.config.items():
                try:
                    probe_gobj.write_parameters(**{key: value})
                except (FsmioError, ValueError) as exc:
                    line = cfg.key_line(key, spec.line) or spec.line
                    problems.append(f"{cfg.where(line)}: {spec.label}: {exc}")
            if spec.unique and not spec.name:
                problems.append(f"{cfg.where(spec.line)}: {spec.label}: a unique gobj needs a name")
            for key, value in cfg.settings.items():
                try:
                    probe_gobj.write_parameters(**probe_gobj.filter_parameters(**{key: value}))
                except (FsmioError, ValueError) as exc:
                    problems.append(f"{cfg.setting_where(key)}: setting {key!r}: {exc}")

        # Settings aimed at a gclass or name that no [[gobj]] of the file has.
        names = {spec.name for spec in cfg.gobjs if spec.name}
        known = _known_gclasses()
        used_class_names = {
            cls.__name__ for g in gclasses for cls in g.__mro__ if isinstance(cls, type)
        } | {"GAplic", "GObj", "SMachine", "GConfig"}
        for key, value in cfg.settings.items():
            target, dot, param = key.rpartition(".")
            where = cfg.setting_where(key)
            if not dot:
                owners = [
                    cls for classes in known.values() for cls in classes if _has_param(cls, param)
                ]
                if not owners and param not in GOBJ_GCONFIG and param not in GAPLIC_GCONFIG:
                    cfg.notes.append(
                        f"{where}: setting {key!r}: no known gclass has a parameter {param!r}"
                    )
                continue
            if target in names or target in used_class_names:
                continue
            if target in known:
                for cls in known[target]:
                    try:
                        probe_gobj = instantiate(cls)
                        probe_gobj.write_parameters(**probe_gobj.filter_parameters(**{key: value}))
                    except ToolError:
                        continue
                    except (FsmioError, ValueError) as exc:
                        problems.append(f"{where}: setting {key!r}: {exc}")
                continue
            cfg.notes.append(
                f"{where}: setting {key!r}: no [[gobj]] named {target!r} and no "
                f"gclass {target!r} is known; it applies only to a gobj of that name "
                "created at run time"
            )

    if with_gclass_checks:
        from .check import check_gclass

        for gclass in sorted(gclasses, key=qualified_name):
            problems.extend(p.render() for p in check_gclass(gclass) if p.severity == "error")
    return problems


def _has_param(cls: type[GObj], param: str) -> bool:
    try:
        return param in instantiate(cls).get_gconfig_params()
    except ToolError:
        return False


# ----------------------------------------------------------------------------------------
#   Logging and the trace file
# ----------------------------------------------------------------------------------------
class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the ``fsm_*`` fields
    when present, and the exception text."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage().strip(),
        }
        for name in TRACE_FIELDS:
            if name in record.__dict__:
                out[name[4:]] = record.__dict__[name]
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=repr)


class TraceFileHandler(logging.Handler):
    """Writes every machine-trace record (one with ``fsm_phase``) as one JSON line."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(logging.DEBUG)
        try:
            self.stream: TextIO = open(path, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise ToolError(f"cannot write the trace file {str(path)!r}: {exc.strerror}") from None
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        fields = record.__dict__
        if "fsm_phase" not in fields:
            return
        try:
            out: dict[str, Any] = {"ts": round(record.created, 6), "seq": self.count}
            for name in TRACE_FIELDS:
                out[name[4:]] = fields.get(name)
            out["level"] = record.levelname
            out["message"] = record.getMessage().strip()
            self.stream.write(json.dumps(out, default=repr) + "\n")
            self.count += 1
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        with contextlib.suppress(ValueError):
            self.stream.flush()

    def close(self) -> None:
        try:
            self.flush()
            self.stream.close()
        finally:
            super().close()


class _HideMachTrace(logging.Filter):
    """Keeps machine-trace records (but not the not-accepted warnings) off the console."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "* %r: trace_mach %s":  # SMachine's trace switch notice
            return False
        return record.__dict__.get("fsm_phase") not in ("->", "-", "<-")


@contextlib.contextmanager
def logging_setup(
    cfg: AppConfig, traces: list[str], trace_file: str | None
) -> Iterator[TraceFileHandler | None]:
    """Install the console (or file) handler and the trace-file handler on the root
    logger for the run; remove them after."""
    root = logging.getLogger()
    level = logging.getLevelName(cfg.log_level) if isinstance(cfg.log_level, str) else cfg.log_level
    if traces:
        level = min(level, logging.INFO)
    handler: logging.Handler
    if cfg.log_file:
        try:
            handler = logging.FileHandler(cfg.log_file, encoding="utf-8")
        except OSError as exc:
            raise ToolError(f"cannot write the log file {cfg.log_file!r}: {exc.strerror}") from None
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    if cfg.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%d %H:%M:%S")
        )
    if trace_file and "mach" not in traces:
        handler.addFilter(_HideMachTrace())
    trace_handler = TraceFileHandler(trace_file) if trace_file else None
    old_level = root.level
    root.addHandler(handler)
    if trace_handler is not None:
        root.addHandler(trace_handler)
    root.setLevel(min(level, logging.INFO) if trace_handler is not None else level)
    try:
        yield trace_handler
    finally:
        for h in (handler, trace_handler):
            if h is not None:
                root.removeHandler(h)
                h.close()
        root.setLevel(old_level)


# ----------------------------------------------------------------------------------------
#   Running
# ----------------------------------------------------------------------------------------
def _prepare_path(cfg: AppConfig) -> None:
    for entry in (str(cfg.path.resolve().parent), str(Path.cwd())):
        if entry not in sys.path:
            sys.path.insert(0, entry)


def _creation_error(spec: GobjSpec, exc: BaseException) -> ToolError:
    what = f"creating {spec.label} ({spec.gclass_path}) failed"
    if isinstance(exc, OSError) and exc.errno in (errno.EADDRINUSE, errno.EACCES):
        reason = "port in use" if exc.errno == errno.EADDRINUSE else "permission denied"
        return ToolError(f"{what}: {reason}: {exc.strerror or exc}", EXIT_FAILURE)
    if isinstance(exc, (FsmioError, OSError)):
        return ToolError(f"{what}: {exc}", EXIT_FAILURE)
    return ToolError(f"{what}: {type(exc).__name__}: {exc}", EXIT_FAILURE)


def _print_problems(problems: list[str], notes: list[str], out: TextIO) -> None:
    for note in notes:
        print(f"note: {note}", file=out)
    for problem in problems:
        print(f"error: {problem}", file=out)


def run_app(
    config_path: str | Path,
    *,
    sets: list[str] | None = None,
    traces: str | None = None,
    trace_file: str | None = None,
    check_only: bool = False,
    log_level: str | None = None,
    log_format: str | None = None,
    on_started: Any = None,
    worker_index: int | None = None,
    inspect: str | None = None,
    inspect_token: str | None = None,
) -> int:
    """``fsmio run``: load, validate, create, run until stopped; return the exit code.

    ``inspect`` (``--inspect HOST:PORT``) adds a ``GInspector`` to the GAplic once every
    gobj of the file is created (``inspect_token`` unlocks its control); it logs
    ``inspector listening on http://HOST:PORT/``.

    ``on_started(gaplic)`` (for tests) is called once every gobj is created.  A file
    ending in ``.ini`` is ginsfsm's PasteDeploy format (``fsmio.tools.ini``).
    ``worker_index`` (``--workers``, see ``fsmio.tools.supervisor``; TOML files): run as
    worker I, named ``<name>-w<I>``, with the role ``<name>`` and ``GServerSock.reuse_port``.
    """
    if inspect is not None:
        check_inspect(inspect, inspect_token)
        on_started = with_inspector(on_started, inspect, inspect_token)
    if str(config_path).lower().endswith(".ini"):
        from .ini import run_ini

        return run_ini(
            config_path,
            sets=sets,
            traces=traces,
            trace_file=trace_file,
            check_only=check_only,
            log_level=log_level,
            log_format=log_format,
            on_started=on_started,
        )
    cfg = load_config(config_path)
    _prepare_path(cfg)
    if worker_index is not None:
        if cfg.name not in cfg.roles:
            cfg.roles.append(cfg.name)
        cfg.name = f"{cfg.name}-w{worker_index}"
        cfg.settings.setdefault("GServerSock.reuse_port", True)
    for key, value in parse_sets(sets or []).items():
        cfg.settings[key] = value
        cfg.cli_settings[key] = f"--set {key}={value}"
    kinds = parse_traces(traces)
    if log_level is not None:
        cfg.log_level = _log_level(log_level)
    if log_format is not None:
        cfg.log_format = log_format
    # A trace asked for on the command line wins over the file's class-wide setting (a
    # setting for one gobj by name is more specific and still wins, as it should).
    for kind in kinds:
        cfg.settings[TRACE_KINDS[kind]] = True
        cfg.cli_settings[TRACE_KINDS[kind]] = f"--trace {kind}"
    if trace_file and "mach" not in kinds:
        cfg.settings[TRACE_KINDS["mach"]] = True
        cfg.cli_settings[TRACE_KINDS["mach"]] = "--trace-file"
    if "dump" in kinds and "GSock" not in _known_gclasses():
        with contextlib.suppress(ToolError):
            load_gclass("fsmio.gobjs.c_sock:GSock")
        if "GSock" not in _known_gclasses():
            raise ToolError("--trace dump: there is no GSock gclass to dump the data of")
    if not cfg.gobjs:
        raise ToolError(f"{cfg.path}: no [[gobj]] to create: nothing to run")

    problems = validate(cfg, with_gclass_checks=check_only)
    if problems:
        _print_problems(problems, cfg.notes, sys.stderr)
        raise ToolError(
            f"{cfg.path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}; "
            "nothing was run"
        )
    if check_only:
        _print_problems([], cfg.notes, sys.stderr)
        gclasses = {spec.gclass_path for spec in cfg.gobjs}
        print(
            f"{cfg.path}: ok ({len(cfg.gobjs)} gobj{'s' if len(cfg.gobjs) != 1 else ''}, "
            f"{len(gclasses)} gclass{'es' if len(gclasses) != 1 else ''})"
        )
        return 0

    with logging_setup(cfg, kinds, trace_file):
        gaplic = GAplic(cfg.name, cfg.roles, **cfg.ini_settings())
        with _stop_on_signals(gaplic):
            return _create_and_run(cfg, gaplic, on_started)


@contextlib.contextmanager
def _stop_on_signals(gaplic: GAplic) -> Iterator[None]:
    """Until ``GAplic.start()`` installs its own handlers (and after it removed them), a
    SIGTERM or SIGINT stops the GAplic instead of killing the process half-started."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        _LOG.info("fsmio run: %s received while starting, stopping", signal.Signals(signum).name)
        gaplic.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_to_end(gaplic: GAplic, label: str, setup: Any = None) -> int:
    """``setup()`` (if given), then ``gaplic.start()`` until it stops; close it and return
    its exit code.  The second Ctrl-C leaves at once: exit 130, no traceback.  Anything
    raised stops and closes the GAplic before it propagates.  (``fsmio run`` with TOML or
    ini, and ``fsmio serve``.)"""
    try:
        if setup is not None:
            setup()
        try:
            gaplic.start()
        except KeyboardInterrupt:
            # The second Ctrl-C: leave at once, without the graceful close.  The
            # KeyboardInterrupt may land inside any callback, and asyncio could then report
            # the work it cut off (a task destroyed while pending, with a traceback) when
            # the interpreter collects it: not news to someone who pressed Ctrl-C twice,
            # and the process is exiting.
            logging.getLogger("asyncio").disabled = True
            print(f"{label}: interrupted", file=sys.stderr, flush=True)
            return EXIT_INTERRUPTED
    except BaseException:
        with contextlib.suppress(Exception):
            gaplic.stop()
            gaplic.close()
        raise
    gaplic.close()
    # A gobj says the program failed by setting GAplic.exit_code before stopping it.
    code = getattr(gaplic, "exit_code", 0)
    return code if isinstance(code, int) and not isinstance(code, bool) else EXIT_FAILURE


def _create_and_run(cfg: AppConfig, gaplic: GAplic, on_started: Any) -> int:
    created: dict[str, GObj] = {}

    def setup() -> None:
        for spec in cfg.gobjs:
            assert spec.gclass is not None
            parent: GObj = created[spec.parent] if spec.parent else gaplic
            kw = dict(spec.config)
            if spec.unique:
                kw["__unique_name__"] = True
            try:
                gobj = gaplic.create_gobj(spec.name or None, spec.gclass, parent, **kw)
            except GConfigValidateError as exc:
                raise ToolError(f"{cfg.where(spec.line)}: {spec.label}: {exc}") from None
            except Exception as exc:
                raise _creation_error(spec, exc) from None
            if spec.name:
                created[spec.name] = gobj
        if on_started is not None:
            on_started(gaplic)
        # Logged from the loop: once it is seen, the signal handlers are in place.
        gaplic.add_callback(
            _LOG.info,
            "fsmio run: GAplic %r running %d gobj(s) from %s",
            gaplic.name,
            len(created),
            cfg.path,
        )

    code = run_to_end(gaplic, "fsmio run", setup)
    if code == EXIT_INTERRUPTED:
        return code
    if code:
        _LOG.info("fsmio run: GAplic %r stopped, exit code %d", gaplic.name, code)
    else:
        _LOG.info("fsmio run: GAplic %r stopped", gaplic.name)
    return code


def check_inspect(listen: str, token: str | None) -> tuple[str, int]:
    """``--inspect HOST:PORT`` checked before anything runs: ``ToolError`` (exit 2) for a
    bad address, or a non-loopback one without a token."""
    from fsmio.inspector import is_loopback, parse_listen

    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise ToolError(f"--inspect: {exc}") from None
    if not is_loopback(host) and not token:
        raise ToolError(
            f"--inspect {listen}: {host!r} is not a loopback address: anyone who can reach "
            "it would see this program; give a token (--inspect-token TOKEN or the "
            "FSMIO_INSPECT_TOKEN environment variable), or bind 127.0.0.1"
        )
    return host, port


def add_inspector_or_fail(gaplic: GAplic, listen: str, token: str | None, **config: Any) -> Any:
    """Create the ``GInspector`` of ``--inspect`` (``config``: more of its parameters);
    ``ToolError`` if it cannot listen."""
    from fsmio.inspector import add_inspector

    try:
        return add_inspector(gaplic, listen, token, **config)
    except ValueError as exc:
        raise ToolError(f"--inspect {listen}: {exc}") from None
    except OSError as exc:
        reason = "port in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise ToolError(f"--inspect {listen}: cannot listen: {reason}", EXIT_FAILURE) from None


def with_inspector(on_started: Any, listen: str, token: str | None) -> Any:
    """``on_started`` preceded by the creation of the ``--inspect`` GInspector."""

    def started(gaplic: GAplic, *more: Any) -> None:
        add_inspector_or_fail(gaplic, listen, token)
        if on_started is not None:
            on_started(gaplic, *more)

    return started


def check_app(config_path: str | Path, **kw: Any) -> int:
    """``fsmio run --check``."""
    return run_app(config_path, check_only=True, **kw)
