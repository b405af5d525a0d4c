"""Where a scene node is, as seen from the scene's camera: for sounds that sit at a node (issue 18).

Pure numpy, Panda3D's conventions: a node's position is relative to its parent, which is moved, rotated
(heading about z, then pitch about x, then roll about y) and scaled; the camera looks at ``look_at`` (or by its
``hpr``), with z up. Positions are the ones the scene file gives: a node moved by a binding is heard where the
file puts it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

UP = np.array((0.0, 0.0, 1.0))


def rotation(hpr: Sequence[float]) -> np.ndarray:
    """Panda3D's rotation for ``[heading, pitch, roll]`` degrees, for row vectors (``v @ R``)."""
    h, p, r = (math.radians(float(a)) for a in hpr)
    heading = np.array([[math.cos(h), math.sin(h), 0], [-math.sin(h), math.cos(h), 0], [0, 0, 1]])
    pitch = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    roll = np.array([[math.cos(r), 0, -math.sin(r)], [0, 1, 0], [math.sin(r), 0, math.cos(r)]])
    return roll @ pitch @ heading


def world_position(chain: Sequence[Any]) -> np.ndarray:
    """The origin of the last node of ``chain`` (outermost parent first) in the scene's coordinates."""
    point = np.zeros(3)
    for node in reversed(chain):
        scale = getattr(node, "scale", 1.0)
        point = (point * np.asarray(scale, dtype=np.float64)) @ rotation(getattr(node, "hpr", (0, 0, 0)))
        point = point + np.asarray(getattr(node, "pos", (0.0, 0.0, 0.0)), dtype=np.float64)
    return point


def camera_axes(position: Sequence[float], look_at: Sequence[float] | None, hpr: Sequence[float]) -> np.ndarray:
    """Rows: the camera's right, forward and up directions."""
    if look_at is not None:
        forward = np.asarray(look_at, dtype=np.float64) - np.asarray(position, dtype=np.float64)
        if np.linalg.norm(forward) > 1e-9:
            forward /= np.linalg.norm(forward)
            right = np.cross(forward, UP)
            if np.linalg.norm(right) > 1e-9:  # looking straight up or down: fall back to hpr
                right /= np.linalg.norm(right)
                return np.array([right, forward, np.cross(right, forward)])
    return np.eye(3) @ rotation(hpr)


def relative_to_camera(point: np.ndarray, camera: Any) -> tuple[float, float, float]:
    """``point`` in the camera's frame: metres to its right, ahead of it, above it."""
    axes = camera_axes(camera.position, camera.look_at, camera.hpr)
    offset = point - np.asarray(camera.position, dtype=np.float64)
    x, y, z = axes @ offset
    return float(x), float(y), float(z)
