"""Gesture events: each fires once on its own movement, never on the others' or on a still visitor."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from pydantic import ValidationError

from sensors.pose.gestures import GESTURES, GestureDetector, GestureSettings
from sensors.pose.types import Landmark, Landmarks
from tests.support.pose_synth import (
    FPS,
    blend,
    hide,
    person,
    raise_seq,
    ramp,
    sequence,
    set_point,
    step_seq,
    still_seq,
    tpose_seq,
    walk_seq,
    wave_seq,
)

Seq = list[tuple[float, Landmarks]]


def fired(seq: Seq, detector: GestureDetector | None = None, visitor: int = 1) -> list[tuple[str, float]]:
    detector = detector or GestureDetector()
    return [(name, t) for t, lm in seq for name in detector.update(visitor, lm, t)]


def names(seq: Seq, **settings: float) -> list[str]:
    return [name for name, _ in fired(seq, GestureDetector(GestureSettings(**settings)))]  # type: ignore[arg-type]


SEQUENCES: dict[str, tuple[Callable[..., Seq], list[str]]] = {
    "still": (still_seq, []),
    "walk": (walk_seq, []),
    "wave": (wave_seq, ["wave"]),
    "raise": (raise_seq, ["raise_both_hands"]),
    "t_pose": (tpose_seq, ["t_pose"]),
    "step": (step_seq, ["step_forward"]),
}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("movement", SEQUENCES)
def test_cross_check_matrix(movement, seed):
    """Each movement fires exactly its own gesture, once; the still and walking visitor fire nothing."""
    make, expected = SEQUENCES[movement]
    assert names(make(seed=seed)) == expected


def test_gesture_names():
    assert GESTURES == ("wave", "raise_both_hands", "t_pose", "step_forward")
    assert {g for _, (_, expected) in SEQUENCES.items() for g in expected} == set(GESTURES)


def test_settings_defaults_and_schema():
    s = GestureSettings()
    assert (s.wave_min_swings, s.wave_min_amplitude, s.wave_window) == (3, 0.04, 1.5)
    assert (s.raise_hold, s.tpose_tolerance, s.tpose_min_span, s.tpose_hold) == (0.3, 0.08, 2.3, 0.5)
    assert (s.step_min_growth, s.step_window, s.refractory) == (0.15, 1.0, 1.0)
    assert all(p.get("description") for p in GestureSettings.model_json_schema()["properties"].values())
    with pytest.raises(ValidationError):
        GestureSettings(wave_swings=3)  # type: ignore[call-arg]


def test_fire_times_respect_the_holds():
    ((raise_name, raise_t),) = fired(raise_seq())
    # Wrists pass the nose about 0.2 s into the 0.3 s raise that starts at 0.5 s; then 0.3 s of hold.
    assert raise_name == "raise_both_hands"
    assert 0.95 <= raise_t <= 1.1
    ((_, tpose_t),) = fired(tpose_seq())
    assert tpose_t >= 0.5 + 0.5


def test_wave_needs_enough_swings_and_amplitude():
    assert names(wave_seq(amplitude=0.015)) == []  # swings of 0.03 < 0.04
    assert names(wave_seq(), wave_min_swings=20) == []  # 2 Hz for 2 s has only ~8 direction changes
    assert names(wave_seq(hz=0.3)) == []  # too slow: not enough swings within 1.5 s


def test_wave_needs_the_hand_above_the_elbow():
    base = person()
    wrist = base[Landmark.RIGHT_WRIST, :2]

    def low_wave(t: float) -> Landmarks:
        return set_point(base, Landmark.RIGHT_WRIST, float(wrist[0]) + 0.05 * np.sin(4 * np.pi * t), float(wrist[1]))

    assert names(sequence(3.0, low_wave)) == []


def test_a_long_wave_fires_once_and_again_after_a_pause():
    first = wave_seq(duration=3.0)
    second = [(t + 3.0, lm) for t, lm in wave_seq(duration=3.0, seed=1)]
    events = fired(first + second)
    assert [n for n, _ in events] == ["wave", "wave"]


def held(pose: Landmarks, start: float, duration: float, seed: int = 0) -> Seq:
    rest = person()
    end = start + duration
    return sequence(end + 1.0, lambda t: pose if start <= t < end else rest, seed)


def test_raise_must_be_held():
    assert names(held(person(arms="up"), 0.5, 0.2)) == []
    assert names(held(person(arms="up"), 0.5, 0.5)) == ["raise_both_hands"]


def test_t_pose_must_be_held_and_level():
    assert names(held(person(arms="t"), 0.5, 0.3)) == []
    assert names(held(person(arms="t"), 0.5, 0.8)) == ["t_pose"]
    sloped = person(arms="t")
    sloped[Landmark.LEFT_WRIST, 1] += 0.1  # one arm 0.1 of the frame below its shoulder
    assert names(held(sloped, 0.5, 1.0)) == []
    assert names(held(sloped, 0.5, 1.0), tpose_tolerance=0.15) == ["t_pose"]


def test_held_pose_fires_once():
    assert names(held(person(arms="up"), 0.5, 5.0)) == ["raise_both_hands"]
    assert names(held(person(arms="t"), 0.5, 5.0)) == ["t_pose"]


def raise_twice(gap: float, second_length: float) -> Seq:
    """Hands up 0.5-1.0 s, down for ``gap`` s, up again for ``second_length`` s."""
    up, down = person(arms="up"), person()
    second = 1.0 + gap

    def pose(t: float) -> Landmarks:
        return up if 0.5 <= t < 1.0 or second <= t < second + second_length else down

    return sequence(second + second_length + 1.0, pose)


def test_refractory_delays_a_quick_repeat():
    events = fired(raise_twice(gap=0.1, second_length=2.0))
    assert [n for n, _ in events] == ["raise_both_hands", "raise_both_hands"]
    first, second = events[0][1], events[1][1]
    assert first == pytest.approx(0.8, abs=1.5 / FPS)
    assert second - first == pytest.approx(1.0, abs=1.5 / FPS)  # held, but only fires once the refractory is over


def test_repeat_that_ends_within_the_refractory_never_fires():
    assert names(raise_twice(gap=0.1, second_length=0.6)) == ["raise_both_hands"]
    assert names(raise_twice(gap=0.1, second_length=0.6), refractory=0.0) == ["raise_both_hands"] * 2


def test_separate_occurrences_fire_separately():
    assert names(raise_twice(gap=1.5, second_length=1.0)) == ["raise_both_hands"] * 2


def test_invisible_wrist_is_not_a_raised_hand():
    assert names(held(hide(person(arms="up"), Landmark.LEFT_WRIST), 0.5, 1.0)) == []


def test_slow_approach_is_not_a_step():
    # 30% bigger over 4 s is about 7% per second: below 15% within the 1 s window.
    approach = sequence(5.0, lambda t: person(scale=0.15 * (1 + 0.3 * ramp(t, 0.5, 4.0))))
    assert names(approach) == []


def test_visitors_are_independent_and_forget_drops_state():
    detector = GestureDetector()
    up, down = person(arms="up"), person()
    out = []
    for k in range(30):
        t = k / FPS
        out += [(1, n) for n in detector.update(1, up if t < 0.25 else down, t)]
        out += [(2, n) for n in detector.update(2, up, t)]
    assert out == [(2, "raise_both_hands")]  # visitor 1 lowered their hands too soon
    detector.forget(2)
    detector.forget(99)  # unknown ids are fine
    restarted = [name for k in range(12) for name in detector.update(2, up, 1.0 + k / FPS)]
    assert restarted == ["raise_both_hands"]  # a fresh hold, no refractory carried over


def test_transition_from_raise_to_t_pose_fires_both():
    up, t_pose = person(arms="up"), person(arms="t")
    seq = sequence(4.0, lambda t: blend(up, t_pose, ramp(t, 1.5, 0.3)))
    assert names(seq) == ["raise_both_hands", "t_pose"]
