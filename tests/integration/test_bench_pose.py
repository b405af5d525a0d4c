"""The pose figures of `launcher.py bench`: measured on a real video through the real sensor,
each against a bare MediaPipe loop in the same run. Shape only: timings are never asserted."""

from __future__ import annotations

import json

from tests.bench.pose import QUICK, run_pose
from tests.bench.results import as_json, pose_figures, pose_samples, pose_targets
from tests.support.bench_checks import assert_figures

NAMES = {"pose_fps_1p": "fps", "pose_fps_4p": "fps", "pose_latency_p50": "ms", "pose_people_4p": "people"}


def test_quick_pose_figures_have_a_value_a_baseline_and_their_ratio():
    pose = run_pose(QUICK)
    figures = json.loads(as_json(pose_figures(pose)))
    assert_figures(figures, NAMES)  # the num_poses=4 variant is for full runs only
    assert pose.one.pipeline.frames == QUICK.measured  # every timed frame went through the signals
    assert pose.latency.pipeline.frames == QUICK.paced
    table = "\n".join(pose_samples(pose) + pose_targets(pose_figures(pose), pose))
    assert "pose_fps_1p at least 30" in table and "pose_fps_4p at least 15" in table
