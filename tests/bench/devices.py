"""``launcher.py bench``: many devices. How many device updates a second reach a subscriber when a
timeline moves 512 RGB fixtures at 44 Hz, and how long a PANIC takes to bring all 512 to their safe
state, each against a bare aiomqtt loop publishing the same messages (the steps of a fade at QoS 0, the
safe commands at QoS 1, as the devices send them) from the same process.

As in ``logic.py`` the show runs in this process, as ``launcher.py run`` wires it (a ``Runtime`` with
the real ``MqttLink`` and ``MqttDevice``), against a private Mosquitto; arrival is recorded by
``subscriber.py --fixtures`` in a separate process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np

from devices.mqtt.link import MqttLink, Topics
from engine.show import Show
from tests.bench.logic import engine_log_to, wait_connected
from tests.bench.procs import BenchError, Children, bench_runtime, start_mosquitto
from tests.bench.results import DeviceResults, FanoutRate, PanicLatency

log = logging.getLogger("bench")

EXHIBIT_ID = "bench"
TIMELINE = "sweep"
DIRECT_PREFIX = "bench/direct"
"""Where the baselines publish: not the devices' topics, so the runs cannot mix."""
SETTLE_S = 1.0
"""After the fixtures are lit, before a PANIC: long enough for every command to have gone out."""


@dataclass(frozen=True)
class DevicesPlan:
    fixtures: int
    warmup_s: float
    """The timeline (or bare loop) runs this long before the measured window."""
    window_s: float
    panics: int
    rate: float = 44.0
    """The fade engine's rate (its default): one update per fixture per tick."""

    @property
    def target(self) -> float:
        return self.fixtures * self.rate


QUICK_DEVICES = DevicesPlan(fixtures=512, warmup_s=0.5, window_s=2.0, panics=3)
FULL_DEVICES = DevicesPlan(fixtures=512, warmup_s=1.0, window_s=5.0, panics=5)


def run_devices(plan: DevicesPlan, mosquitto: str) -> DeviceResults:
    """Fan-out rate and PANIC time; every child process is stopped and every temp file removed."""
    with tempfile.TemporaryDirectory(prefix="exhibit-bench-devices-") as tmp:
        children = Children(Path(tmp))
        try:
            port = start_mosquitto(children, mosquitto)
            return asyncio.run(measure_devices(children, port, plan))
        finally:
            children.stop_all()


def fixture_names(count: int) -> list[str]:
    return [f"f{i}" for i in range(1, count + 1)]


def devices_exhibit(count: int) -> str:
    """``count`` RGB fixtures and one looping timeline moving every fixture's red 0 -> 255 -> 0 over 2 s."""
    names = fixture_names(count)
    lines = [
        "format_version: 1",
        f"id: {EXHIBIT_ID}",
        "title: {en: Device fan-out benchmark}",
        "devices:",
        *(f"  {name}: {{kind: mqtt, profile: {{profile: rgb}}}}" for name in names),
        "timelines:",
        f"  {TIMELINE}:",
        "    loop: true",
        "    tracks:",
        *(f"      {name}.red: [[0, 0], [1, 255], [2, 0]]" for name in names),
        "safety: {panic_time: 0s}",
    ]
    return "\n".join(lines) + "\n"


async def measure_devices(children: Children, port: int, plan: DevicesPlan) -> DeviceResults:
    """Each baseline first, then the engine, on this event loop and the same broker."""
    runtime = bench_runtime(devices_exhibit(plan.fixtures), "bench-devices.yaml", port, children.workdir)
    set_filter = Topics(runtime.exhibit.mqtt.prefix, runtime.exhibit.id).device("+", "set")
    direct_filter = f"{DIRECT_PREFIX}/+/set"
    with engine_log_to(children.workdir / "engine.log"), quiet_mqtt_logger():
        await runtime.start()
        try:
            link = runtime.resources.get(MqttLink)
            await wait_connected(link, timeout=10.0)
            show = runtime.show
            assert show is not None
            async with aiomqtt.Client("127.0.0.1", port, identifier="bench-direct") as client:
                base_rate, base_cpu = await fanout(
                    children, port, "direct-fanout", direct_filter, plan, bare_loop(client, plan)
                )
                engine_rate, engine_cpu = await fanout(
                    children, port, "show-fanout", set_filter, plan, timeline_loop(show)
                )
                base_panic = await panics(children, port, "direct-panic", direct_filter, plan, bare_panic(client, plan))
            engine_panic = await panics(children, port, "show-panic", set_filter, plan, show_panic(show))
        finally:
            await runtime.stop()
    fan = FanoutRate(
        engine=engine_rate,
        baseline=base_rate,
        engine_cpu=engine_cpu,
        baseline_cpu=base_cpu,
        fixtures=plan.fixtures,
        rate=plan.rate,
        window_s=plan.window_s,
    )
    panic = PanicLatency(engine=engine_panic, baseline=base_panic, fixtures=plan.fixtures)
    return DeviceResults(fanout=fan, panic=panic)


@contextlib.contextmanager
def quiet_mqtt_logger() -> Iterator[None]:
    """aiomqtt warns on every publish beyond 10 pending, here thousands a second: for both runs alike, not logged."""
    logger = logging.getLogger("mqtt")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# --- fan-out rate --------------------------------------------------------------------------------

Loop = Callable[[float], Coroutine[Any, Any, None]]
"""Moves every fixture on every tick until the monotonic deadline given."""


def timeline_loop(show: Show) -> Loop:
    """The looping timeline, played until the deadline, then stopped."""

    async def run(until: float) -> None:
        timeline = show.timelines[TIMELINE]
        timeline.play()
        try:
            await asyncio.sleep(max(0.0, until - time.monotonic()))
        finally:
            timeline.stop()

    return run


def bare_loop(client: aiomqtt.Client, plan: DevicesPlan) -> Loop:
    """What the devices publish, with stock aiomqtt: on a fixed 44 Hz grid, one ``{"red": v}`` per fixture at
    QoS 0 (as the devices stream the steps of a fade), all of a tick's publishes awaited together."""
    topics = [f"{DIRECT_PREFIX}/{name}/set" for name in fixture_names(plan.fixtures)]

    async def run(until: float) -> None:
        period = 1.0 / plan.rate
        start = time.monotonic()
        tick = 0
        while (now := time.monotonic()) < until:
            phase = ((now - start) % 2.0) / 2.0
            payload = json.dumps({"red": round(255 * (1 - abs(2 * phase - 1)), 4)})
            await asyncio.gather(*(client.publish(topic, payload, qos=0) for topic in topics))
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * period - time.monotonic()))

    return run


async def fanout(
    children: Children, port: int, name: str, topic: str, plan: DevicesPlan, loop: Loop
) -> tuple[float, float]:
    """(updates per second that arrived within the measured window, this process's CPU cores over it)."""
    received = children.workdir / f"{name}-received.npy"
    sub = f"{name}-subscriber"
    children.script(sub, "subscriber.py", "--port", port, "--topic", topic, "--out", received, "--fixtures")
    await asyncio.to_thread(children.wait_ready, sub, 10.0)  # off the loop: the MQTT link keeps running
    start = time.monotonic()
    running = asyncio.create_task(loop(start + plan.warmup_s + plan.window_s))
    await asyncio.sleep(plan.warmup_s)
    wall0, cpu0 = time.monotonic_ns(), time.process_time()
    await asyncio.sleep(plan.window_s)
    wall1, cpu1 = time.monotonic_ns(), time.process_time()
    await running
    rows = await finish_subscriber(children, sub, received)
    arrived = int(np.count_nonzero((rows[:, 0] >= wall0) & (rows[:, 0] < wall1)))
    if arrived == 0:
        raise BenchError(f"no fixture update reached {topic} in the measured window ({name})")
    seconds = (wall1 - wall0) / 1e9
    rate, cpu = arrived / seconds, (cpu1 - cpu0) / seconds
    log.info("%s: %.0f updates/s delivered, %.2f cores", name, rate, cpu)
    return rate, cpu


async def finish_subscriber(children: Children, sub: str, received: Path) -> np.ndarray:
    stdin = children.procs[sub].stdin
    assert stdin is not None
    stdin.write("done\n")  # the subscriber drains, saves and exits
    stdin.flush()
    await asyncio.to_thread(children.finish, sub, 30.0)
    return np.load(received)


# --- PANIC to the last safe command --------------------------------------------------------------

Panic = Callable[[], Awaitable[int]]
"""Lights every fixture, lets it settle, then sends every fixture safe; returns when it began, in monotonic ns."""


def show_panic(show: Show) -> Panic:
    async def run() -> int:
        show.reset()  # after a PANIC the show takes no new values until reset
        for name in show.outputs:
            show.fades.set_now(name, "level", 1.0)
        await asyncio.sleep(SETTLE_S)
        began = time.monotonic_ns()
        await show.panic()
        return began

    return run


def bare_panic(client: aiomqtt.Client, plan: DevicesPlan) -> Panic:
    """The same 512 safe commands published bare, concurrently, each awaiting its acknowledgement."""
    topics = [f"{DIRECT_PREFIX}/{name}/set" for name in fixture_names(plan.fixtures)]
    lit, safe = json.dumps({"level": 1.0}), json.dumps({"level": 0, "red": 0, "green": 0, "blue": 0})

    async def run() -> int:
        await asyncio.gather(*(client.publish(topic, lit, qos=1) for topic in topics))
        await asyncio.sleep(SETTLE_S)
        began = time.monotonic_ns()
        await asyncio.gather(*(client.publish(topic, safe, qos=1) for topic in topics))
        return began

    return run


async def panics(children: Children, port: int, name: str, topic: str, plan: DevicesPlan, panic: Panic) -> np.ndarray:
    """Milliseconds from each PANIC to the last fixture's safe command (NaN where some never arrived)."""
    received = children.workdir / f"{name}-received.npy"
    sub = f"{name}-subscriber"
    children.script(sub, "subscriber.py", "--port", port, "--topic", topic, "--out", received, "--fixtures")
    await asyncio.to_thread(children.wait_ready, sub, 10.0)
    began = [await panic() for _ in range(plan.panics)]
    await asyncio.sleep(SETTLE_S)
    rows = await finish_subscriber(children, sub, received)
    ms = np.full(plan.panics, np.nan)
    ends = [*began[1:], np.iinfo(np.int64).max]
    for index, (start, end) in enumerate(zip(began, ends, strict=True)):
        window = rows[(rows[:, 0] >= start) & (rows[:, 0] < end) & (rows[:, 2] == 1)]
        first: dict[int, int] = {}
        for at, fixture, _ in window.tolist():
            first.setdefault(fixture, at)
        if len(first) >= plan.fixtures:
            ms[index] = (max(first.values()) - start) / 1e6
        else:
            log.warning("%s: PANIC %d: %d of %d fixtures went safe", name, index + 1, len(first), plan.fixtures)
    log.info("%s: PANIC to the last safe command %s ms", name, np.round(ms, 3).tolist())
    return ms
