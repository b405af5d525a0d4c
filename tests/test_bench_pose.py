"""The pose figures of `launcher.py bench`: measured on a real video through the real sensor,
each against a bare MediaPipe loop in the same run. Shape only: timings are never asserted."""

from __future__ import annotations

import json

from tests.bench.pose import QUICK, run_pose
from tests.bench.results import as_json, pose_figures, pose_samples, pose_targets

NAMES = {"pose_fps_1p": "fps", "pose_fps_4p": "fps", "pose_latency_p50": "ms", "pose_people_4p": "people"}


def test_quick_pose_figures_have_a_value_a_baseline_and_their_ratio():
    pose = run_pose(QUICK)
    figures = json.loads(as_json(pose_figures(pose)))
    assert set(figures) == set(NAMES)  # the num_poses=4 variant is for full runs only
    for name, unit in NAMES.items():
        figure = figures[name]
        assert set(figure) == {"value", "unit", "baseline", "ratio"}
        assert figure["unit"] == unit
        assert figure["value"] > 0 and figure["baseline"] > 0
        assert abs(figure["ratio"] - figure["value"] / figure["baseline"]) < 1e-9
    assert pose.one.pipeline.frames == QUICK.measured  # every timed frame went through the signals
    assert pose.latency.pipeline.frames == QUICK.paced
    table = "\n".join(pose_samples(pose) + pose_targets(pose_figures(pose), pose))
    assert "pose_fps_1p at least 30" in table and "pose_fps_4p at least 15" in table
