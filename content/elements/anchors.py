"""Anchors: an anchor node's children copied onto a landmark of every visitor."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from panda3d.core import NodePath

from content.element_specs import landmark_index
from content.elements.mesh import F32, Projection, _invalid_property, _placed
from content.snapshot import SceneSnapshot

if TYPE_CHECKING:
    from content.scene_model import AnchorNode


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
