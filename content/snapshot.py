"""What the renderer sees of the exhibit each frame: a snapshot, taken by the engine, sent to the renderer.

The renderer runs outside the control loop (its own process): it never reads the signal store,
it gets one :class:`SceneSnapshot` per frame (the latest wins; older ones are dropped), so a slow
or crashed renderer can never hold up sensor-to-device commands. A snapshot is plain data that
pickles small: scalar signal values, visitors' landmarks as small float arrays, scene events fired
since the previous snapshot. It never carries a camera image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Scalar = float | int | bool | str


@dataclass(frozen=True, slots=True)
class VisitorPose:
    """One visitor as a scene sees it: an anonymous id and smoothed landmarks.

    ``landmarks`` has shape (33, 4): x, y, z, visibility per landmark in MediaPipe's order; x and y
    are normalised image coordinates (0..1 of the frame's width and height, y grows downwards)."""

    id: int
    landmarks: npt.NDArray[np.float32]
    fields: dict[str, Scalar] = field(default_factory=dict)
    """The visitor's fields as the engine's expressions read them (``since``, ``hands_raised``...), by the
    names the signal catalogue gives the pose sensor's visitors."""


@dataclass(frozen=True, slots=True)
class SceneEvent:
    """Something a rule or cue asked the scene to do once: play an animation, spawn a burst,
    cross-fade to another scene. ``target`` names a scene node (or a scene, for ``crossfade``)."""

    action: str
    target: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SceneSnapshot:
    time: float
    """Show time in seconds (the engine's clock); animations and particles advance on it."""
    values: dict[str, Scalar] = field(default_factory=dict)
    """Every scalar signal by its full name (``body.count``, ``controls.season``, ``var.visits``)."""
    visitors: dict[str, tuple[VisitorPose, ...]] = field(default_factory=dict)
    """Visitors by pose sensor name (``body``)."""
    events: tuple[SceneEvent, ...] = ()
    """Scene events fired since the previous snapshot, in order."""
    event_times: dict[str, float] = field(default_factory=dict)
    """When each event signal (``body.wave``) last fired, on the same clock as ``time``: for ``since(...)``."""
