"""AR mirror mode: the pose sensor's camera picture as the scene's background, with content on the visitors' hands.

Real processes and real renders throughout: frames cross a real shared-memory segment into a
``spawn``ed process, the renderer draws offscreen (EGL/llvmpipe or the software renderer), and the
end-to-end test runs the launcher's wiring with a real pose sensor on a real video file.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import content.service
from content.mirror import MAX_SIZE, FrameReader, FrameWriter
from content.render_worker import Renderer, WorkerConfig
from content.renderer import SceneRenderer
from content.scene_model import SceneSpec
from content.service import SceneService
from content.snapshot import SceneSnapshot, VisitorPose
from engine.problems import ExhibitInvalid
from engine.runtime import RenderMode, RuntimeOptions, assemble
from engine.validate import validate_text
from launcher import build_registry
from sensors.pose.driver import PoseSensor
from tests.support.frames import walking, write_video

pytestmark = pytest.mark.timeout(120)

SIZE = (320, 180)
BACKGROUND = (16, 32, 64)
CAMERA = {"position": [0, -10, 0], "look_at": [0, 0, 0], "fov": 40}
LANTERN = (250, 250, 250)
RIGHT_WRIST = 16
LEFT_WRIST = 15


def shm_exists(name: str) -> bool:
    """Whether a shared-memory segment of that name is there (Linux keeps them in /dev/shm, in RAM)."""
    return Path("/dev/shm", name).exists()


# --- the shared-memory channel ----------------------------------------------------------------------------------------


def _pattern(seq: int, size: tuple[int, int]) -> np.ndarray:
    """A frame whose every byte says which write it came from: a torn frame mixes two values."""
    width, height = size
    return np.full((height, width, 3), seq % 251, dtype=np.uint8)


def _read_in_child(name: str, seconds: float, results: Any) -> None:
    """Another process: read for ``seconds``, checking every frame is whole, and report."""
    reader = FrameReader(name)
    seen: list[int] = []
    problems: list[str] = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            frame = reader.read()
            if frame is None:
                continue
            image = frame.image
            lo, hi = int(image.min()), int(image.max())
            if lo != hi or lo != frame.seq % 251:
                problems.append(f"frame {frame.seq}: bytes {lo}..{hi}, expected {frame.seq % 251}")
            expected = MAX_SIZE if frame.seq % 2 else (640, 480)  # the writer alternates sizes
            if (image.shape[1], image.shape[0]) != expected:
                problems.append(f"frame {frame.seq}: size {image.shape[1]}x{image.shape[0]}, expected {expected}")
            if seen and frame.seq < seen[-1]:
                problems.append(f"sequence went back from {seen[-1]} to {frame.seq}")
            if not seen or frame.seq != seen[-1]:
                seen.append(frame.seq)
        results.put({"seen": seen, "problems": problems, "torn": reader.torn})
    finally:
        reader.close()


def test_frames_cross_to_another_process_whole_while_being_written(tmp_path: Path):
    ctx = multiprocessing.get_context("spawn")
    with FrameWriter() as writer:
        stop = threading.Event()

        def write_fast() -> None:
            # Far faster than a camera (1280x720 frames back to back): tearing would show here.
            while not stop.is_set():
                seq = writer.seq + 1
                writer.write(_pattern(seq, MAX_SIZE if seq % 2 else (640, 480)))

        results = ctx.Queue()
        child = ctx.Process(target=_read_in_child, args=(writer.name, 2.0, results))
        child.start()
        thread = threading.Thread(target=write_fast)
        thread.start()
        try:
            report = results.get(timeout=60)
        finally:
            stop.set()
            thread.join()
            child.join(10)
        assert child.exitcode == 0
        assert report["problems"] == []
        assert len(report["seen"]) > 20, "the reader got too few frames"
        assert report["seen"] == sorted(report["seen"])
        assert writer.seq > report["seen"][0]
    assert not shm_exists(writer.name), "the segment outlived its writer"


def test_large_frames_are_scaled_down_and_the_segment_is_wiped_and_removed():
    writer = FrameWriter()
    name = writer.name
    reader = FrameReader(name)
    try:
        assert reader.latest() is None  # nothing written yet
        big = np.zeros((1080, 1920, 3), np.uint8)
        big[:, 960:] = (0, 200, 0)  # right half green
        writer.write(big)
        image = reader.latest()
        assert image is not None and image.shape == (720, 1280, 3)
        assert tuple(image[360, 100]) == (0, 0, 0) and tuple(image[360, 1200]) == (0, 200, 0)
        assert reader.seq == 1
        writer.close()
        assert not shm_exists(name)
        # A mapping that stays open sees the pixels wiped, not the last visitor.
        assert reader.latest() is None
        writer.write(big)  # a late frame from a sensor thread after the stop goes nowhere
    finally:
        reader.close()
        writer.close()
    with pytest.raises(FileNotFoundError):
        FrameReader(name)


# --- the renderer ------------------------------------------------------------------------------------------------


def mirror_scene(**mirror: Any) -> SceneSpec:
    return SceneSpec.model_validate(
        {
            "background": "#102040",
            "camera": CAMERA,
            "mirror": {"sensor": "body", **mirror},
            "nodes": {
                "hands": {
                    "type": "anchor",
                    "sensor": "body",
                    "landmark": ["left_wrist", "right_wrist"],
                    "children": {"lantern": {"type": "primitive", "shape": "sphere", "scale": 0.4, "color": "#fafafa"}},
                }
            },
        }
    )


def grid_frame() -> np.ndarray:
    """640x480, 4 x 3 blocks of distinct dark colours (none near the lantern's white)."""
    frame = np.zeros((480, 640, 3), np.uint8)
    for row in range(3):
        for col in range(4):
            frame[row * 160 : (row + 1) * 160, col * 160 : (col + 1) * 160] = (40 + 60 * col, 30 + 70 * row, 120)
    return frame


def screen_to_image(px: float, py: float, flip: bool) -> tuple[float, float]:
    """Where a screen pixel's centre is in the 640x480 picture (``fit: cover`` on 320x180: the picture is
    scaled to 320x240, 30 rows cut off above and below), written out independently of the renderer."""
    x = (px + 0.5) / SIZE[0] * 640
    y = (py + 0.5 + 30) / 240 * 480
    return (640 - x if flip else x), y


def image_to_screen(x: float, y: float, flip: bool) -> tuple[int, int]:
    """(row, column) of the pixel showing normalised image point (x, y)."""
    u = 1 - x if flip else x
    return int(y * 240 - 30), int(u * SIZE[0])


def visitor(**points: tuple[float, float]) -> VisitorPose:
    landmarks = np.zeros((33, 4), np.float32)
    for name, (x, y) in points.items():
        landmarks[{"left_wrist": LEFT_WRIST, "right_wrist": RIGHT_WRIST}[name]] = (x, y, 0.0, 1.0)
    return VisitorPose(7, landmarks)


def near(color: np.ndarray, expected: tuple[int, ...], tolerance: int = 14) -> bool:
    return bool(np.all(np.abs(color.astype(int) - np.array(expected)) <= tolerance))


@pytest.mark.parametrize("flip", [True, False])
def test_the_camera_picture_is_the_background_and_lanterns_sit_on_the_hands(flip: bool):
    frame = grid_frame()
    pose = visitor(right_wrist=(0.25, 0.4), left_wrist=(0.7, 0.6))
    with FrameWriter() as writer, SceneRenderer(mirror_scene(flip=flip), Path("."), size=SIZE) as renderer:
        renderer.attach_frames(FrameReader(writer.name))
        renderer.frame(SceneSnapshot(0.0))
        assert near(renderer.capture()[90, 160], BACKGROUND), "no frame yet: the scene's background shows"

        writer.write(frame)
        renderer.frame(SceneSnapshot(0.1, visitors={"body": (pose,)}))
        picture = renderer.capture()
        assert renderer.mirror_frames == 1

        lanterns = [image_to_screen(0.25, 0.4, flip), image_to_screen(0.7, 0.6, flip)]
        for row, col in lanterns:
            assert near(picture[row, col], LANTERN, 20), f"no lantern at ({row}, {col}): {picture[row, col]}"
        checked = 0
        for py in range(4, SIZE[1] - 4, 7):
            for px in range(4, SIZE[0] - 4, 7):
                if any(abs(py - r) < 25 and abs(px - c) < 25 for r, c in lanterns):
                    continue
                x, y = screen_to_image(px, py, flip)
                if min(x % 160, 160 - x % 160, y % 160, 160 - y % 160) < 6:
                    continue  # a block edge: filtering blends the two colours
                expected = frame[int(y), int(x)]
                assert near(picture[py, px], tuple(int(c) for c in expected)), (px, py, picture[py, px], expected)
                checked += 1
        assert checked > 500

        # The camera stops (unplugged, a simulated sensor): after `timeout` the background is back.
        renderer.mirror.spec = renderer.mirror.spec.model_copy(update={"timeout": 0.05})  # type: ignore[union-attr]
        time.sleep(0.1)
        renderer.frame(SceneSnapshot(0.2, visitors={"body": (pose,)}))
        assert near(renderer.capture()[5, 5], BACKGROUND)


def test_opacity_and_tint_blend_the_picture_over_the_background():
    frame = np.full((480, 640, 3), 200, np.uint8)
    with (
        FrameWriter() as writer,
        SceneRenderer(mirror_scene(opacity=0.5, tint="#ff0000"), Path("."), size=SIZE) as renderer,
    ):
        renderer.attach_frames(FrameReader(writer.name))
        writer.write(frame)
        renderer.frame(SceneSnapshot(0.0))
        # Red channel only (tint), half over the background: 0.5 * 200 + 0.5 * background.
        expected = (100 + BACKGROUND[0] // 2, BACKGROUND[1] // 2, BACKGROUND[2] // 2)
        assert near(renderer.capture()[90, 160], expected, 8)


def test_without_frames_the_mirror_scene_draws_its_background_and_anchors_still_follow():
    # A simulated pose sensor (or --simulate) has no camera: the background shows, lanterns still
    # follow the visitors (placed for a 640x480 picture).
    pose = visitor(right_wrist=(0.5, 0.5))
    with SceneRenderer(mirror_scene(), Path("."), size=SIZE) as renderer:
        renderer.frame(SceneSnapshot(0.0, visitors={"body": (pose,)}))
        picture = renderer.capture()
        assert near(picture[10, 10], BACKGROUND)
        assert near(picture[90, 160], LANTERN, 20)


def test_a_mirror_must_name_a_pose_sensor(tmp_path: Path):
    write_video(tmp_path / "visit.avi", walking(3))
    controls = "sensors:\n  controls:\n    kind: osc\n    signals:\n      wash: {address: /wash, type: float}\n"
    text = EXHIBIT.replace("mirror: {sensor: body", "mirror: {sensor: controls").replace("sensors:\n", controls)
    with pytest.raises(ExhibitInvalid) as invalid:  # `check` says it, with its line: nothing starts
        validate_text(text, str(tmp_path / "exhibit.yaml"), build_registry())
    [problem] = invalid.value.problems
    assert "exhibit.yaml:18:20: `controls` is not a pose sensor of this exhibit (pose sensors: `body`)" in str(problem)


# --- end to end: pose sensor -> tap -> shared memory -> render process --------------------------------------------

EXHIBIT = """\
format_version: 1
id: mirror
title: {en: Mirror}
sensors:
  body:
    kind: pose
    source: {video: visit.avi}
    num_poses: 1
scene:
  background: "#102040"
  camera: {position: [0, -10, 0], look_at: [0, 0, 0], fov: 40}
  outputs: [{kind: offscreen, size: [320, 180]}]
  fps_cap: 30
  mirror: {sensor: body, timeout: 30}
  nodes:
    hands:
      type: anchor
      sensor: body
      landmark: [left_wrist, right_wrist]
      children:
        lantern: {type: primitive, shape: sphere, scale: 0.2, color: "#ffb347"}
"""


class CapturingRenderer:
    """The real scene renderer; on close it leaves its last picture in ``base_dir`` for the test to see."""

    def __init__(self, renderer: SceneRenderer, out: Path) -> None:
        self.renderer, self.out = renderer, out

    @property
    def mirror_frames(self) -> int:
        return self.renderer.mirror_frames

    def attach_frames(self, frames: FrameReader) -> None:
        self.renderer.attach_frames(frames)

    def frame(self, snapshot: SceneSnapshot) -> None:
        self.renderer.frame(snapshot)

    def close(self) -> None:
        np.save(self.out / "capture.npy", self.renderer.capture())
        (self.out / "capture.json").write_text(json.dumps({"mirror_frames": self.renderer.mirror_frames}))
        self.renderer.close()


def capturing_renderer(config: WorkerConfig) -> Renderer:
    spec = SceneSpec.model_validate(config.scene)
    return CapturingRenderer(SceneRenderer(spec, config.base_dir, size=config.size, offscreen=True), config.base_dir)


def video_frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def as_mirror(frame: np.ndarray, flip: bool = True) -> np.ndarray:
    """What ``fit: cover`` shows of a 640x480 frame on 320x180: scaled to 320x240, 30 rows cut each side."""
    small = cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA)[30:210]
    return small[:, ::-1] if flip else small


async def test_the_pose_sensors_frames_reach_the_render_process(tmp_path: Path, mosquitto, monkeypatch):
    write_video(tmp_path / "visit.avi", walking(30))
    registry = build_registry()
    exhibit = validate_text(EXHIBIT, str(tmp_path / "exhibit.yaml"), registry)
    options = RuntimeOptions(base_dir=tmp_path, broker=mosquitto.url, render="offscreen")
    runtime = assemble(exhibit, registry, options)
    monkeypatch.setattr(content.service, "DEFAULT_FACTORY", capturing_renderer)
    await runtime.start()
    service = runtime.service("render")
    assert isinstance(service, SceneService) and service.frame_writer is not None
    name = service.frame_writer.name
    assert shm_exists(name)
    try:
        sensor = runtime.sensors["body"]
        assert isinstance(sensor, PoseSensor)
        deadline = time.monotonic() + 60
        counts: set[int] = set()
        while service.host is None or service.host.stats.mirror_frames < 15 or sensor.frames < 15 or 1 not in counts:
            assert time.monotonic() < deadline, "camera frames did not reach the render process"
            counts.add(runtime.store.get("body.count").value or 0)
            await asyncio.sleep(0.05)
        # The same frames are tracked as well (the visitor walks out of the picture at the clip's end, so
        # the count is 1 while they are in it, not at every moment).
        assert counts <= {0, 1}
    finally:
        await runtime.stop()
    assert not shm_exists(name), "the frame channel outlived the exhibit"

    shown = json.loads((tmp_path / "capture.json").read_text())["mirror_frames"]
    assert shown >= 15
    picture = np.load(tmp_path / "capture.npy").astype(int)
    frames = video_frames(tmp_path / "visit.avi")
    inner = (slice(20, 160), slice(20, 300))  # away from the lanterns' likely places at the edges

    def distance(flip: bool) -> float:
        return min(float(np.abs(picture[inner] - as_mirror(f, flip)[inner]).mean()) for f in frames)

    assert distance(True) < 12, "the render process does not show the camera's picture"
    assert distance(False) > distance(True) + 5, "the picture is not mirrored"


async def test_no_tap_without_a_mirror_or_without_rendering(tmp_path: Path):
    write_video(tmp_path / "visit.avi", walking(3))
    registry = build_registry()
    exhibit = validate_text(EXHIBIT, str(tmp_path / "exhibit.yaml"), registry)
    from engine.drivers import FrameTaps

    plain = validate_text(
        EXHIBIT.replace("  mirror: {sensor: body, timeout: 30}\n", ""), str(tmp_path / "e.yaml"), registry
    )
    renders: list[tuple[Any, RenderMode]] = [(exhibit, "off"), (plain, "offscreen")]
    for exhibit_, render in renders:
        options = RuntimeOptions(base_dir=tmp_path, broker="mqtt://127.0.0.1:1", render=render, safe_timeout=0.1)
        runtime = assemble(exhibit_, registry, options)
        await runtime.start()
        try:
            with pytest.raises(LookupError):
                runtime.resources.get(FrameTaps)
        finally:
            await runtime.stop()


def test_emitters_and_avatars_follow_the_picture_in_mirror_mode():
    from panda3d.core import Point2, Point3

    spec = SceneSpec.model_validate(
        {
            "camera": CAMERA,
            "mirror": {"sensor": "body"},
            "nodes": {
                "sparks": {"type": "emitter", "sensor": "body", "landmark": "right_wrist", "rate": 50, "spread": 0},
                "figures": {"type": "avatars", "sensor": "body", "thickness": 0.3},
            },
        }
    )
    pose = visitor(right_wrist=(0.2, 0.3), left_wrist=(0.6, 0.7))
    with SceneRenderer(spec, Path("."), size=SIZE) as renderer:
        renderer.frame(SceneSnapshot(0.0, visitors={"body": (pose,)}))
        renderer.frame(SceneSnapshot(0.1, visitors={"body": (pose,)}))
        emitter = renderer.scene.items["sparks"].element
        camera = renderer.outputs[0].cameras[0]

        def pixel(node: Any, point: np.ndarray) -> tuple[int, int]:
            local = camera.getRelativePoint(node, Point3(*map(float, point)))
            film = Point2()
            assert camera.node().getLens().project(local, film)
            return int((1 - film.y) / 2 * SIZE[1]), int((film.x + 1) / 2 * SIZE[0])

        births = emitter.positions()  # type: ignore[union-attr]
        assert len(births) > 0
        row, col = pixel(emitter.node, births.mean(axis=0))  # type: ignore[union-attr]
        expected = image_to_screen(0.2, 0.3, flip=True)
        assert abs(row - expected[0]) <= 3 and abs(col - expected[1]) <= 3, ((row, col), expected)
        picture = renderer.capture()
        r, c = image_to_screen(0.6, 0.7, flip=True)  # the avatar's left wrist joint is drawn there
        assert not near(picture[r, c], (0, 0, 0), 40)
