"""Easing curves and durations: golden values, bounds, names and errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from engine.curves import Curve, Duration, curve_function, interpolate, parse_duration, validate_curve

QUARTERS = [0.0, 0.25, 0.5, 0.75, 1.0]
EXPONENTIAL = [0.0, (100**0.25 - 1) / 99, 9 / 99, (100**0.75 - 1) / 99, 1.0]

GOLDEN = {
    "linear": [0.0, 0.25, 0.5, 0.75, 1.0],
    "ease-in": [0.0, 0.015625, 0.125, 0.421875, 1.0],
    "ease-out": [0.0, 0.578125, 0.875, 0.984375, 1.0],
    "ease-in-out": [0.0, 0.0625, 0.5, 0.9375, 1.0],
    "exponential": EXPONENTIAL,
    "steps(4)": [0.0, 0.25, 0.5, 0.75, 1.0],
    "steps(2)": [0.0, 0.0, 0.5, 0.5, 1.0],
    "hold": [0.0, 0.0, 0.0, 0.0, 1.0],
}
ALL_CURVES = ["linear", "ease-in", "ease-out", "ease-in-out", "exponential", "hold", "steps(1)", "steps(4)", "steps(7)"]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_values_at_the_quarters(name):
    f = curve_function(name)
    assert [f(t) for t in QUARTERS] == pytest.approx(GOLDEN[name], abs=1e-12)


def test_exponential_golden_values_written_out():
    # (100^t - 1) / 99: a tenth of the way at half time, a level ratio of 10 per half fade.
    f = curve_function("exponential")
    assert f(0.25) == pytest.approx(0.0218411, abs=1e-7)
    assert f(0.5) == pytest.approx(0.0909091, abs=1e-7)
    assert f(0.75) == pytest.approx(0.3093210, abs=1e-7)
    assert f(0.0) == 0.0 and f(1.0) == 1.0


def test_steps_jump_at_each_nth_and_the_last_at_the_end():
    f = curve_function("steps(4)")
    between = (0.1, 0.2499, 0.26, 0.49, 0.51, 0.74, 0.76, 0.9999)
    assert [f(t) for t in between] == [0, 0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75]
    assert f(1.0) == 1.0
    assert f(0.75 - 1e-12) == 0.75  # float noise just below a step does not delay it


def test_hold_jumps_only_at_the_end():
    f = curve_function("hold")
    assert f(0.0) == f(0.5) == f(0.999) == 0.0
    assert f(1.0) == 1.0


def test_curves_clamp_progress_outside_0_1():
    for name in ALL_CURVES:
        f = curve_function(name)
        assert f(-0.5) == 0.0 and f(1.5) == 1.0


@given(name=st.sampled_from(ALL_CURVES), t=st.floats(0.0, 1.0))
def test_every_curve_maps_0_1_into_0_1(name, t):
    assert 0.0 <= curve_function(name)(t) <= 1.0


@given(name=st.sampled_from(ALL_CURVES))
def test_every_curve_is_0_at_0_and_1_at_1(name):
    f = curve_function(name)
    assert f(0.0) == 0.0
    assert f(1.0) == 1.0


@given(name=st.sampled_from(ALL_CURVES), a=st.floats(0.0, 1.0), b=st.floats(0.0, 1.0))
def test_every_curve_never_goes_back(name, a, b):
    f = curve_function(name)
    low, high = sorted((a, b))
    assert f(low) <= f(high)


@given(t=st.floats(0.0, 1.0, exclude_max=True).filter(lambda t: t < 1.0 - 1e-9))
def test_hold_is_0_before_the_end(t):
    assert curve_function("hold")(t) == 0.0


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(name=st.sampled_from(ALL_CURVES), start=finite, end=finite, t=st.floats(-1.0, 2.0))
def test_interpolate_stays_between_its_ends(name, start, end, t):
    value = interpolate(name, start, end, t)
    assert min(start, end) <= value <= max(start, end)


@given(name=st.sampled_from(ALL_CURVES), start=finite, end=finite)
def test_interpolate_is_exact_at_both_ends(name, start, end):
    assert interpolate(name, start, end, 0.0) == start
    assert interpolate(name, start, end, 1.0) == end


def test_exponential_is_mirrored_when_dimming_down():
    # Up: slow from dark. Down: quick while bright, lingering near dark, the mirror image.
    up = interpolate("exponential", 0.0, 100.0, 0.5)
    down = interpolate("exponential", 100.0, 0.0, 0.5)
    assert up == pytest.approx(100 * 9 / 99)
    assert down == pytest.approx(100 - 100 * (1 - 9 / 99))
    assert down == pytest.approx(up)
    # Other curves keep their time shape whichever way the value goes.
    assert interpolate("ease-in", 100.0, 0.0, 0.5) == pytest.approx(100 - 12.5)


def test_curve_names_are_made_canonical():
    assert validate_curve("ease-in-out") == "ease-in-out"
    assert validate_curve("steps( 4 )") == "steps(4)"
    assert validate_curve("steps(04)") == "steps(4)"


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("ease_in", "did you mean `ease-in`?"),
        ("easeinout", "did you mean `ease-in-out`?"),
        ("Linear", "did you mean `linear`?"),
        ("step(4)", "did you mean `steps(4)`?"),
        ("expo", "did you mean `exponential`?"),
    ],
)
def test_unknown_curve_lists_the_names_and_guesses(name, hint):
    with pytest.raises(ValueError) as error:
        curve_function(name)
    message = str(error.value)
    assert f"unknown curve `{name}`" in message
    assert "`linear`, `ease-in`, `ease-out`, `ease-in-out`, `exponential`, `hold`, `steps(n)`" in message
    assert message.endswith(hint)


def test_unknown_curve_without_a_close_name_has_no_guess():
    with pytest.raises(ValueError, match="unknown curve `wobble`; the curves are") as error:
        validate_curve("wobble")
    assert "did you mean" not in str(error.value)


def test_steps_needs_at_least_one_step():
    with pytest.raises(ValueError, match=r"`steps\(0\)` needs at least one step"):
        validate_curve("steps(0)")


class UsesCurve(BaseModel):
    curve: Curve


class UsesDuration(BaseModel):
    duration: Duration


def test_curve_in_a_model_is_checked_and_canonical():
    assert UsesCurve(curve="steps(3)").curve == "steps(3)"
    assert UsesCurve(curve="steps(3 )").curve == "steps(3)"
    with pytest.raises(ValidationError, match="did you mean `ease-out`"):
        UsesCurve(curve="ease-ot")
    with pytest.raises(ValidationError):
        UsesCurve(curve=3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(5, 5.0), (0.25, 0.25), (0, 0.0), ("5s", 5.0), ("500ms", 0.5), ("2min", 120.0), ("1.5 s", 1.5), (".5s", 0.5)],
)
def test_durations_parse_to_seconds(text, seconds):
    assert parse_duration(text) == seconds
    assert UsesDuration(duration=text).duration == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5", "`5` is not a duration: write a number of seconds or a string such as `5s`, `500ms` or `2min`"),
        ("5sec", "`5sec` is not a duration"),
        ("2 hours", "`2 hours` is not a duration"),
        ("-5s", "a duration cannot be negative"),
        (-1, "a duration cannot be negative (`-1`)"),
        (float("inf"), "a duration must be finite"),
        (float("nan"), "a duration must be finite"),
        (True, "a duration is a number of seconds or a string such as `5s`, `500ms` or `2min`, not bool"),
        ([5], "not list"),
    ],
)
def test_duration_errors_say_what_is_accepted(value, message):
    with pytest.raises(ValueError) as error:
        parse_duration(value)
    assert message in str(error.value)
    with pytest.raises(ValidationError) as invalid:
        UsesDuration(duration=value)
    assert message in str(invalid.value)
