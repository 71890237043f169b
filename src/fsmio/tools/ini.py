"""``fsmio run app.ini``: ginsfsm's deployment files (PasteDeploy ini), run by fsmio.

ginsfsm's ``gserve`` ran an ini file: PasteDeploy (``loadapp``) builds the main GAplic —
normally through a ``[composite:main]`` whose ``use = call:...:gaplic_factory`` names the
section of the main GAplic, of GAplics run in threads and of WSGI apps — and the logging
sections (``[loggers]``, ``[handlers]``, ``[formatters]``...) configure ``logging``
through ``logging.config.fileConfig``.  The keys of an ``[app:...]`` section are what
its factory gets as ``**local_conf``; ginsfsm's factories pass them to
``GAplic(name, roles, **local_conf)``, so they become the GAplic's dotted settings
(``wsgi-server.port = 8000``, ``GSock.trace_dump = true``, ``GObj.trace_mach = true``),
as strings that GConfig converts.  ``fsmio run`` does the same, with PasteDeploy (the
optional extra ``fsmio[ini]``).  TOML (``fsmio.tools.runner``) stays the recommended
format; ``docs/tools.md`` maps one onto the other.

Decisions (where the issue was silent):

* Validated first, like a TOML file, and every problem reported at once as
  ``FILE:LINE: [section] key: message`` (exit 2, nothing run); ``--check`` stops there.
  What is checked without running any factory: the ini syntax; each ``use = call:M:F``
  (the module imports, F is callable; ``call:ginsfsm...`` gets the fsmio name to use);
  the sections a ``gaplic_factory`` composite names (``subprocesses`` is not available);
  each dotted key whose first part is a known gclass (imported by those modules, or
  fsmio's own): the parameter exists and the value converts; a bare key that some known
  gclass has: the value converts for it; the logging sections refer to each other
  correctly.  A dotted key naming no known gclass (a gobj name) is a note.
* The application loaded is the section ``main`` (``[composite:main]`` or ``[app:main]``),
  as PasteDeploy's default; it must return a GAplic.
* ``--set KEY=VALUE`` and ``--trace`` are added to the loaded GAplic's ``ini_settings``
  (for the gobjs created from then on) and written, as ``overwrite_parameters(-1, ...)``
  does, to the gobjs its factory already created.
* Logging: the file's logging sections when it has ``[loggers]`` (``%(here)s`` is the
  file's directory); otherwise fsmio's console logging at INFO.  ``--log-level`` sets
  the root logger's level after either; ``--log-format json`` applies only without
  logging sections.
"""

from __future__ import annotations

import configparser
import contextlib
import logging
import logging.config
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fsmio.aplic.gaplic import GAplic
from fsmio.core.errors import FsmioError
from fsmio.core.gobj import GObj

from . import EXIT_FAILURE, EXIT_INTERRUPTED, ToolError, import_module, instantiate

__all__ = ["IniFile", "check_ini", "load_ini", "run_ini"]

_LOG = logging.getLogger("fsmio")

#: PasteDeploy's section prefixes of loadable objects.
_OBJECT_PREFIXES: Final = ("app", "composite", "filter", "server", "pipeline", "filter-app")
#: The sections of logging.config.fileConfig.
_LOGGING_SECTIONS: Final = ("loggers", "handlers", "formatters")
#: Keys of an [app:...] section that are PasteDeploy's own, not settings.
_PASTE_KEYS: Final = ("use", "paste.app_factory", "paste.composite_factory")
_LEVELS: Final = ("CRITICAL", "ERROR", "WARNING", "WARN", "INFO", "DEBUG", "NOTSET")
_FACTORY_NAMES: Final = ("gaplic_factory",)


@dataclass
class IniFile:
    """An ini file, parsed (``%(here)s`` interpolated), with where each key is."""

    path: Path
    text: str
    parser: configparser.ConfigParser
    #: (section, key) -> line; section -> line of its header.
    lines: dict[tuple[str, str], int] = field(default_factory=dict)
    headers: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def where(self, section: str, key: str | None = None) -> str:
        line = self.lines.get((section, key or "")) if key else None
        line = line or self.headers.get(section)
        place = f"{self.path}:{line}" if line else str(self.path)
        return f"{place}: [{section}]" + (f" {key}" if key else "")

    def items(self, section: str) -> list[tuple[str, str]]:
        """The section's own keys (not [DEFAULT]'s), values interpolated when they can be."""
        own = [k for k in self.parser[section] if (section, k) in self.lines]
        out = []
        for key in own:
            try:
                value = self.parser.get(section, key)
            except configparser.Error:
                value = self.parser.get(section, key, raw=True)
            out.append((key, value))
        return out


def _paste() -> Any:
    try:
        # No stubs, no py.typed; and installed as a namespace package (a -nspkg.pth) that
        # mypy does not find in every environment.
        from paste.deploy import loadwsgi  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise ToolError(
            "running an .ini file needs PasteDeploy: pip install 'fsmio[ini]' "
            "(or write the application as TOML: see docs/tools.md)"
        ) from None
    return loadwsgi


def load_ini(path: str | Path) -> IniFile:
    """Read and parse an ini file; ``ToolError`` (with the line) for a syntax error."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ToolError(f"config file not found: {str(file)!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolError(f"cannot read config file {str(file)!r}: {exc}") from None
    loadwsgi = _paste()
    here = str(file.resolve().parent)
    parser = loadwsgi.NicerConfigParser(
        str(file), defaults={"here": here, "__file__": str(file.resolve())}
    )
    parser.optionxform = str  # PasteDeploy keeps the case of keys (GSock.trace_dump)
    try:
        parser.read_string(text, source=str(file))
    except configparser.Error as exc:
        match = re.search(r"line (\d+)", str(exc))
        where = f"{file}:{match.group(1)}" if match else str(file)
        message = str(exc).splitlines()[0]
        raise ToolError(f"{where}: ini syntax error: {message}") from None
    ini = IniFile(path=file, text=text, parser=parser)
    section = ""
    for number, raw in enumerate(text.splitlines(), 1):
        header = re.match(r"^\[([^\]]+)\]", raw)
        if header:
            section = header.group(1).strip()
            ini.headers.setdefault(section, number)
            continue
        key = re.match(r"^([^\s#;=:][^=:]*?)\s*[=:]", raw)
        if key and section:
            ini.lines.setdefault((section, key.group(1).strip()), number)
    return ini


# ----------------------------------------------------------------------------------------
#   Checking
# ----------------------------------------------------------------------------------------
def _object_section(ini: IniFile, name: str) -> str | None:
    """The section PasteDeploy loads for the object ``name`` (``app:name``...)."""
    for prefix in _OBJECT_PREFIXES:
        section = f"{prefix}:{name}"
        if ini.parser.has_section(section):
            return section
    return None


def _check_use(ini: IniFile, section: str, value: str, problems: list[str]) -> Any:
    """The factory a ``use = call:module:name`` names (None if not a call: or broken)."""
    where = ini.where(section, "use")
    if not value.startswith("call:"):
        if not value.startswith(("egg:", "config:", "package:")):
            problems.append(f"{where}: expected call:module:factory, egg:..., or config:...")
        else:
            ini.notes.append(f"{where}: {value!r} is not checked before running")
        return None
    module_name, _, attr = value[len("call:") :].strip().partition(":")
    if module_name.split(".")[0] == "ginsfsm":
        hint = f"call:fsmio:{attr}" if attr in _FACTORY_NAMES else "call:fsmio..."
        problems.append(f"{where}: {value!r} is ginsfsm's; with fsmio write {hint}")
        return None
    if not module_name or not attr:
        problems.append(f"{where}: expected call:module:factory, not {value!r}")
        return None
    try:
        module = import_module(module_name)
    except ToolError as exc:
        problems.append(f"{where}: {exc.message}")
        return None
    factory = getattr(module, attr, None)
    if not callable(factory):
        problems.append(f"{where}: module {module_name!r} has no callable {attr!r}")
        return None
    return factory


def _known_gclasses() -> dict[str, list[type[GObj]]]:
    from .runner import _known_gclasses as known

    return known()


def _check_setting(
    ini: IniFile, section: str, key: str, value: str, known: dict[str, list[type[GObj]]]
) -> list[str]:
    """Problems of one app-section key as a GAplic setting (notes go to ``ini.notes``)."""
    where = ini.where(section, key)
    target, dot, param = key.rpartition(".")
    if dot:
        if target not in known:
            ini.notes.append(
                f"{where}: no known gclass {target!r}: it applies only to a gobj of that "
                "name (or is read by the factory)"
            )
            return []
        classes = known[target]
    else:
        classes = [c for group in known.values() for c in group if _has_param(c, param)]
        if not classes:
            return []  # for the factory (ginsfsm's main() pops such keys), or unused
    problems: list[str] = []
    for cls in classes:
        try:
            probe = instantiate(cls)
        except ToolError:
            continue
        try:
            probe.write_parameters(**probe.filter_parameters(**{key: value}))
        except (FsmioError, ValueError) as exc:
            message = f"{where}: {exc}"
            if message not in problems:
                problems.append(message)
    return problems


def _has_param(cls: type[GObj], param: str) -> bool:
    try:
        return param in instantiate(cls).get_gconfig_params()
    except ToolError:
        return False


def _check_logging(ini: IniFile, problems: list[str]) -> None:
    parser = ini.parser
    if not parser.has_section("loggers"):
        for section in parser.sections():
            if section in ("handlers", "formatters") or section.startswith("logger_"):
                problems.append(f"{ini.where(section)}: logging sections without [loggers]")
                return
        return

    def names(section: str) -> list[str]:
        raw = parser.get(section, "keys", raw=True, fallback="")
        return [n.strip() for n in raw.split(",") if n.strip()]

    loggers = names("loggers")
    handlers = names("handlers") if parser.has_section("handlers") else []
    formatters = names("formatters") if parser.has_section("formatters") else []
    if "root" not in loggers:
        problems.append(f"{ini.where('loggers', 'keys')}: the loggers must include 'root'")
    for name in loggers:
        section = f"logger_{name}"
        if not parser.has_section(section):
            problems.append(f"{ini.where('loggers', 'keys')}: no section [{section}]")
            continue
        level = parser.get(section, "level", raw=True, fallback="NOTSET").strip()
        if level.upper() not in _LEVELS and not level.isdigit():
            problems.append(f"{ini.where(section, 'level')}: unknown level {level!r}")
        raw = parser.get(section, "handlers", raw=True, fallback="")
        problems.extend(
            f"{ini.where(section, 'handlers')}: handler {handler!r} is not in [handlers] keys"
            for handler in (h.strip() for h in raw.split(","))
            if handler and handler not in handlers
        )
        qualname = parser.get(section, "qualname", raw=True, fallback="").strip()
        if name != "root" and not qualname:
            problems.append(f"{ini.where(section)}: missing qualname")
        elif qualname.split(".")[0] == "ginsfsm":
            ini.notes.append(
                f"{ini.where(section, 'qualname')}: fsmio logs to the logger 'fsmio', "
                f"not {qualname!r}: write qualname = fsmio"
            )
    for name in handlers:
        section = f"handler_{name}"
        if not parser.has_section(section):
            problems.append(f"{ini.where('handlers', 'keys')}: no section [{section}]")
            continue
        if not parser.get(section, "class", raw=True, fallback=""):
            problems.append(f"{ini.where(section)}: missing class")
        formatter = parser.get(section, "formatter", raw=True, fallback="").strip()
        if formatter and formatter not in formatters:
            problems.append(
                f"{ini.where(section, 'formatter')}: formatter {formatter!r} is not in "
                "[formatters] keys"
            )
    problems.extend(
        f"{ini.where('formatters', 'keys')}: no section [formatter_{name}]"
        for name in formatters
        if not parser.has_section(f"formatter_{name}")
    )


def check_ini(ini: IniFile, app_name: str = "main") -> list[str]:
    """Every problem of ``ini`` found without running a factory (notes: ``ini.notes``)."""
    problems: list[str] = []
    parser = ini.parser
    if _object_section(ini, app_name) is None:
        problems.append(f"{ini.path}: no section [composite:{app_name}] or [app:{app_name}] to run")
    settings: list[tuple[str, str, str]] = []
    for section in parser.sections():
        prefix, colon, _ = section.partition(":")
        if not colon or prefix not in _OBJECT_PREFIXES:
            continue
        items = ini.items(section)
        values = dict(items)
        factory = None
        if "use" in values:
            factory = _check_use(ini, section, values["use"], problems)
        elif not any(k in values for k in _PASTE_KEYS):
            problems.append(f"{ini.where(section)}: missing use = call:module:factory")
        if prefix == "composite":
            if getattr(factory, "__name__", "") in _FACTORY_NAMES:
                _check_composite(ini, section, values, problems)
            continue
        if prefix != "app":
            continue
        for key, value in items:
            if key in _PASTE_KEYS or key.startswith(("set ", "get ")):
                continue
            settings.append((section, key, value))
    # The gclasses the factories' modules imported (and fsmio's own) are now known.
    import fsmio.gobjs  # noqa: F401

    known = _known_gclasses()
    for section, key, value in settings:
        problems.extend(_check_setting(ini, section, key, value, known))
    _check_logging(ini, problems)
    return problems


def _check_composite(
    ini: IniFile, section: str, values: dict[str, str], problems: list[str]
) -> None:
    if not values.get("main", "").strip():
        problems.append(f"{ini.where(section)}: missing main = <section of the main GAplic>")
    for key in ("main", "threads", "wsgi"):
        problems.extend(
            f"{ini.where(section, key)}: no section [app:{name}] (or composite:...)"
            for name in values.get(key, "").split()
            if _object_section(ini, name) is None
        )
    if values.get("subprocesses", "").strip():
        problems.append(
            f"{ini.where(section, 'subprocesses')}: GAplics in subprocesses are not available "
            "in fsmio yet; use threads = ..., or run each with its own `fsmio run`"
        )


# ----------------------------------------------------------------------------------------
#   Running
# ----------------------------------------------------------------------------------------
def _print(problems: list[str], notes: list[str]) -> None:
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)


def run_ini(
    config_path: str | Path,
    *,
    sets: list[str] | None = None,
    traces: str | None = None,
    trace_file: str | None = None,
    check_only: bool = False,
    log_level: str | None = None,
    log_format: str | None = None,
    on_started: Any = None,
) -> int:
    """``fsmio run FILE.ini``: check, load with PasteDeploy, run until stopped; the exit
    code (as ``fsmio.tools.runner.run_app``)."""
    from .runner import TRACE_KINDS, _log_level, parse_sets, parse_traces

    ini = load_ini(config_path)
    for entry in (str(ini.path.resolve().parent), str(Path.cwd())):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    settings: dict[str, str | bool] = dict(parse_sets(sets or []))
    kinds = parse_traces(traces)
    for kind in kinds:
        settings[TRACE_KINDS[kind]] = True
    if trace_file and "mach" not in kinds:
        settings[TRACE_KINDS["mach"]] = True
    level = _log_level(log_level) if log_level is not None else None
    problems = check_ini(ini)
    if problems:
        _print(problems, ini.notes)
        raise ToolError(
            f"{ini.path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}; "
            "nothing was run"
        )
    if check_only:
        _print([], ini.notes)
        print(f"{ini.path}: ok")
        return 0
    with _logging(ini, level, log_format, kinds, trace_file):
        gaplic = _load(ini)
        if settings:
            gaplic.ini_settings.update(settings)
            try:
                for gobj in [gaplic, *gaplic._roots]:
                    gobj.overwrite_parameters(-1, **settings)
            except (FsmioError, ValueError) as exc:
                gaplic.close()
                raise ToolError(f"--set/--trace: {exc}") from None
        return _run(ini, gaplic, on_started)


def _load(ini: IniFile) -> GAplic:
    loadwsgi = _paste()
    try:
        app = loadwsgi.loadapp(f"config:{ini.path.resolve()}", name="main")
    except ToolError:
        raise
    except (FsmioError, OSError) as exc:
        raise ToolError(
            f"{ini.path}: loading the application failed: {exc}", EXIT_FAILURE
        ) from None
    except Exception as exc:
        raise ToolError(
            f"{ini.path}: loading the application failed: {type(exc).__name__}: {exc}",
            EXIT_FAILURE,
        ) from None
    if not isinstance(app, GAplic):
        raise ToolError(f"{ini.path}: [main] must give a GAplic, not {app!r}")
    return app


def _run(ini: IniFile, gaplic: GAplic, on_started: Any) -> int:
    from .runner import _stop_on_signals, run_to_end

    def setup() -> None:
        if on_started is not None:
            on_started(gaplic)
        gaplic.add_callback(
            _LOG.info, "fsmio run: GAplic %r running from %s", gaplic.name, ini.path
        )

    with _stop_on_signals(gaplic):
        code = run_to_end(gaplic, "fsmio run", setup)
    if code != EXIT_INTERRUPTED:
        _LOG.info(
            "fsmio run: GAplic %r stopped%s", gaplic.name, f", exit code {code}" if code else ""
        )
    return code


@contextlib.contextmanager
def _logging(
    ini: IniFile,
    level: str | int | None,
    log_format: str | None,
    kinds: list[str],
    trace_file: str | None,
) -> Any:
    from .runner import AppConfig, TraceFileHandler, logging_setup

    if not ini.parser.has_section("loggers"):
        cfg = AppConfig(path=ini.path, text=ini.text, name=ini.path.stem)
        if level is not None:
            cfg.log_level = level
        if log_format is not None:
            cfg.log_format = log_format
        with logging_setup(cfg, kinds, trace_file):
            yield
        return
    here = str(ini.path.resolve().parent)
    try:
        logging.config.fileConfig(
            str(ini.path),
            defaults={"here": here, "__file__": str(ini.path.resolve())},
            disable_existing_loggers=False,
        )
    except Exception as exc:
        raise ToolError(f"{ini.path}: the logging sections: {type(exc).__name__}: {exc}") from None
    root = logging.getLogger()
    if level is not None:
        root.setLevel(level)
    trace_handler = TraceFileHandler(trace_file) if trace_file else None
    if trace_handler is not None:
        root.addHandler(trace_handler)
        root.setLevel(min(root.level or logging.INFO, logging.INFO))
    try:
        yield
    finally:
        if trace_handler is not None:
            root.removeHandler(trace_handler)
            trace_handler.close()
