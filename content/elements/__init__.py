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

Modules: :mod:`.mesh` (the shared :class:`DynamicMesh` and placement helpers), :mod:`.avatars`,
:mod:`.emitters` (particles), :mod:`.instances` (instance fields) and :mod:`.anchors`.
"""

from content.element_specs import AvatarsSpec, EmitterSpec, InstancesSpec
from content.elements.anchors import AnchorLayer
from content.elements.avatars import AvatarLayer
from content.elements.emitters import Emitter
from content.elements.instances import InstanceField
from content.elements.mesh import DynamicMesh, Projection, image_to_scene

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
