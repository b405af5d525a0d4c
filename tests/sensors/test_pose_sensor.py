"""The pose sensor as the runtime drives it: video and camera sources on a worker thread,
degrading and healing, deterministic replay, recordings, and check-time errors."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from engine.clock import MonotonicClock, VirtualClock
from engine.drivers import DriverContext, Resources
from engine.problems import ExhibitInvalid
from engine.signals import SignalStore
from engine.validate import validate_text
from launcher import build_registry
from sensors.pose.driver import PoseSensor, PoseSensorConfig, SimulatedPoseSensor
from sensors.pose.recording import RecordingWriter, read_recording
from sensors.pose.sources import FrameSource, SimulatedCamera
from sensors.pose.types import PoseFrame
from tests.conftest import run_launcher
from tests.support.frames import canvas, one_visitor, walking, write_video


def make_sensor(source: dict, tmp_path: Path, clock=None, cls=PoseSensor, **extra) -> tuple[PoseSensor, SignalStore]:
    config = PoseSensorConfig.model_validate({"kind": "pose", "source": source, **extra})
    clock = clock or MonotonicClock()
    store = SignalStore(clock)
    for name, type_ in config.signal_types().items():
        store.declare(f"body.{name}", type_)
    sensor = cls("body", config, DriverContext("test", store, clock, Resources(), tmp_path))
    return sensor, store


async def until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_video_file_runs_through_the_worker_thread(tmp_path: Path):
    write_video(tmp_path / "rehearsal.avi", walking(30))
    sensor, store = make_sensor({"video": "rehearsal.avi"}, tmp_path)
    await sensor.open()
    task = asyncio.create_task(sensor.run())
    try:
        await until(lambda: sensor.frames >= 20)
        assert store.get("body.count").value == 1
        assert store.get("body.health.status").value == "ok"
        assert store.get("body.health.inference_ms").value > 1.0
        assert 0 < store.get("body.health.latency_ms").value < 1000
        assert store.get("body.health.fps").value > 5
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class FaultyCameraSensor(PoseSensor):
    """The real sensor with its camera replaced by a simulated one that can be unplugged."""

    camera = SimulatedCamera([one_visitor()], fps=30)

    def _frame_source(self) -> FrameSource:
        return self.camera


async def test_an_unplugged_camera_degrades_and_heals(tmp_path: Path, caplog):
    caplog.set_level(logging.INFO)
    camera = SimulatedCamera([one_visitor()], fps=30)
    FaultyCameraSensor.camera = camera
    sensor, store = make_sensor({"camera": 0}, tmp_path, cls=FaultyCameraSensor)
    sensor.backoff = type(sensor.backoff)(initial=0.05, cap=0.2)
    task = asyncio.create_task(sensor.run())
    try:
        await until(lambda: store.get("body.count").value == 1)
        camera.inject("disconnect")
        await until(lambda: store.get("body.health.status").value == "offline")
        assert store.get("body.count").stale  # logic can see the camera's signals are not current
        await asyncio.sleep(0.5)  # several reopen attempts fail meanwhile
        camera.inject("clear")
        await until(lambda: store.get("body.health.status").value == "ok" and not store.get("body.count").stale)
        camera.inject("stall")
        await until(lambda: store.get("body.health.status").value == "offline")
        camera.inject("clear")
        await until(lambda: store.get("body.health.status").value == "ok")
        assert camera.opened >= 3
        assert task.done() is False  # never crashed
        lost = [r for r in caplog.records if "keeps retrying" in r.getMessage()]
        back = [r for r in caplog.records if "is back" in r.getMessage()]
        assert len(lost) == 2 and len(back) == 2  # once per loss and once per recovery, not per retry
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_camera_that_is_not_there_degrades_instead_of_crashing(tmp_path: Path):
    sensor, store = make_sensor({"camera": "/dev/no-such-camera"}, tmp_path)
    sensor.backoff = type(sensor.backoff)(initial=0.05, cap=0.1)
    task = asyncio.create_task(sensor.run())
    await until(lambda: store.get("body.health.status").value == "offline")
    await asyncio.sleep(0.3)
    assert not task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def write_session(path: Path) -> None:
    from tests.support.frames import HEIGHT, WIDTH
    from tests.support.pose_synth import person

    with RecordingWriter(path, width=WIDTH, height=HEIGHT, source="synthetic") as writer:
        for k in range(90):  # present for 1.5 s, then gone for 1 s (longer than the grace)
            people = (person(cx=0.3 + 0.005 * k, cy=0.7, scale=0.15),) if k < 45 else ()
            writer.write(PoseFrame(k, k / 30, WIDTH, HEIGHT, people))


async def replay_signals(path: Path, tmp_path: Path) -> list[tuple[float, str, object]]:
    clock = VirtualClock()
    sensor, store = make_sensor({"replay": path.name, "loop": False}, tmp_path, clock=clock)
    seen: list[tuple[float, str, object]] = []
    for name in ("body.count", "body.nearest.x", "body.nearest.hand_height", "body.enter", "body.leave"):
        store.subscribe(name, lambda s: seen.append((clock.now(), s.name, s.value)))
    task = asyncio.create_task(sensor.run())
    await clock.advance(5.0)
    assert task.done() and task.exception() is None
    return seen


async def test_replay_is_deterministic(tmp_path: Path):
    path = tmp_path / "session.jsonl.gz"
    write_session(path)
    first = await replay_signals(path, tmp_path)
    second = await replay_signals(path, tmp_path)
    assert first == second
    assert ("body.enter" in {name for _, name, _ in first}) and ("body.leave" in {name for _, name, _ in first})
    assert len(first) > 100


def test_recordings_round_trip_and_skip_bad_lines(tmp_path: Path):
    path = tmp_path / "session.jsonl"
    write_session(path)
    with path.open("a") as stream:
        stream.write("{broken\n")
        stream.write('{"i": 99, "t": 9, "people": [[[0, 0, 0]]]}\n')
    recording = read_recording(path)
    assert len(recording.frames) == 90 and recording.bad_lines == 2
    assert recording.header["format"] == "exhibit-landmarks"
    assert recording.frames[10].people[0].shape == (33, 4)


async def test_simulator_replays_the_recording_with_faults(tmp_path: Path):
    path = tmp_path / "session.jsonl.gz"
    write_session(path)
    clock = VirtualClock()
    sensor, store = make_sensor({"camera": 0}, tmp_path, clock=clock, cls=SimulatedPoseSensor, simulate=path.name)
    assert isinstance(sensor, SimulatedPoseSensor)
    task = asyncio.create_task(sensor.run())
    await clock.advance(0.5)
    assert store.get("body.count").value == 1
    sensor.inject("disconnect")
    assert store.get("body.count").stale and store.get("body.health.status").value == "offline"
    frames = sensor.frames
    await clock.advance(0.5)
    assert sensor.frames == frames
    sensor.inject("clear")
    await clock.advance(0.2)
    assert sensor.frames > frames and not store.get("body.count").stale
    task.cancel()


async def test_fps_and_age_count_every_frame_that_reaches_the_signals(tmp_path: Path):
    """Found: replayed frames (the simulator, `replay:` sources) never reached `fps`, and the pose sensor had
    no `age`, so a stalled source kept showing its last frame rate."""
    path = tmp_path / "session.jsonl.gz"
    write_session(path)  # 30 frames a second
    clock = VirtualClock()
    sensor, store = make_sensor({"camera": 0}, tmp_path, clock=clock, cls=SimulatedPoseSensor, simulate=path.name)
    assert isinstance(sensor, SimulatedPoseSensor)

    def figures() -> tuple[float, float]:
        return store.get("body.health.fps").value, store.get("body.health.age").value

    assert figures() == (0.0, -1.0)  # before the first frame
    task = asyncio.create_task(sensor.run())
    try:
        await clock.advance(2.5)
        fps, age = figures()
        assert 29 <= fps <= 31 and 0 <= age < 0.1, (fps, age)
        sensor.inject("slow")  # every other frame is skipped: half the frames reach the signals
        await clock.advance(2.0)
        fps, age = figures()
        assert 14 <= fps <= 16 and 0 <= age < 0.1, (fps, age)
        sensor.inject("stall")
        await clock.advance(3.0)
        fps, age = figures()
        assert fps == 0 and age >= 2.0, (fps, age)  # published once a second, frames or not
        sensor.inject("clear")
        await clock.advance(2.0)
        fps, age = figures()
        assert 29 <= fps <= 31 and 0 <= age < 0.1, (fps, age)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_record_command_writes_landmarks_only(tmp_path: Path):
    video = write_video(tmp_path / "visit.avi", [one_visitor()] * 10 + [canvas()] * 5)
    out = tmp_path / "visit.jsonl.gz"
    result = run_launcher("record", "--video", str(video), "--out", str(out), "--num-poses", "2")
    assert result.returncode == 0, result.stderr
    assert "15 frames (10 with people)" in result.stdout
    recording = read_recording(out)
    assert [len(f.people) for f in recording.frames] == [1] * 10 + [0] * 5
    assert recording.frames[1].timestamp == pytest.approx(1 / 30, abs=1e-3)  # video time, not wall time


EXHIBIT = """\
format_version: 1
id: pose-test
title: {en: Pose}
sensors:
  body:
    kind: pose
    source: {video: missing.avi}
    simulate: also-missing.jsonl.gz
    zones:
      plinth: {polygon: [[0, 0], [1, 0], [1, 1]], space: floor}
devices:
  wash:
    kind: mqtt
    properties: {brightness: {type: int, range: [0, 255], safe: 0}}
mappings:
  - {from: body.nearest.hands_raised, to: wash.brightness}
"""


def test_check_reports_missing_files_and_floor_zones_without_calibration(tmp_path: Path):
    path = tmp_path / "exhibit.yaml"
    with pytest.raises(ExhibitInvalid) as caught:
        validate_text(EXHIBIT, str(path), build_registry())
    errors = [str(p) for p in caught.value.problems]
    assert f"{path}:7:21: file `missing.avi` not found in {tmp_path}" in errors
    assert f"{path}:8:15: file `also-missing.jsonl.gz` not found in {tmp_path}" in errors
    assert f"{path}:10:58: a `floor` zone needs a `floor` calibration" in errors


def test_check_hardware_reports_an_absent_camera(tmp_path: Path):
    text = (
        EXHIBIT.replace("{video: missing.avi}", "{camera: /dev/video-absent}")
        .replace("    simulate: also-missing.jsonl.gz\n", "")
        .replace(", space: floor", "")
    )
    path = tmp_path / "exhibit.yaml"
    path.write_text(text)
    assert run_launcher("check", str(path)).returncode == 0
    result = run_launcher("check", "--hardware", str(path))
    assert result.returncode == 2
    assert f"{path}:7:22: this machine has no camera '/dev/video-absent'" in result.stderr


def test_mapping_an_event_is_an_error(tmp_path: Path):
    text = (
        EXHIBIT.replace("{video: missing.avi}", "{camera: 0}")
        .replace("    simulate: also-missing.jsonl.gz\n", "")
        .replace(", space: floor", "")
        .replace("body.nearest.hands_raised", "body.wave")
    )
    with pytest.raises(ExhibitInvalid) as caught:
        validate_text(text, str(tmp_path / "exhibit.yaml"), build_registry())
    assert any("`body.wave` is an event, not a number" in str(p) for p in caught.value.problems)
