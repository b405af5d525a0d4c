"""Scene bindings: node properties that follow signals, read from each frame's snapshot.

Each ``bind: {property: expression}`` is compiled once (the project's restricted expression
language, :mod:`engine.expressions`) against a :class:`SnapshotResolver`, whose names are cells
refreshed from the snapshot before every frame. A value that is missing or does not fit the
property (text for a position, infinity) leaves the property as it was and is counted; nothing
here raises while the show runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from content.scene_model import SceneSpec, YamlPath
from content.snapshot import SceneSnapshot, VisitorPose
from engine.expressions import Expression, ExpressionError, NameInfo, compile_expression

log = logging.getLogger("content.bindings")

VISITOR_FIELDS = {"id": "int", "x": "float", "y": "float"}
"""Fields of each item of ``<sensor>.visitors`` in scene expressions."""


class Target(Protocol):
    def set_property(self, prop: str, value: Any) -> bool: ...


class BindingError(Exception):
    """Bind expressions that do not compile; ``problems`` holds (YAML path, message) for each."""

    def __init__(self, problems: list[tuple[YamlPath, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(map(str, path))}: {message}" for path, message in problems))


class _Cell:
    """A name's current value, read by compiled expressions as ``cell.value`` (no call)."""

    __slots__ = ("stale", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.stale = True


@dataclass(frozen=True, slots=True)
class VisitorView:
    """One visitor as scene expressions see it: its id and where it is in the camera image (0..1)."""

    id: int
    x: float
    y: float


def visitor_view(pose: VisitorPose) -> VisitorView:
    landmarks = pose.landmarks
    seen = landmarks[landmarks[:, 3] >= 0.5] if len(landmarks) else landmarks
    points = seen if len(seen) else landmarks
    if not len(points):
        return VisitorView(pose.id, float("nan"), float("nan"))
    x, y = np.mean(points[:, 0]), np.mean(points[:, 1])
    return VisitorView(pose.id, float(x), float(y))


class SnapshotResolver:
    """Names for scene expressions, read from snapshots.

    ``types`` (full name -> ``float``/``int``/``bool``/``str``/``object``), when given, is the exhibit's
    list of signals: other names are compile errors and types are checked. Without it any dotted
    name is accepted, typed only at run time (the renderer's process does not know the store).
    ``<sensor>.visitors`` is the collection of that pose sensor's visitors (fields: id, x, y).
    """

    def __init__(self, types: Mapping[str, str] | None = None) -> None:
        self.types = dict(types) if types is not None else None
        self.cells: dict[str, _Cell] = {}
        self.visitor_cells: dict[str, _Cell] = {}

    def resolve(self, name: str) -> NameInfo | None:
        known = self.types.get(name) if self.types is not None else None
        if self.types is not None and known is None:
            return None
        if name.endswith(".visitors") and known in (None, "object"):
            cell = self.visitor_cells.setdefault(name.removesuffix(".visitors"), _Cell())
            return NameInfo(
                "object", lambda: cell.value, lambda: cell.stale, cell=cell, key=name, fields=VISITOR_FIELDS
            )
        if "." not in name:
            return None  # signals are always `source.signal`
        cell = self.cells.setdefault(name, _Cell())
        return NameInfo(known or "any", lambda: cell.value, lambda: cell.stale, cell=cell, key=name)

    def names(self) -> Iterable[str]:
        return list(self.types) if self.types is not None else list(self.cells)

    def load(self, snapshot: SceneSnapshot) -> None:
        """Refresh every name an expression uses from ``snapshot``."""
        values = snapshot.values
        for name, cell in self.cells.items():
            cell.value = values.get(name)
            cell.stale = cell.value is None
        for sensor, cell in self.visitor_cells.items():
            poses = snapshot.visitors.get(sensor)
            cell.value = None if poses is None else [visitor_view(pose) for pose in poses]
            cell.stale = poses is None


@dataclass
class Binding:
    path: YamlPath
    target: str
    prop: str
    expression: Expression
    misses: int = 0
    last: Any = None


class Bindings:
    """Every bind expression of a scene, compiled, applied to its items on each frame."""

    def __init__(
        self,
        spec: SceneSpec,
        items: Mapping[str, Target],
        lights: Mapping[str, Target],
        resolver: SnapshotResolver | None = None,
    ) -> None:
        self.resolver = resolver or SnapshotResolver()
        self.items = items
        self.lights = lights
        self.bindings: list[Binding] = []
        self.skipped = 0
        """Values that were missing or did not fit their property (left unchanged)."""
        problems: list[tuple[YamlPath, str]] = []
        for path, source in spec.expressions():
            try:
                expression = compile_expression(source, self.resolver)
            except ExpressionError as error:
                problems.append((path, f"column {error.column}: {error}"))
                continue
            # Paths are ("nodes", ..., name, "bind", prop) or ("lights", name, "bind", prop).
            self.bindings.append(Binding(path, str(path[-3]), str(path[-1]), expression))
        if problems:
            raise BindingError(problems)

    def _target(self, binding: Binding) -> Target | None:
        table = self.lights if binding.path[0] == "lights" else self.items
        return table.get(binding.target)

    def apply(self, snapshot: SceneSnapshot) -> None:
        """Evaluate every binding on ``snapshot`` and set the properties whose values changed."""
        self.resolver.load(snapshot)
        for binding in self.bindings:
            value = binding.expression.evaluate()
            if value is not None and value == binding.last and type(value) is type(binding.last):
                continue  # unchanged: spare Panda3D the call
            target = self._target(binding)
            if value is None or target is None or not target.set_property(binding.prop, value):
                binding.misses += 1
                self.skipped += 1
                if binding.misses == 1:
                    log.debug(
                        "bind %s: value %r left %s unchanged", ".".join(map(str, binding.path)), value, binding.prop
                    )
                continue
            binding.last = value

    def reset(self) -> None:
        """Forget the last values, so the next frame sets every property again."""
        for binding in self.bindings:
            binding.last = None
