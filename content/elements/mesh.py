"""What every element shares: :class:`DynamicMesh` (one Geom rewritten from numpy rows) and its vertex
format, placing image points in the scene (:func:`image_to_scene`, the AR mirror's :data:`Projection`),
and loading a model file."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt
from panda3d.core import (
    Geom,
    GeomNode,
    GeomTriangles,
    GeomVertexArrayFormat,
    GeomVertexData,
    GeomVertexFormat,
    InternalName,
    NodePath,
    OmniBoundingVolume,
)

from content.element_specs import ImageArea

F32 = npt.NDArray[np.float32]
U32 = npt.NDArray[np.uint32]
FloatArray = npt.NDArray[np.floating]

log = logging.getLogger("content.elements")

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
