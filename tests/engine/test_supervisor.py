"""The supervisor restarts failing tasks with capped, jittered back-off, on virtual time."""

from __future__ import annotations

import asyncio
import random

from engine.clock import VirtualClock
from engine.supervisor import Backoff, Supervisor


def test_backoff_grows_is_capped_and_jittered_downwards():
    backoff = Backoff(initial=0.5, cap=5.0, factor=2.0, jitter=0.25)
    rng = random.Random(1)
    delays = [backoff.delay(n, rng) for n in range(10)]
    assert 0.375 <= delays[0] <= 0.5
    assert all(d <= 5.0 for d in delays)
    assert all(d >= 3.75 for d in delays[4:])
    assert len(set(delays[5:])) > 1  # jittered: restarts of many drivers do not line up


async def test_a_failing_task_is_restarted_and_the_others_keep_running():
    clock = VirtualClock()
    supervisor = Supervisor(clock, Backoff(initial=1.0, cap=4.0, jitter=0.0), random.Random(0))
    attempts: list[float] = []
    ticks: list[float] = []

    async def flaky() -> None:
        attempts.append(clock.now())
        raise RuntimeError("unplugged")

    async def steady() -> None:
        while True:
            ticks.append(clock.now())
            await clock.sleep(1.0)

    supervisor.start("flaky", flaky)
    supervisor.start("steady", steady)
    await clock.advance(12.0)
    # Failures at 0, then waits of 1, 2, 4, 4 (capped): restarts at 1, 3, 7, 11.
    assert attempts == [0.0, 1.0, 3.0, 7.0, 11.0]
    assert supervisor.tasks["flaky"].failures == 5
    assert supervisor.tasks["flaky"].last_error == "RuntimeError: unplugged"
    assert len(ticks) == 13 and supervisor.tasks["steady"].failures == 0
    await supervisor.cancel_all()
    assert all(state.task.done() for state in supervisor.tasks.values())


async def test_back_off_resets_after_a_long_healthy_run():
    clock = VirtualClock()
    supervisor = Supervisor(clock, Backoff(initial=1.0, cap=8.0, jitter=0.0, stable_after=30.0), random.Random(0))
    starts: list[float] = []

    async def fails_after(seconds: float) -> None:
        starts.append(clock.now())
        await clock.sleep(seconds)
        raise RuntimeError("lost")

    runs = iter([0.0, 0.0, 40.0, 0.0])

    async def task() -> None:
        await fails_after(next(runs, 1000.0))

    supervisor.start("t", task)
    await clock.advance(50.0)
    # 0 fail -> wait 1; 1 fail -> wait 2; 3 runs 40 s, fails at 43 -> reset -> wait 1; 44 fails -> wait 2 -> 46
    assert starts == [0.0, 1.0, 3.0, 44.0, 46.0]
    await supervisor.cancel_all()


async def test_a_task_that_returns_is_not_restarted():
    clock = VirtualClock()
    supervisor = Supervisor(clock)
    calls = []

    async def once() -> None:
        calls.append(1)

    supervisor.start("once", once)
    await clock.advance(10)
    assert calls == [1] and not supervisor.tasks["once"].running
    await asyncio.sleep(0)
