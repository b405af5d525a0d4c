"""Runtime of the body-driven scene elements: stick-figure avatars, lantern particles, lantern fields.

Each element is ``Cls(spec, parent, base_dir)`` with ``update(snapshot, dt)``, ``set_property(name,
value)`` for the properties mappings may bind (listed by ``properties()``), and ``destroy()``.

Drawing strategy: every element draws with as few Geoms as possible, because on a software or
embedded GL the cost is per draw call and per scene-graph node, not per vertex:

* particles: one Geom for all of an emitter's particles, its vertex and index arrays rewritten each
  frame from numpy state arrays (``Geom.UHDynamic``, bytes copied straight into the array handles);
* instance fields: one merged Geom holding every copy, built once; sway rewrites only its vertex
  array (a few thousand vertices, well under a millisecond in numpy). We chose this over hardware
  instancing (``setInstanceCount`` plus a shader) because it needs no shader and no GLSL version, so
  it draws identically on fixed-function, software (llvmpipe/p3headlessgl) and embedded GL, and
  glow is a colour scale on the node (no vertex rewrite at all);
* avatars: one small dynamic Geom per visitor (bones, joints and head), so a figure is a node that
  appears and disappears with its visitor; or, with a rigged body model, an Actor per visitor whose
  limb joints are rolled in the picture plane to mirror the visitor (see :class:`_Rig`).

Nothing here reads the signal store: all input comes from :class:`content.snapshot.SceneSnapshot`.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from panda3d.core import (
    CharacterJoint,
    ColorBlendAttrib,
    Geom,
    GeomNode,
    GeomTriangles,
    GeomVertexArrayFormat,
    GeomVertexData,
    GeomVertexFormat,
    GeomVertexReader,
    InternalName,
    LMatrix4f,
    Mat3,
    Mat4,
    NodePath,
    OmniBoundingVolume,
    PartGroup,
    PNMImage,
    Shader,
    Texture,
    TransparencyAttrib,
    Vec3,
)

from content.element_specs import (
    AVATAR_BONES,
    AvatarsSpec,
    EmitterSpec,
    ImageArea,
    InstancesSpec,
    landmark_index,
    rgba,
)
from content.snapshot import SceneSnapshot, VisitorPose

if TYPE_CHECKING:
    from direct.actor.Actor import Actor

    from content.scene_model import AnchorNode

__all__ = [
    "AnchorLayer",
    "AvatarLayer",
    "AvatarsSpec",
    "DynamicMesh",
    "Emitter",
    "EmitterSpec",
    "InstanceField",
    "InstancesSpec",
    "Projection",
    "image_to_scene",
]

log = logging.getLogger("content.elements")

F32 = npt.NDArray[np.float32]
U32 = npt.NDArray[np.uint32]
FloatArray = npt.NDArray[np.floating]

VERTEX_FLOATS = 9
"""Floats per vertex in :class:`DynamicMesh`: x, y, z, r, g, b, a, u, v."""

_FORMAT: GeomVertexFormat | None = None


def _vertex_format() -> GeomVertexFormat:
    """Interleaved float32 position, colour, uv: matches the (n, 9) numpy rows byte for byte."""
    global _FORMAT
    if _FORMAT is None:
        array = GeomVertexArrayFormat()
        array.addColumn(InternalName.getVertex(), 3, Geom.NT_float32, Geom.C_point)
        array.addColumn(InternalName.getColor(), 4, Geom.NT_float32, Geom.C_color)
        array.addColumn(InternalName.getTexcoord(), 2, Geom.NT_float32, Geom.C_texcoord)
        _FORMAT = GeomVertexFormat.registerFormat(GeomVertexFormat(array))
    return _FORMAT


def _bytes(array: npt.NDArray[np.generic]) -> memoryview:
    """A contiguous array's bytes, without a copy (empty arrays too, which memoryview.cast refuses)."""
    return array.reshape(-1).view(np.uint8).data


class DynamicMesh:
    """One GeomNode with one Geom whose vertices and triangles are replaced wholesale by :meth:`set`."""

    def __init__(self, name: str, parent: NodePath) -> None:
        # Kept and written in place: Geom.modifyVertexData() copies on write once the munged-geom cache holds
        # the data (after the first draw), and each frame's copy then stayed cached (up to geom-cache-size).
        self._vdata = GeomVertexData(name, _vertex_format(), Geom.UHDynamic)
        self._triangles = GeomTriangles(Geom.UHDynamic)
        self._triangles.setIndexType(Geom.NT_uint32)  # particles can exceed 65536 vertices
        geom = Geom(self._vdata)
        geom.addPrimitive(self._triangles)
        self._node = GeomNode(name)
        self._node.addGeom(geom)
        # Vertices move every frame: recomputing bounds each frame costs more than never culling.
        self._node.setBounds(OmniBoundingVolume())
        self._node.setFinal(True)
        self.node_path: NodePath = parent.attachNewNode(self._node)
        self._geom = self._node.modifyGeom(0)
        self.num_vertices = 0
        self.num_triangles = 0

    def set(self, vertices: F32, indices: U32) -> None:
        """Replace the mesh: ``vertices`` (n, 9) float32 rows, ``indices`` flat uint32 triangle corners."""
        vertices = np.ascontiguousarray(vertices, dtype=np.float32)
        indices = np.ascontiguousarray(indices, dtype=np.uint32)
        self._vdata.modifyArray(0).modifyHandle().copyDataFrom(_bytes(vertices))
        self._triangles.modifyVertices().modifyHandle().copyDataFrom(_bytes(indices))
        self._geom.setPrimitive(0, self._triangles)  # new topology: the Geom's munged copies are stale
        self.num_vertices = int(vertices.shape[0])
        self.num_triangles = int(indices.shape[0] // 3)

    def set_positions(self, vertices: F32) -> None:
        """Replace the vertex rows only (same count and topology as before)."""
        vertices = np.ascontiguousarray(vertices, dtype=np.float32)
        self._vdata.modifyArray(0).modifyHandle().copyDataFrom(_bytes(vertices))


def image_to_scene(area: ImageArea, xy: FloatArray) -> F32:
    """Normalised image points (n, 2), y down, onto the area's upright plane: scene (n, 3), z up."""
    xy = np.asarray(xy, dtype=np.float32).reshape(-1, 2)
    out = np.empty((xy.shape[0], 3), dtype=np.float32)
    sign = -1.0 if area.mirror else 1.0
    out[:, 0] = area.center[0] + sign * (xy[:, 0] - 0.5) * area.width
    out[:, 1] = area.depth
    out[:, 2] = area.center[1] + (0.5 - xy[:, 1]) * area.height
    return out


Projection = Callable[[NodePath, FloatArray, float], F32]
"""AR mirror placement, set by the renderer in mirror mode: ``(node, image points (n, 2), depth)`` ->
points (n, 3) in ``node``'s coordinates, on the plane y = ``depth``, that the scene camera shows exactly
where the mirror picture shows those image points (NaN rows: not placeable)."""


def _placed(area: ImageArea, node: NodePath, project: Projection | None, xy: FloatArray) -> F32:
    """Image points in ``node``'s coordinates: on the mirror picture when there is one, else on the image area."""
    if project is not None:
        return project(node, np.asarray(xy, dtype=np.float32).reshape(-1, 2), area.depth)
    return image_to_scene(area, xy)


def _invalid_property(owner: str, name: str, valid: Iterable[str]) -> ValueError:
    return ValueError(f"{owner} has no bindable property {name!r}; valid: {', '.join(valid)}")


def _load_model(path: Path) -> NodePath | None:
    """A model file as a NodePath, loaded as scene nodes are (glTF through panda3d-gltf: Panda3D's own
    loader may pick Assimp, which leaves glTF's Y-up axes); None if it fails, so the caller falls back."""
    from content.scene_build import SceneBuildError, load_model  # late: scene_build imports this module

    try:
        model = load_model(path)
    except SceneBuildError as exc:  # a bad file must not take the scene down
        log.warning("cannot load model %s: %s", path, exc)
        return None
    if model.isEmpty():
        log.warning("cannot load model %s", path)
        return None
    return model


@functools.cache
def _disc(n: int) -> F32:
    """Unit circle points (n, 2); cached (read-only), as avatars ask for the same few every frame."""
    a = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False, dtype=np.float32)
    ring = np.stack([np.cos(a), np.sin(a)], axis=1).astype(np.float32)
    ring.flags.writeable = False
    return ring


# --------------------------------------------------------------------------------------------- avatars

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


# ------------------------------------------------------------------------------------------- particles

_GLOW_TEXTURE: Texture | None = None


def glow_texture() -> Texture:
    """A soft round spot (white, alpha falling off from the centre): what makes a quad a glowing lantern."""
    global _GLOW_TEXTURE
    if _GLOW_TEXTURE is None:
        size = 64
        image = PNMImage(size, size, 4)
        c = (size - 1) / 2
        for y in range(size):
            for x in range(size):
                r = math.hypot(x - c, y - c) / c
                a = max(0.0, 1.0 - r) ** 1.5
                core = 1.0 if r < 0.35 else max(0.0, 1.0 - (r - 0.35) / 0.65)
                image.setXelA(x, y, 1.0, 0.85 + 0.15 * core, 0.7 + 0.3 * core, a)
        tex = Texture("lantern-glow")
        tex.load(image)
        tex.setWrapU(Texture.WM_clamp)
        tex.setWrapV(Texture.WM_clamp)
        _GLOW_TEXTURE = tex
    return _GLOW_TEXTURE


_QUAD_CORNERS = np.array([[-0.5, 0.0, -0.5], [0.5, 0.0, -0.5], [0.5, 0.0, 0.5], [-0.5, 0.0, 0.5]], dtype=np.float32)
_QUAD_UV = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=np.float32)
_QUAD_INDICES = np.array([0, 1, 2, 0, 2, 3], dtype=np.uint32)

SourceKey = int | str
MAX_SPAWN_DT = 0.5
"""Most seconds of emission one update makes up for."""


class Emitter:
    """A deterministic particle system: numpy state arrays, one dynamic Geom, quads facing the camera axis.

    Sources are every visitor's ``spec.landmark`` (those passing ``spec.when``) or the fixed
    ``spec.pos``. Each source spawns ``rate`` particles per second (fractions carry over between
    frames, per source), so the count does not depend on the frame rate."""

    def __init__(self, spec: EmitterSpec, parent: NodePath, base_dir: Path) -> None:
        self.spec = spec
        cap = spec.max_particles
        self._rng = np.random.default_rng(spec.seed)
        self._pos = np.zeros((cap, 3), dtype=np.float32)
        self._vel = np.zeros((cap, 3), dtype=np.float32)
        self._age = np.zeros(cap, dtype=np.float32)
        self._life = np.ones(cap, dtype=np.float32)
        self._phase = np.zeros(cap, dtype=np.float32)
        self._n = 0  # alive particles are packed into the first _n rows
        self._carry: dict[SourceKey, float] = {}
        self._burst_sources: list[F32] = []
        self._rate = spec.rate
        self._size_scale = 1.0
        self._index = landmark_index(spec.landmark) if spec.landmark else -1
        self.project: Projection | None = None
        """Set by the renderer in AR mirror mode, so lanterns leave the hands seen in the picture."""
        self._c0 = np.array(rgba(spec.color), dtype=np.float32)
        self._c1 = np.array(rgba(spec.color_end), dtype=np.float32)
        self._indices = ((np.arange(cap, dtype=np.uint32) * 4)[:, None] + _QUAD_INDICES[None, :]).reshape(
            -1
        )  # topology for every possible particle, sliced per frame

        self.node: NodePath = parent.attachNewNode(f"emitter-{spec.landmark or 'pos'}")
        self.mesh = DynamicMesh("particles", self.node)
        self.node.setTexture(glow_texture())
        self.node.setLightOff(1)
        self.node.setTwoSided(True)
        self.node.setDepthWrite(False)  # glows overlap without cutting each other out
        self.node.setBin("transparent", 10)
        if spec.blend == "add":
            self.node.setAttrib(
                ColorBlendAttrib.make(ColorBlendAttrib.M_add, ColorBlendAttrib.O_incoming_alpha, ColorBlendAttrib.O_one)
            )
        else:
            self.node.setTransparency(TransparencyAttrib.M_alpha)
        self.node.show() if spec.visible else self.node.hide()

    @staticmethod
    def properties() -> tuple[str, ...]:
        """Bindable property names."""
        return ("rate", "alpha", "visible", "size")

    @property
    def alive(self) -> int:
        """Particles alive now."""
        return self._n

    def positions(self) -> F32:
        """A copy of the alive particles' scene positions (n, 3), without sway."""
        return self._pos[: self._n].copy()

    def set_property(self, name: str, value: float | bool) -> None:
        if name == "rate":
            self._rate = max(float(value), 0.0)
        elif name == "alpha":
            self.node.setAlphaScale(min(max(float(value), 0.0), 1.0))
        elif name == "visible":
            self.node.show() if value else self.node.hide()
        elif name == "size":
            self._size_scale = max(float(value), 0.0)
        else:
            raise _invalid_property("emitter", name, self.properties())

    # -- sources

    def _sources(self, snapshot: SceneSnapshot) -> tuple[list[tuple[SourceKey, F32]], list[F32]]:
        """(key, position) of the sources emitting now, and every visible source (where bursts come from)."""
        spec = self.spec
        if spec.pos is not None:
            p = np.array(spec.pos, dtype=np.float32)
            return [("pos", p)], [p]
        active: list[tuple[SourceKey, F32]] = []
        seen_all: list[F32] = []
        assert spec.sensor is not None
        for visitor in sorted(snapshot.visitors.get(spec.sensor, ()), key=lambda v: v.id):
            lm = np.asarray(visitor.landmarks, dtype=np.float32)
            if not (lm[self._index, 3] >= spec.min_visibility and np.isfinite(lm[self._index, :2]).all()):
                continue
            p = _placed(spec, self.node, self.project, lm[self._index, :2])[0]
            if not np.isfinite(p).all():
                continue
            seen_all.append(p)
            if spec.when == "hand_raised" and not self._hand_raised(lm):
                continue
            active.append((visitor.id, p))
        return active, seen_all

    def _hand_raised(self, lm: F32) -> bool:
        """A wrist above its shoulder in the image (smaller y), both seen; the landmark's side, else either."""
        name = self.spec.landmark or ""
        sides = [(15, 11)] if name.startswith("left_") else [(16, 12)] if name.startswith("right_") else []
        if not sides:
            sides = [(15, 11), (16, 12)]
        mv = self.spec.min_visibility
        return any(lm[w, 3] >= mv and lm[s, 3] >= mv and lm[w, 1] < lm[s, 1] for w, s in sides)

    # -- simulation

    def _spawn(self, origin: F32, count: int, spread: float) -> None:
        count = min(count, self.spec.max_particles - self._n)
        if count <= 0:
            return
        spec = self.spec
        rng = self._rng
        sl = slice(self._n, self._n + count)
        self._pos[sl] = origin + rng.normal(0.0, spec.size * 0.2, (count, 3)).astype(np.float32)
        self._vel[sl] = np.asarray(spec.velocity, dtype=np.float32) + rng.uniform(-spread, spread, (count, 3))
        self._age[sl] = 0.0
        self._life[sl] = spec.lifetime * rng.uniform(0.8, 1.2, count)
        self._phase[sl] = rng.uniform(0.0, 2.0 * math.pi, count)
        self._n += count

    def burst(self, count: int) -> None:
        """Spawn ``count`` particles at once (up to ``max_particles``), shared among the current sources
        (every visitor whose landmark is seen, whatever ``when`` says), else from the area's centre."""
        spec = self.spec
        sources = self._burst_sources or [np.array([spec.center[0], spec.depth, spec.center[1]], dtype=np.float32)]
        share, extra = divmod(max(int(count), 0), len(sources))
        for i, origin in enumerate(sources):
            self._spawn(origin, share + (1 if i < extra else 0), max(spec.spread * 2.0, 0.2))

    def update(self, snapshot: SceneSnapshot, dt: float) -> None:
        spec = self.spec
        dt = max(float(dt), 0.0)
        n = self._n
        if n:
            # Age, kill, then integrate the survivors (semi-implicit Euler, exponential drag).
            self._age[:n] += dt
            keep = self._age[:n] < self._life[:n]
            if not keep.all():
                m = int(keep.sum())
                for arr in (self._pos, self._vel, self._age, self._life, self._phase):
                    arr[:m] = arr[:n][keep]
                n = self._n = m
            self._vel[:n, 2] += spec.gravity * dt
            self._vel[:n] *= math.exp(-spec.drag * dt)
            self._pos[:n] += self._vel[:n] * dt

        active, self._burst_sources = self._sources(snapshot)
        keys = set()
        # After a stall (a long dt) emit at most half a second's worth, not a sudden flood.
        spawn_dt = min(dt, MAX_SPAWN_DT)
        for key, origin in active:
            keys.add(key)
            carry = self._carry.get(key, 0.0) + self._rate * spawn_dt
            whole = int(carry)
            self._carry[key] = carry - whole
            self._spawn(origin, whole, spec.spread)
        for key in [k for k in self._carry if k not in keys]:
            del self._carry[key]  # a source that stops starts afresh next time
        self._draw()

    def _draw(self) -> None:
        spec = self.spec
        n = self._n
        if n == 0:
            self.mesh.set(np.zeros((0, VERTEX_FLOATS), dtype=np.float32), np.zeros(0, dtype=np.uint32))
            return
        age, life = self._age[:n], self._life[:n]
        t = np.clip(age / life, 0.0, 1.0)[:, None]
        center = self._pos[:n].copy()
        # Sway is a function of age, not integrated: deterministic, and it starts at zero so a lantern
        # leaves the hand from the hand.
        sway = spec.sway * np.sin(2.0 * math.pi * spec.sway_speed * age + self._phase[:n]) * np.minimum(age, 1.0)
        center[:, 0] += sway
        size_end = spec.size_end if spec.size_end is not None else spec.size
        size = (spec.size + (size_end - spec.size) * t[:, 0]) * self._size_scale
        color = self._c0 + (self._c1 - self._c0) * t
        fade_in = np.minimum(age / spec.fade_in, 1.0) if spec.fade_in > 0 else np.ones_like(age)
        color[:, 3] *= fade_in * (1.0 - t[:, 0])
        rows = np.empty((n, 4, VERTEX_FLOATS), dtype=np.float32)
        rows[:, :, 0:3] = center[:, None, :] + _QUAD_CORNERS[None, :, :] * size[:, None, None]
        rows[:, :, 3:7] = color[:, None, :]
        rows[:, :, 7:9] = _QUAD_UV[None, :, :]
        self.mesh.set(rows.reshape(-1, VERTEX_FLOATS), self._indices[: n * 6])

    def destroy(self) -> None:
        self.node.removeNode()


# ------------------------------------------------------------------------------------------- instances


def lantern_mesh(sides: int = 8) -> tuple[F32, F32, U32]:
    """A low-poly paper lantern one unit tall, centred on the origin: positions, colours (glowing
    middle, darker rims), triangle indices."""
    profile = [(0.18, -0.5, 0.35), (0.42, -0.28, 0.8), (0.5, 0.02, 1.0), (0.42, 0.3, 0.85), (0.18, 0.5, 0.35)]
    ring = _disc(sides)
    pos: list[list[float]] = []
    shade: list[float] = []
    for radius, z, s in profile:
        for cx, cy in ring:
            pos.append([float(cx) * radius, float(cy) * radius, z])
            shade.append(s)
    bottom, top = len(pos), len(pos) + 1
    pos += [[0.0, 0.0, -0.5], [0.0, 0.0, 0.5]]
    shade += [0.25, 0.25]
    idx: list[int] = []
    for r in range(len(profile) - 1):
        for k in range(sides):
            a, b = r * sides + k, r * sides + (k + 1) % sides
            c, d = a + sides, b + sides
            idx += [a, b, d, a, d, c]
    last = (len(profile) - 1) * sides
    for k in range(sides):
        idx += [bottom, (k + 1) % sides, k, top, last + k, last + (k + 1) % sides]
    colors = np.array([[s, s, s, 1.0] for s in shade], dtype=np.float32)
    return np.array(pos, dtype=np.float32), colors, np.array(idx, dtype=np.uint32)


def quad_mesh() -> tuple[F32, F32, U32]:
    """A flat glowing square facing the camera axis: bright centre vertex, dim corners."""
    pos = np.array([[0, 0, 0], [-0.5, 0, -0.5], [0.5, 0, -0.5], [0.5, 0, 0.5], [-0.5, 0, 0.5]], dtype=np.float32)
    colors = np.array([[1, 1, 1, 1]] + [[0.3, 0.3, 0.3, 1]] * 4, dtype=np.float32)
    idx = np.array([0, 1, 2, 0, 2, 3, 0, 3, 4, 0, 4, 1], dtype=np.uint32)
    return pos, colors, idx


def box_mesh() -> tuple[F32, F32, U32]:
    """A unit cube, its top and bottom a little darker so edges read without lighting."""
    pos = np.array([[x, y, z] for z in (-0.5, 0.5) for y in (-0.5, 0.5) for x in (-0.5, 0.5)], dtype=np.float32)
    colors = np.array([[0.8, 0.8, 0.8, 1]] * 4 + [[1, 1, 1, 1]] * 4, dtype=np.float32)
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    idx = [i for a, b, c, d in faces for i in (a, b, c, a, c, d)]
    return pos, colors, np.array(idx, dtype=np.uint32)


def mesh_from_model(model: NodePath) -> tuple[F32, F32, U32]:
    """Every triangle of a loaded model, transforms applied, as one mesh (vertex colours kept; textures
    and materials are not: instance fields draw flat, lit by ``glow``)."""
    positions: list[F32] = []
    colors: list[F32] = []
    indices: list[U32] = []
    offset = 0
    for geom_np in model.findAllMatches("**/+GeomNode"):
        mat = geom_np.getMat(model)
        geom_node = geom_np.node()
        assert isinstance(geom_node, GeomNode)
        for g in range(geom_node.getNumGeoms()):
            geom = geom_node.getGeom(g).decompose()  # strips and fans -> plain triangles
            vdata = geom.getVertexData()
            rows = vdata.getNumRows()
            reader = GeomVertexReader(vdata, "vertex")
            pts = np.empty((rows, 3), dtype=np.float32)
            for i in range(rows):
                p = mat.xformPoint(reader.getData3())
                pts[i] = (p.x, p.y, p.z)
            col = np.ones((rows, 4), dtype=np.float32)
            if vdata.hasColumn("color"):
                creader = GeomVertexReader(vdata, "color")
                for i in range(rows):
                    c = creader.getData4()
                    col[i] = (c.x, c.y, c.z, c.w)
            tris: list[int] = []
            for p_i in range(geom.getNumPrimitives()):
                prim = geom.getPrimitive(p_i)
                if not isinstance(prim, GeomTriangles):
                    continue
                tris += [prim.getVertex(i) for i in range(prim.getNumVertices())]
            positions.append(pts)
            colors.append(col)
            indices.append(np.asarray(tris, dtype=np.uint32) + np.uint32(offset))
            offset += rows
    if not positions:
        raise ValueError("the model has no triangles")
    return np.concatenate(positions), np.concatenate(colors), np.concatenate(indices)


class InstanceField:
    """``count`` copies of one shape scattered over an area, merged into a single Geom."""

    def __init__(self, spec: InstancesSpec, parent: NodePath, base_dir: Path) -> None:
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        n = spec.count
        x0, y0, x1, y1 = spec.area
        self._centers = np.stack(
            [rng.uniform(x0, x1, n), rng.uniform(y0, y1, n), rng.uniform(spec.height[0], spec.height[1], n)], axis=1
        ).astype(np.float32)
        scale = spec.size * (1.0 + rng.uniform(-spec.size_jitter, spec.size_jitter, n))
        bright = 1.0 + rng.uniform(-spec.color_jitter, spec.color_jitter, n)
        self._phase = rng.uniform(0.0, 2.0 * math.pi, (n, 2)).astype(np.float32)
        self._speed = (spec.sway_speed * rng.uniform(0.8, 1.2, n)).astype(np.float32)

        shape = self._template(spec, base_dir)
        tpos, tcol, tidx = shape
        v = tpos.shape[0]
        self.vertices_per_copy = v
        self._local = (tpos[None, :, :] * scale[:, None, None]).astype(np.float32)  # (n, v, 3)
        self._rows = np.empty((n, v, VERTEX_FLOATS), dtype=np.float32)
        base_color = np.array(rgba(spec.color), dtype=np.float32)
        self._rows[:, :, 3:7] = tcol[None, :, :] * base_color[None, None, :]
        self._rows[:, :, 3:6] *= bright[:, None, None]
        self._rows[:, :, 3:6] = np.clip(self._rows[:, :, 3:6], 0.0, 1.0)
        # Per copy, for the sway shader: its phase and its speed (u, v); the fixed-function path ignores them.
        self._rows[:, :, 7] = self._phase[:, 0:1]
        self._rows[:, :, 8] = self._speed[:, None]
        indices = ((np.arange(n, dtype=np.uint32) * np.uint32(v))[:, None] + tidx[None, :]).reshape(-1)
        self._time = 0.0
        self._glow = spec.glow
        self._alpha = spec.alpha
        self._sway = spec.sway
        self._moves = spec.sway > 0 or spec.bob > 0
        self._shaders = True
        """False once the renderer said it has no shaders (use_cpu_motion)."""

        self.node: NodePath = parent.attachNewNode("instances")
        self.node.setLightOff(1)
        self.node.setTwoSided(True)
        self.mesh = DynamicMesh("instances", self.node)
        self._gpu_motion = False
        self._write_positions()
        self.mesh.set(self._rows.reshape(-1, VERTEX_FLOATS), indices)
        self._apply_scale()
        self.node.show() if spec.visible else self.node.hide()
        if self._moves:
            self._use_gpu_motion()

    def _use_gpu_motion(self) -> None:
        """Sway and bob in a vertex shader: the merged mesh is uploaded once instead of every frame
        (re-uploading 300 lanterns' vertices doubled the frame time on software GL)."""
        self._gpu_motion = True
        self.node.setShader(_sway_shader())
        self.node.setShaderInput("sway_time", self._time)
        self.node.setShaderInput("sway", (self._sway, self.spec.bob))

    def use_cpu_motion(self) -> None:
        """For renderers without shaders (Panda3D's software renderer): move the vertices here instead."""
        self._gpu_motion = self._shaders = False
        self.node.clearShader()
        self._write_positions()
        self.mesh.set_positions(self._rows.reshape(-1, VERTEX_FLOATS))

    @staticmethod
    def _template(spec: InstancesSpec, base_dir: Path) -> tuple[F32, F32, U32]:
        if spec.file:
            model = _load_model(base_dir / spec.file)
            if model is not None:
                try:
                    return mesh_from_model(model)
                except ValueError as exc:
                    log.warning("instances: %s: %s; using the built-in %s", spec.file, exc, spec.shape)
        return {"lantern": lantern_mesh, "quad": quad_mesh, "box": box_mesh}[spec.shape]()

    @staticmethod
    def properties() -> tuple[str, ...]:
        """Bindable property names."""
        return ("glow", "alpha", "visible", "sway")

    @property
    def geom_count(self) -> int:
        """Geoms under this field's node (one: the merged mesh)."""
        return sum(gn.node().getNumGeoms() for gn in self.node.findAllMatches("**/+GeomNode"))

    def set_property(self, name: str, value: float | bool) -> None:
        if name == "glow":
            self._glow = min(max(float(value), 0.0), 1.0)
            self._apply_scale()
        elif name == "alpha":
            self._alpha = min(max(float(value), 0.0), 1.0)
            self._apply_scale()
        elif name == "visible":
            self.node.show() if value else self.node.hide()
        elif name == "sway":
            self._sway = max(float(value), 0.0)
            was_moving, self._moves = self._moves, self._sway > 0 or self.spec.bob > 0
            if self._gpu_motion:
                self.node.setShaderInput("sway", (self._sway, self.spec.bob))
            elif self._moves and not was_moving and self.node.getShader() is None and self._shaders:
                self._use_gpu_motion()
        else:
            raise _invalid_property("instances", name, self.properties())

    def _apply_scale(self) -> None:
        # Brightness as a colour scale: a uniform for the GPU, no vertex is rewritten when glow moves.
        g = self._glow
        self.node.setColorScale(g, g, g, self._alpha)
        if self._alpha < 1.0:
            self.node.setTransparency(TransparencyAttrib.M_alpha)
        else:
            self.node.clearTransparency()

    def _write_positions(self) -> None:
        t = self._time
        offset = np.zeros_like(self._centers)
        if self._moves:
            w = 2.0 * math.pi * self._speed * t
            offset[:, 0] = self._sway * np.sin(w + self._phase[:, 0])
            second = np.modf(self._phase[:, 0] * 1.618)[0] * 2.0 * math.pi  # as the shader derives it
            offset[:, 1] = self._sway * 0.5 * np.sin(0.7 * w + second)
            offset[:, 2] = self.spec.bob * np.sin(0.5 * w + second)
        self._rows[:, :, 0:3] = self._local + (self._centers + offset)[:, None, :]

    def update(self, snapshot: SceneSnapshot, dt: float) -> None:
        if not self._moves:
            return
        self._time += max(float(dt), 0.0)
        if self._gpu_motion:
            self.node.setShaderInput("sway_time", self._time)
            return
        self._write_positions()
        self.mesh.set_positions(self._rows.reshape(-1, VERTEX_FLOATS))

    def destroy(self) -> None:
        self.node.removeNode()


# The same motion as InstanceField._write_positions, per vertex on the GPU. u is the copy's phase, v its speed
# (the second phase is derived from the first: a fixed, different one per copy is all the look needs).
_SWAY_VERTEX = """#version 120
uniform mat4 p3d_ModelViewProjectionMatrix;
uniform float sway_time;
uniform vec2 sway;  // amplitude, bob
attribute vec4 p3d_Vertex;
attribute vec4 p3d_Color;
attribute vec2 p3d_MultiTexCoord0;
varying vec4 colour;
void main() {
    float phase = p3d_MultiTexCoord0.x;
    float second = fract(phase * 1.618) * 6.2831853;
    float w = 6.2831853 * p3d_MultiTexCoord0.y * sway_time;
    vec3 offset = vec3(sway.x * sin(w + phase), 0.5 * sway.x * sin(0.7 * w + second), sway.y * sin(0.5 * w + second));
    gl_Position = p3d_ModelViewProjectionMatrix * vec4(p3d_Vertex.xyz + offset, 1.0);
    colour = p3d_Color;
}
"""
_SWAY_FRAGMENT = """#version 120
uniform vec4 p3d_ColorScale;
varying vec4 colour;
void main() {
    gl_FragColor = colour * p3d_ColorScale;
}
"""
_SHADER: Shader | None = None


def _sway_shader() -> Shader:
    global _SHADER
    if _SHADER is None:
        _SHADER = Shader.make(Shader.SL_GLSL, _SWAY_VERTEX, _SWAY_FRAGMENT)
    return _SHADER


# --------------------------------------------------------------------------------------------- anchors


class AnchorLayer:
    """Instances of an anchor node's children on a landmark of every visitor of ``spec.sensor``.

    ``template`` holds the children, built once and kept off the scene graph; each visitor and
    landmark gets a node placed on the landmark with the template instanced under it, so bindings
    and events on a child act on every copy at once."""

    def __init__(self, spec: AnchorNode, node: NodePath, template: NodePath) -> None:
        self.spec = spec
        self.node = node
        self.template = template
        self.project: Projection | None = None
        """Set by the renderer in AR mirror mode: copies sit on the landmarks seen in the picture."""
        self._indices = np.array([landmark_index(name) for name in spec.landmarks()], dtype=np.intp)
        self._copies: dict[tuple[int, int], NodePath] = {}

    @staticmethod
    def properties() -> tuple[str, ...]:
        """Bindable property names of its own (none: its placement, tint and visibility are a node's)."""
        return ()

    def set_property(self, name: str, value: float | bool) -> None:
        raise _invalid_property("anchor", name, self.properties())

    @property
    def keys(self) -> tuple[tuple[int, int], ...]:
        """(visitor id, landmark index) of every copy shown now, sorted."""
        return tuple(sorted(self._copies))

    def copy_node(self, visitor_id: int, landmark: int) -> NodePath:
        """The node carrying one copy (KeyError if there is none)."""
        return self._copies[(visitor_id, landmark)]

    def update(self, snapshot: SceneSnapshot, dt: float) -> None:
        wanted: dict[tuple[int, int], F32] = {}
        for visitor in snapshot.visitors.get(self.spec.sensor, ()):
            lm = np.asarray(visitor.landmarks, dtype=np.float32)
            if lm.shape[0] <= int(self._indices.max(initial=0)):
                continue
            rows = lm[self._indices]
            seen = (rows[:, 3] >= self.spec.min_visibility) & np.isfinite(rows[:, :2]).all(axis=1)
            if not seen.any():
                continue
            points = _placed(self.spec, self.node, self.project, rows[seen, :2])
            for index, point in zip(self._indices[seen], points, strict=True):
                if np.isfinite(point).all():
                    wanted[(visitor.id, int(index))] = point
        for key in [k for k in self._copies if k not in wanted]:
            self._copies.pop(key).removeNode()
        for key, point in wanted.items():
            copy = self._copies.get(key)
            if copy is None:
                copy = self._copies[key] = self.node.attachNewNode(f"visitor-{key[0]}-{key[1]}")
                self.template.instanceTo(copy)
            copy.setPos(float(point[0]), float(point[1]), float(point[2]))

    def destroy(self) -> None:
        for copy in self._copies.values():
            copy.removeNode()
        self._copies.clear()
        self.template.removeNode()
