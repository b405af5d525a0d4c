"""Test videos for the pose figures: one or four astronauts (tests/data/astronaut.png) moving
slowly on a 640x480 canvas, written as MJPEG like a rehearsal file.

The four-person layout is the one found where MediaPipe tracks four people (4.0
per frame in VIDEO mode after the first few frames): the person cropped tight (no
flag or shuttle beside her), 216 px tall, four in a row with gaps, 8 px from the
top, each swaying 4 px on its own phase. It is fragile: 2x2 grids, touching
rows, 1280x720 frames, taller people, a still scene (2.0), the row 40 px lower
(2.4) or a sway of 6 px (3.3) gave fewer. So ``pose_people_4p`` says how many
people ``pose_fps_4p`` was measured with.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sensors.pose.inference import Image
from tests.support.frames import HEIGHT, WIDTH, astronaut

BACKGROUND = 20
FOUR_HEIGHT = 216
FOUR_TOP = 8
FOUR_SWAY = 4


def one_person(frames: int) -> list[Image]:
    """One visitor, 360 px, drifting left and right across the middle (a period of 4 s)."""
    person = astronaut(360)
    images = []
    for k in range(frames):
        frame = _blank()
        _paste(frame, person, round(140 + 100 * math.sin(2 * math.pi * k / 120)), 60)
        images.append(frame)
    return images


def four_people(frames: int) -> list[Image]:
    """Four visitors in a row, each swaying on its own phase so the tracker sees movement."""
    person = _tight_astronaut(FOUR_HEIGHT)
    width = person.shape[1]
    gap = (WIDTH - 4 * width) // 5
    images = []
    for k in range(frames):
        frame = _blank()
        for i in range(4):
            dx = round(FOUR_SWAY * math.sin(2 * math.pi * (k / 90 + i / 4)))
            dy = round(FOUR_SWAY * math.cos(2 * math.pi * (k / 120 + i / 4)))
            _paste(frame, person, gap + i * (width + gap) + dx, FOUR_TOP + dy)
        images.append(frame)
    return images


def _blank() -> Image:
    return np.full((HEIGHT, WIDTH, 3), BACKGROUND, np.uint8)


def _tight_astronaut(height: int) -> Image:
    """The astronaut without the flag and shuttle beside her; with them, neighbours merge for the detector."""
    rgb = astronaut(512)[:, 20:370]  # 512: the photograph's own size
    width = round(rgb.shape[1] * height / rgb.shape[0])
    return np.asarray(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _paste(frame: Image, picture: Image, x: int, y: int) -> None:
    """Copy ``picture`` with its top left at (x, y), clipped to the frame."""
    h, w = picture.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, frame.shape[1]), min(y + h, frame.shape[0])
    frame[y0:y1, x0:x1] = picture[y0 - y : y1 - y, x0 - x : x1 - x]
