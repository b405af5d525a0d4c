"""Stable anonymous visitor ids: walks, crossings, occlusions, events and the nearest visitor."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sensors.pose.features import body_centre
from sensors.pose.tracking import TrackingSettings, TrackUpdate, Visitor, VisitorTracker, greedy_assignment, nearest
from sensors.pose.types import Landmark
from tests.support.pose_synth import FPS, hide, person, times, walk_seq


def run(tracker: VisitorTracker, frames: list[tuple[float, list[np.ndarray]]]) -> list[TrackUpdate]:
    return [tracker.update(people, t) for t, people in frames]


def all_events(updates: list[TrackUpdate]) -> tuple[list[int], list[int]]:
    entered = [i for u in updates for i in u.entered]
    left = [i for u in updates for i in u.left]
    return entered, left


def test_settings_defaults_and_schema():
    s = TrackingSettings()
    assert (s.max_distance, s.grace, s.min_visibility) == (0.25, 0.5, 0.5)
    assert all(p.get("description") for p in TrackingSettings.model_json_schema()["properties"].values())
    with pytest.raises(ValidationError):
        TrackingSettings(grace_period=1.0)  # type: ignore[call-arg]


def test_one_visitor_keeps_an_id_across_a_walk():
    updates = run(VisitorTracker(), [(t, [lm]) for t, lm in walk_seq(duration=3.0)])
    assert all([v.id for v in u.visitors] == [1] for u in updates)
    assert updates[0].entered == [1]
    assert all_events(updates) == ([1], [])
    last = updates[-1].visitors[0]
    assert last.first_seen == 0.0
    assert last.last_seen == pytest.approx(list(times(3.0))[-1])


def test_visitor_landmarks_are_the_latest_raw_ones_and_a_copy():
    tracker = VisitorTracker()
    lm = person()
    visitor = tracker.update([lm], 0.0).visitors[0]
    np.testing.assert_array_equal(visitor.landmarks, lm)
    lm[:, 0] += 0.1  # the caller reusing its buffer must not move the visitor
    assert visitor.landmarks[0, 0] != lm[0, 0]


def crossing(duration: float = 3.0) -> list[tuple[float, list[np.ndarray]]]:
    """Two visitors walking past each other: one nearer the camera (lower, bigger), in opposite directions."""
    frames = []
    for t in times(duration):
        u = t / duration
        a = person(cx=0.2 + 0.6 * u, cy=0.55, scale=0.15)
        b = person(cx=0.8 - 0.6 * u, cy=0.62, scale=0.17)
        # Detection order is arbitrary: swap it every other frame.
        frames.append((t, [a, b] if int(t * FPS) % 2 else [b, a]))
    return frames


def test_two_people_crossing_keep_distinct_ids_that_follow_them():
    updates = run(VisitorTracker(), crossing())
    assert all_events(updates) == ([1, 2], [])
    xs: dict[int, list[float]] = {1: [], 2: []}
    for u in updates:
        assert [v.id for v in u.visitors] == [1, 2]
        for v in u.visitors:
            xs[v.id].append(body_centre(v.landmarks)[0])
    directions = {i: np.sign(np.diff(x)) for i, x in xs.items()}
    # Each id stays with one walker: its x moves one way only.
    assert set(directions[1]) == {1.0} or set(directions[1]) == {-1.0}
    assert set(directions[2]) == {-directions[1][0]}


def occluded_walk(gap_start: float, gap: float, duration: float = 3.0) -> list[tuple[float, list[np.ndarray]]]:
    frames = []
    for t, lm in walk_seq(duration=duration, start_x=0.3, end_x=0.6):
        hidden = gap_start <= t < gap_start + gap
        frames.append((t, [] if hidden else [lm]))
    return frames


def test_short_occlusion_keeps_the_id():
    updates = run(VisitorTracker(), occluded_walk(1.0, 0.3))
    assert all_events(updates) == ([1], [])
    seen = {v.id for u in updates for v in u.visitors}
    assert seen == {1}
    # While hidden the visitor is not "present", but is not gone either.
    hidden = [u for t, u in zip(times(3.0), updates, strict=True) if 1.0 <= t < 1.3]
    assert hidden and all(u.visitors == [] for u in hidden)


def test_long_occlusion_gives_leave_then_enter_with_a_new_id():
    updates = run(VisitorTracker(), occluded_walk(1.0, 0.8))
    assert all_events(updates) == ([1, 2], [1])
    ts = list(times(3.0))
    left_at = next(t for t, u in zip(ts, updates, strict=True) if u.left)
    entered_at = next(t for t, u in zip(ts, updates, strict=True) if 2 in u.entered)
    last_seen = max(t for t in ts if t < 1.0)
    assert left_at - last_seen > 0.5
    assert left_at < entered_at
    assert {v.id for u in updates[ts.index(entered_at) :] for v in u.visitors} == {2}


def test_jump_farther_than_max_distance_is_a_new_visitor():
    tracker = VisitorTracker()
    tracker.update([person(cx=0.2)], 0.0)
    update = tracker.update([person(cx=0.8)], 0.1)
    assert update.entered == [2]
    assert [v.id for v in update.visitors] == [2]
    later = tracker.update([person(cx=0.8)], 0.55)  # 1 unseen for 0.55 s > grace, 2 for 0.45 s
    assert later.left == [1]
    assert [v.id for v in later.visitors] == [2]


def test_new_visitor_next_to_a_known_one():
    tracker = VisitorTracker()
    tracker.update([person(cx=0.3)], 0.0)
    update = tracker.update([person(cx=0.31), person(cx=0.7)], 1 / FPS)
    assert update.entered == [2]
    assert [v.id for v in update.visitors] == [1, 2]
    assert body_centre(update.visitors[0].landmarks)[0] == pytest.approx(0.31, abs=1e-3)


def test_detection_with_nothing_visible_is_ignored():
    tracker = VisitorTracker()
    update = tracker.update([person(visibility=0.1)], 0.0)
    assert update == TrackUpdate([], [], [])


def test_centre_uses_only_visible_landmarks():
    tracker = VisitorTracker()
    tracker.update([person(cx=0.5)], 0.0)
    # Garbage far away on invisible landmarks must not drag the centre beyond max_distance.
    lm = person(cx=0.5)
    lm[Landmark.LEFT_HIP, :2] = (5.0, 5.0)
    lm = hide(lm, Landmark.LEFT_HIP)
    assert [v.id for v in tracker.update([lm], 0.1).visitors] == [1]


def test_nearest_is_the_biggest():
    small = Visitor(1, person(cx=0.3, scale=0.1), 0.0, 0.0)
    big = Visitor(2, person(cx=0.7, scale=0.2), 0.0, 0.0)
    assert nearest([small, big]) is big
    assert nearest([big, small]) is big
    assert VisitorTracker.nearest([small, big]) is big
    assert nearest([]) is None


def test_nearest_prefers_size_over_z_and_survives_turning_sideways():
    far = person(cx=0.3, scale=0.1)
    far[:, 2] = -5.0  # MediaPipe z is per person: it must not decide
    near_side_on = person(cx=0.7, scale=0.2)
    near_side_on[Landmark.LEFT_SHOULDER, 0] = near_side_on[Landmark.RIGHT_SHOULDER, 0]  # no shoulder width
    assert nearest([Visitor(1, far, 0, 0), Visitor(2, near_side_on, 0, 0)]).id == 2  # type: ignore[union-attr]


def test_nearest_puts_unmeasurable_visitors_last():
    blind = Visitor(1, hide(person(scale=0.3), *range(11, 25)), 0.0, 0.0)
    seen = Visitor(2, person(scale=0.1), 0.0, 0.0)
    assert nearest([blind, seen]) is seen
    assert nearest([blind]) is blind


def test_greedy_assignment_takes_cheapest_pairs_within_the_gate():
    cost = np.array([[0.1, 0.05], [0.2, 0.9]])
    assert sorted(greedy_assignment(cost, 0.5)) == [(0, 1), (1, 0)]
    assert greedy_assignment(cost, 0.01) == []


frames_strategy = st.lists(
    st.tuples(
        st.floats(0.0, 0.4),  # time step
        st.lists(st.tuples(st.floats(0.05, 0.95), st.floats(0.3, 0.8)), max_size=5),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(frames=frames_strategy, grace=st.floats(0.0, 1.0), gate=st.floats(0.01, 0.5))
def test_ids_are_never_reused_and_events_are_consistent(frames, grace, gate):
    tracker = VisitorTracker(TrackingSettings(grace=grace, max_distance=gate))
    t = 0.0
    known: set[int] = set()
    gone: set[int] = set()
    for dt, centres in frames:
        t += dt
        update = tracker.update([person(cx=x, cy=y) for x, y in centres], t)
        ids = [v.id for v in update.visitors]
        assert ids == sorted(set(ids)), "visitors are unique and sorted"
        assert len(ids) == len(centres), "every detection is a visitor"
        assert not set(update.entered) & known, "a new id is new"
        assert update.entered == sorted(update.entered)
        assert all(i > max(known, default=0) for i in update.entered)
        assert set(update.left) <= known - gone, "only known ids leave, once"
        assert not set(update.left) & set(ids)
        assert set(ids) <= known | set(update.entered), "a visitor is known or has just entered"
        assert not set(ids) & gone, "a gone id never comes back"
        known |= set(update.entered)
        gone |= set(update.left)
