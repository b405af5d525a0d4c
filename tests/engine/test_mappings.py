"""Mappings' edges: ranges, clamping, curves, the dead-band, smoothing settings, inputs that are not numbers,
and fan-out per visitor (slots, stale visitors, where a visitor's field is read, `when`)."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest

from engine.clock import VirtualClock
from engine.mapping import bind_fan_out, bind_mapping
from engine.model import Mapping
from engine.signals import SignalStore


def bound(
    spec: dict[str, Any], output: tuple[float, float] = (0.0, 100.0), clock: VirtualClock | None = None
) -> tuple[SignalStore, list[float]]:
    store = SignalStore(clock or VirtualClock())
    store.declare("in.x", "float")
    sent: list[float] = []
    mapping = Mapping.model_validate({"from": "in.x", "to": "out.level", **spec})
    bind_mapping(mapping, output, store, lambda prop, value: sent.append(round(value, 6)))
    return store, sent


def feed(store: SignalStore, *values: float) -> None:
    for x in values:
        store.set("in.x", x)


def test_an_input_change_of_exactly_the_deadband_is_followed():
    store, sent = bound({"deadband": 0.25})
    feed(store, 0.5, 0.75, 0.5)
    assert sent == [50.0, 75.0, 50.0]


def test_a_clamped_mapping_holds_the_ends_of_its_output_range():
    store, sent = bound({})
    feed(store, 2.0, -1.0)
    assert sent == [100.0, 0.0]


def test_an_unclamped_linear_mapping_carries_on_past_its_ends():
    store, sent = bound({"clamp": False})
    feed(store, 2.0, -0.5, 0.25)
    assert sent == [200.0, -50.0, 25.0]


def test_an_unclamped_curve_shapes_inside_the_range_and_holds_its_ends_outside():
    store, sent = bound({"clamp": False, "curve": "ease-in"})
    feed(store, 0.5, 2.0, -1.0)
    assert sent == [12.5, 100.0, 0.0]


def test_an_output_range_that_does_not_start_at_zero():
    store, sent = bound({}, output=(20.0, 80.0))
    feed(store, 0.5, 1.0, 0.0)
    assert sent == [50.0, 80.0, 20.0]


def test_an_infinite_input_holds_the_output_and_never_poisons_the_smoothing():
    clock = VirtualClock()
    store, sent = bound({"curve": "ease-in", "smoothing": {"min_cutoff": 1.0}}, clock=clock)
    for x in (0.5, math.inf, -math.inf, math.inf, 0.6):
        store.set("in.x", x)
        clock._now += 0.1
    assert len(sent) == 2  # 0.5, then 0.6: the infinities are held, like NaN
    assert all(math.isfinite(y) and 0.0 <= y <= 100.0 for y in sent)
    assert sent[1] > sent[0]


def test_a_value_that_is_not_a_number_holds_the_last_output():
    store, sent = bound({})
    feed(store, 0.5, math.nan)
    assert sent == [50.0]
    assert store.subscriber_errors == 0


def test_slew_is_in_output_units_whatever_the_two_ranges():
    clock = VirtualClock()
    # 30 output units a second over a span of 60 is half the 2-unit input span a second: 1 input unit/s.
    store, sent = bound({"input": [1, 3], "smoothing": {"slew": 30}}, output=(20.0, 80.0), clock=clock)
    store.set("in.x", 1.0)
    for _ in range(3):
        clock._now += 0.1
        store.set("in.x", 3.0)  # wants 80, may move 30/s x 0.1 s = 3 each time
    assert sent == [20.0, 23.0, 26.0, 29.0]


def one_euro_lag(min_cutoff: float, beta: float) -> float:
    """How far behind a jump from 0 to 1 the output still is after 0.1 s of samples at 30 Hz."""
    clock = VirtualClock()
    store, sent = bound({"smoothing": {"min_cutoff": min_cutoff, "beta": beta}}, output=(0.0, 1.0), clock=clock)
    store.set("in.x", 0.0)
    for _ in range(3):
        clock._now += 1 / 30
        store.set("in.x", 1.0)
    return 1.0 - sent[-1]


def test_one_euro_uses_its_min_cutoff():
    # A lower cut-off smooths more: it follows the same jump more slowly.
    assert one_euro_lag(min_cutoff=0.2, beta=0.5) > one_euro_lag(min_cutoff=5.0, beta=0.5) + 0.1


def test_one_euro_uses_its_beta():
    # A higher beta follows fast movement with less lag.
    assert one_euro_lag(min_cutoff=0.5, beta=0.0) > one_euro_lag(min_cutoff=0.5, beta=5.0) + 0.1


class FanOut:
    """A fan-out of `body.visitors` to spot1.level and spot2.level (0..100), recording what each spot is set to."""

    def __init__(self, spec: dict[str, Any] | None = None, enabled: Any = None) -> None:
        self.clock = VirtualClock()
        self.store = SignalStore(self.clock)
        self.store.declare("body.visitors", "object")
        mapping = Mapping.model_validate(
            {"from": "body.visitors", "field": "hand_height", "to": "spot{slot}.level", **(spec or {})}
        )
        self.sent: list[tuple[str, float]] = []
        slots = [("spot1", (0.0, 100.0)), ("spot2", (0.0, 100.0))]
        bind_fan_out(mapping, slots, self.store, self.record, enabled)

    def record(self, name: str, prop: str, value: float) -> None:
        assert prop == "level"
        self.sent.append((name, round(value, 6)))

    def visitors(self, *visitors: Any) -> None:
        self.store.set("body.visitors", visitors)


def visitor(vid: int, height: float) -> SimpleNamespace:
    return SimpleNamespace(id=vid, features=SimpleNamespace(hand_height=height))


def test_fan_out_drives_only_while_enabled():
    live = [False]
    fan = FanOut(enabled=lambda: live[0])
    fan.visitors(visitor(1, 0.5))
    assert fan.sent == []
    live[0] = True
    fan.visitors(visitor(1, 0.6))
    assert fan.sent == [("spot1", 60.0)]


def test_fan_out_frees_every_slot_when_the_visitors_go_stale():
    fan = FanOut()
    fan.visitors(visitor(1, 0.5), visitor(2, 0.7))
    fan.store.mark_stale("body.")  # the pose sensor went offline
    assert fan.sent == [("spot1", 50.0), ("spot2", 70.0), ("spot1", 0.0), ("spot2", 0.0)]
    fan.visitors(visitor(3, 0.2))
    assert fan.sent[-1] == ("spot1", 20.0)


def test_fan_out_ignores_a_visitor_without_an_id():
    fan = FanOut()
    fan.visitors(SimpleNamespace(features=SimpleNamespace(hand_height=0.3)), visitor(4, 0.5))
    assert fan.sent == [("spot1", 50.0)]
    assert fan.store.subscriber_errors == 0


def test_fan_out_reads_the_field_on_the_visitor_itself_or_in_its_features():
    fan = FanOut()
    fan.visitors(SimpleNamespace(id=1, hand_height=0.5), visitor(2, 0.25), SimpleNamespace(id=3))
    assert fan.sent == [("spot1", 50.0), ("spot2", 25.0)]
    assert fan.store.subscriber_errors == 0


def test_fan_out_smoothing_runs_on_the_time_of_each_signal():
    fan = FanOut({"smoothing": {"slew": 50}})
    fan.visitors(visitor(1, 0.0))  # at 0.0
    for _ in range(2):
        fan.clock._now += 0.1
        fan.visitors(visitor(1, 1.0))  # wants 100, may move 50/s x 0.1 s = 5 each time
    assert fan.sent == [("spot1", 0.0), ("spot1", 5.0), ("spot1", 10.0)]
    assert fan.store.subscriber_errors == 0


@pytest.mark.parametrize("height", [math.nan, "high", None])
def test_fan_out_holds_a_slot_whose_visitor_has_no_number(height: Any):
    fan = FanOut()
    fan.visitors(visitor(1, 0.5))
    fan.visitors(visitor(1, height))
    assert fan.sent == [("spot1", 50.0)]
