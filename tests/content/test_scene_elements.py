"""Scene elements driven by visitors: stick-figure avatars, lantern particles, lantern fields.

Every render here is real: an offscreen p3headlessgl buffer, read back into numpy. The buffer is
made with panda3d.core directly (its own GraphicsEngine, no ShowBase), so these tests can share a
pytest process with others that open a ShowBase.
"""

from __future__ import annotations

import base64
import json
import logging
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from direct.actor.Actor import Actor
from pydantic import TypeAdapter, ValidationError

from content.element_specs import LANDMARK_NAMES, AvatarsSpec, ElementSpec, EmitterSpec, InstancesSpec, rgba
from content.elements import AvatarLayer, Emitter, InstanceField, image_to_scene
from content.snapshot import SceneSnapshot, VisitorPose
from sensors.pose.types import Landmark
from tests.support.pose_synth import hide, person

W, H = 320, 240
ASPECT = W / H
FILM = (4.0, 3.0)  # the orthographic camera sees exactly the default 4 x 3 image area


class Stage:
    """An offscreen buffer with an orthographic camera looking along +y at the x-z plane."""

    def __init__(self) -> None:
        from panda3d.core import (
            Camera,
            FrameBufferProperties,
            GraphicsEngine,
            GraphicsOutput,
            GraphicsPipe,
            GraphicsPipeSelection,
            NodePath,
            OrthographicLens,
            Texture,
            WindowProperties,
            loadPrcFileData,
        )

        loadPrcFileData("", "audio-library-name null\nnotify-level-display error\nnotify-level-egldisplay error")
        self.pipe = GraphicsPipeSelection.getGlobalPtr().makeModulePipe("p3headlessgl")
        assert self.pipe is not None, "p3headlessgl is not available"
        self.engine = GraphicsEngine(self.pipe)
        fb = FrameBufferProperties()
        fb.setRgbColor(True)
        fb.setRgbaBits(8, 8, 8, 8)
        fb.setDepthBits(24)
        self.buffer = self.engine.makeOutput(
            self.pipe, "elements", 0, fb, WindowProperties.size(W, H), GraphicsPipe.BF_refuse_window
        )
        assert self.buffer is not None, "cannot open an offscreen buffer"
        self.texture = Texture()
        self.buffer.addRenderTexture(self.texture, GraphicsOutput.RTM_copy_ram)
        self.buffer.setClearColor((0, 0, 0, 1))
        self.root = NodePath("render")
        lens = OrthographicLens()
        lens.setFilmSize(*FILM)
        lens.setNearFar(1.0, 200.0)
        camera = Camera("camera", lens)
        self.camera = self.root.attachNewNode(camera)
        self.camera.setPos(0, -20, 0)
        region = self.buffer.makeDisplayRegion()
        region.setCamera(self.camera)
        self.scene = self.root.attachNewNode("scene")

    def clear(self) -> None:
        self.scene.removeNode()
        self.scene = self.root.attachNewNode("scene")

    def render(self) -> np.ndarray:
        """The frame as (H, W, 3) uint8, top row first."""
        self.engine.renderFrame()
        self.engine.renderFrame()  # the RAM copy of a frame lands on the next one
        data = bytes(self.texture.getRamImageAs("RGB"))
        return np.frombuffer(data, dtype=np.uint8).reshape(H, W, 3)[::-1]

    def close(self) -> None:
        self.engine.removeAllWindows()


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    s = Stage()
    yield s
    s.close()


@pytest.fixture
def scene(stage: Stage) -> Stage:
    stage.clear()
    return stage


def visitor(vid: int, cx: float, arms: str = "down", **kw: str) -> VisitorPose:
    return VisitorPose(vid, person(cx=cx, cy=0.55, scale=0.13, arms=arms, aspect=ASPECT, **kw))  # type: ignore[arg-type]


def snap(t: float, *visitors: VisitorPose, sensor: str = "body") -> SceneSnapshot:
    return SceneSnapshot(time=t, visitors={sensor: tuple(visitors)})


def lit(img: np.ndarray, threshold: int = 40) -> np.ndarray:
    return img.max(axis=2) > threshold


# ---------------------------------------------------------------------------------------------- specs


def test_one_landmark_vocabulary_for_sensors_checks_and_scenes() -> None:
    assert [name.upper() for name in LANDMARK_NAMES] == [lm.name for lm in Landmark]
    assert Landmark.RIGHT_WRIST == 16 and len(LANDMARK_NAMES) == 33
    adapter = TypeAdapter(ElementSpec)
    with pytest.raises(ValidationError, match=r"`right_wirst` is not a body landmark \(did you mean `right_wrist`\?\)"):
        adapter.validate_python({"type": "emitter", "sensor": "body", "landmark": "right_wirst"})


def test_specs_validate_and_document_every_field() -> None:
    adapter = TypeAdapter(ElementSpec)
    spec = adapter.validate_python({"type": "emitter", "sensor": "body", "landmark": "right_wrist"})
    assert isinstance(spec, EmitterSpec)
    assert isinstance(adapter.validate_python({"type": "avatars"}), AvatarsSpec)
    assert isinstance(adapter.validate_python({"type": "instances", "count": 300}), InstancesSpec)
    with pytest.raises(ValidationError, match="needs 'sensor' and 'landmark'"):
        EmitterSpec(type="emitter")
    with pytest.raises(ValidationError, match="hand_raised"):
        EmitterSpec(type="emitter", pos=(0, 0, 0), when="hand_raised")
    with pytest.raises(ValidationError):
        EmitterSpec(type="emitter", sensor="body", landmark="right_hand")
    with pytest.raises(ValidationError, match="Extra inputs"):
        adapter.validate_python({"type": "avatars", "colour": "#ffffff"})
    with pytest.raises(ValidationError, match="#rrggbb"):
        AvatarsSpec(type="avatars", color="orange")
    assert rgba("#ff8000") == pytest.approx((1.0, 128 / 255, 0.0, 1.0))
    assert rgba((0.5, 0.5, 0.5)) == (0.5, 0.5, 0.5, 1.0)

    schema = adapter.json_schema()
    for model in schema["$defs"].values():
        for name, prop in model.get("properties", {}).items():
            assert prop.get("description"), f"{model['title']}.{name} has no description"


# -------------------------------------------------------------------------------------------- avatars


def test_two_visitors_get_one_avatar_each_in_their_half(scene: Stage) -> None:
    layer = AvatarLayer(AvatarsSpec(type="avatars", mirror=False), scene.scene, Path("."))
    layer.update(snap(0.0, visitor(1, 0.25), visitor(2, 0.75)), 1 / 30)
    assert layer.visible_ids == (1, 2)
    assert layer.node.getNumChildren() == 2
    img = lit(scene.render())
    left, right = img[:, : W // 2], img[:, W // 2 :]
    assert left.sum() > 300 and right.sum() > 300
    # Each figure is centred on its visitor: x = 0.25 and 0.75 of the width.
    cols = np.nonzero(img.any(axis=0))[0]
    assert cols.min() > 0.1 * W and cols.max() < 0.9 * W
    left_centre = np.nonzero(left.any(axis=0))[0].mean()
    assert abs(left_centre - 0.25 * W) < 0.05 * W

    # Visitor 1 leaves: their avatar goes, the other stays.
    layer.update(snap(0.1, visitor(2, 0.75)), 1 / 30)
    assert layer.visible_ids == (2,)
    assert layer.node.getNumChildren() == 1
    img = lit(scene.render())
    assert img[:, : W // 2].sum() == 0
    assert img[:, W // 2 :].sum() > 300


def test_four_visitors_four_avatars_and_mirroring(scene: Stage) -> None:
    xs = (0.125, 0.375, 0.625, 0.875)
    layer = AvatarLayer(AvatarsSpec(type="avatars"), scene.scene, Path("."))  # mirror: on by default
    layer.update(snap(0.0, *(visitor(i + 1, x) for i, x in enumerate(xs))), 1 / 30)
    assert layer.visible_ids == (1, 2, 3, 4)
    img = lit(scene.render())
    for i in range(4):
        assert img[:, i * W // 4 : (i + 1) * W // 4].sum() > 200, f"quarter {i} is empty"

    # Mirrored: the visitor at the image's left (0.125) is drawn at the screen's right.
    layer.update(snap(0.1, visitor(1, 0.125)), 1 / 30)
    img = lit(scene.render())
    assert layer.visible_ids == (1,)
    cols = np.nonzero(img.any(axis=0))[0]
    assert cols.min() > 0.75 * W
    assert abs(layer.figure_node(1).getPos().x) < 1e-6  # geometry moves, not the node


def test_low_visibility_landmarks_are_hidden(scene: Stage) -> None:
    layer = AvatarLayer(AvatarsSpec(type="avatars", mirror=False), scene.scene, Path("."))
    whole = visitor(1, 0.5)
    layer.update(snap(0.0, whole), 1 / 30)
    img = lit(scene.render())
    rows = np.nonzero(img.any(axis=1))[0]
    full_bottom = rows.max()
    legs = [Landmark.LEFT_KNEE, Landmark.RIGHT_KNEE, Landmark.LEFT_ANKLE, Landmark.RIGHT_ANKLE]
    legs += [Landmark.LEFT_FOOT_INDEX, Landmark.RIGHT_FOOT_INDEX]
    layer.update(snap(0.1, VisitorPose(1, hide(whole.landmarks, *legs))), 1 / 30)
    img = lit(scene.render())
    rows = np.nonzero(img.any(axis=1))[0]
    assert rows.max() < full_bottom - 0.15 * H, "legs were drawn though unseen"
    assert rows.max() < 0.6 * H  # nothing much below the hips (image y 0.55)


def test_model_avatars_stand_on_the_visitor(scene: Stage, tmp_path: Path) -> None:
    (tmp_path / "body.egg").write_text(_EGG_BOX)
    spec = AvatarsSpec(type="avatars", style="model", file="body.egg", mirror=False)
    layer = AvatarLayer(spec, scene.scene, tmp_path)
    layer.update(snap(0.0, visitor(7, 0.25)), 1 / 30)
    img = lit(scene.render())
    cols = np.nonzero(img.any(axis=0))[0]
    assert 0.1 * W < cols.mean() < 0.4 * W
    # A missing model falls back to stick figures rather than failing the scene.
    fallback = AvatarLayer(AvatarsSpec(type="avatars", style="model", file="missing.glb"), scene.scene, tmp_path)
    fallback.update(snap(0.0, visitor(1, 0.5)), 1 / 30)
    assert fallback.visible_ids == (1,)


RIGGED_BODY = Path(__file__).resolve().parents[2] / "content" / "assets" / "rigged_body.egg"


def rigged_layer(scene: Stage, **kw: object) -> AvatarLayer:
    spec = AvatarsSpec.model_validate({"type": "avatars", "style": "model", "file": RIGGED_BODY.name, **kw})
    return AvatarLayer(spec, scene.scene, RIGGED_BODY.parent)


def bone_angle(scene: Stage, layer: AvatarLayer, joint: str, child: str) -> float:
    """Screen angle (degrees, x right, z up) of a rendered model bone, from its joint to the child joint."""
    actor = layer.figure_model(1)
    a = actor.exposeJoint(None, "modelRoot", joint)  # type: ignore[union-attr]
    b = actor.exposeJoint(None, "modelRoot", child)  # type: ignore[union-attr]
    scene.render()  # exposed joints follow the skeleton as it is drawn
    pa, pb = a.getPos(scene.scene), b.getPos(scene.scene)
    return float(np.degrees(np.arctan2(pb.z - pa.z, pb.x - pa.x)))


def landmark_angle(layer: AvatarLayer, pose: VisitorPose, a: int, b: int) -> float:
    pts = image_to_scene(layer.spec, np.asarray(pose.landmarks)[:, :2])
    return float(np.degrees(np.arctan2(pts[b, 2] - pts[a, 2], pts[b, 0] - pts[a, 0])))


def test_rigged_avatar_raises_the_mirrored_arm(scene: Stage) -> None:
    layer = rigged_layer(scene)  # mirror: on by default
    assert layer.driven_joints == (
        "mixamorig:LeftArm",
        "mixamorig:LeftForeArm",
        "mixamorig:RightArm",
        "mixamorig:RightForeArm",
    )
    layer.update(snap(0.0, visitor(1, 0.5, right_arm="down")), 1 / 30)
    down = lit(scene.render())
    layer.update(snap(0.1, visitor(1, 0.5, right_arm="up")), 1 / 30)
    up = lit(scene.render())
    assert isinstance(layer.figure_model(1), Actor)

    # The model's shoulders: the top of its torso, which the arms do not move.
    centre = W // 2
    torso_top = int(np.nonzero(down[:, centre - 2 : centre + 3].any(axis=1))[0].min())  # the head's top
    shoulder_row = int(np.nonzero(down[:, centre + 12 : centre + 16].any(axis=1))[0].min())
    assert shoulder_row > torso_top + 5
    above = slice(0, shoulder_row - 3)
    # Raised: arm pixels above the shoulder on the screen's right (the mirror shows the right arm there),
    # and none on the left; hanging down: none above the shoulder beside the head at all.
    assert up[above, centre + 12 :].sum() > 30
    assert up[above, : centre - 12].sum() == 0
    assert down[above, centre + 12 :].sum() == 0
    # The other arm still hangs down, so both frames agree on the screen's left.
    assert np.array_equal(up[:, : centre - 12], down[:, : centre - 12])


def test_rigged_joint_rolls_match_the_landmarks(scene: Stage) -> None:
    layer = rigged_layer(scene, mirror=False)
    for arms in ("up", "t", "down"):
        # One arm up with the other out, to tell the sides apart.
        pose = visitor(1, 0.5, arms=arms, left_arm="t") if arms == "up" else visitor(1, 0.5, arms=arms)
        layer.update(snap(0.0, pose), 1 / 30)
        # Not mirrored: the visitor's left arm is on screen right, like the model's left arm.
        for joint, child, (a, b) in (
            ("LeftArm", "LeftForeArm", (11, 13)),
            ("LeftForeArm", "LeftHand", (13, 15)),
            ("RightArm", "RightForeArm", (12, 14)),
            ("RightForeArm", "RightHand", (14, 16)),
        ):
            got = bone_angle(scene, layer, f"mixamorig:{joint}", f"mixamorig:{child}")
            want = landmark_angle(layer, pose, a, b)
            assert abs((got - want + 180) % 360 - 180) < 3, f"{arms} {joint}: {got:.1f} vs {want:.1f}"

    # A hidden wrist leaves the forearm at rest relative to the upper arm (straight on from it).
    pose = VisitorPose(1, hide(visitor(1, 0.5, arms="t").landmarks, Landmark.LEFT_WRIST))
    layer.update(snap(0.1, pose), 1 / 30)
    upper = bone_angle(scene, layer, "mixamorig:LeftArm", "mixamorig:LeftForeArm")
    fore = bone_angle(scene, layer, "mixamorig:LeftForeArm", "mixamorig:LeftHand")
    assert abs(upper - fore) < 1


def test_rigged_avatar_skips_joints_the_model_lacks(scene: Stage, caplog: pytest.LogCaptureFixture) -> None:
    bones = {"right_upper_arm": "mixamorig:RightArm", "left_upper_arm": "NoSuchShoulder"}
    with caplog.at_level(logging.WARNING, logger="content.elements"):
        layer = rigged_layer(scene, bones=bones)
        layer.update(snap(0.0, visitor(1, 0.5, arms="up")), 1 / 30)
        layer.update(snap(0.1, visitor(1, 0.5, arms="up"), visitor(2, 0.2)), 1 / 30)
    warnings = [r.getMessage() for r in caplog.records if "NoSuchShoulder" in r.getMessage()]
    assert len(warnings) == 1, "reported once, not per visitor or frame"
    assert layer.driven_joints == ("mixamorig:RightArm",)
    img = lit(scene.render())
    assert img.sum() > 500  # both figures still drawn


def test_avatar_properties(scene: Stage) -> None:
    layer = AvatarLayer(AvatarsSpec(type="avatars"), scene.scene, Path("."))
    layer.update(snap(0.0, visitor(1, 0.5)), 1 / 30)
    bright = lit(scene.render()).sum()
    layer.set_property("visible", False)
    assert lit(scene.render()).sum() == 0
    layer.set_property("visible", True)
    layer.set_property("thickness", 0.15)
    layer.update(snap(0.1, visitor(1, 0.5)), 1 / 30)
    assert lit(scene.render()).sum() > bright * 1.5
    with pytest.raises(ValueError, match="alpha, visible, thickness"):
        layer.set_property("glow", 1.0)


# ------------------------------------------------------------------------------------------ particles


def lantern_emitter(**kw: object) -> EmitterSpec:
    fields: dict[str, object] = {
        "type": "emitter",
        "sensor": "body",
        "landmark": "right_wrist",
        "when": "hand_raised",
        "mirror": False,
        "rate": 30.0,
        "size": 0.12,
    }
    return EmitterSpec.model_validate({**fields, **kw})


def test_raised_hand_emits_rising_lanterns_and_lowered_hands_none(scene: Stage) -> None:
    emitter = Emitter(lantern_emitter(), scene.scene, Path("."))
    raised = visitor(1, 0.3, right_arm="up", left_arm="down")
    lowered = visitor(2, 0.7)
    wrist_x = (raised.landmarks[Landmark.RIGHT_WRIST, 0] - 0.5) * FILM[0]

    means: list[float] = []
    rows: list[float] = []
    for frame in range(45):
        emitter.update(snap(frame / 30, raised, lowered), 1 / 30)
        if frame % 15 == 14:
            means.append(float(emitter.positions()[:, 2].mean()))
            img = lit(scene.render(), 20)
            rows.append(float(np.nonzero(img)[0].mean()))
    assert 40 <= emitter.alive <= 50  # 30/s for 1.5 s
    # Only the raised hand emits: every lantern is near visitor 1's wrist in x, none near visitor 2.
    xs = emitter.positions()[:, 0]
    assert np.all(np.abs(xs - wrist_x) < 0.5)
    # They rise: mean height grows, and the glow's centroid moves up the image.
    assert means[0] < means[1] < means[2]
    assert rows[0] > rows[1] > rows[2]

    # Lowering the hand stops emission; the ones in the air live on, then fade out.
    alive = emitter.alive
    emitter.update(snap(2.0, visitor(1, 0.3), lowered), 1 / 30)
    assert emitter.alive == alive
    for frame in range(200):
        emitter.update(snap(2.0 + frame / 30, visitor(1, 0.3), lowered), 1 / 30)
    assert emitter.alive == 0
    assert lit(scene.render(), 20).sum() == 0


def test_hands_down_spawns_nothing(scene: Stage) -> None:
    emitter = Emitter(lantern_emitter(), scene.scene, Path("."))
    for frame in range(30):
        emitter.update(snap(frame / 30, visitor(1, 0.3), visitor(2, 0.7)), 1 / 30)
    assert emitter.alive == 0
    # The same visitors with "always" emit from both.
    always = Emitter(lantern_emitter(when="always"), scene.scene, Path("."))
    for frame in range(30):
        always.update(snap(frame / 30, visitor(1, 0.3), visitor(2, 0.7)), 1 / 30)
    assert always.alive == 2 * 30


def test_burst_and_limits(scene: Stage) -> None:
    emitter = Emitter(lantern_emitter(rate=0.0, max_particles=120), scene.scene, Path("."))
    emitter.burst(50)
    assert emitter.alive == 50
    emitter.update(snap(0.0), 1 / 30)
    assert emitter.alive == 50
    assert emitter.mesh.num_triangles == 100  # one quad each, in one Geom
    assert lit(scene.render(), 20).sum() > 0
    emitter.burst(500)
    assert emitter.alive == 120  # capped at max_particles


def test_emitters_are_deterministic(scene: Stage) -> None:
    runs = []
    for _ in range(2):
        e = Emitter(lantern_emitter(when="always", seed=7), scene.scene, Path("."))
        for frame in range(20):
            e.update(snap(frame / 30, visitor(1, 0.4)), 1 / 30)
        runs.append(e.positions())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_fixed_position_emitter_and_rate_binding(scene: Stage) -> None:
    emitter = Emitter(EmitterSpec(type="emitter", pos=(0.0, 0.0, -1.0), rate=10.0), scene.scene, Path("."))
    for frame in range(30):
        emitter.update(snap(frame / 30), 1 / 30)
    assert emitter.alive == 10
    emitter.set_property("rate", 0)
    for frame in range(3):
        emitter.update(snap(1 + frame / 30), 1 / 30)
    assert emitter.alive == 10
    emitter.set_property("rate", 60)
    emitter.update(snap(2.0), 0.5)
    assert emitter.alive == 40
    # After a 10 s stall, the old lanterns are gone and at most half a second's worth is emitted.
    emitter.update(snap(12.0), 10.0)
    assert emitter.alive == 30
    with pytest.raises(ValueError, match="rate, alpha, visible, size"):
        emitter.set_property("speed", 1)


def test_garbage_landmarks_draw_nothing_and_emit_nothing(scene: Stage) -> None:
    lm = visitor(1, 0.5, arms="up").landmarks.copy()
    lm[Landmark.RIGHT_WRIST, :2] = np.nan
    lm[Landmark.LEFT_ELBOW, :2] = np.inf
    layer = AvatarLayer(AvatarsSpec(type="avatars"), scene.scene, Path("."))
    emitter = Emitter(lantern_emitter(when="always"), scene.scene, Path("."))
    for frame in range(10):
        layer.update(snap(frame / 30, VisitorPose(1, lm)), 1 / 30)
        emitter.update(snap(frame / 30, VisitorPose(1, lm)), 1 / 30)
    assert layer.visible_ids == (1,)
    assert emitter.alive == 0
    assert lit(scene.render()).sum() > 300  # the rest of the figure is still drawn


# ------------------------------------------------------------------------------------------ instances


def test_three_hundred_instances_in_one_geom_and_glow(scene: Stage) -> None:
    spec = InstancesSpec(type="instances", count=300, area=(-1.8, 0.0, 1.8, 6.0), height=(-1.3, 1.3), size=0.15)
    field = InstanceField(spec, scene.scene, Path("."))
    assert field.geom_count == 1
    assert len(field.node.findAllMatches("**/+GeomNode")) == 1
    assert field.mesh.num_vertices == 300 * field.vertices_per_copy
    field.update(snap(0.0), 1 / 30)
    bright = scene.render().astype(float)
    assert lit(bright.astype(np.uint8)).mean() > 0.05  # hundreds of lanterns cover the view
    field.set_property("glow", 0.25)
    dim = scene.render().astype(float)
    assert dim.mean() < 0.4 * bright.mean()
    assert dim.mean() > 0.1 * bright.mean()
    with pytest.raises(ValueError, match="glow, alpha, visible, sway"):
        field.set_property("brightness", 1)


def test_instances_sway_and_seeded_layout(scene: Stage) -> None:
    spec = InstancesSpec(type="instances", count=50, seed=3, sway=0.2, area=(-1, 0, 1, 1), height=(-1, 1))
    a = InstanceField(spec, scene.scene, Path("."))
    b = InstanceField(spec, scene.scene, Path("."))
    np.testing.assert_array_equal(a._rows, b._rows)
    b.destroy()
    # On the GPU (a shader moves the vertices; the mesh is never re-uploaded): the picture moves.
    assert a.node.getShader() is not None
    first = scene.render().astype(int)
    a.update(snap(0.5), 0.5)
    assert np.abs(scene.render().astype(int) - first).sum() > 0
    # Without shaders (Panda3D's software renderer) the same motion is written into the vertices.
    before = a._rows[:, :, :3].copy()
    a.use_cpu_motion()
    a.update(snap(1.0), 0.5)
    assert a.node.getShader() is None
    assert np.abs(a._rows[:, :, :3] - before).max() > 0.01
    a.destroy()
    still = InstanceField(InstancesSpec(type="instances", count=10, sway=0, bob=0), scene.scene, Path("."))
    rows = still._rows.copy()
    still.update(snap(1.0), 1.0)
    np.testing.assert_array_equal(still._rows, rows)


def test_instances_from_a_model_file(scene: Stage, tmp_path: Path) -> None:
    (tmp_path / "box.egg").write_text(_EGG_BOX)
    spec = InstancesSpec(type="instances", count=20, file="box.egg", area=(-1, 0, 1, 1), height=(-1, 1))
    field = InstanceField(spec, scene.scene, tmp_path)
    assert field.geom_count == 1
    assert field.vertices_per_copy >= 8
    assert lit(scene.render()).sum() > 0


def test_instances_from_a_gltf_file(scene: Stage, tmp_path: Path) -> None:
    (tmp_path / "tri.gltf").write_text(json.dumps(_gltf_triangle()))
    spec = InstancesSpec(type="instances", count=40, file="tri.gltf", size=0.5, area=(-1, 0, 1, 1), height=(-1, 1))
    field = InstanceField(spec, scene.scene, tmp_path)
    assert field.vertices_per_copy == 3
    assert field.mesh.num_triangles == 40
    assert lit(scene.render()).sum() > 0


def _gltf_triangle() -> dict[str, object]:
    """The smallest glTF 2.0 file: one upright triangle (glTF is y-up; the loader turns it z-up)."""
    data = struct.pack("<9f", -0.5, 0, 0, 0.5, 0, 0, 0, 1, 0) + struct.pack("<3H", 0, 1, 2) + b"\0\0"
    uri = "data:application/octet-stream;base64," + base64.b64encode(data).decode()
    return {
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}],
        "buffers": [{"uri": uri, "byteLength": len(data)}],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 0, "byteLength": 36},
            {"buffer": 0, "byteOffset": 36, "byteLength": 6},
        ],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": 3,
                "type": "VEC3",
                "min": [-0.5, 0, 0],
                "max": [0.5, 1, 0],
            },
            {"bufferView": 1, "componentType": 5123, "count": 3, "type": "SCALAR"},
        ],
    }


# ---------------------------------------------------------------------------------------------- cost


def test_frame_cost_figure(scene: Stage) -> None:
    """Not a timing assertion: prints what a frame costs with everything on screen."""
    field = InstanceField(InstancesSpec(type="instances", count=300, sway=0.05), scene.scene, Path("."))
    emitter = Emitter(lantern_emitter(rate=0.0, lifetime=100.0), scene.scene, Path("."))
    emitter.burst(200)
    layer = AvatarLayer(AvatarsSpec(type="avatars"), scene.scene, Path("."))
    crowd = tuple(visitor(i + 1, x) for i, x in enumerate((0.125, 0.375, 0.625, 0.875)))
    frames = 60
    update_s = 0.0
    render_s = 0.0
    for frame in range(frames):
        s = snap(frame / 30, *crowd)
        t0 = time.perf_counter()
        field.update(s, 1 / 30)
        emitter.update(s, 1 / 30)
        layer.update(s, 1 / 30)
        t1 = time.perf_counter()
        scene.engine.renderFrame()
        render_s += time.perf_counter() - t1
        update_s += t1 - t0
    assert emitter.alive == 200 and layer.visible_ids == (1, 2, 3, 4)
    print(
        f"\nframe cost, 300 instances + 200 particles + 4 avatars: update {update_s / frames * 1000:.2f} ms, "
        f"render (software GL, {W}x{H}) {render_s / frames * 1000:.2f} ms"
    )


_EGG_BOX = """<CoordinateSystem> { Z-Up }
<VertexPool> box {
  <Vertex> 0 { -0.5 -0.5 0 <RGBA> { 1 1 1 1 } }
  <Vertex> 1 { 0.5 -0.5 0 <RGBA> { 1 1 1 1 } }
  <Vertex> 2 { 0.5 -0.5 1 <RGBA> { 1 1 1 1 } }
  <Vertex> 3 { -0.5 -0.5 1 <RGBA> { 1 1 1 1 } }
  <Vertex> 4 { -0.5 0.5 0 <RGBA> { 1 1 1 1 } }
  <Vertex> 5 { 0.5 0.5 0 <RGBA> { 1 1 1 1 } }
  <Vertex> 6 { 0.5 0.5 1 <RGBA> { 1 1 1 1 } }
  <Vertex> 7 { -0.5 0.5 1 <RGBA> { 1 1 1 1 } }
}
<Group> body {
  <Polygon> { <VertexRef> { 0 1 2 3 <Ref> { box } } }
  <Polygon> { <VertexRef> { 5 4 7 6 <Ref> { box } } }
  <Polygon> { <VertexRef> { 4 0 3 7 <Ref> { box } } }
  <Polygon> { <VertexRef> { 1 5 6 2 <Ref> { box } } }
  <Polygon> { <VertexRef> { 3 2 6 7 <Ref> { box } } }
  <Polygon> { <VertexRef> { 4 5 1 0 <Ref> { box } } }
}
"""
