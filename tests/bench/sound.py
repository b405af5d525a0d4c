"""``launcher.py bench``: sound (issue 18). Both figures are heard, not inferred: the sound process mixes into a
WAV file in real time (``EXHIBIT_AUDIO_RENDER``, OpenAL Soft's ``wave`` back-end, 64-frame blocks at 48 kHz), which
is read back once the process has closed it.

``sound_go_latency_p99``: a show (``engine.runtime``, as ``launcher.py run`` wires it, on the bench's Mosquitto) in
this process, whose one cue plays a 50 ms beep; GO (``show.go``) is pressed ``gos`` times, 0.15 to 0.25 s apart at
random (so the GOs do not lock to the mixer's blocks), ``time.monotonic()`` taken just before each. The file's first
sample is at ``closed_at - frames / rate`` (the sound device's ``closed_at``: when the sound process closed its
output); each GO's latency is from the GO to the first onset after it in the file. Baseline: the same beep at the
same times played by a bare Panda3D loop (``AudioSound.play()`` on an ``AudioManager`` with the same OpenAL Soft
configuration, in a process of its own): what OpenAL itself takes, one mixing block and its voice start. On a
sound card the card's own buffer comes on top of both.

``control_latency_sound_ratio``: the OSC bench's exhibit (an OSC float mapped to an MQTT device) plus a state
machine that changes state every 0.25 s, run by ``python -m tests.bench.sound serve`` (what ``launcher.py run
--no-render --no-console`` does); with sound its ``sounds:`` hold a looping hum that starts with the show and a
beep each state plays as it is entered; without, the same exhibit with no sounds (the states change, play nothing).
The OSC-to-MQTT p99 with sound over without, runs alternating; the mixes of the runs with sound are read back to
show that the hum and the beeps were heard all along. The runs themselves are driven from ``runner.py``
(``run_sound``), which shares the OSC bench's sender, subscriber and broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from content.audio_synth import tone, write_wav
from devices.sound.device import BLOCK_ENV, RENDER_ENV
from devices.sound.protocol import WorkerSettings
from devices.sound.wavfile import level_db, onsets, read_wav, segment
from engine import session
from engine.logs import setup_logging
from engine.runtime import Runtime, RuntimeOptions
from engine.sound_model import SOUND_DEVICE
from engine.validate import load_exhibit
from launcher import build_registry
from tests.bench.logic import ENGINE_LOGGERS, engine_log_to
from tests.bench.procs import PROBE_EXHIBIT, BenchError, Children, bench_runtime
from tests.bench.results import Figure, Latencies, figure, latency_summary, verdict
from tests.bench.stdin_state import answer_questions, ask_child

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[2]
GO_LIMIT_MS = 20.0
"""The issue's target for GO to sound: 20 ms plus the back-end's buffer."""
SOUND_RATIO_LIMIT = 1.1
LOAD_BLOCK = 1024
"""Frames per mixing block in the control-latency runs with sound: OpenAL Soft's default period, so the mixer wakes
as often as it does for a sound card (the GO runs mix in 64-frame blocks, to time onsets within 1.3 ms)."""
CUE_LIST = "main"
BEEP_S = 0.05
BEEP_HZ = 1000.0
BEEP_LEVEL = 0.5
HUM_LEVEL = 0.1
ONSET_THRESHOLD = 0.01
"""Full scale; the mix is exact digital silence between beeps (no dither), so any beep crosses it at its start."""
BEEP_THRESHOLD = 0.2
"""Above the hum's peak (0.1, centred: 0.07 a side) and below a beep's (0.5: 0.35 a side): the beeps over the hum."""
EARLY_S = 0.01
"""An onset may lie this far before its GO in the file: a block mixed just after the GO begins a block's time
earlier, and the file's origin is known to a block or two."""
LATE_S = 0.12
"""The first onset more than this after a GO is not its own (GOs are at least 0.15 s apart)."""
LEAD_S = 0.5
"""Silence before the first GO (the output is open and mixing), and after the last."""
STATE_S = 0.25
"""The sound load's state machine changes state (and plays its beep) this often."""
RENDERED = "mix"
"""The prefix of the serve child's answer line (any other line on its stdout is not ours)."""


@dataclass(frozen=True)
class SoundPlan:
    gos: int
    """GOs timed, after ``warmup`` (the first plays of a sound)."""
    rounds: int
    """Control latency: pairs of engine runs, one with sound and one without, alternating which goes first."""
    messages: int
    """Control latency: OSC messages timed in every engine run, after ``latency_warmup``."""
    warmup: int = 3
    spacing_s: tuple[float, float] = (0.15, 0.25)
    """Between two GOs: uniformly at random in this range (seeded: the engine and the bare loop get the same)."""
    latency_warmup: int = 300
    settle_s: float = 6.0
    """Control latency: the first message goes at least this long after the engine was started (and, with sound,
    once its sound process is mixing), so the start-up's one-off work is over in both kinds of run. Measured: with
    2 s the sound process was still starting (its imports, the files' peaks) in some runs, whose p99 went from about
    1 ms to 5 to 20 ms, with and without sound alike; with 6 s every run's p99 is within 0.2 ms of the others."""
    seed: int = 18

    def gaps(self) -> list[float]:
        """The time before each GO (the first after :data:`LEAD_S`)."""
        rng = np.random.default_rng(self.seed)
        low, high = self.spacing_s
        return [LEAD_S, *rng.uniform(low, high, self.warmup + self.gos - 1).tolist()]


QUICK_SOUND = SoundPlan(gos=30, rounds=2, messages=500)
FULL_SOUND = SoundPlan(gos=150, rounds=8, messages=2500)


@dataclass(frozen=True)
class GoRun:
    """One run of GOs, as heard in its mix."""

    ms: np.ndarray
    """Each timed GO's latency (ms) to its onset, for the GOs whose onset was found."""
    gos: int
    """GOs timed (after the warm-up)."""
    seconds: float
    """Length of the rendered mix."""

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.ms, q))


@dataclass(frozen=True)
class MixHeard:
    """What one engine run with sound left in its mix."""

    seconds: float
    window_s: float
    """How long the messages took (from the subscriber's start to the last message's drain): the part of the mix
    that was checked."""
    hum_db: float
    """The median level of 20 ms windows of the left channel in that part (the hum; beeps take a fifth of it)."""
    beeps: int
    """Beeps heard over the hum in that part."""
    health: dict[str, Any]
    """The sound device's health just after the run's messages."""


@dataclass(frozen=True)
class SoundLoad:
    """OSC-to-MQTT latency through the same exhibit with sounds playing and without, pooled over runs."""

    sounding: Latencies
    silent: Latencies
    sounding_p99: tuple[float, ...]
    silent_p99: tuple[float, ...]
    runs: int
    rate: float
    mixes: tuple[MixHeard, ...]


@dataclass(frozen=True)
class SoundResults:
    engine: GoRun
    bare: GoRun
    settings: WorkerSettings
    warmup: int
    spacing_s: tuple[float, float]
    load: SoundLoad

    @property
    def buffer_ms(self) -> float:
        """The back-end's mixing block: a sound starts at the next block mixed."""
        return self.settings.period_size / self.settings.frequency * 1000


# --- the sounds and the exhibits ------------------------------------------------------------------------------------


def beep(seconds: float = BEEP_S, hz: float = BEEP_HZ, level: float = BEEP_LEVEL, rate: int = 48_000) -> np.ndarray:
    """A sine with a 0.5 ms attack: its onset is its first sample, give or take a few."""
    t = np.arange(int(seconds * rate)) / rate
    ramp = np.clip(np.minimum(t, seconds - t) / 0.0005, 0.0, 1.0)
    return level * np.sin(2 * np.pi * hz * t) * ramp


def write_sounds(folder: Path) -> None:
    """``beep.wav`` and ``hum.wav`` (2 s of 220 Hz, looped) in ``folder``, mono."""
    write_wav(folder / "beep.wav", beep())
    write_wav(folder / "hum.wav", tone(2.0, 220.0, HUM_LEVEL))


def go_exhibit() -> str:
    """One sound and one cue that plays it; no guard (the GOs are 0.15 s apart at least)."""
    return f"""\
format_version: 1
id: bench-sound
title: {{en: Sound benchmark}}
sounds:
  beep: {{file: beep.wav}}
cues:
  {CUE_LIST}:
    guard: 0s
    cues:
      - {{id: "1", actions: [{{sound: beep}}]}}
"""


def load_exhibit_text(exhibit_id: str, udp_port: int, sounding: bool) -> str:
    """The OSC bench's exhibit and a state machine ticking every :data:`STATE_S`; with ``sounding``, a looping hum
    playing from the start and a beep at every change of state."""
    play = "[{sound: beep}]" if sounding else "[]"
    sounds = (
        "sounds:\n  hum: {file: hum.wav, loop: true, autoplay: true}\n  beep: {file: beep.wav}\n" if sounding else ""
    )
    probe = PROBE_EXHIBIT.format(exhibit_id=exhibit_id, udp_port=udp_port)
    return f"""{probe}states:
  pulse:
    initial: tick
    states:
      tick: {{enter: {play}, transitions: [{{to: tock, after: {STATE_S}s}}]}}
      tock: {{enter: {play}, transitions: [{{to: tick, after: {STATE_S}s}}]}}
{sounds}"""


# --- sound_go_latency_p99: GO to onset -----------------------------------------------------------------------------


@contextlib.contextmanager
def rendering_to(path: Path) -> Iterator[None]:
    """``EXHIBIT_AUDIO_RENDER`` for a runtime started in this process, and back as it was."""
    before = os.environ.get(RENDER_ENV)
    os.environ[RENDER_ENV] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(RENDER_ENV, None)
        else:
            os.environ[RENDER_ENV] = before


def engine_gos(children: Children, port: int, plan: SoundPlan) -> GoRun:
    """The show in this process, GO after GO; their latencies as heard in its mix."""
    workdir = children.workdir
    write_sounds(workdir)
    render = workdir / "engine-mix.wav"
    with rendering_to(render), engine_log_to(workdir / "sound-engine.log", (*ENGINE_LOGGERS, "sensors")):
        runtime = bench_runtime(go_exhibit(), str(workdir / "bench-sound.yaml"), port, workdir)
        gos = asyncio.run(press_go(runtime, plan))
    closed = getattr(runtime.devices[SOUND_DEVICE], "closed_at", None)
    if closed is None:
        raise BenchError(f"the sound process never said it closed its output; see {workdir / 'sound-engine.log'}")
    return heard(render, closed, gos, plan)


async def press_go(runtime: Runtime, plan: SoundPlan) -> list[float]:
    await runtime.start()
    try:
        sound = runtime.devices[SOUND_DEVICE]
        deadline = time.monotonic() + 30.0
        while sound.health.status != "ok":
            if time.monotonic() > deadline:
                raise BenchError(f"the sound device was not ok within 30 s: {sound.health.as_dict()}")
            await asyncio.sleep(0.05)
        show = runtime.show
        assert show is not None
        gos: list[float] = []
        at = time.monotonic()
        for gap in plan.gaps():
            at += gap
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            gos.append(time.monotonic())
            if not show.go(CUE_LIST, "1"):
                raise BenchError(f"GO {len(gos)} was refused")
        await asyncio.sleep(LEAD_S)
        return gos
    finally:
        await runtime.stop()


def bare_gos(children: Children, plan: SoundPlan) -> GoRun:
    """The same beeps at the same times from a bare Panda3D loop in a process of its own."""
    workdir = children.workdir
    write_sounds(workdir)
    render, gaps, out = workdir / "bare-mix.wav", workdir / "bare-gaps.json", workdir / "bare.json"
    gaps.write_text(json.dumps(plan.gaps()), encoding="utf-8")
    argv = [sys.executable, "-m", "tests.bench.sound", "bare", "--beep", str(workdir / "beep.wav")]
    argv += ["--render-to", str(render), "--gaps", str(gaps), "--out", str(out)]
    children.start("sound-bare", argv, cwd=ROOT)
    children.finish("sound-bare", timeout=30.0 + sum(plan.gaps()))
    result = json.loads(out.read_text(encoding="utf-8"))
    return heard(render, float(result["closed_at"]), list(result["gos"]), plan)


def play_bare(beep_file: Path, render_to: Path, gaps: list[float]) -> dict[str, Any]:
    """The bare loop (in its own process): the worker's OpenAL Soft configuration, one ``AudioManager``, one sound,
    ``play()`` at each time; the manager shut down at the end (which completes the file)."""
    from devices.sound import worker

    settings = WorkerSettings(render_to=str(render_to))
    conf = render_to.with_suffix(".conf")
    conf.write_text(worker._alsoft_conf(settings), encoding="utf-8")
    os.environ["ALSOFT_CONF"] = str(conf)
    os.environ[worker.RENDER_ENV] = str(render_to)
    os.environ.setdefault("ALSOFT_LOGLEVEL", "0")
    os.environ.pop("ALSOFT_DRIVERS", None)
    import panda3d.core as core

    core.loadPrcFileData("bare sound", "audio-library-name p3openal_audio")
    mgr = core.AudioManager.createAudioManager()
    if not mgr.isValid():
        raise BenchError("Panda3D's OpenAL did not open the wave back-end")
    sound = mgr.getSound(core.Filename.fromOsSpecific(str(beep_file)))
    gos: list[float] = []
    at = time.monotonic()
    for gap in gaps:
        at += gap
        time.sleep(max(0.0, at - time.monotonic()))
        gos.append(time.monotonic())
        sound.play()
    time.sleep(LEAD_S)
    mgr.stopAllSounds()
    closing = time.monotonic()
    mgr.shutdown()
    return {"gos": gos, "closed_at": closing}


def heard(render: Path, closed_at: float, gos: list[float], plan: SoundPlan) -> GoRun:
    """Each timed GO's latency to the first onset after it in the mix whose last sample is at ``closed_at``."""
    samples, rate = read_wav(render)
    origin = closed_at - len(samples) / rate
    found = np.asarray(onsets(samples, rate, threshold=ONSET_THRESHOLD), dtype=np.float64) + origin
    timed = gos[plan.warmup :]
    ms = []
    for go in timed:
        near = found[(found >= go - EARLY_S) & (found < go + LATE_S)]
        if len(near):
            ms.append((float(near[0]) - go) * 1000)
    if len(ms) < 0.9 * len(timed):
        raise BenchError(
            f"only {len(ms)} of {len(timed)} beeps were found in {render} ({len(found)} onsets in "
            f"{len(samples) / rate:.1f} s): the mix does not hold the GOs"
        )
    return GoRun(ms=np.asarray(ms, dtype=np.float64), gos=len(timed), seconds=len(samples) / rate)


# --- control_latency_sound_ratio: the engine child and its mix -----------------------------------------------------


def sound_state(runtime: Runtime) -> dict[str, Any]:
    device = runtime.devices.get(SOUND_DEVICE)
    return {"status": "off"} if device is None else device.health.as_dict()


def closed_file(render: Path) -> Path:
    """Where the serve child writes when its sound process closed ``render`` (its last sample)."""
    return render.with_suffix(".closed.json")


async def serve(path: Path, broker_port: int, render_to: Path | None, block: int | None = None) -> None:
    """The exhibit as ``launcher.py run --no-render --no-console --broker ...`` runs it (its mix into ``render_to``),
    and a reader of this process's stdin that answers ``mix`` with the sound device's health; stops on SIGTERM or
    EOF, then writes the sound device's ``closed_at`` to :func:`closed_file`."""
    if render_to is not None:
        os.environ[RENDER_ENV] = str(render_to)
    if block is not None:
        os.environ[BLOCK_ENV] = str(block)
    registry = build_registry()
    exhibit = load_exhibit(path, registry)
    options = RuntimeOptions(base_dir=path.parent, broker=f"mqtt://127.0.0.1:{broker_port}", console=False)
    ran: list[Runtime] = []

    async def companion(runtime: Runtime, stop: asyncio.Event) -> None:
        ran.append(runtime)
        await answer(runtime, stop)

    await session.serve(exhibit, registry, options, watch=path, companion=companion)
    device = ran[0].devices.get(SOUND_DEVICE) if ran else None
    if render_to is not None and device is not None:
        closed = {"closed_at": getattr(device, "closed_at", None)}
        closed_file(render_to).write_text(json.dumps(closed), encoding="utf-8")


async def answer(runtime: Runtime, stop: asyncio.Event) -> None:
    await answer_questions(runtime, stop, RENDERED, sound_state)


def ask_sound(children: Children, name: str, timeout: float = 5.0) -> dict[str, Any]:
    """The engine child's sound device health (lines that are not the answer are skipped)."""
    return ask_child(children, name, RENDERED, "how its sound is", timeout)


def wait_sounding(children: Children, name: str, timeout: float = 30.0) -> dict[str, Any]:
    """Until the engine child's sound device is ok (its process mixing) with the hum playing."""
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = ask_sound(children, name)
        if state.get("status") == "ok" and (state.get("playing") or 0) >= 1:
            return state
        time.sleep(0.1)
    raise children.failed(name, f"the engine's sound was not playing within {timeout:.0f} s (last: {state})")


def mix_heard(render: Path, began: float, ended: float, health: dict[str, Any]) -> MixHeard:
    """What a run with sound left in its file from ``began`` to ``ended`` (monotonic: while its messages went
    through): the hum's level and the beeps over it, which must be there all along."""
    closed = json.loads(closed_file(render).read_text(encoding="utf-8")).get("closed_at")
    if closed is None:
        raise BenchError(f"the sound process of the run that rendered {render} never said it closed its output")
    samples, rate = read_wav(render)
    seconds = len(samples) / rate
    origin = float(closed) - seconds
    part = segment(samples, rate, began - origin, ended - origin)
    window = int(0.02 * rate)
    levels = [level_db(part[i : i + window, 0]) for i in range(0, len(part) - window + 1, window)]
    hum_db = float(np.median(levels)) if levels else float("-inf")
    beeps = len(onsets(part, rate, threshold=BEEP_THRESHOLD, min_gap=0.05))
    expected = (ended - began) / STATE_S
    if len(part) < (ended - began) * rate * 0.99 or hum_db < -40 or abs(beeps - expected) > 1.5:
        raise BenchError(
            f"while the messages went through ({ended - began:.2f} s), the mix of a run with sound ({render}, "
            f"{seconds:.1f} s) held {len(part) / rate:.2f} s with the hum at {hum_db:.1f} dB and {beeps} beeps "
            f"(one every {STATE_S:g} s: {expected:.1f}): the sound did not play all along"
        )
    return MixHeard(seconds=seconds, window_s=ended - began, hum_db=hum_db, beeps=beeps, health=health)


# --- figures ------------------------------------------------------------------------------------------------------


def sound_figures(sound: SoundResults) -> dict[str, Figure]:
    load = sound.load
    return {
        "sound_go_latency_p99": figure(sound.engine.percentile(99), sound.bare.percentile(99), "ms"),
        "control_latency_sound_ratio": figure(load.sounding.percentile(99), load.silent.percentile(99), "ms"),
    }


def go_summary(run: GoRun) -> str:
    return (
        f"{len(run.ms)}/{run.gos} onsets found in {run.seconds:.1f} s of mix; p50 {run.percentile(50):.2f} ms, "
        f"p99 {run.percentile(99):.2f} ms, min {float(np.min(run.ms)):.2f} ms, max {float(np.max(run.ms)):.2f} ms"
    )


def sound_samples(sound: SoundResults) -> list[str]:
    """How the sound figures were taken, and their targets, so a reader can judge them."""
    settings, load = sound.settings, sound.load
    low, high = sound.spacing_s
    limit = GO_LIMIT_MS + sound.buffer_ms
    go_p99, bare_p99 = sound.engine.percentile(99), sound.bare.percentile(99)
    ratio = load.sounding.percentile(99) / load.silent.percentile(99)
    hums = ", ".join(f"{mix.hum_db:.1f}" for mix in load.mixes)
    beeps = ", ".join(f"{mix.beeps} in {mix.window_s:.2f} s" for mix in load.mixes)
    p99s = ", ".join(f"{value:.3f}" for value in load.sounding_p99)
    silent_p99s = ", ".join(f"{value:.3f}" for value in load.silent_p99)
    return [
        f"sound_go_latency_p99: {sound.engine.gos} GOs (after {sound.warmup}) {low:g} to {high:g} s apart at random, "
        "show.go() on a running show (on Mosquitto) whose cue plays a 50 ms beep, timed from just before the GO to "
        "the beep's onset in the mix its sound process rendered in real time to a WAV (OpenAL Soft's wave back-end, "
        f"period_size {settings.period_size} at {settings.frequency} Hz: a {sound.buffer_ms:.2f} ms buffer, the "
        "block a sound waits for at most; the file's origin from the sound process's close, to a block or two); "
        "baseline: the same beeps at the same times from a bare Panda3D loop (AudioSound.play(), the same "
        "configuration, a process of its own): OpenAL's own block and voice start; a sound card adds its buffer to "
        "both",
        f"  engine:   {go_summary(sound.engine)}",
        f"  baseline: {go_summary(sound.bare)}",
        f"control_latency_sound_ratio: the OSC-to-MQTT p99 (OSC at {load.rate:,.0f}/s from a separate process, "
        "through Mosquitto to a separate subscriber) of the OSC bench's exhibit with a state machine changing state "
        f"every {STATE_S:g} s, run as `launcher.py run --no-render --no-console` does, with `sounds:` (a looping "
        "hum playing from the start, a beep at every change of state, the mix rendered to a WAV) over the same "
        f"without sounds; {load.runs} run(s) of each, alternating, pooled; value: with sound, baseline: without, "
        "ratio: with / without",
        f"  with sound:    {latency_summary(load.sounding, 'messages')}; p99 by run {p99s} ms; heard in each run's "
        f"mix while its messages went through: the hum at {hums} dB FS, beeps {beeps}",
        f"  without sound: {latency_summary(load.silent, 'messages')}; p99 by run {silent_p99s} ms",
        f"target: sound_go_latency_p99 at most {GO_LIMIT_MS:g} ms + the back-end's buffer; control_latency_sound_ratio "
        f"at most {SOUND_RATIO_LIMIT:g}",
        f"  sound_go_latency_p99 at most {limit:.2f} ms: {verdict(go_p99 <= limit)} ({go_p99:.2f} ms; "
        f"{go_p99 / bare_p99:.2f}x the bare loop's {bare_p99:.2f} ms)",
        f"  control_latency_sound_ratio at most {SOUND_RATIO_LIMIT:g}: {verdict(ratio <= SOUND_RATIO_LIMIT)} "
        f"({ratio:.2f}: p99 {load.sounding.percentile(99):.3f} ms with sound, {load.silent.percentile(99):.3f} ms "
        "without)",
    ]


# --- the children's entry point -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.sound")
    commands = parser.add_subparsers(dest="command", required=True)
    bare = commands.add_parser("bare", help="play a beep at the bench's GO times from a bare Panda3D loop")
    bare.add_argument("--beep", type=Path, required=True)
    bare.add_argument("--render-to", type=Path, required=True)
    bare.add_argument("--gaps", type=Path, required=True, help="a JSON list: seconds before each play")
    bare.add_argument("--out", type=Path, required=True)
    engine = commands.add_parser("serve", help="run an exhibit as `launcher.py run --no-render` does")
    engine.add_argument("exhibit", type=Path)
    engine.add_argument("--broker-port", type=int, required=True)
    engine.add_argument("--render-to", type=Path)
    engine.add_argument("--block", type=int, help="frames per mixing block of the rendered mix")
    args = parser.parse_args(argv)
    if args.command == "bare":
        gaps = [float(gap) for gap in json.loads(args.gaps.read_text(encoding="utf-8"))]
        result = play_bare(args.beep, args.render_to, gaps)
        args.out.write_text(json.dumps(result), encoding="utf-8")
        return 0
    setup_logging("info", "text")  # as launcher.py's main does: the cost of its log lines stays
    asyncio.run(serve(args.exhibit, args.broker_port, args.render_to, args.block))
    return 0


if __name__ == "__main__":
    sys.exit(main())
