"""The render figures of `launcher.py bench`: the flagship's scene drawn by our SceneRenderer with four
simulated visitors against a bare Panda3D loop, and the OSC-to-MQTT latency with the scene drawn and
without, each in the same run. Shape only: timings are never asserted."""

from __future__ import annotations

import json

import numpy as np

from content.snapshot import SceneSnapshot
from engine.validate import validate_text
from launcher import build_registry
from sensors.pose.types import Landmark
from tests.bench.procs import find_mosquitto
from tests.bench.render import (
    POSE_SENSOR,
    QUICK_RENDER,
    RAISED,
    VISITORS,
    flagship_scene,
    render_exhibit,
    visitors_snapshot,
)
from tests.bench.results import as_json, render_figures, render_samples, render_targets
from tests.bench.runner import run_render
from tests.conftest import FLAGSHIP
from tests.support.bench_checks import assert_figures

NAMES = {"render_fps": "fps", "render_frame_p99_ms": "ms", "control_latency_render_ratio": "ms"}


def test_the_latency_exhibit_carries_the_flagships_scene_and_visitors():
    registry = build_registry()
    exhibit = validate_text(render_exhibit("bench-render", 9999, flagship_scene()), "bench-render.yaml", registry)
    flagship = validate_text(FLAGSHIP.read_text(encoding="utf-8"), str(FLAGSHIP), registry)
    assert exhibit.scene == flagship.scene  # type: ignore[attr-defined]
    assert exhibit.sensors[POSE_SENSOR].kind == "pose"
    assert [(m.source, m.target) for m in exhibit.mappings] == [("probe_in.seq", "probe.value")]


def test_the_simulated_visitors_move_and_two_raise_their_hands():
    first, later = visitors_snapshot(0, 60.0), visitors_snapshot(30, 60.0)
    assert isinstance(first, SceneSnapshot) and later.time == 0.5
    assert [v.id for v in first.visitors[POSE_SENSOR]] == list(range(1, VISITORS + 1))
    for before, after in zip(first.visitors[POSE_SENSOR], later.visitors[POSE_SENSOR], strict=True):
        assert before.landmarks.shape == (33, 4)
        assert not np.array_equal(before.landmarks, after.landmarks)  # everyone moves a little
        raised = all(
            before.landmarks[wrist, 1] < before.landmarks[shoulder, 1]  # image y grows downwards
            for wrist, shoulder in ((Landmark.LEFT_WRIST, Landmark.LEFT_SHOULDER),
                                    (Landmark.RIGHT_WRIST, Landmark.RIGHT_SHOULDER))
        )  # fmt: skip
        assert raised == (before.id in RAISED)
    assert np.array_equal(visitors_snapshot(30, 60.0).visitors[POSE_SENSOR][0].landmarks,
                          later.visitors[POSE_SENSOR][0].landmarks)  # fmt: skip


def test_quick_render_figures_have_a_value_a_baseline_and_their_ratio():
    mosquitto = find_mosquitto()
    assert mosquitto is not None, "Mosquitto is needed: apt-get install mosquitto"
    render = run_render(QUICK_RENDER, mosquitto)
    figures = json.loads(as_json(render_figures(render)))
    assert_figures(figures, NAMES)
    fps = render.fps
    for times in (fps.engine, fps.baseline):
        assert len(times.seconds) == len(times.draw_seconds) == QUICK_RENDER.frames * QUICK_RENDER.repeats
        assert np.all(times.seconds > 0) and np.all(times.draw_seconds <= times.seconds)
    assert fps.size == (1280, 720) and fps.visitors == 4 and fps.raised == 2
    assert fps.particles > 0  # the raised hands really spawned lanterns
    latency = render.latency
    assert latency.on.measured == latency.off.measured == QUICK_RENDER.messages * QUICK_RENDER.rounds
    assert latency.on.delivered > 0.5 and latency.off.delivered > 0.5  # the messages really went through
    assert len(latency.render_fps) == QUICK_RENDER.rounds and all(value > 0 for value in latency.render_fps)
    table = "\n".join(render_samples(render) + render_targets(render_figures(render)))
    assert "render_fps at least 0.9x the baseline" in table
    assert "control_latency_render_ratio at most 1.1" in table
