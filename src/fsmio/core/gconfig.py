"""``GConfig``: the typed, template-driven parameters of every gobj.

A template maps each parameter name to ``[type, default, flags, validate, description]``::

    GCONFIG = {
        'port': [int, 0, 0, None, "server or client port"],
        'trace_dump': [bool, False, GConfig.FLAG_DIRECT_ATTR, None, "trace tx/rx"],
    }

``type`` is one of ``None, str, int, float, bool, list, tuple, dict, bytes``; ``flags`` may
be ``FLAG_DIRECT_ATTR`` (the value is stored as ``gobj.<name>``, so a property setter runs;
otherwise it lives in ``gobj.config.<name>``); ``validate`` is ``None`` or a callable that
takes the raw value and returns the value to use (raising means invalid).

Theory of operation
-------------------
A template (or a list of templates, later ones overriding earlier ones) is compiled once
and cached: the defaults are converted and validated then, and become the *class*
attributes of a small namespace class made for that template.  ``gobj.config`` is an
instance of it whose ``__dict__`` holds only what was written — so ten thousand idle
connections do not each carry a copy of every default.  A mutable default (a list, a
dict) of ``config`` is copied into the instance the first time it is read, so that no two
gobjs share one and a gobj that never reads it carries none (direct ones are copied at
creation).  A default ``'app:<name>'`` is resolved for each object when it is made, as
ginsfsm did when it wrote the defaults.

Writes are all-or-nothing: ``write_parameters`` converts every value first and stores
nothing if any is unknown or invalid; the ``GConfigValidateError`` names the gclass, the
parameter, the value and what was expected.

Creating a gobj is on the hot path of a server (one per accepted connection), so what can
be decided once per gclass is: a ``GClassGConfig`` (one per gclass and compiled template,
found with one dict look-up and an identity check of the template objects) holds the
mutable defaults as ``(name, default, copy)`` tuples, the direct defaults likewise, and the
names of the direct parameters to which ginsfsm's rule "a non-callable value never replaces
a method of the gclass" can apply at all — those whose gclass attribute is callable and not
a property, *as the gclass is when its first object is made* (a gclass given such a method
later, by assignment, is not seen).  The other direct parameters are plain attribute
stores: when none is ruled, a small function generated once per gclass stores every
default with one assignment each (``self.x = default``, so property setters still run,
in template order).  The MRO's class names are ranked once for ``filter_parameters``.
A written value whose type is exactly the parameter's own (``int`` for an ``int``, any
value for a ``None`` type), with no validator, is already what the conversion would give:
it is stored as it is (a ``str`` beginning ``app:`` still goes through the look-up).
``list`` and ``dict`` values are always copied by the conversion, so they take the full
path; so does every value of a parameter with a validator.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import json
import keyword
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import is_
from typing import Any, Final

from . import registry
from .errors import GConfigTemplateError, GConfigValidateError

__all__ = [
    "FLAG_DIRECT_ATTR",
    "CompiledGConfig",
    "ConfigNamespace",
    "GClassGConfig",
    "GConfig",
    "ParamSpec",
    "add_gconfig",
    "asbool",
    "compile_gconfig",
    "finite_number",
    "fraction",
    "non_negative_int",
    "non_negative_number",
    "number_in",
    "port_number",
    "positive_int",
    "positive_number",
]

_LOG = logging.getLogger("fsmio")

FLAG_DIRECT_ATTR: Final = 0x01
ACCEPTED_TYPES: Final = (None, str, int, float, bool, list, tuple, dict, bytes)

_TRUE_WORDS = frozenset(("t", "true", "y", "yes", "on", "1"))
_FALSE_WORDS = frozenset(("f", "false", "n", "no", "off", "0", "", "none"))
_MUTABLE = (list, dict, set, bytearray)
# Types whose exact instances convert_value() returns as they are (with no validator):
# int(v), float(v), str(v), bytes(v), tuple(v) and asbool(v) give v back for exact ones;
# list(v) and dict(v) make copies, so lists and dicts are not among them.
_KEPT_AS_IS = frozenset((str, int, float, bool, bytes, tuple))


class _AnyType:
    """``ParamSpec.exact`` of a ``None``-typed parameter: every value is kept as it is."""


_ANY: Final = _AnyType


def asbool(value: Any) -> bool:
    """``True`` for ``True``, non-zero numbers and ``'t', 'true', 'y', 'yes', 'on', '1'``.

    ``False`` for ``None``, ``False``, zero and ``'f', 'false', 'n', 'no', 'off', '0', ''``
    (case-insensitive).  Any other string raises ``ValueError``: a typo such as ``'flase'``
    must not silently read as False.
    """
    if value is None:
        return False
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise ValueError(f"{value!r} is not a boolean word (true/false, yes/no, on/off, 1/0)")
    return bool(value)


class ParamSpec:
    """One compiled template entry."""

    __slots__ = (
        "default",
        "description",
        "direct",
        "exact",
        "flags",
        "name",
        "type",
        "validate",
    )

    def __init__(
        self,
        name: str,
        type_: type | None,
        default: Any,
        flags: int,
        validate: Callable[[Any], Any] | None,
        description: str | None,
    ) -> None:
        self.name = name
        self.type = type_
        self.default = default
        self.flags = flags
        self.direct = bool(flags & FLAG_DIRECT_ATTR)
        self.validate = validate
        self.description = description or ""
        # The type of the values that convert_value() returns unchanged (_ANY: every
        # value), or None: those are stored as written (write_parameters' fast path).
        self.exact: Any = None
        if validate is None:
            if type_ is None:
                self.exact = _ANY
            elif type_ in _KEPT_AS_IS:
                self.exact = type_

    @property
    def type_name(self) -> str:
        return "None" if self.type is None else self.type.__name__

    def new_default(self) -> Any:
        """The default, copied when it is mutable; an ``'app:<name>'`` default resolved."""
        if _app_default(self.default):
            return registry.get_global_app(self.default[4:])
        return copy.copy(self.default) if isinstance(self.default, _MUTABLE) else self.default


class ConfigNamespace:
    """Base of the per-template namespaces behind ``gobj.config``."""

    _specs: dict[str, ParamSpec] = {}

    def __getattr__(self, name: str) -> Any:
        # Only reached when ``name`` is neither written nor a default: not a parameter.
        raise AttributeError(f"no configuration parameter {name!r}")

    def __repr__(self) -> str:
        values = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._specs)
        return f"config({values})"


class _CopiedOnRead:
    """The class-level default of a ``config`` parameter whose default is mutable (a
    list, a dict...): the first read of it on an object stores that object's own copy
    (in the instance, where later reads find it first: a non-data descriptor), so no two
    objects share one, and an object that never reads it carries none."""

    __slots__ = ("copier", "default", "name")

    def __init__(self, name: str, default: Any, copier: Callable[[Any], Any]) -> None:
        self.name = name
        self.default = default
        self.copier = copier

    def __get__(self, obj: Any, cls: Any = None) -> Any:
        if obj is None:
            return self.default
        value = self.copier(self.default)
        setattr(obj, self.name, value)
        return value


def _app_default(value: Any) -> bool:
    """Whether a default is an ``'app:<name>'`` reference (resolved per object)."""
    return isinstance(value, str) and value.startswith("app:")


class CompiledGConfig:
    """A validated template: its parameters, and the namespace class with the defaults."""

    __slots__ = ("direct", "gclasses", "mutable", "namespace_cls", "params", "templates")

    def __init__(self, templates: tuple[Mapping[str, Any], ...], params: dict[str, ParamSpec]):
        self.templates = templates
        self.params = params
        #: gclass -> its GClassGConfig of this template.
        self.gclasses: dict[type, GClassGConfig] = {}
        self.direct = tuple(spec for spec in params.values() if spec.direct)
        self.mutable = tuple(
            spec
            for spec in params.values()
            if not spec.direct and isinstance(spec.default, _MUTABLE)
        )
        defaults: dict[str, Any] = {}
        for name, spec in params.items():
            if spec.direct:
                continue
            copier = _copier(spec.default)
            defaults[name] = (
                spec.default if copier is None else _CopiedOnRead(name, spec.default, copier)
            )
        defaults["_specs"] = params
        self.namespace_cls: type[ConfigNamespace] = type(
            "ConfigNamespace", (ConfigNamespace,), defaults
        )

    def for_gclass(self, gclass: type) -> GClassGConfig:
        """This template as ``gclass`` uses it (made once per gclass)."""
        bound = self.gclasses.get(gclass)
        if bound is None:
            bound = self.gclasses[gclass] = GClassGConfig(self, gclass)
        return bound


def _copier(value: Any) -> Callable[[Any], Any] | None:
    """How to copy a default for each object: None when it is not mutable."""
    if not isinstance(value, _MUTABLE):
        return None
    # The exact builtin types have a copy() that is what copy.copy() calls for them.
    return type(value).copy if type(value) in _MUTABLE else copy.copy


def _APP_DEFAULT(value: str) -> Any:
    """The "copier" of an ``'app:<name>'`` default: the application registered under
    ``<name>`` now (None, logged, if there is none)."""
    return registry.get_global_app(value[4:])


def _replaces_a_method(gclass: type, name: str) -> bool:
    """Whether ginsfsm's rule can apply to direct parameter ``name`` of ``gclass``."""
    current = getattr(gclass, name, None)
    return callable(current) and not isinstance(current, property)


class GClassGConfig(CompiledGConfig):
    """A compiled template as one gclass uses it: what ``GConfig.__init__`` and
    ``write_parameters`` would otherwise work out again for every object.

    ``gobj._gconfig`` is one of these (it is a ``CompiledGConfig``: ``templates``,
    ``params``...).  ``init_config`` (the ``'app:<name>'`` defaults of ``config``) and
    ``init_direct`` are ``(name, default, copy)`` tuples (``copy`` None for an immutable
    default, ``_APP_DEFAULT`` to resolve an app reference), ``ruled`` the direct parameters
    whose gclass attribute is a method (ginsfsm's rule applies: ``GConfig._store``),
    ``kinds`` maps each parameter to ``(spec, kind)``: 0 in ``config``, 1 a plain direct
    attribute, 2 a ruled one; ``mro_ranks`` the class names of the gclass's MRO and their
    first index (for ``filter_parameters``); ``store_defaults(obj, obj.config)`` gives a
    new object its defaults.
    """

    __slots__ = (
        "compiled",
        "gclass",
        "init_config",
        "init_direct",
        "kinds",
        "mro_ranks",
        "ruled",
        "store_defaults",
    )

    def __init__(self, compiled: CompiledGConfig, gclass: type) -> None:
        # Not CompiledGConfig.__init__: the namespace class and specs are the compiled's.
        self.templates = compiled.templates
        self.params = compiled.params
        self.direct = compiled.direct
        self.mutable = compiled.mutable
        self.namespace_cls = compiled.namespace_cls
        self.gclasses = compiled.gclasses
        self.compiled = compiled
        self.gclass = gclass
        self.ruled = frozenset(
            spec.name for spec in compiled.direct if _replaces_a_method(gclass, spec.name)
        )
        # Mutable defaults of ``config`` are copied when first read (_CopiedOnRead), so
        # nothing is stored for them here; an 'app:<name>' default is resolved for each
        # object, as ginsfsm did when it wrote the defaults (_APP_DEFAULT marks them).
        self.init_config = tuple(
            (spec.name, spec.default, _APP_DEFAULT)
            for spec in compiled.params.values()
            if not spec.direct and _app_default(spec.default)
        )
        # None when a ruled one is among them: GConfig.__init__ then stores them one by one
        # through _store (in template order, as property setters may expect).
        self.init_direct: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...] | None = (
            None
            if self.ruled
            else tuple(
                (
                    spec.name,
                    spec.default,
                    _APP_DEFAULT if _app_default(spec.default) else _copier(spec.default),
                )
                for spec in compiled.direct
            )
        )
        self.kinds: dict[str, tuple[ParamSpec, int]] = {
            name: (spec, (2 if name in self.ruled else 1) if spec.direct else 0)
            for name, spec in compiled.params.items()
        }
        ranks: dict[str, int] = {}
        for index, cls in enumerate(gclass.__mro__):
            ranks.setdefault(cls.__name__, index)
        self.mro_ranks = ranks
        self.store_defaults = _defaults_storer(self)


def _defaults_storer(bound: GClassGConfig) -> Callable[[Any, ConfigNamespace], None]:
    """The function that gives a new object of ``bound.gclass`` its defaults:
    ``store(obj, obj.config)``.

    It stores the ``'app:<name>'`` defaults of ``config`` (resolved), then the direct
    ones in template order (mutable ones copied), as ``setattr`` would.  Made once per
    gclass, as source code with one attribute assignment per parameter: a gobj is made
    per accepted connection, and ``self.name = value`` costs a third of
    ``setattr(self, name, value)`` in a loop.  When
    ginsfsm's rule applies to one of them, or a name is not an identifier, a plain loop.
    """
    init_config, init_direct = bound.init_config, bound.init_direct
    names = [name for name, _, _ in init_config]
    if init_direct is not None:
        names.extend(name for name, _, _ in init_direct)
    if init_direct is None or not all(
        name.isidentifier() and not keyword.iskeyword(name) for name in names
    ):

        def store_in_a_loop(obj: Any, config: ConfigNamespace) -> None:
            for name, default, copier in init_config:
                setattr(config, name, default if copier is None else copier(default))
            if init_direct is None:
                for spec in bound.direct:
                    obj._store(spec, spec.new_default())
            else:
                for name, default, direct_copier in init_direct:
                    setattr(obj, name, default if direct_copier is None else direct_copier(default))

        return store_in_a_loop
    lines = ["def store_defaults(obj, config):"]
    values: dict[str, Any] = {}
    for target, entries in (("config", init_config), ("obj", init_direct)):
        for name, default, copier in entries:
            ref = f"_v{len(values)}"
            values[ref] = default
            if copier is None:
                lines.append(f"    {target}.{name} = {ref}")
            else:
                values[f"{ref}_copy"] = copier
                lines.append(f"    {target}.{name} = {ref}_copy({ref})")
    lines.append("    return None")
    code = compile("\n".join(lines), f"<GConfig defaults of {bound.gclass.__qualname__}>", "exec")
    # Safe: the names are checked identifiers; the values are referenced, never rendered.
    exec(code, values)
    store: Callable[[Any, ConfigNamespace], None] = values["store_defaults"]
    return store


_compiled: dict[tuple[int, ...], CompiledGConfig] = {}
_COMPILED_MAX: Final = 1024
#: gclass -> the GClassGConfig its last object was made with (one look-up per object).
_last_of_gclass: dict[type, GClassGConfig] = {}


def _as_template_list(templates: Any) -> tuple[Mapping[str, Any], ...]:
    if templates is None:
        return ()
    if isinstance(templates, Mapping):
        return (templates,)
    if isinstance(templates, (list, tuple)):
        return tuple(templates)
    raise GConfigTemplateError(
        f"a GConfig template must be a dict or a list of dicts, not {type(templates).__name__}"
    )


def compile_gconfig(templates: Any, owner: str = "GConfig") -> CompiledGConfig:
    """Validate and compile a template or list of templates (cached per template objects)."""
    template_list = _as_template_list(templates)
    key = tuple(id(t) for t in template_list)
    cached = _compiled.get(key)
    if cached is not None and all(
        a is b for a, b in zip(cached.templates, template_list, strict=True)
    ):
        return cached
    merged: dict[str, Sequence[Any]] = {}
    for template in template_list:
        if not isinstance(template, Mapping):
            raise GConfigTemplateError(
                f"{owner}: a GConfig template must be a dict, not {type(template).__name__}"
            )
        merged.update(template)
    params: dict[str, ParamSpec] = {}
    for name, definition in merged.items():
        spec = _compile_entry(owner, name, definition)
        try:
            spec.default = convert_value(spec, spec.default)
        except _Invalid as exc:
            raise GConfigValidateError(
                f"{owner}: invalid default {spec.default!r} for parameter {name!r}: expected {exc}"
            ) from None
        params[name] = spec
    compiled = CompiledGConfig(template_list, params)
    if len(_compiled) >= _COMPILED_MAX:
        # Templates built anew for each object (a dict literal in __init__) would
        # otherwise each stay here, and alive, for ever.
        _compiled.clear()
    _compiled[key] = compiled
    return compiled


def _compile_entry(owner: str, name: Any, definition: Any) -> ParamSpec:
    if not isinstance(name, str) or not name:
        raise GConfigTemplateError(f"{owner}: parameter name {name!r} is not a non-empty str")
    if not isinstance(definition, (list, tuple)) or len(definition) != 5:
        raise GConfigTemplateError(
            f"{owner}: parameter {name!r}: the definition must be "
            f"[type, default, flags, validate, description], not {definition!r}"
        )
    type_, default, flags, validate, description = definition
    if type_ not in ACCEPTED_TYPES and not (
        isinstance(type_, type) and issubclass(type_, tuple(t for t in ACCEPTED_TYPES if t))
    ):
        raise GConfigTemplateError(
            f"{owner}: parameter {name!r}: type {type_!r} is not one of "
            "None, str, int, float, bool, list, tuple, dict, bytes"
        )
    if validate is not None and not callable(validate):
        raise GConfigTemplateError(f"{owner}: parameter {name!r}: validate is not callable")
    if description is not None and not isinstance(description, str):
        raise GConfigTemplateError(f"{owner}: parameter {name!r}: description is not a str")
    if flags is None:
        flags = 0
    if not isinstance(flags, int):
        raise GConfigTemplateError(f"{owner}: parameter {name!r}: flags must be an int")
    return ParamSpec(name, type_, default, flags, validate, description)


class _Invalid(Exception):
    """A value that a parameter cannot take; the message says what was expected."""


def _split_words(text: str) -> list[str]:
    return [w for w in text.replace(",", " ").split() if w]


def convert_value(spec: ParamSpec, value: Any) -> Any:
    """Run the validator, then convert ``value`` to the parameter's type."""
    if spec.validate is not None:
        try:
            value = spec.validate(value)
        except Exception as exc:
            raise _Invalid(f"a value accepted by {spec.validate.__name__}: {exc}") from None
    type_ = spec.type
    if type_ is None:
        return value
    if issubclass(type_, bool):
        try:
            return asbool(value)
        except ValueError:
            raise _Invalid("a bool (true/false, yes/no, on/off, 1/0)") from None
    if issubclass(type_, int):
        if isinstance(value, int):
            return type_(value)
        if isinstance(value, float) and value.is_integer():
            return type_(int(value))
        if isinstance(value, str):
            try:
                return type_(value.strip())
            except ValueError:
                pass
        raise _Invalid("an int")
    if issubclass(type_, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return type_(value)
        if isinstance(value, str):
            try:
                return type_(value.strip())
            except ValueError:
                pass
        raise _Invalid("a number")
    if issubclass(type_, str):
        if value is None:
            return None
        if isinstance(value, bytes):
            return value.decode("latin-1")
        return type_(value)
    if issubclass(type_, bytes):
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return type_(value.encode("latin-1"))
            except UnicodeEncodeError:
                raise _Invalid("bytes (or a latin-1 str)") from None
        if isinstance(value, (bytes, bytearray, memoryview)):
            return type_(value)
        raise _Invalid("bytes (or a latin-1 str)")
    if issubclass(type_, (list, tuple)):
        if value is None:
            return type_()
        if isinstance(value, str):
            return type_(_split_words(value))
        if isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
            return type_(value)
        return type_([value])
    if issubclass(type_, dict):
        if value is None:
            return type_()
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except ValueError:
                raise _Invalid("a dict (or a JSON object string)") from None
        try:
            return type_(value)
        except (TypeError, ValueError):
            raise _Invalid("a dict (or a JSON object string)") from None
    raise _Invalid(type_.__name__)  # pragma: no cover - template validation forbids it


def finite_number(value: Any) -> Any:
    """A validator: a finite number (or a str holding one); rejects NaN and infinities."""
    number = float(value.strip()) if isinstance(value, str) else value
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not finite")
    return number


def number_in(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    integer: bool = False,
) -> Callable[[Any], Any]:
    """A validator: a finite number (an int with ``integer``) in ``[low, high]``.

    ``low_open`` excludes ``low`` itself.  Strings from config files are parsed; bools are
    not numbers here.  The message says what the range is: ``"0.5 is not an int >= 1"``.
    """
    kind = "an int" if integer else "a number"
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"<= {high:g}")
    expected = f"{kind} {' and '.join(bounds)}".strip()

    def validate(value: Any) -> Any:
        number = finite_number(value)
        if integer:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError(f"{value!r} is not {expected}")
            number = int(number)
        too_low = low is not None and (number <= low if low_open else number < low)
        if too_low or (high is not None and number > high):
            raise ValueError(f"{value!r} is not {expected}")
        return number

    validate.__name__ = validate.__qualname__ = f"number_in({expected})"
    return validate


#: Validators for the common cases (use these rather than writing one more).
positive_number: Final = number_in(0, low_open=True)
non_negative_number: Final = number_in(0)
positive_int: Final = number_in(0, low_open=True, integer=True)
non_negative_int: Final = number_in(0, integer=True)
fraction: Final = number_in(0, 1)
port_number: Final = number_in(0, 65535, integer=True)


def add_gconfig(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """A new template: ``base`` with ``extra`` added (``extra`` wins on a name clash)."""
    merged = dict(base)
    merged.update(extra)
    return merged


def _same_templates(templates: Any, known: tuple[Mapping[str, Any], ...]) -> bool:
    """Whether ``templates`` (as given to ``GConfig``) are the template objects ``known``."""
    if isinstance(templates, (list, tuple)):
        if len(templates) != len(known):
            return False
        if len(known) == 2:  # GObj's base template and the gclass's: the common case
            return templates[0] is known[0] and templates[1] is known[1]
        return all(map(is_, templates, known))
    if templates is None:
        return not known
    return len(known) == 1 and templates is known[0]


class GConfig:
    """A set of typed parameters described by a template (see the module doc)."""

    FLAG_DIRECT_ATTR: Final = FLAG_DIRECT_ATTR

    config: ConfigNamespace
    logger: logging.Logger | None = None

    _gconfig: GClassGConfig

    def __init__(self, templates: Any, logger: logging.Logger | None = None) -> None:
        gclass = type(self)
        bound = _last_of_gclass.get(gclass)
        if bound is None or not _same_templates(templates, bound.templates):
            bound = compile_gconfig(templates, gclass.__name__).for_gclass(gclass)
            _last_of_gclass[gclass] = bound
        self._gconfig = bound
        self.config = config = bound.namespace_cls()
        bound.store_defaults(self, config)
        if logger is not None:
            self.logger = logger

    # ------------------------------------------------------------------------------------
    def _owner(self) -> str:
        name = getattr(self, "name", "")
        return f"{type(self).__name__} {name!r}" if name else type(self).__name__

    def _spec(self, name: str) -> ParamSpec:
        spec = self._gconfig.params.get(name)
        if spec is None:
            known = list(self._gconfig.params)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise GConfigValidateError(
                f"{self._owner()}: unknown parameter {name!r}{hint} "
                f"(parameters: {', '.join(sorted(n for n in known if not n.startswith('_')))})"
            )
        return spec

    def _convert(self, spec: ParamSpec, value: Any) -> Any:
        try:
            value = convert_value(spec, value)
        except _Invalid as exc:
            raise GConfigValidateError(
                f"{self._owner()}: invalid value {value!r} for parameter {spec.name!r}: "
                f"expected {exc}"
            ) from None
        if isinstance(value, str) and value.startswith("app:"):
            value = registry.get_global_app(value[4:])
        return value

    def _store(self, spec: ParamSpec, value: Any) -> None:
        if not spec.direct:
            setattr(self.config, spec.name, value)
            return
        # ginsfsm's rule: a non-callable value never replaces a method of the gclass.
        current = getattr(type(self), spec.name, None)
        if callable(current) and not isinstance(current, property) and not callable(value):
            if value is not None:
                _LOG.error(
                    "%s: parameter %r would replace a method; not written",
                    self._owner(),
                    spec.name,
                )
            return
        setattr(self, spec.name, value)

    # ------------------------------------------------------------------------------------
    def write_parameters(self, **kw: Any) -> None:
        """Write parameters; nothing is written if any name is unknown or any value invalid."""
        if not kw:
            return
        kinds = self._gconfig.kinds
        if len(kw) == 1:  # the common case, in one pass (GSock's ip=, n_gsocks=...)
            [(name, value)] = kw.items()
            entry = kinds.get(name)
            if entry is None:
                self._spec(name)  # raises
                return  # pragma: no cover - _spec raised
            spec, kind = entry
            exact = spec.exact
            if (exact is not _ANY and type(value) is not exact) or (
                type(value) is str and value.startswith("app:")
            ):
                value = self._convert(spec, value)
            if kind == 0:
                setattr(self.config, name, value)
            elif kind == 1:
                setattr(self, name, value)
            else:
                self._store(spec, value)
            return
        if not kw.keys() <= kinds.keys():
            for name in kw:
                self._spec(name)  # raises for the first unknown one, as it names it
        # Convert them all first (kw is our own dict: the values are replaced in place).
        for name, value in kw.items():
            spec = kinds[name][0]
            exact = spec.exact
            if (exact is _ANY or type(value) is exact) and not (
                type(value) is str and value.startswith("app:")
            ):
                continue  # already what the conversion would give
            kw[name] = self._convert(spec, value)
        config = self.config
        for name, value in kw.items():
            spec, kind = kinds[name]
            if kind == 0:
                setattr(config, name, value)
            elif kind == 1:
                setattr(self, name, value)
            else:
                self._store(spec, value)

    def write_few_parameters(self, parameter_list: Iterable[str], **kw: Any) -> None:
        """Write only the parameters named in ``parameter_list`` that ``kw`` holds."""
        self.write_parameters(**{name: kw[name] for name in parameter_list if name in kw})

    def _write_parameter(self, name: str, value: Any) -> None:
        self.write_parameters(**{name: value})

    def read_parameters(self) -> dict[str, Any]:
        """Every parameter and its current value."""
        return {name: self.read_parameter(name) for name in self._gconfig.params}

    def read_parameter(self, name: str) -> Any:
        """The value of one parameter (``GConfigValidateError`` if there is no such one)."""
        spec = self._spec(name)
        return getattr(self if spec.direct else self.config, name)

    def reset_parameter(self, name: str) -> None:
        """Give a parameter its default value back."""
        spec = self._spec(name)
        if spec.direct or _app_default(spec.default):
            self._store(spec, spec.new_default())
            return
        # Back to the class default (a mutable one is copied again when next read); not
        # through __dict__, which would give the namespace a materialized dict for good.
        with contextlib.suppress(AttributeError):
            delattr(self.config, name)

    def reset_all_parameters(self) -> None:
        """Give every parameter its default value back."""
        for name in self._gconfig.params:
            self.reset_parameter(name)

    def get_gconfig_params(self) -> dict[str, ParamSpec]:
        """The compiled template: parameter name -> ``ParamSpec`` (for docs and tools)."""
        return dict(self._gconfig.params)

    def filter_parameters(self, **settings: Any) -> dict[str, Any]:
        """The settings that apply to this object, by ginsfsm's dotted names.

        A key ``A.B`` (split at the last dot) sets parameter ``B`` when ``A`` is this
        object's name, or the name of its class or of one of its base classes (``GObj``
        reaches every gobj); a bare key sets that parameter on every object that has it.
        The most specific key wins: the name, then the nearest class, then farther bases,
        then the bare key.  A key aimed at this object by its name or its own class that
        names a parameter it does not have is an error (a typo must not pass silently); a
        key aimed at a base class (``GObj.trace_dump``) sets the parameter on the objects
        that have it, as in ginsfsm, and skips the others.
        """
        bound = self._gconfig
        params = bound.params
        mro_ranks = bound.mro_ranks
        my_name: str | None = None  # looked up at the first dotted key
        chosen: dict[str, tuple[int, Any]] = {}
        for key, value in settings.items():
            if "." not in key:
                # A bare key: for every object that has the parameter (GAplic settings
                # such as use_uvloop reach every gobj made: this is the common case).
                # Its rank is after every class of the MRO: any dotted key wins.
                if key in params and key not in chosen:
                    chosen[key] = (len(type(self).__mro__) + 1, value)
                continue
            target, _, param = key.rpartition(".")
            if my_name is None:
                my_name = getattr(self, "name", "")
            if my_name and target == my_name:
                rank = 0
            elif target in mro_ranks:
                rank = 1 + mro_ranks[target]
            else:
                continue
            if param not in params:
                if rank <= 1:
                    self._spec(param)  # raises, naming the parameter
                continue
            if param not in chosen or rank <= chosen[param][0]:
                chosen[param] = (rank, value)
        if not chosen:
            return {}
        return {param: value for param, (_, value) in chosen.items()}
