"""The body landmark vocabulary, defined once for the pose sensor, the exhibit's checks and the scenes:
MediaPipe BlazePose's 33 landmarks, by index (:class:`Landmark`) and by the lower-case names curators
write (``right_wrist``), which exhibit files validate against (:data:`LandmarkName`)."""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

from engine.problems import did_you_mean

N_LANDMARKS = 33


class Landmark(IntEnum):
    """MediaPipe BlazePose landmark indices."""

    NOSE = 0
    LEFT_EYE_INNER = 1
    LEFT_EYE = 2
    LEFT_EYE_OUTER = 3
    RIGHT_EYE_INNER = 4
    RIGHT_EYE = 5
    RIGHT_EYE_OUTER = 6
    LEFT_EAR = 7
    RIGHT_EAR = 8
    MOUTH_LEFT = 9
    MOUTH_RIGHT = 10
    LEFT_SHOULDER = 11
    RIGHT_SHOULDER = 12
    LEFT_ELBOW = 13
    RIGHT_ELBOW = 14
    LEFT_WRIST = 15
    RIGHT_WRIST = 16
    LEFT_PINKY = 17
    RIGHT_PINKY = 18
    LEFT_INDEX = 19
    RIGHT_INDEX = 20
    LEFT_THUMB = 21
    RIGHT_THUMB = 22
    LEFT_HIP = 23
    RIGHT_HIP = 24
    LEFT_KNEE = 25
    RIGHT_KNEE = 26
    LEFT_ANKLE = 27
    RIGHT_ANKLE = 28
    LEFT_HEEL = 29
    RIGHT_HEEL = 30
    LEFT_FOOT_INDEX = 31
    RIGHT_FOOT_INDEX = 32


LANDMARK_NAMES: tuple[str, ...] = tuple(landmark.name.lower() for landmark in Landmark)
"""BlazePose landmark names in index order (``nose``, ``left_eye_inner``...)."""
assert len(LANDMARK_NAMES) == N_LANDMARKS


def landmark_index(name: str) -> int:
    """BlazePose index of a lower-case landmark name (``right_wrist`` -> 16)."""
    return Landmark[name.upper()].value


def _known(name: str) -> str:
    if name not in LANDMARK_NAMES:
        hint = did_you_mean(name, LANDMARK_NAMES) or "see the landmark names in the README"
        raise ValueError(f"`{name}` is not a body landmark ({hint})")
    return name


LandmarkName = Annotated[
    str,
    AfterValidator(_known),
    WithJsonSchema({"type": "string", "enum": list(LANDMARK_NAMES), "description": "A BlazePose landmark."}),
]
"""A landmark name in an exhibit file: validated, and listed in the JSON Schema for editors."""
