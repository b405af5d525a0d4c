"""The motor profile and its motion limiter, case by case: braking before either soft limit at any
max_accel, stopping on a limit, position targets (clamped, reached exactly, asked twice in one tick)
and the profile's own speed range. Exact samples: every number here is a binary fraction."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from devices.mqtt.profiles import MotionLimiter, MotionSample, MotorProfile, Profile

PROFILE = TypeAdapter(Profile)


def motor(**config: Any) -> MotorProfile:
    loaded = PROFILE.validate_python({"profile": "motor", **config})
    assert isinstance(loaded, MotorProfile)
    return loaded


# ---------------------------------------------------------------------------- profile


def test_speed_is_clamped_to_max_speed_both_ways() -> None:
    profile = motor(soft_limits=[0, 5], max_speed=1.5, max_accel=1)
    assert profile.property_range("speed") == (-1.5, 1.5)
    assert profile.coerce("speed", 4) == {"speed": 1.5}
    assert profile.coerce("speed", -4) == {"speed": -1.5}
    assert profile.coerce("speed", 0.5) == {"speed": 0.5}


def test_a_safe_speed_beyond_max_speed_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"safe.speed: 3 is outside the range \[-1.5, 1.5\]"):
        motor(soft_limits=[0, 5], max_speed=1.5, max_accel=1, safe={"speed": 3})


def test_reversed_soft_limits_are_refused_as_written() -> None:
    with pytest.raises(ValidationError, match=r"`soft_limits` must be \[min, max\] with min < max, not \[5, 1\]"):
        motor(soft_limits=[5, 1], max_speed=1, max_accel=1)


# ---------------------------------------------------------------------------- braking before a soft limit

FAST = MotionLimiter(max_speed=10.0, max_accel=2.0, soft_limits=(2.0, 12.0))
"""max_accel 2 (not 1, where 2·a and 2/a agree) and a low limit off zero (where position ± low agree)."""


def test_speed_towards_the_high_limit_is_capped_to_what_can_still_brake() -> None:
    # 4 below the limit: sqrt(2·2·4) = 4. It already moves at 4, so acceleration does not decide.
    assert FAST.limit_speed(MotionSample(8.0, 4.0, 0.0), 10.0, 0.125) == MotionSample(8.5, 4.0, 0.125)


def test_speed_towards_the_low_limit_is_capped_to_what_can_still_brake() -> None:
    assert FAST.limit_speed(MotionSample(6.0, -4.0, 0.0), -10.0, 0.125) == MotionSample(5.5, -4.0, 0.125)


def test_slow_speeds_are_capped_close_to_the_limits_too() -> None:
    limiter = MotionLimiter(max_speed=10.0, max_accel=4.0, soft_limits=(2.0, 12.0))
    # 1/32 from a limit: sqrt(2·4/32) = 0.5, so a request for 1.0 (not above 1) still gets 0.5.
    assert limiter.limit_speed(MotionSample(11.96875, 0.5, 0.0), 1.0, 0.015625) == MotionSample(
        11.9765625, 0.5, 0.015625
    )
    assert limiter.limit_speed(MotionSample(2.03125, -0.5, 0.0), -1.0, 0.015625) == MotionSample(
        2.0234375, -0.5, 0.015625
    )


def test_speed_stops_on_the_low_limit() -> None:
    limiter = MotionLimiter(max_speed=2.0, max_accel=1.0, soft_limits=(0.0, 10.0))
    # Lands exactly on the limit still moving down: held there, stopped, at the sample's time.
    assert limiter.limit_speed(MotionSample(0.5, -1.0, 0.0), -2.0, 0.5) == MotionSample(0.0, 0.0, 0.5)
    assert limiter.limit_speed(MotionSample(0.0, 0.0, 1.0), -2.0, 2.0) == MotionSample(0.0, 0.0, 2.0)
    assert limiter.limit_speed(MotionSample(0.0, 0.0, 1.0), 2.0, 2.0) == MotionSample(0.5, 1.0, 2.0)


# ---------------------------------------------------------------------------- position targets

LIMITER = MotionLimiter(max_speed=2.0, max_accel=1.0)


def test_a_target_inside_the_soft_limits_is_kept() -> None:
    limiter = MotionLimiter(max_speed=2.0, max_accel=1.0, soft_limits=(0.0, 10.0))
    assert limiter.limit_position(MotionSample(5.0, 0.0, 0.0), 2.0, 1.0) == MotionSample(4.5, -1.0, 1.0)
    # Below the low limit: heads for the limit, and stops on it.
    assert limiter.limit_position(MotionSample(0.5, -1.0, 0.0), -50.0, 1.0) == MotionSample(0.0, 0.0, 1.0)


def test_a_target_one_unit_away_is_approached() -> None:
    assert LIMITER.limit_position(MotionSample(0.0, 0.0, 0.0), 1.0, 1.0) == MotionSample(0.5, 1.0, 1.0)


def test_no_time_no_move_and_the_speed_is_kept() -> None:
    # A second request in the same tick (or a clock behind the sample) changes nothing.
    assert LIMITER.limit_position(MotionSample(1.0, 0.5, 5.0), 4.0, 5.0) == MotionSample(1.0, 0.5, 5.0)
    assert LIMITER.limit_position(MotionSample(1.0, 0.5, 5.0), 4.0, 4.0) == MotionSample(1.0, 0.5, 5.0)


def test_at_the_target_it_stops() -> None:
    assert LIMITER.limit_position(MotionSample(10.0, 1.0, 1.0), 10.0, 2.0) == MotionSample(10.0, 0.0, 2.0)
    assert LIMITER.limit_position(MotionSample(10.0, 1.0, 1.0), 10.0, 1.0) == MotionSample(10.0, 0.0, 1.0)


def test_landing_exactly_on_the_target_stops_there() -> None:
    # 0.5 away at speed 1 over 0.5 s: lands on 10.0 exactly, and must not keep its speed of 1.
    assert LIMITER.limit_position(MotionSample(9.5, 1.0, 0.0), 10.0, 0.5) == MotionSample(10.0, 0.0, 0.5)


def test_the_speed_asked_is_the_distance_over_the_tick() -> None:
    limiter = MotionLimiter(max_speed=100.0, max_accel=100.0)
    # 10 away over 0.5 s: 20 units/s (not 10·0.5); acceleration and braking allow more.
    assert limiter.limit_position(MotionSample(0.0, 0.0, 0.0), 10.0, 0.5) == MotionSample(5.0, 20.0, 0.5)


def test_the_speed_asked_can_still_brake_before_the_target() -> None:
    limiter = MotionLimiter(max_speed=10.0, max_accel=2.0)
    # 4 away: sqrt(2·2·4) = 4 units/s, though 16 would cover it in the tick.
    assert limiter.limit_position(MotionSample(0.0, 4.0, 0.0), 4.0, 0.25) == MotionSample(1.0, 4.0, 0.25)
