"""The fade engine on virtual time: exact values per tick, coalescing, the rate limit, replacing and cancelling."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.clock import VirtualClock
from engine.fades import FadeEngine

RATE = 44.0
PERIOD = 1.0 / RATE
STEP = 100.0 / RATE


class Recorder:
    """A target's setter that keeps every call with the time it came."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.calls: list[tuple[float, dict[str, Any]]] = []

    def __call__(self, values: Mapping[str, Any]) -> None:
        self.calls.append((self.clock.now(), dict(values)))

    def times(self) -> list[float]:
        return [t for t, _ in self.calls]

    def values(self, prop: str) -> list[Any]:
        return [values[prop] for _, values in self.calls if prop in values]


@pytest.fixture
async def clock():
    return VirtualClock()


@pytest.fixture
async def engine(clock):
    engine = FadeEngine(clock, rate=RATE)
    runner = asyncio.create_task(engine.run())
    yield engine
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner


def add(engine: FadeEngine, clock: VirtualClock, name: str, **current: Any) -> Recorder:
    recorder = Recorder(clock)
    engine.add_target(name, recorder, current)
    return recorder


async def test_a_one_second_linear_fade_sends_one_exact_value_per_tick(clock, engine):
    wash = add(engine, clock, "wash", brightness=0)
    fade = engine.fade("wash", "brightness", 100, 1.0)
    await clock.advance(1.0)
    # The tick at 0 finds nothing changed; ticks 1..44 send 100·k/44, the last exactly 100 at t = 1.0.
    assert len(wash.calls) == 44
    assert wash.times() == pytest.approx([k * PERIOD for k in range(1, 45)], abs=1e-9)
    assert wash.values("brightness")[:-1] == pytest.approx([k * STEP for k in range(1, 44)], abs=1e-9)
    assert wash.calls[-1] == (pytest.approx(1.0, abs=1e-9), {"brightness": 100})
    assert fade.done.is_set() and fade.completed
    assert engine.value("wash", "brightness") == 100
    await clock.advance(1.0)
    assert len(wash.calls) == 44


async def test_value_is_the_mid_fade_value(clock, engine):
    add(engine, clock, "wash", brightness=0)
    engine.fade("wash", "brightness", 100, 1.0)
    await clock.advance(0.5)
    assert engine.value("wash", "brightness") == pytest.approx(50.0)
    assert engine.fading() == [("wash", "brightness")]


async def test_properties_of_one_device_are_coalesced_into_one_set_per_tick(clock, engine):
    wash = add(engine, clock, "wash", brightness=0, hue=200)
    spot = add(engine, clock, "spot", brightness=0)
    engine.fade("wash", "brightness", 100, 1.0)
    engine.fade("wash", "hue", 0, 1.0)
    engine.fade("spot", "brightness", 50, 1.0)
    await clock.advance(1.0)
    assert len(wash.calls) == 44 and len(spot.calls) == 44
    assert all(set(values) == {"brightness", "hue"} for _, values in wash.calls)
    assert wash.calls[21][1] == {"brightness": pytest.approx(50.0), "hue": pytest.approx(100.0)}
    assert wash.calls[-1][1] == {"brightness": 100, "hue": 0}
    assert len(set(wash.times())) == 44  # never two calls in one tick


def assert_rate_limited(times: list[float], rate: float = RATE) -> None:
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.0 / rate - 1e-9
    for start in times:  # at most `rate` in any second (1 ns allowed for float rounding)
        assert sum(start <= t < start + 1.0 - 1e-9 for t in times) <= rate


async def test_a_device_never_gets_more_than_the_rate(clock, engine):
    wash = add(engine, clock, "wash", brightness=0, strobe=0)
    engine.fade("wash", "brightness", 255, 3.0)
    for step in range(600):  # an operator (or a mapping) hammering another property every 5 ms
        engine.set_now("wash", "strobe", step)
        await clock.advance(0.005)
    await clock.advance(1.0)
    assert_rate_limited(wash.times())
    assert len(wash.calls) <= 3 * RATE + 1
    assert wash.values("strobe")[-1] == 599  # nothing is lost: the latest value goes out with the next tick
    assert wash.values("brightness")[-1] == 255


async def test_a_device_with_a_max_rate_gets_no_more_than_that_under_any_fade(clock, engine):
    relay = Recorder(clock)
    engine.add_target("relay", relay, {"level": 0, "hue": 0, "white": 0}, max_rate=2.0)
    twin = add(engine, clock, "twin", level=0, hue=0, white=0)  # the same fades at the engine's rate
    for name in ("relay", "twin"):
        engine.fade(name, "level", 100, 10.0)  # a long fade
    await clock.advance(2.0)
    for name in ("relay", "twin"):
        engine.fade(name, "hue", 255, 0.3)  # a fast one over it
    await clock.advance(1.0)
    for name in ("relay", "twin"):
        engine.fade(name, "white", 50, 1.5)  # several at once, the first taken over by 0-second fades
        engine.fade(name, "hue", 0, 2.0)
    for step in range(10):  # and 0-second fades, every 50 ms
        for name in ("relay", "twin"):
            engine.fade(name, "white", step, 0)
        await clock.advance(0.05)
    await clock.advance(9.0)
    assert_rate_limited(relay.times(), rate=2.0)
    assert 19 <= len(relay.calls) <= 21  # 10 s of changes at 2 a second
    assert len(twin.calls) > 10 * len(relay.calls)
    sent: dict[str, Any] = {}
    for _, values in relay.calls:
        sent.update(values)
    assert sent == {"level": 100, "hue": 0, "white": 9}  # nothing is lost: the latest values still go out


async def test_set_now_on_a_quiet_device_is_sent_at_once(clock, engine):
    wash = add(engine, clock, "wash", brightness=0)
    await clock.advance(0.3)
    engine.set_now("wash", "brightness", 42)
    assert wash.calls == [(0.3, {"brightness": 42})]
    engine.set_now("wash", "brightness", 43)  # too soon after the last: goes out on the next tick
    assert len(wash.calls) == 1
    await clock.advance(PERIOD)
    assert wash.calls[-1] == (pytest.approx(0.3 + PERIOD), {"brightness": 43})


async def test_a_zero_second_fade_sets_at_once(clock, engine):
    wash = add(engine, clock, "wash", brightness=10)
    fade = engine.fade("wash", "brightness", 0, 0)
    assert wash.calls == [(0.0, {"brightness": 0})]
    assert fade.done.is_set() and fade.completed


async def test_replacing_a_fade_mid_way_continues_without_a_jump(clock, engine):
    wash = add(engine, clock, "wash", brightness=0)
    first = engine.fade("wash", "brightness", 100, 1.0)
    await clock.advance(0.5)
    second = engine.fade("wash", "brightness", 0, 1.0)
    assert second.start == pytest.approx(50.0)
    await asyncio.sleep(0)
    assert first.done.is_set() and not first.completed
    await clock.advance(1.0)
    values = wash.values("brightness")
    jumps = [abs(b - a) for a, b in itertools.pairwise(values)]
    assert max(jumps) <= STEP + 1e-9
    assert values[-1] == 0 and second.completed
    assert values[22] == pytest.approx(50.0 - 50.0 / RATE)  # the first step of the new fade, from 50


async def test_cancel_stops_where_it_is(clock, engine):
    wash = add(engine, clock, "wash", brightness=0, hue=0)
    spot = add(engine, clock, "spot", brightness=0)
    brightness = engine.fade("wash", "brightness", 100, 1.0)
    hue = engine.fade("wash", "hue", 100, 1.0)
    beam = engine.fade("spot", "brightness", 100, 1.0)
    await clock.advance(0.25)
    engine.cancel("wash", "brightness")
    assert brightness.done.is_set() and not brightness.completed
    assert engine.fading() == [("spot", "brightness"), ("wash", "hue")]
    await clock.advance(0.25)
    assert engine.value("wash", "brightness") == pytest.approx(25.0)
    assert wash.values("brightness")[-1] == pytest.approx(25.0)
    assert wash.calls[-1][1] == {"hue": pytest.approx(50.0)}
    engine.cancel()
    assert hue.done.is_set() and beam.done.is_set() and engine.fading() == []
    sent = len(wash.calls) + len(spot.calls)
    await clock.advance(1.0)
    assert len(wash.calls) + len(spot.calls) == sent


async def test_set_now_cancels_a_running_fade_of_that_property(clock, engine):
    wash = add(engine, clock, "wash", brightness=0)
    fade = engine.fade("wash", "brightness", 100, 1.0)
    await clock.advance(0.5)
    engine.set_now("wash", "brightness", 7)
    assert fade.done.is_set() and not fade.completed
    await clock.advance(1.0)
    assert wash.values("brightness")[-1] == 7
    assert engine.value("wash", "brightness") == 7


async def test_bools_switch_at_the_end_in_the_same_set_as_the_last_step(clock, engine):
    wash = add(engine, clock, "wash", brightness=100, on=True)
    engine.fade("wash", "brightness", 0, 1.0)
    engine.fade("wash", "on", False, 1.0)
    await clock.advance(0.99)
    assert all("on" not in values for _, values in wash.calls)
    assert engine.value("wash", "on") is True
    await clock.advance(0.01)
    assert wash.calls[-1] == (pytest.approx(1.0), {"brightness": 0, "on": False})


async def test_a_property_with_no_known_value_is_set_at_the_end(clock, engine):
    wash = add(engine, clock, "wash")
    engine.fade("wash", "brightness", 80, 0.5)
    await clock.advance(0.4)
    assert wash.calls == []
    await clock.advance(0.1)
    assert wash.calls == [(pytest.approx(0.5), {"brightness": 80})]


async def test_start_jumps_to_the_given_value_first(clock, engine):
    wash = add(engine, clock, "wash", brightness=70)
    engine.fade("wash", "brightness", 100, 1.0, start=0)
    await clock.advance(PERIOD)
    assert wash.calls[0] == (0.0, {"brightness": 0})
    assert wash.calls[1][1] == {"brightness": pytest.approx(STEP)}


async def test_curves_shape_the_fade(clock, engine):
    wash = add(engine, clock, "wash", brightness=0)
    engine.fade("wash", "brightness", 100, 1.0, curve="steps(4)")
    await clock.advance(1.0)
    assert sorted(set(wash.values("brightness"))) == [25, 50, 75, 100]
    assert [t for t, _ in wash.calls] == pytest.approx([11 * PERIOD, 22 * PERIOD, 33 * PERIOD, 1.0])


async def test_fade_all_is_done_within_its_duration_with_everything_at_target(clock, engine):
    wash = add(engine, clock, "wash", brightness=255, hue=120, on=True)
    spot = add(engine, clock, "spot", brightness=90)
    engine.fade("spot", "brightness", 200, 10.0)  # the ticker is already running, on its own grid
    await clock.advance(0.01)
    safe = {"wash": {"brightness": 0, "on": False}, "spot": {"brightness": 0}}
    panic = asyncio.create_task(engine.fade_all(safe, 1.0))
    await clock.advance(0.999)
    assert panic.done()
    assert clock.now() <= 0.01 + 1.0
    assert (engine.value("wash", "brightness"), engine.value("wash", "on")) == (0, False)
    assert engine.value("spot", "brightness") == 0
    assert engine.value("wash", "hue") == 120
    assert wash.calls[-1][1] == {"brightness": 0, "on": False}
    assert spot.values("brightness")[-1] == 0
    assert engine.fading() == []


async def test_fade_all_on_an_idle_engine_takes_the_whole_duration(clock, engine):
    wash = add(engine, clock, "wash", brightness=100)
    panic = asyncio.create_task(engine.fade_all({"wash": {"brightness": 0}}, 2.0))
    await clock.advance(1.0)
    assert not panic.done() and engine.value("wash", "brightness") == pytest.approx(50.0)
    await clock.advance(1.0)
    assert panic.done() and wash.calls[-1] == (pytest.approx(2.0), {"brightness": 0})
    assert len(wash.calls) == 88


async def test_fade_all_with_no_time_sets_each_device_at_once_in_one_call(clock, engine):
    wash = add(engine, clock, "wash", brightness=100, on=True)
    await engine.fade_all({"wash": {"brightness": 0, "on": False}}, 0)
    assert wash.calls == [(0.0, {"brightness": 0, "on": False})]


async def test_an_idle_engine_does_not_tick(clock, engine):
    add(engine, clock, "wash", brightness=0)
    await clock.advance(10.0)
    assert engine.ticks == 0
    engine.fade("wash", "brightness", 100, 1.0)
    await clock.advance(5.0)
    assert engine.ticks == 45  # the tick at the start, then 44
    await clock.advance(10.0)
    assert engine.ticks == 45


async def test_a_failing_target_does_not_stop_the_others(clock, engine, caplog):
    def broken(values: Mapping[str, Any]) -> None:
        raise OSError("unplugged")

    engine.add_target("broken", broken, {"brightness": 0})
    wash = add(engine, clock, "wash", brightness=0)
    engine.fade("broken", "brightness", 100, 1.0)
    engine.fade("wash", "brightness", 100, 1.0)
    with caplog.at_level(logging.ERROR, logger="engine.fades"):
        await clock.advance(1.0)
    assert wash.values("brightness")[-1] == 100
    assert "fade target `broken` failed" in caplog.text


async def test_mistakes_are_reported(clock, engine):
    add(engine, clock, "wash", brightness=0)
    with pytest.raises(ValueError, match=r"unknown fade target `wsh`; did you mean `wash`\?"):
        engine.fade("wsh", "brightness", 1, 1.0)
    with pytest.raises(ValueError, match="unknown curve `ease`"):
        engine.fade("wash", "brightness", 1, 1.0, curve="ease")
    with pytest.raises(ValueError, match="duration must be a number of seconds >= 0"):
        engine.fade("wash", "brightness", 1, -1.0)
    with pytest.raises(ValueError, match="already added"):
        engine.add_target("wash", print, {})
    with pytest.raises(ValueError, match="positive number of ticks"):
        FadeEngine(clock, rate=0)
    assert engine.fading() == []


finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@given(
    start=finite,
    to=finite,
    duration=st.floats(0.01, 100.0),
    curve=st.sampled_from(["linear", "ease-in", "ease-out", "ease-in-out", "exponential", "hold", "steps(5)"]),
    times=st.lists(st.floats(0.0, 200.0), min_size=1, max_size=40),
)
def test_a_fade_stays_between_its_start_and_target(start, to, duration, curve, times):
    clock = VirtualClock()  # stays at 0, when the fade starts: the test calls the engine's tick itself
    engine = FadeEngine(clock)
    sink = Recorder(clock)
    engine.add_target("wash", sink, {"brightness": start})
    fade = engine.fade("wash", "brightness", to, duration, curve=curve)
    for t in sorted(times):
        engine.tick(t)
        assert min(start, to) <= engine.value("wash", "brightness") <= max(start, to)
    engine.tick(duration)
    assert engine.value("wash", "brightness") == to and fade.completed


async def test_pause_freezes_a_fade_and_resume_finishes_it_later():
    clock = VirtualClock()
    engine = FadeEngine(clock)
    seen: list[dict] = []
    engine.add_target("wash", lambda values: seen.append(dict(values)), {"level": 0.0})
    runner = asyncio.create_task(engine.run())
    engine.fade("wash", "level", 100.0, 1.0)
    await clock.advance(0.5)
    engine.pause()
    held = engine.value("wash", "level")
    assert 40 < held < 60 and engine.paused
    await clock.advance(2.0)
    assert engine.value("wash", "level") == held  # nothing moves while paused
    engine.resume()
    await clock.advance(0.4)
    assert engine.value("wash", "level") < 100.0  # half a second was left; 0.4 s of it has passed
    await clock.advance(0.2)
    assert engine.value("wash", "level") == 100.0
    runner.cancel()


async def test_setting_the_same_value_again_sends_nothing():
    clock = VirtualClock()
    engine = FadeEngine(clock)
    seen: list[dict] = []
    engine.add_target("wash", lambda values: seen.append(dict(values)), {"level": 0.0}, max_rate=math.inf)
    runner = asyncio.create_task(engine.run())
    for value in (5.0, 5.0, 5.0, 6.0, 6.0):
        engine.set_now("wash", "level", value)
    await clock.advance(0.1)
    assert seen == [{"level": 5.0}, {"level": 6.0}]
    runner.cancel()


async def test_halt_takes_every_property_sends_the_values_at_once_and_the_rate_limit_counts_from_it(clock, engine):
    winch = Recorder(clock)
    engine.add_target("winch", winch, {"position": 0.0, "speed": 0.0, "enabled": True}, max_rate=2.0)
    lantern = add(engine, clock, "lantern", level=0.0)
    engine.fade("winch", "position", 300.0, 20.0)
    engine.fade("lantern", "level", 100.0, 20.0)
    await clock.advance(1.2)
    assert winch.calls[-1][1]["position"] > 0
    engine.halt("winch", {"speed": 0.0, "enabled": False})
    assert winch.calls[-1] == (pytest.approx(1.2), {"speed": 0.0, "enabled": False})  # at once, whatever the rate
    engine.set_now("winch", "speed", 0.5)  # the next write waits its turn, counted from the halt
    await clock.advance(0.4)
    assert winch.calls[-1][1] == {"speed": 0.0, "enabled": False}
    await clock.advance(0.2)
    assert winch.calls[-1] == (pytest.approx(1.7, abs=0.03), {"speed": 0.5})
    await clock.advance(5.0)
    assert all("position" not in values for t, values in winch.calls if t > 1.2)  # the position fade is gone
    assert lantern.calls[-1][0] > 6.0  # other targets' fades go on
