"""Scene bindings: node properties that follow signals, read from each frame's snapshot.

Each ``bind: {property: expression}`` is compiled once (the project's restricted expression
language, :mod:`engine.expressions`) against a :class:`SnapshotResolver`, whose names are cells
refreshed from the snapshot before every frame. A value that is missing or does not fit the
property (text for a position, infinity) leaves the property as it was and is counted; nothing
here raises while the show runs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Protocol

import numpy as np

from content.scene_model import SceneSpec, YamlPath
from content.snapshot import SceneSnapshot, VisitorPose
from engine.catalogue import Catalogue
from engine.expressions import Expression, ExpressionError, NameInfo, compile_expression

log = logging.getLogger("content.bindings")

UNCHECKED_VISITOR_FIELDS = {"id": "int", "x": "float", "y": "float"}
"""Fields of ``<sensor>.visitors`` items when no catalogue is given (scene-only tests); a running exhibit
always has its catalogue, whose fields are the pose sensor's own (``hands_raised``, ``since``...)."""


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


def visitor_view(pose: VisitorPose) -> SimpleNamespace:
    """One visitor as scene expressions see it: its id and its fields (the pose sensor's features, as the
    engine sees them); without fields, where it is in the camera image (``x``, ``y``: 0..1)."""
    if pose.fields:
        return SimpleNamespace(id=pose.id, **pose.fields)
    landmarks = pose.landmarks
    seen = landmarks[landmarks[:, 3] >= 0.5] if len(landmarks) else landmarks
    points = seen if len(seen) else landmarks
    if not len(points):
        return SimpleNamespace(id=pose.id, x=float("nan"), y=float("nan"))
    return SimpleNamespace(id=pose.id, x=float(np.mean(points[:, 0])), y=float(np.mean(points[:, 1])))


class SnapshotResolver:
    """Names for scene expressions, read from snapshots, resolved from the exhibit's signal catalogue.

    With ``catalogue`` (always, in a running exhibit and in ``check``), names, types, aliases
    (``visitors.count``) and the fields of ``<sensor>.visitors`` are the ones the engine has, so the
    render process accepts exactly what ``check`` accepts. Without it (scene-only tests) any dotted name
    is accepted, typed only at run time.
    """

    def __init__(self, catalogue: Catalogue | None = None) -> None:
        self.catalogue = catalogue
        self.cells: dict[str, _Cell] = {}
        self.visitor_cells: dict[str, _Cell] = {}
        self.event_cells: dict[str, _Cell] = {}
        self._now = 0.0

    def resolve(self, name: str) -> NameInfo | None:
        if self.catalogue is None:
            return self._unchecked(name)
        key = self.catalogue.canonical(name)
        info = self.catalogue.signals.get(key)
        if info is None:
            return None
        fields = self.catalogue.item_fields.get(key)
        if info.type == "object" and fields is not None and key.endswith(".visitors"):
            cell = self.visitor_cells.setdefault(key.removesuffix(".visitors"), _Cell())
            return NameInfo("object", lambda: cell.value, lambda: cell.stale, cell=cell, key=key, fields=fields)
        if info.type == "event":
            cell = self.event_cells.setdefault(key, _Cell())
            return NameInfo("event", lambda: None, lambda: cell.stale, since=lambda: self._since(cell), key=key)
        if info.type == "object":
            return None  # other objects do not reach the render process
        cell = self.cells.setdefault(key, _Cell())
        return NameInfo(info.type, lambda: cell.value, lambda: cell.stale, cell=cell, key=key)

    def _unchecked(self, name: str) -> NameInfo | None:
        if name.endswith(".visitors"):
            cell = self.visitor_cells.setdefault(name.removesuffix(".visitors"), _Cell())
            return NameInfo(
                "object", lambda: cell.value, lambda: cell.stale, cell=cell, key=name, fields=UNCHECKED_VISITOR_FIELDS
            )
        if "." not in name:
            return None  # signals are always `source.signal`
        cell = self.cells.setdefault(name, _Cell())
        return NameInfo("any", lambda: cell.value, lambda: cell.stale, cell=cell, key=name)

    def _since(self, cell: _Cell) -> float:
        return math.inf if cell.value is None else self._now - cell.value

    def names(self) -> Iterable[str]:
        if self.catalogue is None:
            return list(self.cells)
        aliased = [
            alias + name[len(target) :]
            for alias, target in self.catalogue.aliases.items()
            for name in self.catalogue.signals
            if name.startswith(target + ".")
        ]
        return [*self.catalogue.signals, *aliased]

    def load(self, snapshot: SceneSnapshot) -> None:
        """Refresh every name an expression uses from ``snapshot``."""
        self._now = snapshot.time
        values = snapshot.values
        for name, cell in self.cells.items():
            cell.value = values.get(name)
            cell.stale = cell.value is None
        for sensor, cell in self.visitor_cells.items():
            poses = snapshot.visitors.get(sensor)
            cell.value = None if poses is None else [visitor_view(pose) for pose in poses]
            cell.stale = poses is None
        for name, cell in self.event_cells.items():
            cell.value = snapshot.event_times.get(name)
            cell.stale = cell.value is None


@dataclass
class Binding:
    path: YamlPath
    target: str
    prop: str
    expression: Expression
    misses: int = 0
    last: Any = None


def compile_bindings(
    spec: SceneSpec, resolver: SnapshotResolver
) -> tuple[list[Binding], list[tuple[YamlPath, ExpressionError]]]:
    """Every bind expression of ``spec`` compiled with ``resolver``, and the mistakes, each at its YAML path.
    ``check`` calls this with the exhibit's catalogue, as the render process does: one code path."""
    bindings: list[Binding] = []
    problems: list[tuple[YamlPath, ExpressionError]] = []
    for path, source in spec.expressions():
        try:
            expression = compile_expression(source, resolver)
        except ExpressionError as error:
            problems.append((path, error))
            continue
        # Paths are ("nodes", ..., name, "bind", prop) or ("lights", name, "bind", prop).
        bindings.append(Binding(path, str(path[-3]), str(path[-1]), expression))
    return bindings, problems


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
        self.skipped = 0
        """Values that were missing or did not fit their property (left unchanged)."""
        self.bindings, problems = compile_bindings(spec, self.resolver)
        if problems:
            raise BindingError([(path, f"column {error.column}: {error}") for path, error in problems])

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
