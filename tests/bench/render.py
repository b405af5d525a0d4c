"""``launcher.py bench``: the scene renderer. How fast our ``SceneRenderer`` draws the flagship scene with
four visitors against a bare Panda3D loop over the same scene graph (``render_fps``,
``render_frame_p99_ms``); and what drawing costs the control path (``control_latency_render_ratio``:
the OSC-to-MQTT p99 with rendering on over the same with rendering off).

Frame rates: every run is a fresh process (``python -m tests.bench.render frames``), so each renderer
gets a clean GL context; bare and engine runs alternate. Both draw the flagship's ``scene:`` at
1280x720 into an offscreen buffer (EGL: a GPU, or Mesa's llvmpipe) and time each frame with
``time.perf_counter``:

* engine: ``SceneRenderer.frame(snapshot)``: the snapshot's bindings and events, the animations,
  avatars, lantern particles and swaying lantern field updated, then ``Display.render()``;
* baseline: ``content.renderer.render_bare``: ``Display.render()`` alone on the scene as built
  (no snapshot, nothing moves).

``Display.render()`` is ``GraphicsEngine.renderFrame()``: cull, draw, and the copy of the buffer's
picture into the RAM texture attached to it (``RTMCopyRam``, i.e. a ``glReadPixels``). So both
frame times include getting the pixels out of GL, and neither includes ``capture()`` (turning that
RAM image into a numpy array), which the bare loop calls once after its last frame, outside the timing.
Snapshots are built before the timed loop (in a show they come from the engine, in another process).

Control latency: the OSC bench's exhibit (an OSC float mapped to an MQTT device) with the flagship's
scene and simulated visitors (its landmark recording, replayed by a pose sensor), run by
``python -m tests.bench.render serve``, which does what ``launcher.py run --headless`` does
(``engine.runtime.assemble`` with ``render="offscreen"``; ``"off"`` for ``--no-render``) and answers
``render`` on its stdin with the ``render.*`` signals, so the bench sees that frames are drawn.
The runs themselves are driven from ``runner.py`` (``run_render``), which shares the OSC bench's sender,
subscriber and broker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np

from engine import session
from engine.logs import setup_logging
from engine.runtime import RenderMode, Runtime, RuntimeOptions
from engine.signals import SignalStore
from engine.validate import load_exhibit
from launcher import build_registry
from tests.bench.procs import BenchError, Children
from tests.bench.results import FrameTimes, RenderFps
from tests.bench.stdin_state import answer_questions, ask_child

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[2]
FLAGSHIP = ROOT / "exhibits" / "canal-lanterns" / "exhibit.yaml"
SIZE = (1280, 720)
POSE_SENSOR = "body"
"""The flagship's pose sensor, whose visitors its avatars and emitters follow."""
VISITORS = 4
RAISED = (1, 3)
"""Ids of the visitors with both hands raised: the emitters spawn lanterns from their wrists."""
KINDS = ("bare", "engine")
RENDER_STATE = "render"
"""The prefix of the engine child's answer line (any other line on its stdout is not ours)."""


@dataclass(frozen=True)
class RenderPlan:
    warmup: int
    """Frames drawn in every process before the timed ones (GL warm-up, particles building up)."""
    frames: int
    """Frames timed in every process."""
    repeats: int
    """Processes per kind (bare, engine), alternating."""
    rounds: int
    """Control latency: pairs of engine runs, one with rendering and one without, alternating which goes first."""
    messages: int
    """Control latency: OSC messages timed in every engine run, after ``latency_warmup``."""
    latency_warmup: int = 300
    settle_s: float = 6.0
    """Control latency: the first message goes at least this long after the engine was started (and, rendering,
    once it draws), so the start-up's one-off work is over in both kinds of run."""


QUICK_RENDER = RenderPlan(warmup=5, frames=30, repeats=1, rounds=1, messages=500, settle_s=4.0)
FULL_RENDER = RenderPlan(warmup=20, frames=120, repeats=2, rounds=2, messages=2500)


# --- render_fps: the parent's side -------------------------------------------------------------------------------


def run_render_fps(plan: RenderPlan) -> RenderFps:
    """Bare and engine runs, alternating, each in a fresh process; every child is stopped, every temp file removed."""
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory(prefix="exhibit-bench-render-") as tmp:
        children = Children(Path(tmp))
        try:
            for repeat in range(plan.repeats):
                for kind in KINDS if repeat % 2 == 0 else KINDS[::-1]:
                    runs[kind].append(draw_in_child(children, kind, plan, repeat))
        finally:
            children.stop_all()
    engine, bare = runs["engine"], runs["bare"]
    for kind, run in [("engine", run) for run in engine] + [("bare", run) for run in bare]:
        if run["picture_std"] == 0:
            raise BenchError(f"the {kind} run's last picture is one flat colour: the scene was not drawn")
    for run in engine:
        if run["avatars"] != VISITORS or run["particles"] == 0:
            raise BenchError(
                f"the engine run drew {run['avatars']} of {VISITORS} avatars and {run['particles']} lantern "
                "particles: the simulated visitors did not reach the scene, so its frame rate would mean nothing"
            )
    result = RenderFps(
        engine=frame_times(engine),
        baseline=frame_times(bare),
        size=SIZE,
        warmup=plan.warmup,
        visitors=VISITORS,
        raised=len(RAISED),
        renderer=str(engine[-1]["renderer"]),
        particles=int(engine[-1]["particles"]),
    )
    log.info(
        "render: engine %.1f fps (p99 %.1f ms), bare loop %.1f fps (p99 %.1f ms)",
        result.engine.fps, result.engine.percentile_ms(99), result.baseline.fps, result.baseline.percentile_ms(99),
    )  # fmt: skip
    return result


def draw_in_child(children: Children, kind: str, plan: RenderPlan, repeat: int) -> dict[str, Any]:
    name = f"render-{kind}-{repeat}"
    out = children.workdir / f"{name}.json"
    argv = [sys.executable, "-m", "tests.bench.render", "frames", "--kind", kind]
    argv += ["--warmup", str(plan.warmup), "--frames", str(plan.frames), "--out", str(out)]
    children.start(name, argv, cwd=ROOT)
    children.finish(name, timeout=60.0 + 0.5 * (plan.warmup + plan.frames))  # a second or two in practice
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    if len(result["frame_s"]) != plan.frames:
        raise BenchError(f"the {kind} run timed {len(result['frame_s'])} frames, not {plan.frames}")
    return result


def frame_times(runs: list[dict[str, Any]]) -> FrameTimes:
    """Every process's timed frames, pooled."""
    return FrameTimes(
        seconds=np.concatenate([np.asarray(run["frame_s"], dtype=np.float64) for run in runs]),
        draw_seconds=np.concatenate([np.asarray(run["draw_s"], dtype=np.float64) for run in runs]),
        processes=len(runs),
    )


# --- render_fps: the child's side ---------------------------------------------------------------------------------


def visitors_snapshot(index: int, fps: float) -> Any:
    """Frame ``index``'s snapshot: four visitors in a row, each swaying on its own phase, two with both hands up.

    Deterministic: the same index always gives the same landmarks. Values are what the flagship's
    bindings read when four people stand there with hands raised (``body.nearest.hands_raised``...).
    """
    from content.snapshot import Scalar, SceneSnapshot, VisitorPose
    from tests.support.pose_synth import person

    t = index / fps
    visitors = tuple(
        VisitorPose(
            vid,
            person(
                cx=0.2 * vid + 0.03 * math.sin(2 * math.pi * 0.5 * t + vid),
                cy=0.6 + 0.01 * math.sin(2 * math.pi * 0.7 * t + 2 * vid),
                scale=0.12,
                arms="up" if vid in RAISED else "down",
                aspect=SIZE[0] / SIZE[1],
            ),
        )
        for vid in range(1, VISITORS + 1)
    )
    values: dict[str, Scalar] = {
        f"{POSE_SENSOR}.count": VISITORS,
        f"{POSE_SENSOR}.nearest.hands_raised": 1.0,
        f"{POSE_SENSOR}.nearest.hand_height": 1.2,
        "states.mode": "engaged",
    }
    return SceneSnapshot(time=t, values=values, visitors={POSE_SENSOR: visitors})


def draw_frames(kind: str, warmup: int, frames: int) -> dict[str, Any]:
    """Draw ``warmup + frames`` frames of the flagship's scene; the last ``frames`` frame times, and what was drawn."""
    exhibit = load_exhibit(FLAGSHIP, build_registry())
    spec = exhibit.scene  # type: ignore[attr-defined]
    if spec is None:
        raise BenchError(f"{FLAGSHIP} has no `scene:`")
    if kind == "bare":
        from content.renderer import render_bare

        # The same frames, the content moved by direct calls in a bare loop: the engine's extra cost is
        # being driven by the exhibit file (snapshots, bindings, events), not what it draws.
        moving = [visitors_snapshot(index, spec.fps_cap) for index in range(warmup + frames)]
        run = render_bare(spec, FLAGSHIP.parent, size=SIZE, frames=warmup + frames, snapshots=moving)
        timed = run.frame_seconds[warmup:]
        # The whole frame is the draw; the picture is checked as the engine's is.
        return {"frame_s": timed, "draw_s": timed, "picture_std": float(np.std(run.last))} | drawn(None)
    return draw_engine_frames(spec, warmup, frames)


def draw_engine_frames(spec: Any, warmup: int, frames: int) -> dict[str, Any]:
    from content.renderer import SceneRenderer

    draws: list[float] = []

    class TimedRenderer(SceneRenderer):
        """The renderer itself; only its draw call (``Display.render()``) is timed on the side."""

        def _draw(self) -> None:
            start = time.perf_counter()
            super()._draw()
            draws.append(time.perf_counter() - start)

    snapshots = [visitors_snapshot(index, spec.fps_cap) for index in range(warmup + frames)]
    renderer = TimedRenderer(spec, FLAGSHIP.parent, size=SIZE, offscreen=True)
    try:
        seconds: list[float] = []
        for snapshot in snapshots:
            start = time.perf_counter()
            renderer.frame(snapshot)
            seconds.append(time.perf_counter() - start)
        picture = renderer.capture()
        return {
            "frame_s": seconds[warmup:],
            "draw_s": draws[-frames:],  # the constructor draws one frame too
            "picture_std": float(np.std(picture)),
        } | drawn(renderer)
    finally:
        renderer.close()


def drawn(renderer: Any) -> dict[str, Any]:
    """What the scene held at the end: avatars shown, lantern particles alive, and the GL driver."""
    if renderer is None:
        return {"avatars": 0, "particles": 0, "renderer": ""}
    from content.elements import AvatarLayer, Emitter

    elements = [item.element for item in renderer.scene.items.values() if item.element is not None]
    return {
        "avatars": sum(len(e.visible_ids) for e in elements if isinstance(e, AvatarLayer)),
        "particles": sum(e.alive for e in elements if isinstance(e, Emitter)),
        "renderer": f"{renderer.display.renderer_name} ({renderer.display.module})",
    }


# --- control_latency_render_ratio: the engine child ---------------------------------------------------------------


def flagship_scene() -> str:
    """The flagship's ``scene:`` as one line of JSON (which is YAML too)."""
    exhibit = load_exhibit(FLAGSHIP, build_registry())
    return json.dumps(exhibit.scene.model_dump(mode="json", exclude_unset=True))  # type: ignore[attr-defined]


def render_exhibit(exhibit_id: str, udp_port: int, scene: str) -> str:
    """The OSC bench's exhibit plus the flagship's scene, pose sensor (its recording, replayed) and ``states.mode``,
    which the scene's bindings read. Files it names are absolute, so it can live in a temp dir."""
    recording = FLAGSHIP.parent / "recordings" / "visitors.jsonl.gz"
    return f"""\
format_version: 1
id: {exhibit_id}
title: {{en: Render benchmark}}
sensors:
  probe_in:
    kind: osc
    host: 127.0.0.1
    port: {udp_port}
    signals:
      seq: {{address: /bench/seq, type: float}}
  {POSE_SENSOR}:
    kind: pose
    source: {{replay: {json.dumps(str(recording))}, loop: true}}
    num_poses: 4
devices:
  probe:
    kind: mqtt
    properties:
      value: {{type: int, range: [0, 10000000], safe: 0}}
mappings:
  - {{from: probe_in.seq, to: probe.value, input: [0, 10000000]}}
states:
  mode:
    initial: engaged
    states:
      engaged: {{}}
scene: {scene}
"""


def render_state(store: SignalStore) -> dict[str, Any]:
    """The render service's health figures (``{"status": "off"}`` when nothing renders)."""
    if store.get("render.health.state").value is None:
        return {"status": "off"}
    state = {short: store.get(f"render.health.{short}").value for short in ("fps", "frame_p99_ms", "restarts")}
    return {"status": store.get("render.health.state").value, **state}


async def serve(path: Path, broker_port: int, render: RenderMode) -> None:
    """The exhibit as ``launcher.py run --headless [--no-render] --broker ...`` runs it, and a reader
    of this process's stdin that answers ``render`` with :func:`render_state`; stops on SIGTERM or EOF."""
    registry = build_registry()
    exhibit = load_exhibit(path, registry)
    options = RuntimeOptions(
        base_dir=path.parent, broker=f"mqtt://127.0.0.1:{broker_port}", render=render, console=False
    )
    await session.serve(exhibit, registry, options, watch=path, companion=answer)


async def answer(runtime: Runtime, stop: asyncio.Event) -> None:
    await answer_questions(runtime, stop, RENDER_STATE, lambda run: render_state(run.store))


def ask_render(children: Children, name: str, timeout: float = 5.0) -> dict[str, Any]:
    """Ask the engine child for its ``render.*`` signals (lines that are not the answer are skipped)."""
    return ask_child(children, name, RENDER_STATE, "how its renderer is", timeout)


def wait_rendering(children: Children, name: str, proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """Until the engine child's renderer is ``running`` and drawing (``render.fps`` > 0); BenchError if it never is."""
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while time.monotonic() < deadline and proc.poll() is None:
        state = ask_render(children, name)
        if state.get("status") == "running" and (state.get("fps") or 0) > 0:
            return state
        time.sleep(0.25)
    raise children.failed(name, f"the engine's renderer was not drawing within {timeout:.0f} s (last: {state})")


# --- the children's entry point -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.render")
    commands = parser.add_subparsers(dest="command", required=True)
    frames = commands.add_parser("frames", help="time frames of the flagship's scene; write them as JSON")
    frames.add_argument("--kind", choices=KINDS, required=True)
    frames.add_argument("--warmup", type=int, required=True)
    frames.add_argument("--frames", type=int, required=True)
    frames.add_argument("--out", type=Path, required=True)
    engine = commands.add_parser("serve", help="run an exhibit as `launcher.py run --headless` does")
    engine.add_argument("exhibit", type=Path)
    engine.add_argument("--broker-port", type=int, required=True)
    engine.add_argument("--render", choices=get_args(RenderMode), required=True)
    args = parser.parse_args(argv)
    if args.command == "frames":
        result = draw_frames(args.kind, args.warmup, args.frames)
        args.out.write_text(json.dumps(result), encoding="utf-8")
        return 0
    setup_logging("info", "text")  # as launcher.py's main does: the cost of its log lines stays
    asyncio.run(serve(args.exhibit, args.broker_port, args.render))
    return 0


if __name__ == "__main__":
    sys.exit(main())
