"""The console's shared sender yields to the control path: it sends on the loop's idle turns, one client a
turn, so a datagram's way to the broker (three turns of the loop) never waits for a client's frames between
its turns; and on a loop that is never idle it still sends."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from content.console.websocket import SEND_BUDGET, SEND_INTERVAL, SLOWEST_INTERVAL, EventEncoder, Flusher
from engine.control.idle import idle_turn


class RecordingClient:
    """Stands in for a ConsoleSocket: records when the sender flushed it."""

    def __init__(self, name: str, order: list[str]) -> None:
        self.name, self.order = name, order

    def flush(self, sub: Any, now: float) -> None:
        self.order.append(self.name)


def control_path(loop: asyncio.AbstractEventLoop, order: list[str], packet: int, turns: int = 3) -> None:
    """A packet's way through the loop as an OSC datagram's to the MQTT broker takes it: read and map on one
    turn, the MQTT writer registered on the next, the write on a third."""

    def turn(index: int) -> None:
        order.append(f"packet{packet}.{index}")
        if index < turns:
            loop.call_soon(turn, index + 1)

    turn(1)


async def test_a_packets_turns_are_never_split_by_console_sends() -> None:
    loop = asyncio.get_running_loop()
    order: list[str] = []
    flusher = Flusher(EventEncoder())
    for index in range(8):
        flusher.add(RecordingClient(f"client{index}", order), SimpleNamespace(on_put=None))  # type: ignore[arg-type]
    for packet in range(5):
        control_path(loop, order, packet)
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    flusher.clients.clear()
    assert sum(name.startswith("client") for name in order) >= 8, order  # every client was sent to
    for packet in range(5):
        first, last = order.index(f"packet{packet}.1"), order.index(f"packet{packet}.3")
        assert not [name for name in order[first:last] if name.startswith("client")], order


async def test_idle_turn_waits_for_the_work_already_ready() -> None:
    loop = asyncio.get_running_loop()
    order: list[str] = []
    control_path(loop, order, 0, turns=6)
    await idle_turn()
    order.append("idle")
    assert order == [*(f"packet0.{index}" for index in range(1, 7)), "idle"]


async def test_idle_turn_comes_back_on_a_loop_that_is_never_idle() -> None:
    loop = asyncio.get_running_loop()
    busy = True

    def spin() -> None:
        if busy:
            loop.call_soon(spin)

    spin()
    started = time.monotonic()
    try:
        await idle_turn(limit=0.02)
    finally:
        busy = False
    assert time.monotonic() - started < 1.0


def test_the_pace_slows_as_sending_costs_more_within_limits() -> None:
    flusher = Flusher(EventEncoder())
    assert flusher.interval == SEND_INTERVAL  # nothing measured yet: the fastest pace
    flusher.cost = SEND_BUDGET * 0.05  # a tick of sends takes 0.5 ms of the loop...
    assert flusher.interval == pytest.approx(0.05)  # ...so ticks are 50 ms apart: 1% of the time
    flusher.cost = 1.0
    assert flusher.interval == SLOWEST_INTERVAL


class CostlyClient(RecordingClient):
    def flush(self, sub: Any, now: float) -> None:
        super().flush(sub, now)
        until = time.perf_counter() + 0.001  # a send that keeps the loop for 1 ms
        while time.perf_counter() < until:
            pass


async def test_costly_sends_are_paced_to_the_budget() -> None:
    order: list[str] = []
    flusher = Flusher(EventEncoder())
    subs = [SimpleNamespace(on_put=None) for _ in range(4)]
    for index, sub in enumerate(subs):
        flusher.add(CostlyClient(f"client{index}", order), sub)  # type: ignore[arg-type]
    started = time.monotonic()
    while time.monotonic() - started < 1.0:
        subs[0].on_put()  # something changes all the time
        await asyncio.sleep(0.005)
    flusher.clients.clear()
    ticks = len(order) / 4
    # 4 ms of sends a tick would take 20% of the loop at 50 ticks a second; within 1% they are 100 ms apart.
    assert 5 <= ticks <= 16, ticks
