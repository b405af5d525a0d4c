"""The fade engine's edges on virtual time: the time tolerance, stalls and late ticks on the grid, PANIC with
no time, pausing, and the mistakes it refuses."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from engine.clock import VirtualClock
from engine.fades import TIME_TOLERANCE, FadeEngine
from tests.engine.test_fades import Recorder, add


@contextlib.asynccontextmanager
async def ticking(engine: FadeEngine) -> AsyncIterator[FadeEngine]:
    runner = asyncio.create_task(engine.run())
    try:
        yield engine
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


@pytest.fixture
async def clock():
    return VirtualClock()


@pytest.fixture
async def engine(clock):
    async with ticking(FadeEngine(clock, rate=10.0)) as engine:
        yield engine


class Stalling(Recorder):
    """A setter whose first call holds the ticker up until ``until`` (a slow device, a busy event loop)."""

    def __init__(self, clock: VirtualClock, until: float) -> None:
        super().__init__(clock)
        self.until = until

    def __call__(self, values: Mapping[str, Any]) -> None:
        super().__call__(values)
        if len(self.calls) == 1:
            self.clock._now = self.until


async def test_a_fade_cancelled_or_replaced_before_its_first_tick_did_not_complete(clock, engine):
    add(engine, clock, "wash", level=0, hue=0)
    cancelled = engine.fade("wash", "level", 100, 1.0)
    replaced = engine.fade("wash", "hue", 100, 1.0)
    engine.cancel("wash", "level")
    engine.fade("wash", "hue", 50, 1.0)
    assert await cancelled.wait() is False
    assert await replaced.wait() is False


def test_an_end_reached_within_the_time_tolerance_counts_as_reached():
    clock = VirtualClock()
    engine = FadeEngine(clock)
    wash = add(engine, clock, "wash", level=0)
    fade = engine.fade("wash", "level", 100, 1.0)
    engine.tick(1.0 - TIME_TOLERANCE)
    assert wash.values("level") == [100]
    assert fade.completed


async def test_a_rate_under_one_tick_a_second_is_allowed(clock):
    async with ticking(FadeEngine(clock, rate=0.5)) as engine:
        wash = add(engine, clock, "wash", level=0)
        engine.fade("wash", "level", 100, 4.0)
        await clock.advance(4.0)
    assert wash.calls == [(2.0, {"level": 50.0}), (4.0, {"level": 100})]


async def test_a_write_one_interval_less_the_tolerance_after_the_last_goes_out_at_once(clock):
    engine = FadeEngine(clock, rate=4.0)
    wash = add(engine, clock, "wash", level=0)
    engine.set_now("wash", "level", 1)
    await clock.advance(0.25 - TIME_TOLERANCE)
    engine.set_now("wash", "level", 2)
    assert wash.values("level") == [1, 2]


async def test_after_a_stall_the_missed_ticks_are_skipped_and_the_grid_kept():
    clock = VirtualClock(start=1.0)
    async with ticking(FadeEngine(clock, rate=10.0)) as engine:
        slow = Stalling(clock, until=1.45)  # the tick at 1.1 takes until 1.45
        engine.add_target("slow", slow, {"level": 0})
        engine.fade("slow", "level", 100, 1.0)
        await clock.advance(1.5)
    # Not the missed ticks at 1.2, 1.3, 1.4 bunched at 1.45: the next tick is the grid's, at 1.5.
    assert slow.times() == pytest.approx([1.1, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0], abs=1e-9)
    assert slow.values("level") == pytest.approx([10, 50, 60, 70, 80, 90, 100], abs=1e-9)


async def test_a_tick_less_than_the_tolerance_late_is_run_not_skipped():
    clock = VirtualClock(start=1.0)
    async with ticking(FadeEngine(clock, rate=4.0)) as engine:
        slow = Stalling(clock, until=1.5 + TIME_TOLERANCE)  # the tick at 1.25 ends just after 1.5 was due
        engine.add_target("slow", slow, {"level": 0})
        engine.fade("slow", "level", 100, 1.0)
        await clock.advance(1.0)
    assert slow.times() == pytest.approx([1.25, 1.5, 1.75, 2.0], abs=1e-6)
    assert slow.values("level") == pytest.approx([25, 50, 75, 100])


async def test_a_late_tick_counts_the_rate_limit_from_its_slot(clock, engine):
    wash = add(engine, clock, "wash", level=0)
    engine.fade("wash", "level", 100, 1.0)
    await clock.advance(0.1)
    clock._now = 0.23  # the event loop was held up: the tick due at 0.2 runs at 0.23
    await clock.advance(0.0)
    await clock.advance(0.1)
    # The tick at 0.3, on time, is one period after the slot of the late one: the device is not skipped.
    assert wash.times() == pytest.approx([0.1, 0.23, 0.3])


async def test_an_unknown_target_with_no_close_name_lists_the_targets(clock, engine):
    add(engine, clock, "wash", level=0)
    add(engine, clock, "spot", level=0)
    with pytest.raises(ValueError, match=r"^unknown fade target `zzz`; the targets are \['spot', 'wash'\]$"):
        engine.fade("zzz", "level", 1, 1.0)


@pytest.mark.parametrize("to", [math.inf, -math.inf, math.nan])
async def test_a_fade_to_a_value_that_is_not_finite_is_refused(clock, engine, to):
    wash = add(engine, clock, "wash", level=0)
    with pytest.raises(ValueError, match=rf"^cannot fade `wash.level` to {to}$"):
        engine.fade("wash", "level", to, 1.0)
    await clock.advance(1.0)
    assert wash.calls == []


async def test_fade_all_with_no_time_takes_each_property_from_its_fade(clock, engine):
    wash = add(engine, clock, "wash", level=0)
    fade = engine.fade("wash", "level", 100, 2.0)
    await clock.advance(0.5)
    await engine.fade_all({"wash": {"level": 0}}, 0)
    assert fade.done.is_set() and not fade.completed
    await clock.advance(2.0)
    assert wash.values("level")[-1] == 0 and engine.value("wash", "level") == 0
    assert engine.fading() == []


async def test_fade_all_with_no_time_sets_at_once_between_two_ticks(clock, engine):
    add(engine, clock, "spot", level=0)
    wash = add(engine, clock, "wash", level=100)
    engine.fade("spot", "level", 100, 10.0)  # keeps the ticker running on its grid (every 0.1 s)
    await clock.advance(0.3)  # the grid's tick "3 x 0.1" is due at 0.30000000000000004, a hair later
    panic = asyncio.create_task(engine.fade_all({"wash": {"level": 0}}, 0))
    await asyncio.sleep(0)
    try:
        assert panic.done()
        assert wash.calls == [(0.3, {"level": 0})]
    finally:
        panic.cancel()


async def test_resume_gives_a_fade_that_started_late_the_time_it_had_left(clock, engine):
    add(engine, clock, "wash", level=0)
    await clock.advance(1.0)
    engine.fade("wash", "level", 100, 1.0)
    await clock.advance(0.5)
    engine.pause()
    await clock.advance(2.0)
    engine.resume()
    await clock.advance(0.2)
    assert engine.value("wash", "level") == pytest.approx(70.0)  # 0.5 s had passed, and 0.2 s more
    await clock.advance(0.3)
    assert engine.value("wash", "level") == 100


async def test_a_write_while_paused_goes_out_and_leaves_paused_fades_where_they_are(clock, engine):
    wash = add(engine, clock, "wash", level=0, strobe=0)
    engine.fade("wash", "level", 100, 1.0)
    await clock.advance(0.5)
    engine.pause()
    held = engine.value("wash", "level")
    sent = len(wash.calls)
    engine.set_now("wash", "strobe", 1)  # too soon after the last tick's set(): goes out on the next tick
    await clock.advance(1.0)
    assert wash.calls[sent:] == [(pytest.approx(0.6), {"strobe": 1})]
    assert engine.value("wash", "level") == held
