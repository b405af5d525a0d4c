"""Watching a condition on virtual time: a `... for 0.5s` hold counts from when it last became true."""

from __future__ import annotations

from engine.clock import VirtualClock
from engine.conditions import ConditionWatcher
from engine.expressions import StoreResolver, compile_condition
from engine.signals import SignalStore


async def test_a_flickering_condition_held_for_half_a_second_is_reported_once_half_a_second_after_it_last_rose():
    clock = VirtualClock()
    store = SignalStore(clock)
    store.declare("panel.level", "float")
    expression, hold = compile_condition("panel.level > 0.5 for 0.5s", StoreResolver(store, now=clock.now))
    assert hold == 0.5
    reports: list[tuple[float, bool]] = []
    watcher = ConditionWatcher(expression, hold, store, clock, lambda value: reports.append((clock.now(), value)))
    watcher.start()
    # true, false, true, still true, false, true: each rise restarts the hold
    for at, level in ((0.0, 0.9), (0.2, 0.1), (0.3, 0.9), (0.45, 0.95), (0.6, 0.1), (0.7, 0.8)):
        await clock.advance(at - clock.now())
        store.set("panel.level", level)
    await clock.advance(1.19 - clock.now())
    assert reports == []
    await clock.advance(0.01)
    assert [(round(t, 6), value) for t, value in reports] == [(1.2, True)]
    await clock.advance(5.0)
    assert len(reports) == 1
    store.set("panel.level", 0.2)
    assert [(round(t, 6), value) for t, value in reports] == [(1.2, True), (6.2, False)]
    watcher.stop()
