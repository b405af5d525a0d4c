"""From send and receive times (OSC, serial, the console's WebSocket, the studio's checks), frame times (pose,
render, the studio's preview), rate searches (OSC ingest) and memory samples (soak) to figures, and the figures as
JSON or a table."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

P99_LIMIT_MS = 2.0
P99_RATIO_LIMIT = 1.25
POSE_FPS_1P_LIMIT = 30.0
POSE_FPS_1P_RATIO_LIMIT = 0.9
POSE_FPS_4P_LIMIT = 15.0
OSC_RATE_LIMIT = 20_000.0
OSC_RATE_RATIO_LIMIT = 0.8
SERIAL_P99_LIMIT_MS = 2.0
EXPR_RATE_RATIO_LIMIT = 0.5
CUE_GO_P99_LIMIT_MS = 5.0


@dataclass(frozen=True)
class Latencies:
    """One path's latencies (ms) over the measured sequence numbers that arrived."""

    ms: np.ndarray
    measured: int
    """How many measured (non-warm-up) messages were sent."""

    @property
    def delivered(self) -> float:
        return len(self.ms) / self.measured

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.ms, q))


def latencies(sent_ns: np.ndarray, received: np.ndarray, warmup: int) -> Latencies:
    """``sent_ns[i]`` is when N = i + 1 was sent; ``received`` holds ``(N, monotonic_ns)`` rows.

    Only the first arrival of each N counts (QoS 1 may deliver twice); N = 0 is
    the engine's safe state, not a message of ours.
    """
    count = len(sent_ns)
    first: dict[int, int] = {}
    for value, at in received.tolist():
        if warmup < value <= count and value not in first:
            first[value] = at
    seqs = np.fromiter(first, dtype=np.int64, count=len(first))
    arrived = np.fromiter(first.values(), dtype=np.int64, count=len(first))
    ms = (arrived - sent_ns[seqs - 1]) / 1e6
    return Latencies(ms=ms, measured=count - warmup)


@dataclass(frozen=True)
class PoseRun:
    """One pass over a video: per frame, when its result was out, its latency and how many people were found.

    The first ``warmup`` frames (model warm-up, thread start) count for nothing.
    """

    done: np.ndarray
    """Monotonic seconds at which each frame's result was out (signals set, or landmarks returned)."""
    latency_ms: np.ndarray
    """From the frame's capture stamp to ``done``; meaningful for paced runs only."""
    people: np.ndarray
    warmup: int
    num_poses: int

    @property
    def frames(self) -> int:
        """How many frames were timed (after the warm-up)."""
        return len(self.done) - self.warmup

    @property
    def fps(self) -> float:
        """Timed frames over the time from the last warm-up result to the last result."""
        return self.frames / float(self.done[-1] - self.done[self.warmup - 1])

    @property
    def mean_people(self) -> float:
        return float(np.mean(self.people[self.warmup :]))

    def latency(self, q: float) -> float:
        return float(np.percentile(self.latency_ms[self.warmup :], q))


@dataclass(frozen=True)
class PoseComparison:
    """The whole pipeline (a ``PoseSensor``) and a bare ``PoseLandmarker`` loop on the same frames."""

    pipeline: PoseRun
    baseline: PoseRun


@dataclass(frozen=True)
class PoseResults:
    one: PoseComparison
    """One person, num_poses=1, frames as fast as they come."""
    four: PoseComparison
    """Four people, num_poses=4."""
    latency: PoseComparison
    """One person, num_poses=1, paced at the video's 30 fps as a camera would be."""
    one_numposes4: PoseComparison | None = None
    """One person with the exhibit's default num_poses=4 (informative)."""


class Figure(TypedDict):
    value: float
    unit: str
    baseline: float
    ratio: float | None
    """``value / baseline``; None where that means nothing (a growth against a baseline that hardly grows)."""


def figure(value: float, baseline: float, unit: str) -> Figure:
    return {"value": value, "unit": unit, "baseline": baseline, "ratio": value / baseline}


def ratio(fig: Figure) -> float:
    """The ratio of a figure that always has one (rates and latencies; not the soak's growths)."""
    value = fig["ratio"]
    if value is None:
        raise ValueError(f"this figure has no ratio: {fig}")
    return value


def figures(engine: Latencies, baseline: Latencies) -> dict[str, Figure]:
    return {
        "osc_to_mqtt_latency_p50": figure(engine.percentile(50), baseline.percentile(50), "ms"),
        "osc_to_mqtt_latency_p99": figure(engine.percentile(99), baseline.percentile(99), "ms"),
        "osc_to_mqtt_delivered": figure(engine.delivered, baseline.delivered, "ratio"),
    }


def pose_figures(pose: PoseResults) -> dict[str, Figure]:
    one, four = pose.one, pose.four
    results = {
        "pose_fps_1p": figure(one.pipeline.fps, one.baseline.fps, "fps"),
        "pose_fps_4p": figure(four.pipeline.fps, four.baseline.fps, "fps"),
        "pose_latency_p50": figure(pose.latency.pipeline.latency(50), pose.latency.baseline.latency(50), "ms"),
        "pose_people_4p": figure(four.pipeline.mean_people, four.baseline.mean_people, "people"),
    }
    if pose.one_numposes4 is not None:
        many = pose.one_numposes4
        results["pose_fps_1p_numposes4"] = figure(many.pipeline.fps, many.baseline.fps, "fps")
    return results


def as_json(results: dict[str, Figure]) -> str:
    return json.dumps(results)


def as_table(
    results: dict[str, Figure],
    engine: Latencies | None,
    baseline: Latencies | None,
    pose: PoseResults | None = None,
    inputs: InputResults | None = None,
    logic: LogicResults | None = None,
    devices: DeviceResults | None = None,
    render: RenderResults | None = None,
    soak: SoakResults | None = None,
    console: ConsoleResults | None = None,
    studio: StudioResults | None = None,
) -> str:
    """Every group that ran (``engine`` and ``baseline``: the OSC latency's, None where it did not run)."""
    width = max([26, *(len(name) for name in results)])
    lines = [f"{'figure':<{width}} {'value':>12} {'baseline':>12} {'ratio':>7}  unit"]
    for name, fig in results.items():
        shown = "-" if fig["ratio"] is None else f"{fig['ratio']:.2f}"
        lines.append(f"{name:<{width}} {fig['value']:>12.3f} {fig['baseline']:>12.3f} {shown:>7}  {fig['unit']}")
    lines.append("")
    machine = f"machine: {os.cpu_count()} cores, Python {platform.python_version()}"
    if engine is not None and baseline is not None:
        machine += (
            f"; samples: engine {len(engine.ms)}/{engine.measured} measured messages arrived, "
            f"baseline {len(baseline.ms)}/{baseline.measured}"
        )
    lines.append(machine)
    if console is not None:
        lines += console_samples(console)
    if pose is not None:
        lines += pose_samples(pose)
    if inputs is not None:
        lines += input_samples(inputs)
    if logic is not None:
        lines += logic_samples(logic)
    if devices is not None:
        lines += device_samples(devices)
    if render is not None:
        lines += render_samples(render)
    if studio is not None:
        lines += studio_samples(studio)
    if soak is not None:
        lines += soak_samples(soak)
    if engine is not None:
        lines += osc_targets(results)
    if console is not None:
        lines += console_targets(results)
    if pose is not None:
        lines += pose_targets(results, pose)
    if inputs is not None:
        lines += input_targets(results)
    if logic is not None:
        lines += logic_targets(results)
    if devices is not None:
        lines += device_targets(results)
    if render is not None:
        lines += render_targets(results)
    if studio is not None:
        lines += studio_targets(results)
    if soak is not None:
        lines += soak_targets(results, soak)
    return "\n".join(lines)


def osc_targets(results: dict[str, Figure]) -> list[str]:
    p99 = results["osc_to_mqtt_latency_p99"]
    return [
        f"target: p99 at most {P99_LIMIT_MS:g} ms and at most {P99_RATIO_LIMIT:g}x the baseline",
        f"  p99 at most {P99_LIMIT_MS:g} ms: {verdict(p99['value'] <= P99_LIMIT_MS)} ({p99['value']:.3f} ms)",
        f"  p99 at most {P99_RATIO_LIMIT:g}x the baseline: {verdict(ratio(p99) <= P99_RATIO_LIMIT)} "
        f"({ratio(p99):.2f}x)",
    ]


def pose_samples(pose: PoseResults) -> list[str]:
    """What the pose figures were measured on, so a reader can judge them."""
    one, four, paced = pose.one.pipeline, pose.four.pipeline, pose.latency.pipeline
    lines = [
        f"pose: 640x480 MJPEG video, shipped `full` model; {one.warmup} warm-up frames left out of every run; "
        "baseline: a bare PoseLandmarker loop (cv2 decode + detect_for_video) over the same frames",
        f"  pose_fps_1p: {one.frames} frames, num_poses={one.num_poses}, {one.mean_people:.2f} people found per frame",
        f"  pose_fps_4p: {four.frames} frames, num_poses={four.num_poses}, "
        f"{four.mean_people:.2f} people found per frame (baseline {pose.four.baseline.mean_people:.2f}): "
        "see pose_people_4p",
        f"  pose_latency_p50: {paced.frames} frames paced at 30 fps, num_poses={paced.num_poses}, "
        f"from capture (frame decoded) to signals set, p99 {paced.latency(99):.1f} ms; "
        f"baseline: capture to landmarks, p99 {pose.latency.baseline.latency(99):.1f} ms",
        "  num_poses trades speed for capacity: with num_poses=1 MediaPipe stops running its person detector once "
        "it tracks someone; with more it keeps looking for further people on every frame",
    ]
    if pose.one_numposes4 is not None:
        lines.append(
            f"  pose_fps_1p_numposes4: the same one-person video with num_poses=4 (the exhibit's default), "
            f"{pose.one_numposes4.pipeline.frames} frames"
        )
    return lines


def pose_targets(results: dict[str, Figure], pose: PoseResults) -> list[str]:
    one, four = results["pose_fps_1p"], results["pose_fps_4p"]
    people = pose.four.pipeline.mean_people
    return [
        f"target: pose_fps_1p at least {POSE_FPS_1P_LIMIT:g} and at least {POSE_FPS_1P_RATIO_LIMIT:g}x the baseline; "
        f"pose_fps_4p at least {POSE_FPS_4P_LIMIT:g} (on 2 CPU cores)",
        f"  pose_fps_1p at least {POSE_FPS_1P_LIMIT:g}: {verdict(one['value'] >= POSE_FPS_1P_LIMIT)} "
        f"({one['value']:.1f} fps)",
        f"  pose_fps_1p at least {POSE_FPS_1P_RATIO_LIMIT:g}x the baseline: "
        f"{verdict(ratio(one) >= POSE_FPS_1P_RATIO_LIMIT)} ({ratio(one):.2f}x)",
        f"  pose_fps_4p at least {POSE_FPS_4P_LIMIT:g}: {verdict(four['value'] >= POSE_FPS_4P_LIMIT)} "
        f"({four['value']:.1f} fps with {people:.2f} people per frame)",
    ]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# --- inputs: OSC ingest rate and serial latency (inputs.py) ----------------------------------


@dataclass(frozen=True)
class RateStep:
    """One burst of the OSC rate search: what the sender was asked for, what it managed, what was handled."""

    target: float
    """Messages per second asked of the sender."""
    sent: int
    achieved: float
    """Messages per second the sender really kept up, from its first send to its last."""
    handled: int
    """Signals set (engine) or handler calls (baseline) for this burst."""
    busy_s: float
    """From the first send to the last handled message (to a poll's precision, about 10 ms)."""

    @property
    def lossless(self) -> bool:
        return self.handled >= self.sent

    @property
    def throughput(self) -> float:
        """Handled per second while busy: the receiver's own pace when the burst overran it."""
        return self.handled / self.busy_s


@dataclass(frozen=True)
class RateSearch:
    """Every burst sent to one receiver, in the order sent."""

    steps: tuple[RateStep, ...]
    cap: float
    """The search never asks for more than this (the sender's side of the comparison)."""

    @property
    def best(self) -> RateStep | None:
        """The fastest burst handled whole."""
        lossless = [step for step in self.steps if step.lossless]
        return max(lossless, key=lambda step: step.achieved) if lossless else None

    @property
    def rate(self) -> float:
        """The highest rate handled with zero loss; 0 if even the slowest burst lost messages."""
        best = self.best
        return best.achieved if best is not None else 0.0

    @property
    def capped(self) -> bool:
        """No burst lost anything: the real limit lies above the search's cap."""
        return all(step.lossless for step in self.steps)

    @property
    def first_loss(self) -> float | None:
        """The slowest burst above the best one that lost messages: the limit lies between the two."""
        floor = self.rate
        lossy = [step.achieved for step in self.steps if not step.lossless and step.achieved > floor]
        return min(lossy) if lossy else None

    @property
    def saturated(self) -> float | None:
        """Median throughput over the bursts that overran the receiver; None if none did."""
        lossy = [step.throughput for step in self.steps if not step.lossless]
        return float(np.median(lossy)) if lossy else None


@dataclass(frozen=True)
class OscIngest:
    """The engine's OSC input and python-osc's server, searched the same way, with the same socket buffer."""

    engine: RateSearch
    baseline: RateSearch
    burst: int
    """Messages per burst."""
    rcvbuf_asked: int
    rcvbuf_engine: int
    """SO_RCVBUF as the kernel reports it after the engine set it (Linux doubles what is asked)."""
    rcvbuf_baseline: int
    rmem_max: int | None
    """net.core.rmem_max, Linux's cap on what SO_RCVBUF may ask; None where it cannot be read."""
    buffer_datagrams: int
    """How many of the bench's datagrams a socket with that buffer holds before the kernel drops."""


@dataclass(frozen=True)
class SerialLatency:
    """From ``os.write`` on the pty to the value being in hand: the engine's signal, or the bare reader's line."""

    engine: Latencies
    baseline: Latencies
    rate: float
    warmup: int


@dataclass(frozen=True)
class InputResults:
    osc: OscIngest
    serial: SerialLatency


def input_figures(inputs: InputResults) -> dict[str, Figure]:
    osc, serial = inputs.osc, inputs.serial
    return {
        "osc_ingest_rate": figure(osc.engine.rate, osc.baseline.rate, "msg/s"),
        "serial_latency_p50": figure(serial.engine.percentile(50), serial.baseline.percentile(50), "ms"),
        "serial_latency_p99": figure(serial.engine.percentile(99), serial.baseline.percentile(99), "ms"),
    }


def input_samples(inputs: InputResults) -> list[str]:
    """How the input figures were taken, and what bounds them, so a reader can judge them."""
    osc, serial = inputs.osc, inputs.serial
    share = max(0.0, 1 - osc.buffer_datagrams / osc.burst)
    cap = f"net.core.rmem_max {mib(osc.rmem_max)}" if osc.rmem_max is not None else "net.core.rmem_max unknown"
    return [
        f"osc_ingest_rate: the fastest burst of {osc.burst:,} `/bench/seq f` datagrams handled with zero loss, sent "
        "over UDP loopback by a separate process (absolute deadlines); rates doubled, then bisected; "
        "engine: OscSensor in its own process (one float signal, a subscriber counting sets); "
        "baseline: python-osc's AsyncIOOSCUDPServer, a Dispatcher with an empty handler counting calls",
        f"  receive buffer: both ask {mib(osc.rcvbuf_asked)} (SO_RCVBUF) and get {mib(osc.rcvbuf_engine)} (engine) / "
        f"{mib(osc.rcvbuf_baseline)} (baseline) as Linux reports it ({cap} caps the ask); "
        f"it holds {osc.buffer_datagrams:,} of these datagrams, so a burst is lossless while the receiver "
        f"handles at least {share:.2f}x the send rate",
        f"  engine:   {rate_steps(osc.engine)}",
        f"  baseline: {rate_steps(osc.baseline)}",
        f'serial_latency: {serial.engine.measured:,} JSON lines `{{"seq": N}}` at {serial.rate:,.0f}/s written on a '
        f"pty by a separate process ({serial.warmup} warm-up lines left out), from os.write to the signal set; "
        "baseline: a bare pyserial-asyncio-fast Protocol splitting lines and calling json.loads, same pty setup",
        f"  engine:   {latency_summary(serial.engine)}",
        f"  baseline: {latency_summary(serial.baseline)}",
    ]


def rate_steps(search: RateSearch) -> str:
    """Each burst as ``rate ok`` or ``rate lost N``, then the pace of the receiver when overrun."""
    parts = []
    for step in search.steps:
        outcome = "ok" if step.lossless else f"lost {step.sent - step.handled:,}"
        parts.append(f"{step.achieved:,.0f}/s {outcome}")
    saturated, first_loss = search.saturated, search.first_loss
    if saturated is None or first_loss is None:
        return ", ".join(parts) + f"; nothing lost up to the search's cap of {search.cap:,.0f}/s: the limit is higher"
    return (
        ", ".join(parts) + f"; the limit lies between {search.rate:,.0f} and {first_loss:,.0f}/s; "
        f"when overrun it handled about {saturated:,.0f}/s"
    )


def latency_summary(run: Latencies, what: str = "lines") -> str:
    return (
        f"{len(run.ms):,}/{run.measured:,} {what} arrived; p50 {run.percentile(50):.3f} ms, "
        f"p99 {run.percentile(99):.3f} ms, max {float(np.max(run.ms)):.3f} ms"
    )


def mib(size: int | None) -> str:
    return "?" if size is None else f"{size / (1 << 20):g} MiB"


def input_targets(results: dict[str, Figure]) -> list[str]:
    rate, p99 = results["osc_ingest_rate"], results["serial_latency_p99"]
    return [
        f"target: osc_ingest_rate at least {OSC_RATE_LIMIT:,.0f}/s and at least {OSC_RATE_RATIO_LIMIT:g}x the baseline",
        f"  osc_ingest_rate at least {OSC_RATE_LIMIT:,.0f}/s: {verdict(rate['value'] >= OSC_RATE_LIMIT)} "
        f"({rate['value']:,.0f} msg/s)",
        f"  osc_ingest_rate at least {OSC_RATE_RATIO_LIMIT:g}x the baseline: "
        f"{verdict(ratio(rate) >= OSC_RATE_RATIO_LIMIT)} ({ratio(rate):.2f}x)",
        f"target: serial_latency_p99 at most {SERIAL_P99_LIMIT_MS:g} ms",
        f"  serial_latency_p99 at most {SERIAL_P99_LIMIT_MS:g} ms: {verdict(p99['value'] <= SERIAL_P99_LIMIT_MS)} "
        f"({p99['value']:.3f} ms)",
    ]


# --- show logic: rule evaluation rate and GO latency (logic.py) ---------------------------------


@dataclass(frozen=True)
class ExprRate:
    """Evaluations per second of one rule, compiled by the engine and written as a plain lambda."""

    engine: float
    baseline: float
    expression: str
    evaluations: int
    """Calls per timed repeat."""
    repeats: int


@dataclass(frozen=True)
class CueLatency:
    """From just before ``show.go()`` (engine) or a bare publish (baseline) to the command's arrival."""

    engine: Latencies
    baseline: Latencies
    spacing_s: float
    warmup: int


@dataclass(frozen=True)
class LogicResults:
    expr: ExprRate
    cue: CueLatency


def logic_figures(logic: LogicResults) -> dict[str, Figure]:
    expr, cue = logic.expr, logic.cue
    return {
        "expr_eval_rate": figure(expr.engine, expr.baseline, "eval/s"),
        "cue_go_latency_p50": figure(cue.engine.percentile(50), cue.baseline.percentile(50), "ms"),
        "cue_go_latency_p99": figure(cue.engine.percentile(99), cue.baseline.percentile(99), "ms"),
    }


def logic_samples(logic: LogicResults) -> list[str]:
    """How the logic figures were taken, so a reader can judge them."""
    expr, cue = logic.expr, logic.cue
    return [
        f"expr_eval_rate: `{expr.expression}` (six reads: five values and one staleness; every term true, so none "
        f"is skipped), evaluate_bool() called {expr.evaluations:,} times with timeit, best of {expr.repeats}; "
        "baseline: the same test as a plain Python lambda over the same Signal objects, timed alternately with it",
        f"cue_go_latency: {cue.engine.measured:,} GOs {cue.spacing_s * 1000:g} ms apart ({cue.warmup} warm-up GOs "
        "left out) on a cue list with a 0 s guard whose cues each set one property of an MQTT device (no fade, "
        "no pre-wait); the show runs in this process as `launcher.py run` wires it (Runtime, MqttLink, MqttDevice) "
        "against a private Mosquitto; from just before show.go() to the command's arrival at a subscriber in a "
        "separate process; baseline: the same payload published bare with aiomqtt (QoS 1) from the same process "
        "and event loop to the same broker",
        f"  engine:   {latency_summary(cue.engine, 'commands')}",
        f"  baseline: {latency_summary(cue.baseline, 'commands')}",
    ]


def logic_targets(results: dict[str, Figure]) -> list[str]:
    rate, p99 = results["expr_eval_rate"], results["cue_go_latency_p99"]
    return [
        f"target: expr_eval_rate at least {EXPR_RATE_RATIO_LIMIT:g}x the baseline",
        f"  expr_eval_rate at least {EXPR_RATE_RATIO_LIMIT:g}x the baseline: "
        f"{verdict(ratio(rate) >= EXPR_RATE_RATIO_LIMIT)} ({ratio(rate):.2f}x, {rate['value']:,.0f} eval/s)",
        f"target: cue_go_latency_p99 at most {CUE_GO_P99_LIMIT_MS:g} ms",
        f"  cue_go_latency_p99 at most {CUE_GO_P99_LIMIT_MS:g} ms: {verdict(p99['value'] <= CUE_GO_P99_LIMIT_MS)} "
        f"({p99['value']:.3f} ms)",
    ]


# --- many devices: fan-out rate and PANIC time (devices.py) -------------------------------------

FANOUT_CPU_LIMIT = 1.0
PANIC_LIMIT_MS = 100.0


@dataclass(frozen=True)
class FanoutRate:
    """Fixture updates per second that reached the subscriber, and this process's CPU over the same window."""

    engine: float
    baseline: float
    engine_cpu: float
    """CPU seconds per second (``time.process_time``) of the process running the show."""
    baseline_cpu: float
    fixtures: int
    rate: float
    """Ticks per second: every fixture is updated on every tick."""
    window_s: float

    @property
    def target(self) -> float:
        return self.fixtures * self.rate


@dataclass(frozen=True)
class PanicLatency:
    """Per PANIC, milliseconds to the last fixture's safe command (NaN where some fixture's never came)."""

    engine: np.ndarray
    baseline: np.ndarray
    fixtures: int

    @staticmethod
    def median(ms: np.ndarray) -> float:
        return float(np.median(ms)) if not np.isnan(ms).any() else float("nan")

    @staticmethod
    def worst(ms: np.ndarray) -> float:
        return float(np.max(ms)) if len(ms) else float("nan")


@dataclass(frozen=True)
class DeviceResults:
    fanout: FanoutRate
    panic: PanicLatency


def device_figures(devices: DeviceResults) -> dict[str, Figure]:
    fan, panic = devices.fanout, devices.panic
    return {
        "fanout_update_rate": figure(fan.engine, fan.baseline, "updates/s"),
        "fanout_cpu_cores": figure(fan.engine_cpu, fan.baseline_cpu, "cores"),
        "panic_to_safe_ms": figure(panic.median(panic.engine), panic.median(panic.baseline), "ms"),
    }


def device_samples(devices: DeviceResults) -> list[str]:
    """How the device figures were taken, so a reader can judge them."""
    fan, panic = devices.fanout, devices.panic
    return [
        f"fanout_update_rate: {fan.fixtures} MQTT RGB fixtures (JSON payload) moved by one looping timeline "
        f"(every fixture's red, 0-255-0 over 2 s) at {fan.rate:g} Hz, so {fan.target:,.0f} updates/s asked; "
        f"updates arriving at a subscriber in a separate process (QoS 1, `.../devices/+/set`) over a "
        f"{fan.window_s:g} s window after a warm-up; the show runs in this process as `launcher.py run` wires it "
        "(Runtime, MqttLink, MqttDevice) against a private Mosquitto; "
        "baseline: a bare aiomqtt loop publishing the same messages (one task per publish, QoS 1) on the same grid "
        "from the same process and event loop",
        f"  fanout_cpu_cores: this process's CPU time over the window per second of wall time: "
        f"engine {fan.engine_cpu:.2f}, baseline {fan.baseline_cpu:.2f} (the subscriber and the broker not counted)",
        f"panic_to_safe_ms: {len(panic.engine)} PANICs (panic_time 0 s) with all {panic.fixtures} fixtures lit, "
        "from just before show.panic() to the last fixture's safe command (`level: 0`) at the subscriber; "
        "median reported; baseline: the same safe commands published bare with aiomqtt, concurrently",
        f"  engine:   {panic_runs(panic.engine)}",
        f"  baseline: {panic_runs(panic.baseline)}",
    ]


def panic_runs(ms: np.ndarray) -> str:
    runs = ", ".join("lost" if np.isnan(value) else f"{value:.1f}" for value in ms.tolist())
    return f"runs {runs} ms; worst {PanicLatency.worst(ms):.1f} ms"


def device_targets(results: dict[str, Figure]) -> list[str]:
    rate, cpu, panic = results["fanout_update_rate"], results["fanout_cpu_cores"], results["panic_to_safe_ms"]
    target = 512 * 44
    return [
        f"target: fanout_update_rate at {target:,} updates/s (512 x 44) with the engine under one core; "
        f"panic_to_safe_ms at most {PANIC_LIMIT_MS:g} ms",
        f"  fanout_update_rate at {target:,} updates/s: {verdict(rate['value'] >= target * 0.99)} "
        f"({rate['value']:,.0f} updates/s)",
        f"  engine under {FANOUT_CPU_LIMIT:g} core: {verdict(cpu['value'] < FANOUT_CPU_LIMIT)} "
        f"({cpu['value']:.2f} cores; the show runs on one thread, so 1.0 means saturated)",
        f"  panic_to_safe_ms at most {PANIC_LIMIT_MS:g} ms: {verdict(panic['value'] <= PANIC_LIMIT_MS)} "
        f"({panic['value']:.1f} ms)",
    ]


# --- the scene renderer: frame rate and its cost to control latency (render.py) ---------------------------------

RENDER_FPS_RATIO_LIMIT = 0.9
RENDER_LATENCY_RATIO_LIMIT = 1.1


@dataclass(frozen=True)
class FrameTimes:
    """The timed frames of one kind of run, pooled over its processes."""

    seconds: np.ndarray
    """Wall time of each frame, from the call that draws it to its return."""
    draw_seconds: np.ndarray
    """Of which in Panda3D's ``Display.render()`` (cull, draw, copy to RAM): all of it for the bare loop."""
    processes: int

    @property
    def fps(self) -> float:
        """Frames over the time spent in them: the rate of frames drawn back to back."""
        return len(self.seconds) / float(np.sum(self.seconds))

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.seconds, q)) * 1000

    def draw_percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.draw_seconds, q)) * 1000


@dataclass(frozen=True)
class RenderFps:
    """``SceneRenderer.frame()`` with four visitors against ``render_bare`` on the same scene, in fresh processes."""

    engine: FrameTimes
    baseline: FrameTimes
    size: tuple[int, int]
    warmup: int
    """Frames drawn before the timed ones, in every process."""
    visitors: int
    raised: int
    """Visitors with both hands raised (lanterns rise from their wrists)."""
    renderer: str
    """The GL driver and Panda3D display module that drew the engine's frames."""
    particles: int
    """Lantern particles alive at the end of the last engine run."""


@dataclass(frozen=True)
class RenderLatency:
    """OSC-to-MQTT latency through the same exhibit run with its scene drawn offscreen and without, pooled over runs."""

    on: Latencies
    off: Latencies
    runs: int
    """Engine runs of each kind, alternating."""
    rate: float
    """OSC messages per second."""
    render_fps: tuple[float, ...]
    """``render.fps`` just after each rendering run's messages (frames per second over its last heartbeat)."""
    render_p99_ms: tuple[float, ...]
    """``render.frame_p99_ms`` at the same moments."""


@dataclass(frozen=True)
class RenderResults:
    fps: RenderFps
    latency: RenderLatency


def render_figures(render: RenderResults) -> dict[str, Figure]:
    engine, baseline, latency = render.fps.engine, render.fps.baseline, render.latency
    return {
        "render_fps": figure(engine.fps, baseline.fps, "fps"),
        "render_frame_p99_ms": figure(engine.percentile_ms(99), baseline.percentile_ms(99), "ms"),
        "control_latency_render_ratio": figure(latency.on.percentile(99), latency.off.percentile(99), "ms"),
    }


def render_samples(render: RenderResults) -> list[str]:
    """How the render figures were taken, so a reader can judge them."""
    fps, latency = render.fps, render.latency
    engine, bare = fps.engine, fps.baseline
    width, height = fps.size
    drawn = ", ".join(f"{value:.1f}" for value in latency.render_fps)
    p99s = ", ".join(f"{value:.1f}" for value in latency.render_p99_ms)
    return [
        f"render_fps: the flagship's scene at {width}x{height} offscreen ({fps.renderer}), "
        f"{len(engine.seconds)} frames over {engine.processes} fresh process(es) per kind, alternating, "
        f"after {fps.warmup} warm-up frames in each; "
        f"engine: SceneRenderer.frame() with {fps.visitors} simulated visitors swaying ({fps.raised} with both hands "
        f"up: {fps.particles} lantern particles alive at the end); baseline: render_bare, Panda3D's renderFrame() "
        "alone on the scene as built (nothing moves, no visitors); fps = frames / time in them; both include the "
        "copy of each picture to RAM, neither turns it into an array",
        f"  engine:   p50 {engine.percentile_ms(50):.1f} ms, p99 {engine.percentile_ms(99):.1f} ms a frame, "
        f"of which Panda3D's draw p50 {engine.draw_percentile_ms(50):.1f} ms (the rest: bindings, avatars, particles, "
        "the swaying lantern field)",
        f"  baseline: p50 {bare.percentile_ms(50):.1f} ms, p99 {bare.percentile_ms(99):.1f} ms a frame",
        f"control_latency_render_ratio: the OSC-to-MQTT p99 (OSC at {latency.rate:,.0f}/s from a separate process, "
        "through Mosquitto to a separate subscriber) of the OSC bench's exhibit with the flagship's scene and its "
        "recorded visitors, run as `launcher.py run --headless` (scene drawn offscreen in the render process) over "
        f"the same with `--no-render`; {latency.runs} run(s) of each, alternating, pooled; value: rendering on, "
        "baseline: off, ratio: on / off",
        f"  rendering on:  {latency_summary(latency.on, 'messages')}; render.fps {drawn}, "
        f"render.frame_p99_ms {p99s} after each run",
        f"  rendering off: {latency_summary(latency.off, 'messages')}",
    ]


def render_targets(results: dict[str, Figure]) -> list[str]:
    fps, p99, control = results["render_fps"], results["render_frame_p99_ms"], results["control_latency_render_ratio"]
    return [
        f"target: render_fps at least {RENDER_FPS_RATIO_LIMIT:g}x the baseline; control_latency_render_ratio at most "
        f"{RENDER_LATENCY_RATIO_LIMIT:g}",
        f"  render_fps at least {RENDER_FPS_RATIO_LIMIT:g}x the baseline: "
        f"{verdict(ratio(fps) >= RENDER_FPS_RATIO_LIMIT)} ({ratio(fps):.2f}x, {fps['value']:.1f} fps)",
        f"  render_frame_p99_ms: {ratio(p99):.2f}x the baseline "
        f"({p99['value']:.1f} ms; reported, no target of its own)",
        f"  control_latency_render_ratio at most {RENDER_LATENCY_RATIO_LIMIT:g}: "
        f"{verdict(ratio(control) <= RENDER_LATENCY_RATIO_LIMIT)} ({ratio(control):.2f}: p99 "
        f"{control['value']:.3f} ms rendering, {control['baseline']:.3f} ms not)",
    ]


# --- memory over a long run: RSS growth of the render process and the controller (soak.py) ----------------------

SOAK_GROWTH_LIMIT = 5.0
"""MiB per hour, for each process, over a 10-minute run."""
GROWTH_RATIO_FLOOR = 1.0
"""MiB per hour: a baseline growing less than this is flat, and a ratio to it means nothing (null)."""


@dataclass(frozen=True)
class RssTrace:
    """One process (one pid) as sampled: seconds since the soak began, and its resident memory (VmRSS) in MiB."""

    pid: int
    seconds: np.ndarray
    mib: np.ndarray

    @property
    def samples(self) -> int:
        return len(self.seconds)

    @property
    def span_s(self) -> float:
        return float(self.seconds[-1] - self.seconds[0]) if self.samples else 0.0

    def growth(self, warmup_s: float) -> float:
        """Least-squares slope of RSS over time in MiB/hour, leaving out this pid's first ``warmup_s`` seconds
        (NaN with fewer than two samples after them)."""
        kept = self.seconds - self.seconds[0] >= warmup_s
        if int(np.count_nonzero(kept)) < 2:
            return float("nan")
        slope, _ = np.polyfit(self.seconds[kept], self.mib[kept], 1)
        return float(slope) * 3600.0

    def fitted(self, warmup_s: float) -> int:
        """How many samples the slope is fitted on."""
        return int(np.count_nonzero(self.seconds - self.seconds[0] >= warmup_s))


@dataclass(frozen=True)
class ProcessMemory:
    """One watched process over the soak: each pid it had, in order (a render process that restarts gets a new one)."""

    traces: tuple[RssTrace, ...]
    missed: int
    """Samples at which it could not be read (a render process between its exit and its restart)."""

    @property
    def restarts(self) -> int:
        return max(len(self.traces) - 1, 0)

    @property
    def longest(self) -> RssTrace:
        """The pid sampled over the longest stretch: the one the figure is about."""
        return max(self.traces, key=lambda trace: (trace.span_s, trace.samples))

    @property
    def samples(self) -> int:
        return sum(trace.samples for trace in self.traces)

    def growth(self, warmup_s: float) -> float:
        return self.longest.growth(warmup_s)


@dataclass(frozen=True)
class SoakResults:
    """The flagship run as a user runs it and two floors, watched side by side over the same minutes."""

    render: ProcessMemory
    """The flagship controller's render process (its ``spawn``ed child)."""
    render_bare: ProcessMemory
    """A bare Panda3D loop drawing the flagship's scene as built, nothing moving, in its own process."""
    controller: ProcessMemory
    """The flagship's ``launcher.py run`` process."""
    controller_bare: ProcessMemory
    """``launcher.py run`` of the OSC bench's one-mapping exhibit, without a scene."""
    seconds: float
    interval_s: float
    warmup_s: float
    size: tuple[int, int]
    """The bare loop's picture (the flagship's first output's, as its render process draws it headless)."""
    bare_fps: float
    """Frames the bare loop drew per second (it aims at 60)."""
    render_fps: tuple[float, ...]
    """``render.fps`` of each render health report the flagship published after the warm-up (every 10 s)."""
    render_restarts: int | None
    """``render.restarts`` in its last health report (None: no report came)."""


def growth_figure(value: float, baseline: float) -> Figure:
    """A growth (MiB/h) against its baseline's; the ratio only where the baseline really grows."""
    meaningful = baseline > GROWTH_RATIO_FLOOR
    return {"value": value, "unit": "MiB/h", "baseline": baseline, "ratio": value / baseline if meaningful else None}


def soak_figures(soak: SoakResults) -> dict[str, Figure]:
    warmup = soak.warmup_s
    return {
        "render_rss_growth_mib_per_hour": growth_figure(soak.render.growth(warmup), soak.render_bare.growth(warmup)),
        "controller_rss_growth_mib_per_hour": growth_figure(
            soak.controller.growth(warmup), soak.controller_bare.growth(warmup)
        ),
    }


def soak_samples(soak: SoakResults) -> list[str]:
    """How the memory figures were taken, each process's RSS at the start and the end, and any restart."""
    width, height = soak.size
    drawn = (
        f"render.fps median {float(np.median(soak.render_fps)):.1f}, min {min(soak.render_fps):.1f} over the "
        f"{len(soak.render_fps)} health reports after the warm-up"
        if soak.render_fps
        else "no render health report after the warm-up"
    )
    restarts = "?" if soak.render_restarts is None else str(soak.render_restarts)
    lines = [
        f"soak: {soak.seconds / 60:g} min, every process's RSS (VmRSS in /proc/<pid>/status) sampled every "
        f"{soak.interval_s:g} s, all four side by side; growth: the least-squares slope of RSS over time after a "
        f"{soak.warmup_s:g} s warm-up, in MiB/h; ratio only where the baseline grows more than "
        f"{GROWTH_RATIO_FLOOR:g} MiB/h (near zero it means nothing: '-' here, null in --json)",
        "render_rss_growth_mib_per_hour: the render process (the `multiprocessing.spawn` child) of "
        "`launcher.py run canal-lanterns --simulate --headless --no-reload` on a private Mosquitto, drawing the "
        f"flagship's scene at {width}x{height} offscreen with its recorded visitors ({drawn}; restarts {restarts}); "
        f"baseline: a bare Panda3D loop drawing the same scene as built, nothing moving, at up to 60 fps in its own "
        f"process ({soak.bare_fps:.1f} fps)",
        f"  render:    {rss_summary(soak.render, soak.warmup_s)}",
        f"  bare loop: {rss_summary(soak.render_bare, soak.warmup_s)}",
        "controller_rss_growth_mib_per_hour: the same run's controller process (show logic, simulated sensors, "
        "MQTT, snapshots to the renderer); baseline: `launcher.py run --no-render` of the OSC bench's exhibit "
        "(one OSC float mapped to one MQTT device), idle, on the same broker",
        f"  controller: {rss_summary(soak.controller, soak.warmup_s)}",
        f"  baseline:   {rss_summary(soak.controller_bare, soak.warmup_s)}",
    ]
    if soak.render.restarts:
        longest = soak.render.longest
        pids = ", ".join(str(trace.pid) for trace in soak.render.traces)
        lines.append(
            f"  the render process restarted {soak.render.restarts} time(s) (pids {pids}): its figure is the "
            f"longest stretch, pid {longest.pid} ({longest.samples} samples)"
        )
    return lines


def rss_summary(memory: ProcessMemory, warmup_s: float) -> str:
    """``pid 123, 46 samples (31 fitted), RSS 31.9 -> 98.1 -> 99.0 MiB (start -> after the warm-up -> end)``, of the
    pid the figure is about: the start-up's growth, then the one the slope is fitted on."""
    trace = memory.longest
    fitted = trace.fitted(warmup_s)
    settled = float(trace.mib[trace.samples - fitted]) if fitted else float("nan")
    text = (
        f"pid {trace.pid}, {trace.samples} samples ({fitted} fitted), RSS {float(trace.mib[0]):.1f} -> "
        f"{settled:.1f} -> {float(trace.mib[-1]):.1f} MiB (start -> after the warm-up -> end), "
        f"{trace.growth(warmup_s):+.2f} MiB/h"
    )
    if memory.missed:
        text += f"; {memory.missed} sample(s) missed"
    return text


def soak_targets(results: dict[str, Figure], soak: SoakResults) -> list[str]:
    render, controller = results["render_rss_growth_mib_per_hour"], results["controller_rss_growth_mib_per_hour"]
    short = "" if soak.seconds >= 600 else f" (this run: {soak.seconds / 60:g} min; shorter runs are noisier)"
    return [
        f"target: render_rss_growth_mib_per_hour and controller_rss_growth_mib_per_hour at most "
        f"{SOAK_GROWTH_LIMIT:g} MiB/h each over a 10-minute run{short}",
        f"  render_rss_growth_mib_per_hour at most {SOAK_GROWTH_LIMIT:g} MiB/h: "
        f"{verdict(render['value'] <= SOAK_GROWTH_LIMIT)} ({render['value']:+.2f} MiB/h; "
        f"bare loop {render['baseline']:+.2f} MiB/h)",
        f"  controller_rss_growth_mib_per_hour at most {SOAK_GROWTH_LIMIT:g} MiB/h: "
        f"{verdict(controller['value'] <= SOAK_GROWTH_LIMIT)} ({controller['value']:+.2f} MiB/h; "
        f"baseline {controller['baseline']:+.2f} MiB/h)",
    ]


# --- the operator console: GO and updates over its WebSocket, and what watchers cost control (console.py) ----------

CONSOLE_GO_P99_LIMIT_MS = 5.0
CONSOLE_UPDATE_P99_LIMIT_MS = 20.0
CONSOLE_RATIO_LIMIT = 1.1


@dataclass(frozen=True)
class ConsoleGo:
    """From just before a GO is sent over the console's WebSocket (engine) or a bare publish (baseline) to the
    command's arrival at the broker's subscriber."""

    engine: Latencies
    baseline: Latencies
    spacing_s: float
    warmup: int


@dataclass(frozen=True)
class ConsoleUpdate:
    """From an OSC datagram's send to the ``signal/...`` event carrying its value at a WebSocket client (engine),
    and to the device command carrying it at the broker's subscriber (baseline): the same datagrams."""

    engine: Latencies
    baseline: Latencies
    rate: float
    warmup: int


@dataclass(frozen=True)
class WatcherRun:
    """What the watching clients received over one run, and what reading it cost their process."""

    messages: int
    events: int
    fewest: int
    """The fewest events one client received."""
    seconds: float
    cpu_s: float


@dataclass(frozen=True)
class ConsoleLoad:
    """The OSC bench's measurement through one engine with the watchers connected and without, pooled over runs."""

    watched: Latencies
    alone: Latencies
    watched_p99: tuple[float, ...]
    """Each run's own p99 (ms), in the order they ran: one stall shows in one run, drift in all."""
    alone_p99: tuple[float, ...]
    runs: int
    """Runs of each kind, alternating."""
    rate: float
    clients: int
    signals: tuple[str, ...]
    """What each client watches."""
    watched_cores: tuple[float, ...]
    """The engine process's CPU seconds per second over each run with the watchers."""
    alone_cores: tuple[float, ...]
    watchers: tuple[WatcherRun, ...]


@dataclass(frozen=True)
class ConsoleResults:
    go: ConsoleGo
    update: ConsoleUpdate
    load: ConsoleLoad


def console_figures(console: ConsoleResults) -> dict[str, Figure]:
    go, update, load = console.go, console.update, console.load
    return {
        "console_go_roundtrip_p50": figure(go.engine.percentile(50), go.baseline.percentile(50), "ms"),
        "console_go_roundtrip_p99": figure(go.engine.percentile(99), go.baseline.percentile(99), "ms"),
        "console_update_latency_p50": figure(update.engine.percentile(50), update.baseline.percentile(50), "ms"),
        "console_update_latency_p99": figure(update.engine.percentile(99), update.baseline.percentile(99), "ms"),
        "control_latency_console_ratio": figure(load.watched.percentile(99), load.alone.percentile(99), "ms"),
    }


def console_samples(console: ConsoleResults) -> list[str]:
    """How the console figures were taken, so a reader can judge them."""
    go, update, load = console.go, console.update, console.load
    watched = ", ".join(
        f"{run.events / run.seconds / load.clients:,.0f} events/s a client ({run.messages / run.seconds:,.0f} "
        f"messages/s in all, the fewest {run.fewest:,} events), {run.cpu_s / run.seconds:.2f} cores"
        for run in load.watchers
    )
    return [
        "console: one engine, `launcher.py run --no-render --console-port P --accounts FILE` on a private Mosquitto, "
        "clients authenticated by an operator's API token from `launcher.py token add` (Authorization: Bearer)",
        f"console_go_roundtrip: {go.engine.measured:,} GOs {go.spacing_s * 1000:g} ms apart ({go.warmup} warm-up GOs "
        'left out), `{"op": "command", "name": "go", "params": {"cue": "1"}}` over the WebSocket from this process '
        "(aiohttp), cues 1 and 2 alternating, each setting an MQTT device's value (guard 0 s); from just before the "
        "send to the device command's arrival at a subscriber in a separate process; baseline: the same payloads "
        "published bare with aiomqtt (QoS 1) from the same process and event loop to the same broker",
        f"  engine:   {latency_summary(go.engine, 'commands')}",
        f"  baseline: {latency_summary(go.baseline, 'commands')}",
        f"console_update_latency: {update.engine.measured:,} `/bench/seq f N` datagrams at {update.rate:g}/s "
        f"({update.warmup} warm-up left out) from a separate process to the engine's OSC input; from the send to "
        "the `signal/probe_in.seq` event carrying N at a WebSocket client watching it in this process; "
        "baseline: the same datagrams to the device command carrying N (the mapping's) at a subscriber",
        f"  engine:   {latency_summary(update.engine, 'values')}",
        f"  baseline: {latency_summary(update.baseline, 'values')}",
        f"control_latency_console_ratio: the OSC-to-MQTT p99 (OSC at {load.rate:,.0f}/s from a separate process, "
        f"through Mosquitto to a separate subscriber) with {load.clients} WebSocket clients in a separate process "
        "(plain sockets at nice 19 reading every 20 ms: stand-ins for tablets, which are other machines) "
        f"each watching {', '.join(load.signals)}, over the same engine without them; {load.runs} run(s) of each, "
        "alternating, pooled; value: with the clients, baseline: without, ratio: with / without",
        f"  with the clients: {latency_summary(load.watched, 'messages')}",
        f"    each run: p99 {numbers(load.watched_p99)} ms; the engine busy {numbers(load.watched_cores)} cores",
        f"  without:          {latency_summary(load.alone, 'messages')}",
        f"    each run: p99 {numbers(load.alone_p99)} ms; the engine busy {numbers(load.alone_cores)} cores",
        f"  the clients received: {watched}",
    ]


def numbers(values: tuple[float, ...]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def console_targets(results: dict[str, Figure]) -> list[str]:
    go, update = results["console_go_roundtrip_p99"], results["console_update_latency_p99"]
    load = results["control_latency_console_ratio"]
    return [
        f"target: console_go_roundtrip_p99 at most {CONSOLE_GO_P99_LIMIT_MS:g} ms; console_update_latency_p99 at "
        f"most {CONSOLE_UPDATE_P99_LIMIT_MS:g} ms; control_latency_console_ratio at most {CONSOLE_RATIO_LIMIT:g}",
        f"  console_go_roundtrip_p99 at most {CONSOLE_GO_P99_LIMIT_MS:g} ms: "
        f"{verdict(go['value'] <= CONSOLE_GO_P99_LIMIT_MS)} ({go['value']:.3f} ms; "
        f"console_go_roundtrip_ratio {ratio(go):.2f}x a bare aiomqtt publish's p99)",
        f"  console_update_latency_p99 at most {CONSOLE_UPDATE_P99_LIMIT_MS:g} ms: "
        f"{verdict(update['value'] <= CONSOLE_UPDATE_P99_LIMIT_MS)} ({update['value']:.3f} ms; "
        f"{ratio(update):.2f}x the same changes' way out over MQTT)",
        f"  control_latency_console_ratio at most {CONSOLE_RATIO_LIMIT:g}: "
        f"{verdict(ratio(load) <= CONSOLE_RATIO_LIMIT)} ({ratio(load):.2f}: p99 {load['value']:.3f} ms with the "
        f"clients, {load['baseline']:.3f} ms without)",
    ]


# --- the curator studio: keystroke to problems on screen, and the preview's frame rate (studio.py) ------------------

STUDIO_CHECK_P99_LIMIT_MS = 300.0
STUDIO_RATIO_LIMIT = 1.1
"""The console's rule: a curator at work in the studio, which the console serves, must not delay control."""


@dataclass(frozen=True)
class StudioCheck:
    """From a keystroke in the studio's editor to the checker's problems on screen, measured in the page
    (``editor``), and the same texts' bare ``POST /api/v1/studio/check`` round trips (``bare``)."""

    editor: Latencies
    bare: Latencies
    first_ms: float
    """The first keystroke's check after the page loaded (a warm-up, left out)."""
    spacing_s: float
    warmup: int
    misspelt: int
    """Keystrokes after which the editor marked an error, as each misspelling must."""
    fixed: int
    """Keystrokes after which it marked none, as each fix must."""


@dataclass(frozen=True)
class PreviewRate:
    """Whole JPEG parts of the studio's MJPEG preview read over ``seconds`` after the first one."""

    frames: int
    seconds: float
    first_frame_s: float
    """From the request to the first whole frame."""
    mean_bytes: float
    asked: float
    """The frame rate the stream asks the render process for."""
    width: int

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


@dataclass(frozen=True)
class CuratorRun:
    """What the curator did over one run with the studio open: the pane shown beside the editor, keystrokes sent,
    checks the page showed (one at a time, always of the latest text), and how long the run took."""

    pane: str
    keystrokes: int
    checks: int
    seconds: float


@dataclass(frozen=True)
class CpuShare:
    """Cores busy over one run (CPU seconds per second), by who used them."""

    engine: float
    """The exhibit's own process: its event loop (control path, console, studio routes) and its threads."""
    render: float
    """Its render process (drawing, and encoding the preview's JPEGs)."""
    others: float
    """Its other child processes (the studio's checker worker)."""
    browser: float
    """Chromium's processes (none with no studio open: an idle browser with no tab)."""
    engine_wait: float
    """Seconds a second the exhibit's process's threads were ready to run but waited for a core (schedstat)."""


@dataclass(frozen=True)
class StudioLoad:
    """The OSC bench's measurement through one running exhibit with a curator at work in its studio and with no
    studio open, alternating; pooled over runs."""

    curated: Latencies
    alone: Latencies
    curated_runs: tuple[Latencies, ...]
    """Each run with the studio open, in the order they ran (its pane in ``curator``)."""
    alone_runs: tuple[Latencies, ...]
    curated_cpu: tuple[CpuShare, ...]
    alone_cpu: tuple[CpuShare, ...]
    curator: tuple[CuratorRun, ...]
    rate: float
    spacing_s: float
    """Between two keystrokes."""
    browser_nice: int
    """The browser's CPU priority (0: as the exhibit's)."""

    def pane_runs(self, name: str) -> list[Latencies]:
        """The runs with ``name`` shown beside the editor."""
        return [run for run, did in zip(self.curated_runs, self.curator, strict=True) if did.pane == name]

    def pane(self, name: str) -> Latencies:
        runs = self.pane_runs(name)
        return Latencies(ms=np.concatenate([run.ms for run in runs]), measured=sum(run.measured for run in runs))


@dataclass(frozen=True)
class StudioResults:
    check: StudioCheck
    preview: PreviewRate
    load: StudioLoad | None = None
    """None where the group ran without the control-path part (the keystroke and preview figures alone)."""


def studio_figures(studio: StudioResults) -> dict[str, Figure]:
    check, preview, load = studio.check, studio.preview, studio.load
    figures = {
        "studio_check_latency_p50": figure(check.editor.percentile(50), check.bare.percentile(50), "ms"),
        "studio_check_latency_p99": figure(check.editor.percentile(99), check.bare.percentile(99), "ms"),
        "preview_fps": figure(preview.fps, preview.asked, "fps"),
    }
    if load is not None:
        figures["control_latency_studio_ratio"] = figure(load.curated.percentile(99), load.alone.percentile(99), "ms")
    return figures


def studio_samples(studio: StudioResults) -> list[str]:
    """How the studio figures were taken, so a reader can judge them."""
    check, preview = studio.check, studio.preview
    return [
        "studio: one `launcher.py studio` on a copy of exhibits/canal-lanterns (simulated sensors, embedded broker, "
        "the scene rendered offscreen as by default: the render process competes for the CPU), opened in Debian's "
        "Chromium (headless, Playwright, 1280x800) through the one-time login link it prints; the preview pane "
        "streams all along",
        f"studio_check_latency: {check.editor.measured} keystrokes {check.spacing_s * 1000:g} ms apart in the editor, "
        f"alternately `x` typed into the key `title` (an unknown key, a missing one) and Backspace (no problem); "
        f"{check.misspelt} misspellings each showed an error mark (.cm-lintRange-error), {check.fixed} fixes none; "
        f"{check.warmup} warm-up keystrokes left out (the first check after the page loaded: {check.first_ms:.1f} ms); "
        "from the oldest unanswered keystroke to the problems on screen, measured in the page (performance.now(), "
        "body[data-check-ms]); with so few samples the p99 is about the maximum; baseline: the same texts posted "
        "bare to /api/v1/studio/check from the bench's process (http.client, keep-alive, the session cookie and its "
        "CSRF token), request to parsed answer",
        f"  editor: {latency_summary(check.editor, 'keystrokes checked')}; {by_kind(check.editor)}",
        f"  bare:   {latency_summary(check.bare, 'checks answered')}; {by_kind(check.bare)}",
        f"preview_fps: /api/v1/studio/preview.mjpg?width={preview.width} read by http.client with the browser's "
        f"session cookie for {preview.seconds:g} s after its first frame (which came {preview.first_frame_s:.2f} s "
        f"after the request); {preview.frames} whole JPEG parts (FF D8 ... FF D9, Content-Length bytes), "
        f"{preview.mean_bytes / 1024:.1f} KiB on average; baseline: the rate the stream asks the render process for "
        f"({preview.asked:g}/s)",
        *(load_samples(studio.load) if studio.load is not None else []),
    ]


def load_samples(load: StudioLoad) -> list[str]:
    runs = len(load.curated_runs)
    keys = sum(run.keystrokes for run in load.curator)
    checks = sum(run.checks for run in load.curator)
    seconds = sum(run.seconds for run in load.curator)
    browser = "the exhibit's own CPU priority" if load.browser_nice == 0 else f"nice {load.browser_nice}"
    browser = (
        f"(headless, Playwright) at {browser}, without CAP_SYS_NICE (as root it would raise its threads to nice -8; "
        "a user's browser may not), with the session from the login link `run` prints while no account exists"
    )
    panes = sorted({run.pane for run in load.curator}, key=[run.pane for run in load.curator].index)
    return [
        f"control_latency_studio_ratio: the OSC-to-MQTT p99 (OSC at {load.rate:,.0f}/s from a separate process, "
        "through Mosquitto to a separate subscriber) of the render bench's exhibit (the flagship's scene and "
        "recorded visitors) run as `launcher.py run --headless --console-port 0` (scene drawn offscreen), with a "
        f"curator at work in its studio: one Chromium {browser}; /studio open in a tab with the preview pane "
        "(MJPEG from the render process) or the inspector pane (polling /api/v1/studio/inspect every 500 ms), one "
        f"pane a run, alternately, and a keystroke every {load.spacing_s * 1000:g} ms in the editor (`x` into the key "
        "`mappings`, then Backspace: each a draft check in the checker's worker process), from 1 s before the "
        f"messages to their end; over the same exhibit with no studio open (the tab closed, the browser idle); "
        f"{runs} run(s) of each, alternating, pooled; value: with the curator, baseline: without, ratio: with / "
        "without",
        f"  with the curator: {latency_summary(load.curated, 'messages')}",
        *(
            f"    {pane + ':':<10} {latency_summary(load.pane(pane), 'messages')}; each run p99 "
            f"{numbers(tuple(run.percentile(99) for run in load.pane_runs(pane)))} ms"
            for pane in panes
        ),
        f"    the curator: {keys} keystrokes over {seconds:.1f} s, {checks} checks shown; cores busy "
        f"{cores(load.curated_cpu)}",
        f"  without:          {latency_summary(load.alone, 'messages')}",
        f"    each run p99 {numbers(tuple(run.percentile(99) for run in load.alone_runs))} ms; cores busy "
        f"{cores(load.alone_cpu)}",
    ]


def cores(shares: tuple[CpuShare, ...]) -> str:
    """The mean cores busy over the runs, by part."""
    mean = {part: float(np.mean([getattr(share, part) for share in shares])) for part in CpuShare.__dataclass_fields__}
    return (
        f"exhibit {mean['engine']:.2f}, its render process {mean['render']:.2f}, its checker (and other children) "
        f"{mean['others']:.2f}, Chromium {mean['browser']:.2f} (mean of the runs); the exhibit's threads waited for "
        f"a core {mean['engine_wait'] * 1000:.0f} ms a second"
    )


def by_kind(run: Latencies) -> str:
    """The p50 of the misspellings' checks (the even keystrokes: the warm-up is a pair) and of the fixes'."""
    wrong, right = run.ms[0::2], run.ms[1::2]
    if len(wrong) == 0 or len(right) == 0:
        return "too few to split"
    return f"p50 {float(np.median(wrong)):.1f} ms misspelt, {float(np.median(right)):.1f} ms fixed"


def studio_targets(results: dict[str, Figure]) -> list[str]:
    p99, fps = results["studio_check_latency_p99"], results["preview_fps"]
    load = results.get("control_latency_studio_ratio")
    lines = [
        f"target: studio_check_latency_p99 at most {STUDIO_CHECK_P99_LIMIT_MS:g} ms (the flagship)"
        + (f"; control_latency_studio_ratio at most {STUDIO_RATIO_LIMIT:g}" if load is not None else ""),
        f"  studio_check_latency_p99 at most {STUDIO_CHECK_P99_LIMIT_MS:g} ms: "
        f"{verdict(p99['value'] <= STUDIO_CHECK_P99_LIMIT_MS)} ({p99['value']:.1f} ms; {ratio(p99):.2f}x the bare "
        f"checker's p99; preview_fps {fps['value']:.1f} of the {fps['baseline']:g} asked for)",
    ]
    if load is not None:
        lines.append(
            f"  control_latency_studio_ratio at most {STUDIO_RATIO_LIMIT:g}: "
            f"{verdict(ratio(load) <= STUDIO_RATIO_LIMIT)} ({ratio(load):.2f}: p99 {load['value']:.3f} ms with a "
            "curator at work in the studio, "
            f"{load['baseline']:.3f} ms with none)"
        )
    return lines
