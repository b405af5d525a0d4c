"""One Euro landmark filter: smoothing, lag, visibility and timestamps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sensors.pose.filters import LandmarkFilter, OneEuroSettings
from sensors.pose.types import Landmark
from tests.support.pose_synth import hide, person

WRIST = Landmark.RIGHT_WRIST
FPS = 30.0


def noisy(base: np.ndarray, rng: np.random.Generator, sigma: float = 0.01) -> np.ndarray:
    out = base.copy()
    out[:, :3] += rng.normal(0.0, sigma, size=(33, 3)).astype(np.float32)
    return out


def test_settings_defaults_and_schema():
    s = OneEuroSettings()
    assert (s.min_cutoff, s.beta, s.d_cutoff, s.min_visibility) == (1.0, 0.05, 1.0, 0.5)
    schema = OneEuroSettings.model_json_schema()
    assert all(prop.get("description") for prop in schema["properties"].values())
    with pytest.raises(ValidationError):
        OneEuroSettings(min_cutof=2.0)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        OneEuroSettings(min_cutoff=0.0)


def test_first_sample_passes_through_unchanged():
    lm = person()
    out = LandmarkFilter()(lm, 10.0)
    assert out.dtype == np.float32
    assert out.shape == (33, 4)
    np.testing.assert_array_equal(out, lm)


def test_reduces_jitter_on_a_still_person():
    rng = np.random.default_rng(1)
    base = person()
    f = LandmarkFilter()
    raw, filtered = [], []
    for k in range(300):
        sample = noisy(base, rng)
        raw.append(sample[:, :3])
        filtered.append(f(sample, k / FPS)[:, :3])
    raw_var = np.var(np.array(raw[60:]), axis=0).mean()
    filtered_var = np.var(np.array(filtered[60:]), axis=0).mean()
    assert filtered_var < 0.2 * raw_var
    # Smoothing must not bias the position.
    np.testing.assert_allclose(np.array(filtered[60:]).mean(axis=0), base[:, :3], atol=0.005)


def lag_after_step(beta: float) -> int:
    """Frames until the wrist's filtered x gets within 10% of a 0.2 step."""
    f = LandmarkFilter(OneEuroSettings(beta=beta))
    before = person()
    after = before.copy()
    after[WRIST, 0] += 0.2
    for k in range(30):
        f(before, k / FPS)
    for k in range(30, 120):
        x = f(after, k / FPS)[WRIST, 0]
        if abs(x - after[WRIST, 0]) < 0.02:
            return k - 30
    return 90


def test_follows_a_step_with_small_lag_when_beta_is_large():
    fast = lag_after_step(beta=50.0)
    slow = lag_after_step(beta=0.0)
    assert fast <= 3
    assert slow > 2 * fast + 5


def test_invisible_landmark_holds_its_position_and_restarts_when_seen_again():
    f = LandmarkFilter()
    lm = person()
    for k in range(10):
        f(lm, k / FPS)
    held = f(lm, 10 / FPS)[WRIST, :3].copy()

    moved = lm.copy()
    moved[WRIST, :2] += (0.3, -0.2)
    gone = hide(moved, WRIST)
    out = f(gone, 11 / FPS)
    np.testing.assert_array_equal(out[WRIST, :3], held)
    assert out[WRIST, 3] == 0.0  # the new, low visibility is carried
    np.testing.assert_allclose(out[Landmark.NOSE, :3], lm[Landmark.NOSE, :3], atol=1e-6)  # others unaffected

    back = f(moved, 12 / FPS)
    np.testing.assert_array_equal(back[WRIST], moved[WRIST])  # no slide from the stale position


def test_landmark_never_seen_passes_raw():
    f = LandmarkFilter()
    lm = hide(person(), WRIST)
    f(lm, 0.0)
    moved = lm.copy()
    moved[WRIST, 0] += 0.1
    np.testing.assert_array_equal(f(moved, 1 / FPS)[WRIST], moved[WRIST])


def test_visibility_column_is_not_filtered():
    f = LandmarkFilter()
    lm = person()
    f(lm, 0.0)
    lm2 = lm.copy()
    lm2[:, 3] = 0.77
    np.testing.assert_array_equal(f(lm2, 1 / FPS)[:, 3], np.float32(0.77))


@pytest.mark.parametrize("dt", [0.0, -0.1])
def test_repeated_or_backward_timestamp_is_harmless(dt):
    f = LandmarkFilter()
    lm = person()
    f(lm, 1.0)
    f(lm, 1.0 + 1 / FPS)
    before = f(lm, 1.0 + 2 / FPS)
    moved = lm.copy()
    moved[:, :3] += 0.05
    with np.errstate(all="raise"):
        out = f(moved, 1.0 + 2 / FPS + dt)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, :3], before[:, :3])
    # Time moves on again from the latest timestamp seen.
    later = f(moved, 1.0 + 3 / FPS)
    assert np.isfinite(later).all()
    assert (later[WRIST, 0] > before[WRIST, 0]) and (later[WRIST, 0] < moved[WRIST, 0])


def test_reset_makes_the_next_sample_pass_through():
    f = LandmarkFilter()
    f(person(), 0.0)
    f.reset()
    lm = person(cx=0.3)
    np.testing.assert_array_equal(f(lm, 0.5), lm)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-1.0, 2.0, allow_nan=False, width=32), min_size=2, max_size=40),
    steps=st.lists(st.floats(0.001, 0.5), min_size=40, max_size=40),
    beta=st.floats(0.0, 100.0),
    min_cutoff=st.floats(0.01, 20.0),
)
def test_output_stays_within_the_range_of_its_inputs(values, steps, beta, min_cutoff):
    """Each output is a blend of the previous output and the new input, so it never overshoots."""
    f = LandmarkFilter(OneEuroSettings(beta=beta, min_cutoff=min_cutoff))
    lm = person()
    t = 0.0
    seen: list[float] = []
    for value, dt in zip(values, steps, strict=False):
        lm[WRIST, 0] = value
        seen.append(float(np.float32(value)))
        out = f(lm, t)[WRIST, 0]
        assert min(seen) <= out <= max(seen)
        t += dt
