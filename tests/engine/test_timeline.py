"""Keyframed timelines: validation of the YAML form, and playing through the fade engine on virtual time."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from pydantic import ValidationError
from ruamel.yaml import YAML

from engine.clock import VirtualClock
from engine.fades import FadeEngine
from engine.timeline import Timeline, TimelineSpec
from tests.engine.test_fades import PERIOD, Recorder, add, assert_rate_limited

LANTERN_RISE = """
length: 20s
loop: false
tracks:
  lanterns.brightness: [[0, 0], [5, 255, ease-in-out], [15, 255], [20, 0]]
  lanterns.hue: [[0, 20], [20, 50]]
"""


def spec_from_yaml(text: str) -> TimelineSpec:
    return TimelineSpec.model_validate(YAML(typ="safe").load(text))


def spec(tracks: dict, **options) -> TimelineSpec:
    return TimelineSpec.model_validate({"tracks": tracks, **options})


@pytest.fixture
async def clock():
    return VirtualClock()


@pytest.fixture
async def engine(clock):
    engine = FadeEngine(clock)
    runner = asyncio.create_task(engine.run())
    yield engine
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner


@pytest.fixture
def lanterns(clock, engine) -> Recorder:
    return add(engine, clock, "lanterns", brightness=0, hue=20, on=False)


def now(engine: FadeEngine, prop: str):
    return engine.value("lanterns", prop)


# The file format ---------------------------------------------------------------------------------


def test_the_yaml_example_validates():
    rise = spec_from_yaml(LANTERN_RISE)
    assert rise.length == 20.0 and rise.duration == 20.0 and not rise.loop
    first, second = rise.tracks["lanterns.brightness"][:2]
    assert (first.time, first.value, first.curve) == (0.0, 0.0, "linear")
    assert (second.time, second.value, second.curve) == (5.0, 255.0, "ease-in-out")


def test_length_defaults_to_the_last_keyframe_and_times_take_units():
    timeline = spec({"a.b": [[0, 0], ["1.5s", 1]], "a.c": [[0, 1], ["500ms", 0, "steps(2)"]]})
    assert timeline.length is None and timeline.duration == 1.5
    assert timeline.tracks["a.c"][1].curve == "steps(2)"


def test_bools_and_strings_are_kept_as_such():
    timeline = spec({"a.on": [[0, False], [1, True]], "a.mode": [[0, "calm"], [2, "storm"]]})
    assert [k.value for k in timeline.tracks["a.on"]] == [False, True]
    assert [k.value for k in timeline.tracks["a.mode"]] == ["calm", "storm"]


def error_of(data: dict) -> tuple[tuple, str]:
    with pytest.raises(ValidationError) as invalid:
        TimelineSpec.model_validate(data)
    first = invalid.value.errors()[0]
    return first["loc"], first["msg"]


@pytest.mark.parametrize(
    ("tracks", "where", "message"),
    [
        (
            {"a.b": [[0, 0], [5, 1], [5, 2]]},
            ("tracks", "a.b"),
            "keyframe 2 (at 5 s) is not after keyframe 1 (at 5 s): times must increase",
        ),
        ({"a.b": [[2, 0], [1, 1]]}, ("tracks", "a.b"), "keyframe 1 (at 1 s) is not after keyframe 0 (at 2 s)"),
        ({"a.b": [[0, 0], [1]]}, ("tracks", "a.b", 1), "a keyframe is `[time, value]` or `[time, value, curve]`"),
        ({"a.b": [[0, 0, "linear", 4]]}, ("tracks", "a.b", 0), "not a list of 4 items"),
        ({"a.b": [[0, 0], [1, 1, "ease_out"]]}, ("tracks", "a.b", 1, "curve"), "did you mean `ease-out`?"),
        ({"a.b": [[-1, 0]]}, ("tracks", "a.b", 0, "time"), "a duration cannot be negative"),
        ({"a.b": [["1 sec", 0]]}, ("tracks", "a.b", 0, "time"), "`1 sec` is not a duration"),
        ({"a.b": [[0, 0], [1, True]]}, ("tracks", "a.b"), "keyframe 1 holds a bool but keyframe 0 a number"),
        ({"a.b": [[0, 0, "ease-in"], [1, 1]]}, ("tracks", "a.b"), "the first keyframe's curve has no effect"),
        ({"a.b": [[0, False], [1, True, "linear"]]}, ("tracks", "a.b"), "bool values are not faded"),
        ({"a.b": []}, ("tracks", "a.b"), "a track needs at least one keyframe"),
        ({"lanterns": [[0, 0]]}, ("tracks", "lanterns", "[key]"), "track `lanterns` must name a property"),
        ({"Lanterns.Hue": [[0, 0]]}, ("tracks", "Lanterns.Hue", "[key]"), "as `device.property`"),
        ({}, (), "a timeline needs at least one track or action"),
    ],
)
def test_keyframe_mistakes_are_reported_where_they_are(tracks, where, message):
    loc, msg = error_of({"tracks": tracks})
    assert loc == where
    assert message in msg


def test_timeline_level_mistakes():
    short = {"length": "4s", "tracks": {"a.b": [[0, 0], [5, 1]]}}
    assert "`length` (4 s) ends before the last keyframe (at 5 s)" in error_of(short)[1]
    assert "a looping timeline needs a length above 0" in error_of({"loop": True, "tracks": {"a.b": [[0, 1]]}})[1]
    assert error_of({"tracks": {"a.b": [[0, 1]]}, "speed": 2})[0] == ("speed",)  # unknown keys are errors
    assert "`2 hours` is not a duration" in error_of({"length": "2 hours", "tracks": {"a.b": [[0, 1]]}})[1]


# Playing -----------------------------------------------------------------------------------------


async def test_play_gives_exact_values_at_given_times(clock, engine, lanterns):
    timeline = Timeline(spec_from_yaml(LANTERN_RISE), engine, "lantern_rise")
    timeline.play()
    await clock.advance(2.5)
    assert now(engine, "brightness") == pytest.approx(127.5)  # ease-in-out is half way at half time
    assert now(engine, "hue") == pytest.approx(23.75)
    await clock.advance(2.5)
    assert now(engine, "brightness") == 255
    await clock.advance(12.5)
    assert now(engine, "brightness") == pytest.approx(127.5)  # linear down from 255 at 15 s to 0 at 20 s
    assert timeline.position == pytest.approx(17.5) and timeline.playing
    await clock.advance(2.5)
    assert (now(engine, "brightness"), now(engine, "hue")) == (0, 50)
    assert not timeline.playing and timeline.done.is_set() and timeline.position == 20.0
    assert lanterns.calls[-1] == (pytest.approx(20.0), {"brightness": 0, "hue": 50})
    assert_rate_limited(lanterns.times())
    sent = len(lanterns.calls)
    await clock.advance(5.0)
    assert len(lanterns.calls) == sent


async def test_a_timeline_sends_both_tracks_in_one_set_per_tick(clock, engine, lanterns):
    Timeline(spec_from_yaml(LANTERN_RISE), engine).play()
    await clock.advance(5.0)
    assert all(set(values) == {"brightness", "hue"} for _, values in lanterns.calls)
    assert len(lanterns.calls) == 220  # ticks 1..220: at 0 the timeline's values equal the current ones


async def test_pause_freezes_and_resume_continues(clock, engine, lanterns):
    timeline = Timeline(spec_from_yaml(LANTERN_RISE), engine)
    timeline.play()
    await clock.advance(2.5)
    timeline.pause()
    assert timeline.paused and not timeline.playing and timeline.position == pytest.approx(2.5)
    sent, ticks = len(lanterns.calls), engine.ticks
    await clock.advance(10.0)
    assert len(lanterns.calls) == sent and engine.ticks == ticks  # nothing moves; the engine idles
    assert timeline.position == pytest.approx(2.5)
    timeline.resume()
    await clock.advance(2.5)
    assert timeline.position == pytest.approx(5.0)
    assert now(engine, "brightness") == 255


async def test_resume_does_not_take_back_what_a_fade_took_during_the_pause(clock, engine, lanterns):
    timeline = Timeline(spec_from_yaml(LANTERN_RISE), engine)
    timeline.play()
    await clock.advance(2.5)
    timeline.pause()
    engine.fade("lanterns", "brightness", 10, 0.5)
    await clock.advance(1.0)
    timeline.resume()
    await clock.advance(2.5)
    assert now(engine, "brightness") == 10  # the fade started later, so it still wins
    assert now(engine, "hue") == pytest.approx(20 + 30 * 5 / 20)


async def test_seek_while_playing_plays_on_from_there(clock, engine, lanterns):
    timeline = Timeline(spec_from_yaml(LANTERN_RISE), engine)
    timeline.play()
    await clock.advance(1.0)
    timeline.seek(15.0)
    await clock.advance(2.5)
    assert timeline.position == pytest.approx(17.5)
    assert now(engine, "brightness") == pytest.approx(127.5)
    assert now(engine, "hue") == pytest.approx(20 + 30 * 17.5 / 20)


async def test_seek_on_a_stopped_timeline_cues_it(clock, engine, lanterns):
    timeline = Timeline(spec_from_yaml(LANTERN_RISE), engine)
    timeline.seek(10.0)
    await clock.advance(PERIOD)
    assert timeline.paused and timeline.position == 10.0
    assert lanterns.calls == [(0.0, {"brightness": 255, "hue": 35})]
    await clock.advance(1.0)
    assert len(lanterns.calls) == 1
    timeline.resume()
    await clock.advance(10.0)
    assert now(engine, "brightness") == 0 and timeline.done.is_set()


async def test_seek_past_the_end_stops_at_the_end(clock, engine, lanterns):
    timeline = Timeline(spec_from_yaml(LANTERN_RISE), engine)
    timeline.play()
    timeline.seek(99.0)
    await clock.advance(PERIOD)
    assert not timeline.playing and timeline.position == 20.0 and now(engine, "brightness") == 0
    with pytest.raises(ValueError, match="seek needs a position in seconds >= 0"):
        timeline.seek(-1.0)


async def test_a_looping_timeline_starts_again(clock, engine, lanterns):
    timeline = Timeline(spec({"lanterns.brightness": [[0, 0], [4, 100]]}, loop=True), engine)
    timeline.play()
    await clock.advance(6.0)
    assert timeline.playing and timeline.position == pytest.approx(2.0)
    assert now(engine, "brightness") == pytest.approx(50.0)
    await clock.advance(3.0)
    assert timeline.position == pytest.approx(1.0) and now(engine, "brightness") == pytest.approx(25.0)
    assert not timeline.done.is_set()
    timeline.loop = False  # finish this round, then stop
    await clock.advance(3.0)
    assert not timeline.playing and now(engine, "brightness") == 100


async def test_a_loop_wraps_after_its_length(clock, engine, lanterns):
    timeline = Timeline(spec({"lanterns.brightness": [[0, 0], [2, 100]]}, loop=True, length=3), engine)
    timeline.play()
    await clock.advance(2.5)
    assert now(engine, "brightness") == 100  # held from 2 s to the end of the round at 3 s
    await clock.advance(1.0)
    assert now(engine, "brightness") == pytest.approx(25.0)  # 0.5 s into the second round
    timeline.seek(7.0)  # 7 s wraps to 1 s
    assert timeline.position == pytest.approx(1.0)


async def test_held_tracks_change_at_their_keyframes(clock, engine, lanterns):
    timeline = Timeline(spec({"lanterns.on": [[1, True], [3, False]], "lanterns.hue": [[2, 10], [4, 30]]}), engine)
    timeline.play()
    await clock.advance(0.5)
    assert now(engine, "on") is True  # before its first keyframe a track holds the first value
    assert now(engine, "hue") == 10
    await clock.advance(2.25)
    assert now(engine, "on") is True and now(engine, "hue") == pytest.approx(17.5)
    await clock.advance(0.25)
    assert now(engine, "on") is False
    assert lanterns.calls[-1] == (pytest.approx(3.0), {"on": False, "hue": pytest.approx(20.0)})


async def test_stop_rewinds_and_leaves_values_where_they_are(clock, engine, lanterns):
    timeline = Timeline(spec_from_yaml(LANTERN_RISE), engine)
    timeline.play()
    await clock.advance(2.5)
    timeline.stop()
    assert timeline.done.is_set() and not timeline.playing and timeline.position == 0.0
    sent = len(lanterns.calls)
    await clock.advance(5.0)
    assert len(lanterns.calls) == sent and now(engine, "brightness") == pytest.approx(127.5)
    timeline.play()
    assert not timeline.done.is_set()
    await clock.advance(PERIOD)
    assert now(engine, "brightness") == pytest.approx(0.0, abs=0.01)


async def test_a_later_fade_wins_over_a_timeline_and_keeps_the_property(clock, engine, lanterns):
    timeline = Timeline(spec_from_yaml(LANTERN_RISE), engine)
    timeline.play()
    await clock.advance(2.0)
    fade = engine.fade("lanterns", "brightness", 0, 1.0)
    await clock.advance(1.0)
    assert fade.completed and now(engine, "brightness") == 0
    await clock.advance(5.0)
    assert now(engine, "brightness") == 0  # not given back to the timeline when the fade ends
    assert now(engine, "hue") == pytest.approx(20 + 30 * 8 / 20)  # the other track plays on
    assert engine.fading() == [("lanterns", "hue")]
    timeline.play()  # a new start claims every track again
    await clock.advance(5.0)
    assert now(engine, "brightness") == 255


async def test_a_later_timeline_wins_over_a_fade(clock, engine, lanterns):
    fade = engine.fade("lanterns", "brightness", 200, 10.0)
    await clock.advance(1.0)
    Timeline(spec_from_yaml(LANTERN_RISE), engine).play()
    await asyncio.sleep(0)
    assert fade.done.is_set() and not fade.completed
    await clock.advance(5.0)
    assert now(engine, "brightness") == 255


async def test_a_timeline_whose_every_track_is_taken_stops(clock, engine, lanterns):
    timeline = Timeline(spec({"lanterns.brightness": [[0, 0], [10, 100]]}), engine)
    timeline.play()
    await clock.advance(1.0)
    engine.set_now("lanterns", "brightness", 5)
    assert not timeline.playing and timeline.done.is_set()
    assert timeline.position == pytest.approx(1.0)
    await clock.advance(2.0)
    assert now(engine, "brightness") == 5


async def test_a_track_on_an_unknown_device_is_refused(clock, engine, lanterns):
    with pytest.raises(ValueError, match=r"unknown fade target `lantern`; did you mean `lanterns`\?"):
        Timeline(spec({"lantern.brightness": [[0, 0]]}), engine)


# Timed actions ------------------------------------------------------------------------------------


def ran_at(clock: VirtualClock, timeline: Timeline) -> list[tuple[float, str]]:
    """Record (clock time, sound) each time the timeline runs its actions."""
    ran: list[tuple[float, str]] = []
    timeline.on_actions = lambda actions: ran.append((clock.now(), actions[0].sound))
    return ran


def with_actions(**options) -> TimelineSpec:
    return TimelineSpec.model_validate(
        {"actions": [{"at": 0, "do": [{"sound": "drum"}]}, {"at": "1.5s", "do": [{"sound": "chime"}]}], **options}
    )


async def test_actions_run_as_the_timeline_passes_them_even_without_tracks(clock, engine):
    timeline = Timeline(with_actions(), engine)
    ran = ran_at(clock, timeline)
    start = clock.now()
    timeline.play()
    await clock.advance(1.0)
    assert [sound for _, sound in ran] == ["drum"]
    await clock.advance(1.0)
    assert [sound for _, sound in ran] == ["drum", "chime"]
    assert ran[1][0] - start == pytest.approx(1.5, abs=PERIOD)  # on the engine's tick after 1.5 s
    assert not timeline.playing  # 1.5 s long: done, and nothing ran twice
    await clock.advance(2.0)
    assert len(ran) == 2


async def test_a_looping_timeline_runs_its_actions_every_round_and_a_seek_skips_what_it_jumps_over(clock, engine):
    timeline = Timeline(with_actions(loop=True, length=2), engine)
    ran = ran_at(clock, timeline)
    timeline.play()
    await clock.advance(5.0)  # rounds at 0, 2, 4: drum, chime, drum, chime, drum
    assert [sound for _, sound in ran] == ["drum", "chime", "drum", "chime", "drum"]
    timeline.seek(1.6)  # past this round's chime
    await clock.advance(0.3)
    assert [sound for _, sound in ran][5:] == []
    await clock.advance(0.2)  # the next round's drum
    assert [sound for _, sound in ran][5:] == ["drum"]


def test_an_action_after_the_length_is_refused():
    with pytest.raises(ValidationError, match=r"ends before the last action \(at 1.5 s\)"):
        with_actions(length=1)
