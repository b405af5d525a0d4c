"""Where each sound is heard from, resolved once from the whole exhibit (issue 18).

A sound's ``at: {node: boat}`` becomes a point relative to the scene's camera; ``follow:`` becomes the pose sensor's
camera geometry (its field of view and picture shape), so the sound device can turn a landmark into a point many
times a second without knowing about scenes or cameras; a narration's zone becomes the sensor that has it. What
cannot be resolved is a problem with its place in the file.

The room's frame (see :data:`engine.sound_model.Point`): x to the right as the audience sees the exhibit, y towards
the exhibit, z up, metres, with the camera at the origin. The camera faces the audience, so the right of its picture
is the audience's left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.landmarks import landmark_index
from engine.model import Strict
from engine.sound_model import NodeAt, Point

Where = tuple[str | int, ...]


class FollowPlan(Strict):
    """How to turn the nearest visitor's landmark into a point in the room."""

    sensor: str
    landmark: int
    tan_h: float
    """tan(half the horizontal field of view)."""
    tan_v: float
    """tan(half the vertical field of view): ``tan_h`` over the picture's aspect ratio."""

    def point(self, x: float, y: float, distance: float) -> Point:
        """The room point of a landmark at normalised image ``(x, y)`` on a visitor ``distance`` metres away."""
        return (
            -(x - 0.5) * 2 * self.tan_h * distance,  # the picture's right is the audience's left
            -distance,
            -(y - 0.5) * 2 * self.tan_v * distance,
        )


@dataclass
class SoundPlan:
    places: dict[str, Point]
    follows: dict[str, FollowPlan]
    zone_sensors: dict[str, str]
    problems: list[tuple[Where, str]]


def sound_plan(exhibit: Any) -> SoundPlan:
    """Resolve places, followed visitors and narration zones of ``exhibit`` (an ``ExhibitBase``)."""
    plan = SoundPlan({}, {}, {}, [])
    pose = {name: config for name, config in exhibit.sensors.items() if config.kind == "pose"}
    scene = getattr(exhibit, "scene", None)
    for name, spec in exhibit.sounds.items():
        if isinstance(spec.at, NodeAt):
            point = scene.heard_at(spec.at.node) if scene is not None else None
            if point is None:
                plan.problems.append((("sounds", name, "at", "node"), f"the scene has no node `{spec.at.node}`"))
            else:
                plan.places[name] = point
        elif spec.at is not None:
            plan.places[name] = tuple(float(v) for v in spec.at)  # type: ignore[assignment]
        if spec.output is not None and spec.output != "main" and spec.output not in exhibit.audio.outputs:
            known = ", ".join(f"`{name}`" for name in ["main", *exhibit.audio.outputs])
            plan.problems.append((("sounds", name, "output"), f"no output `{spec.output}` (outputs: {known})"))
        if spec.follow is not None:
            sensor = pose.get(spec.follow.sensor)
            if sensor is None:
                at_sensor = ("sounds", name, "follow", "sensor")
                plan.problems.append((at_sensor, f"no pose sensor named `{spec.follow.sensor}` to follow visitors"))
                continue
            plan.follows[name] = follow_plan(spec.follow.sensor, sensor, spec.follow.landmark)
    for zone, narration in exhibit.narration.zones.items():
        having = [name for name, config in pose.items() if zone in config.zones]
        where: Where = ("narration", "zones", zone)
        if narration.sensor is not None:
            if narration.sensor not in having:
                plan.problems.append(((*where, "sensor"), f"pose sensor `{narration.sensor}` has no zone `{zone}`"))
            else:
                plan.zone_sensors[zone] = narration.sensor
        elif len(having) == 1:
            plan.zone_sensors[zone] = having[0]
        elif not having:
            plan.problems.append((where, f"no pose sensor has a zone `{zone}` (add it under the sensor's `zones:`)"))
        else:
            plan.problems.append((where, f"pose sensors {', '.join(having)} all have a zone `{zone}`: add `sensor:`"))
    return plan


def follow_plan(sensor_name: str, sensor: Any, landmark: str) -> FollowPlan:
    source = sensor.source
    width, height = getattr(source, "width", 640), getattr(source, "height", 480)
    tan_h = math.tan(math.radians(sensor.hfov_deg) / 2)
    return FollowPlan(sensor=sensor_name, landmark=landmark_index(landmark), tan_h=tan_h, tan_v=tan_h * height / width)
