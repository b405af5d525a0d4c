"""``launcher.py bench``: the show logic. How many times a second a typical rule's condition is
evaluated, against the same test written as a plain Python lambda; and how long a GO takes to
reach the broker as a device command, against a bare aiomqtt publish. Each baseline is measured
in the same run, first, the same way.

The engine has no network control API yet, so the show runs in this process, as ``launcher.py run``
wires it (a ``Runtime`` with the real ``MqttLink`` and ``MqttDevice``) against a private Mosquitto,
and GO is ``show.go()`` called here; arrival is timed by a subscriber in a separate process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import numpy as np

from devices.mqtt.link import MqttLink, Topics
from engine.expressions import StoreResolver, compile_expression
from engine.logs import TextFormatter
from engine.model import StoreType
from engine.show import Show
from engine.signals import SignalStore
from tests.bench.procs import BenchError, Children, bench_runtime, start_mosquitto
from tests.bench.results import CueLatency, ExprRate, Latencies, LogicResults, latencies

log = logging.getLogger("bench")

RULE = (
    "body.count > 0 and plinth.button and controls.wash > 0.5 and body.nearest.hands_raised > 0.2 "
    "and controls.season == 2 and not stale(body.count)"
)
"""Six reads: five values and one staleness. With the values below every term is true, so none is skipped."""
RULE_SIGNALS: dict[str, tuple[StoreType, float | int | bool]] = {
    "body.count": ("int", 3),
    "plinth.button": ("bool", True),
    "controls.wash": ("float", 0.8),
    "body.nearest.hands_raised": ("float", 0.6),
    "controls.season": ("int", 2),
}
"""Each signal the rule reads, with its type and a value that makes its term true."""

EXHIBIT_ID = "bench"
DEVICE = "probe"
DIRECT_TOPIC = "bench/direct/set"
"""Where the baseline publishes: not the device's topic, so the two runs cannot mix."""
ENGINE_LOGGERS = ("engine", "devices")
CUE_EXHIBIT_HEAD = f"""\
format_version: 1
id: {EXHIBIT_ID}
title: {{en: Cue benchmark}}
devices:
  {DEVICE}:
    kind: mqtt
    properties:
      value: {{type: int, range: [0, 10000000], safe: 0}}
cues:
  bench:
    guard: 0s
    cues:
"""


@dataclass(frozen=True)
class LogicPlan:
    evaluations: int
    """Calls per timed repeat of each rule."""
    repeats: int
    """Timed repeats of each rule, alternating; the best of each counts."""
    gos: int
    """GOs timed, after the warm-up."""
    warmup: int = 30
    spacing_s: float = 0.02
    """Between two GOs: longer than the guard (0 s) and than a command's round trip, so GOs never queue."""

    @property
    def count(self) -> int:
        return self.warmup + self.gos


QUICK_LOGIC = LogicPlan(evaluations=200_000, repeats=3, gos=120, warmup=20)
FULL_LOGIC = LogicPlan(evaluations=1_000_000, repeats=5, gos=500)


def run_logic(plan: LogicPlan, mosquitto: str) -> LogicResults:
    """Both logic comparisons; every child process is stopped and every temp file removed."""
    expr = expr_eval_rate(plan)
    with tempfile.TemporaryDirectory(prefix="exhibit-bench-logic-") as tmp:
        children = Children(Path(tmp))
        try:
            port = start_mosquitto(children, mosquitto)
            cue = asyncio.run(cue_go_latency(children, port, plan))
        finally:
            children.stop_all()
    return LogicResults(expr=expr, cue=cue)


# --- expression evaluation rate --------------------------------------------------------------


def rule_store() -> SignalStore:
    """A store holding the rule's signals, each set so that its term is true."""
    store = SignalStore()
    for name, (kind, value) in RULE_SIGNALS.items():
        store.declare(name, kind)
        store.set(name, value)
    return store


def compiled_rule(store: SignalStore) -> Callable[[], bool]:
    """The rule as a show's ``when:`` runs it."""
    return compile_expression(RULE, StoreResolver(store)).evaluate_bool


def plain_rule(store: SignalStore) -> Callable[[], bool]:
    """The same test by hand: the least Python can do, reading the same ``Signal`` objects."""
    count, button, wash, hands, season = (store.get(name) for name in RULE_SIGNALS)
    return lambda: (
        count.value > 0
        and button.value
        and wash.value > 0.5
        and hands.value > 0.2
        and season.value == 2
        and not count.stale
    )


def expr_eval_rate(plan: LogicPlan) -> ExprRate:
    """Evaluations per second of both rules, each the best of ``plan.repeats`` timeit runs, alternating."""
    store = rule_store()
    engine, baseline = compiled_rule(store), plain_rule(store)
    if engine() is not True or baseline() is not True:
        raise BenchError(f"the rule is not true with the bench's values, so some of its reads would be skipped: {RULE}")
    best_engine = best_baseline = float("inf")
    for _ in range(plan.repeats):
        best_baseline = min(best_baseline, timeit.Timer(baseline).timeit(plan.evaluations))
        best_engine = min(best_engine, timeit.Timer(engine).timeit(plan.evaluations))
    result = ExprRate(
        engine=plan.evaluations / best_engine,
        baseline=plan.evaluations / best_baseline,
        expression=RULE,
        evaluations=plan.evaluations,
        repeats=plan.repeats,
    )
    log.info("expr: %.0f eval/s (plain lambda %.0f eval/s)", result.engine, result.baseline)
    return result


# --- GO to the first device command -------------------------------------------------------------


def cue_exhibit(count: int) -> str:
    """One MQTT device and ``count`` cues; cue i sets ``value`` to i at once (no fade, no pre-wait)."""
    cues = [f'      - {{id: "{i}", actions: [{{set: {DEVICE}.value, value: {i}}}]}}' for i in range(1, count + 1)]
    return CUE_EXHIBIT_HEAD + "\n".join(cues) + "\n"


async def cue_go_latency(children: Children, port: int, plan: LogicPlan) -> CueLatency:
    """The bare publish first, then GOs on the running show, both on this event loop and the same broker."""
    runtime = bench_runtime(cue_exhibit(plan.count), "bench-cues.yaml", port, children.workdir)
    device_topic = Topics(runtime.exhibit.mqtt.prefix, runtime.exhibit.id).device(DEVICE, "set")
    with engine_log_to(children.workdir / "engine.log"):
        await runtime.start()
        try:
            link = runtime.resources.get(MqttLink)
            await wait_connected(link, timeout=10.0)
            async with aiomqtt.Client("127.0.0.1", port, identifier="bench-direct") as client:
                baseline = await time_arrivals(children, port, "direct", DIRECT_TOPIC, plan, publisher(client))
            assert runtime.show is not None
            engine = await time_arrivals(children, port, "show", device_topic, plan, goer(runtime.show))
        finally:
            await runtime.stop()
    return CueLatency(engine=engine, baseline=baseline, spacing_s=plan.spacing_s, warmup=plan.warmup)


async def wait_connected(link: MqttLink, timeout: float) -> None:
    try:
        await asyncio.wait_for(link.connected.wait(), timeout)
    except TimeoutError:
        raise BenchError(f"the show did not connect to the broker at {link.address} within {timeout:.0f} s") from None


Fire = Callable[[int], Awaitable[None]]
"""Starts the command that carries value N on its way; times are taken from just before the call."""


def goer(show: Show) -> Fire:
    """GO on the standby cue: the N-th GO fires cue N, which sets ``value`` to N."""

    async def fire(value: int) -> None:
        if not show.go():
            raise BenchError(f"GO {value} was refused (the guard, or the end of the cue list)")

    return fire


def publisher(client: aiomqtt.Client) -> Fire:
    """What the device would publish, published bare (QoS 1, awaiting the acknowledgement as the device does)."""

    async def fire(value: int) -> None:
        await client.publish(DIRECT_TOPIC, json.dumps({"value": value}), qos=1)

    return fire


async def time_arrivals(children: Children, port: int, name: str, topic: str, plan: LogicPlan, fire: Fire) -> Latencies:
    """Fire values 1..count ``plan.spacing_s`` apart and time each one's arrival on ``topic``."""
    received = children.workdir / f"{name}-received.npy"
    sub = f"{name}-subscriber"
    children.script(sub, "subscriber.py", "--port", port, "--topic", topic, "--out", received)
    await asyncio.to_thread(children.wait_ready, sub, 10.0)  # off the loop: the MQTT link keeps running
    sent = await paced(fire, plan)
    stdin = children.procs[sub].stdin
    assert stdin is not None
    stdin.write("done\n")  # the subscriber drains, saves and exits
    stdin.flush()
    await asyncio.to_thread(children.finish, sub, 15.0)
    result = latencies(sent, np.load(received), plan.warmup)
    if len(result.ms) == 0:
        raise BenchError(f"none of the {plan.gos} measured commands reached {topic}")
    log.info("cue %s: %d of %d arrived, p99 %.3f ms", name, len(result.ms), result.measured, result.percentile(99))
    return result


async def paced(fire: Fire, plan: LogicPlan) -> np.ndarray:
    """Call ``fire(1..count)`` on a fixed grid (absolute deadlines); when each call began, in monotonic ns."""
    sent = np.zeros(plan.count, dtype=np.int64)
    start = time.monotonic() + plan.spacing_s
    for index in range(plan.count):
        await asyncio.sleep(max(0.0, start + index * plan.spacing_s - time.monotonic()))
        sent[index] = time.monotonic_ns()
        await fire(index + 1)
    return sent


@contextlib.contextmanager
def engine_log_to(path: Path, names: tuple[str, ...] = ENGINE_LOGGERS) -> Iterator[None]:
    """The engine's log lines (those of the loggers ``names``) go to a file, as the OSC bench's engine process's do:
    the cost stays, the noise goes."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(TextFormatter())
    loggers = [logging.getLogger(name) for name in names]
    saved = [(logger.handlers[:], logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.handlers[:] = [handler]
        logger.propagate = False
    try:
        yield
    finally:
        for logger, (handlers, propagate) in zip(loggers, saved, strict=True):
            logger.handlers[:] = handlers
            logger.propagate = propagate
        handler.close()
