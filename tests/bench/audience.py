"""``launcher.py bench``: the audience's phones (issue 19). Everything runs against one engine process, ``python -m
tests.bench.audience serve`` (the exhibit as ``launcher.py run --no-render --no-console`` runs it, on the bench's
Mosquitto): the OSC bench's exhibit (an OSC float mapped to an MQTT device) plus a ``kind: audience`` sensor on
loopback (``max_phones`` 3000, ``rate`` 10) with two tap pads, ``probe`` and ``lantern``, and a mapping from
``crowd.probe.taps`` to a second MQTT device's ``value``. Its audience server is the sensor's own process, as in a
show. Phones are real WebSocket clients: ``tests.support.phones`` processes (the crowd, tapping ``lantern``) in
the idle scheduling class, as the audience server is (they stand in for phones, which are other machines), and a
probe phone of the bench's own.
Every clock is ``time.monotonic_ns()``, the same one in every process on Linux. The engine answers ``crowd`` on its
stdin with the crowd's signals as the show holds them (the server's exact tap totals, the phones it counts).

``audience_tap_to_signal_p50``/``_p99``: the probe phone (``python -m tests.bench.audience probe``, a process of
its own) taps ``probe`` once every 0.3 to 0.6 s at random and an MQTT subscriber in the same process timestamps the
device command that carries the new count (the first with a count at least as large); the latency includes the
server's aggregation tick (up to 100 ms at 10 Hz), its frame to the engine and the MQTT hop to the subscriber
(about 1 ms). Value: with a background crowd tapping; baseline: the same taps with no crowd.

``audience_phones_max``: steps of ever more phones tapping twice a second; each must connect them all, count every
tap they sent (the server's total against the phones' own), keep their rate while the OSC bench's probe measures
the control path and keep that path's p99 within 1.1x of the same engine with no phones. The figure is the largest
step that passed before the first that failed; baseline: the issue's target, 1,000 phones.

``control_latency_audience_ratio``: the OSC-to-MQTT p99 with the crowd tapping over without, runs alternating.

The runs are driven from ``runner.py`` (``run_audience``), which shares the OSC bench's sender, subscriber and
broker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from tests.bench.console import cpu_seconds
from tests.bench.inputs import start_module
from tests.bench.procs import PROBE_EXHIBIT, BenchError, Children, wait_for_payload
from tests.bench.results import Figure, Latencies, figure, latency_summary, verdict
from tests.bench.stdin_state import answer_questions, ask_child
from tests.support.net import free_port

if TYPE_CHECKING:
    from engine.runtime import Runtime

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

TAP_LIMIT_MS = 150.0
"""The issue's target for a tap to the crowd's signal, at 10 Hz aggregation."""
PHONES_TARGET = 1000
"""The issue's target: at least this many phones on the CI machine (the baseline of ``audience_phones_max``)."""
AUDIENCE_RATIO_LIMIT = 1.1
STEP_RATIO_LIMIT = 1.1
"""A step of the ramp fails when the control path's p99 is over this times the p99 with no phones."""
RATE_SHORTFALL = 0.9
"""A step fails when the server counted fewer than this share of the taps a second its phones were asked for."""
SENSOR = "crowd"
PROBE_OFFER = "probe"
CROWD_OFFER = "lantern"
OFFERS = (PROBE_OFFER, CROWD_OFFER)
TAP_DEVICE = "tap_probe"
AGGREGATION_HZ = 10.0
MAX_PHONES = 3000
STATE_KEY = "crowd"
"""The prefix of the serve child's answer line (any other line on its stdout is not ours)."""
CONNECT_S = 1.0
PHONES_CONNECTED_PER_S = 400.0
"""The crowd's processes get ``CONNECT_S + phones / PHONES_CONNECTED_PER_S`` to connect every phone before the
work they tap through begins (they tap for that long plus the work's, then end by themselves)."""
SETTLE_S = 1.0
"""After the last phone connected and before the work: every phone past its first tap (within 1/rate)."""
TAIL_S = 1.5
"""Phones go on tapping this long after the work's expected end."""


@dataclass(frozen=True)
class AudiencePlan:
    taps: int
    """Probe taps timed in each tap run (with the crowd and without), after ``tap_warmup``."""
    crowd: int
    """Phones in the background crowd of the tap latency and of the control-latency ratio."""
    steps: tuple[int, ...]
    """``audience_phones_max``: phones in each step of the ramp, which stops at the first step that fails."""
    rounds: int
    """Control latency: pairs of runs, one with the crowd and one without, alternating which goes first."""
    messages: int
    """Control latency: OSC messages timed in every run (and in every step), after ``latency_warmup``."""
    tap_warmup: int = 3
    spacing_s: tuple[float, float] = (0.3, 0.6)
    """Between two probe taps: uniformly at random in this range (seeded: both tap runs get the same)."""
    rate: float = 2.0
    """Taps a second, each phone of the crowd."""
    processes: int = 4
    """The crowd's phones are spread over this many ``tests.support.phones`` processes."""
    latency_warmup: int = 300
    seed: int = 19
    step_runs: int = 2
    """Runs of the OSC bench's probe each step of the ramp measures, pooled: one run's p99 moves by about 10% from
    run to run here, with or without phones, as much as the step's limit allows."""

    def gaps(self) -> list[float]:
        """The time before each probe tap (the first after 0.5 s)."""
        rng = np.random.default_rng(self.seed)
        low, high = self.spacing_s
        return [0.5, *rng.uniform(low, high, self.tap_warmup + self.taps - 1).tolist()]


QUICK_AUDIENCE = AudiencePlan(taps=30, crowd=500, steps=(250, 500), rounds=1, messages=1000)
FULL_AUDIENCE = AudiencePlan(taps=100, crowd=1000, steps=(500, 1000, 1500, 2000), rounds=3, messages=3000)


# --- results ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhoneTally:
    """What a crowd's processes said they did (``tests.support.phones``), summed."""

    connected: int
    sent: int
    refused: int
    errors: int

    @staticmethod
    def total(lines: list[dict[str, Any]]) -> PhoneTally:
        return PhoneTally(
            connected=sum(int(line["connected"]) for line in lines),
            sent=sum(int(line["sent"]) for line in lines),
            refused=sum(int(line["refused"]) for line in lines),
            errors=sum(int(line["errors"]) for line in lines),
        )


@dataclass(frozen=True)
class CrowdRun:
    """A crowd of phones on the audience page while something was measured, and what the server made of it."""

    phones: int
    """Phones asked for."""
    tally: PhoneTally
    counted: int
    """Taps the server counted from the crowd (its ``lantern.taps``, after the crowd left, less before it came)."""
    connect_s: float
    """From the crowd's start to the server counting every phone."""
    allowed_s: float
    """What the phones' tapping time allowed for connecting (:func:`connect_allowance`)."""
    held: bool
    """Every phone was still connected when the measurement ended."""
    taps_per_s: float
    """Taps the server counted a second while the measurement ran."""
    work_s: float
    """How long the measurement ran."""
    dropped: int
    """Messages the server dropped (its health figure) from the crowd's start to its end."""
    restarted: bool
    """The audience server's process was not the same at the end (or its totals went back)."""
    engine_cores: float
    server_cores: float
    phones_cores: float
    """CPU each used while the measurement ran, in cores (the phones' processes together)."""

    @property
    def lost(self) -> int:
        """Taps the phones sent that the server did not count."""
        return self.tally.sent - self.counted

    def summary(self, rate: float) -> str:
        tally = self.tally
        return (
            f"{tally.connected:,}/{self.phones:,} phones connected in {self.connect_s:.1f} s (refused {tally.refused}, "
            f"errors {tally.errors}){'' if self.held else ', some gone before the end'}; the server counted "
            f"{self.taps_per_s:,.0f} taps/s while measured ({self.phones * rate:,.0f} asked) and {self.counted:,} of "
            f"the {tally.sent:,} sent in all (dropped {self.dropped}); CPU while measured: engine "
            f"{self.engine_cores:.2f}, audience server {self.server_cores:.2f}, phones {self.phones_cores:.2f} cores"
        )


@dataclass(frozen=True)
class TapRun:
    """The probe phone's taps to the device command carrying their count."""

    latency: Latencies
    crowd: CrowdRun | None
    """The background crowd (None: the baseline, no crowd)."""


@dataclass(frozen=True)
class AudienceStep:
    """One step of the ramp: a crowd, and the control path's latency while it tapped."""

    crowd: CrowdRun
    control: Latencies
    idle_p99: float
    """The control path's p99 with no phones (the ratio's runs without, pooled)."""
    rate: float

    @property
    def ratio(self) -> float:
        return self.control.percentile(99) / self.idle_p99

    def failures(self) -> list[str]:
        """Why the step failed (nothing: it passed)."""
        return step_failures(self.crowd, self.ratio, self.rate)

    @property
    def passed(self) -> bool:
        return not self.failures()


def step_failures(crowd: CrowdRun, ratio: float, rate: float) -> list[str]:
    """Why a crowd of phones was not held: not all connected, some gone early, a tap sent and not counted, the crowd
    short of its rate, or the control path over :data:`STEP_RATIO_LIMIT` times its p99 with no phones."""
    tally, why = crowd.tally, []
    if tally.connected < crowd.phones or tally.refused or tally.errors:
        why.append(f"{tally.connected}/{crowd.phones} connected, {tally.refused} refused, {tally.errors} errors")
    if not crowd.held:
        why.append(
            f"phones gone before the measurement ended (connecting took {crowd.connect_s:.1f} s of the "
            f"{crowd.allowed_s:.1f} s allowed)"
        )
    if crowd.restarted:
        why.append("the audience server's process restarted")
    if crowd.lost:
        why.append(f"{crowd.lost:,} of {tally.sent:,} taps sent were not counted")
    if crowd.taps_per_s < RATE_SHORTFALL * crowd.phones * rate:
        why.append(f"{crowd.taps_per_s:,.0f} taps/s counted of {crowd.phones * rate:,.0f} asked")
    if not ratio <= STEP_RATIO_LIMIT:
        why.append(f"control p99 over {STEP_RATIO_LIMIT:g}x idle")
    return why


def phones_max(steps: list[AudienceStep] | tuple[AudienceStep, ...]) -> int:
    """The phones of the last step that passed before the first that failed (0: the first failed)."""
    held = 0
    for step in steps:
        if not step.passed:
            break
        held = step.crowd.phones
    return held


@dataclass(frozen=True)
class AudienceLoad:
    """OSC-to-MQTT latency through the same engine with a crowd tapping and without, pooled over runs."""

    crowded: Latencies
    idle: Latencies
    crowded_p99: tuple[float, ...]
    idle_p99: tuple[float, ...]
    crowds: tuple[CrowdRun, ...]
    idle_engine_cores: tuple[float, ...]
    runs: int
    rate: float


@dataclass(frozen=True)
class AudienceResults:
    idle_taps: TapRun
    crowd_taps: TapRun
    load: AudienceLoad
    steps: tuple[AudienceStep, ...]
    plan: AudiencePlan

    @property
    def phones_max(self) -> int:
        return phones_max(self.steps)


def tap_latencies(sent_ns: np.ndarray, received: np.ndarray, first: int, warmup: int) -> Latencies:
    """``sent_ns[i]`` is when tap ``i + 1`` went (the count ``first + i + 1`` once the server has it); ``received``
    holds ``(count, monotonic_ns)`` rows in their order of arrival. Tap ``k``'s latency is to the first command
    whose count is at least ``first + k`` that arrived after the tap went (a tick that took two taps at once
    carries both); the first ``warmup`` taps are not timed, and a tap whose count never came is not either."""
    count = len(sent_ns)
    ms: list[float] = []
    if len(received):
        order = np.argsort(received[:, 1], kind="stable")
        values, arrivals = received[order, 0] - first, received[order, 1]
        highest = np.maximum.accumulate(values)
        for k in range(warmup + 1, count + 1):
            went = int(sent_ns[k - 1])
            index = max(int(np.searchsorted(highest, k)), int(np.searchsorted(arrivals, went)))
            if index < len(highest):
                ms.append((int(arrivals[index]) - went) / 1e6)
    return Latencies(ms=np.asarray(ms, dtype=np.float64), measured=count - warmup)


# --- the exhibit and its engine ------------------------------------------------------------------------------------


def audience_exhibit(exhibit_id: str, udp_port: int, web_port: int) -> str:
    """The OSC bench's exhibit, plus an audience sensor on ``web_port`` with two tap pads and a device that follows
    the probe pad's count."""
    probe = PROBE_EXHIBIT.format(exhibit_id=exhibit_id, udp_port=udp_port)
    sensor = f"""\
  {SENSOR}:
    kind: audience
    host: 127.0.0.1
    port: {web_port}
    rate: {AGGREGATION_HZ:g}
    max_phones: {MAX_PHONES}
    offers:
      {PROBE_OFFER}: {{type: tap}}
      {CROWD_OFFER}: {{type: tap}}
"""
    device = f"""\
  {TAP_DEVICE}:
    kind: mqtt
    properties:
      value: {{type: int, range: [0, 10000000], safe: 0}}
"""
    mapping = f"  - {{from: {SENSOR}.{PROBE_OFFER}.taps, to: {TAP_DEVICE}.value, input: [0, 10000000]}}\n"
    text = probe.replace("\ndevices:\n", "\n" + sensor + "devices:\n", 1)
    return text.replace("\nmappings:\n", "\n" + device + "mappings:\n", 1) + mapping


@dataclass(frozen=True)
class AudienceEngine:
    """The engine process under test and how to reach it."""

    name: str
    pid: int
    exhibit_id: str
    udp_port: int
    web_port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.web_port}/ws"

    @property
    def control_topic(self) -> str:
        return f"exhibit/{self.exhibit_id}/devices/probe/set"

    @property
    def tap_topic(self) -> str:
        return f"exhibit/{self.exhibit_id}/devices/{TAP_DEVICE}/set"


def start_audience_engine(children: Children, mqtt_port: int, exhibit_id: str = "bench-audience") -> AudienceEngine:
    """The engine child, online, its audience page up and its first crowd signals in."""
    name = "audience-engine"
    udp_port, web_port = free_port(socket.SOCK_DGRAM), free_port()
    exhibit = children.workdir / f"{exhibit_id}.yaml"
    exhibit.write_text(audience_exhibit(exhibit_id, udp_port, web_port), encoding="utf-8")
    proc = start_module(children, name, "audience", "serve", exhibit, "--broker-port", mqtt_port)
    if not wait_for_payload(mqtt_port, f"exhibit/{exhibit_id}/status", b"online", timeout=30.0, alive=proc):
        state = f"exited with status {proc.returncode}" if proc.poll() is not None else "did not say online in 30 s"
        raise children.failed(name, f"the engine {state}")
    engine = AudienceEngine(name=name, pid=proc.pid, exhibit_id=exhibit_id, udp_port=udp_port, web_port=web_port)
    wait_crowd(children, engine, lambda state: state["status"] == "ok" and state["count"] == 0, "its page up", 30.0)
    return engine


def stop_audience_engine(children: Children, engine: AudienceEngine) -> None:
    code = children.stop(engine.name)
    if code != 0:
        log.warning("%s exited with status %s after SIGTERM:\n%s", engine.name, code, children.log_text(engine.name))


def ask_crowd(children: Children, engine: AudienceEngine, timeout: float = 5.0) -> dict[str, Any]:
    """The crowd as the engine holds it: ``count``, ``taps`` by offer, the sensor's ``status`` and ``health``, the
    audience server's ``pid``, ``at`` (the engine's monotonic clock) and ``tick`` (when the frame that set the
    taps came in, on the same clock)."""
    return ask_child(children, engine.name, STATE_KEY, "how its crowd is", timeout)


def poll_crowd(
    children: Children, engine: AudienceEngine, check: Callable[[dict[str, Any]], bool], timeout: float
) -> tuple[dict[str, Any], bool]:
    """The crowd once ``check`` holds, or the last seen after ``timeout``; whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        state = ask_crowd(children, engine)
        if check(state):
            return state, True
        if time.monotonic() > deadline:
            return state, False
        time.sleep(0.05)


def wait_crowd(
    children: Children, engine: AudienceEngine, check: Callable[[dict[str, Any]], bool], what: str, timeout: float
) -> dict[str, Any]:
    state, ok = poll_crowd(children, engine, check, timeout)
    if not ok:
        raise children.failed(engine.name, f"the engine's audience did not have {what} within {timeout:.0f} s: {state}")
    return state


def settled_crowd(children: Children, engine: AudienceEngine, timeout: float = 10.0) -> dict[str, Any]:
    """The crowd once its totals have stopped moving (the server has counted what was sent before the phones
    left): the same taps over four ticks."""
    deadline = time.monotonic() + timeout
    last = ask_crowd(children, engine)
    while time.monotonic() < deadline:
        time.sleep(0.4)
        state = ask_crowd(children, engine)
        if state["taps"] == last["taps"]:
            return state
        last = state
    return last


# --- the engine child ---------------------------------------------------------------------------------------------


def crowd_state(runtime: Runtime) -> dict[str, Any]:
    store = runtime.store
    sensor = runtime.sensors[SENSOR]

    def value(name: str) -> Any:
        return store.get(f"{SENSOR}.{name}").value

    process = getattr(getattr(sensor, "process", None), "_process", None)
    health = sensor.health.as_dict()
    return {
        "count": value("count"),
        "taps": {offer: value(f"{offer}.taps") or 0 for offer in OFFERS},
        "status": health.get("status"),
        "health": health,
        "pid": getattr(process, "pid", None),
        "at": time.monotonic(),
        "tick": store.get(f"{SENSOR}.{CROWD_OFFER}.taps").timestamp,
    }


async def serve(path: Path, broker_port: int) -> None:
    """The exhibit as ``launcher.py run --no-render --no-console --broker ...`` runs it, and a reader of this
    process's stdin that answers ``crowd`` (:func:`crowd_state`); stops on SIGTERM or EOF."""
    from engine import session
    from engine.runtime import RuntimeOptions
    from engine.validate import load_exhibit
    from launcher import build_registry

    registry = build_registry()
    exhibit = load_exhibit(path, registry)
    options = RuntimeOptions(base_dir=path.parent, broker=f"mqtt://127.0.0.1:{broker_port}", console=False)

    async def companion(runtime: Runtime, stop: asyncio.Event) -> None:
        await answer_questions(runtime, stop, STATE_KEY, crowd_state)

    await session.serve(exhibit, registry, options, watch=path, companion=companion)


# --- crowds -------------------------------------------------------------------------------------------------------


def connect_allowance(phones: int) -> float:
    return CONNECT_S + phones / PHONES_CONNECTED_PER_S


def start_phones(
    children: Children, engine: AudienceEngine, name: str, phones: int, plan: AudiencePlan, seconds: float
) -> list[str]:
    """``phones`` spread over the plan's processes (fewer for a small crowd), each tapping ``lantern`` at the
    plan's rate for ``seconds`` from its start, in the idle scheduling class (as the audience server is)."""
    processes = max(1, min(plan.processes, phones))
    names = []
    for index in range(processes):
        share = phones // processes + (1 if index < phones % processes else 0)
        argv = ["chrt", "--idle", "0", sys.executable, "-m", "tests.support.phones", engine.url, "--phones", str(share)]
        argv += ["--rate", f"{plan.rate:g}", "--seconds", f"{seconds:.2f}", "--offer", CROWD_OFFER]
        names.append(f"{name}-phones-{index}")
        children.start(names[-1], argv, pipes=True, cwd=ROOT)
    return names


def finish_phones(children: Children, names: list[str], timeout: float) -> PhoneTally:
    deadline = time.monotonic() + timeout
    lines = []
    for name in names:
        children.finish(name, timeout=max(1.0, deadline - time.monotonic()))
        proc = children.procs[name]
        assert proc.stdout is not None
        output = proc.stdout.read().strip().splitlines()
        children.stop(name)
        try:
            lines.append(json.loads(output[-1]))
        except (IndexError, ValueError):
            raise children.failed(name, f"{name} printed no tally: {output}") from None
    return PhoneTally.total(lines)


def cpu_of(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def with_crowd(
    children: Children, engine: AudienceEngine, name: str, phones: int, plan: AudiencePlan, work_s: float,
    work: Callable[[], T],
) -> tuple[T, CrowdRun]:  # fmt: skip
    """``work()`` (expected to take ``work_s``) while ``phones`` phones tap, all connected before it begins; what
    the crowd did and what the server counted of it."""
    wait_crowd(children, engine, lambda state: state["count"] == 0, "no phones left from before", 30.0)
    before = ask_crowd(children, engine)
    allowance = connect_allowance(phones)
    started = time.monotonic()
    names = start_phones(children, engine, name, phones, plan, allowance + SETTLE_S + work_s + TAIL_S)
    # A crowd that does not all connect is measured all the same: what it did shows in the figures' lines.
    _, connected = poll_crowd(children, engine, lambda state: state["count"] >= phones, allowance + 20.0)
    connect_s = time.monotonic() - started if connected else math.inf
    time.sleep(SETTLE_S)
    phone_pids = [children.procs[n].pid for n in names]
    server_pid = int(before["pid"])
    begin = ask_crowd(children, engine)
    cpu = (cpu_seconds(engine.pid), cpu_seconds(server_pid), cpu_of(phone_pids))
    result = work()
    cpu_end = (cpu_seconds(engine.pid), cpu_seconds(server_pid), cpu_of(phone_pids))
    end = ask_crowd(children, engine)
    wall = end["at"] - begin["at"]
    ticks = end["tick"] - begin["tick"]  # the counts' own times: no tick's worth of taps in or out at either end
    tally = finish_phones(children, names, allowance + work_s + 60.0)
    after = settled_crowd(children, engine)
    run = CrowdRun(
        phones=phones,
        tally=tally,
        counted=after["taps"][CROWD_OFFER] - before["taps"][CROWD_OFFER],
        connect_s=connect_s,
        allowed_s=allowance,
        held=end["count"] >= phones,
        taps_per_s=(end["taps"][CROWD_OFFER] - begin["taps"][CROWD_OFFER]) / ticks if ticks > 0 else 0.0,
        work_s=wall,
        dropped=int(after["health"].get("dropped") or 0) - int(before["health"].get("dropped") or 0),
        restarted=after["pid"] != before["pid"] or after["taps"][CROWD_OFFER] < before["taps"][CROWD_OFFER],
        engine_cores=(cpu_end[0] - cpu[0]) / wall,
        server_cores=(cpu_end[1] - cpu[1]) / wall,
        phones_cores=(cpu_end[2] - cpu[2]) / wall,
    )
    log.info("%s: %s", name, run.summary(plan.rate))
    return result, run


def idle_cores(engine: AudienceEngine, work: Callable[[], T]) -> tuple[T, float]:
    """``work()`` with no phones; the engine's CPU meanwhile, in cores."""
    cpu, began = cpu_seconds(engine.pid), time.monotonic()
    result = work()
    return result, (cpu_seconds(engine.pid) - cpu) / (time.monotonic() - began)


# --- audience_tap_to_signal: the probe phone ----------------------------------------------------------------------


def probe_work_s(plan: AudiencePlan) -> float:
    return sum(plan.gaps()) + 2.0  # the probe's start, and its wait for the last count


def probe_taps(children: Children, engine: AudienceEngine, mqtt_port: int, plan: AudiencePlan, name: str) -> Latencies:
    """The probe phone's taps (a process of its own) to the tap device's commands; a tap whose count never came is
    left out (the figure's lines say how many were timed), none at all is an error."""
    first = int(ask_crowd(children, engine)["taps"][PROBE_OFFER])
    gaps, out = children.workdir / f"{name}-gaps.json", children.workdir / f"{name}.npz"
    gaps.write_text(json.dumps(plan.gaps()), encoding="utf-8")
    argv = [sys.executable, "-m", "tests.bench.audience", "probe", "--url", engine.url, "--mqtt-port", str(mqtt_port)]
    argv += ["--topic", engine.tap_topic, "--first", str(first), "--gaps", str(gaps), "--out", str(out)]
    children.start(name, argv, cwd=ROOT)
    children.finish(name, timeout=probe_work_s(plan) + 30.0)
    saved = np.load(out)
    result = tap_latencies(saved["sent"], saved["received"], first, plan.tap_warmup)
    if len(result.ms) == 0:
        raise children.failed(name, f"none of the {result.measured} timed taps reached {engine.tap_topic} as a count")
    if len(result.ms) < result.measured:
        log.warning("%s: only %d of %d taps came back as a count", name, len(result.ms), result.measured)
    log.info("%s: tap to signal p50 %.1f ms, p99 %.1f ms", name, result.percentile(50), result.percentile(99))
    return result


def run_probe(url: str, mqtt_port: int, topic: str, first: int, gaps: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """In the probe child: subscribe to ``topic``, connect as a phone, tap ``probe`` after each gap (timing each
    just before it goes), then wait for the last count (at most 3 s). (send times, (count, arrival) rows)."""
    import paho.mqtt.client as mqtt

    arrivals: list[tuple[int, bytes]] = []
    ready, last = threading.Event(), threading.Event()
    target = first + len(gaps)

    def on_connect(client: mqtt.Client, *_: object) -> None:
        client.subscribe(topic, qos=1)

    def on_subscribe(*_: object) -> None:
        ready.set()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        arrivals.append((time.monotonic_ns(), bytes(message.payload)))
        if f'"value": {target}'.encode() in message.payload or f'"value":{target}'.encode() in message.payload:
            last.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-tap-probe-{os.getpid()}")
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.connect("127.0.0.1", mqtt_port)
    client.loop_start()
    try:
        if not ready.wait(10.0):
            raise BenchError("the probe's subscription was not acknowledged within 10 s")
        sent = asyncio.run(tap(url, gaps))
        last.wait(3.0)
    finally:
        client.disconnect()
        client.loop_stop()
    rows = []
    for at, payload in arrivals:
        try:
            value = json.loads(payload)["value"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(value, int | float):
            rows.append((round(value), at))
    return np.asarray(sent, dtype=np.int64), np.array(rows, dtype=np.int64).reshape(-1, 2)


async def tap(url: str, gaps: list[float]) -> list[int]:
    import aiohttp

    message = json.dumps({"t": "tap", "id": PROBE_OFFER})
    sent: list[int] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url, heartbeat=None) as ws:
        hello = json.loads((await ws.receive(timeout=10.0)).data)
        if hello.get("t") != "hello":
            raise BenchError(f"the audience page did not greet the probe phone: {hello}")
        at = time.monotonic()
        for gap in gaps:
            at += gap
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            sent.append(time.monotonic_ns())
            await ws.send_str(message)
    return sent


# --- figures ------------------------------------------------------------------------------------------------------


def audience_figures(audience: AudienceResults) -> dict[str, Figure]:
    crowd, idle, load = audience.crowd_taps.latency, audience.idle_taps.latency, audience.load
    return {
        "audience_tap_to_signal_p50": figure(crowd.percentile(50), idle.percentile(50), "ms"),
        "audience_tap_to_signal_p99": figure(crowd.percentile(99), idle.percentile(99), "ms"),
        "audience_phones_max": figure(float(audience.phones_max), float(PHONES_TARGET), "phones"),
        "control_latency_audience_ratio": figure(load.crowded.percentile(99), load.idle.percentile(99), "ms"),
    }


def tap_summary(run: Latencies) -> str:
    return (
        f"{len(run.ms)}/{run.measured} taps timed; p50 {run.percentile(50):.1f} ms, p99 {run.percentile(99):.1f} ms, "
        f"min {float(np.min(run.ms)):.1f} ms, max {float(np.max(run.ms)):.1f} ms"
    )


def step_line(step: AudienceStep) -> str:
    failures = step.failures()
    state = "passed" if not failures else f"FAILED: {'; '.join(failures)}"
    return (
        f"  {step.crowd.phones:,} phones: {state}; control p99 {step.control.percentile(99):.3f} ms "
        f"({step.ratio:.2f}x idle); {step.crowd.summary(step.rate)}"
    )


def audience_samples(audience: AudienceResults) -> list[str]:
    """How the audience figures were taken, and their targets, so a reader can judge them."""
    plan, load = audience.plan, audience.load
    low, high = plan.spacing_s
    crowd_run = audience.crowd_taps.crowd
    tap_p99 = audience.crowd_taps.latency.percentile(99)
    ratio = load.crowded.percentile(99) / load.idle.percentile(99)
    held = audience.phones_max
    steps = ", ".join(f"{phones:,}" for phones in plan.steps)
    crowded_p99 = ", ".join(f"{value:.3f}" for value in load.crowded_p99)
    idle_p99 = ", ".join(f"{value:.3f}" for value in load.idle_p99)
    idle_cpu = ", ".join(f"{value:.2f}" for value in load.idle_engine_cores)
    lines = [
        "audience: one engine process (the OSC bench's exhibit plus a `kind: audience` sensor on loopback, rate "
        f"{AGGREGATION_HZ:g} Hz, max_phones {MAX_PHONES:,}, run as `launcher.py run --no-render --no-console` does, "
        "on Mosquitto), its audience server in the sensor's own process; the crowd: real WebSocket clients "
        f"(`tests.support.phones`, {plan.processes} processes in the idle scheduling class as the server is, "
        "stand-ins for phones, which are other "
        f"machines, yet on the same 2 cores here) each tapping `{CROWD_OFFER}` {plan.rate:g} times a second; the "
        "server's tap totals read from the show's signals (exact counts)",
        f"audience_tap_to_signal_p50/_p99: {plan.taps} taps (after {plan.tap_warmup}) {low:g} to {high:g} s apart at "
        f"random from a probe phone (a process of its own) on the `{PROBE_OFFER}` pad, each timed from just before "
        f"it was sent to the arrival, at an MQTT subscriber in the same process, of the device command carrying the "
        f"new count (`{SENSOR}.{PROBE_OFFER}.taps` mapped to an MQTT device): the server's aggregation tick (up to "
        f"{1000 / AGGREGATION_HZ:g} ms), its frame to the engine, the mapping and the MQTT hop (about 1 ms) are in "
        f"it; of {plan.taps} taps the p99 is about the worst; value: with {plan.crowd:,} phones tapping in the "
        "background, baseline: the same taps with no crowd",
        f"  with the crowd: {tap_summary(audience.crowd_taps.latency)}",
    ]
    if crowd_run is not None:
        lines.append(f"    the crowd: {crowd_run.summary(plan.rate)}")
    lines += [
        f"  no crowd:       {tap_summary(audience.idle_taps.latency)}",
        f"audience_phones_max: steps of {steps} phones (stopping at the first that fails), each tapping "
        f"{plan.rate:g}/s while the OSC bench's probe measures the control path ({plan.step_runs} runs of "
        f"{plan.messages:,} messages after {plan.latency_warmup} at {load.rate:,.0f}/s, pooled); a step passes when "
        "every phone connected and stayed, the server counted every tap the phones sent (its total against the sum "
        f"of their own), counted at least "
        f"{RATE_SHORTFALL:.0%} of the taps a second asked while measured, and the control p99 stayed within "
        f"{STEP_RATIO_LIMIT:g}x the p99 with no phones (the ratio's runs without, pooled: "
        f"{load.idle.percentile(99):.3f} ms); value: the largest step passed, baseline: the issue's target, "
        f"{PHONES_TARGET:,} phones",
        *(step_line(step) for step in audience.steps),
        f"control_latency_audience_ratio: the OSC-to-MQTT p99 (OSC at {load.rate:,.0f}/s from a separate process, "
        f"through Mosquitto to a separate subscriber) of the same engine with {plan.crowd:,} phones tapping "
        f"{plan.rate:g}/s over the same with no phones; {load.runs} run(s) of each, alternating, pooled; value: with "
        "the crowd, baseline: without, ratio: with / without",
        f"  with the crowd: {latency_summary(load.crowded, 'messages')}; p99 by run {crowded_p99} ms",
        *(f"    the crowd: {run.summary(plan.rate)}" for run in load.crowds),
        f"  no phones:      {latency_summary(load.idle, 'messages')}; p99 by run {idle_p99} ms; engine CPU "
        f"{idle_cpu} cores",
        f"target: audience_tap_to_signal_p99 at most {TAP_LIMIT_MS:g} ms (at {AGGREGATION_HZ:g} Hz); "
        f"audience_phones_max at least {PHONES_TARGET:,}; control_latency_audience_ratio at most "
        f"{AUDIENCE_RATIO_LIMIT:g}",
        f"  audience_tap_to_signal_p99 at most {TAP_LIMIT_MS:g} ms: {verdict(tap_p99 <= TAP_LIMIT_MS)} "
        f"({tap_p99:.1f} ms with {plan.crowd:,} phones; {audience.idle_taps.latency.percentile(99):.1f} ms without)",
        f"  audience_phones_max at least {PHONES_TARGET:,}: {verdict(held >= PHONES_TARGET)} ({held:,} phones)",
        f"  control_latency_audience_ratio at most {AUDIENCE_RATIO_LIMIT:g}: {verdict(ratio <= AUDIENCE_RATIO_LIMIT)} "
        f"({ratio:.2f}: p99 {load.crowded.percentile(99):.3f} ms with the crowd, {load.idle.percentile(99):.3f} ms "
        "without)",
    ]
    return lines


# --- the children's entry point -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.audience")
    commands = parser.add_subparsers(dest="command", required=True)
    engine = commands.add_parser("serve", help="run an exhibit as `launcher.py run --no-render` does")
    engine.add_argument("exhibit", type=Path)
    engine.add_argument("--broker-port", type=int, required=True)
    probe = commands.add_parser("probe", help="tap the probe pad and time the device command with each count")
    probe.add_argument("--url", required=True, help="the audience page's WebSocket, ws://host:port/ws")
    probe.add_argument("--mqtt-port", type=int, required=True)
    probe.add_argument("--topic", required=True, help="the tap device's command topic")
    probe.add_argument("--first", type=int, required=True, help="the probe pad's count before the first tap")
    probe.add_argument("--gaps", type=Path, required=True, help="a JSON list: seconds before each tap")
    probe.add_argument("--out", type=Path, required=True, help="where to save sent and received (.npz)")
    args = parser.parse_args(argv)
    if args.command == "probe":
        gaps = [float(gap) for gap in json.loads(args.gaps.read_text(encoding="utf-8"))]
        sent, received = run_probe(args.url, args.mqtt_port, args.topic, args.first, gaps)
        with args.out.open("wb") as out:
            np.savez(out, sent=sent, received=received)
        return 0
    from engine.logs import setup_logging

    setup_logging("info", "text")  # as launcher.py's main does: the cost of its log lines stays
    asyncio.run(serve(args.exhibit, args.broker_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
