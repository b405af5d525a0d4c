"""Avatars: a stick figure per visitor, or a copy of a body model, posed from the landmarks when rigged."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from panda3d.core import CharacterJoint, LMatrix4f, Mat3, Mat4, NodePath, PartGroup, TransparencyAttrib, Vec3

from content.element_specs import AVATAR_BONES, AvatarsSpec, ImageArea, rgba
from content.elements.mesh import (
    F32,
    U32,
    VERTEX_FLOATS,
    DynamicMesh,
    FloatArray,
    Projection,
    _disc,
    _invalid_property,
    _load_model,
    _placed,
    image_to_scene,
    log,
)
from content.snapshot import SceneSnapshot, VisitorPose

if TYPE_CHECKING:
    from direct.actor.Actor import Actor

BONES: tuple[tuple[int, int], ...] = (
    (11, 12),  # shoulders
    (11, 13),  # left upper arm
    (13, 15),  # left forearm
    (12, 14),
    (14, 16),
    (11, 23),  # left flank
    (12, 24),
    (23, 24),  # hips
    (23, 25),  # left thigh
    (25, 27),  # left shin
    (24, 26),
    (26, 28),
    (27, 31),  # left foot
    (28, 32),
)
"""Pairs of BlazePose landmarks joined by a bone."""
_JOINTS = np.array(sorted({i for bone in BONES for i in bone}), dtype=np.intp)
_HEAD_POINTS = np.array([0, 7, 8], dtype=np.intp)  # nose and ears: the head disc centres on the visible ones
_DISC_SIDES = 8
_HEAD_SIDES = 20


def _fan(centers: F32, radius: float | F32, sides: int) -> tuple[F32, U32]:
    """Filled discs in the x-z plane: (m*(sides+1), 3) positions and fan indices (local to this block)."""
    m = centers.shape[0]
    ring = _disc(sides)
    r = np.broadcast_to(np.asarray(radius, dtype=np.float32).reshape(-1, 1), (m, 1))
    pts = np.empty((m, sides + 1, 3), dtype=np.float32)
    pts[:, 0] = centers
    pts[:, 1:, 0] = centers[:, None, 0] + ring[None, :, 0] * r
    pts[:, 1:, 1] = centers[:, None, 1]
    pts[:, 1:, 2] = centers[:, None, 2] + ring[None, :, 1] * r
    return pts.reshape(-1, 3), _fan_indices(m, sides)


@functools.cache
def _fan_indices(m: int, sides: int) -> U32:
    """Triangle-fan indices of ``m`` discs of ``sides`` sides (cached, read-only: the same every frame)."""
    k = np.arange(sides, dtype=np.uint32)
    one = np.stack([np.zeros(sides, dtype=np.uint32), 1 + k, 1 + (k + 1) % sides], axis=1).reshape(-1)
    base = (np.arange(m, dtype=np.uint32) * (sides + 1))[:, None]
    indices = (base + one[None, :]).reshape(-1).astype(np.uint32)
    indices.flags.writeable = False
    return indices


def stick_figure(
    area: ImageArea,
    landmarks: FloatArray,
    thickness: float,
    min_visibility: float,
    head_radius: float | None,
    points: F32 | None = None,
) -> tuple[F32, U32]:
    """Positions (n, 3) and triangle indices of one visitor's stick figure; hidden landmarks drop out.
    ``points``: the landmarks already placed in the scene (the AR mirror's projection); default: on ``area``."""
    lm = np.asarray(landmarks, dtype=np.float32)
    pts = image_to_scene(area, lm[:, :2]) if points is None else points
    seen = (lm[:, 3] >= min_visibility) & np.isfinite(pts).all(axis=1)
    parts_pos: list[F32] = []
    parts_idx: list[U32] = []
    offset = 0

    bones = np.array([b for b in BONES if seen[b[0]] and seen[b[1]]], dtype=np.intp).reshape(-1, 2)
    if len(bones):
        p0, p1 = pts[bones[:, 0]], pts[bones[:, 1]]
        d = p1 - p0
        length = np.maximum(np.hypot(d[:, 0], d[:, 2]), 1e-6)
        # Perpendicular in the picture plane, half the bone's width.
        nrm = np.stack([-d[:, 2], np.zeros_like(length), d[:, 0]], axis=1) / length[:, None] * (thickness / 2)
        quads = np.stack([p0 - nrm, p0 + nrm, p1 + nrm, p1 - nrm], axis=1).reshape(-1, 3)
        base = (np.arange(len(bones), dtype=np.uint32) * 4)[:, None]
        idx = (base + np.array([0, 1, 2, 0, 2, 3], dtype=np.uint32)[None, :]).reshape(-1)
        parts_pos.append(quads.astype(np.float32))
        parts_idx.append(idx.astype(np.uint32))
        offset += quads.shape[0]

    joints = _JOINTS[seen[_JOINTS]]
    if len(joints):
        # Round joints make the bones meet cleanly at elbows and knees.
        jp, ji = _fan(pts[joints], thickness / 2, _DISC_SIDES)
        parts_pos.append(jp)
        parts_idx.append(ji + np.uint32(offset))
        offset += jp.shape[0]

    head = _HEAD_POINTS[seen[_HEAD_POINTS]]
    if len(head):
        center = pts[head].mean(axis=0)
        radius = head_radius
        if radius is None:
            shoulders = seen[11] and seen[12]
            radius = 0.3 * float(np.linalg.norm(pts[11] - pts[12])) if shoulders else 0.04 * area.height
            radius = max(radius, thickness)
        hp, hi = _fan(center.reshape(1, 3), radius, _HEAD_SIDES)
        parts_pos.append(hp)
        parts_idx.append(hi + np.uint32(offset))
        offset += hp.shape[0]
        if seen[11] and seen[12]:
            neck_base = (pts[11] + pts[12]) / 2
            direction = center - neck_base
            dist = float(np.hypot(direction[0], direction[2]))
            if dist > radius:
                neck_top = center - direction / dist * radius
                n = np.array([-direction[2], 0.0, direction[0]], dtype=np.float32) / dist * (thickness / 2)
                neck = np.stack([neck_base - n, neck_base + n, neck_top + n, neck_top - n]).astype(np.float32)
                parts_pos.append(neck)
                parts_idx.append(np.array([0, 1, 2, 0, 2, 3], dtype=np.uint32) + np.uint32(offset))
                offset += 4

    if not parts_pos:
        return np.zeros((0, 3), dtype=np.float32), np.zeros(0, dtype=np.uint32)
    return np.concatenate(parts_pos), np.concatenate(parts_idx)


_VIEW_AXIS = Vec3(0, -1, 0)
"""Towards the viewer: a positive roll about it turns a limb counter-clockwise on screen (x right, z up)."""


class _RigJoint:
    """One driven joint of a rig: its rest pose and where its bone points at rest."""

    def __init__(self, name: str, bone: str, rest_local: LMatrix4f, rest_angle: float, axis: Vec3) -> None:
        self.name = name
        self.bone = bone
        self.rest_local = Mat4(rest_local)
        self.rest_angle = rest_angle
        """Angle (radians) of the bone, joint -> first child joint, in the model's x-z plane at rest."""
        self.axis = axis
        """The view axis in the parent joint's space: the roll axis of the joint's local transform."""
        self.driven_ancestor: int | None = None
        """Index (in :attr:`_Rig.joints`) of the nearest driven ancestor, whose roll this joint inherits."""


class _Rig:
    """Planar retargeting of a rigged body: which joints mirror which landmarks, and how.

    The avatar lives in the picture plane (x-z, seen from -y), like the stick figure, and the rig's rest
    pose is assumed to face the camera. Each mapped joint's bone (from the joint to its first child
    joint) has a rest angle in that plane; the visitor's two landmarks, placed in the scene, give the
    wanted angle. Every correction is a roll about the view axis (y), so rolls add up along the chain:
    a joint's own extra roll is its wanted world roll minus what its driven ancestors already turned it.
    The roll is applied in the parent joint's space, about the joint's own origin, after the rest
    transform. Depth (how far a limb points at or away from the camera) is ignored; that is exact for
    rigs whose limbs lie in the picture plane and an approximation otherwise.
    """

    def __init__(self, template: NodePath, bones: dict[str, str]) -> None:
        self.joints: list[_RigJoint] = []
        self.missing: list[str] = []
        probe = _make_actor(template)  # measured as the figures will hold it: in an Actor's space
        character = probe.find("**/+Character")
        bundle = character.node().getBundle(0)
        # The character node may sit under a transform (e.g. glTF's axis conversion): fold it in.
        to_model = Mat4(character.getMat(probe))
        found: dict[str, tuple[CharacterJoint, LMatrix4f, LMatrix4f, str | None]] = {}
        order: list[str] = []  # parents before children, so ancestors are resolved first

        def walk(group: PartGroup, parent_net: LMatrix4f, parent: str | None) -> None:
            for i in range(group.getNumChildren()):
                child = group.getChild(i)
                if isinstance(child, CharacterJoint):
                    # Panda3D's row vectors: net = local * parent's net.
                    net = LMatrix4f(child.getDefaultValue()) * parent_net
                    found[child.getName()] = (child, net, parent_net, parent)
                    order.append(child.getName())
                    walk(child, net, child.getName())
                else:
                    walk(child, parent_net, parent)

        walk(bundle, LMatrix4f(to_model), None)
        wanted = {joint: bone for bone, joint in bones.items()}
        self.missing = sorted(joint for joint in wanted if joint not in found)
        for name in order:
            bone = wanted.get(name)
            if bone is None:
                continue
            joint, net, parent_net, _ = found[name]
            child = next(
                (c for c in range(joint.getNumChildren()) if isinstance(joint.getChild(c), CharacterJoint)), None
            )
            if child is None:
                self.missing.append(f"{name} (no child joint: no bone direction)")
                continue
            child_net = LMatrix4f(joint.getChild(child).getDefaultValue()) * net
            d = child_net.getRow3(3) - net.getRow3(3)
            if math.hypot(d.x, d.z) < 1e-6:
                self.missing.append(f"{name} (bone points along the view axis)")
                continue
            inverse = Mat4(parent_net)
            inverse.invertInPlace()
            axis = inverse.xformVec(_VIEW_AXIS)
            axis.normalize()
            self.joints.append(_RigJoint(name, bone, joint.getDefaultValue(), math.atan2(d.z, d.x), axis))
        index = {j.name: i for i, j in enumerate(self.joints)}
        for j in self.joints:
            ancestor = found[j.name][3]
            while ancestor is not None and ancestor not in index:
                ancestor = found[ancestor][3]
            j.driven_ancestor = index.get(ancestor) if ancestor is not None else None
        probe.cleanup()  # only its numbers were kept

    def rolls(self, pts: F32, seen: npt.NDArray[np.bool_], mirrored: bool) -> list[float | None]:
        """Each joint's extra local roll in radians (None: at rest) for landmarks ``pts`` placed in the model's
        plane. ``mirrored``: the picture is a mirror image, so the model's left limbs (on screen right when it
        faces the camera) follow the visitor's right ones, which the mirror shows there."""
        world: list[float] = []  # each joint's total roll, its ancestors' included
        out: list[float | None] = []
        for j in self.joints:
            inherited = world[j.driven_ancestor] if j.driven_ancestor is not None else 0.0
            bone = _swap_side(j.bone) if mirrored else j.bone
            a, b = AVATAR_BONES[bone]
            if not (seen[a] and seen[b]):
                world.append(inherited)  # at rest locally: it just follows its parent
                out.append(None)
                continue
            d = pts[b] - pts[a]
            if math.hypot(float(d[0]), float(d[2])) < 1e-6:
                world.append(inherited)
                out.append(None)
                continue
            total = math.atan2(float(d[2]), float(d[0])) - j.rest_angle
            extra = math.remainder(total - inherited, math.tau)  # the short way round
            world.append(inherited + extra)
            out.append(extra)
        return out


def _swap_side(bone: str) -> str:
    if bone.startswith("left_"):
        return "right_" + bone[5:]
    return "left_" + bone.removeprefix("right_")


def _make_actor(template: NodePath) -> Actor:
    from direct.actor.Actor import Actor  # late: direct is only needed for rigged avatars

    return Actor(template)  # copies the template, so each visitor poses their own skeleton


class _Figure:
    """One visitor's avatar: a node with a stick-figure mesh, or a copy of a body model (posed, when rigged)."""

    def __init__(self, root: NodePath, visitor_id: int, template: NodePath | None, rig: _Rig | None = None) -> None:
        self.node = root.attachNewNode(f"visitor-{visitor_id}")
        self.mesh = DynamicMesh("stick", self.node)
        self.model: NodePath | None = None
        self.model_height = 1.0
        self.controls: list[NodePath] = []
        """Per driven joint of ``rig`` (same order): the node that replaces its animated transform."""
        if template is not None:
            if rig is not None:
                actor = _make_actor(template)
                actor.reparentTo(self.node)
                self.controls = [actor.controlJoint(None, "modelRoot", j.name) for j in rig.joints]
                for control, j in zip(self.controls, rig.joints, strict=True):
                    control.setMat(j.rest_local)
                self.model = actor
            else:
                self.model = template.copyTo(self.node)
            lo, hi = self.model.getTightBounds() or (None, None)
            if lo is not None and hi is not None:
                self.model_height = max(float(hi.z - lo.z), 1e-6)

    def remove(self) -> None:
        """Take the figure out of the scene for good (an Actor also lets go of its joints and bundles)."""
        cleanup = getattr(self.model, "cleanup", None)  # an Actor's; a plain model copy has none
        if cleanup is not None:
            cleanup()
        self.node.removeNode()

    def pose(self, rig: _Rig, rolls: list[float | None]) -> None:
        """Set each driven joint to its rest transform followed by its extra roll, about the joint's origin."""
        for control, j, roll in zip(self.controls, rig.joints, rolls, strict=True):
            if roll is None:
                control.setMat(j.rest_local)
                continue
            mat = Mat4(j.rest_local)
            # Row vectors: the rest rotation first, then the roll in the parent's space; the
            # translation row stays, so the joint turns about its own origin.
            mat.setUpper3(j.rest_local.getUpper3() * Mat3.rotateMat(math.degrees(roll), j.axis))
            control.setMat(mat)


class AvatarLayer:
    """A stick figure per visitor of ``spec.sensor``, matched by visitor id across frames."""

    def __init__(self, spec: AvatarsSpec, parent: NodePath, base_dir: Path) -> None:
        self.spec = spec
        self.node: NodePath = parent.attachNewNode(f"avatars-{spec.sensor}")
        self.node.setLightOff(1)  # flat, unlit colour: a figure reads the same under any scene lighting
        self.node.setTwoSided(True)
        self.node.setTransparency(TransparencyAttrib.M_alpha)
        self._color = rgba(spec.color)
        self._alpha = spec.alpha
        self._thickness = spec.thickness
        self._figures: dict[int, _Figure] = {}
        self.project: Projection | None = None
        """Set by the renderer in AR mirror mode, so figures lie on the visitors in the picture."""
        self._template: NodePath | None = None
        self._rig: _Rig | None = None
        if spec.style == "model" and spec.file:
            self._template = _load_model(base_dir / spec.file)
            if self._template is None:
                log.warning("avatars: falling back to stick figures")
            elif not self._template.find("**/+Character").isEmpty():
                self._rig = _Rig(self._template, {str(bone): joint for bone, joint in spec.bones.items()})
                if self._rig.missing:  # once per layer, not per visitor or frame
                    log.warning("avatars %s: skipping joints: %s", spec.file, ", ".join(self._rig.missing))
        self._apply_color()
        self.node.show() if spec.visible else self.node.hide()

    @staticmethod
    def properties() -> tuple[str, ...]:
        """Bindable property names."""
        return ("alpha", "visible", "thickness")

    @property
    def visible_ids(self) -> tuple[int, ...]:
        """Ids of the visitors that have a figure now, in ascending order."""
        return tuple(sorted(self._figures))

    def figure_node(self, visitor_id: int) -> NodePath:
        """The node of one visitor's figure (KeyError if they have none)."""
        return self._figures[visitor_id].node

    def figure_model(self, visitor_id: int) -> NodePath | None:
        """One visitor's body model (an ``Actor`` when rigged), None for a stick figure (KeyError: no figure)."""
        return self._figures[visitor_id].model

    @property
    def driven_joints(self) -> tuple[str, ...]:
        """Names of the model joints that follow the visitors (empty without a rigged model)."""
        return tuple(j.name for j in self._rig.joints) if self._rig is not None else ()

    def set_property(self, name: str, value: float | bool) -> None:
        if name == "alpha":
            self._alpha = min(max(float(value), 0.0), 1.0)
            self._apply_color()
        elif name == "visible":
            self.node.show() if value else self.node.hide()
        elif name == "thickness":
            self._thickness = max(float(value), 1e-4)
        else:
            raise _invalid_property("avatars", name, self.properties())

    def _apply_color(self) -> None:
        r, g, b, a = self._color
        self.node.setColorScale(1.0, 1.0, 1.0, self._alpha)
        self._rgba = np.array([r, g, b, a], dtype=np.float32)

    def update(self, snapshot: SceneSnapshot, dt: float) -> None:
        visitors = snapshot.visitors.get(self.spec.sensor, ())
        present = {v.id for v in visitors}
        for gone in [i for i in self._figures if i not in present]:
            self._figures.pop(gone).remove()
        for visitor in visitors:
            figure = self._figures.get(visitor.id)
            if figure is None:
                figure = self._figures[visitor.id] = _Figure(self.node, visitor.id, self._template, self._rig)
            self._draw(figure, visitor)

    def _draw(self, figure: _Figure, visitor: VisitorPose) -> None:
        spec = self.spec
        if figure.model is not None:
            self._place_model(figure, visitor)
            return
        points = None
        if self.project is not None:
            points = _placed(spec, self.node, self.project, np.asarray(visitor.landmarks, dtype=np.float32)[:, :2])
        pos, idx = stick_figure(spec, visitor.landmarks, self._thickness, spec.min_visibility, spec.head_radius, points)
        rows = np.empty((pos.shape[0], VERTEX_FLOATS), dtype=np.float32)
        rows[:, 0:3] = pos
        rows[:, 3:7] = self._rgba
        rows[:, 7:9] = 0.0
        figure.mesh.set(rows, idx)

    def _place_model(self, figure: _Figure, visitor: VisitorPose) -> None:
        """Stand the body model on the visitor's feet, as tall as they are; hidden if hips are unseen."""
        assert figure.model is not None
        lm = np.asarray(visitor.landmarks, dtype=np.float32)
        seen = lm[:, 3] >= self.spec.min_visibility
        if not (seen[23] and seen[24]):
            figure.model.hide()
            return
        figure.model.show()
        pts = _placed(self.spec, self.node, self.project, lm[:, :2])
        top_candidates = [i for i in (0, 7, 8) if seen[i]]
        feet = [i for i in (27, 28, 29, 30) if seen[i]]
        hip = (pts[23] + pts[24]) / 2
        top = pts[top_candidates].max(axis=0)[2] if top_candidates else hip[2] + 0.5 * self.spec.height * 0.25
        bottom = pts[feet].min(axis=0)[2] if feet else hip[2] - (top - hip[2]) * 1.2
        height = max(float(top - bottom), 1e-3) * 1.1  # the head's top is above the nose and ears
        figure.model.setScale(height / figure.model_height)
        figure.model.setPos(float(hip[0]), float(hip[1]), float(bottom))
        if self._rig is not None:
            # Uniform scale and a shift keep angles in the x-z plane, so scene points serve as model-plane ones.
            ref = _placed(self.spec, self.node, self.project, np.array([[0.25, 0.5], [0.75, 0.5]], dtype=np.float32))
            mirrored = bool(np.isfinite(ref).all() and ref[0, 0] > ref[1, 0])
            figure.pose(self._rig, self._rig.rolls(pts, seen & np.isfinite(pts).all(axis=1), mirrored))

    def destroy(self) -> None:
        for figure in self._figures.values():
            figure.remove()
        self._figures.clear()
        self.node.removeNode()
