"""Detectors for what must never leave the pose sensor's memory (issue 17's privacy test): image bytes and
landmark arrays, in any blob (a file, an MQTT payload, an HTTP body, a log).

* **Images**: the magic numbers of JPEG, PNG, WebP, GIF and the MJPEG/AVI container, and byte runs taken from the
  textured parts of the very frames the sensor saw (decoded as it decodes them, RGB and BGR), so a raw frame,
  whole or in part, is found too; and any blob at least as big as one raw frame.
* **Landmark arrays**: as text, 33 or more bracketed groups of 3 or 4 numbers in a row (``[x,y,z]`` or
  ``[x,y,z,v]``, JSON or Python repr), or 99 or more small numbers in a row (a flat array); as binary, 99 or more
  float32 or float64 values in a row (little- or big-endian) that could be normalised landmark coordinates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

N_VALUES = 99
"""33 landmarks × (x, y, z): the smallest landmark array."""
IMAGE_MAGIC = {
    "JPEG": re.compile(rb"\xff\xd8\xff[\xc0-\xfe]"),
    "PNG": re.compile(re.escape(b"\x89PNG\r\n\x1a\n")),
    "WebP": re.compile(rb"RIFF.{4}WEBP", re.DOTALL),
    "GIF": re.compile(rb"GIF8[79]a"),
    "AVI/MJPEG": re.compile(rb"RIFF.{4}AVI |MJPG", re.DOTALL),
}
_NUMBER = rb"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_GROUP = rb"\[\s*" + _NUMBER + rb"(?:\s*,\s*" + _NUMBER + rb"){2,3}\s*\]"
TRIPLES = re.compile(rb"(?:" + _GROUP + rb"\s*,\s*){32,}" + _GROUP)
"""33 or more ``[x, y, z]`` / ``[x, y, z, v]`` groups in a row."""
FLAT = re.compile(rb"(?:" + _NUMBER + rb"[\s,\[\]]+){" + str(N_VALUES - 1).encode() + rb",}" + _NUMBER)
"""99 or more numbers in a row, separated by commas, brackets or white space (JSON, numpy's ``str``, CSV)."""


def video_frames(path: Path) -> list[np.ndarray]:
    """The frames of a video as OpenCV decodes them (BGR): what the pose sensor's source hands the model."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert frames, f"OpenCV cannot read {path}"
    return frames


def frame_windows(frames: list[np.ndarray], count: int = 400, size: int = 24, seed: int = 0) -> list[bytes]:
    """Byte runs from the frames' textured parts (never the flat background), in BGR and RGB."""
    variants = frames + [np.ascontiguousarray(f[:, :, ::-1]) for f in frames]
    rng = np.random.default_rng(seed)
    windows: list[bytes] = []
    while len(windows) < count:
        blob = variants[int(rng.integers(len(variants)))].tobytes()
        start = int(rng.integers(0, len(blob) - size))
        chunk = blob[start : start + size]
        if len(set(chunk)) > 8:
            windows.append(chunk)
    return windows


def _small_numbers(match: bytes) -> bool:
    """Whether ``match`` holds :data:`N_VALUES` small numbers in a row (coordinates, not a series of times),
    half of them with a fraction."""
    run: list[float] = []
    for text in re.findall(_NUMBER, match):
        value = float(text)
        if abs(value) > 10:
            run = []
            continue
        run.append(value)
        if len(run) >= N_VALUES and sum(v != int(v) for v in run[-N_VALUES:]) >= N_VALUES // 2:
            return True
    return False


def text_landmarks(blob: bytes) -> list[str]:
    """Landmark arrays written as text (JSON, a Python list or repr, CSV)."""
    found = [m.group()[:80].decode(errors="replace") for m in TRIPLES.finditer(blob)]
    found += [m.group()[:80].decode(errors="replace") for m in FLAT.finditer(blob) if _small_numbers(m.group())]
    return found


def binary_landmarks(blob: bytes) -> list[str]:
    """Runs of :data:`N_VALUES` or more floats that could be landmark coordinates (finite, ``|v|`` at most 10,
    two thirds of them non-zero and not tiny), at every alignment, float32 and float64, either byte order."""
    found = []
    for dtype in ("<f4", ">f4", "<f8", ">f8"):
        width = np.dtype(dtype).itemsize
        for offset in range(width):
            usable = (len(blob) - offset) // width
            if usable < N_VALUES:
                continue
            values = np.frombuffer(blob, dtype=dtype, count=usable, offset=offset)
            with np.errstate(invalid="ignore", over="ignore"):
                magnitude = np.abs(values.astype(np.float64))
            nonzero = np.isfinite(magnitude) & (magnitude >= 1e-4) & (magnitude <= 10)
            plausible = nonzero | (magnitude == 0)
            # Runs of plausible values; within each, enough non-zero ones.
            edges = np.diff(np.concatenate(([0], plausible.view(np.int8), [0])))
            starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
            for start, end in zip(starts, ends, strict=True):
                if end - start >= N_VALUES and nonzero[start:end].sum() >= 2 * N_VALUES // 3:
                    found.append(f"{end - start} {dtype} values at byte {offset + start * width}")
    return found


@dataclass
class Scan:
    """What was found, per place looked at."""

    frame_size: int
    windows: list[bytes]
    findings: dict[str, list[str]] = field(default_factory=dict)
    looked_at: int = 0

    def blob(self, where: str, data: bytes) -> None:
        self.looked_at += 1
        found = [f"{kind} magic" for kind, magic in IMAGE_MAGIC.items() if magic.search(data)]
        if len(data) >= self.frame_size:
            found.append(f"{len(data)} bytes: as big as a raw frame")
        if any(window in data for window in self.windows):
            found.append("raw frame bytes")
        found += [f"landmarks as text: {text}" for text in text_landmarks(data)]
        found += [f"landmarks as binary: {text}" for text in binary_landmarks(data)]
        if found:
            self.findings[where] = found

    def file(self, path: Path) -> None:
        self.blob(str(path), path.read_bytes())
