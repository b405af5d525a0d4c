"""Signal store and mappings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.clock import VirtualClock
from engine.mapping import LinearMap, bind_mapping
from engine.model import Mapping
from engine.signals import SignalStore


def test_set_notifies_with_value_and_timestamp():
    clock = VirtualClock(start=12.5)
    store = SignalStore(clock)
    store.declare("controls.wash", "float")
    seen = []
    store.subscribe("controls.wash", lambda s: seen.append((s.value, s.timestamp, s.stale)))
    assert store.get("controls.wash").stale
    store.set("controls.wash", 0.25)
    assert seen == [(0.25, 12.5, False)]


def test_types_are_enforced():
    store = SignalStore()
    store.declare("a.b", "float")
    with pytest.raises(TypeError):
        store.set("a.b", "high")
    with pytest.raises(ValueError):
        store.declare("a.b", "int")


def test_a_failing_subscriber_does_not_break_the_others():
    store = SignalStore()
    store.declare("a.b", "int")
    seen = []

    def broken(signal) -> None:
        raise ZeroDivisionError

    store.subscribe("a.b", broken)
    store.subscribe("a.b", lambda s: seen.append(s.value))
    store.set("a.b", 3)
    assert seen == [3]
    assert store.subscriber_errors == 1


def test_mark_stale_and_unsubscribe():
    store = SignalStore()
    store.declare("osc.x", "float")
    store.declare("other.x", "float")
    seen = []
    unsubscribe = store.subscribe("osc.x", lambda s: seen.append(s.stale))
    store.set("osc.x", 1.0)
    store.set("other.x", 1.0)
    store.mark_stale("osc.")
    assert seen == [False, True]
    assert not store.get("other.x").stale
    unsubscribe()
    store.set("osc.x", 2.0)
    assert seen == [False, True]


@pytest.mark.parametrize(
    ("x", "expected"),
    [(0.0, 0.0), (0.5, 127.5), (1.0, 255.0), (-3.0, 0.0), (7.0, 255.0)],
)
def test_linear_map_clamps(x: float, expected: float):
    assert LinearMap(0, 1, 0, 255)(x) == pytest.approx(expected)


def test_linear_map_can_run_backwards_and_unclamped():
    assert LinearMap(0, 1, 255, 0)(0.25) == pytest.approx(191.25)
    assert LinearMap(10, 0, 0, 1)(2.5) == pytest.approx(0.75)
    assert LinearMap(0, 1, 0, 10, clamp=False)(2.0) == pytest.approx(20.0)


@given(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9),
    st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)).filter(lambda r: abs(r[0] - r[1]) > 1e-6),
    st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)),
)
def test_clamped_output_stays_in_range(x: float, in_range, out_range):
    y = LinearMap(*in_range, *out_range)(x)
    low, high = sorted(out_range)
    assert low - 1e-6 * max(1.0, abs(low)) <= y <= high + 1e-6 * max(1.0, abs(high))


def test_binding_drives_a_property_and_holds_on_stale():
    store = SignalStore()
    store.declare("controls.wash", "float")
    sent: list[tuple[str, float]] = []
    mapping = Mapping.model_validate({"from": "controls.wash", "to": "wash.brightness"})
    unbind = bind_mapping(mapping, (0, 255), store, lambda prop, value: sent.append((prop, value)))
    store.set("controls.wash", 0.5)
    store.mark_stale("controls.")
    unbind()
    store.set("controls.wash", 1.0)
    assert sent == [("brightness", 127.5)]


def bound(spec: dict, output=(0.0, 100.0)):
    store = SignalStore()
    store.declare("in.x", "float")
    sent: list[float] = []
    mapping = Mapping.model_validate({"from": "in.x", "to": "out.level", **spec})
    bind_mapping(mapping, output, store, lambda prop, value: sent.append(round(value, 6)))
    return store, sent


def test_curves_shape_the_output():
    store, sent = bound({"curve": "steps(4)"})
    for x in (0.1, 0.3, 0.6, 0.99, 1.0):
        store.set("in.x", x)
    assert sent == [0.0, 25.0, 50.0, 75.0, 100.0]


def test_deadband_ignores_small_changes():
    store, sent = bound({"deadband": 0.05})
    for x in (0.5, 0.52, 0.54, 0.56, 0.3):
        store.set("in.x", x)
    assert sent == [50.0, 56.0, 30.0]


def test_slew_limits_the_speed_of_the_output():
    clock = VirtualClock()
    store = SignalStore(clock)
    store.declare("in.x", "float")
    sent: list[float] = []
    mapping = Mapping.model_validate({"from": "in.x", "to": "out.level", "smoothing": {"slew": 50}})
    bind_mapping(mapping, (0.0, 100.0), store, lambda prop, value: sent.append(round(value, 6)))
    store.set("in.x", 0.0)
    clock._now = 0.1
    store.set("in.x", 1.0)  # wants 100, may move 50/s x 0.1 s = 5
    clock._now = 0.2
    store.set("in.x", 1.0)
    assert sent == [0.0, 5.0, 10.0]


def test_one_euro_smoothing_reduces_jitter():
    import random

    clock = VirtualClock()
    store = SignalStore(clock)
    store.declare("in.x", "float")
    raw, smooth = [], []
    mapping = Mapping.model_validate({"from": "in.x", "to": "out.level", "smoothing": {"min_cutoff": 0.5}})
    bind_mapping(mapping, (0.0, 1.0), store, lambda prop, value: smooth.append(value))
    rng = random.Random(1)
    for k in range(200):
        clock._now = k / 30
        x = 0.5 + rng.uniform(-0.05, 0.05)
        raw.append(x)
        store.set("in.x", x)

    def spread(values):
        tail = values[50:]
        mean = sum(tail) / len(tail)
        return sum((v - mean) ** 2 for v in tail)

    assert spread(smooth) < spread(raw) / 5


def test_fan_out_needs_a_field_and_a_slot_pattern():
    with pytest.raises(ValueError, match="fan-out needs both"):
        Mapping.model_validate({"from": "body.visitors", "to": "spot.level", "field": "hand_height"})
