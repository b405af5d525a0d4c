"""Cue lists on virtual time: GO on a named cue of a named list, the end of the list, the guard time
late in a show, PAUSE during a cue's delays, the history of fired cues, and what a list keeps of
its finished waits."""

from __future__ import annotations

import logging

import pytest

from tests.support.show_harness import commands, start_show

HEAD = """\
format_version: 1
id: show
title: {en: Show}
devices:
  wash:
    kind: mqtt
    properties:
      level: {type: float, range: [0, 100], safe: 0}
  spot:
    kind: mqtt
    properties:
      level: {type: float, range: [0, 100], safe: 0}
"""

TWO_LISTS = (
    HEAD
    + """\
cues:
  house:
    guard: 0s
    cues:
      - {id: "1", actions: [{set: wash.level, value: 10}]}
      - {id: "2", actions: [{set: wash.level, value: 20}]}
  stage:
    guard: 0s
    cues:
      - {id: "1", actions: [{set: spot.level, value: 10}]}
      - {id: "2", actions: [{set: spot.level, value: 20}]}
      - {id: "3", actions: [{set: spot.level, value: 30}]}
"""
)


async def test_go_fires_the_named_cue_of_the_named_list():
    runtime, _clock = await start_show(TWO_LISTS)
    show = runtime.show
    assert show is not None
    assert show.go("stage", "3") is True
    assert [c for _, c in commands(runtime, "spot")] == [{"level": 30}]
    assert commands(runtime, "wash") == []
    assert show.status().cue_lists["stage"] == {"standby": None, "paused": False, "last": "3"}
    assert show.go("house") is True  # the standby cue of the list named
    assert [c for _, c in commands(runtime, "wash")] == [{"level": 10}]
    await runtime.stop()


async def test_a_cue_that_is_not_there_is_named_with_its_list():
    runtime, _clock = await start_show(TWO_LISTS)
    show = runtime.show
    assert show is not None
    with pytest.raises(KeyError, match="cue list `stage` has no cue `9`"):
        show.go("stage", "9")
    await runtime.stop()


async def test_go_at_the_end_of_the_list_does_nothing_and_says_so():
    runtime, _clock = await start_show(TWO_LISTS)
    show = runtime.show
    assert show is not None
    assert show.go("house") is True
    assert show.go("house") is True
    assert show.go("house") is False  # nothing on standby: no cue fired
    assert [c for _, c in commands(runtime, "wash")] == [{"level": 10}, {"level": 20}]
    assert show.cue_lists["house"].standby is None
    await runtime.stop()


async def test_the_guard_time_counts_from_the_last_go_late_in_a_show():
    runtime, clock = await start_show(
        HEAD + "cues:\n  show:\n    guard: 0.5s\n    cues: [{id: '1'}, {id: '2'}, {id: '3'}]\n"
    )
    show = runtime.show
    assert show is not None
    await clock.advance(100.0)
    assert show.go() is True
    await clock.advance(0.3)
    assert show.go() is False  # a double press, 100 s into the show
    assert show.go() is False
    assert show.cue_lists["show"].refused == 2
    await clock.advance(0.3)
    assert show.go() is True
    await runtime.stop()


async def test_pause_holds_a_delay_inside_a_cue():
    text = (
        HEAD
        + """\
cues:
  show:
    cues: [{id: "1", actions: [{set: wash.level, value: 10}, {delay: 2s}, {set: spot.level, value: 50}]}]
"""
    )
    runtime, clock = await start_show(text)
    show = runtime.show
    assert show is not None
    show.go()
    await clock.advance(1.0)
    show.pause()
    await clock.advance(5.0)
    assert commands(runtime, "spot") == []  # the delay is held with the cue list
    show.resume()
    await clock.advance(0.99)
    assert commands(runtime, "spot") == []
    await clock.advance(0.02)
    assert commands(runtime, "spot") == [(7.0, {"level": 50})]
    await runtime.stop()


async def test_back_after_an_auto_continue_last_cue_puts_that_cue_on_standby(caplog: pytest.LogCaptureFixture):
    text = (
        HEAD
        + """\
cues:
  show:
    guard: 0s
    cues:
      - {id: "1", actions: [{set: wash.level, value: 10}], follow: auto-continue, post_wait: 1s}
      - {id: "2", actions: [{set: wash.level, value: 20}], follow: auto-continue, post_wait: 1s}
"""
    )
    caplog.set_level(logging.ERROR)
    runtime, clock = await start_show(text)
    show = runtime.show
    assert show is not None
    show.go()
    await clock.advance(5.0)  # cue 2 follows; nothing follows the last cue
    assert [cue for _, cue in show.cue_lists["show"].fired] == ["1", "2"]
    show.back()
    assert show.status().cue_lists["show"]["standby"] == "2"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    await runtime.stop()


async def test_a_cue_list_keeps_no_wait_that_has_ended():
    text = (
        HEAD
        + """\
cues:
  show:
    guard: 0s
    cues:
      - {id: "1", pre_wait: 1s, actions: [{set: wash.level, value: 10}], follow: auto-follow}
      - {id: "2", actions: [{set: wash.level, value: 20}]}
"""
    )
    runtime, clock = await start_show(text)
    show = runtime.show
    assert show is not None
    show.go()
    await clock.advance(2.0)
    assert [c for _, c in commands(runtime, "wash")] == [{"level": 10}, {"level": 20}]
    assert show.cue_lists["show"]._tasks == set()  # over months of shows, finished waits are not kept
    await runtime.stop()


async def test_the_history_keeps_the_last_thousand_cues_fired():
    runtime, _clock = await start_show(HEAD + "cues:\n  loop:\n    guard: 0s\n    cues: [{id: a}, {id: b}, {id: c}]\n")
    show = runtime.show
    assert show is not None
    for n in range(1001):
        assert show.go("loop", "abc"[n % 3]) is True
    fired = [cue for _, cue in show.cue_lists["loop"].fired]
    assert len(fired) == 1000
    assert fired[:3] == ["b", "c", "a"] and fired[-1] == "b"  # the first GO, cue a, is gone
    await runtime.stop()
