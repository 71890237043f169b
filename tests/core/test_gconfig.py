"""GConfig (spec §1.4, §2.5): templates, conversions, writes, reads, resets, dotted filters.

Deliberate differences from ginsfsm checked here: invalid values and unknown names raise
``GConfigValidateError`` (ginsfsm logged and ignored them), writes are all-or-nothing, a
bool word that is not a bool word is invalid (ginsfsm read ``'flase'`` as False), ``float``
is an accepted type, dict parameters take JSON strings, and the user's template wins over
the GObj base template.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmio.core import gconfig as gconfig_module
from fsmio.core import registry
from fsmio.core.errors import GConfigTemplateError, GConfigValidateError
from fsmio.core.gconfig import (
    FLAG_DIRECT_ATTR,
    CompiledGConfig,
    GConfig,
    add_gconfig,
    asbool,
    compile_gconfig,
    convert_value,
    finite_number,
    port_number,
)
from fsmio.core.gobj import GOBJ_GCONFIG, GObj, build_gobj


def make(template: Any) -> GConfig:
    return GConfig(template)


_DEFAULTS: dict[Any, Any] = {int: 0, float: 0.0}


def one(type_: Any, value: Any, validate: Any = None, default: Any = None) -> Any:
    """Write ``value`` to a parameter of ``type_`` and read it back."""
    if default is None:
        default = _DEFAULTS.get(type_)
    cfg = GConfig({"p": [type_, default, 0, validate, "p"]})
    cfg.write_parameters(p=value)
    return cfg.read_parameter("p")


# --------------------------------------------------------------------------------------
#   Templates
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (3, "must be a dict or a list of dicts"),
        ([{"a": [int, 0, 0, None, ""]}, 5], "must be a dict, not int"),
        ({"": [int, 0, 0, None, ""]}, "parameter name '' is not a non-empty str"),
        ({1: [int, 0, 0, None, ""]}, "parameter name 1 is not"),
        ({"a": [int, 0, 0, None]}, "the definition must be"),
        ({"a": "int"}, "the definition must be"),
        ({"a": [int, 0, 0, None, "", 6]}, "the definition must be"),
        ({"a": [int, 0, 0, "nope", ""]}, "validate is not callable"),
        ({"a": [int, 0, 0, None, 5]}, "description is not a str"),
        ({"a": [set, None, 0, None, ""]}, "type <class 'set'> is not one of"),
        ({"a": ["int", None, 0, None, ""]}, "type 'int' is not one of"),
        ({"a": [int, 0, "direct", None, ""]}, "flags must be an int"),
    ],
)
def test_template_errors(template: Any, expected: str) -> None:
    with pytest.raises(GConfigTemplateError) as info:
        make(template)
    assert expected in str(info.value)


def test_template_error_names_the_owner() -> None:
    class MyConf(GConfig):
        pass

    with pytest.raises(GConfigTemplateError, match=r"^MyConf: parameter 'a'"):
        MyConf({"a": [int, 0, 0, None, 5]})


def test_invalid_default_raises_validate_error() -> None:
    with pytest.raises(GConfigValidateError, match="invalid default 'abc' for parameter 'n'"):
        make({"n": [int, "abc", 0, None, ""]})


def test_none_template_none_flags_none_description_and_subclass_types() -> None:
    class Port(int):
        pass

    cfg = make({"a": [Port, "7", None, None, None], "b": [None, object, 0, None, None]})
    assert cfg.read_parameter("a") == 7 and type(cfg.read_parameter("a")) is Port
    assert cfg.get_gconfig_params()["a"].description == ""
    assert cfg.get_gconfig_params()["a"].flags == 0
    assert cfg.read_parameter("b") is object
    assert make(None).read_parameters() == {}


def test_logger_argument() -> None:
    log = logging.getLogger("fsmio.tests.gconfig")
    assert GConfig({}, logger=log).logger is log
    assert GConfig({}).logger is None


def test_later_template_overrides_earlier() -> None:
    first = {"a": [int, 1, 0, None, ""], "b": [int, 2, 0, None, ""]}
    second = {"a": [str, "x", 0, None, ""]}
    cfg = make([first, second])
    assert cfg.read_parameters() == {"a": "x", "b": 2}


def test_compile_is_cached_per_template_objects() -> None:
    template = {"a": [int, 1, 0, None, ""]}
    assert compile_gconfig(template) is compile_gconfig(template)
    assert compile_gconfig([template]) is compile_gconfig(template)
    assert compile_gconfig(dict(template)) is not compile_gconfig(template)


def test_compile_cache_is_bounded() -> None:
    # A template made anew for each object (a dict literal in __init__) is compiled each
    # time; the cache must not keep every one of them alive.
    for n in range(gconfig_module._COMPILED_MAX + 10):
        assert GConfig({"a": [int, n, 0, None, ""]}).config.a == n
    assert len(gconfig_module._compiled) <= gconfig_module._COMPILED_MAX


def test_param_spec_helpers() -> None:
    cfg = make({"a": [None, None, 0, None, "x"], "b": [list, [1], 0, None, "y"]})
    specs = cfg.get_gconfig_params()
    assert specs["a"].type_name == "None"
    assert specs["b"].type_name == "list"
    assert repr(cfg.config) == "config(a=None, b=[1])"


def test_add_gconfig() -> None:
    base = {"a": [int, 1, 0, None, ""], "b": [int, 2, 0, None, ""]}
    extra = {"b": [int, 3, 0, None, ""]}
    merged = add_gconfig(base, extra)
    assert merged["b"] == [int, 3, 0, None, ""] and merged["a"] is base["a"]
    assert base["b"][1] == 2


# --------------------------------------------------------------------------------------
#   Conversions
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "word", ["t", "true", "TRUE", "y", "Yes", "on", "1", " true ", True, 1, 2.5]
)
def test_bool_true(word: Any) -> None:
    assert one(bool, word) is True
    assert asbool(word) is True


@pytest.mark.parametrize(
    "word", ["f", "false", "False", "n", "no", "OFF", "0", "", "none", None, False, 0]
)
def test_bool_false(word: Any) -> None:
    assert one(bool, word) is False
    assert asbool(word) is False


@pytest.mark.parametrize("word", ["flase", "maybe", "2", "yess"])
def test_bool_strict_words(word: str) -> None:
    # Deliberate: ginsfsm read any unknown word as False, so a typo silently disabled things.
    with pytest.raises(ValueError, match="not a boolean word"):
        asbool(word)
    with pytest.raises(GConfigValidateError, match="expected a bool"):
        one(bool, word)


@pytest.mark.parametrize(
    ("value", "expected"), [(5, 5), ("7", 7), (" -3 ", -3), (3.0, 3), (True, 1)]
)
def test_int(value: Any, expected: int) -> None:
    assert one(int, value) == expected
    assert type(one(int, value)) is int


@pytest.mark.parametrize("value", ["abc", "1.5", 3.5, None, [1], ""])
def test_int_invalid(value: Any) -> None:
    with pytest.raises(GConfigValidateError, match="expected an int"):
        one(int, value)


@pytest.mark.parametrize(
    ("value", "expected"), [(1.5, 1.5), (2, 2.0), ("0.25", 0.25), (" 1e3 ", 1000.0)]
)
def test_float(value: Any, expected: float) -> None:
    result = one(float, value)
    assert result == expected and type(result) is float


@pytest.mark.parametrize("value", ["x", None, True, [1.0]])
def test_float_invalid(value: Any) -> None:
    with pytest.raises(GConfigValidateError, match="expected a number"):
        one(float, value)


@pytest.mark.parametrize(
    ("value", "expected"), [("a", "a"), (5, "5"), (None, None), (b"\xe9t\xe9", "\xe9t\xe9")]
)
def test_str(value: Any, expected: Any) -> None:
    assert one(str, value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", b"abc"),
        ("\xe9", b"\xe9"),
        (b"x", b"x"),
        (bytearray(b"y"), b"y"),
        (memoryview(b"z"), b"z"),
        (None, None),
    ],
)
def test_bytes(value: Any, expected: Any) -> None:
    result = one(bytes, value)
    assert result == expected
    assert result is None or type(result) is bytes


@pytest.mark.parametrize("value", ["\u20ac", 5, [1]])
def test_bytes_invalid(value: Any) -> None:
    with pytest.raises(GConfigValidateError, match="expected bytes"):
        one(bytes, value)


@pytest.mark.parametrize("type_", [list, tuple])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a,b c", ["a", "b", "c"]),
        (" a ,, b\n c ", ["a", "b", "c"]),
        ("", []),
        (None, []),
        ((1, 2), [1, 2]),
        ([3], [3]),
        (5, [5]),
        (b"ab", [b"ab"]),
        ({"k": 1}, [{"k": 1}]),
        ({1}, [1]),
    ],
)
def test_list_and_tuple(type_: type, value: Any, expected: list[Any]) -> None:
    result = one(type_, value)
    assert type(result) is type_
    assert list(result) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": 1}, {"a": 1}),
        ([("a", 1)], {"a": 1}),
        ('{"a": [1, 2]}', {"a": [1, 2]}),
        ('[["a", 1]]', {"a": 1}),
        ("", {}),
        ("  ", {}),
        (None, {}),
    ],
)
def test_dict(value: Any, expected: dict[str, Any]) -> None:
    assert one(dict, value) == expected


@pytest.mark.parametrize("value", ["{not json", "[1, 2]", 5, [1]])
def test_dict_invalid(value: Any) -> None:
    with pytest.raises(GConfigValidateError, match="expected a dict"):
        one(dict, value)


def test_none_type_keeps_value_as_is() -> None:
    marker = object()
    assert one(None, marker) is marker
    assert one(None, "5") == "5"


def test_validate_runs_first_and_its_value_is_used() -> None:
    assert one(int, "10", validate=lambda v: int(v) * 2) == 20
    # The validator's result is still converted to the type.
    assert one(str, 5, validate=lambda v: v + 1, default=0) == "6"


def test_validate_raising_means_invalid() -> None:
    def positive(value: Any) -> Any:
        if int(value) <= 0:
            raise ValueError("must be positive")
        return value

    with pytest.raises(GConfigValidateError, match=r"accepted by positive: must be positive"):
        one(int, -1, validate=positive)


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (2.5, 2.5), ("3.5", 3.5), (" -1 ", -1.0)])
def test_finite_number(value: Any, expected: float) -> None:
    assert finite_number(value) == expected


@pytest.mark.parametrize("value", [math.nan, math.inf, "inf", "nan", True, None, [1], "x"])
def test_finite_number_rejects(value: Any) -> None:
    with pytest.raises(ValueError):
        finite_number(value)


# --------------------------------------------------------------------------------------
#   app:<name>
# --------------------------------------------------------------------------------------
def test_app_values(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(registry, "_apps", {})
    app = object()
    registry.set_global_app("wsgi", app)
    assert one(None, "app:wsgi") is app
    assert one(str, "app:wsgi") is app
    with caplog.at_level(logging.ERROR, logger="fsmio"):
        assert one(None, "app:missing") is None
    assert "no application registered as 'missing'" in caplog.text
    assert one(str, "apple") == "apple"


def test_app_defaults_are_resolved_per_object(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # ginsfsm wrote the defaults through the normal path: an 'app:<name>' default is the
    # application registered when the object is made (None, logged, if there is none).
    monkeypatch.setattr(registry, "_apps", {})
    template = {
        "app": [None, "app:later", 0, None, ""],
        "direct_app": [str, "app:later", FLAG_DIRECT_ATTR, None, ""],
        "n": [int, 1, 0, None, ""],
    }
    with caplog.at_level(logging.ERROR, logger="fsmio"):
        early = GConfig(template)
    assert early.read_parameter("app") is None and early.read_parameter("direct_app") is None
    assert "no application registered as 'later'" in caplog.text
    first, second = object(), object()
    registry.set_global_app("later", first)
    made = GConfig(template)
    assert made.read_parameter("app") is first and made.read_parameter("direct_app") is first
    registry.set_global_app("later", second)
    assert made.read_parameter("app") is first  # resolved once, when made
    made.reset_parameter("app")
    made.reset_all_parameters()
    assert made.read_parameter("app") is second and made.read_parameter("direct_app") is second
    assert early.read_parameter("n") == 1


# --------------------------------------------------------------------------------------
#   Direct attributes and the callable-protection rule
# --------------------------------------------------------------------------------------
class WithProperty(GConfig):
    def __init__(self) -> None:
        self.set_calls: list[Any] = []
        GConfig.__init__(
            self,
            {
                "speed": [int, 3, FLAG_DIRECT_ATTR, None, "a property"],
                "label": [str, "x", FLAG_DIRECT_ATTR, None, "a plain attribute"],
                "helper": [None, None, FLAG_DIRECT_ATTR, None, "named like a method"],
                "in_config": [int, 1, 0, None, "in config"],
            },
        )

    @property
    def speed(self) -> int:
        return self._speed

    @speed.setter
    def speed(self, value: int) -> None:
        self.set_calls.append(value)
        self._speed = value

    def helper(self) -> str:
        return "method"


def test_direct_attr_fires_property_setter() -> None:
    cfg = WithProperty()
    assert cfg.set_calls == [3]
    cfg.write_parameters(speed="9")
    assert cfg.set_calls == [3, 9]
    assert cfg.speed == 9 and cfg.read_parameter("speed") == 9
    assert cfg.label == "x"
    assert not hasattr(cfg.config, "label")
    assert cfg.config.in_config == 1
    assert "in_config" not in vars(cfg)


def test_any_nonzero_flag_with_bit_zero_clear_is_not_direct() -> None:
    # ``flags & FLAG_DIRECT_ATTR`` (ginsfsm tested ``flags and FLAG``: any flag was direct).
    cfg = make({"a": [int, 1, 0x02, None, ""]})
    assert cfg.config.a == 1 and "a" not in vars(cfg)
    assert GConfig.FLAG_DIRECT_ATTR == FLAG_DIRECT_ATTR == 1


def test_callable_protection(caplog: pytest.LogCaptureFixture) -> None:
    cfg = WithProperty()
    # The None default did not replace the method, silently.
    assert cfg.helper() == "method"
    with caplog.at_level(logging.ERROR, logger="fsmio"):
        cfg.write_parameters(helper=None)
    assert caplog.records == []
    with caplog.at_level(logging.ERROR, logger="fsmio"):
        cfg.write_parameters(helper=5)
    assert cfg.helper() == "method"
    assert "parameter 'helper' would replace a method; not written" in caplog.text
    # A callable value may replace it.
    cfg.write_parameters(helper=lambda: "replaced")
    assert cfg.helper() == "replaced"


# --------------------------------------------------------------------------------------
#   Writes, reads, resets
# --------------------------------------------------------------------------------------
TEMPLATE: dict[str, list[Any]] = {
    "port": [int, 0, 0, None, "port"],
    "host": [str, "", 0, None, "host"],
    "tags": [list, ["a"], 0, None, "tags"],
    "opts": [dict, {"k": 1}, 0, None, "opts"],
    "direct_list": [list, [1], FLAG_DIRECT_ATTR, None, "direct mutable"],
    "flag": [bool, False, FLAG_DIRECT_ATTR, None, "direct"],
}


def test_write_parameters_is_all_or_nothing() -> None:
    cfg = make(TEMPLATE)
    with pytest.raises(GConfigValidateError, match="'port'"):
        cfg.write_parameters(host="h", port="abc")
    assert cfg.read_parameter("host") == ""
    with pytest.raises(GConfigValidateError, match="unknown parameter 'nope'"):
        cfg.write_parameters(host="h", nope=1)
    assert cfg.read_parameter("host") == ""
    cfg.write_parameters(host="h", port="80")
    assert (cfg.config.host, cfg.config.port) == ("h", 80)


def test_unknown_parameter_message() -> None:
    cfg = make(TEMPLATE)
    with pytest.raises(GConfigValidateError) as info:
        cfg.write_parameters(prot=1)
    msg = str(info.value)
    assert msg.startswith("GConfig: unknown parameter 'prot'; did you mean 'port'?")
    assert "parameters: direct_list, flag, host, opts, port, tags" in msg
    with pytest.raises(GConfigValidateError) as info:
        cfg.write_parameters(zzzzzz=1)
    assert "did you mean" not in str(info.value)


def test_unknown_parameter_message_hides_private_names() -> None:
    cfg = make({"_private": [int, 0, 0, None, ""], "public": [int, 0, 0, None, ""]})
    with pytest.raises(GConfigValidateError) as info:
        cfg.write_parameters(x=1)
    assert "(parameters: public)" in str(info.value)


def test_write_few_parameters() -> None:
    cfg = make(TEMPLATE)
    cfg.write_few_parameters(["port", "host"], port=1, tags="x y", nope=3)
    assert cfg.config.port == 1
    assert cfg.config.tags == ["a"]
    assert cfg.config.host == ""


def test_private_write_parameter() -> None:
    cfg = make(TEMPLATE)
    cfg._write_parameter("port", "8")
    assert cfg.config.port == 8


def test_read_parameters_and_errors() -> None:
    cfg = make(TEMPLATE)
    assert cfg.read_parameters() == {
        "port": 0,
        "host": "",
        "tags": ["a"],
        "opts": {"k": 1},
        "direct_list": [1],
        "flag": False,
    }
    with pytest.raises(GConfigValidateError, match="unknown parameter 'nope'"):
        cfg.read_parameter("nope")
    with pytest.raises(AttributeError, match="no configuration parameter 'nope'"):
        _ = cfg.config.nope


def test_reset_parameter_and_reset_all() -> None:
    cfg = make(TEMPLATE)
    cfg.write_parameters(port=5, host="h", flag=True, direct_list=[9])
    cfg.config.tags.append("b")
    cfg.config.opts["z"] = 2
    cfg.reset_parameter("port")
    assert cfg.config.port == 0 and cfg.config.host == "h"
    cfg.reset_all_parameters()
    assert cfg.read_parameters() == make(TEMPLATE).read_parameters()
    # Reset gives a fresh copy of a mutable default, not the template's object.
    assert cfg.config.tags is not TEMPLATE["tags"][1]
    with pytest.raises(GConfigValidateError):
        cfg.reset_parameter("nope")  # ginsfsm: UnboundLocalError


def test_mutable_defaults_not_shared() -> None:
    a, b = make(TEMPLATE), make(TEMPLATE)
    a.config.tags.append("mine")
    a.config.opts["mine"] = True
    a.direct_list.append("mine")  # type: ignore[attr-defined]
    assert b.config.tags == ["a"]
    assert b.config.opts == {"k": 1}
    assert b.direct_list == [1]  # type: ignore[attr-defined]
    assert TEMPLATE["tags"][1] == ["a"]
    assert make(TEMPLATE).config.tags == ["a"]


def test_defaults_are_not_per_instance_entries() -> None:
    # Idle objects carry only what was written (and their own copies of the mutable
    # defaults they have read: made at the first read).
    cfg = make(TEMPLATE)
    cfg.write_parameters(port=1)
    assert set(vars(cfg.config)) == {"port"}
    other = make(TEMPLATE)
    tags = other.config.tags
    assert tags == ["a"] and tags is not TEMPLATE["tags"][1]
    assert other.config.tags is tags  # the copy is kept: a change to it stays
    assert set(vars(other.config)) == {"tags"}
    other.reset_parameter("tags")
    assert "tags" not in vars(other.config) and other.config.tags == ["a"]


# --------------------------------------------------------------------------------------
#   GObj: filter_parameters and the errors at create_gobj
# --------------------------------------------------------------------------------------
class Base(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, None, {"p": [int, 0, 0, None, "p"], "q": [str, "", 0, None, "q"]})


class Child(Base):
    pass


def test_user_template_wins_over_the_gobj_base() -> None:
    class Shadow(GObj):
        def __init__(self) -> None:
            GObj.__init__(self, None, [{"trace_subscription": [str, "mine", 0, None, ""]}])

    gobj = build_gobj("s", Shadow, None, {}, None)
    assert gobj.config.trace_subscription == "mine"
    assert set(GOBJ_GCONFIG) <= set(gobj.get_gconfig_params())


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"p": 1}, 1),
        ({"GObj.p": 2, "p": 1}, 2),
        ({"p": 1, "GObj.p": 2}, 2),
        ({"Base.p": 3, "GObj.p": 2, "p": 1}, 3),
        ({"p": 1, "Child.p": 4, "GObj.p": 2, "Base.p": 3}, 4),
        ({"n.p": 5, "Child.p": 4, "p": 1}, 5),
        ({"p": 1, "Base.p": 3, "n.p": 5}, 5),
        ({"other.p": 9}, None),
        ({"Other.p": 9, "p": 1}, 1),
        ({"a.b.p": 9}, None),
        ({"x.n.p": 9}, None),
    ],
)
def test_filter_parameters_specificity(settings: dict[str, Any], expected: Any) -> None:
    gobj = build_gobj("n", Child, None, {}, None)
    assert gobj.filter_parameters(**settings) == ({} if expected is None else {"p": expected})


def test_filter_parameters_dotted_name_at_the_last_dot() -> None:
    gobj = build_gobj("a.b", Child, None, {}, None)
    assert gobj.filter_parameters(**{"a.b.p": 7}) == {"p": 7}


def test_filter_parameters_unknown_names() -> None:
    gobj = build_gobj("n", Child, None, {}, None)
    # Bare unknown names and dotted names aimed elsewhere are for other gobjs.
    assert gobj.filter_parameters(zzz=1, **{"Other.zzz": 1, "other.zzz": 2}) == {}
    # A dotted name aimed at this gobj by name or own class with a parameter it lacks is a typo.
    for key in ("n.pp", "Child.pp"):
        with pytest.raises(GConfigValidateError, match="unknown parameter 'pp'; did you mean"):
            gobj.filter_parameters(**{key: 1})
    # Aimed at a base class, it is for the gobjs that have it (ginsfsm's `GObj.x` = all).
    assert gobj.filter_parameters(**{"Base.pp": 1, "GObj.trace_dump": True}) == {}


def test_filter_parameters_unnamed_gobj() -> None:
    gobj = build_gobj(None, Child, None, {}, None)
    assert gobj.filter_parameters(**{".p": 1}) == {}
    assert gobj.filter_parameters(**{"Child.p": 1}) == {"p": 1}


def test_create_gobj_unknown_parameter_message() -> None:
    with pytest.raises(GConfigValidateError) as info:
        build_gobj("n", Child, None, {"pp": 1}, None)
    msg = str(info.value)
    assert "Child 'n'" in msg and "'pp'" in msg and "did you mean 'p'" in msg


def test_create_gobj_invalid_value_message() -> None:
    with pytest.raises(GConfigValidateError) as info:
        build_gobj("n", Child, None, {"p": "eighty"}, None)
    assert str(info.value) == (
        "Child 'n': invalid value 'eighty' for parameter 'p': expected an int"
    )
    assert isinstance(info.value, ValueError)


# --------------------------------------------------------------------------------------
#   Hypothesis: values written as strings come back converted
# --------------------------------------------------------------------------------------
WORD = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=", \t\n\r\x0b\x0c"),
    min_size=1,
    max_size=8,
).filter(lambda w: w == w.strip() and w.split() == [w])


@settings(max_examples=100, deadline=None)
@given(st.integers())
def test_int_round_trip(n: int) -> None:
    assert one(int, str(n)) == n
    assert one(int, f"  {n} ") == n


@settings(max_examples=100, deadline=None)
@given(st.floats(allow_nan=False))
def test_float_round_trip(x: float) -> None:
    assert one(float, repr(x)) == x
    assert one(float, str(x)) == x


@settings(max_examples=50, deadline=None)
@given(
    st.booleans(),
    st.sampled_from(
        [str, lambda b: str(b).lower(), lambda b: str(b).upper(), lambda b: str(int(b))]
    ),
)
def test_bool_round_trip(value: bool, render: Any) -> None:
    assert one(bool, render(value)) is value


@settings(max_examples=100, deadline=None)
@given(st.lists(WORD, max_size=6), st.sampled_from([",", " ", ", ", " ,\t"]))
def test_list_round_trip(words: list[str], sep: str) -> None:
    text = sep.join(words)
    assert one(list, text) == words
    assert one(tuple, text) == tuple(words)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(), max_size=6))
def test_list_of_ints_via_validate(numbers: list[int]) -> None:
    def ints(value: Any) -> Any:
        if isinstance(value, str):
            return [int(w) for w in value.replace(",", " ").split()]
        return value

    assert one(list, ",".join(map(str, numbers)), validate=ints) == numbers


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5))
def test_dict_json_round_trip(value: dict[str, Any]) -> None:
    assert one(dict, json.dumps(value)) == value
    assert one(dict, value) == value


# The keys that can set parameter ``p`` of a Child called "n", most specific first.
SPECIFICITY = ["n.p", "Child.p", "Base.p", "GObj.p", "p"]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from([*SPECIFICITY, "other.p", "Other.p"]), unique=True),
    st.randoms(use_true_random=False),
)
def test_filter_parameters_most_specific_key_wins(keys: list[str], rnd: Any) -> None:
    rnd.shuffle(keys)  # the order of the settings does not matter
    settings_ = {key: i for i, key in enumerate(keys)}
    gobj = build_gobj("n", Child, None, {}, None)
    applying = [key for key in SPECIFICITY if key in settings_]
    expected = {"p": settings_[applying[0]]} if applying else {}
    assert gobj.filter_parameters(**settings_) == expected


@pytest.mark.parametrize(
    ("validator", "good", "bad"),
    [
        (gconfig_module.positive_number, [0.001, "2.5", 7], [0, -1, "x", True, math.nan]),
        (gconfig_module.non_negative_number, [0, 0.0, "3"], [-0.001, math.inf]),
        (gconfig_module.positive_int, [1, "12", 3.0], [0, 1.5, "1.5", False]),
        (gconfig_module.non_negative_int, [0, "0", 9], [-1, 0.5]),
        (gconfig_module.fraction, [0, 0.5, 1], [-0.1, 1.01]),
        (gconfig_module.port_number, [0, 65535, "8080"], [-1, 65536, 80.5, "http"]),
    ],
)
def test_number_validators(validator: Any, good: list[Any], bad: list[Any]) -> None:
    for value in good:
        result = validator(value)
        assert isinstance(result, (int, float)) and not isinstance(result, bool)
    for value in bad:
        with pytest.raises(ValueError, match=r"not"):
            validator(value)


def test_number_in_message_names_the_range() -> None:
    with pytest.raises(ValueError, match=r"0\.5 is not an int >= 1 and <= 3"):
        gconfig_module.number_in(1, 3, integer=True)(0.5)


# --------------------------------------------------------------------------------------
#   What is decided once per gclass (a gobj per accepted connection must be cheap)
# --------------------------------------------------------------------------------------
RULED: dict[str, list[Any]] = {
    "helper": [None, None, FLAG_DIRECT_ATTR, None, "a method in some gclasses"],
    "level": [int, 1, FLAG_DIRECT_ATTR, None, "a plain direct attribute"],
    "port": [int, 0, 0, port_number, "validated"],
    "bag": [None, {}, FLAG_DIRECT_ATTR, None, "a mutable direct default"],
}


class PlainHelper(GConfig):
    def __init__(self) -> None:
        GConfig.__init__(self, [RULED])


class MethodHelper(PlainHelper):
    def helper(self) -> str:
        return "method"


def test_a_subclass_with_a_method_of_a_param_name_keeps_the_rule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The base gclass first: for it "helper" is a plain attribute...
    plain = PlainHelper()
    assert plain.helper is None  # type: ignore[attr-defined]
    # ...which must not make the subclass, whose method it is, lose ginsfsm's rule.
    sub = MethodHelper()
    assert sub.helper() == "method"
    assert sub.level == 1 and sub.bag == {}  # type: ignore[attr-defined]
    with caplog.at_level(logging.ERROR, logger="fsmio"):
        sub.write_parameters(helper=5, level=2)
    assert sub.helper() == "method"
    assert sub.level == 2  # type: ignore[attr-defined]
    assert "parameter 'helper' would replace a method; not written" in caplog.text
    sub.write_parameters(helper=lambda: "replaced")
    assert sub.helper() == "replaced"
    # And the base gclass is still a plain store, created again after the subclass.
    again = PlainHelper()
    again.write_parameters(helper=5)
    assert again.helper == 5  # type: ignore[attr-defined]


def test_gclasses_sharing_a_template_dict_do_not_share_per_gclass_state() -> None:
    plain, sub = PlainHelper(), MethodHelper()
    # One compiled template (and one namespace class)...
    assert plain._gconfig.compiled is sub._gconfig.compiled
    assert type(plain.config) is type(sub.config)
    # ...two per-gclass views of it, each reused by the next object of its gclass.
    assert plain._gconfig is not sub._gconfig
    assert plain._gconfig.ruled == frozenset()
    assert sub._gconfig.ruled == frozenset({"helper"})
    assert PlainHelper()._gconfig is plain._gconfig
    assert MethodHelper()._gconfig is sub._gconfig
    # Mutable direct defaults are each object's own.
    plain.bag["x"] = 1  # type: ignore[attr-defined]
    assert sub.bag == {} and PlainHelper().bag == {}  # type: ignore[attr-defined]
    assert RULED["bag"][1] == {}


def test_the_per_gclass_view_is_what_tools_read() -> None:
    cfg = PlainHelper()
    assert isinstance(cfg._gconfig, CompiledGConfig)
    assert cfg._gconfig.templates == (RULED,)
    assert cfg._gconfig.params is compile_gconfig([RULED]).params
    assert set(cfg.get_gconfig_params()) == set(RULED)


def test_one_gclass_made_with_changing_templates() -> None:
    # GConfig itself is made with many templates: the per-gclass shortcut must notice.
    t1 = {"a": [int, 1, 0, None, ""]}
    t2 = {"b": [str, "x", 0, None, ""]}
    for _ in range(2):
        assert GConfig(t1).read_parameters() == {"a": 1}
        assert GConfig([t1, t2]).read_parameters() == {"a": 1, "b": "x"}
        assert GConfig((t2,)).read_parameters() == {"b": "x"}
        assert GConfig([t2, t1]).read_parameters() == {"b": "x", "a": 1}
        assert GConfig(None).read_parameters() == {}
        assert GConfig([]).read_parameters() == {}
    # An equal but different dict is another template (as compile_gconfig's cache).
    assert GConfig(dict(t1))._gconfig.compiled is not GConfig(t1)._gconfig.compiled


class Leaf(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, None, RULED)


def test_gobjs_of_a_gclass_share_one_view_though_gobj_makes_a_new_list() -> None:
    # GObj.__init__ passes a new [GOBJ_GCONFIG, RULED] list each time: same templates.
    a = build_gobj("a", Leaf, None, {}, None)
    b = build_gobj("b", Leaf, None, {"level": 3}, None)
    assert a._gconfig is b._gconfig
    assert a._gconfig.gclass is Leaf
    assert a._gconfig.templates == (GOBJ_GCONFIG, RULED)
    assert (a.level, b.level) == (1, 3)  # type: ignore[attr-defined]


def test_a_default_of_a_dict_subclass_is_copied_as_copy_copy_does() -> None:
    class Tagged(dict[str, Any]):
        note = ""

    tagged = Tagged(k=1)
    tagged.note = "kept"
    template = {
        "t": [None, tagged, 0, None, ""],
        "s": [None, {1}, FLAG_DIRECT_ATTR, None, ""],
        "ba": [None, bytearray(b"ab"), 0, None, ""],
    }
    first, second = GConfig(template), GConfig(template)
    assert type(first.config.t) is Tagged and first.config.t.note == "kept"
    assert first.config.t == {"k": 1} and first.config.t is not tagged
    assert first.config.t is not second.config.t
    assert first.s == {1} and first.s is not second.s  # type: ignore[attr-defined]
    first.config.ba.extend(b"c")
    assert second.config.ba == b"ab"


class Ordered(GConfig):
    """Direct parameters behind property setters that log the order they run in."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any, list[Any]]] = []
        GConfig.__init__(
            self,
            {
                "second": [int, 2, FLAG_DIRECT_ATTR, None, ""],
                "tags": [list, ["t"], 0, None, ""],
                "first": [str, "1", FLAG_DIRECT_ATTR, None, ""],
                "__mangled__": [int, 3, FLAG_DIRECT_ATTR, None, ""],
                "__private": [int, 4, FLAG_DIRECT_ATTR, None, ""],
            },
        )

    @property
    def second(self) -> int:
        return 0

    @second.setter
    def second(self, value: int) -> None:
        self.log.append(("second", value, list(self.config.tags)))

    @property
    def first(self) -> str:
        return ""

    @first.setter
    def first(self, value: str) -> None:
        self.log.append(("first", value, list(self.config.tags)))


def test_defaults_are_stored_in_template_order_after_the_config_ones() -> None:
    for _ in range(2):  # the first object of the gclass and one made from its cache
        cfg = Ordered()
        # Setters run in template order, and the config's mutable defaults exist by then.
        assert cfg.log == [("second", 2, ["t"]), ("first", "1", ["t"])]
        # Names beginning with two underscores are stored as they are, not mangled.
        assert getattr(cfg, "__mangled__") == 3 and getattr(cfg, "__private") == 4  # noqa: B009


def test_parameter_names_that_are_not_identifiers() -> None:
    template = {
        "a-b": [int, 1, FLAG_DIRECT_ATTR, None, ""],
        "class": [str, "k", FLAG_DIRECT_ATTR, None, ""],
        "x y": [list, [1], 0, None, ""],
        "ok": [dict, {}, FLAG_DIRECT_ATTR, None, ""],
    }
    first, second = GConfig(template), GConfig(template)
    assert getattr(first, "a-b") == 1 and getattr(first, "class") == "k"
    assert getattr(first.config, "x y") == [1]
    assert getattr(first.config, "x y") is not getattr(second.config, "x y")
    assert first.ok == {} and first.ok is not second.ok  # type: ignore[attr-defined]
    first.write_parameters(**{"a-b": "5", "x y": "p q"})
    assert getattr(first, "a-b") == 5 and getattr(first.config, "x y") == ["p", "q"]


def test_writing_after_creation_still_converts_and_validates() -> None:
    class Port(int):
        pass

    cfg = PlainHelper()
    # A validator runs whatever the value's type.
    with pytest.raises(GConfigValidateError, match="'port'"):
        cfg.write_parameters(port=70000)
    cfg.write_parameters(port=Port(80))
    assert cfg.config.port == 80 and type(cfg.config.port) is int
    # An int parameter given a bool, an int subclass or a float: converted to an int.
    cfg.write_parameters(level=True)
    assert cfg.level == 1 and type(cfg.level) is int  # type: ignore[attr-defined]
    cfg.write_parameters(level=Port(3))
    assert type(cfg.level) is int  # type: ignore[attr-defined]
    cfg.write_parameters(level=4.0)
    assert cfg.level == 4 and type(cfg.level) is int  # type: ignore[attr-defined]
    with pytest.raises(GConfigValidateError, match="'level'"):
        cfg.write_parameters(level="four")
    assert cfg.level == 4  # type: ignore[attr-defined]


def test_written_lists_and_dicts_are_copied_tuples_and_strs_kept() -> None:
    cfg = make(TEMPLATE)
    tags, opts = ["x"], {"y": 2}
    cfg.write_parameters(tags=tags, opts=opts, host="h")
    assert cfg.config.tags == tags and cfg.config.tags is not tags
    assert cfg.config.opts == opts and cfg.config.opts is not opts
    cfg2 = make({"t": [tuple, (), 0, None, ""], "n": [None, None, 0, None, ""]})
    value = (1, 2)
    anything = object()
    cfg2.write_parameters(t=value, n=anything)
    assert cfg2.config.t is value and cfg2.config.n is anything


def test_an_unknown_name_is_reported_before_an_invalid_value() -> None:
    cfg = make(TEMPLATE)
    with pytest.raises(GConfigValidateError, match="unknown parameter 'nope'"):
        cfg.write_parameters(port="abc", host="h", nope=1)
    with pytest.raises(GConfigValidateError, match="unknown parameter 'first'"):
        cfg.write_parameters(first=1, second=2)
    assert cfg.read_parameters() == make(TEMPLATE).read_parameters()
    cfg.write_parameters()  # nothing to write: nothing happens
    assert cfg.read_parameters() == make(TEMPLATE).read_parameters()


def test_filter_parameters_ranks_the_first_class_of_a_name() -> None:
    class Middle(Child):
        pass

    near = type("Child", (Middle,), {})  # the name again, nearer in the MRO

    class Grand(near):  # type: ignore[valid-type, misc]
        pass

    # MRO: Grand, Child, Middle, (module) Child, Base...: "Child" ranks before "Middle".
    gobj = build_gobj("g", Grand, None, {}, None)
    assert gobj.filter_parameters(**{"Child.p": 1, "Middle.p": 2}) == {"p": 1}
    assert gobj.filter_parameters(**{"Middle.p": 2, "Child.p": 1}) == {"p": 1}
    assert gobj.filter_parameters() == {}


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=6),
    st.sampled_from(["app:nothing", "yes", "0", "1.5", "a b", '{"k": 1}', "{", "é"]),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=3),
    st.tuples(st.integers()),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([None, str, int, float, bool, list, tuple, dict, bytes]), VALUES)
def test_a_write_is_the_conversion(type_: Any, value: Any) -> None:
    # The fast path for already-converted values gives exactly what convert_value gives.
    spec = compile_gconfig({"p": [type_, _DEFAULTS.get(type_), 0, None, ""]}).params["p"]
    try:
        expected: Any = convert_value(spec, value)
    except gconfig_module._Invalid:
        with pytest.raises(GConfigValidateError):
            one(type_, value)
        return
    if isinstance(expected, str) and expected.startswith("app:"):
        expected = None  # no app of that name is registered: logged, None
    got = one(type_, value)
    assert type(got) is type(expected)
    assert got == expected
    if isinstance(value, (list, dict)) and type_ is not None:
        assert got is not value  # the parameter's own copy
    # The same with another parameter in the same write (the path for several).
    cfg = GConfig({"p": [type_, _DEFAULTS.get(type_), 0, None, ""], "q": [int, 0, 0, None, ""]})
    cfg.write_parameters(q=1, p=value)
    both = cfg.read_parameter("p")
    assert type(both) is type(expected) and both == expected
    assert cfg.read_parameter("q") == 1
