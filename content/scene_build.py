"""Builds Panda3D's scene graph from a :class:`~content.scene_model.SceneSpec`.

Every node becomes a :class:`SceneItem`: an anchor NodePath carrying the node's placement, tint
and visibility, with its content (a model, a shape, text, a card, an element) below it. Items
know how to set their bindable properties (:meth:`SceneItem.set_property`), so bindings and
events only deal with names and values.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from panda3d.core import (
    AmbientLight,
    AnimControl,
    AnimControlCollection,
    CardMaker,
    DirectionalLight,
    DynamicTextFont,
    Filename,
    Fog,
    Geom,
    GeomNode,
    GeomTriangles,
    GeomVertexData,
    GeomVertexFormat,
    GeomVertexWriter,
    Loader,
    LoaderOptions,
    NodePath,
    PandaNode,
    PartGroup,
    PerspectiveLens,
    PointLight,
    Shader,
    Spotlight,
    TexturePool,
    TransparencyAttrib,
    Vec3,
    Vec4,
    autoBind,
)
from panda3d.core import TextNode as PandaText

from content.scene_model import (
    DEFAULT_FONT,
    AnchorNode,
    AvatarsNode,
    EmitterNode,
    FogSpec,
    GroupNode,
    ImageNode,
    InstancesNode,
    LightSpec,
    ModelNode,
    NodeSpec,
    PrimitiveNode,
    SceneSpec,
    SkySpec,
    TextNode,
    rgba,
)
from content.snapshot import SceneSnapshot

log = logging.getLogger("content.scene_build")

RGBA = tuple[float, float, float, float]


class SceneBuildError(Exception):
    """A scene could not be built (a model that does not load, an animation it lacks)."""


class Element(Protocol):
    """The runtime of a body-driven element (:mod:`content.elements`)."""

    def update(self, snapshot: SceneSnapshot, dt: float) -> None: ...

    def set_property(self, name: str, value: float | bool) -> None: ...


def _number(value: Any) -> float | None:
    """A finite float, or None for anything else (a missing value, text, infinity)."""
    if isinstance(value, bool | int | float) and math.isfinite(value):
        return float(value)
    return None


# --- animation --------------------------------------------------------------------------------------------------


class Animator:
    """Plays a model's animations on show time: the pose is computed from the snapshot's clock, not
    Panda3D's global clock, so a frame is the same whenever it is drawn."""

    def __init__(self, model: NodePath) -> None:
        self.controls = AnimControlCollection()
        flags = PartGroup.HMF_ok_part_extra | PartGroup.HMF_ok_anim_extra | PartGroup.HMF_ok_wrong_root_name
        autoBind(model.node(), self.controls, flags)
        self.current: AnimControl | None = None
        self.name: str | None = None
        self.rate = 1.0
        self.loop = True
        self.frame0 = 0.0
        self.time0: float | None = None

    def names(self) -> list[str]:
        return [self.controls.getAnimName(i) for i in range(self.controls.getNumAnims())]

    def play(self, name: str, *, loop: bool = True, now: float | None = None) -> bool:
        control = self.controls.findAnim(name)
        if control is None:
            return False
        self.current, self.name, self.loop = control, name, loop
        self.frame0, self.time0 = 0.0, now  # None: starts at the next update
        return True

    def set_rate(self, rate: float, now: float | None) -> None:
        # Keep the current frame where it is, so a rate change never jumps.
        self.frame0 = self._frame(now) if now is not None and self.time0 is not None else self.frame0
        self.time0 = now if self.time0 is not None else None
        self.rate = rate

    def _frame(self, now: float) -> float:
        if self.current is None or self.time0 is None:
            return 0.0
        return self.frame0 + (now - self.time0) * self.current.getFrameRate() * self.rate

    def update(self, now: float) -> None:
        if self.current is None:
            return
        if self.time0 is None:
            self.time0 = now
        frames = max(self.current.getNumFrames(), 1)
        frame = self._frame(now)
        frame = frame % frames if self.loop else min(max(frame, 0.0), frames - 1.0)
        self.current.pose(frame)


# --- items ------------------------------------------------------------------------------------------------------


@dataclass
class SceneItem:
    """One scene node at run time."""

    name: str
    spec: NodeSpec
    anchor: NodePath
    tint: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0, 1.0])
    text: PandaText | None = None
    animator: Animator | None = None
    element: Element | None = None
    now: float | None = None
    """Show time of the latest frame (for animations started by a binding)."""

    def apply_tint(self) -> None:
        r, g, b, a = self.tint
        self.anchor.setColorScale(r, g, b, a)
        # Blending costs sorting: only while the node is see-through.
        if a < 1.0:
            self.anchor.setTransparency(TransparencyAttrib.MAlpha)
        elif self.anchor.hasTransparency() and not isinstance(self.spec, ImageNode | TextNode):
            self.anchor.clearTransparency()

    def set_property(self, prop: str, value: Any) -> bool:
        """Set a bindable property; False when the value does not fit it (nothing changes then)."""
        setter = _SETTERS.get(prop)
        # Elements fade and hide themselves; an anchor is a plain node that also follows landmarks.
        element_owned = self.element is not None and not isinstance(self.spec, AnchorNode)
        if setter is not None and not (element_owned and prop in ("alpha", "visible")):
            return setter(self, value)
        if prop.startswith("shader."):
            return _set_shader_input(self.anchor, prop.removeprefix("shader."), value)
        if prop == "anim":
            if self.animator is None or not isinstance(value, str):
                return False
            # A binding gives the same name every frame: only a change restarts the animation.
            return value == self.animator.name or self.animator.play(value, now=self.now)
        if prop == "play_rate":
            number = _number(value)
            if self.animator is None or number is None:
                return False
            self.animator.set_rate(number, self.now)
            return True
        if prop == "text":
            if self.text is None or value is None:
                return False
            self.text.setText(_format_text(value))
            return True
        if element_owned and self.element is not None:
            if value is None or not isinstance(value, bool | int | float):
                return False
            try:
                self.element.set_property(prop, value)
            except (ValueError, TypeError):
                return False
            return True
        return False


def _format_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _axis_setter(method: str) -> Callable[[SceneItem, Any], bool]:
    def set_axis(item: SceneItem, value: Any) -> bool:
        number = _number(value)
        if number is None:
            return False
        getattr(item.anchor, method)(number)
        return True

    return set_axis


def _set_uniform_scale(item: SceneItem, value: Any) -> bool:
    number = _number(value)
    if number is None:
        return False
    item.anchor.setScale(number)
    return True


def _tint_setter(index: int) -> Callable[[SceneItem, Any], bool]:
    def set_channel(item: SceneItem, value: Any) -> bool:
        number = _number(value)
        if number is None:
            return False
        item.tint[index] = min(max(number, 0.0), 1.0) if index == 3 else max(number, 0.0)
        item.apply_tint()
        return True

    return set_channel


def _set_visible(item: SceneItem, value: Any) -> bool:
    if value is None:
        return False
    item.anchor.show() if value else item.anchor.hide()
    return True


_SETTERS: dict[str, Callable[[SceneItem, Any], bool]] = {
    "x": _axis_setter("setX"),
    "y": _axis_setter("setY"),
    "z": _axis_setter("setZ"),
    "h": _axis_setter("setH"),
    "p": _axis_setter("setP"),
    "r": _axis_setter("setR"),
    "sx": _axis_setter("setSx"),
    "sy": _axis_setter("setSy"),
    "sz": _axis_setter("setSz"),
    "scale": _set_uniform_scale,
    "color.r": _tint_setter(0),
    "color.g": _tint_setter(1),
    "color.b": _tint_setter(2),
    "alpha": _tint_setter(3),
    "visible": _set_visible,
}


def _set_shader_input(target: NodePath, name: str, value: Any) -> bool:
    if isinstance(value, list | tuple):
        numbers = [_number(v) for v in value]
        if not 1 <= len(numbers) <= 4 or any(n is None for n in numbers):
            return False
        padded = [n or 0.0 for n in numbers] + [0.0] * (4 - len(numbers))
        target.setShaderInput(name, Vec4(*padded))
        return True
    number = _number(value)
    if number is None:
        return False
    target.setShaderInput(name, Vec4(number, 0.0, 0.0, 0.0))
    return True


@dataclass
class LightItem:
    """A light at run time: its intensity and colour can follow signals."""

    name: str
    spec: LightSpec
    node: NodePath
    color: list[float]
    intensity: float

    def apply(self) -> None:
        r, g, b = self.color
        self.node.node().setColor(Vec4(r * self.intensity, g * self.intensity, b * self.intensity, 1.0))

    def set_property(self, prop: str, value: Any) -> bool:
        number = _number(value)
        if number is None:
            return False
        if prop == "intensity":
            self.intensity = max(number, 0.0)
        elif prop in ("color.r", "color.g", "color.b"):
            self.color["rgb".index(prop[-1])] = max(number, 0.0)
        else:
            return False
        self.apply()
        return True


# --- geometry ---------------------------------------------------------------------------------------------------


class _MeshWriter:
    """Vertices with normals, and triangles, for the built-in shapes."""

    def __init__(self, name: str) -> None:
        self.data = GeomVertexData(name, GeomVertexFormat.getV3n3(), Geom.UHStatic)
        self.vertex = GeomVertexWriter(self.data, "vertex")
        self.normal = GeomVertexWriter(self.data, "normal")
        self.triangles = GeomTriangles(Geom.UHStatic)
        self.count = 0

    def add(self, position: Iterable[float], normal: Iterable[float]) -> int:
        self.vertex.addData3(*position)
        self.normal.addData3(*normal)
        self.count += 1
        return self.count - 1

    def triangle(self, a: int, b: int, c: int) -> None:
        self.triangles.addVertices(a, b, c)

    def quad(self, a: int, b: int, c: int, d: int) -> None:
        """Counter-clockwise a, b, c, d seen from the front."""
        self.triangle(a, b, c)
        self.triangle(a, c, d)

    def node(self, name: str) -> GeomNode:
        geom = Geom(self.data)
        geom.addPrimitive(self.triangles)
        node = GeomNode(name)
        node.addGeom(geom)
        return node


def _box(mesh: _MeshWriter) -> None:
    for axis in range(3):
        for sign in (-1.0, 1.0):
            normal = [0.0, 0.0, 0.0]
            normal[axis] = sign
            # Two axes spanning the face, ordered so the quad winds counter-clockwise seen from outside.
            u_axis, v_axis = (axis + 1) % 3, (axis + 2) % 3
            if sign < 0:
                u_axis, v_axis = v_axis, u_axis
            corners = []
            for u, v in ((-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)):
                point = [0.0, 0.0, 0.0]
                point[axis], point[u_axis], point[v_axis] = 0.5 * sign, u, v
                corners.append(mesh.add(point, normal))
            mesh.quad(*corners)


def _sphere(mesh: _MeshWriter, segments: int) -> None:
    rings = max(segments // 2, 2)
    for ring in range(rings + 1):
        theta = math.pi * ring / rings  # 0 at the top
        for seg in range(segments + 1):
            phi = 2 * math.pi * seg / segments
            n = (math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi), math.cos(theta))
            mesh.add([0.5 * c for c in n], n)
    width = segments + 1
    for ring in range(rings):
        for seg in range(segments):
            top, bottom = ring * width + seg, (ring + 1) * width + seg
            mesh.quad(bottom, bottom + 1, top + 1, top)


def _plane(mesh: _MeshWriter) -> None:
    corners = [mesh.add((x, y, 0.0), (0.0, 0.0, 1.0)) for x, y in ((-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5))]
    mesh.quad(*corners)


def _cylinder(mesh: _MeshWriter, segments: int) -> None:
    ring: list[tuple[float, float]] = [
        (math.cos(2 * math.pi * s / segments), math.sin(2 * math.pi * s / segments)) for s in range(segments + 1)
    ]
    for i in range(segments):
        (c0, s0), (c1, s1) = ring[i], ring[i + 1]
        a = mesh.add((0.5 * c0, 0.5 * s0, -0.5), (c0, s0, 0.0))
        b = mesh.add((0.5 * c1, 0.5 * s1, -0.5), (c1, s1, 0.0))
        c = mesh.add((0.5 * c1, 0.5 * s1, 0.5), (c1, s1, 0.0))
        d = mesh.add((0.5 * c0, 0.5 * s0, 0.5), (c0, s0, 0.0))
        mesh.quad(a, b, c, d)
    for z, sign in ((0.5, 1.0), (-0.5, -1.0)):
        centre = mesh.add((0.0, 0.0, z), (0.0, 0.0, sign))
        rim = [mesh.add((0.5 * c, 0.5 * s, z), (0.0, 0.0, sign)) for c, s in ring]
        for i in range(segments):
            a, b = (rim[i], rim[i + 1]) if sign > 0 else (rim[i + 1], rim[i])
            mesh.triangle(centre, a, b)


def make_primitive(spec: PrimitiveNode, name: str) -> NodePath:
    """A unit shape built vertex by vertex (no model file needed)."""
    mesh = _MeshWriter(name)
    if spec.shape == "box":
        _box(mesh)
    elif spec.shape == "sphere":
        _sphere(mesh, spec.segments)
    elif spec.shape == "plane":
        _plane(mesh)
    else:
        _cylinder(mesh, spec.segments)
    shape = NodePath(mesh.node(name))
    if spec.shape == "plane":
        shape.setTwoSided(True)
    return shape


def make_sky(sky: SkySpec) -> NodePath:
    """A card filling the screen (-1..1 both ways, at y = 1) shading from ``bottom`` to ``top``, for an
    orthographic camera at the origin."""
    data = GeomVertexData("sky", GeomVertexFormat.getV3c4(), Geom.UHStatic)
    vertex, color = GeomVertexWriter(data, "vertex"), GeomVertexWriter(data, "color")
    bottom, top = rgba(sky.bottom), rgba(sky.top)
    for x, z, c in ((-1, -1, bottom), (1, -1, bottom), (1, 1, top), (-1, 1, top)):
        vertex.addData3(x, 1, z)
        color.addData4(*c)
    triangles = GeomTriangles(Geom.UHStatic)
    triangles.addVertices(0, 1, 2)
    triangles.addVertices(0, 2, 3)
    geom = Geom(data)
    geom.addPrimitive(triangles)
    node = GeomNode("sky")
    node.addGeom(geom)
    card = NodePath(node)
    card.setDepthWrite(False)
    card.setDepthTest(False)
    card.setLightOff(1)
    return card


# --- loading ----------------------------------------------------------------------------------------------------


def load_model(path: Path) -> NodePath:
    """A model file: glTF/GLB through panda3d-gltf, anything else (.egg, .bam) through Panda3D's loader."""
    if path.suffix.lower() in (".gltf", ".glb"):
        # Called directly: Panda3D's own loader may pick its Assimp plugin for glTF, which keeps glTF's
        # Y-up axes and drops materials; panda3d-gltf converts to Panda3D's Z-up.
        import gltf

        try:
            return NodePath(gltf.load_model(str(path)))
        except Exception as error:  # a broken file raises anything from json to struct errors
            raise SceneBuildError(f"could not load model `{path}`: {error}") from error
    options = LoaderOptions(LoaderOptions.LF_no_cache | LoaderOptions.LF_report_errors)
    node = Loader.getGlobalPtr().loadSync(Filename.fromOsSpecific(str(path)), options)
    if node is None:
        raise SceneBuildError(f"could not load model `{path}`")
    return NodePath(node)


_FONTS: dict[Path, DynamicTextFont] = {}


def load_font(path: Path) -> DynamicTextFont:
    """A font through FreeType (TTF, OTF, TTC: its first face), loaded once per process."""
    key = path.resolve()
    font = _FONTS.get(key)
    if font is None:
        font = DynamicTextFont(Filename.fromOsSpecific(str(key)))
        if not font.isValid():
            raise SceneBuildError(f"could not load font `{path}`")
        font.setPixelsPerUnit(64)  # sharper glyphs than the default 30; only settable before the first glyph
        _FONTS[key] = font
    return font


def make_text(spec: TextNode, base_dir: Path) -> tuple[NodePath, PandaText]:
    text = PandaText("text")
    text.setFont(load_font(base_dir / spec.font if spec.font else DEFAULT_FONT))
    text.setText(spec.text)
    text.setAlign({"left": PandaText.ALeft, "center": PandaText.ACenter, "right": PandaText.ARight}[spec.align])
    if spec.wrap is not None:
        text.setWordwrap(spec.wrap / spec.size)
    node = NodePath(text)
    node.setScale(spec.size)
    node.setTransparency(TransparencyAttrib.MAlpha)
    return node, text


def make_image(spec: ImageNode, base_dir: Path) -> NodePath:
    path = base_dir / spec.file
    texture = TexturePool.loadTexture(Filename.fromOsSpecific(str(path)))
    if texture is None:
        raise SceneBuildError(f"could not load image `{path}`")
    width = spec.width
    aspect = texture.getOrigFileYSize() / max(texture.getOrigFileXSize(), 1)
    height = spec.height if spec.height is not None else width * aspect
    maker = CardMaker("image")
    maker.setFrame(-width / 2, width / 2, -height / 2, height / 2)
    card = NodePath(maker.generate())
    card.setTexture(texture)
    card.setTransparency(TransparencyAttrib.MAlpha)
    card.setTwoSided(True)
    return card


def make_element(spec: AvatarsNode | EmitterNode | InstancesNode, parent: NodePath, base_dir: Path) -> Element:
    # Imported on use: the element runtimes are only needed by scenes that have elements.
    from content.elements import AvatarLayer, Emitter, InstanceField

    if isinstance(spec, AvatarsNode):
        return AvatarLayer(spec, parent, base_dir)
    if isinstance(spec, EmitterNode):
        return Emitter(spec, parent, base_dir)
    return InstanceField(spec, parent, base_dir)


# --- the scene --------------------------------------------------------------------------------------------------


@dataclass
class BuiltScene:
    """The scene graph and its items, by name."""

    root: NodePath
    items: dict[str, SceneItem]
    lights: dict[str, LightItem]
    sky: NodePath | None


def _place(anchor: NodePath, pos: Iterable[float], hpr: Iterable[float], scale: float | tuple[float, ...]) -> None:
    anchor.setPos(Vec3(*pos))
    anchor.setHpr(Vec3(*hpr))
    if isinstance(scale, tuple):
        anchor.setScale(Vec3(*scale))
    else:
        anchor.setScale(scale)


def _build_node(name: str, spec: NodeSpec, parent: NodePath, base_dir: Path, items: dict[str, SceneItem]) -> None:
    anchor = parent.attachNewNode(PandaNode(name))
    item = SceneItem(name, spec, anchor)
    items[name] = item
    if isinstance(spec, AvatarsNode | EmitterNode | InstancesNode):
        _place(anchor, spec.offset, spec.hpr, spec.scale)
        item.element = make_element(spec, anchor, base_dir)
        return
    _place(anchor, spec.pos, spec.hpr, spec.scale)
    if spec.color is not None:
        item.tint = list(rgba(spec.color))
    item.tint[3] *= spec.alpha
    item.apply_tint()
    if not spec.visible:
        anchor.hide()
    if spec.shader is not None:
        shader = Shader.load(
            Shader.SL_GLSL,
            vertex=Filename.fromOsSpecific(str(base_dir / spec.shader.vertex)),
            fragment=Filename.fromOsSpecific(str(base_dir / spec.shader.fragment)),
        )
        if shader is None:
            raise SceneBuildError(f"node `{name}`: could not load its shader")
        anchor.setShader(shader)
        for input_name, value in spec.shader.inputs.items():
            _set_shader_input(anchor, input_name, value)
    if isinstance(spec, ModelNode):
        _build_model(item, spec, base_dir)
    elif isinstance(spec, PrimitiveNode):
        make_primitive(spec, name).reparentTo(anchor)
    elif isinstance(spec, TextNode):
        text_np, item.text = make_text(spec, base_dir)
        text_np.reparentTo(anchor)
    elif isinstance(spec, ImageNode):
        make_image(spec, base_dir).reparentTo(anchor)
    elif isinstance(spec, GroupNode):
        for child_name, child in spec.children.items():
            _build_node(child_name, child, anchor, base_dir, items)
    elif isinstance(spec, AnchorNode):
        _build_anchor(item, spec, base_dir, items)


def _build_anchor(item: SceneItem, spec: AnchorNode, base_dir: Path, items: dict[str, SceneItem]) -> None:
    """The children are built once, off the scene graph, and instanced on each visitor's landmark."""
    from content.elements import AnchorLayer

    template = NodePath(PandaNode(f"{item.name}-template"))
    for child_name, child in spec.children.items():
        _build_node(child_name, child, template, base_dir, items)
    item.element = AnchorLayer(spec, item.anchor, template)


def _build_model(item: SceneItem, spec: ModelNode, base_dir: Path) -> None:
    model = load_model(base_dir / spec.file)
    model.reparentTo(item.anchor)
    animator = Animator(model)
    available = animator.names()
    missing = [anim for anim in [*spec.animations, *([spec.anim] if spec.anim else [])] if anim not in available]
    if missing:
        have = ", ".join(available) or "none"
        raise SceneBuildError(f"model `{spec.file}` has no animation {', '.join(missing)} (it has: {have})")
    if available:
        item.animator = animator
        animator.rate = spec.play_rate
        if spec.anim:
            animator.play(spec.anim)


def _make_light(name: str, spec: LightSpec, root: NodePath) -> LightItem:
    light: AmbientLight | DirectionalLight | PointLight | Spotlight
    if spec.type == "ambient":
        light = AmbientLight(name)
    elif spec.type == "directional":
        light = DirectionalLight(name)
    elif spec.type == "point":
        light = PointLight(name)
        light.setAttenuation(Vec3(*spec.attenuation))
    else:
        light = Spotlight(name)
        lens = PerspectiveLens()
        lens.setFov(spec.spot_angle)
        light.setLens(lens)
        light.setAttenuation(Vec3(*spec.attenuation))
    node = root.attachNewNode(light)
    if spec.type in ("point", "spot"):
        node.setPos(Vec3(*spec.position))
    if spec.type in ("directional", "spot"):
        direction = Vec3(*spec.direction)
        node.lookAt(node.getPos() + direction)
    r, g, b, _a = rgba(spec.color)
    item = LightItem(name, spec, node, [r, g, b], spec.intensity)
    item.apply()
    root.setLight(node)
    return item


def _apply_fog(fog: FogSpec, root: NodePath) -> None:
    node = Fog("fog")
    r, g, b, _a = rgba(fog.color)
    node.setColor(r, g, b)
    if fog.density is not None:
        node.setExpDensity(fog.density)
    else:
        assert fog.start is not None and fog.end is not None  # checked by FogSpec
        node.setLinearRange(fog.start, fog.end)
    root.setFog(node)


def build_scene(spec: SceneSpec, base_dir: Path) -> BuiltScene:
    """The scene graph of ``spec`` (assets relative to ``base_dir``) under a fresh root."""
    root = NodePath("scene")
    items: dict[str, SceneItem] = {}
    for name, node in spec.nodes.items():
        _build_node(name, node, root, base_dir, items)
    lights = {name: _make_light(name, light, root) for name, light in spec.lights.items()}
    if not lights:
        # Plain white ambient light: shapes and text keep their exact colours, and models' materials
        # (which fixed-function shading ignores when nothing is lit) show theirs.
        root.setLight(root.attachNewNode(AmbientLight("default")))
    if spec.fog is not None:
        _apply_fog(spec.fog, root)
    sky = make_sky(spec.sky) if spec.sky is not None else None
    return BuiltScene(root, items, lights, sky)
