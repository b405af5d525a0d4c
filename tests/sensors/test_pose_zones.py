"""Floor zones: point in polygon, counts, dwell, floor calibration and validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from sensors.pose.zones import (
    FloorCalibration,
    ZoneSpec,
    ZoneTracker,
    fit_homography,
    points_in_polygon,
    polygon_area,
)

SQUARE = [(0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6)]
# A floor seen in perspective: the far edge (top of the image) looks narrower.
IMAGE_QUAD = [(0.3, 0.5), (0.7, 0.5), (0.9, 0.95), (0.1, 0.95)]
FLOOR_QUAD = [(0.0, 4.0), (2.0, 4.0), (2.0, 1.0), (0.0, 1.0)]


def calibration() -> FloorCalibration:
    return FloorCalibration(image_points=IMAGE_QUAD, floor_points=FLOOR_QUAD)


def test_points_in_polygon_square_and_concave():
    pts = np.array([(0.4, 0.4), (0.1, 0.4), (0.7, 0.7), (0.4, 0.19), (np.nan, 0.4)])
    assert points_in_polygon(pts, np.array(SQUARE)).tolist() == [True, False, False, False, False]
    ell = np.array([(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)], dtype=float)
    inside = points_in_polygon(np.array([(0.5, 1.5), (1.5, 1.5), (1.5, 0.5), (0.5, 0.5)]), ell)
    assert inside.tolist() == [True, False, True, True]
    assert points_in_polygon(np.zeros((0, 2)), ell).shape == (0,)


def test_polygon_area():
    assert abs(polygon_area(SQUARE)) == pytest.approx(0.16)


@pytest.mark.parametrize(
    ("polygon", "message"),
    [
        ([(0, 0), (1, 1)], "at least 3 corners"),
        ([(0, 0), (0.5, 0.5), (1, 1)], "no area"),
        ([(0, 0), (1, 0), (1, 0), (0, 0)], "no area"),
        ([(0, 0), (1, 0), (float("nan"), 1)], "finite"),
    ],
)
def test_zone_validation(polygon, message):
    with pytest.raises(ValidationError, match=message):
        ZoneSpec(polygon=polygon)


def test_zone_spec_defaults_and_schema():
    zone = ZoneSpec(polygon=SQUARE)
    assert zone.space == "image"
    with pytest.raises(ValidationError):
        ZoneSpec(polygon=SQUARE, space="wall")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ZoneSpec(polygon=SQUARE, colour="red")  # type: ignore[call-arg]
    for model in (ZoneSpec, FloorCalibration):
        assert all(p.get("description") for p in model.model_json_schema()["properties"].values())


def test_calibration_round_trips_its_four_points():
    cal = calibration()
    np.testing.assert_allclose(cal.to_floor(IMAGE_QUAD), FLOOR_QUAD, atol=1e-9)


def test_calibration_maps_perspective_sensibly():
    cal = calibration()
    # Halfway up the image is more than halfway across the floor: the far half looks smaller.
    ((_, y_mid),) = cal.to_floor([(0.5, (0.5 + 0.95) / 2)])
    assert 1.0 < y_mid < 2.5
    # An affine calibration maps the centre to the centre.
    affine = FloorCalibration(image_points=SQUARE, floor_points=[(0, 0), (4, 0), (4, 4), (0, 4)])
    np.testing.assert_allclose(affine.to_floor([(0.4, 0.4)]), [(2.0, 2.0)], atol=1e-9)


@pytest.mark.parametrize(
    ("image", "floor", "message"),
    [
        (IMAGE_QUAD[:3], FLOOR_QUAD[:3], "exactly 4"),
        ([(0.1, 0.1), (0.5, 0.5), (0.9, 0.9), (0.1, 0.9)], FLOOR_QUAD, "one line"),
        (IMAGE_QUAD, [(0, 0), (0, 0), (2, 1), (0, 1)], "one line"),
        # Same points, listed in a different order around the area: a folded mapping.
        (IMAGE_QUAD, [FLOOR_QUAD[0], FLOOR_QUAD[1], FLOOR_QUAD[3], FLOOR_QUAD[2]], "same order"),
    ],
)
def test_calibration_validation(image, floor, message):
    with pytest.raises(ValidationError, match=message):
        FloorCalibration(image_points=image, floor_points=floor)


@given(
    offsets=st.lists(st.tuples(st.floats(-0.08, 0.08), st.floats(-0.08, 0.08)), min_size=4, max_size=4),
    size=st.floats(0.5, 10.0),
)
def test_homography_round_trip_for_any_spread_quad(offsets, size):
    image = [(x + dx, y + dy) for (x, y), (dx, dy) in zip(SQUARE, offsets, strict=True)]
    floor = [(0.0, 0.0), (size, 0.0), (size, size), (0.0, size)]
    assume(min(abs(polygon_area(np.delete(np.array(image), k, axis=0))) for k in range(4)) > 0.01)
    h = fit_homography(np.array(image), np.array(floor))
    cal = FloorCalibration(image_points=image, floor_points=floor)
    np.testing.assert_allclose(cal.to_floor(image), floor, atol=1e-6 * size)
    np.testing.assert_allclose(cal.homography, h)


def test_counts_entries_and_exits():
    zones = ZoneTracker({"stage": ZoneSpec(polygon=SQUARE), "door": ZoneSpec(polygon=[(0.7, 0), (1, 0), (1, 1)])})
    u = zones.update([(1, 0.4, 0.4), (2, 0.5, 0.3), (3, 0.9, 0.5)], 0.0)
    assert (u["stage"].count, u["stage"].entered, u["stage"].left) == (2, [1, 2], [])
    assert (u["door"].count, u["door"].entered, u["door"].visitors) == (1, [3], [3])
    u = zones.update([(1, 0.4, 0.4), (2, 0.9, 0.3)], 0.1)  # 2 walks to the door, 3 leaves the view
    assert (u["stage"].count, u["stage"].entered, u["stage"].left) == (1, [], [2])
    assert (u["door"].count, u["door"].entered, u["door"].left) == (1, [2], [3])
    u = zones.update([(1, 0.4, 0.4), (2, 0.9, 0.3)], 0.2)
    assert u["stage"].entered == u["stage"].left == u["door"].entered == u["door"].left == []


def test_dwell_accumulates_follows_the_longest_present_and_resets():
    zones = ZoneTracker({"stage": ZoneSpec(polygon=SQUARE)})
    assert zones.update([], 0.0)["stage"].dwell == 0.0
    assert zones.update([(1, 0.4, 0.4)], 1.0)["stage"].dwell == 0.0
    assert zones.update([(1, 0.4, 0.4)], 3.5)["stage"].dwell == pytest.approx(2.5)
    assert zones.update([(1, 0.4, 0.4), (2, 0.3, 0.3)], 4.0)["stage"].dwell == pytest.approx(3.0)
    # The longest-present leaves: dwell falls back to the other visitor's time.
    assert zones.update([(2, 0.3, 0.3)], 5.0)["stage"].dwell == pytest.approx(1.0)
    empty = zones.update([(2, 0.9, 0.9)], 6.0)["stage"]
    assert (empty.count, empty.dwell, empty.left) == (0, 0.0, [2])
    # Coming back starts from zero.
    assert zones.update([(2, 0.3, 0.3)], 7.0)["stage"].dwell == 0.0
    assert zones.update([(2, 0.3, 0.3)], 7.5)["stage"].dwell == pytest.approx(0.5)


def test_floor_zone_goes_through_the_calibration():
    cal = calibration()
    # The near half of the floor (1 m to 2.5 m from the camera's edge of the marked area), full width.
    near = ZoneSpec(polygon=[(0.0, 1.0), (2.0, 1.0), (2.0, 2.5), (0.0, 2.5)], space="floor")
    drawn = ZoneSpec(polygon=[(0.0, 1.0), (2.0, 1.0), (2.0, 2.5), (0.0, 2.5)])  # same numbers, image space
    zones = ZoneTracker({"near": near, "drawn": drawn}, cal)
    u = zones.update([(1, 0.5, 0.9), (2, 0.5, 0.55)], 0.0)
    assert u["near"].visitors == [1]  # feet low in the image: near the camera
    assert u["drawn"].visitors == []  # image coordinates 0..1 are not inside (0..2, 1..2.5)


def test_floor_zone_without_calibration_is_an_error():
    with pytest.raises(ValueError, match=r"entrance.*floor calibration"):
        ZoneTracker({"entrance": ZoneSpec(polygon=SQUARE, space="floor"), "stage": ZoneSpec(polygon=SQUARE)}, None)


def test_nan_feet_are_outside():
    zones = ZoneTracker({"stage": ZoneSpec(polygon=SQUARE)}, calibration())
    assert zones.update([(1, float("nan"), 0.4)], 0.0)["stage"].count == 0
