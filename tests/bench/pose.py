"""``launcher.py bench``: pose figures. The whole pipeline (a ``PoseSensor`` reading a video
file on its worker thread, handing each result to an asyncio loop that sets the
signals) against a bare MediaPipe ``PoseLandmarker`` loop over the same frames,
in this process, in one run. Both decode with OpenCV, so decoding costs the same.

Frame rates use videos read as fast as inference goes; the latency uses the
video paced at its 30 fps, as a camera delivers frames, because unpaced frames
carry media time, not capture time.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import BaseOptions, vision

from engine.clock import MonotonicClock
from engine.drivers import DriverContext, Resources
from engine.signals import SignalStore
from sensors.pose import models
from sensors.pose.driver import PoseSensor, PoseSensorConfig
from sensors.pose.pipeline import PipelineSettings, PosePipeline
from sensors.pose.types import PoseFrame
from tests.bench.procs import BenchError
from tests.bench.results import PoseComparison, PoseResults, PoseRun
from tests.bench.scenes import four_people, one_person
from tests.support.frames import write_video

log = logging.getLogger("bench")

MODEL = "full"
SENSOR = "body"


@dataclass(frozen=True)
class PosePlan:
    measured: int
    """Frames timed in each frame-rate run, after the warm-up."""
    paced: int
    """Frames timed in the paced latency run."""
    warmup: int = 10
    numposes4: bool = True
    """Also time the one-person video with num_poses=4 (informative)."""

    @property
    def video_frames(self) -> int:
        # Slack for frames a paced source skips while the model loads; the videos never loop while timed.
        return self.warmup + max(self.measured, self.paced) + 60


QUICK = PosePlan(measured=50, paced=40, numposes4=False)
FULL = PosePlan(measured=200, paced=150)


def run_pose(plan: PosePlan) -> PoseResults:
    """Every pose comparison; the videos live in a temp dir removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="exhibit-bench-pose-") as tmp:
        one = write_video(Path(tmp) / "one-person.avi", one_person(plan.video_frames))
        four = write_video(Path(tmp) / "four-people.avi", four_people(plan.video_frames))
        fast, paced = plan.warmup + plan.measured, plan.warmup + plan.paced
        results = PoseResults(
            one=compare(one, 1, fast, plan.warmup, paced=False),
            four=compare(four, 4, fast, plan.warmup, paced=False),
            latency=compare(one, 1, paced, plan.warmup, paced=True),
            one_numposes4=compare(one, 4, fast, plan.warmup, paced=False) if plan.numposes4 else None,
        )
    for name, comparison in (("one-person", results.one), ("four-people", results.four)):
        if comparison.baseline.mean_people == 0:
            raise BenchError(f"MediaPipe found nobody in the {name} video; its figures would mean nothing")
    return results


def compare(video: Path, num_poses: int, count: int, warmup: int, *, paced: bool) -> PoseComparison:
    """The bare loop first, then the pipeline, on the same video (as the OSC figures are taken)."""
    baseline = bare_loop(video, num_poses, count, warmup, paced=paced)
    pipeline = asyncio.run(pipeline_run(video, num_poses, count, warmup, paced=paced))
    log.info(
        "pose %s, num_poses=%d%s: pipeline %.1f fps, bare loop %.1f fps; %.2f people per frame",
        video.stem, num_poses, ", paced" if paced else "", pipeline.fps, baseline.fps, pipeline.mean_people,
    )  # fmt: skip
    return PoseComparison(pipeline=pipeline, baseline=baseline)


# --- the baseline: a bare PoseLandmarker loop -------------------------------------------


def bare_loop(video: Path, num_poses: int, count: int, warmup: int, *, paced: bool) -> PoseRun:
    """Decode with cv2 and call ``detect_for_video``: the least any pipeline on MediaPipe has to do."""
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise BenchError(f"OpenCV cannot read back {video}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    done, latency_ms, people = [], [], []
    try:
        with landmarker(num_poses) as marker:
            started = time.monotonic()
            for index in range(count):
                if paced:
                    time.sleep(max(0.0, started + index / fps - time.monotonic()))
                ok, bgr = capture.read()
                if not ok:
                    raise BenchError(f"{video.name} ended after {index} of {count} frames")
                captured = time.monotonic()  # where VideoFileSource stamps a paced frame: once it is decoded
                people.append(detect(marker, bgr, round(index * 1000 / fps)))
                done.append(time.monotonic())
                latency_ms.append((done[-1] - captured) * 1000)
    finally:
        capture.release()
    return PoseRun(np.array(done), np.array(latency_ms), np.array(people), warmup, num_poses)


def detect(marker: vision.PoseLandmarker, bgr: np.ndarray, ms: int) -> int:
    """How many people MediaPipe finds in one decoded frame."""
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    result = marker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb), ms)
    return len(result.pose_landmarks)


def landmarker(num_poses: int) -> vision.PoseLandmarker:
    """The model and confidences the sensor uses (MediaPipe's defaults of 0.5), in VIDEO mode."""
    options = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(models.resolve(MODEL))),
        running_mode=vision.RunningMode.VIDEO,
        num_poses=num_poses,
    )
    return vision.PoseLandmarker.create_from_options(options)


# --- the whole pipeline: a PoseSensor on an asyncio loop -----------------------------------


class TimedPipeline(PosePipeline):
    """The sensor's own pipeline, noting when each frame's signals have all been set."""

    def __init__(self, sensor: str, settings: PipelineSettings, store: SignalStore) -> None:
        super().__init__(sensor, settings, store)
        self.done: list[float] = []
        self.latency_ms: list[float] = []
        self.people: list[int] = []
        self.wanted = 0
        self.enough = asyncio.Event()
        """Set once ``wanted`` frames are through: waiting on it costs the loop nothing, unlike polling,
        which on 2 cores takes CPU from MediaPipe's inference threads."""

    def process(self, frame: PoseFrame) -> None:
        super().process(frame)
        now = time.monotonic()
        self.done.append(now)
        self.latency_ms.append((now - frame.timestamp) * 1000)
        self.people.append(len(frame.people))
        if len(self.done) >= self.wanted:
            self.enough.set()


class TimedPoseSensor(PoseSensor):
    def __init__(self, name: str, config: PoseSensorConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.timed = TimedPipeline(name, config.pipeline_settings(), context.store)
        self.pipeline = self.timed


def timed_sensor(video: Path, num_poses: int, *, paced: bool) -> TimedPoseSensor:
    """A sensor as the runtime builds it, outside the runtime (cf. tests/test_pose_sensor.py)."""
    source = {"video": video.name, "realtime": paced, "loop": True}
    config = PoseSensorConfig.model_validate({"kind": "pose", "source": source, "model": MODEL, "num_poses": num_poses})
    clock = MonotonicClock()
    store = SignalStore(clock)
    for name, kind in config.signal_types().items():
        store.declare(f"{SENSOR}.{name}", kind)
    return TimedPoseSensor(SENSOR, config, DriverContext("bench", store, clock, Resources(), video.parent))


async def pipeline_run(video: Path, num_poses: int, count: int, warmup: int, *, paced: bool) -> PoseRun:
    """Run the sensor until ``count`` frames have reached the signals, then stop it cleanly."""
    sensor = timed_sensor(video, num_poses, paced=paced)
    await sensor.open()
    task = asyncio.create_task(sensor.run(), name="bench-pose-sensor")
    try:
        await wait_for_frames(sensor, task, count, timeout=30.0 + count * 0.25)
    finally:
        await sensor.close()
        await finish(task)
    timed = sensor.timed
    return PoseRun(
        np.array(timed.done[:count]), np.array(timed.latency_ms[:count]), np.array(timed.people[:count]), warmup,
        num_poses,
    )  # fmt: skip


async def wait_for_frames(sensor: TimedPoseSensor, task: asyncio.Task[None], count: int, timeout: float) -> None:
    timed = sensor.timed
    timed.wanted = count
    enough = asyncio.create_task(timed.enough.wait())
    try:
        await asyncio.wait({enough, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        enough.cancel()
    if timed.enough.is_set():
        return
    seen = len(timed.done)
    if task.done():
        error = None if task.cancelled() else task.exception()
        raise BenchError(f"the pose sensor stopped after {seen} of {count} frames: {error!r}")
    status = sensor.context.store.get(f"{SENSOR}.health.status").value
    raise BenchError(f"the pose sensor processed {seen} of {count} frames in {timeout:.0f} s (status {status})")


async def finish(task: asyncio.Task[None]) -> None:
    """Let the worker finish its frame; ``run`` then closes the landmarker. Cancel only a stuck one."""
    done, _ = await asyncio.wait({task}, timeout=15.0)
    if not done:
        log.warning("the pose sensor did not stop within 15 s; cancelling it")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    elif not task.cancelled() and task.exception() is not None:
        log.error("the pose sensor failed while stopping: %r", task.exception())
