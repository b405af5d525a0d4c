"""The expression language: values, operators, functions, visitors, missing values, errors, and safety."""

from __future__ import annotations

import builtins
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.clock import VirtualClock
from engine.expressions import (
    Expression,
    ExpressionError,
    NameInfo,
    StoreResolver,
    compile_condition,
    compile_expression,
    parse_condition,
)
from engine.signals import SignalStore

# --- fixtures -------------------------------------------------------------------------------------------------------


class FakeClock(VirtualClock):
    """A clock the test moves by assigning ``t`` (no event loop needed)."""

    def __init__(self, t: float = 100.0) -> None:
        super().__init__(t)
        self.t = t

    def now(self) -> float:
        return self.t


@dataclass(frozen=True)
class Features:
    hands_raised: float = 0.0
    hand_height: float = 0.0
    x: float = 0.5
    both_hands_up: bool = False


@dataclass(frozen=True)
class Visitor:
    """Shaped like the pose pipeline's VisitorSnapshot: some fields on the item, the body on ``features``."""

    id: int
    features: Features = field(default_factory=Features)
    since: float = 0.0
    label: str = "guest"


VISITORS = (
    Visitor(1, Features(hands_raised=0.9, hand_height=1.3, x=0.2, both_hands_up=True)),
    Visitor(2, Features(hands_raised=0.1, hand_height=0.2, x=0.8)),
    Visitor(3, Features(hands_raised=0.6, hand_height=1.0, x=0.5)),
)

SIGNALS = {
    "body.count": "int",
    "body.visitors": "object",
    "body.wave": "event",
    "body.nearest.hands_raised": "float",
    "body.nearest.distance": "float",
    "plinth.button": "bool",
    "controls.wash": "float",
    "controls.season": "int",
    "controls.mode": "str",
    "var.visits": "int",
    "unset.level": "float",
    "unset.flag": "bool",
    "unset.mode": "str",
    "unset.visitors": "object",
}
VALUES: dict[str, Any] = {
    "body.count": 3,
    "body.visitors": VISITORS,
    "body.nearest.hands_raised": 0.5,
    "body.nearest.distance": 2.0,
    "plinth.button": True,
    "controls.wash": 0.75,
    "controls.season": 2,
    "controls.mode": "day",
    "var.visits": 7,
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> SignalStore:
    store = SignalStore(clock)
    for name, kind in SIGNALS.items():
        store.declare(name, kind)  # type: ignore[arg-type]
    for name, value in VALUES.items():
        store.set(name, value)
    return store


@pytest.fixture
def resolver(store: SignalStore, clock: FakeClock) -> StoreResolver:
    return StoreResolver(store, now=clock.now, aliases={"visitors": "body"})


def value_of(source: str, resolver: Any) -> Any:
    return compile_expression(source, resolver).evaluate()


def error_of(source: str, resolver: Any) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source, resolver)
    return caught.value


def same(a: Any, b: Any) -> bool:
    """Equal, with nan equal to nan and types checked (True is not 1)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


# --- values and operators -------------------------------------------------------------------------------------------

LITERALS: list[tuple[str, Any]] = [
    ("1", 1),
    ("1.5", 1.5),
    (".5", 0.5),
    ("1e3", 1000.0),
    ("2.5E-1", 0.25),
    ("true", True),
    ("false", False),
    ("'day'", "day"),
    ('"night"', "night"),
    (r"'it\'s'", "it's"),
    (r'"a\"b"', 'a"b'),
    (r"'a\nb'", "a\nb"),
    ("500ms", 0.5),
    ("0.5s", 0.5),
    ("2s", 2.0),
    ("2min", 120.0),
    ("1h", 3600.0),
    ("1.5h", 5400.0),
]

OPERATORS: list[tuple[str, Any]] = [
    ("1 + 2", 3),
    ("5 - 7", -2),
    ("2 * 3", 6),
    ("7 / 2", 3.5),
    ("7 % 3", 1),
    ("-7 % 3", 2),
    ("-2", -2),
    ("- -2", 2),
    ("-(1 + 2)", -3),
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("7 - 2 - 1", 4),
    ("8 / 2 / 2", 2.0),
    ("2 * 3 % 4", 2),
    ("-2 * 3", -6),
    ("true + true", 2),
    ("false * 5", 0),
    ("1 / 0", math.inf),
    ("-1 / 0", -math.inf),
    ("1 / -0.0", -math.inf),
    ("0 / 0", math.nan),
    ("5 % 0", math.nan),
    ("1 < 2", True),
    ("2 < 2", False),
    ("2 <= 2", True),
    ("3 <= 2", False),
    ("3 > 2", True),
    ("2 > 2", False),
    ("2 >= 2", True),
    ("1 >= 2", False),
    ("2 == 2.0", True),
    ("2 == 3", False),
    ("2 != 3", True),
    ("2 != 2", False),
    ("'a' == 'a'", True),
    ("'a' != 'b'", True),
    ("'a' < 'b'", True),
    ("true == 1", True),
    ("1 + 1 == 2", True),
    ("0 / 0 == 0 / 0", False),
    ("true and false", False),
    ("true and true", True),
    ("false or true", True),
    ("false or false", False),
    ("not true", False),
    ("not false", True),
    ("not not true", True),
    ("not 1 == 2", True),
    ("true or false and false", True),
    ("false and true or true", True),
    ("not true or true", True),
    ("not (true or true)", False),
    ("1 < 2 and 2 < 3", True),
    ("0 and 5", 0),
    ("2 and 5", 5),
    ("0 or 5", 5),
    ("1 if true else 2", 1),
    ("1 if false else 2", 2),
    ("1 if false else 2 if true else 3", 2),
    ("1 + 1 if false else 5", 5),
    ("'a' if 1 > 2 or 3 > 2 else 'b'", "a"),
]

FUNCTIONS: list[tuple[str, Any]] = [
    ("clamp(5, 0, 3)", 3),
    ("clamp(-1, 0, 3)", 0),
    ("clamp(2, 0, 3)", 2),
    ("clamp(0 / 0, 0, 1) == clamp(0 / 0, 0, 1)", False),
    ("lerp(0, 10, 0.25)", 2.5),
    ("lerp(10, 20, 2)", 30),
    ("map_range(5, 0, 10, 0, 100)", 50.0),
    ("map_range(20, 0, 10, 0, 100)", 100.0),
    ("map_range(-5, 0, 10, 0, 100)", 0.0),
    ("map_range(2.5, 0, 10, 100, 0)", 75.0),
    ("map_range(1, 1, 1, 0, 10)", 10.0),
    ("map_range(0, 1, 1, 0, 10)", 0.0),
    ("smoothstep(0, 1, 0.5)", 0.5),
    ("smoothstep(0, 1, 0.25)", 0.15625),
    ("smoothstep(0, 1, -1)", 0.0),
    ("smoothstep(0, 1, 2)", 1.0),
    ("smoothstep(2, 2, 3)", 1.0),
    ("min(3, 1, 2)", 1),
    ("min(3, 4)", 3),
    ("max(3, 1)", 3),
    ("max(1, 2.5, 2)", 2.5),
    ("abs(-2)", 2),
    ("abs(1.5)", 1.5),
    ("round(2.5)", 3),
    ("round(-2.5)", -3),
    ("round(2.4)", 2),
    ("round(0.5)", 1),
    ("round(1 / 0)", math.inf),
    ("round(0 / 0)", math.nan),
    ("floor(2.7)", 2),
    ("floor(-2.5)", -3),
    ("floor(-1 / 0)", -math.inf),
    ("ceil(2.1)", 3),
    ("ceil(-2.1)", -2),
    ("abs(min(-3, 2)) + max(1, 2) * 2", 7),
]


@pytest.mark.parametrize(("source", "expected"), LITERALS + OPERATORS + FUNCTIONS)
def test_constant_expressions(source: str, expected: Any, resolver: StoreResolver) -> None:
    assert same(value_of(source, resolver), expected), source


SIGNAL_VALUES: list[tuple[str, Any]] = [
    ("body.count", 3),
    ("body.count * 2", 6),
    ("body.count / 2", 1.5),
    ("controls.wash + 0.25", 1.0),
    ("controls.mode", "day"),
    ("controls.mode == 'day'", True),
    ("'day' == controls.mode", True),
    ('controls.mode != "night"', True),
    ("plinth.button", True),
    ("not plinth.button", False),
    ("body.count > 0", True),
    ("0 < body.count", True),
    ("2 >= body.count", False),
    ("body.count > 2 and body.count < 4", True),
    ("body.count > 5 or controls.season == 2", True),
    ("var.visits + 1", 8),
    ("clamp(body.count * 20, 0, 50)", 50),
    ("map_range(body.nearest.distance, 1, 4, 255, 0)", 170.0),
    ("body.nearest.hands_raised * 100 if plinth.button else 0", 50.0),
    ("-body.count", -3),
    ("min(body.count, var.visits)", 3),
    ("body.count > 0 and plinth.button and controls.wash > 0.5 and not stale(body.count)", True),
    ("body.count > 0 and plinth.button and controls.wash > 0.9", False),
]


@pytest.mark.parametrize(("source", "expected"), SIGNAL_VALUES)
def test_signal_expressions(source: str, expected: Any, resolver: StoreResolver) -> None:
    expression = compile_expression(source, resolver)
    assert same(expression.evaluate(), expected), source
    assert expression.evaluate_bool() is bool(expected)


def test_values_are_read_at_evaluation_not_at_compilation(store: SignalStore, resolver: StoreResolver) -> None:
    expression = compile_expression("body.count > 0 and controls.wash < 0.5", resolver)
    assert expression.evaluate_bool() is False
    store.set("controls.wash", 0.25)
    assert expression.evaluate_bool() is True
    store.set("body.count", 0)
    assert expression.evaluate_bool() is False
    assert expression.evaluate() is False


def test_long_chains_do_not_nest_deeply(resolver: StoreResolver) -> None:
    assert value_of(" or ".join(["false"] * 3000) + " or body.count == 3", resolver) is True
    assert value_of(" or ".join(["body.count == 1"] * 3001), resolver) is False
    assert value_of(" or ".join(["body.count == 1"] * 3000) + " or unset.level > 1", resolver) is None
    assert value_of(" and ".join(["body.count > 0"] * 3000) + " and plinth.button", resolver) is True
    assert value_of(" and ".join(["body.count > 0"] * 3000) + " and unset.flag", resolver) is None
    assert value_of(" and ".join(["plinth.button"] * 3000) + " and body.count > 9", resolver) is False


def test_names_lists_every_signal_read(resolver: StoreResolver) -> None:
    source = (
        "body.count > 0 and plinth.button and controls.wash > 0.5 and body.nearest.hands_raised > 0.2"
        " and controls.season == 2 and not stale(body.count) and since(body.wave) > 1 and count(body.visitors) > 0"
    )
    expression = compile_expression(source, resolver)
    assert expression.names == {
        "body.count",
        "plinth.button",
        "controls.wash",
        "body.nearest.hands_raised",
        "controls.season",
        "body.wave",
        "body.visitors",
    }
    assert expression.time_dependent
    assert not compile_expression("body.count > 0", resolver).time_dependent
    assert compile_expression("1 + 2", resolver).names == frozenset()


def test_result_types(resolver: StoreResolver) -> None:
    assert compile_expression("body.count * 2", resolver).type == "number"
    assert compile_expression("body.count > 2", resolver).type == "bool"
    assert compile_expression("controls.mode", resolver).type == "str"
    assert compile_expression("1 if plinth.button else 'x'", resolver).type == "any"


# --- visitors -------------------------------------------------------------------------------------------------------

VISITOR_EXPRESSIONS: list[tuple[str, Any]] = [
    ("count(body.visitors)", 3),
    ("count(body.visitors, hands_raised > 0.5)", 2),
    ("count(body.visitors, hands_raised > 0.95)", 0),
    ("any(body.visitors, hands_raised > 0.5)", True),
    ("any(body.visitors, hands_raised > 0.95)", False),
    ("all(body.visitors, hands_raised > 0.05)", True),
    ("all(body.visitors, hands_raised > 0.5)", False),
    ("any(body.visitors, id == 2 and x > 0.7)", True),
    ("count(body.visitors, both_hands_up)", 1),
    ("count(body.visitors, not both_hands_up)", 2),
    ("count(body.visitors, hand_height > 1 or x == 0.8)", 2),
    ("count(body.visitors, hands_raised > controls.wash)", 1),
    ("count(body.visitors, label == 'guest')", 3),
    ("count(body.visitors, since < 1)", 3),
    ("any(body.visitors, id == 3 and any(body.visitors, id == 1))", True),
    ("count(body.visitors, any(body.visitors, hands_raised > 0.8) and x < 0.3)", 1),
    ("count(body.visitors, hands_raised > 0.5) * 10 + 1", 21),
    ("count(visitors.visitors, x < 0.5)", 1),
    ("any(body.visitors, label > 1)", False),
    ("any(body.visitors, label != 1)", True),
]


@pytest.mark.parametrize(("source", "expected"), VISITOR_EXPRESSIONS)
def test_visitor_collections(source: str, expected: Any, resolver: StoreResolver) -> None:
    assert same(value_of(source, resolver), expected), source


def test_an_empty_collection(store: SignalStore, resolver: StoreResolver) -> None:
    store.set("body.visitors", ())
    assert value_of("count(body.visitors)", resolver) == 0
    assert value_of("any(body.visitors, hands_raised > 0)", resolver) is False
    assert value_of("all(body.visitors, hands_raised > 0)", resolver) is True


def test_a_field_no_item_has_is_a_missing_value(resolver: StoreResolver) -> None:
    expression = compile_expression("any(body.visitors, wingspan > 1)", resolver)
    assert expression.evaluate() is None
    assert expression.evaluate_bool() is False
    assert expression.failures == 2


def test_fields_given_by_the_resolver_are_checked(store: SignalStore) -> None:
    fields = {"id": "int", "hands_raised": "float", "x": "float", "both_hands_up": "bool"}
    resolver = StoreResolver(store, item_fields={"body.visitors": fields})
    assert value_of("count(body.visitors, hands_raised > 0.5 and x < 0.5)", resolver) == 1
    error = error_of("count(body.visitors, hands_raisd > 0.5)", resolver)
    assert (error.message, error.offset, error.length) == ("unknown name `hands_raisd`", 21, 11)
    assert error.hint == "did you mean `hands_raised`?"
    # A name that is no field is a signal.
    assert value_of("count(body.visitors, x < controls.wash)", resolver) == 2


def test_collection_errors(resolver: StoreResolver) -> None:
    error = error_of("count(body.count)", resolver)
    assert error.message == "`count` needs a collection such as `body.visitors`; `body.count` is a number"
    assert (error.offset, error.length) == (6, 10)
    error = error_of("any(body.visitors, since(hand_height) < 1)", resolver)
    assert error.message == "`hand_height` is a field of each item here, not a signal"
    assert error.offset == 25
    error = error_of("count(1 + 2, x)", resolver)
    assert error.message == "`count` needs a signal name here"
    error = error_of("body.visitors + 1", resolver)
    assert error.message == "`body.visitors` is a collection"
    assert error.hint is not None and "count(body.visitors)" in error.hint


# --- missing values -------------------------------------------------------------------------------------------------

MISSING = [
    "unset.level",
    "unset.level + 1",
    "1 - unset.level",
    "unset.level * 2",
    "unset.level / 2",
    "unset.level / 0",
    "unset.level % 0",
    "-unset.level",
    "unset.level > 1",
    "1 < unset.level",
    "unset.level == 1",
    "unset.level != 1",
    "unset.mode == 'day'",
    "unset.mode != 'day'",
    "unset.flag",
    "not unset.flag",
    "unset.flag == true",
    "unset.flag and true",
    "unset.flag or true",
    "not (unset.level > 1)",
    "1 if unset.flag else 2",
    "clamp(unset.level, 0, 1)",
    "lerp(0, 1, unset.level)",
    "map_range(unset.level, 0, 1, 0, 10)",
    "smoothstep(0, 1, unset.level)",
    "min(unset.level, 1)",
    "max(1, 2, unset.level)",
    "abs(unset.level)",
    "round(unset.level)",
    "floor(unset.level)",
    "ceil(unset.level)",
    "count(unset.visitors)",
    "any(unset.visitors, x > 1)",
    "count(body.visitors, x > unset.level)",
    "any(body.visitors, unset.flag)",
    "body.count > 0 and unset.level > 1",
    "body.count > 0 and unset.flag",
    "body.count > 0 and not unset.flag",
    "body.count > 0 and unset.level == 1",
    "body.count > 0 and plinth.button and not stale(body.count) and unset.level > 0.5",
]


@pytest.mark.parametrize("source", MISSING)
def test_a_missing_value_gives_none_and_false(source: str, resolver: StoreResolver) -> None:
    expression = compile_expression(source, resolver)
    assert expression.evaluate() is None, source
    assert expression.evaluate_bool() is False, source


NOT_NEEDED: list[tuple[str, Any]] = [
    ("true or unset.flag", True),
    ("false and unset.flag", False),
    ("body.count > 5 and unset.level > 1", False),
    ("body.count > 0 or unset.level > 1", True),
    ("2 if true else unset.level", 2),
    ("unset.level if false else 3", 3),
    ("stale(unset.level)", True),
    ("since(body.wave) > 1", True),
]


@pytest.mark.parametrize(("source", "expected"), NOT_NEEDED)
def test_a_missing_value_that_is_not_needed_does_not_matter(
    source: str, expected: Any, resolver: StoreResolver
) -> None:
    assert same(value_of(source, resolver), expected)


def test_failures_are_counted_and_never_raised(resolver: StoreResolver) -> None:
    expression = compile_expression("unset.level + 1", resolver)
    assert expression.evaluate() is None
    assert expression.evaluate_bool() is False
    assert expression.failures == 2
    assert expression.last_failure is not None and "TypeError" in expression.last_failure


class GetterResolver:
    """Names from a dict of getters, with no signal objects (the general path, without fused reads)."""

    def __init__(self, getters: dict[str, tuple[str, Any]]) -> None:
        self.getters = getters
        self.requested: list[str] = []

    def resolve(self, name: str) -> NameInfo | None:
        self.requested.append(name)
        if name not in self.getters:
            return None
        kind, get = self.getters[name]
        return NameInfo(kind, get, stale=lambda: False)

    def names(self) -> list[str]:
        return list(self.getters)


def test_a_getter_that_raises_gives_none(resolver: StoreResolver) -> None:
    def broken() -> float:
        raise RuntimeError("sensor exploded")

    custom = GetterResolver({"a.b": ("float", broken), "a.c": ("bool", lambda: True)})
    for source in ("a.b", "a.b > 1", "a.c and a.b > 1", "not stale(a.b) and a.b > 1"):
        expression = compile_expression(source, custom)
        assert expression.evaluate() is None
        assert expression.evaluate_bool() is False
        assert expression.last_failure == "RuntimeError: sensor exploded"


# --- stale, since, aliases ------------------------------------------------------------------------------------------


def test_stale(store: SignalStore, resolver: StoreResolver) -> None:
    stale = compile_expression("stale(controls.wash)", resolver)
    guarded = compile_expression("controls.wash > 0.5 and not stale(controls.wash)", resolver)
    assert stale.evaluate() is False
    assert guarded.evaluate_bool() is True
    store.mark_stale("controls.")
    assert stale.evaluate() is True
    assert guarded.evaluate_bool() is False
    assert guarded.evaluate() is False
    store.set("controls.wash", 0.75)
    assert guarded.evaluate_bool() is True
    assert compile_expression("stale(unset.level)", resolver).evaluate() is True
    assert compile_expression("not stale(unset.level)", resolver).evaluate() is False


def test_since(store: SignalStore, resolver: StoreResolver, clock: FakeClock) -> None:
    since = compile_expression("since(body.wave)", resolver)
    recent = compile_expression("since(body.wave) < 2s", resolver)
    assert since.evaluate() == math.inf
    assert recent.evaluate_bool() is False
    store.set("body.wave", 7)
    clock.t += 1.5
    assert since.evaluate() == 1.5
    assert recent.evaluate_bool() is True
    clock.t += 1
    assert recent.evaluate_bool() is False
    assert since.time_dependent


def test_since_with_event_times(store: SignalStore, clock: FakeClock) -> None:
    times = {"body.wave": 90.0}
    resolver = StoreResolver(store, event_times=times.get, now=clock.now)
    assert value_of("since(body.wave)", resolver) == 10.0
    del times["body.wave"]
    assert value_of("since(body.wave)", resolver) == math.inf


def test_since_and_stale_errors(resolver: StoreResolver) -> None:
    error = error_of("since(body.count)", resolver)
    assert (error.message, error.offset, error.length) == ("`since` needs an event; `body.count` is not one", 6, 10)
    error = error_of("since(1)", resolver)
    assert error.message == "`since` needs a signal name here"
    error = error_of("body.wave > 1", resolver)
    assert error.message == "`body.wave` is an event: it has no value"
    assert error.hint == "for “happened recently” write `since(body.wave) < 2s`"
    error = error_of("stale(body.cont)", resolver)
    assert (error.message, error.offset, error.hint) == ("unknown name `body.cont`", 6, "did you mean `body.count`?")


def test_aliases(resolver: StoreResolver) -> None:
    expression = compile_expression("visitors.count * 2 + count(visitors.visitors)", resolver)
    assert expression.evaluate() == 9
    assert expression.names == {"body.count", "body.visitors"}
    assert resolver.canonical("visitors.count") == "body.count"
    assert resolver.canonical("body.count") == "body.count"
    assert resolver.canonical("visitors") == "body"
    assert "visitors.count" in resolver.names()
    error = error_of("visitors.cont", resolver)
    assert error.hint in ("did you mean `visitors.count`?", "did you mean `body.count`?")


def test_a_store_name_wins_over_an_alias(store: SignalStore) -> None:
    store.declare("visitors.count", "int")
    store.set("visitors.count", 11)
    resolver = StoreResolver(store, aliases={"visitors": "body"})
    assert value_of("visitors.count", resolver) == 11
    assert value_of("count(visitors.visitors)", resolver) == 3


# --- conditions with a hold -----------------------------------------------------------------------------------------

HOLDS = [
    ("body.count > 0", ("body.count > 0", None)),
    ("body.count > 0 for 0.5s", ("body.count > 0", 0.5)),
    ("body.nearest.both_hands_up for 300ms", ("body.nearest.both_hands_up", 0.3)),
    ("a and b for 2min", ("a and b", 120.0)),
    ("x for 1h", ("x", 3600.0)),
    ("x for 0s", ("x", 0.0)),
    ("'for' == x", ("'for' == x", None)),
]


@pytest.mark.parametrize(("source", "expected"), HOLDS)
def test_parse_condition(source: str, expected: tuple[str, float | None]) -> None:
    assert parse_condition(source) == expected


HOLD_ERRORS = [
    ("x for", "expected a duration after `for`, found the end", 5, 1),
    ("x for 3", "the hold `3` needs a unit", 6, 1),
    ("x for y", "expected a duration after `for`, found `y`", 6, 1),
    ("x for 2s y", "unexpected `y` after the hold", 9, 1),
    ("for 2s", "expected a condition before `for`", 0, 3),
    ("x for 2s for 1s", "unexpected `for` after the hold", 9, 3),
]


@pytest.mark.parametrize(("source", "message", "offset", "length"), HOLD_ERRORS)
def test_parse_condition_errors(source: str, message: str, offset: int, length: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_condition(source)
    assert (caught.value.message, caught.value.offset, caught.value.length) == (message, offset, length)


def test_compile_condition(resolver: StoreResolver) -> None:
    expression, hold = compile_condition("body.count > 2 for 1.5s", resolver)
    assert isinstance(expression, Expression)
    assert (expression.evaluate_bool(), hold) == (True, 1.5)
    with pytest.raises(ExpressionError) as caught:
        compile_condition("body.cout > 2 for 1.5s", resolver)
    assert (caught.value.offset, caught.value.length) == (0, 9)


# --- errors ---------------------------------------------------------------------------------------------------------

ERRORS = [
    ("body.cout > 1", "unknown name `body.cout`", 0, 9, "did you mean `body.count`?"),
    ("1 + plinth.buton", "unknown name `plinth.buton`", 4, 12, "did you mean `plinth.button`?"),
    ("clamp(1, 2", "expected `)` to close `(` at column 6", 10, 1, None),
    ("(1 + 2", "expected `)` to close `(` at column 1", 6, 1, None),
    ("clamp(1, 2 3)", "expected `)` to close `(` at column 6", 11, 1, "separate arguments with `,`"),
    ("clamp(1, 2)", "`clamp` takes 3 arguments, got 2", 0, 11, None),
    ("abs(1, 2)", "`abs` takes 1 argument, got 2", 0, 9, None),
    ("min(1)", "`min` takes at least 2 arguments, got 1", 0, 6, None),
    ("count()", "`count` takes 1 or 2 arguments, got 0", 0, 7, None),
    ("map_range(1, 2, 3)", "`map_range` takes 5 arguments, got 3", 0, 18, None),
    ("any(body.visitors)", "`any` takes 2 arguments, got 1", 0, 18, None),
    ("1 + clmap(1, 2, 3)", "unknown function `clmap`", 4, 5, "did you mean `clamp`?"),
    ("open('x')", "unknown function `open`", 0, 4, None),
    ("os.system('ls')", "unknown function `os.system`", 0, 9, None),
    (
        "0 < body.count < 3",
        "a comparison cannot be chained: write `a < b and b < c`",
        15,
        1,
        "here: `0 < body.count and body.count < 3`",
    ),
    ("1 == 1 == 1", "a comparison cannot be chained: write `a < b and b < c`", 7, 2, "here: `1 == 1 and 1 == 1`"),
    ("'abc", "unterminated text", 0, 4, "close it with `'`"),
    ('x == "abc', "unterminated text", 5, 4, 'close it with `"`'),
    ("1.2.3", "bad number `1.2.3`", 0, 5, None),
    ("12abc + 1", "bad number `12abc`", 0, 5, "durations end in `ms`, `s`, `min` or `h`, like `0.5s`"),
    ("2sec", "bad number `2sec`", 0, 4, "durations end in `ms`, `s`, `min` or `h`, like `0.5s`"),
    ("", "empty expression", 0, 1, None),
    ("   ", "empty expression", 0, 1, None),
    ("1 2", "unexpected `2`", 2, 1, "is an operator missing before it?"),
    ("body.count > 1 plinth.button", "unexpected `plinth.button`", 15, 13, "is an operator missing before it?"),
    ("2 s", "unexpected `s`", 2, 1, "write durations without a space: `2s`"),
    ("1)", "unexpected `)`", 1, 1, "there is no `(` for it to close"),
    (")", "unexpected `)`", 0, 1, "expected a value"),
    ("clamp(1, , 2)", "unexpected `,`", 9, 1, "expected a value"),
    ("1 +", "expected a value after `+`", 3, 1, None),
    ("not", "expected a value after `not`", 3, 1, None),
    ("x if y", "expected `else`, found the end", 6, 1, "write `a if condition else b`"),
    ("a = 1", "`=` is not an operator", 2, 1, "write `==` to compare"),
    ("a && b", "`&&` is not an operator", 2, 2, "write `and`"),
    ("a || b", "`||` is not an operator", 2, 2, "write `or`"),
    ("!a", "`!` is not an operator", 0, 1, "write `not`, or `!=` for “not equal”"),
    ("a ; b", "unexpected character `;`", 2, 1, None),
    ("`body.count`", "unexpected backtick", 0, 1, "write names without quotes, like `body.count`"),
    ("True", "unknown name `True`", 0, 4, "write `true`"),
    ("__import__", "unknown name `__import__`", 0, 10, None),
    ("body.__class__", "unknown name `body.__class__`", 0, 14, None),
    ("body.", "a name cannot end with `.`: `body.`", 4, 1, "write names like `body.count`"),
    ("body..count", "a name cannot end with `.`: `body.`", 4, 1, "write names like `body.count`"),
    ("body.count > 1 for 2s", "`for` can only end a condition", 15, 3, "a hold like `for 2s` belongs in `when:`"),
    ("controls.mode > 1", "cannot compare text with a number", 0, 17, None),
    ("1 == controls.mode", "cannot compare a number with text", 0, 18, "text is only equal to text"),
    ("plinth.button == 'on'", "cannot compare true/false with text", 0, 21, "text is only equal to text"),
    ("'a' + 1", "`+` needs numbers, got text", 0, 3, None),
    ("-controls.mode", "`-` needs numbers, got text", 1, 13, None),
    ("clamp(controls.mode, 0, 1)", "`clamp` needs numbers, got text", 6, 13, None),
    ("count(body.visitors, x) + 'a'", "`+` needs numbers, got text", 26, 3, None),
    (
        "((((((((((((((((((((((1))))))))))))))))))))))",
        "expression nested too deeply (more than 20 levels)",
        20,
        1,
        None,
    ),
    ("+".join(["1"] * 100), "expression too long or nested (more than 64 levels)", 0, 1, None),
]


@pytest.mark.parametrize(("source", "message", "offset", "length", "hint"), ERRORS)
def test_errors(source: str, message: str, offset: int, length: int, hint: str | None, resolver: StoreResolver) -> None:
    error = error_of(source, resolver)
    assert (error.message, error.offset, error.length, error.hint) == (message, offset, length, hint)
    assert 0 <= error.offset <= len(source)
    assert str(error) == (f"{message} ({hint})" if hint else message)
    assert error.column == offset + 1


def test_an_unknown_name_hint_lists_few_choices() -> None:
    resolver = GetterResolver({"a.x": ("int", lambda: 1), "a.y": ("int", lambda: 2)})
    assert error_of("zzz", resolver).hint == "expected one of: `a.x`, `a.y`"


def test_a_very_long_number_is_an_error(resolver: StoreResolver) -> None:
    error = error_of("1" * 5000, resolver)
    assert error.message.startswith("the number `111111111111…` is too long")
    assert (error.offset, error.length) == (0, 5000)


# --- the fused fast path agrees with the general one ----------------------------------------------------------------


class CelllessResolver:
    """A store resolver that hides the Signal objects: every read is a getter call (the general path)."""

    def __init__(self, inner: StoreResolver) -> None:
        self.inner = inner

    def resolve(self, name: str) -> NameInfo | None:
        info = self.inner.resolve(name)
        return None if info is None else dataclasses.replace(info, cell=None)

    def names(self) -> list[str]:
        return self.inner.names()


CHAINS = [
    "a.f > 0.5 and a.b",
    "a.f > 0.5 and a.b and a.i == 2 and not stale(a.f)",
    "a.i >= 1 and a.f <= 0.5 and a.f < 0.9 and not a.b and a.i != 3",
    "a.f > 0.1 and a.f > 0.2 and a.f > 0.3 and a.f > 0.4 and a.i > 0 and a.i > 1 and a.i > 2 and a.b",
    "a.b and (a.f > 0.5 or a.i == 1) and a.s == 'x'",
    "a.f > 0.5",
    "a.b",
    "not a.b",
    "a.s == 'x' and stale(a.f) == false",
    "a.i != 3 and a.b",
    "a.f > 0.5 and a.i == 2",
    "a.i == 2 and a.f > 0.5 and a.b",
    "not a.b and a.f < 0.5 and a.s == 'x'",
    "a.b and a.i == 2 and a.s == 'x' and a.f >= 0.3",
    "a.s != 'y' and a.f > 0.5 and not stale(a.s)",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    source=st.sampled_from(CHAINS),
    f=st.none() | st.floats(allow_nan=True) | st.sampled_from([0.1, 0.3, 0.5, 0.7, 1.0]),
    i=st.none() | st.integers(-3, 5),
    b=st.none() | st.booleans(),
    s=st.none() | st.sampled_from(["x", "y"]),
    stale=st.booleans(),
)
def test_fused_chains_agree_with_the_general_evaluation(source, f, i, b, s, stale) -> None:
    store = SignalStore(FakeClock())
    values = {"a.f": ("float", f), "a.i": ("int", i), "a.b": ("bool", b), "a.s": ("str", s)}
    for name, (kind, value) in values.items():
        store.declare(name, kind)  # type: ignore[arg-type]
        if value is not None:
            store.set(name, value)
    if stale:
        store.mark_stale("a.")
    fast = compile_expression(source, StoreResolver(store))
    slow = compile_expression(source, CelllessResolver(StoreResolver(store)))
    assert same(fast.evaluate(), slow.evaluate()), (source, values)
    assert fast.evaluate_bool() is slow.evaluate_bool(), (source, values)


# --- safety ---------------------------------------------------------------------------------------------------------

FRAGMENTS = [
    "__",
    "import",
    "os.system(",
    "__import__('os')",
    "open(",
    "eval(",
    "exec",
    ";",
    "`",
    "lambda",
    "body.count",
    "body.visitors",
    "since(",
    "count(",
    "for ",
    " 2s",
    "1e",
    "..",
    "'",
    '"',
    "\\",
    "(",
    ")",
    ",",
    " and ",
    " or ",
    "not ",
    " if ",
    " else ",
    "==",
    "<=",
    "!",
    "&",
    "=",
    "-",
    "+",
    "*",
    "/",
    "%",
    "é",
    "\x00",
    "١",
]
ALPHABET = "abcxyz_.0123456789 ()+-*/%<>=!&|,'\"`;:[]{}#@$^~\\\t\n"
junk = st.lists(st.sampled_from(FRAGMENTS) | st.text(alphabet=ALPHABET, max_size=4), max_size=12).map("".join)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=junk | st.text(max_size=30))
def test_any_text_compiles_or_fails_with_a_position(source: str, resolver: StoreResolver) -> None:
    try:
        expression = compile_expression(source, resolver)
    except ExpressionError as error:
        assert 0 <= error.offset <= len(source)
        assert error.length >= 1
        assert error.message
    else:
        expression.evaluate()
        assert isinstance(expression.evaluate_bool(), bool)
    try:
        parse_condition(source)
    except ExpressionError as error:
        assert 0 <= error.offset <= len(source)


class RecordingResolver:
    """A store resolver that records every name it is asked about."""

    def __init__(self, inner: StoreResolver) -> None:
        self.inner = inner
        self.requested: set[str] = set()

    def resolve(self, name: str) -> NameInfo | None:
        self.requested.add(name)
        return self.inner.resolve(name)

    def names(self) -> list[str]:
        return self.inner.names()


NUMBER_NAMES = ["s.f1", "s.f2", "s.i"]
GENERATED_NAMES = {*NUMBER_NAMES, "s.b", "s.t", "s.e", "s.v"}
FIELDS = ["id", "hands_raised", "hand_height", "x", "since", "both_hands_up", "missing_field"]
numbers = st.sampled_from(["0", "1", "2.5", "-3", "0.001", "1e9", "500ms", "2min", "0.0"])


def number_expr(depth: int) -> st.SearchStrategy[str]:
    leaves = numbers | st.sampled_from([*NUMBER_NAMES, "since(s.e)", "count(s.v)"])
    if depth == 0:
        return leaves
    inner = number_expr(depth - 1)
    condition = bool_expr(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda a: f"-{a}"),
        st.tuples(st.sampled_from(["abs", "round", "floor", "ceil"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(["clamp", "lerp", "smoothstep"]), inner, inner, inner).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]}, {t[3]})"
        ),
        st.lists(inner, min_size=5, max_size=5).map(lambda a: f"map_range({', '.join(a)})"),
        st.tuples(st.sampled_from(["min", "max"]), st.lists(inner, min_size=2, max_size=4)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
        st.tuples(inner, condition, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        predicate(depth - 1).map(lambda p: f"count(s.v, {p})"),
    )


def bool_expr(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from(["true", "false", "s.b", "stale(s.f1)", "stale(s.v)", "s.t == 'day'", "s.t < 'm'"])
    if depth == 0:
        return leaves
    inner = bool_expr(depth - 1)
    number = number_expr(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(number, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), number).map(" ".join),
        st.lists(inner, min_size=2, max_size=7).map(lambda a: " and ".join(f"({x})" for x in a)),
        st.lists(inner, min_size=2, max_size=4).map(lambda a: " or ".join(f"({x})" for x in a)),
        inner.map(lambda a: f"not ({a})"),
        st.tuples(st.sampled_from(["any", "all"]), predicate(depth - 1)).map(lambda t: f"{t[0]}(s.v, {t[1]})"),
    )


def predicate(depth: int) -> st.SearchStrategy[str]:
    field_names = st.sampled_from(FIELDS)
    comparison = st.tuples(
        field_names, st.sampled_from(["<", ">", "==", "!="]), numbers | field_names | st.just("s.f1")
    ).map(" ".join)
    if depth == 0:
        return comparison | field_names
    return st.one_of(
        comparison,
        field_names,
        st.tuples(comparison, bool_expr(depth - 1)).map(lambda t: f"{t[0]} and ({t[1]})"),
        st.tuples(field_names, number_expr(depth - 1)).map(lambda t: f"{t[0]} * 2 > {t[1]}"),
    )


def expression_values() -> st.SearchStrategy[dict[str, Any]]:
    floats = st.none() | st.floats() | st.sampled_from([0.0, -0.0, 1.0, math.inf, -math.inf, math.nan])
    visitors = st.lists(
        st.builds(
            Visitor,
            id=st.integers(-5, 5),
            features=st.builds(Features, hands_raised=st.floats(), hand_height=st.floats(), x=st.floats()),
            since=st.floats(),
        ),
        max_size=4,
    ).map(tuple)
    return st.fixed_dictionaries(
        {
            "s.f1": floats,
            "s.f2": floats,
            "s.i": st.none() | st.integers() | st.integers(-(10**30), 10**30),
            "s.b": st.none() | st.booleans(),
            "s.t": st.none() | st.text(max_size=3),
            "s.v": st.none() | visitors,
            "s.e": st.none() | st.just(1),
        }
    )


@settings(max_examples=600, deadline=None)
@given(source=st.one_of(number_expr(3), bool_expr(3)), values=expression_values(), stale=st.booleans())
def test_generated_expressions_never_raise_and_read_only_their_names(source: str, values: dict[str, Any], stale):
    clock = FakeClock()
    store = SignalStore(clock)
    kinds = {"s.f1": "float", "s.f2": "float", "s.i": "int", "s.b": "bool", "s.t": "str", "s.e": "event"}
    kinds["s.v"] = "object"
    for name, kind in kinds.items():
        store.declare(name, kind)  # type: ignore[arg-type]
        if values[name] is not None:
            store.set(name, values[name])
    if stale:
        store.mark_stale("s.")
    clock.t += 3
    resolver = RecordingResolver(StoreResolver(store, now=clock.now))
    try:
        expression = compile_expression(source, resolver)
    except ExpressionError as error:
        # A generated expression may compare text with a number only through `if`; nothing else may fail.
        pytest.fail(f"{source!r} did not compile: {error}")
    value = expression.evaluate()
    truth = expression.evaluate_bool()
    assert isinstance(truth, bool)
    assert value is None or isinstance(value, (bool, int, float, str))
    assert resolver.requested <= GENERATED_NAMES
    assert expression.names <= GENERATED_NAMES


DANGEROUS = [
    "__import__",
    "__import__('os')",
    "open",
    "open('/etc/passwd')",
    "eval",
    "exec('1')",
    "os.system",
    "os.system('ls')",
    "globals",
    "body.count.__class__",
    "__builtins__",
    "builtins.eval",
    "lambda: 1",
    "[x for x in body.visitors]",
    "body.visitors[0]",
    "print(1)",
    "getattr(body, 'count')",
    "count(body.visitors, __class__)",
    "count(body.visitors, _private)",
]


@pytest.mark.parametrize("source", DANGEROUS)
def test_python_is_out_of_reach(source: str, store: SignalStore) -> None:
    resolver = RecordingResolver(StoreResolver(store))
    with pytest.raises(ExpressionError):
        compile_expression(source, resolver)
    assert not any("__" in name for name in resolver.requested)


def test_no_eval_exec_or_import_is_used(resolver: StoreResolver) -> None:
    sources = [source for source, _ in LITERALS + OPERATORS + FUNCTIONS + SIGNAL_VALUES + VISITOR_EXPRESSIONS] + MISSING
    originals = {name: getattr(builtins, name) for name in ("eval", "exec", "compile", "__import__")}
    called: list[str] = []

    def forbidden(name: str) -> Any:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            called.append(name)
            raise AssertionError(f"{name} was called")

        return refuse

    try:
        for name in originals:
            setattr(builtins, name, forbidden(name))
        for source in sources:
            expression = compile_expression(source, resolver)
            expression.evaluate()
            expression.evaluate_bool()
        with pytest.raises(ExpressionError):
            compile_expression("body.cout", resolver)
    finally:
        for name, original in originals.items():
            setattr(builtins, name, original)
    assert called == []
