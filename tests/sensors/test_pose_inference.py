"""Real MediaPipe inference on real pictures, through the whole pose pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from engine.signals import SignalStore
from sensors.pose import models
from sensors.pose.driver import PoseSensorConfig
from sensors.pose.inference import PoseEstimator
from sensors.pose.pipeline import PosePipeline, pipeline_signals
from sensors.pose.types import Landmark, PoseFrame
from tests.support.frames import HEIGHT, WIDTH, canvas, one_visitor, two_visitors, walking


@pytest.fixture(scope="module")
def model():
    path = models.resolve("full")
    assert models.sha256(path) == models.SHIPPED_SHA256
    return path


def run_pipeline(model, images, num_poses: int = 4):
    """Feed frames at 30 fps through inference and the pipeline; return the store and per-frame ids."""
    config = PoseSensorConfig.model_validate({"kind": "pose", "source": {"camera": 0}, "num_poses": num_poses})
    store = SignalStore()
    for name, type_ in pipeline_signals([]).items():
        store.declare(f"body.{name}", type_)
    pipeline = PosePipeline("body", config.pipeline_settings(), store)
    estimator = PoseEstimator(model, num_poses=num_poses)
    ids_per_frame = []
    try:
        for index, image in enumerate(images):
            t = index / 30.0
            pipeline.process(PoseFrame(index, t, WIDTH, HEIGHT, estimator.estimate(image, t)))
            ids_per_frame.append([v.id for v in pipeline.visitors])
    finally:
        estimator.close()
    return store, ids_per_frame, pipeline


def test_the_astronaut_is_one_visitor_with_plausible_landmarks(model):
    store, ids, pipeline = run_pipeline(model, [one_visitor()] * 3)
    assert ids[-1] == [1]
    assert store.get("body.count").value == 1
    landmarks = pipeline.visitors[0].landmarks
    assert landmarks.shape == (33, 4)
    nose, left_shoulder, right_shoulder = (
        landmarks[i] for i in (Landmark.NOSE, Landmark.LEFT_SHOULDER, Landmark.RIGHT_SHOULDER)
    )
    # The picture spans x 120..520, y 40..440 of a 640x480 frame; the face is in its upper half.
    assert 0.3 < nose[0] < 0.7 and 0.1 < nose[1] < 0.5 and nose[3] > 0.9
    assert left_shoulder[1] > nose[1] and right_shoulder[1] > nose[1]  # shoulders below the nose
    assert right_shoulder[0] < nose[0] < left_shoulder[0]  # facing the camera: her right on the image left
    assert store.get("body.nearest.id").value == 1
    assert not store.get("body.nearest.arm_span").stale


def test_two_people_get_two_distinct_ids(model):
    store, ids, pipeline = run_pipeline(model, [two_visitors()] * 3)
    assert sorted(ids[-1]) == [1, 2]
    assert store.get("body.count").value == 2
    xs = sorted(float(v.landmarks[Landmark.NOSE][0]) for v in pipeline.visitors)
    assert xs[0] < 0.5 < xs[1]


def test_a_visitor_moving_across_the_frame_keeps_one_id(model):
    frames = walking(45)
    _, ids, pipeline = run_pipeline(model, frames)
    seen = [frame_ids for frame_ids in ids if frame_ids]
    assert len(seen) >= 40
    assert all(frame_ids == [1] for frame_ids in seen)
    noses = [float(v.landmarks[Landmark.NOSE][0]) for v in pipeline.visitors]
    assert noses and noses[0] > 0.5  # ended on the right


def test_an_empty_frame_has_no_visitors(model):
    store, ids, _ = run_pipeline(model, [canvas()] * 3)
    assert ids == [[], [], []]
    assert store.get("body.count").value == 0
    assert store.get("body.nearest.id").value == 0
    assert np.isnan(store.get("body.nearest.distance").value)


def test_a_visitor_who_leaves_fires_enter_then_leave(model):
    events: list[tuple[str, object]] = []
    images = [one_visitor()] * 5 + [canvas()] * 25  # 25 empty frames = 0.83 s > the 0.5 s grace
    config = PoseSensorConfig.model_validate({"kind": "pose", "source": {"camera": 0}})
    store = SignalStore()
    for name, type_ in pipeline_signals([]).items():
        store.declare(f"body.{name}", type_)
    store.subscribe("body.enter", lambda s: events.append(("enter", s.value)))
    store.subscribe("body.leave", lambda s: events.append(("leave", s.value)))
    pipeline = PosePipeline("body", config.pipeline_settings(), store)
    estimator = PoseEstimator(model, num_poses=2)
    for index, image in enumerate(images):
        pipeline.process(PoseFrame(index, index / 30, WIDTH, HEIGHT, estimator.estimate(image, index / 30)))
    estimator.close()
    assert events == [("enter", 1), ("leave", 1)]
