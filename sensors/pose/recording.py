"""Landmark recordings: JSON lines, optionally gzip-compressed (``.jsonl.gz``).

Only numbers are written, never an image: a header line, then one line per
frame with the time since the first frame and each person's 33 landmarks
(x, y, z, visibility, rounded to 4 decimals). Recordings replay as a source.
"""

from __future__ import annotations

import datetime
import gzip
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

from sensors.pose.types import N_LANDMARKS, PoseFrame

FORMAT = "exhibit-landmarks"
VERSION = 1


class RecordingError(Exception):
    """The file is not a landmark recording this program can read."""


def _open(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return cast(IO[str], gzip.open(path, mode + "t", encoding="utf-8"))
    return path.open(mode, encoding="utf-8")


class RecordingWriter:
    def __init__(self, path: Path, *, width: int, height: int, source: str) -> None:
        self.path = path
        self._stream = _open(path, "w")
        self._start: float | None = None
        self.frames = 0
        header = {
            "format": FORMAT,
            "version": VERSION,
            "width": width,
            "height": height,
            "source": source,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        self._stream.write(json.dumps(header) + "\n")

    def write(self, frame: PoseFrame) -> None:
        if self._start is None:
            self._start = frame.timestamp
        people = [np.round(person.astype(np.float64), 4).tolist() for person in frame.people]
        line = {"i": self.frames, "t": round(frame.timestamp - self._start, 4), "people": people}
        self._stream.write(json.dumps(line, separators=(",", ":")) + "\n")
        self.frames += 1

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Recording:
    header: dict[str, Any]
    frames: list[PoseFrame] = field(default_factory=list)
    bad_lines: int = 0
    """Frame lines that were malformed and skipped."""

    @property
    def duration(self) -> float:
        return self.frames[-1].timestamp if self.frames else 0.0


def read_recording(path: Path) -> Recording:
    try:
        with _open(path, "r") as stream:
            lines = stream.read().splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{path} cannot be read: {exc}") from None
    try:
        header = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RecordingError(f"{path} is not a landmark recording (no `{FORMAT}` header on line 1)")
    if header.get("version") != VERSION:
        raise RecordingError(f"{path} is recording format {header.get('version')}; this program reads {VERSION}")
    recording = Recording(header)
    width, height = int(header.get("width", 640)), int(header.get("height", 480))
    for line in lines[1:]:
        frame = _parse_frame(line, len(recording.frames), width, height)
        if frame is None:
            recording.bad_lines += 1
        else:
            recording.frames.append(frame)
    return recording


def _parse_frame(line: str, index: int, width: int, height: int) -> PoseFrame | None:
    try:
        data = json.loads(line)
        t = float(data["t"])
        people = tuple(np.asarray(p, dtype=np.float32) for p in data["people"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if not math.isfinite(t) or any(p.shape != (N_LANDMARKS, 4) or not np.isfinite(p).all() for p in people):
        return None
    return PoseFrame(index, t, width, height, people)
