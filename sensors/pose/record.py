"""``launcher.py record``: landmarks from a camera or a video into a recording.

Only landmark numbers are written; the frames stay in memory and are dropped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sensors.pose.inference import PoseEstimator
from sensors.pose.recording import RecordingWriter
from sensors.pose.sources import FrameSource, SourceLost
from sensors.pose.types import PoseFrame

log = logging.getLogger("sensors.pose.record")


@dataclass(frozen=True)
class RecordStats:
    frames: int
    frames_with_people: int
    seconds: float


def record(
    source: FrameSource,
    estimator: PoseEstimator,
    out: Path,
    *,
    duration: float | None = None,
    max_frames: int | None = None,
) -> RecordStats:
    """Record from ``source`` (opened by the caller, so a missing camera is said before the model loads;
    closed here) until ``duration`` seconds of source time, ``max_frames``, or the end of a video."""
    started = time.monotonic()
    writer: RecordingWriter | None = None
    first: float | None = None
    with_people = 0
    try:
        while max_frames is None or writer is None or writer.frames < max_frames:
            try:
                captured = source.read()
            except SourceLost as exc:
                if writer is None:
                    raise
                log.info("source ended: %s", exc)
                break
            first = captured.timestamp if first is None else first
            if duration is not None and captured.timestamp - first > duration:
                break
            people = estimator.estimate(captured.image, captured.timestamp)
            height, width = captured.image.shape[:2]
            if writer is None:
                writer = RecordingWriter(out, width=width, height=height, source=source.description)
            writer.write(PoseFrame(captured.index, captured.timestamp, width, height, people))
            with_people += bool(people)
    finally:
        source.close()
        if writer is not None:
            writer.close()
    return RecordStats(writer.frames if writer else 0, with_people, time.monotonic() - started)
