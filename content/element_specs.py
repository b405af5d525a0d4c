"""Configuration models of the body-driven scene elements: avatars, particle emitters, instance fields.

These are plain pydantic models (``extra="forbid"``, a ``type`` literal each) so the scene model can
put them into its node union and the exhibit's JSON Schema documents every field. The runtime
classes live in :mod:`content.elements`.

Coordinates: Panda3D's, Z up, Y away from the default camera. A pose sensor's normalised image
(x right, y down, 0..1) is mapped onto an upright rectangle of ``width`` x ``height`` scene units
centred on ``center`` (x, z) at ``depth`` (y).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from engine.landmarks import LANDMARK_NAMES, LandmarkName, landmark_index

__all__ = [
    "AVATAR_BONES",
    "LANDMARK_NAMES",
    "MIXAMO_BONES",
    "AvatarBone",
    "AvatarsSpec",
    "Color",
    "ElementSpec",
    "EmitterSpec",
    "ImageArea",
    "InstancesSpec",
    "LandmarkName",
    "landmark_index",
    "rgba",
]

_HEX = re.compile(r"^#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


def _check_color(value: str | tuple[float, ...]) -> str | tuple[float, ...]:
    if isinstance(value, str):
        if not _HEX.match(value):
            raise ValueError(f"colour {value!r} is not #rrggbb or #rrggbbaa (or give [r, g, b] / [r, g, b, a] in 0..1)")
        return value
    if any(not 0.0 <= c <= 1.0 for c in value):
        raise ValueError(f"colour components {list(value)} must be in 0..1")
    return value


Color = Annotated[
    str | tuple[float, float, float] | tuple[float, float, float, float],
    AfterValidator(_check_color),
    Field(description="A colour: '#rrggbb', '#rrggbbaa', or [r, g, b] / [r, g, b, a] with components in 0..1."),
]


def rgba(color: str | tuple[float, ...]) -> tuple[float, float, float, float]:
    """A validated :data:`Color` as four floats in 0..1."""
    if isinstance(color, str):
        digits = color.lstrip("#")
        parts = [int(digits[i : i + 2], 16) / 255.0 for i in range(0, len(digits), 2)]
        if len(parts) == 3:
            parts.append(1.0)
        return (parts[0], parts[1], parts[2], parts[3])
    c = [float(v) for v in color]
    return (c[0], c[1], c[2], c[3] if len(c) > 3 else 1.0)


Vec3 = tuple[float, float, float]


class _Strict(BaseModel):
    # Unknown keys are errors (a typo must not silently become a default), as everywhere in the format.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ImageArea(_Strict):
    """Where a pose sensor's normalised camera image lies in the scene (shared by avatars and emitters)."""

    width: float = Field(default=4.0, gt=0, description="Scene units the image's full width (x 0..1) spans.")
    height: float = Field(default=3.0, gt=0, description="Scene units the image's full height (y 0..1) spans.")
    center: tuple[float, float] = Field(
        default=(0.0, 0.0), description="Scene [x, z] of the image's centre (z is up in Panda3D)."
    )
    depth: float = Field(
        default=0.0, description="Scene y (distance along the camera's forward axis) of the image plane."
    )
    mirror: bool = Field(
        default=True,
        description="Flip left and right, so visitors see themselves as in a mirror (a visitor at the left of the "
        "camera image appears at the right of the screen).",
    )


AvatarBone = Literal[
    "left_upper_arm",
    "left_forearm",
    "right_upper_arm",
    "right_forearm",
    "left_thigh",
    "left_shin",
    "right_thigh",
    "right_shin",
]
"""Limb bones an avatar model's joints can be mapped to (see :data:`AVATAR_BONES`)."""

AVATAR_BONES: dict[str, tuple[int, int]] = {
    "left_upper_arm": (11, 13),
    "left_forearm": (13, 15),
    "right_upper_arm": (12, 14),
    "right_forearm": (14, 16),
    "left_thigh": (23, 25),
    "left_shin": (25, 27),
    "right_thigh": (24, 26),
    "right_shin": (26, 28),
}
"""Each bone's BlazePose landmarks: from its joint to the next one down the limb."""

MIXAMO_BONES: dict[AvatarBone, str] = {
    "left_upper_arm": "mixamorig:LeftArm",
    "left_forearm": "mixamorig:LeftForeArm",
    "right_upper_arm": "mixamorig:RightArm",
    "right_forearm": "mixamorig:RightForeArm",
    "left_thigh": "mixamorig:LeftUpLeg",
    "left_shin": "mixamorig:LeftLeg",
    "right_thigh": "mixamorig:RightUpLeg",
    "right_shin": "mixamorig:RightLeg",
}
"""Default bone mapping: the joint names of a Mixamo rig."""


class AvatarsSpec(ImageArea):
    """One stick figure per visitor of a pose sensor, following their landmarks; created when a visitor
    appears, removed when they leave."""

    type: Literal["avatars"] = Field(description="Element kind.")
    sensor: str = Field(default="body", description="Name of the pose sensor whose visitors are drawn.")
    style: Literal["stick", "model"] = Field(
        default="stick",
        description="'stick': bones as flat bars and a head disc; 'model': a rigged glTF body ('file').",
    )
    file: str | None = Field(
        default=None,
        description="Rigged glTF/EGG/BAM body for style 'model' (relative to the exhibit folder), modelled facing "
        "the camera (-y); the joints named in 'bones' mirror the visitor's limbs in the picture plane. A model "
        "without a skeleton is only placed; a stick figure is drawn if it cannot be loaded.",
    )
    bones: dict[AvatarBone, str] = Field(
        default_factory=lambda: dict(MIXAMO_BONES),
        description="For style 'model': our limb bones (left_upper_arm, left_forearm, right_upper_arm, "
        "right_forearm, left_thigh, left_shin, right_thigh, right_shin) -> the model's joint names; default: "
        "Mixamo names (mixamorig:LeftArm, ...). Bones left out stay at rest; joints the model lacks are "
        "reported once and skipped.",
    )
    color: Color = Field(default="#ffffff", description="Colour of the figures.")
    alpha: float = Field(default=1.0, ge=0, le=1, description="Opacity of the figures (bindable).")
    thickness: float = Field(default=0.05, gt=0, description="Width of the bones in scene units.")
    head_radius: float | None = Field(
        default=None,
        gt=0,
        description="Radius of the head disc in scene units; default: from the visitor's shoulder width.",
    )
    min_visibility: float = Field(
        default=0.5, ge=0, le=1, description="Landmarks below this visibility are hidden, with the bones that use them."
    )
    visible: bool = Field(default=True, description="Whether the avatars are drawn (bindable).")


class EmitterSpec(ImageArea):
    """Glowing 'lantern' particles that rise, sway and fade, from every visitor's landmark or a fixed point."""

    type: Literal["emitter"] = Field(description="Element kind.")
    sensor: str | None = Field(default=None, description="Pose sensor whose visitors emit (with 'landmark').")
    landmark: LandmarkName | None = Field(
        default=None, description="Landmark every visitor emits from, e.g. 'right_wrist' (BlazePose names, lower case)."
    )
    pos: Vec3 | None = Field(
        default=None, description="A fixed scene position [x, y, z] to emit from, instead of visitors."
    )
    when: Literal["always", "hand_raised"] = Field(
        default="always",
        description="'always': every visitor whose landmark is visible emits; 'hand_raised': only while that side's "
        "wrist is above its shoulder in the image (either wrist, for a landmark that is neither left nor right).",
    )
    min_visibility: float = Field(
        default=0.5, ge=0, le=1, description="Landmarks below this visibility count as unseen (no emission from them)."
    )
    rate: float = Field(default=20.0, ge=0, description="Particles per second from each source (bindable).")
    lifetime: float = Field(default=4.0, gt=0, description="Seconds a particle lives.")
    velocity: Vec3 = Field(
        default=(0.0, 0.0, 0.6), description="Initial velocity [x, y, z] in units/s; z up makes them rise."
    )
    spread: float = Field(
        default=0.15, ge=0, description="Random extra velocity (units/s, each axis) so particles fan out."
    )
    gravity: float = Field(
        default=0.0,
        description="Vertical acceleration in units/s²: negative falls, positive is buoyancy (rises faster).",
    )
    drag: float = Field(default=0.3, ge=0, description="Velocity damping per second, so bursts slow down gracefully.")
    sway: float = Field(default=0.1, ge=0, description="Sideways sway amplitude in scene units.")
    sway_speed: float = Field(default=1.0, ge=0, description="Sway frequency in Hz.")
    size: float = Field(default=0.08, gt=0, description="Particle size (quad edge) in scene units.")
    size_end: float | None = Field(default=None, gt=0, description="Size at the end of life; default: same as 'size'.")
    color: Color = Field(default="#ffb347", description="Colour at birth.")
    color_end: Color = Field(default="#ff4000", description="Colour at death (its alpha fades out).")
    fade_in: float = Field(default=0.3, ge=0, description="Seconds over which a new particle fades in.")
    blend: Literal["add", "alpha"] = Field(
        default="add", description="'add': glowing light; 'alpha': ordinary transparency."
    )
    max_particles: int = Field(
        default=1000, ge=1, le=100_000, description="Most particles alive at once; extras are dropped."
    )
    seed: int = Field(default=0, description="Random seed: the same inputs give the same particles.")
    visible: bool = Field(default=True, description="Whether the particles are drawn (bindable).")

    @model_validator(mode="after")
    def _source(self) -> EmitterSpec:
        if self.pos is None and (self.sensor is None or self.landmark is None):
            raise ValueError("an emitter needs 'sensor' and 'landmark' (emit from visitors) or 'pos' (a fixed point)")
        if self.pos is not None and (self.sensor is not None or self.landmark is not None):
            raise ValueError("give either 'pos' or 'sensor' + 'landmark', not both")
        if self.when == "hand_raised" and self.pos is not None:
            raise ValueError("'when: hand_raised' needs visitors: give 'sensor' and 'landmark' instead of 'pos'")
        return self


class InstancesSpec(_Strict):
    """Hundreds of copies of one shape (floating lanterns) scattered over an area, swaying, with a
    shared brightness; drawn as one merged Geom."""

    type: Literal["instances"] = Field(description="Element kind.")
    count: int = Field(default=300, ge=1, le=20_000, description="How many copies.")
    area: tuple[float, float, float, float] = Field(
        default=(-4.0, 2.0, 4.0, 10.0), description="Ground rectangle [x0, y0, x1, y1] the copies are scattered over."
    )
    height: tuple[float, float] = Field(default=(0.5, 3.0), description="Range [low, high] of their height (z).")
    seed: int = Field(default=0, description="Random seed for the scatter: the same seed gives the same layout.")
    shape: Literal["lantern", "quad", "box"] = Field(
        default="lantern", description="Built-in shape: a low-poly paper lantern, a flat glowing quad, or a box."
    )
    file: str | None = Field(
        default=None, description="A model file (glTF/BAM/EGG, relative to the exhibit folder) used instead of 'shape'."
    )
    size: float = Field(default=0.2, gt=0, description="Size of one copy in scene units (scale for a model file).")
    size_jitter: float = Field(default=0.3, ge=0, le=1, description="Random size variation, as a fraction of 'size'.")
    color: Color = Field(default="#ffa040", description="Colour of the copies (multiplied by 'glow').")
    color_jitter: float = Field(default=0.15, ge=0, le=1, description="Random brightness variation between copies.")
    glow: float = Field(default=1.0, ge=0, le=1, description="Brightness 0..1 (bindable).")
    alpha: float = Field(default=1.0, ge=0, le=1, description="Opacity (bindable).")
    sway: float = Field(default=0.05, ge=0, description="Sway amplitude in scene units (each copy has its own phase).")
    sway_speed: float = Field(default=0.3, ge=0, description="Sway frequency in Hz.")
    bob: float = Field(default=0.05, ge=0, description="Vertical bobbing amplitude in scene units.")
    visible: bool = Field(default=True, description="Whether the copies are drawn (bindable).")

    @model_validator(mode="after")
    def _ranges(self) -> InstancesSpec:
        x0, y0, x1, y1 = self.area
        if x1 < x0 or y1 < y0:
            raise ValueError("'area' is [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1")
        if self.height[1] < self.height[0]:
            raise ValueError("'height' is [low, high] with low <= high")
        return self


ElementSpec = Annotated[AvatarsSpec | EmitterSpec | InstancesSpec, Field(discriminator="type")]
"""Any of the three, chosen by ``type``."""
