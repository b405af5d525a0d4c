"""Body signals: hand heights, raised hands, arm span, lean, distance, centre and feet."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensors.pose.features import (
    BodyFeatures,
    apparent_size,
    body_centre,
    body_features,
    estimate_distance,
    shoulder_width,
)
from sensors.pose.types import Landmark
from tests.support.pose_synth import ASPECT, hide, person, set_point

L = Landmark
FACE = range(0, 11)
WRISTS = (L.LEFT_WRIST, L.RIGHT_WRIST)
FEET = (L.LEFT_ANKLE, L.RIGHT_ANKLE, L.LEFT_HEEL, L.RIGHT_HEEL)


def test_arms_down():
    f = body_features(person(arms="down"))
    assert 0.0 <= f.left_hand_height < 0.2
    assert f.right_hand_height == pytest.approx(f.left_hand_height)
    assert f.hand_height == pytest.approx(f.left_hand_height)
    assert f.hands_raised == 0.0
    assert f.both_hands_up is False
    assert 0.8 < f.arm_span < 1.4
    assert f.lean == pytest.approx(0.0, abs=1e-3)


def test_hands_up():
    f = body_features(person(arms="up"))
    assert f.left_hand_height > 1.0 and f.right_hand_height > 1.0  # above the head
    assert f.hands_raised == pytest.approx(1.0)
    assert f.both_hands_up is True


def test_t_pose():
    f = body_features(person(arms="t"))
    assert 2.5 <= f.arm_span <= 3.5
    assert 0.4 < f.hand_height < 0.8  # shoulder height: between hips and head
    assert f.hands_raised == 0.0
    assert f.both_hands_up is False


def test_hand_height_scale_hips_zero_head_top_one():
    lm = person()
    hip_y = float(lm[[L.LEFT_HIP, L.RIGHT_HIP], 1].mean())
    at_hips = set_point(lm, L.LEFT_WRIST, 0.55, hip_y)
    assert body_features(at_hips).left_hand_height == pytest.approx(0.0, abs=1e-6)
    # The head top is the nose plus a quarter torso: 1.7 torso lengths above the hips in the synthetic body.
    at_top = set_point(lm, L.LEFT_WRIST, 0.55, hip_y - 1.7 * 0.15)
    assert body_features(at_top).left_hand_height == pytest.approx(1.0, abs=1e-4)
    far_above = set_point(lm, L.LEFT_WRIST, 0.55, 0.0)
    assert body_features(far_above).left_hand_height == 1.5  # clamped


def test_hand_height_is_the_higher_hand_and_hands_raised_needs_both():
    one_up = person(left_arm="up", right_arm="down")
    f = body_features(one_up)
    assert f.hand_height == pytest.approx(f.left_hand_height)
    assert f.left_hand_height > 1.0
    assert f.hands_raised == 0.0
    assert f.both_hands_up is False


def test_hands_raised_grows_with_the_lower_hand():
    lm = person(arms="up")
    shoulder_y = float(lm[L.LEFT_SHOULDER, 1])
    nose_y = float(lm[L.NOSE, 1])
    values = []
    for y in np.linspace(shoulder_y, nose_y - 0.05, 5):
        values.append(body_features(set_point(lm, L.RIGHT_WRIST, 0.45, float(y))).hands_raised)
    assert values[0] == pytest.approx(0.0, abs=1e-6)
    assert all(b > a for a, b in itertools.pairwise(values))
    assert values[-1] < 1.0


def test_invisible_hand_is_nan_and_not_trusted():
    f = body_features(hide(person(arms="up"), L.RIGHT_WRIST))
    assert math.isnan(f.right_hand_height)
    assert f.left_hand_height > 1.0
    assert f.hand_height == pytest.approx(f.left_hand_height)
    assert math.isnan(f.hands_raised)
    assert f.both_hands_up is False
    assert math.isnan(f.arm_span)


def test_no_hands_visible_gives_nan_hand_height():
    f = body_features(hide(person(), *WRISTS))
    assert math.isnan(f.hand_height)


def test_hips_out_of_frame_fall_back_on_proportions():
    full = body_features(person(arms="up"))
    chest_up = body_features(hide(person(arms="up"), L.LEFT_HIP, L.RIGHT_HIP, *range(25, 33)))
    assert chest_up.left_hand_height == pytest.approx(full.left_hand_height, rel=0.02)
    assert chest_up.both_hands_up is True
    assert math.isnan(chest_up.lean)
    assert chest_up.distance == pytest.approx(full.distance)


def test_nose_hidden_falls_back_on_proportions():
    full = body_features(person(arms="up"))
    faceless = body_features(hide(person(arms="up"), *FACE))
    assert faceless.left_hand_height == pytest.approx(full.left_hand_height, rel=0.02)
    assert faceless.both_hands_up is True


def test_nothing_visible_gives_nan_everywhere():
    f = body_features(person(visibility=0.2))
    for field in dataclasses.fields(BodyFeatures):
        value = getattr(f, field.name)
        if field.name == "both_hands_up":
            assert value is False
        else:
            assert math.isnan(value), field.name


@pytest.mark.parametrize("degrees", [10.0, 20.0, -30.0])
def test_lean_is_the_torso_angle_over_45_degrees(degrees):
    f = body_features(person(lean_deg=degrees))
    assert f.lean == pytest.approx(degrees / 45.0, abs=0.01)


def test_lean_sign_is_towards_image_right_and_clamped():
    lm = person(lean_deg=20)
    shoulders_x = lm[[L.LEFT_SHOULDER, L.RIGHT_SHOULDER], 0].mean()
    hips_x = lm[[L.LEFT_HIP, L.RIGHT_HIP], 0].mean()
    assert shoulders_x > hips_x
    assert body_features(lm).lean > 0
    assert body_features(person(lean_deg=70)).lean == 1.0
    assert body_features(person(lean_deg=-70)).lean == -1.0


def test_aspect_ratio_is_corrected():
    # The same 20° lean drawn on a 4:3 frame reads 20° when measured with that frame's aspect.
    lm = person(lean_deg=20, aspect=4 / 3)
    assert body_features(lm, aspect=4 / 3).lean == pytest.approx(20 / 45, abs=0.01)
    assert body_features(lm, aspect=ASPECT).lean != pytest.approx(20 / 45, abs=0.01)


def test_distance_formula_and_trend():
    lm = person(scale=0.15)
    width_fraction = float(lm[L.LEFT_SHOULDER, 0] - lm[L.RIGHT_SHOULDER, 0])
    expected = 0.40 / (2 * width_fraction * math.tan(math.radians(30)))
    assert body_features(lm).distance == pytest.approx(expected, rel=1e-4)
    assert estimate_distance(width_fraction) == pytest.approx(expected)
    nearer = body_features(person(scale=0.3)).distance
    assert nearer == pytest.approx(expected / 2, rel=1e-4)
    # A wider lens makes the same apparent width mean a nearer visitor.
    assert body_features(lm, hfov_deg=90).distance < body_features(lm, hfov_deg=60).distance


def test_distance_needs_both_shoulders():
    assert math.isnan(body_features(hide(person(), L.LEFT_SHOULDER)).distance)
    assert math.isnan(estimate_distance(0.0))
    assert math.isnan(estimate_distance(math.nan))


def test_centre_and_feet():
    lm = person(cx=0.3, cy=0.5)
    f = body_features(lm)
    assert f.x == pytest.approx(0.3, abs=1e-6)
    assert f.y == pytest.approx(0.5 - 0.5 * 0.15, abs=1e-6)  # halfway between hips and shoulders
    assert f.floor_x == pytest.approx(0.3, abs=1e-6)
    assert f.floor_y == pytest.approx(lm[list(FEET), 1].mean(), abs=1e-6)
    assert f.floor_y > f.y  # feet are below the centre


def test_feet_fall_back_to_hips_then_nan():
    lm = hide(person(cx=0.4, cy=0.6), *FEET)
    f = body_features(lm)
    assert (f.floor_x, f.floor_y) == pytest.approx((0.4, 0.6), abs=1e-6)
    g = body_features(hide(lm, L.LEFT_HIP, L.RIGHT_HIP))
    assert math.isnan(g.floor_x) and math.isnan(g.floor_y)


def test_centre_falls_back_to_visible_landmarks():
    lm = hide(person(), L.LEFT_SHOULDER, L.RIGHT_SHOULDER, L.LEFT_HIP, L.RIGHT_HIP)
    x, y = body_centre(lm)
    visible = lm[lm[:, 3] >= 0.5, :2].mean(axis=0)
    assert (x, y) == pytest.approx(tuple(visible), abs=1e-6)
    assert all(math.isnan(v) for v in body_centre(person(visibility=0.0)))


def test_apparent_size_grows_with_scale_and_needs_something_visible():
    assert apparent_size(person(scale=0.2)) > apparent_size(person(scale=0.1))
    assert math.isnan(apparent_size(hide(person(), L.LEFT_SHOULDER, L.LEFT_HIP, L.RIGHT_HIP)))
    assert math.isnan(shoulder_width(hide(person(), L.RIGHT_SHOULDER)))


@given(
    cx=st.floats(0.2, 0.8),
    cy=st.floats(0.4, 0.7),
    scale=st.floats(0.05, 0.25),
    arms=st.sampled_from(["down", "up", "t"]),
)
def test_features_are_position_and_scale_invariant(cx, cy, scale, arms):
    reference = body_features(person(arms=arms))
    f = body_features(person(cx, cy, scale, arms))
    for name in ("left_hand_height", "right_hand_height", "hands_raised", "arm_span", "lean"):
        assert getattr(f, name) == pytest.approx(getattr(reference, name), abs=1e-3), name
    assert f.both_hands_up == reference.both_hands_up
    assert f.distance * scale == pytest.approx(reference.distance * 0.15, rel=1e-3)
