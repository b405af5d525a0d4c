"""Acceptance: an AR mirror exhibit fed a camera source with a distinctive test pattern is previewed, and no
preview frame contains the pattern.

The pattern (a saturated magenta/green checkerboard, colours no scene here uses) goes through the real
frame channel the pose sensor writes (:class:`content.mirror.FrameWriter`, shared memory) into a real
render process drawing offscreen. The main output must show it (else the test could not fail); previews
must not, unless the exhibit opted in (``mirror.preview_camera``) and the lease asked for the camera.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from content.mirror import FrameReader, FrameWriter
from content.preview import PreviewLease
from content.render_host import RenderHost
from content.render_worker import Renderer, WorkerConfig
from content.renderer import SceneRenderer
from content.scene_model import SceneSpec
from content.snapshot import SceneSnapshot
from content.snapshot_source import SnapshotSource
from engine.clock import MonotonicClock
from engine.signals import SignalStore
from engine.supervisor import Backoff

pytestmark = pytest.mark.timeout(120)

SIZE = (320, 180)
SQUARE = 40


def pattern_frame() -> np.ndarray:
    """640x480: a checkerboard of saturated magenta and green squares."""
    rows, cols = np.indices((480, 640)) // SQUARE
    frame = np.empty((480, 640, 3), np.uint8)
    frame[(rows + cols) % 2 == 0] = (255, 0, 255)
    frame[(rows + cols) % 2 == 1] = (0, 255, 0)
    return frame


def pattern_share(picture: np.ndarray) -> float:
    """The share of pixels near the pattern's magenta or green (loose enough for JPEG and filtering)."""
    p = picture.astype(int)
    r, g, b = p[..., 0], p[..., 1], p[..., 2]
    magenta = (r > 170) & (b > 170) & (g < 90)
    green = (g > 170) & (r < 90) & (b < 90)
    return float((magenta | green).mean())


PRESENT = 0.5
"""The mirror fills the screen (fit: cover): most pixels are the pattern (the lantern covers a few)."""
ABSENT = 0.001
"""Not a pixel in a thousand: JPEG ringing on a dark background never looks like saturated magenta or green."""


def mirror_scene(preview_camera: bool) -> dict[str, Any]:
    return {
        "background": "#102040",
        "camera": {"position": [0, -10, 0], "look_at": [0, 0, 0], "fov": 40},
        "mirror": {"sensor": "body", "timeout": 30, "preview_camera": preview_camera},
        "nodes": {"lantern": {"type": "primitive", "shape": "sphere", "scale": 0.8, "color": "#fafafa"}},
    }


class CapturingRenderer(SceneRenderer):
    """The real scene renderer; on close it leaves its main output's last picture in ``base_dir``."""

    def __init__(self, config: WorkerConfig) -> None:
        super().__init__(SceneSpec.model_validate(config.scene), config.base_dir, size=config.size, offscreen=True)
        self.out = config.base_dir

    def close(self) -> None:
        if not self._closed:
            np.save(self.out / "main.npy", self.capture())
        super().close()


def capturing_renderer(config: WorkerConfig) -> Renderer:
    return CapturingRenderer(config)


@contextlib.asynccontextmanager
async def mirrored_host(tmp_path: Path, preview_camera: bool) -> AsyncIterator[RenderHost]:
    """A render process showing a camera that sees the pattern (written at camera rate, as the pose sensor does)."""
    store = SignalStore()
    source = SnapshotSource(store, MonotonicClock(), [])
    with FrameWriter() as writer:
        host = RenderHost(
            mirror_scene(preview_camera),
            tmp_path,
            source,
            store,
            size=SIZE,
            fps=30.0,
            stall_timeout=5.0,
            start_timeout=30.0,
            backoff=Backoff(initial=0.05, cap=0.2),
            factory=capturing_renderer,
            mirror=writer.name,
        )
        frame = pattern_frame()

        async def camera() -> None:
            while True:
                writer.write(frame)
                await asyncio.sleep(1 / 30)

        tasks = [asyncio.create_task(camera()), asyncio.create_task(host.run())]
        try:
            deadline = time.monotonic() + 60
            while host.stats.status != "running" or host.stats.mirror_frames < 5:
                assert time.monotonic() < deadline, "the mirror never showed a camera frame"
                await asyncio.sleep(0.05)
            yield host
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def previews(host: RenderHost, lease: PreviewLease, seconds: float) -> list[np.ndarray]:
    pictures: list[np.ndarray] = []
    after = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = await asyncio.wait_for(host.next_preview(lease, after), 10.0)
        after = frame.sequence
        pictures.append(np.asarray(Image.open(io.BytesIO(frame.jpeg)).convert("RGB")))
    return pictures


def main_picture(tmp_path: Path) -> np.ndarray:
    """The main output's last picture, left by the worker when it stopped."""
    picture: np.ndarray = np.load(tmp_path / "main.npy")
    return picture


async def test_no_preview_frame_contains_the_camera_pattern(tmp_path: Path) -> None:
    async with mirrored_host(tmp_path, preview_camera=False) as host:
        # Both kinds at once: without the exhibit's opt-in, asking for the camera changes nothing.
        with host.want_preview(rate=15.0) as plain, host.want_preview(camera=True, rate=15.0) as camera:
            plain_pictures, camera_pictures = await asyncio.gather(
                previews(host, plain, 2.5), previews(host, camera, 2.5)
            )
        mirror_frames = host.stats.mirror_frames
    assert mirror_frames > 10
    assert pattern_share(main_picture(tmp_path)) > PRESENT, "the main output does not show the camera"
    assert len(plain_pictures) >= 10 and len(camera_pictures) >= 10
    for index, picture in enumerate(plain_pictures + camera_pictures):
        assert picture.shape == (180, 320, 3)
        share = pattern_share(picture)
        assert share < ABSENT, f"preview {index} shows the camera picture ({share:.1%} of its pixels)"


async def test_an_opted_in_exhibit_shows_the_camera_to_a_camera_lease_only(tmp_path: Path) -> None:
    async with mirrored_host(tmp_path, preview_camera=True) as host:
        with host.want_preview(rate=10.0) as plain, host.want_preview(camera=True, rate=10.0) as camera:
            plain_pictures, camera_pictures = await asyncio.gather(
                previews(host, plain, 2.0), previews(host, camera, 2.0)
            )
            assert host.latest_preview(True) is not None and host.latest_preview(False) is not None
    assert pattern_share(main_picture(tmp_path)) > PRESENT
    assert len(plain_pictures) >= 5 and len(camera_pictures) >= 5
    for picture in camera_pictures:
        assert pattern_share(picture) > PRESENT, "the opted-in camera preview does not show the camera"
    for picture in plain_pictures:
        assert pattern_share(picture) < ABSENT, "a camera frame reached a non-camera lease"


def test_not_one_preview_shows_the_camera_while_the_mirror_changes() -> None:
    """In the renderer itself, raw pixels (no JPEG): every frame draws both kinds of preview while the camera
    comes and goes and the mirror card is shown and hidden; no preview pixel is ever the pattern."""
    frame = pattern_frame()
    spec = SceneSpec.model_validate(mirror_scene(preview_camera=False) | {"mirror": {"timeout": 0.05}})
    with FrameWriter() as writer, SceneRenderer(spec, Path("."), size=SIZE) as renderer:
        renderer.attach_frames(FrameReader(writer.name))
        shown = 0
        for i in range(40):
            if i % 5 != 4:
                writer.write(frame)  # every fifth frame, no new camera frame: the card may hide
            renderer.arm_previews([(False, 320), (True, 160)])
            renderer.frame(SceneSnapshot(i / 30))
            if pattern_share(renderer.capture()) > PRESENT:
                shown += 1
            for kind, picture in renderer.take_previews().items():
                assert not np.any(_exact_pattern(picture)), f"frame {i}: the {kind=} preview has camera pixels"
            if i % 10 == 9:
                time.sleep(0.06)  # let the picture time out once in a while
        assert shown > 20, "the main output did not show the camera"


def _exact_pattern(picture: np.ndarray) -> np.ndarray:
    p = picture.astype(int)
    return (np.abs(p - (255, 0, 255)).max(axis=-1) < 60) | (np.abs(p - (0, 255, 0)).max(axis=-1) < 60)
