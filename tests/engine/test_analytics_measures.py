"""The measures engine on scripted visitors and explicit timestamps: expectations come from the script, not the code."""

from __future__ import annotations

from collections import defaultdict

import pytest
from pydantic import ValidationError

from engine.analytics.folding import Measures, Seen
from engine.analytics.records import HOUR, MAXIMA, MEASURES, BinRecord
from engine.analytics.settings import AnalyticsSettings

H = 1_700_000_000 // HOUR * HOUR
"""The first hour of the script (a realistic wall time, so float rounding is realistic too)."""
NEXT = H + HOUR
FPS = 30
FRAME = 1 / FPS
CAM = "cam"


def total(records: list[BinRecord]) -> dict[tuple[int, str, str], float]:
    """Records combined as the store combines them: summed, or the maximum for MAXIMA."""
    sums: dict[tuple[int, str, str], float] = defaultdict(float)
    for r in records:
        slot = (r.start, r.measure, r.key)
        sums[slot] = max(sums[slot], r.value) if r.measure in MAXIMA else sums[slot] + r.value
    return dict(sums)


def seen_at(s: float) -> list[Seen]:
    """Who is in view ``s`` seconds after H, by the script.

    A: 10..11 s at (0.2, 0.2), no zone (did not stop).
    B: 20..50 s at (1.2, 0.7), in zone `plinth` from 20 to 35 s (half the time), raises hands at 30 s.
    D: 40..41 s, floor unknown (overlaps B: the peak is 2).
    C: 3590..3610 s at (-0.3, 0.6) in zone `door`: spans the hour boundary at 3600 s.
    """
    out = []
    if 10 <= s <= 11:
        out.append(Seen(1, (0.2, 0.2), frozenset()))
    if 20 <= s <= 50:
        out.append(Seen(2, (1.2, 0.7), frozenset({"plinth"}) if s < 35 else frozenset()))
    if 40 <= s <= 41:
        out.append(Seen(4, None, frozenset()))
    if 3590 <= s <= 3610:
        out.append(Seen(3, (-0.3, 0.6), frozenset({"door"})))
    return out


LEAVES = {11.5: 1, 50.5: 2, 41.5: 4, 3610.5: 3}
"""When the tracker reports each visitor gone (after its grace period)."""


def run_script() -> tuple[Measures, list[BinRecord]]:
    settings = AnalyticsSettings(interactions=["body.raise_hands"])
    m = Measures("gallery", settings, clock_wall=lambda: pytest.fail("the script gives every time"))
    events = {
        0: [lambda t: m.state_entered("show", "attract", t)],
        40 * FPS: [lambda t: m.state_entered("show", "finale", t)],
        45 * FPS: [lambda t: m.cue_started("main", "finale", t)],
        47 * FPS: [lambda t: m.cue_ended("main", "finale", t)],
        30 * FPS: [lambda t: m.interaction("body.raise_hands", t), lambda t: m.interaction("plinth.button", t)],
        3000 * FPS: [lambda t: m.state_entered("show", "attract", t)],
        3605 * FPS: [lambda t: m.cue_started("main", "outro", t)],
        3606 * FPS: [lambda t: m.cue_ended("main", "outro", t)],
        3607 * FPS: [lambda t: m.cue_started("main", "outro", t)],
    }
    records: list[BinRecord] = []
    frames = [*range(0, 60 * FPS + 1), *range(3000 * FPS, 3000 * FPS + 1), *range(3580 * FPS, 3620 * FPS + 1)]
    for i in frames:
        s = i / FPS
        t = H + s
        for event in events.get(i, []):
            event(t)
        m.frame(CAM, t, seen_at(s))
        for when, visitor in LEAVES.items():
            if when == s:
                m.left(CAM, visitor, t)
        if i == 60 * FPS:
            records += m.flush(t)  # a flush in the middle: bins written twice add up
    records += m.flush(H + 3620)
    return m, records


def test_the_script_gives_the_measures_computed_from_it():
    _, records = run_script()
    got = total(records)
    plinth = (H, "zone_dwell_s", "plinth")
    assert got.pop(plinth) == pytest.approx(15, abs=FRAME)  # B stood on it from 20 s to 35 s: 15 s within a frame
    assert got == pytest.approx(
        {
            # Hour H: A (1 s), B (30 s, stopped), D (1 s) left in it; C's first 10 s are in it.
            (H, "visitors", CAM): 3,
            (H, "stopped", CAM): 1,
            (H, "holding_s", "30"): 1,
            (H, "zone_visitors", "plinth"): 1,
            (H, "occupancy_s", CAM): 1 + 30 + 1 + 10,
            (H, "occupancy_peak", CAM): 2,
            (H, "zone_dwell_s", "door"): 10,
            (H, "heatmap", "0,0"): 1,
            (H, "heatmap", "2,1"): 30,
            (H, "heatmap", "-1,1"): 10,
            (H, "heatmap_visitors", "0,0"): 1,  # A
            (H, "heatmap_visitors", "2,1"): 1,  # B (D's floor is unknown; C left in the next hour)
            (H, "interactions", "body.raise_hands"): 1,
            # attract, first visit: A and B arrive; second visit (from 3000 s): C arrives.
            (H, "engaged_state", "show:attract"): 3,
            # finale (from 40 s): B in view, D arrives.
            (H, "engaged_state", "show:finale"): 2,
            (H, "engaged_cue", "main:finale"): 1,
            # Hour H+1: C left in it, after 20 s (stopped); outro ran twice while C was in view.
            (NEXT, "visitors", CAM): 1,
            (NEXT, "stopped", CAM): 1,
            (NEXT, "holding_s", "20"): 1,
            (NEXT, "zone_visitors", "door"): 1,
            (NEXT, "zone_dwell_s", "door"): 10,
            (NEXT, "occupancy_s", CAM): 10,
            (NEXT, "occupancy_peak", CAM): 1,
            (NEXT, "heatmap", "-1,1"): 10,
            (NEXT, "heatmap_visitors", "-1,1"): 1,  # C, counted in the hour they left
            (NEXT, "engaged_cue", "main:outro"): 2,
        },
        abs=1e-5,
    )


def test_records_are_valid_bins_and_zeros_are_left_out():
    _, records = run_script()
    assert records
    for r in records:
        assert r.exhibit == "gallery"
        assert r.start % HOUR == 0
        assert r.measure in MEASURES
        assert r.value > 0
    with pytest.raises(ValueError):
        BinRecord("gallery", H + 1, "visitors", CAM, 1)
    with pytest.raises(ValueError):
        BinRecord("gallery", H, "faces", CAM, 1)


def test_nothing_per_visitor_is_left_after_they_leave_and_a_flush_empties_the_bins():
    m, _ = run_script()
    assert m.in_view() == 0
    assert all(not tracks for tracks in m._tracks.values())
    assert m.flush(H + 4000) == []
    assert not m._sums and not m._peaks


def test_a_visitor_in_view_is_one_open_track_until_they_leave():
    m = Measures("gallery", AnalyticsSettings())
    m.frame(CAM, H + 1, [Seen(7), Seen(8)])
    m.frame(CAM, H + 1.5, [Seen(7), Seen(8)])
    assert m.in_view() == 2
    m.left(CAM, 7, H + 2)
    assert m.in_view() == 1
    m.left(CAM, 99, H + 2)  # unknown ids are ignored
    assert m.in_view() == 1


def test_a_reset_folds_open_tracks_at_their_last_sighting_in_the_hour_they_were_last_seen():
    m = Measures("gallery", AnalyticsSettings())
    for k in range(51):  # from 3 s before NEXT to 2 s after it, every 0.1 s: 5 s in view
        m.frame(CAM, NEXT - 3 + k / 10, [Seen(1, (0.0, 0.0), frozenset({"plinth"}))])
    m.frame("other", NEXT + 2, [Seen(1)])  # the same id on another sensor is another visitor
    m.reset(CAM)
    assert m.in_view() == 1
    got = total(m.flush(NEXT + 2))
    assert got == pytest.approx(
        {
            (NEXT, "visitors", CAM): 1,
            (NEXT, "stopped", CAM): 1,
            (NEXT, "holding_s", "5"): 1,
            (NEXT, "zone_visitors", "plinth"): 1,
            (H, "occupancy_s", CAM): 3,
            (NEXT, "occupancy_s", CAM): 2,
            (H, "zone_dwell_s", "plinth"): 3,
            (NEXT, "zone_dwell_s", "plinth"): 2,
            (H, "heatmap", "0,0"): 3,
            (NEXT, "heatmap", "0,0"): 2,
            (NEXT, "heatmap_visitors", "0,0"): 1,
            (H, "occupancy_peak", CAM): 1,
            (NEXT, "occupancy_peak", CAM): 1,
            (NEXT, "occupancy_peak", "other"): 1,
        },
        abs=1e-5,
    )


def test_a_stalled_camera_counts_at_most_one_second_per_gap():
    m = Measures("gallery", AnalyticsSettings(stop_after=2))
    for t in (0.0, 0.5, 100.0, 100.5, 101.0):  # a 99.5 s stall counts as 1 s: 0.5 + 1 + 0.5 + 0.5
        m.frame(CAM, H + t, [Seen(1)])
    m.left(CAM, 1, H + 101.5)
    got = total(m.flush(H + 102))
    assert got[(H, "occupancy_s", CAM)] == pytest.approx(2.5)
    assert got[(H, "stopped", CAM)] == 1
    assert got[(H, "holding_s", "2")] == 1


def test_stop_after_is_inclusive_and_short_visits_do_not_stop():
    m = Measures("gallery", AnalyticsSettings.model_validate({"stop_after": "500ms"}))
    for k in range(16):  # 0 to 0.5 s at 30 fps: exactly stop_after
        m.frame(CAM, H + k * FRAME, [Seen(1)])
    for k in range(10):  # 0 to 0.3 s
        m.frame(CAM, H + 10 + k * FRAME, [Seen(2)])
    m.left(CAM, 1)
    m.left(CAM, 2)
    got = total(m.flush(H + 20))
    assert got[(H, "visitors", CAM)] == 2
    assert got[(H, "stopped", CAM)] == 1
    assert got[(H, "holding_s", "0")] == 1


def test_long_stays_go_to_the_last_holding_bucket():
    m = Measures("gallery", AnalyticsSettings())
    for k in range(1401):  # 700 s, every 0.5 s
        m.frame(CAM, H + k / 2, [Seen(1)])
    m.left(CAM, 1)
    got = total(m.flush(H + 800))
    assert got[(H, "holding_s", "600+")] == 1
    assert got[(H, "occupancy_s", CAM)] == pytest.approx(700)


def test_a_track_whose_leaving_never_came_is_folded_on_a_later_flush():
    m = Measures("gallery", AnalyticsSettings(), clock_wall=lambda: H + 1000)
    for k in range(7):  # 1 to 4 s, every 0.5 s
        m.frame(CAM, H + 1 + k / 2, [Seen(1)])
    assert total(m.flush(H + 30)).get((H, "visitors", CAM)) is None  # still in view, maybe
    assert m.in_view() == 1
    got = total(m.flush())  # the wall clock says H + 1000
    assert got == {(H, "visitors", CAM): 1, (H, "stopped", CAM): 1, (H, "holding_s", "3"): 1}
    assert m.flush(H + 2000) == []
    assert m.in_view() == 0


def test_only_the_chosen_sensors_and_interactions_count():
    m = Measures("gallery", AnalyticsSettings(sensors=[CAM], interactions=["plinth.button"]))
    m.frame("ceiling", H, [Seen(1)])
    m.frame("ceiling", H + 0.5, [Seen(1)])
    m.interaction("plinth.button", H)
    m.interaction("plinth.button", H + 1)
    m.interaction("body.wave", H + 1)
    assert m.in_view() == 0
    assert total(m.flush(H + 2)) == {(H, "interactions", "plinth.button"): 2}


def test_engagement_counts_each_visitor_once_per_state_visit():
    m = Measures("gallery", AnalyticsSettings())
    m.frame(CAM, H, [Seen(1)])
    m.state_entered("show", "finale", H + 1)  # 1 in view
    m.frame(CAM, H + 1.5, [Seen(1), Seen(2)])  # 2 arrives
    m.frame(CAM, H + 2, [Seen(1), Seen(2)])  # nobody new
    m.state_entered("show", "idle", H + 3)  # 1 and 2 in view
    m.state_entered("show", "finale", H + 4)  # a second visit: both again
    m.state_ended("show", H + 5)
    m.frame(CAM, H + 5.5, [Seen(1), Seen(2), Seen(3)])  # 3 arrives after the show ended
    got = total(m.flush(H + 6))
    assert got[(H, "engaged_state", "show:finale")] == 4
    assert got[(H, "engaged_state", "show:idle")] == 2


def test_settings_read_durations_and_refuse_what_would_weaken_privacy():
    settings = AnalyticsSettings.model_validate(
        {"stop_after": "1500ms", "heatmap_cell": 1, "sensors": ["cam"], "retention": "30d", "timezone": "Asia/Shanghai"}
    )
    assert (settings.stop_after, settings.retention_days, settings.timezone) == (1.5, 30, "Asia/Shanghai")
    assert AnalyticsSettings().model_dump() == {
        "enabled": True,
        "stop_after": 2.0,
        "retention": 400,
        "timezone": None,
        "k": 5,
        "heatmap_cell": 0.5,
        "interactions": [],
        "sensors": None,
    }
    refused = (
        {"k": 1},
        {"retention": 0},
        {"retention": "2 weeks"},
        {"retention": True},
        {"timezone": "Beijing"},
        {"heatmap_cell": 0},
        {"stop_after": "-2s"},
        {"faces": True},
    )
    for bad in refused:
        with pytest.raises(ValidationError):
            AnalyticsSettings.model_validate(bad)
    for name, field in AnalyticsSettings.model_fields.items():
        assert field.description, name
