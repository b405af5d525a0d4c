"""Drivers and services are found through this registry; the engine imports none of them.

``sensors/``, ``devices/`` and ``content/`` each have a ``register(registry)`` that adds their
driver kinds (by ``kind``), their services (the MQTT link, the embedded broker, OSCQuery, the render
process...) and the sections they add to the exhibit file (``scene:``). :func:`load_registry` fills
one with every package the project ships.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from engine.model import DeviceConfig, SensorConfig, StoreType

if TYPE_CHECKING:
    from engine.drivers import Service
    from engine.exhibit import ExhibitBase
    from engine.runtime import Runtime

C = TypeVar("C")

PACKAGES = ("sensors", "devices", "content")
"""The packages whose ``register`` fills the registry, in this order."""


@dataclass(frozen=True)
class DriverSpec(Generic[C]):
    """A driver: its config model, how to build it, and how to build its simulator."""

    kind: str
    config: type[C]
    create: Callable[..., Any]
    simulate: Callable[..., Any]


@dataclass(frozen=True)
class ServiceSpec:
    """A service of the running exhibit: a connection or process the drivers and operators share.

    Services are built and started in ``order`` (lowest first), before any driver is built, and closed
    in the reverse order after every device is safe. ``applies`` says whether an exhibit has it at all
    (its health signals are then in the catalogue, for ``check`` and ``run`` alike); ``build`` makes it
    for one run, or returns None when this run does without it (``--no-render``)."""

    name: str
    order: int
    applies: Callable[[ExhibitBase], bool]
    build: Callable[[Runtime], Service | None]
    figures: Mapping[str, StoreType] = field(default_factory=dict)
    meanings: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Registry:
    sensors: dict[str, DriverSpec[SensorConfig]] = field(default_factory=dict)
    devices: dict[str, DriverSpec[DeviceConfig]] = field(default_factory=dict)
    services: dict[str, ServiceSpec] = field(default_factory=dict)
    scene: type[Any] | None = None
    """The model of the exhibit's ``scene:`` section, when a renderer is registered (content/)."""
    osc_peer: Callable[[str, int], DeviceConfig] | None = None
    """The config of the device an `{osc: ...}` action to a host and port sends through (devices/osc_out.py)."""
    sound_device: Callable[[Any, Any], DeviceConfig] | None = None
    """The config of the device the exhibit's ``sounds:`` become, from the exhibit and its
    :class:`~engine.sound_plan.SoundPlan` (devices/sound/)."""

    def add_sensor(self, spec: DriverSpec[Any]) -> None:
        self._add(self.sensors, spec, SensorConfig)

    def add_device(self, spec: DriverSpec[Any]) -> None:
        self._add(self.devices, spec, DeviceConfig)

    def add_service(self, spec: ServiceSpec) -> None:
        if spec.name in self.services:
            raise ValueError(f"service `{spec.name}` is registered twice")
        self.services[spec.name] = spec

    def services_for(self, exhibit: ExhibitBase) -> list[ServiceSpec]:
        """The services ``exhibit`` has, in start order."""
        return sorted((s for s in self.services.values() if s.applies(exhibit)), key=lambda s: s.order)

    @staticmethod
    def _add(table: dict[str, DriverSpec[Any]], spec: DriverSpec[Any], base: type) -> None:
        if not issubclass(spec.config, base):
            raise TypeError(f"{spec.config.__name__} must derive from {base.__name__}")
        if spec.kind in table:
            raise ValueError(f"driver kind `{spec.kind}` is registered twice")
        table[spec.kind] = spec


def load_registry(packages: tuple[str, ...] = PACKAGES) -> Registry:
    """A registry with every driver, service and section of ``packages`` (imported by name)."""
    registry = Registry()
    for package in packages:
        importlib.import_module(package).register(registry)
    return registry
