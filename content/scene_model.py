"""The ``scene:`` section of an exhibit: what the screen shows, as pydantic models.

A scene is a background (a colour or a sky gradient), optional fog, a camera, lights and named
nodes (models, primitives, text, images, groups and the body-driven elements of
:mod:`content.element_specs`). Any node property listed in :data:`COMMON_PROPERTIES` (and the
type's own, :meth:`NodeBase.bindable`) can follow a signal: ``bind: {x: "controls.slider * 2"}``.

Coordinates are Panda3D's: Z up, Y away from the default camera, angles in degrees (heading,
pitch, roll). File names are relative to the exhibit folder.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from content.element_specs import AvatarsSpec, Color, EmitterSpec, ImageArea, InstancesSpec, LandmarkName, Vec3, rgba
from engine.catalogue import Catalogue
from engine.expressions import ExpressionError
from engine.model import NAME_PATTERN, ComponentProblem, Strict
from engine.yamlpos import YamlPath

__all__ = [
    "COMMON_PROPERTIES",
    "DEFAULT_FONT",
    "AnchorNode",
    "AvatarsNode",
    "Color",
    "EmitterNode",
    "FogSpec",
    "GroupNode",
    "ImageNode",
    "LightSpec",
    "MirrorSpec",
    "ModelNode",
    "NodeSpec",
    "OutputSpec",
    "PrimitiveNode",
    "SceneCameraSpec",
    "SceneSpec",
    "ShaderSpec",
    "SkySpec",
    "TextNode",
    "rgba",
]


DEFAULT_FONT = Path(__file__).parent / "fonts" / "wqy-microhei.ttc"
"""The bundled font (WenQuanYi Micro Hei, Apache-2.0: Chinese and Latin), used by text nodes that name none."""

COMMON_PROPERTIES = frozenset(
    {"x", "y", "z", "h", "p", "r", "scale", "sx", "sy", "sz", "color.r", "color.g", "color.b", "alpha", "visible"}
)
"""Properties every node can bind: position, rotation, scale, colour tint, opacity, visibility."""
TRANSFORM_PROPERTIES = frozenset({"x", "y", "z", "h", "p", "r", "scale", "sx", "sy", "sz"})

NodeName = Annotated[str, Field(pattern=NAME_PATTERN)]
BindMap = dict[str, str]


def _bind_field() -> Any:
    return Field(
        default_factory=dict,
        description="Properties that follow signals: {property: expression}, e.g. {x: 'controls.slider * 2'}. "
        "Properties: x, y, z, h, p, r, scale, sx, sy, sz, color.r, color.g, color.b, alpha, visible, "
        "shader.<input>, and per type: anim and play_rate (model), text (text); for elements: alpha, visible and "
        "thickness (avatars), rate, alpha, visible and size (emitter), glow, alpha, visible and sway (instances).",
    )


def _check_bind(bind: BindMap, allowed: frozenset[str], shader: bool) -> None:
    for prop, source in bind.items():
        if prop.startswith("shader."):
            if not shader:
                raise ValueError(f"cannot bind `{prop}`: the node has no `shader`")
            continue
        if prop not in allowed:
            choices = ", ".join(sorted(allowed))
            raise ValueError(f"cannot bind `{prop}`: bindable properties here are {choices}")
        if not source.strip():
            raise ValueError(f"`bind.{prop}` is empty: write an expression like `controls.slider`")


class ShaderSpec(Strict):
    """A GLSL shader for one node; its uniforms are set from ``inputs`` and ``bind: {shader.<name>: ...}``."""

    vertex: str = Field(description="GLSL vertex shader file (relative to the exhibit folder).")
    fragment: str = Field(description="GLSL fragment shader file (relative to the exhibit folder).")
    inputs: dict[str, float | list[float]] = Field(
        default_factory=dict, description="Initial uniform values by name (a number or a vector of 2 to 4 numbers)."
    )


class NodeBase(Strict):
    """What every node has: placement relative to its parent, tint, visibility and bindings."""

    own_properties: ClassVar[frozenset[str]] = frozenset()

    pos: Vec3 = Field((0.0, 0.0, 0.0), description="Position [x, y, z] relative to the parent.")
    hpr: Vec3 = Field((0.0, 0.0, 0.0), description="Rotation [heading, pitch, roll] in degrees.")
    scale: float | Vec3 = Field(1.0, description="Uniform scale, or [sx, sy, sz].")
    color: Color | None = Field(
        None, description="Tint (multiplies the node's own colours; primitives and text are white without it)."
    )
    alpha: float = Field(1.0, ge=0, le=1, description="Opacity 0..1 (below 1 the node is blended).")
    visible: bool = Field(True, description="Whether the node (and its children) is drawn.")
    shader: ShaderSpec | None = Field(None, description="Optional GLSL shader for this node and its children.")
    bind: BindMap = _bind_field()

    @classmethod
    def bindable(cls) -> frozenset[str]:
        return COMMON_PROPERTIES | cls.own_properties

    @model_validator(mode="after")
    def _bindings(self) -> NodeBase:
        _check_bind(self.bind, self.bindable(), self.shader is not None)
        return self

    def files(self) -> Iterator[tuple[YamlPath, str]]:
        """Asset files this node names, with the key path below the node."""
        if self.shader is not None:
            yield ("shader", "vertex"), self.shader.vertex
            yield ("shader", "fragment"), self.shader.fragment


class ModelNode(NodeBase):
    """A 3D model file: glTF/GLB (through panda3d-gltf), or Panda3D's .egg/.bam."""

    own_properties: ClassVar[frozenset[str]] = frozenset({"anim", "play_rate"})

    type: Literal["model"] = Field(description="Node kind.")
    file: str = Field(description="Model file, relative to the exhibit folder (.gltf, .glb, .egg, .bam).")
    animations: list[str] = Field(
        default_factory=list, description="Animation names the file must contain (checked when the scene loads)."
    )
    anim: str | None = Field(None, description="Animation to loop from the start (bindable: `anim`).")
    play_rate: float = Field(1.0, description="Animation speed: 1 normal, 0.5 half, negative backwards (bindable).")


class PrimitiveNode(NodeBase):
    """A built-in shape made in code (no file): unit-sized, centred; resize it with ``scale``."""

    type: Literal["primitive"] = Field(description="Node kind.")
    shape: Literal["box", "sphere", "plane", "cylinder"] = Field(
        description="box: 1x1x1 cube; sphere: diameter 1; plane: 1x1 square in the ground (XY) plane, seen from both "
        "sides; cylinder: diameter 1, height 1 along Z."
    )
    segments: int = Field(24, ge=3, le=256, description="Subdivisions around spheres and cylinders.")


class TextNode(NodeBase):
    """A line (or paragraph) of text, Chinese and English; it stands upright facing the default camera."""

    own_properties: ClassVar[frozenset[str]] = frozenset({"text"})

    type: Literal["text"] = Field(description="Node kind.")
    text: str = Field(description="The text; `\\n` starts a new line (bindable: `text`).")
    size: float = Field(1.0, gt=0, description="Line height in scene units.")
    align: Literal["left", "center", "right"] = Field("center", description="Alignment relative to `pos`.")
    wrap: float | None = Field(None, gt=0, description="Wrap lines longer than this many scene units.")
    font: str | None = Field(
        None, description="TTF/OTF font file; default: the bundled CJK font (WenQuanYi Micro Hei)."
    )


class ImageNode(NodeBase):
    """A picture (PNG or JPG) on an upright card facing the default camera, centred on ``pos``."""

    type: Literal["image"] = Field(description="Node kind.")
    file: str = Field(description="Image file, relative to the exhibit folder.")
    width: float = Field(1.0, gt=0, description="Card width in scene units.")
    height: float | None = Field(None, gt=0, description="Card height; default: from the picture's aspect ratio.")


class GroupNode(NodeBase):
    """Nodes placed, tinted, faded and shown together: children are relative to the group."""

    type: Literal["group"] = Field(description="Node kind.")
    children: dict[NodeName, NodeSpec] = Field(default_factory=dict, description="The group's nodes by name.")


class AnchorNode(NodeBase, ImageArea):
    """Its children follow a landmark of every visitor of a pose sensor (a lantern in each hand): one
    copy per visitor and landmark, appearing and leaving with them.

    Without a scene ``mirror`` the landmark is placed like avatars and emitters, on the image area
    (``width``, ``height``, ``center``, ``depth``, ``mirror``). With one, where the visitor's landmark
    is *on screen*: on the camera ray through that pixel of the mirror picture, at the plane
    ``y = depth`` (in the anchor's own coordinates), so it sits on the visitor's hand in the picture.
    The children are drawn as instances of one subtree: their bindings and events act on every copy."""

    type: Literal["anchor"] = Field(description="Node kind.")
    sensor: str = Field("body", description="The pose sensor whose visitors carry the children.")
    landmark: LandmarkName | list[LandmarkName] = Field(
        description="Landmark (BlazePose name, lower case) or landmarks the children follow, e.g. "
        "[left_wrist, right_wrist]: one copy on each."
    )
    min_visibility: float = Field(
        0.5, ge=0, le=1, description="A landmark seen less surely than this has no copy on it (hidden hands)."
    )
    children: dict[NodeName, NodeSpec] = Field(
        default_factory=dict, description="What follows the landmark, by name, placed relative to it."
    )

    def landmarks(self) -> list[str]:
        return [self.landmark] if isinstance(self.landmark, str) else list(self.landmark)


class _ElementPlacement(Strict):
    """Placement and bindings added to the body-driven elements (their own fields stay as they are)."""

    offset: Vec3 = Field((0.0, 0.0, 0.0), description="Moves the whole element by [x, y, z] (bindable: x, y, z).")
    hpr: Vec3 = Field((0.0, 0.0, 0.0), description="Rotation [heading, pitch, roll] of the element, in degrees.")
    scale: float | Vec3 = Field(1.0, description="Scale of the element: uniform, or [sx, sy, sz].")
    bind: BindMap = _bind_field()

    own_properties: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def bindable(cls) -> frozenset[str]:
        return TRANSFORM_PROPERTIES | cls.own_properties

    @model_validator(mode="after")
    def _bindings(self) -> _ElementPlacement:
        _check_bind(self.bind, self.bindable(), shader=False)
        return self


# Element property names are written out (not read from content.elements) so that loading the exhibit
# model never imports Panda3D; a test checks they match the runtime classes' ``properties()``.
class AvatarsNode(_ElementPlacement, AvatarsSpec):
    """Stick figures of a pose sensor's visitors (see AvatarsSpec), placed in the scene."""

    own_properties: ClassVar[frozenset[str]] = frozenset({"alpha", "visible", "thickness"})


class EmitterNode(_ElementPlacement, EmitterSpec):
    """Particles from visitors' landmarks or a point (see EmitterSpec), placed in the scene."""

    own_properties: ClassVar[frozenset[str]] = frozenset({"rate", "alpha", "visible", "size"})


class InstancesNode(_ElementPlacement, InstancesSpec):
    """Many copies of one shape (see InstancesSpec), placed in the scene."""

    own_properties: ClassVar[frozenset[str]] = frozenset({"glow", "alpha", "visible", "sway"})


ElementNode = AvatarsNode | EmitterNode | InstancesNode
NodeSpec = Annotated[
    ModelNode
    | PrimitiveNode
    | TextNode
    | ImageNode
    | GroupNode
    | AnchorNode
    | AvatarsNode
    | EmitterNode
    | InstancesNode,
    Field(discriminator="type"),
]
GroupNode.model_rebuild()
AnchorNode.model_rebuild()


# --- background, fog, camera, lights -------------------------------------------------------------------------------


class SkySpec(Strict):
    """A vertical gradient behind everything."""

    top: Color = Field(description="Colour at the top of the screen.")
    bottom: Color = Field(description="Colour at the bottom of the screen.")


class FogSpec(Strict):
    """Fog: exponential with ``density``, or linear from ``start`` to ``end`` (distance from the camera)."""

    color: Color = Field("#000000", description="Fog colour (usually the background's).")
    density: float | None = Field(None, gt=0, description="Exponential fog density (0.02 light, 0.2 thick).")
    start: float | None = Field(None, ge=0, description="Linear fog: distance where it begins.")
    end: float | None = Field(None, gt=0, description="Linear fog: distance where it is complete.")

    @model_validator(mode="after")
    def _one_kind(self) -> FogSpec:
        linear = self.start is not None or self.end is not None
        if self.density is not None and linear:
            raise ValueError("give fog either `density` or `start` and `end`, not both")
        if self.density is None and (self.start is None or self.end is None):
            raise ValueError("fog needs `density`, or both `start` and `end`")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("fog `end` must be farther than `start`")
        return self


class SceneCameraSpec(Strict):
    """The viewpoint."""

    position: Vec3 = Field((0.0, -10.0, 2.0), description="Camera position [x, y, z].")
    look_at: Vec3 | None = Field((0.0, 0.0, 0.0), description="Point the camera looks at (overrides `hpr`).")
    hpr: Vec3 = Field((0.0, 0.0, 0.0), description="Rotation in degrees, used when `look_at` is null.")
    fov: float = Field(50.0, gt=1, lt=179, description="Vertical field of view in degrees.")
    near: float = Field(0.1, gt=0, description="Nearest distance drawn.")
    far: float = Field(1000.0, gt=0, description="Farthest distance drawn.")


class LightSpec(Strict):
    """A light. A scene without lights gets a white ambient one: every node in its plain colours."""

    type: Literal["ambient", "directional", "point", "spot"] = Field(description="Light kind.")
    color: Color = Field("#ffffff", description="Light colour.")
    intensity: float = Field(1.0, ge=0, description="Brightness multiplier (bindable: `intensity`).")
    position: Vec3 = Field((0.0, 0.0, 5.0), description="Where a point or spot light is.")
    direction: Vec3 = Field((0.0, 1.0, -1.0), description="Where a directional or spot light points.")
    spot_angle: float = Field(45.0, gt=0, lt=180, description="Spot light cone angle in degrees.")
    attenuation: Vec3 = Field(
        (1.0, 0.0, 0.0), description="Point/spot fall-off [constant, linear, quadratic] with distance."
    )
    bind: BindMap = Field(
        default_factory=dict, description="Properties that follow signals: intensity, color.r, color.g, color.b."
    )

    @model_validator(mode="after")
    def _bindings(self) -> LightSpec:
        _check_bind(self.bind, frozenset({"intensity", "color.r", "color.g", "color.b"}), shader=False)
        return self


# --- outputs --------------------------------------------------------------------------------------------------------


class OutputSpec(Strict):
    """Where the picture goes: a window (a projector or screen) or an offscreen buffer."""

    kind: Literal["window", "offscreen"] = Field("window", description="A window, or an offscreen buffer.")
    size: tuple[int, int] = Field((1280, 720), description="Pixels [width, height].")
    fullscreen: bool = Field(False, description="Fill the display.")
    display: int = Field(
        0, ge=0, description="Display (monitor/projector) index, left to right; places the window at x = index * width."
    )
    origin: tuple[int, int] | None = Field(None, description="Window position [x, y] in pixels, overriding `display`.")
    region: tuple[float, float, float, float] = Field(
        (0.0, 1.0, 0.0, 1.0), description="Part of the window drawn into, [left, right, bottom, top] in 0..1."
    )
    view: tuple[float, float, float, float] = Field(
        (0.0, 1.0, 0.0, 1.0),
        description="Part of the camera's picture this output shows, [left, right, bottom, top] in 0..1: split one "
        "wide view over several projectors.",
    )
    stereo: Literal["side_by_side"] | None = Field(
        None, description="side_by_side: left eye in the left half, right eye in the right half."
    )
    eye_separation: float = Field(0.065, gt=0, description="Distance between the two stereo cameras, scene units.")

    @field_validator("region", "view")
    @classmethod
    def _rect(cls, value: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        left, right, bottom, top = value
        if not (0 <= left < right <= 1 and 0 <= bottom < top <= 1):
            raise ValueError("a rectangle is [left, right, bottom, top] with 0 <= left < right <= 1, same for b, t")
        return value

    @field_validator("size")
    @classmethod
    def _size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] < 1 or value[1] < 1:
            raise ValueError("`size` is [width, height] in pixels, both at least 1")
        return value


# --- the AR mirror --------------------------------------------------------------------------------------------------


class MirrorSpec(Strict):
    """AR mirror: the live picture of a pose sensor's camera as the background, on this screen only.

    The frames go from the pose sensor to the render process through shared memory (RAM); they are
    never written, logged, published or served. Until the first frame, and whenever frames stop for
    ``timeout`` seconds (a simulated sensor, a replay, an unplugged camera), the scene's own
    ``background``/``sky`` shows instead. The studio's live preview leaves the picture out unless
    ``preview_camera`` is set, and then shows it to a browser on this computer only."""

    sensor: str = Field("body", description="The pose sensor (kind: pose) whose camera picture is shown.")
    flip: bool = Field(True, description="Mirror the picture left-right, so visitors see themselves as in a mirror.")
    fit: Literal["cover", "contain", "stretch"] = Field(
        "cover",
        description="cover: fill the screen, cropping the picture's overflow; contain: the whole picture, "
        "bars of background beside it; stretch: fill the screen, distorting the picture.",
    )
    opacity: float = Field(1.0, ge=0, le=1, description="Opacity of the picture over the background.")
    tint: Color = Field("#ffffff", description="Colour the picture is multiplied by ('#a0a0c0': dimmer, bluish).")
    timeout: float = Field(
        1.0, gt=0, description="Seconds without a new frame after which the picture gives way to the background."
    )
    preview_camera: bool = Field(
        False,
        description="Let the studio's live preview show the camera picture too (only to a browser on this "
        "computer). Off: previews show the scene without the camera picture.",
    )


# --- the scene ------------------------------------------------------------------------------------------------------


class SceneSpec(Strict):
    """Everything the renderer draws."""

    background: Color = Field("#000000", description="Background colour (ignored when `sky` is given).")
    sky: SkySpec | None = Field(None, description="A top-to-bottom gradient instead of a plain background.")
    fog: FogSpec | None = Field(None, description="Distance fog.")
    camera: SceneCameraSpec = Field(
        default_factory=lambda: SceneCameraSpec.model_validate({}), description="The viewpoint."
    )
    lights: dict[NodeName, LightSpec] = Field(default_factory=dict, description="Lights by name.")
    nodes: dict[NodeName, NodeSpec] = Field(default_factory=dict, description="What is in the scene, by name.")
    outputs: list[OutputSpec] = Field(
        default_factory=lambda: [OutputSpec.model_validate({})],
        min_length=1,
        description="Windows and buffers drawn to.",
    )
    fps_cap: float = Field(60.0, gt=0, le=480, description="Most frames drawn per second.")
    mirror: MirrorSpec | None = Field(
        None, description="AR mirror: the live camera picture of a pose sensor as the background (this screen only)."
    )
    pbr: bool = Field(
        False, description="Physically based shading with panda3d-simplepbr (needs real GPU; falls back when it fails)."
    )

    @model_validator(mode="after")
    def _unique_names(self) -> SceneSpec:
        seen: set[str] = set()
        for path, _node in self.walk():
            name = str(path[-1])
            if name in seen:
                raise ValueError(f"two nodes are named `{name}`: names must be unique in the scene (events use them)")
            seen.add(name)
        return self

    def walk(self) -> Iterator[tuple[YamlPath, NodeSpec]]:
        """Every node with its YAML path (``("nodes", "boat")``, ``("nodes", "g", "children", "a")``), parents first."""
        stack: list[tuple[YamlPath, NodeSpec]] = [(("nodes", name), node) for name, node in self.nodes.items()]
        stack.reverse()
        while stack:
            path, node = stack.pop()
            yield path, node
            if isinstance(node, GroupNode | AnchorNode):
                children = [((*path, "children", name), child) for name, child in node.children.items()]
                stack.extend(reversed(children))

    def expressions(self) -> list[tuple[YamlPath, str]]:
        """Every bound expression with the YAML path of its key, for the engine to check against signals."""
        found: list[tuple[YamlPath, str]] = []
        for name, light in self.lights.items():
            found.extend((("lights", name, "bind", prop), source) for prop, source in light.bind.items())
        for path, node in self.walk():
            found.extend(((*path, "bind", prop), source) for prop, source in node.bind.items())
        return found

    def heard_at(self, name: str) -> tuple[float, float, float] | None:
        """Where node ``name`` is relative to the camera (right, ahead, up), or None if there is no such node: a
        sound placed at it is heard from there."""
        from content.scene_place import relative_to_camera, world_position

        for path, _node in self.walk():
            if path[-1] == name:
                chain, nodes = [], self.nodes
                for part in path[1::2]:  # ("nodes", g, "children", a): g, then a
                    node = nodes[str(part)]
                    chain.append(node)
                    nodes = getattr(node, "children", {})
                return relative_to_camera(world_position(chain), self.camera)
        return None

    def binding_problems(self, catalogue: Catalogue) -> list[tuple[YamlPath, ExpressionError]]:
        """Bind expressions that do not compile against the exhibit's catalogue, compiled exactly as the
        render process compiles them (``check`` calls this: what it accepts, the renderer draws)."""
        from content.bindings import SnapshotResolver, compile_bindings  # numpy, not Panda3D

        return compile_bindings(self, SnapshotResolver(catalogue))[1]

    def sensor_refs(self) -> list[tuple[YamlPath, str]]:
        """Every pose sensor the scene names (mirror, anchors, avatars, emitters), with its key's YAML path."""
        refs: list[tuple[YamlPath, str]] = []
        if self.mirror is not None:
            refs.append((("mirror", "sensor"), self.mirror.sensor))
        for path, node in self.walk():
            sensor = getattr(node, "sensor", None)
            if isinstance(node, AnchorNode | AvatarsNode | EmitterNode) and isinstance(sensor, str):
                refs.append(((*path, "sensor"), sensor))
        return refs

    def check_sensors(self, pose_sensors: Iterable[str]) -> list[ComponentProblem]:
        """Sensor names that are not pose sensors of the exhibit, each with the YAML path of its key."""
        known = sorted(pose_sensors)
        problems: list[ComponentProblem] = []
        for path, sensor in self.sensor_refs():
            if sensor not in known:
                have = ", ".join(f"`{name}`" for name in known) or "none"
                problems.append((path, f"`{sensor}` is not a pose sensor of this exhibit (pose sensors: {have})"))
        return problems

    def check_files(self, base_dir: Path) -> list[ComponentProblem]:
        """Asset files (models, images, fonts, shaders) that do not exist, each with the YAML path of its key."""
        problems: list[ComponentProblem] = []
        for path, node in self.walk():
            for key, name in _node_files(node):
                if not (base_dir / name).is_file():
                    problems.append(((*path, *key), f"file not found: `{name}` (relative to {base_dir})"))
        return problems


def _node_files(node: NodeSpec) -> Iterator[tuple[YamlPath, str]]:
    if isinstance(node, NodeBase):
        yield from node.files()
    if isinstance(node, ModelNode | ImageNode):
        yield ("file",), node.file
    elif isinstance(node, TextNode) and node.font is not None:
        yield ("font",), node.font
    elif isinstance(node, AvatarsNode | InstancesNode) and node.file is not None:
        yield ("file",), node.file
