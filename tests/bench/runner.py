"""``launcher.py bench``: OSC-to-MQTT latency of the engine against a minimal bridge,
GO and signal updates over the operator console's WebSocket and what 20 watching clients cost the OSC-to-MQTT
latency (``console.py``, :func:`run_console`), the inputs' OSC ingest rate and serial latency against python-osc
and pyserial-asyncio-fast (``inputs.py``), a rule's evaluation rate and a GO's latency to the broker against a plain
lambda and a bare aiomqtt publish (``logic.py``), 512 MQTT fixtures' update rate and PANIC time against
bare aiomqtt loops (``devices.py``), the scene renderer's frame rate against a bare Panda3D loop and
what rendering costs the OSC-to-MQTT latency (``render.py``, :func:`run_render`), the show network's backup
takeover, crash restart to safe and synced cue skew (``site.py``), the curator studio's keystroke
to problems on screen in a real browser against bare checks, its preview's frame rate and what a curator at work in
it costs the OSC-to-MQTT latency (``studio.py``, :func:`run_studio_group`), GO to a cue's sound in the rendered mix
against a bare Panda3D loop and what playing sound costs the OSC-to-MQTT latency (``sound.py``, :func:`run_sound`),
the audience's phones: a tap to the crowd's signal with a thousand phones tapping against none, how many phones the
audience page holds and what they cost the OSC-to-MQTT latency (``audience.py``, :func:`run_audience`), the pose
pipeline's frame rates and latency against a bare MediaPipe loop (``pose.py``), and, last, how fast the
flagship's render process and controller grow in memory over a long run against floors running alongside
(``soak.py``).

:data:`GROUPS` names the groups, in the order they run; ``main(only=...)`` runs some of them.

OSC datagrams are sent from a separate process at 1 kHz, go through the bridge
under test and a private Mosquitto on loopback, and are received by a separate
subscriber. The baseline (``baseline_bridge.py``) and the engine
(``launcher.py run``) are measured the same way, in that order, in one run.
Every figure is informative: no timing here fails a build.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devices.sound.protocol import WorkerSettings
from tests.bench.analytics import (
    FULL_ANALYTICS,
    QUICK_ANALYTICS,
    AnalyticsResults,
    analytics_figures,
    analytics_samples,
    run_analytics,
)
from tests.bench.audience import (
    FULL_AUDIENCE,
    QUICK_AUDIENCE,
    AudienceLoad,
    AudiencePlan,
    AudienceResults,
    AudienceStep,
    CrowdRun,
    TapRun,
    audience_figures,
    audience_samples,
    idle_cores,
    probe_taps,
    probe_work_s,
    start_audience_engine,
    stop_audience_engine,
    with_crowd,
)
from tests.bench.console import (
    FULL_CONSOLE,
    PROBE_TOPIC,
    QUICK_CONSOLE,
    ConsolePlan,
    cpu_seconds,
    go_roundtrip,
    start_console_engine,
    start_watchers,
    stop_console_engine,
    stop_watchers,
    update_latency,
)
from tests.bench.devices import FULL_DEVICES, QUICK_DEVICES, run_devices
from tests.bench.inputs import FULL_INPUTS, QUICK_INPUTS, run_inputs, start_module
from tests.bench.logic import FULL_LOGIC, QUICK_LOGIC, run_logic
from tests.bench.pose import FULL, QUICK, run_pose
from tests.bench.procs import (
    MOSQUITTO_HINT,
    PROBE_EXHIBIT,
    BenchError,
    Children,
    find_mosquitto,
    start_mosquitto,
    wait_for_payload,
)
from tests.bench.render import (
    FULL_RENDER,
    QUICK_RENDER,
    RenderPlan,
    ask_render,
    flagship_scene,
    render_exhibit,
    run_render_fps,
    wait_rendering,
)
from tests.bench.results import (
    ConsoleLoad,
    ConsoleResults,
    CpuShare,
    CuratorRun,
    DeviceResults,
    Figure,
    InputResults,
    Latencies,
    LogicResults,
    PoseResults,
    RenderLatency,
    RenderResults,
    SoakResults,
    StudioLoad,
    StudioResults,
    as_json,
    as_table,
    console_figures,
    device_figures,
    figures,
    input_figures,
    latencies,
    logic_figures,
    pose_figures,
    render_figures,
    soak_figures,
    studio_figures,
)
from tests.bench.site import FULL_SITE, QUICK_SITE, SiteResults, run_site, site_figures, site_samples, site_targets
from tests.bench.soak import FULL_SOAK, QUICK_SOAK, run_soak
from tests.bench.sound import (
    FULL_SOUND,
    LOAD_BLOCK,
    QUICK_SOUND,
    MixHeard,
    SoundLoad,
    SoundPlan,
    SoundResults,
    ask_sound,
    bare_gos,
    engine_gos,
    load_exhibit_text,
    mix_heard,
    sound_figures,
    sound_samples,
    wait_sounding,
    write_sounds,
)
from tests.bench.studio import (
    BROWSER_NICE,
    FULL_STUDIO,
    PANES,
    QUICK_STUDIO,
    StudioPlan,
    cpu_share,
    cpu_snapshot,
    curator_browser,
    run_studio,
    start_load_exhibit,
    stop_load_exhibit,
)
from tests.support.net import free_port

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[2]
BASELINE_TOPIC = "bench/baseline/set"
ENGINE_TOPIC = "exhibit/bench/devices/probe/set"
ENGINE_STATUS = "exhibit/bench/status"
GROUPS = (
    "osc", "console", "inputs", "logic", "devices", "render", "site", "studio", "sound", "audience", "pose",
    "analytics", "soak",
)  # fmt: skip
"""The benchmark's groups, in the order a run takes them: the OSC-to-MQTT latency (engine against a minimal
bridge), the operator console, inputs, show logic, many devices, rendering, the show network, the curator studio,
sound, the audience's phones, pose, and the soak (memory over minutes), which goes last."""
NEEDS_BROKER = frozenset(
    {"osc", "console", "logic", "devices", "render", "site", "studio", "sound", "audience", "soak"}
)
"""The groups that start a private Mosquitto. The studio's keystrokes and preview run on its exhibit's embedded
broker, as a curator's do; its control latency, like the console's and the render's, on Mosquitto."""


@dataclass(frozen=True)
class Plan:
    warmup: int
    measured: int
    rate: float = 1000.0
    settle_s: float = 0.0
    """The first message goes at least this long after the engine was started (the render latency runs only)."""

    @property
    def count(self) -> int:
        return self.warmup + self.measured

    @property
    def send_seconds(self) -> float:
        return self.count / self.rate


def main(
    json_output: bool = False,
    quick: bool = False,
    *,
    soak_minutes: float | None = None,
    only: frozenset[str] | None = None,
) -> int:
    """Run the benchmark and print the figures; 1 if it could not run (timings never fail it), 2 if asked for a
    group that does not exist. ``only``: the :data:`GROUPS` to run (None: all); ``soak_minutes``: how long the
    soak lasts (None: the plan's, 10 minutes, or 1.5 with ``quick``)."""
    chosen = frozenset(GROUPS) if only is None else frozenset(only)
    unknown = sorted(chosen - set(GROUPS))
    if unknown or not chosen:
        what = f"No such benchmark group: {', '.join(unknown)}" if unknown else "No benchmark group chosen"
        print(f"{what}; the groups are {', '.join(GROUPS)}", file=sys.stderr)
        return 2
    if soak_minutes is not None and not soak_minutes > 0:
        print(f"The soak must last a positive number of minutes, not {soak_minutes:g}", file=sys.stderr)
        return 2
    exe = find_mosquitto() or ""  # only the groups in NEEDS_BROKER use it
    if not exe and chosen & NEEDS_BROKER:
        print(MOSQUITTO_HINT, file=sys.stderr)
        return 1
    soak_plan = QUICK_SOAK if quick else FULL_SOAK
    if soak_minutes is not None:
        soak_plan = soak_plan.lasting(soak_minutes)
    plan = Plan(warmup=300, measured=500 if quick else 5000)
    engine = baseline = None
    console: ConsoleResults | None = None
    inputs: InputResults | None = None
    logic: LogicResults | None = None
    devices: DeviceResults | None = None
    render: RenderResults | None = None
    pose: PoseResults | None = None
    studio: StudioResults | None = None
    site: SiteResults | None = None
    sound: SoundResults | None = None
    audience: AudienceResults | None = None
    analytics: AnalyticsResults | None = None
    soak: SoakResults | None = None
    try:
        with sigterm_raises():
            if "osc" in chosen:
                engine, baseline = run_all(exe, plan)
            if "console" in chosen:
                console = run_console(QUICK_CONSOLE if quick else FULL_CONSOLE, exe)
            if "inputs" in chosen:  # before pose: a lighter process to time in
                inputs = run_inputs(QUICK_INPUTS if quick else FULL_INPUTS)
            if "logic" in chosen:  # likewise
                logic = run_logic(QUICK_LOGIC if quick else FULL_LOGIC, exe)
            if "devices" in chosen:  # likewise
                devices = run_devices(QUICK_DEVICES if quick else FULL_DEVICES, exe)
            if "render" in chosen:  # likewise
                render = run_render(QUICK_RENDER if quick else FULL_RENDER, exe)
            if "site" in chosen:  # likewise
                site = run_site(QUICK_SITE if quick else FULL_SITE, exe)
            if "studio" in chosen:  # likewise
                studio = run_studio_group(QUICK_STUDIO if quick else FULL_STUDIO, exe)
            if "sound" in chosen:  # likewise
                sound = run_sound(QUICK_SOUND if quick else FULL_SOUND, exe)
            if "audience" in chosen:  # likewise
                audience = run_audience(QUICK_AUDIENCE if quick else FULL_AUDIENCE, exe)
            if "pose" in chosen:
                pose = run_pose(QUICK if quick else FULL)
            if "analytics" in chosen:  # after pose: MediaPipe once more, then the store on disk
                analytics = run_analytics(QUICK_ANALYTICS if quick else FULL_ANALYTICS)
            if "soak" in chosen:  # last: minutes of four processes side by side
                soak = run_soak(soak_plan, exe)
    except BenchError as exc:
        print(f"The benchmark could not run: {exc}", file=sys.stderr)
        return 1
    results: dict[str, Figure] = {}
    if engine is not None and baseline is not None:
        results |= figures(engine, baseline)
    if console is not None:
        results |= console_figures(console)
    if pose is not None:
        results |= pose_figures(pose)
    if inputs is not None:
        results |= input_figures(inputs)
    if logic is not None:
        results |= logic_figures(logic)
    if devices is not None:
        results |= device_figures(devices)
    if render is not None:
        results |= render_figures(render)
    if studio is not None:
        results |= studio_figures(studio)
    if site is not None:
        results |= site_figures(site)
    if sound is not None:
        results |= sound_figures(sound)
    if audience is not None:
        results |= audience_figures(audience)
    if analytics is not None:
        results |= analytics_figures(analytics)
    if soak is not None:
        results |= soak_figures(soak)
    table = as_table(results, engine, baseline, pose, inputs, logic, devices, render, soak, console, studio)
    if site is not None:
        table += "\n" + "\n".join(site_samples(site) + site_targets(results, site))
    if sound is not None:
        table += "\n" + "\n".join(sound_samples(sound))
    if audience is not None:
        table += "\n" + "\n".join(audience_samples(audience))
    if analytics is not None:
        table += "\n" + "\n".join(analytics_samples(analytics))
    print(as_json(results) if json_output else table)
    return 0


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM as SystemExit: by default it ends this process at once and leaves the broker and engine running."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough; a second must not cut the clean-up short
    raise SystemExit(128 + signum)  # unwinds through the `finally` that stops the children


def run_all(mosquitto: str, plan: Plan) -> tuple[Latencies, Latencies]:
    """(engine, baseline) latencies; every child process is stopped and every temp file removed."""
    with tempfile.TemporaryDirectory(prefix="exhibit-bench-") as tmp:
        children = Children(Path(tmp))
        try:
            mqtt_port = start_mosquitto(children, mosquitto)
            log.info("mosquitto listening on 127.0.0.1:%d", mqtt_port)
            baseline = run_baseline(children, mqtt_port, plan)
            engine = run_engine(children, mqtt_port, plan)
        finally:
            children.stop_all()
    return engine, baseline


def run_baseline(children: Children, mqtt_port: int, plan: Plan) -> Latencies:
    udp_port = free_port(socket.SOCK_DGRAM)
    children.script("baseline", "baseline_bridge.py", "--osc-port", udp_port, "--mqtt-port", mqtt_port)
    children.wait_ready("baseline", timeout=20.0)
    log.info("baseline bridge ready; sending %d messages", plan.count)
    result = measure(children, "baseline", BASELINE_TOPIC, mqtt_port, udp_port, plan)
    children.stop("baseline")
    return result


def run_engine(children: Children, mqtt_port: int, plan: Plan) -> Latencies:
    udp_port = free_port(socket.SOCK_DGRAM)
    exhibit = children.workdir / "bench-exhibit.yaml"
    exhibit.write_text(PROBE_EXHIBIT.format(exhibit_id="bench", udp_port=udp_port), encoding="utf-8")
    argv = [sys.executable, "launcher.py", "run", str(exhibit), "--broker", f"mqtt://127.0.0.1:{mqtt_port}"]
    proc = children.start("engine", argv, cwd=ROOT)
    # The engine opens its OSC port before it connects, so `online` means it is listening too.
    if not wait_for_payload(mqtt_port, ENGINE_STATUS, b"online", timeout=20.0, alive=proc):
        state = f"exited with status {proc.returncode}" if proc.poll() is not None else "did not say online in 20 s"
        raise children.failed("engine", f"the engine {state}")
    log.info("engine online; sending %d messages", plan.count)
    result = measure(children, "engine", ENGINE_TOPIC, mqtt_port, udp_port, plan)
    code = children.stop("engine")
    if code != 0:
        log.warning("the engine exited with status %s after SIGTERM:\n%s", code, children.log_text("engine"))
    return result


def measure(children: Children, name: str, topic: str, mqtt_port: int, udp_port: int, plan: Plan) -> Latencies:
    """Send ``plan.count`` messages to ``udp_port`` and time their arrival on ``topic``."""
    sent_file = children.workdir / f"{name}-sent.npy"
    received_file = children.workdir / f"{name}-received.npy"
    sub = f"{name}-subscriber"
    children.script(sub, "subscriber.py", "--port", mqtt_port, "--topic", topic, "--out", received_file)
    children.wait_ready(sub, timeout=10.0)

    sender = f"{name}-sender"
    started = time.monotonic()
    children.script(
        sender, "sender.py", "--port", udp_port, "--count", plan.count, "--rate", plan.rate, "--out", sent_file
    )
    children.finish(sender, timeout=plan.send_seconds + 20.0)
    log.info("%s: sent %d messages in %.1f s", name, plan.count, time.monotonic() - started)

    stdin = children.procs[sub].stdin
    assert stdin is not None
    stdin.write("done\n")  # the subscriber drains, saves and exits
    stdin.flush()
    children.finish(sub, timeout=15.0)

    result = latencies(np.load(sent_file), np.load(received_file), plan.warmup)
    if len(result.ms) == 0:
        raise BenchError(f"none of the {plan.measured} measured messages reached {topic} through the {name}")
    log.info("%s: %d of %d measured messages arrived", name, len(result.ms), plan.measured)
    return result


# --- rendering: its frame rate (render.py) and its cost to the OSC-to-MQTT latency ----------------------------------


def run_render(plan: RenderPlan, mosquitto: str) -> RenderResults:
    """The renderer's frame rate against a bare Panda3D loop, then the control latency with and without it."""
    fps = run_render_fps(plan)
    latency = run_render_latency(plan, mosquitto)
    return RenderResults(fps=fps, latency=latency)


def run_render_latency(plan: RenderPlan, mosquitto: str) -> RenderLatency:
    """The OSC bench's measurement through the exhibit with the flagship's scene, rendering off and on, alternating
    (off first, then on first, ...) so that drift cancels; every child is stopped and every temp file removed."""
    osc = Plan(warmup=plan.latency_warmup, measured=plan.messages, settle_s=plan.settle_s)
    scene = flagship_scene()
    runs: dict[bool, list[Latencies]] = {False: [], True: []}
    seen: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="exhibit-bench-render-latency-") as tmp:
        children = Children(Path(tmp))
        try:
            mqtt_port = start_mosquitto(children, mosquitto)
            for index in range(plan.rounds):
                for rendering in (False, True) if index % 2 == 0 else (True, False):
                    result, state = run_scene_engine(children, mqtt_port, osc, scene, rendering, index)
                    runs[rendering].append(result)
                    if state is not None:
                        seen.append(state)
        finally:
            children.stop_all()
    latency = RenderLatency(
        on=pooled(runs[True]),
        off=pooled(runs[False]),
        runs=plan.rounds,
        rate=osc.rate,
        render_fps=tuple(float(state["fps"]) for state in seen),
        render_p99_ms=tuple(float(state["frame_p99_ms"]) for state in seen),
    )
    log.info(
        "render latency: p99 %.3f ms rendering, %.3f ms not", latency.on.percentile(99), latency.off.percentile(99)
    )
    return latency


def run_scene_engine(
    children: Children, mqtt_port: int, plan: Plan, scene: str, rendering: bool, index: int
) -> tuple[Latencies, dict[str, float] | None]:
    """One engine process (``launcher.py run --headless``, or with ``--no-render``) measured as :func:`run_engine` is;
    with rendering, also the ``render.*`` signals after the messages, which must show it drew all along."""
    mode = "offscreen" if rendering else "off"
    name = f"scene-engine-{mode}-{index}"
    exhibit_id = f"bench-render-{mode}-{index}"  # its own status topic: no retained `online` of an earlier run
    udp_port = free_port(socket.SOCK_DGRAM)
    exhibit = children.workdir / f"{exhibit_id}.yaml"
    exhibit.write_text(render_exhibit(exhibit_id, udp_port, scene), encoding="utf-8")
    started = time.monotonic()
    proc = start_module(children, name, "render", "serve", exhibit, "--broker-port", mqtt_port, "--render", mode)
    if not wait_for_payload(mqtt_port, f"exhibit/{exhibit_id}/status", b"online", timeout=30.0, alive=proc):
        state = f"exited with status {proc.returncode}" if proc.poll() is not None else "did not say online in 30 s"
        raise children.failed(name, f"the engine {state}")
    before = wait_rendering(children, name, proc, timeout=60.0) if rendering else None
    # Both kinds measured as long after their start: past the start-up's one-off work, and at the same point of
    # the replayed visitors, so the pose sensor's load is the same.
    time.sleep(max(0.0, started + plan.settle_s - time.monotonic()))
    log.info("%s online%s; sending %d messages", name, " and drawing" if rendering else "", plan.count)
    result = measure(children, name, f"exhibit/{exhibit_id}/devices/probe/set", mqtt_port, udp_port, plan)
    after = ask_render(children, name) if rendering else None
    if (
        before is not None
        and after is not None
        and (after.get("status") != "running" or not after.get("fps") or after.get("restarts") != before["restarts"])
    ):
        raise children.failed(name, f"the renderer did not keep drawing while the messages went through: {after}")
    code = children.stop(name)
    if code != 0:
        log.warning("%s exited with status %s after SIGTERM:\n%s", name, code, children.log_text(name))
    return result, after


def pooled(runs: list[Latencies]) -> Latencies:
    return Latencies(ms=np.concatenate([run.ms for run in runs]), measured=sum(run.measured for run in runs))


# --- the operator console (console.py): GO and updates over its WebSocket, and what watchers cost control ------------


def run_console(plan: ConsolePlan, mosquitto: str) -> ConsoleResults:
    """GO and signal updates over the console's WebSocket, then the OSC bench's measurement with the watching
    clients and without, alternating (without first, then with first, ...) so that drift cancels, all through one
    engine process; every child is stopped and every temp file removed."""
    osc = Plan(warmup=plan.latency_warmup, measured=plan.messages)
    runs: dict[bool, list[Latencies]] = {False: [], True: []}
    busy: dict[bool, list[float]] = {False: [], True: []}
    watchers = []
    with tempfile.TemporaryDirectory(prefix="exhibit-bench-console-") as tmp:
        children = Children(Path(tmp))
        try:
            mqtt_port = start_mosquitto(children, mosquitto)
            engine = start_console_engine(children, mqtt_port)
            go = go_roundtrip(children, engine, mqtt_port, plan)
            update = update_latency(children, engine, mqtt_port, plan)
            for index in range(plan.rounds):
                for watched in (False, True) if index % 2 == 0 else (True, False):
                    name = f"console-{'watched' if watched else 'alone'}-{index}"
                    if watched:
                        start_watchers(children, engine, f"{name}-clients", plan)
                    cpu, started = cpu_seconds(engine.pid), time.monotonic()
                    runs[watched].append(measure(children, name, PROBE_TOPIC, mqtt_port, engine.udp_port, osc))
                    busy[watched].append((cpu_seconds(engine.pid) - cpu) / (time.monotonic() - started))
                    if watched:
                        watchers.append(stop_watchers(children, f"{name}-clients"))
            stop_console_engine(children)
        finally:
            children.stop_all()
    load = ConsoleLoad(
        watched=pooled(runs[True]),
        alone=pooled(runs[False]),
        watched_p99=tuple(run.percentile(99) for run in runs[True]),
        alone_p99=tuple(run.percentile(99) for run in runs[False]),
        runs=plan.rounds,
        rate=osc.rate,
        clients=plan.clients,
        signals=plan.signals,
        watched_cores=tuple(busy[True]),
        alone_cores=tuple(busy[False]),
        watchers=tuple(watchers),
    )
    log.info("console load: p99 %.3f ms watched, %.3f ms not", load.watched.percentile(99), load.alone.percentile(99))
    return ConsoleResults(go=go, update=update, load=load)


# --- the curator studio (studio.py): keystrokes and preview, then what a curator at work costs control ----------------


def run_studio_group(plan: StudioPlan, mosquitto: str) -> StudioResults:
    """The studio's keystroke and preview figures (``launcher.py studio``), then the control latency of a running
    exhibit with a curator at work in its studio and without (:func:`run_studio_load`)."""
    return dataclasses.replace(run_studio(plan), load=run_studio_load(plan, mosquitto))


def run_studio_load(plan: StudioPlan, mosquitto: str) -> StudioLoad:
    """The OSC bench's measurement through one running exhibit (``launcher.py run --headless`` with its console),
    with a curator at work in its studio (Chromium: the studio page open on a pane, a keystroke every
    ``plan.spacing_s``) and with no studio open (no tab; the idle browser stays), alternating (without first, then
    with first, ...) so that drift cancels; every child is stopped and every temp file removed."""
    osc = Plan(warmup=plan.latency_warmup, measured=plan.messages)
    runs: dict[bool, list[Latencies]] = {False: [], True: []}
    cpu: dict[bool, list[CpuShare]] = {False: [], True: []}
    curator_runs: list[CuratorRun] = []
    with tempfile.TemporaryDirectory(prefix="exhibit-bench-studio-load-") as tmp:
        children = Children(Path(tmp))
        try:
            mqtt_port = start_mosquitto(children, mosquitto)
            started = time.monotonic()
            exhibit = start_load_exhibit(children, mqtt_port)
            with curator_browser(exhibit, children, BROWSER_NICE) as curator:
                curator.warm_up()
                log.info("studio load: exhibit online and drawing after %.1f s", time.monotonic() - started)
                for index in range(plan.rounds):
                    for curated in (False, True) if index % 2 == 0 else (True, False):
                        name = f"studio-{'curated' if curated else 'alone'}-{index}"

                        def measured(name: str = name) -> tuple[Latencies, CpuShare]:
                            before, began = cpu_snapshot(exhibit.pid), time.monotonic()
                            result = measure(children, name, exhibit.topic, mqtt_port, exhibit.udp_port, osc)
                            return result, cpu_share(before, cpu_snapshot(exhibit.pid), time.monotonic() - began)

                        if curated:
                            pane = PANES[index % len(PANES)]
                            (result, share), did = curator.work(pane, measured, plan.spacing_s)
                            curator_runs.append(did)
                        else:
                            result, share = measured()
                        runs[curated].append(result)
                        cpu[curated].append(share)
            stop_load_exhibit(children)
        finally:
            children.stop_all()
    load = StudioLoad(
        curated=pooled(runs[True]),
        alone=pooled(runs[False]),
        curated_runs=tuple(runs[True]),
        alone_runs=tuple(runs[False]),
        curated_cpu=tuple(cpu[True]),
        alone_cpu=tuple(cpu[False]),
        curator=tuple(curator_runs),
        rate=osc.rate,
        spacing_s=plan.spacing_s,
        browser_nice=BROWSER_NICE,
    )
    log.info("studio load: p99 %.3f ms curated, %.3f ms not", load.curated.percentile(99), load.alone.percentile(99))
    return load


# --- sound (sound.py): GO to the beep in the rendered mix, then what playing sound costs control --------------------


def run_sound(plan: SoundPlan, mosquitto: str) -> SoundResults:
    """GO to onset in the mix, a bare Panda3D loop first, then the OSC bench's measurement through the exhibit with
    sound and without, alternating (without first, then with first, ...) so that drift cancels; every child is
    stopped and every temp file removed."""
    osc = Plan(warmup=plan.latency_warmup, measured=plan.messages, settle_s=plan.settle_s)
    runs: dict[bool, list[Latencies]] = {False: [], True: []}
    mixes: list[MixHeard] = []
    with tempfile.TemporaryDirectory(prefix="exhibit-bench-sound-") as tmp:
        children = Children(Path(tmp))
        try:
            mqtt_port = start_mosquitto(children, mosquitto)
            bare = bare_gos(children, plan)
            engine = engine_gos(children, mqtt_port, plan)
            log.info("sound: GO to onset p99 %.2f ms (bare loop %.2f ms)", engine.percentile(99), bare.percentile(99))
            for index in range(plan.rounds):
                for sounding in (False, True) if index % 2 == 0 else (True, False):
                    result, mix = run_sound_engine(children, mqtt_port, osc, sounding, index)
                    runs[sounding].append(result)
                    if mix is not None:
                        mixes.append(mix)
        finally:
            children.stop_all()
    load = SoundLoad(
        sounding=pooled(runs[True]),
        silent=pooled(runs[False]),
        sounding_p99=tuple(run.percentile(99) for run in runs[True]),
        silent_p99=tuple(run.percentile(99) for run in runs[False]),
        runs=plan.rounds,
        rate=osc.rate,
        mixes=tuple(mixes),
    )
    log.info("sound load: p99 %.3f ms with sound, %.3f ms without", load.sounding.percentile(99),
             load.silent.percentile(99))  # fmt: skip
    return SoundResults(
        engine=engine, bare=bare, settings=WorkerSettings(), warmup=plan.warmup, spacing_s=plan.spacing_s, load=load
    )


def run_sound_engine(
    children: Children, mqtt_port: int, plan: Plan, sounding: bool, index: int
) -> tuple[Latencies, MixHeard | None]:
    """One engine process (``python -m tests.bench.sound serve``) measured as :func:`run_engine` is; with sound,
    its mix rendered to a WAV, which must show the sound played all along."""
    mode = "sounding" if sounding else "silent"
    name = f"sound-engine-{mode}-{index}"
    exhibit_id = f"bench-sound-{mode}-{index}"  # its own status topic: no retained `online` of an earlier run
    udp_port = free_port(socket.SOCK_DGRAM)
    write_sounds(children.workdir)
    exhibit = children.workdir / f"{exhibit_id}.yaml"
    exhibit.write_text(load_exhibit_text(exhibit_id, udp_port, sounding), encoding="utf-8")
    render = children.workdir / f"{name}.wav"
    extra = ["--render-to", render, "--block", LOAD_BLOCK] if sounding else []
    started = time.monotonic()
    proc = start_module(children, name, "sound", "serve", exhibit, "--broker-port", mqtt_port, *extra)
    if not wait_for_payload(mqtt_port, f"exhibit/{exhibit_id}/status", b"online", timeout=30.0, alive=proc):
        state = f"exited with status {proc.returncode}" if proc.poll() is not None else "did not say online in 30 s"
        raise children.failed(name, f"the engine {state}")
    if sounding:
        wait_sounding(children, name)
    time.sleep(max(0.0, started + plan.settle_s - time.monotonic()))
    log.info("%s online%s; sending %d messages", name, " and sounding" if sounding else "", plan.count)
    began = time.monotonic()
    result = measure(children, name, f"exhibit/{exhibit_id}/devices/probe/set", mqtt_port, udp_port, plan)
    ended = time.monotonic()
    health = ask_sound(children, name) if sounding else None
    if health is not None and (health.get("status") != "ok" or health.get("errors")):
        raise children.failed(name, f"the sound device was not well while the messages went through: {health}")
    code = children.stop(name)
    if code != 0:
        log.warning("%s exited with status %s after SIGTERM:\n%s", name, code, children.log_text(name))
    return result, None if health is None else mix_heard(render, began, ended, health)


# --- the audience (audience.py): a tap to the crowd's signal, phones held, and what they cost control ---------------


def run_audience(plan: AudiencePlan, mosquitto: str) -> AudienceResults:
    """Through one engine process with an audience page (``python -m tests.bench.audience serve``): the probe
    phone's taps to their count at the broker with no crowd, then with ``plan.crowd`` phones tapping; the OSC
    bench's measurement with that crowd and without, alternating (without first, then with first, ...) so that
    drift cancels; then ever larger crowds while the OSC bench measures, up to the first that is not held. Every
    child is stopped and every temp file removed."""
    osc = Plan(warmup=plan.latency_warmup, measured=plan.messages)
    osc_s = osc.send_seconds + 3.0  # the subscriber's start and drain, and the sender's
    runs: dict[bool, list[Latencies]] = {False: [], True: []}
    crowds: list[CrowdRun] = []
    cores: list[float] = []
    steps: list[AudienceStep] = []
    with tempfile.TemporaryDirectory(prefix="exhibit-bench-audience-") as tmp:
        children = Children(Path(tmp))
        try:
            mqtt_port = start_mosquitto(children, mosquitto)
            engine = start_audience_engine(children, mqtt_port)
            log.info("audience: engine online, its page on port %d", engine.web_port)
            idle_taps = TapRun(probe_taps(children, engine, mqtt_port, plan, "tap-probe-alone"), crowd=None)
            latency, crowd = with_crowd(
                children, engine, "tap-crowd", plan.crowd, plan, probe_work_s(plan),
                lambda: probe_taps(children, engine, mqtt_port, plan, "tap-probe-crowd"),
            )  # fmt: skip
            crowd_taps = TapRun(latency, crowd)
            for index in range(plan.rounds):
                for crowded in (False, True) if index % 2 == 0 else (True, False):
                    name = f"audience-{'crowd' if crowded else 'alone'}-{index}"

                    def measured(name: str = name) -> Latencies:
                        return measure(children, name, engine.control_topic, mqtt_port, engine.udp_port, osc)

                    if crowded:
                        result, crowd = with_crowd(children, engine, name, plan.crowd, plan, osc_s, measured)
                        crowds.append(crowd)
                    else:
                        result, busy = idle_cores(engine, measured)
                        cores.append(busy)
                    runs[crowded].append(result)
            idle_p99 = pooled(runs[False]).percentile(99)
            for phones in plan.steps:
                name = f"audience-step-{phones}"

                def stepped(name: str = name) -> Latencies:
                    return pooled(
                        [
                            measure(children, f"{name}-{run}", engine.control_topic, mqtt_port, engine.udp_port, osc)
                            for run in range(plan.step_runs)
                        ]
                    )

                control, crowd = with_crowd(children, engine, name, phones, plan, osc_s * plan.step_runs, stepped)
                steps.append(AudienceStep(crowd=crowd, control=control, idle_p99=idle_p99, rate=plan.rate))
                log.info("audience: %d phones %s", phones, "held" if steps[-1].passed else steps[-1].failures())
                if not steps[-1].passed:
                    break
            stop_audience_engine(children, engine)
        finally:
            children.stop_all()
    load = AudienceLoad(
        crowded=pooled(runs[True]),
        idle=pooled(runs[False]),
        crowded_p99=tuple(run.percentile(99) for run in runs[True]),
        idle_p99=tuple(run.percentile(99) for run in runs[False]),
        crowds=tuple(crowds),
        idle_engine_cores=tuple(cores),
        runs=plan.rounds,
        rate=osc.rate,
    )
    log.info("audience load: p99 %.3f ms with the crowd, %.3f ms without", load.crowded.percentile(99),
             load.idle.percentile(99))  # fmt: skip
    return AudienceResults(idle_taps=idle_taps, crowd_taps=crowd_taps, load=load, steps=tuple(steps), plan=plan)
