"""Test pictures made from the astronaut photograph (NASA, public domain): one or two
visitors on a 640x480 canvas, moving frame by frame, written to a real video file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sensors.pose.inference import Image

ASTRONAUT = Path(__file__).resolve().parent / "data" / "astronaut.png"
WIDTH, HEIGHT = 640, 480


def astronaut(size: int) -> Image:
    bgr = cv2.imread(str(ASTRONAUT))
    assert bgr is not None, f"cannot read {ASTRONAUT}"
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return np.asarray(cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA), dtype=np.uint8)


def canvas(*placements: tuple[int, int, int], mirror_second: bool = True) -> Image:
    """A dark 640x480 frame with an astronaut at each (x, y, size) placement."""
    frame = np.full((HEIGHT, WIDTH, 3), 20, np.uint8)
    for k, (x, y, size) in enumerate(placements):
        picture = astronaut(size)
        if mirror_second and k % 2:
            picture = picture[:, ::-1]
        frame[y : y + size, x : x + size] = picture
    return frame


def one_visitor() -> Image:
    return canvas((120, 40, 400))


def two_visitors() -> Image:
    """Two people side by side; MediaPipe finds both (checked: 240 px each, top-aligned)."""
    return canvas((40, 0, 240), (360, 0, 240))


def walking(frames: int = 60) -> list[Image]:
    """One visitor moving from the left of the frame to the right."""
    return [canvas((int(10 + k * (300 / (frames - 1))), 60, 320)) for k in range(frames)]


def write_video(path: Path, images: list[Image], fps: float = 30.0) -> Path:
    """A real MJPEG .avi that OpenCV can read back (as a camera or a rehearsal file would be)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (WIDTH, HEIGHT))
    assert writer.isOpened(), "OpenCV cannot write MJPEG"
    for image in images:
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    return path
