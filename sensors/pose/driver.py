"""The pose sensor: a camera, a video file or a landmark recording, through
MediaPipe, to visitor signals. Inference runs on a worker thread, never on the
event loop; frames are latest-wins and drops are counted. A camera that stalls
or disappears degrades the exhibit and is reopened with back-off.

Health figures (:data:`HEALTH_FIGURES`): ``fps`` counts every frame that reaches the
signals (camera, video or replay) over the last second, ``age`` is the seconds since
the last one (-1 before the first); both are also published once a second, so a
stalled source reads fps 0 and a growing age. ``inference_ms``, ``latency_ms`` and
``dropped`` are set with each frame.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from engine.analytics.folding import Measures
from engine.drivers import DriverContext, Fault, FrameTap, FrameTaps, Sensor
from engine.health import HealthStatus
from engine.model import ComponentProblem, SensorConfig, StoreType, Strict
from engine.reconnect import Backoff, Reconnect
from sensors.pose import models
from sensors.pose.filters import OneEuroSettings
from sensors.pose.gestures import GestureSettings
from sensors.pose.inference import PoseEstimator
from sensors.pose.pipeline import (
    FEATURE_RANGES,
    FEATURES,
    HEALTH_FIGURES,
    HEALTH_MEANINGS,
    PipelineSettings,
    PosePipeline,
    pipeline_meanings,
    pipeline_signals,
)
from sensors.pose.puppets import Puppet, TooManyPuppets, puppet_landmarks
from sensors.pose.recording import Recording, RecordingError, read_recording
from sensors.pose.sources import (
    CameraSource,
    FrameSource,
    SourceEnded,
    SourceLost,
    VideoFileSource,
    camera_present,
)
from sensors.pose.tracking import TrackingSettings
from sensors.pose.types import Landmarks, PoseFrame
from sensors.pose.zones import FloorCalibration, ZoneSpec

log = logging.getLogger("sensors.pose")

WORKER_STOP_TIMEOUT = 5.0
"""Longest wait for the inference thread to finish its current frame when the sensor stops."""


class CameraSpec(Strict):
    camera: int | str = Field(description="Camera index (`0`) or device path (`/dev/v4l/by-id/usb-...`).")
    width: int = Field(640, ge=160, le=3840, description="Capture width in pixels.")
    height: int = Field(480, ge=120, le=2160, description="Capture height in pixels.")
    fps: int = Field(30, ge=1, le=240, description="Requested frame rate.")


class VideoSpec(Strict):
    video: str = Field(description="Video file, relative to the exhibit folder (for rehearsals).")
    loop: bool = Field(True, description="Start again at the end.")
    realtime: bool = Field(True, description="Play at the file's frame rate (false: as fast as inference goes).")


class ReplaySpec(Strict):
    replay: str = Field(description="Landmark recording (`.jsonl.gz`), relative to the exhibit folder.")
    loop: bool = Field(True, description="Start again at the end.")


def _source_kind(value: Any) -> str | None:
    keys = value if isinstance(value, dict) else vars(value)
    return next((key for key in ("camera", "video", "replay") if key in keys), None)


Source = Annotated[
    Annotated[CameraSpec, Tag("camera")] | Annotated[VideoSpec, Tag("video")] | Annotated[ReplaySpec, Tag("replay")],
    Discriminator(
        _source_kind,
        custom_error_type="source_kind",
        custom_error_message="a source needs one of `camera`, `video` or `replay`",
    ),
]


class PoseSensorConfig(SensorConfig):
    """Body tracking with MediaPipe: several visitors, stable anonymous ids, gestures and zones."""

    kind: Literal["pose"]
    source: Source = Field(description="Where frames come from: `camera`, `video` or `replay`.")
    model: str = Field("full", description="`lite`, `full` (ships with the project) or `heavy`, or a `.task` path.")
    num_poses: int = Field(4, ge=1, le=10, description="Most visitors tracked at once.")
    min_detection: float = Field(0.5, ge=0, le=1, description="Confidence to detect a new visitor.")
    min_tracking: float = Field(0.5, ge=0, le=1, description="Confidence to keep tracking one.")
    smoothing: OneEuroSettings = Field(default_factory=OneEuroSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    gestures: GestureSettings = Field(default_factory=GestureSettings)
    zones: dict[str, ZoneSpec] = Field(default_factory=dict, description="Named floor zones.")
    floor: FloorCalibration | None = Field(None, description="Image-to-floor calibration for `space: floor` zones.")
    hfov_deg: float = Field(60.0, gt=10, lt=180, description="Camera's horizontal field of view, for distance.")
    simulate: str | None = Field(
        None, description="Recording that `--simulate` replays instead of the camera (default: the replay source)."
    )

    def signal_types(self) -> dict[str, StoreType]:
        return pipeline_signals(list(self.zones))

    def signal_meanings(self) -> dict[str, str]:
        return pipeline_meanings(list(self.zones))

    def signal_ranges(self) -> dict[str, tuple[float, float]]:
        """The bounded signals' ranges, by short name (the studio's faders)."""
        return {f"nearest.{name}": bounds for name, bounds in FEATURE_RANGES.items()}

    def health_figures(self) -> dict[str, StoreType]:
        return HEALTH_FIGURES

    def health_meanings(self) -> dict[str, str]:
        return HEALTH_MEANINGS

    def collection_fields(self) -> dict[str, dict[str, str]]:
        return {"visitors": {"id": "int", "since": "float", **FEATURES}}

    def check_files(self, base: Path) -> list[ComponentProblem]:
        problems: list[ComponentProblem] = []
        named = [
            ("source", "video", getattr(self.source, "video", None)),
            ("source", "replay", getattr(self.source, "replay", None)),
            ("simulate", None, self.simulate),
        ]
        for key, sub, value in named:
            if value is not None and not (base / value).is_file():
                where: tuple[str | int, ...] = (key, sub) if sub else (key,)
                problems.append((where, f"file `{value}` not found in {base}"))
        if self.model not in models.OFFICIAL and not (base / self.model).is_file():
            problems.append((("model",), f"model file `{self.model}` not found in {base}"))
        for name, zone in self.zones.items():
            if zone.space == "floor" and self.floor is None:
                problems.append((("zones", name, "space"), "a `floor` zone needs a `floor` calibration"))
        return problems

    def check_hardware(self) -> list[ComponentProblem]:
        if isinstance(self.source, CameraSpec) and not camera_present(self.source.camera):
            return [(("source", "camera"), f"this machine has no camera {self.source.camera!r}")]
        return []

    def pipeline_settings(self) -> PipelineSettings:
        return PipelineSettings(self.smoothing, self.tracking, self.gestures, self.zones, self.floor, self.hfov_deg)


class PoseSensor(Sensor):
    config: PoseSensorConfig

    def __init__(self, name: str, config: PoseSensorConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.base = context.base_dir
        try:
            measures: Measures | None = context.resources.get(Measures)
        except LookupError:
            measures = None  # the exhibit keeps no analytics (or this run keeps none: tests, benchmarks)
        clock = context.clock
        self.pipeline = PosePipeline(
            name, config.pipeline_settings(), context.store, measures, lambda: clock.wall().timestamp()
        )
        self.backoff = Backoff(initial=0.5, cap=5.0, stable_after=5.0)
        self.frames = 0
        self.dropped = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._latest: tuple[PoseFrame, int] | None = None
        self._drain_scheduled = False
        self._window: deque[float] = deque()
        """``clock.now()`` of the frames processed in the last second."""
        self._last_frame: float | None = None
        self._inference_ms = 0.0
        self._source_dropped = 0
        self._rng = random.Random()
        self._estimator_instance: PoseEstimator | None = None
        self.publish_figures()  # fps 0 and age -1 until the first frame

    # --- health -------------------------------------------------------------------

    def _status(self, status: HealthStatus, reason: str = "") -> None:
        self.health.set(status, reason)

    def _processed(self, latency_ms: float) -> None:
        """Count a frame that went through the pipeline (from any source) and set the per-frame figures."""
        now = self.context.clock.now()
        self.frames += 1
        self._last_frame = now
        self._window.append(now)
        health = self.health
        health.figure("fps", self._fps(now))
        health.figure("inference_ms", self._inference_ms)
        health.figure("latency_ms", latency_ms)
        health.figure("dropped", self.dropped + self._source_dropped)

    def _fps(self, now: float) -> float:
        while self._window and now - self._window[0] >= 1.0:
            self._window.popleft()
        return float(len(self._window))

    def publish_figures(self) -> None:
        """``fps`` and ``age`` as of now: they change when frames stop coming, too."""
        now = self.context.clock.now()
        self.health.figure("fps", self._fps(now))
        self.health.figure("age", now - self._last_frame if self._last_frame is not None else -1.0)

    async def _publish_figures_forever(self, interval: float = 1.0) -> None:
        while True:
            self.publish_figures()
            await self.context.clock.sleep(interval)

    # --- sources ------------------------------------------------------------------

    def _frame_source(self) -> FrameSource:
        source = self.config.source
        if isinstance(source, CameraSpec):
            return CameraSource(source.camera, size=(source.width, source.height), fps=source.fps)
        assert isinstance(source, VideoSpec)
        return VideoFileSource(self.base / source.video, loop=source.loop, realtime=source.realtime)

    def _frame_tap(self) -> FrameTap | None:
        """The AR mirror's tap on this sensor's frames, when the exhibit shows its camera picture."""
        try:
            taps = self.context.resources.get(FrameTaps)
        except LookupError:
            return None
        return taps.get(self.name)

    def _estimator(self) -> PoseEstimator:
        model = models.resolve(self.config.model, self.base)
        return PoseEstimator(
            model,
            num_poses=self.config.num_poses,
            min_detection=self.config.min_detection,
            min_tracking=self.config.min_tracking,
        )

    async def open(self) -> None:
        if not isinstance(self.config.source, ReplaySpec):
            models.resolve(self.config.model, self.base)  # a missing model is the user's to fix: say it at start

    async def run(self) -> None:
        figures = asyncio.create_task(self._publish_figures_forever(), name=f"{self.name}-health-figures")
        try:
            await self._run_source()
        finally:
            figures.cancel()
            await asyncio.gather(figures, return_exceptions=True)

    async def _run_source(self) -> None:
        self._stop.clear()
        if isinstance(self.config.source, ReplaySpec):
            await self.replay(self._load(self.config.source.replay), loop=self.config.source.loop)
            return
        try:
            await self._capture_forever()
        finally:
            self._stop.set()
            if self._estimator_instance is not None:
                self._estimator_instance.close()
                self._estimator_instance = None

    async def _capture_forever(self) -> None:
        reconnect = Reconnect(self.backoff, self.context.clock, self._rng)
        lost = False
        while True:
            source = self._frame_source()
            source.tap = self._frame_tap()  # frames reach the mirror as read, before and apart from inference
            try:
                await asyncio.to_thread(source.open)
                if self._estimator_instance is None:  # loaded once a source exists, kept across reopenings
                    self._estimator_instance = await asyncio.to_thread(self._estimator)
                if lost:
                    log.info("pose sensor %s: %s is back", self.name, source.description)
                lost = False
                reconnect.up()
                self._status("ok")
                await self._infer_until_stopped(source, self._estimator_instance)
                return
            except SourceEnded as exc:
                log.info("pose sensor %s: %s", self.name, exc)
                self.context.store.mark_stale(f"{self.name}.")
                self._status("offline", str(exc))
                return
            except SourceLost as exc:
                if not lost:
                    log.warning("pose sensor %s: %s; the exhibit goes on without it and keeps retrying", self.name, exc)
                lost = True
                self.context.store.mark_stale(f"{self.name}.")
                self._status("offline", str(exc))
            finally:
                self._stop.set()
                await asyncio.to_thread(source.close)
                self._stop.clear()
            await reconnect.wait()

    async def _infer_until_stopped(self, source: FrameSource, estimator: PoseEstimator) -> None:
        """Run the worker thread; on cancellation, wait for it to finish its frame before the
        source and the model are closed under it."""
        loop = asyncio.get_running_loop()
        worker = loop.run_in_executor(None, self._infer, source, estimator, loop)
        try:
            await asyncio.shield(worker)
        finally:
            self._stop.set()
            if not worker.done():
                await asyncio.wait([worker], timeout=WORKER_STOP_TIMEOUT)
            if not worker.done():
                log.error(
                    "pose sensor %s: the inference worker did not stop within %.0f s", self.name, WORKER_STOP_TIMEOUT
                )

    def _infer(self, source: FrameSource, estimator: PoseEstimator, loop: asyncio.AbstractEventLoop) -> None:
        """Worker thread: read, infer, hand over the numbers. The image goes out of scope here."""
        while not self._stop.is_set():
            captured = source.read()
            started = time.perf_counter()
            people = estimator.estimate(captured.image, captured.timestamp)
            self._inference_ms = (time.perf_counter() - started) * 1000
            height, width = captured.image.shape[:2]
            frame = PoseFrame(captured.index, captured.timestamp, width, height, people)
            with self._lock:
                if self._latest is not None:
                    self.dropped += 1  # the loop had not taken the previous result: latest wins
                self._latest = (frame, source.dropped)
                schedule = not self._drain_scheduled
                self._drain_scheduled = True
            if schedule:
                loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            item, self._latest, self._drain_scheduled = self._latest, None, False
        if item is None:
            return
        frame, self._source_dropped = item
        self.pipeline.process(frame)
        self._processed((time.monotonic() - frame.timestamp) * 1000)  # capture timestamps are monotonic

    # --- replay -------------------------------------------------------------------

    def _load(self, relative: str) -> Recording:
        try:
            recording = read_recording(self.base / relative)
        except RecordingError as exc:
            raise SourceLost(str(exc)) from None
        if recording.bad_lines:
            log.warning(
                "pose sensor %s: %d malformed lines in %s were skipped", self.name, recording.bad_lines, relative
            )
        return recording

    async def replay(self, recording: Recording, *, loop: bool = True) -> None:
        """Play a recording on the engine's clock: deterministic under a virtual clock."""
        clock = self.context.clock
        self._status("ok")
        while True:
            start = clock.now()
            for frame in recording.frames:
                await clock.sleep(start + frame.timestamp - clock.now())
                if not await self._replay_gate():
                    continue
                people = self._garbled(self._people(frame.people, frame.width, frame.height))
                at = start + frame.timestamp
                self.pipeline.process(PoseFrame(frame.index, at, frame.width, frame.height, people))
                self._processed((clock.now() - at) * 1000)
            if not loop or not recording.frames:
                return
            await clock.sleep(1.0 / 30)

    async def _replay_gate(self) -> bool:
        """Whether to deliver the next frame (the simulator's faults hook in here)."""
        return True

    def _people(self, recorded: tuple[Landmarks, ...], width: int, height: int) -> tuple[Landmarks, ...]:
        """The people of a replayed frame (the simulator's studio visitors join them here)."""
        return recorded

    def _garbled(self, people: tuple[Landmarks, ...]) -> tuple[Landmarks, ...]:
        """The people of a replayed frame as the model saw them (the simulator's ``garbage`` hooks in here)."""
        return people

    async def close(self) -> None:
        self._stop.set()


PUPPET_FPS = 30.0
"""Frame rate of the studio's simulated visitors when no recording sets the pace."""
PUPPET_POSE = ("x", "y", "height", "left_hand", "right_hand")
"""What the studio may set of a simulated visitor."""


def _puppet_field(key: str) -> str:
    if key not in PUPPET_POSE:
        raise ValueError(f"a simulated visitor has no `{key}`")
    return key


class SimulatedPoseSensor(PoseSensor):
    """Replays the exhibit's recording instead of the camera, with scriptable faults:
    ``disconnect`` (status offline, signals stale), ``stall`` (frames stop, status degraded),
    ``garbage`` (the model sees nobody it can trust: every landmark unseen), ``slow`` (every other frame
    is dropped), ``clear``.

    The curator's studio adds simulated visitors (:class:`~sensors.pose.puppets.Puppet`) to every frame,
    and can mute the recording so that only they are seen. With no recording (or an empty one) frames
    flow at :data:`PUPPET_FPS` on the engine's clock while there are simulated visitors (and a little
    after the last leaves, so that the tracker says they left)."""

    def __init__(self, name: str, config: PoseSensorConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.fault: Fault = "clear"
        self._tick = 0
        self.puppets: dict[int, Puppet] = {}
        """The studio's simulated visitors by their id (1, 2, ... never reused by this sensor)."""
        self.recording_muted = False
        """True: the recording's visitors are left out of the frames (the studio sees only its own)."""
        self._next_puppet = 1
        self._puppets_changed = asyncio.Event()

    def inject(self, fault: Fault) -> None:
        self.fault = fault
        if fault == "disconnect":
            self.context.store.mark_stale(f"{self.name}.")
            self._status("offline", "simulated disconnect")
        elif fault == "stall":
            self._status("degraded", "simulated stall: no frames")
        elif fault == "garbage":
            self._status("degraded", "simulated garbage: nothing recognisable in the frames")
        else:
            self._status("ok")
        log.info("simulated pose sensor %s: fault %s", self.name, fault)

    async def _run_source(self) -> None:
        source = self.config.source
        recording_path = self.config.simulate or (source.replay if isinstance(source, ReplaySpec) else None)
        if recording_path is not None:
            log.info("pose sensor %s is simulated from %s", self.name, recording_path)
            recording = self._load(recording_path)
            if recording.frames:
                await self.replay(recording, loop=True)
                return
        else:
            log.info("pose sensor %s is simulated with nobody in view (set `simulate:` to a recording)", self.name)
        self._status("ok")
        self.pipeline.process(PoseFrame(0, self.context.clock.now(), 640, 480, ()))
        await self._puppet_frames()

    async def _puppet_frames(self, width: int = 640, height: int = 480) -> None:
        """Frames of the studio's visitors alone, at :data:`PUPPET_FPS`, while there are any."""
        clock = self.context.clock
        linger_frames = math.ceil((self.config.tracking.grace + 0.5) * PUPPET_FPS)
        linger, index = 0, 0
        while True:
            if self.puppets:
                linger = linger_frames
            elif linger <= 0:
                self._puppets_changed.clear()
                await self._puppets_changed.wait()
                continue
            else:
                linger -= 1
            index += 1
            if await self._replay_gate():
                at = clock.now()
                people = self._garbled(self._people((), width, height))
                self.pipeline.process(PoseFrame(index, at, width, height, people))
                self._processed(0.0)
            await clock.sleep(1.0 / PUPPET_FPS)

    # --- the studio's simulated visitors ----------------------------------------------

    def _people(self, recorded: tuple[Landmarks, ...], width: int, height: int) -> tuple[Landmarks, ...]:
        if not self.puppets:
            return () if self.recording_muted else recorded
        aspect = width / height if height else 640 / 480
        limit = self.config.num_poses  # the model finds at most `num_poses` people: no landmarks beyond them
        puppets = tuple(puppet_landmarks(puppet, aspect) for puppet in itertools.islice(self.puppets.values(), limit))
        people = puppets if self.recording_muted else puppets + recorded
        return people[:limit]

    def puppet_list(self) -> list[dict[str, float | int]]:
        """The simulated visitors, in the order they were added."""
        return [puppet.as_dict() for puppet in self.puppets.values()]

    def add_puppet(self, pose: Mapping[str, float]) -> int:
        """A new simulated visitor (fields of :class:`Puppet` other than ``id``); returns its id. Refused
        (:class:`~sensors.pose.puppets.TooManyPuppets`) when ``num_poses`` of them are in view already."""
        if len(self.puppets) >= self.config.num_poses:
            raise TooManyPuppets(self.name, self.config.num_poses)
        puppet = Puppet(self._next_puppet)
        self._next_puppet += 1
        for key, value in pose.items():
            setattr(puppet, _puppet_field(key), float(value))
        self.puppets[puppet.id] = puppet
        self._puppets_changed.set()
        log.info("simulated pose sensor %s: visitor %d added", self.name, puppet.id)
        return puppet.id

    def pose_puppet(self, puppet_id: int, pose: Mapping[str, float]) -> bool:
        """Move or pose a simulated visitor; False when there is none with this id."""
        puppet = self.puppets.get(puppet_id)
        if puppet is None:
            return False
        for key, value in pose.items():
            setattr(puppet, _puppet_field(key), float(value))
        return True

    def remove_puppet(self, puppet_id: int) -> bool:
        """The simulated visitor leaves; False when there is none with this id."""
        if self.puppets.pop(puppet_id, None) is None:
            return False
        self._puppets_changed.set()
        log.info("simulated pose sensor %s: visitor %d removed", self.name, puppet_id)
        return True

    def mute_recording(self, muted: bool) -> None:
        """Leave the recording's visitors out of the frames (True), or show them again."""
        self.recording_muted = muted
        log.info("simulated pose sensor %s: recording %s", self.name, "muted" if muted else "on")

    def _garbled(self, people: tuple[Landmarks, ...]) -> tuple[Landmarks, ...]:
        if self.fault != "garbage":
            return people
        unseen = [person.copy() for person in people]
        for person in unseen:
            person[:, 3] = 0.0  # every landmark's visibility: the model is sure of nothing
        return tuple(unseen)

    async def _replay_gate(self) -> bool:
        self._tick += 1
        if self.fault in ("disconnect", "stall"):
            return False
        return not (self.fault == "slow" and self._tick % 2)
