"""Instance fields: copies of one shape (a lantern, quad, box or model) merged into one Geom, and the
vertex shader that sways them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from panda3d.core import GeomNode, GeomTriangles, GeomVertexReader, NodePath, Shader, TransparencyAttrib

from content.element_specs import InstancesSpec, rgba
from content.elements.mesh import F32, U32, VERTEX_FLOATS, DynamicMesh, _disc, _invalid_property, _load_model, log
from content.snapshot import SceneSnapshot


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
