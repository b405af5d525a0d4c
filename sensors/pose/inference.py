"""MediaPipe Tasks ``PoseLandmarker`` in VIDEO mode: RGB frames in, landmark arrays out.

Runs on the inference worker thread only; the images it sees are never kept.
"""

from __future__ import annotations

from pathlib import Path

import mediapipe as mp
import numpy as np
import numpy.typing as npt
from mediapipe.tasks.python import BaseOptions, vision

from sensors.pose.types import Landmarks

Image = npt.NDArray[np.uint8]
"""An RGB frame, shape (height, width, 3)."""


class PoseEstimator:
    def __init__(
        self,
        model: Path,
        *,
        num_poses: int = 4,
        min_detection: float = 0.5,
        min_presence: float = 0.5,
        min_tracking: float = 0.5,
    ) -> None:
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model)),
            running_mode=vision.RunningMode.VIDEO,
            num_poses=num_poses,
            min_pose_detection_confidence=min_detection,
            min_pose_presence_confidence=min_presence,
            min_tracking_confidence=min_tracking,
        )
        self._landmarker = vision.PoseLandmarker.create_from_options(options)
        self._last_ms = -1

    def estimate(self, frame: Image, timestamp: float) -> tuple[Landmarks, ...]:
        """The people in ``frame`` (captured at ``timestamp`` seconds), as (33, 4) arrays."""
        # VIDEO mode needs strictly increasing millisecond timestamps.
        ms = max(int(timestamp * 1000), self._last_ms + 1)
        self._last_ms = ms
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
        result = self._landmarker.detect_for_video(image, ms)
        return tuple(
            np.array([(p.x, p.y, p.z, p.visibility) for p in person], dtype=np.float32)
            for person in result.pose_landmarks
        )

    def close(self) -> None:
        self._landmarker.close()
