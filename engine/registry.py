"""Drivers are found by ``kind`` through this registry; the engine imports none of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from engine.model import DeviceConfig, SensorConfig

C = TypeVar("C")


@dataclass(frozen=True)
class DriverSpec(Generic[C]):
    """A driver: its config model, how to build it, and how to build its simulator."""

    kind: str
    config: type[C]
    create: Callable[..., Any]
    simulate: Callable[..., Any]


@dataclass
class Registry:
    sensors: dict[str, DriverSpec[SensorConfig]] = field(default_factory=dict)
    devices: dict[str, DriverSpec[DeviceConfig]] = field(default_factory=dict)
    scene: type[Any] | None = None
    """The model of the exhibit's ``scene:`` section, when a renderer is registered (content/)."""

    def add_sensor(self, spec: DriverSpec[Any]) -> None:
        self._add(self.sensors, spec, SensorConfig)

    def add_device(self, spec: DriverSpec[Any]) -> None:
        self._add(self.devices, spec, DeviceConfig)

    @staticmethod
    def _add(table: dict[str, DriverSpec[Any]], spec: DriverSpec[Any], base: type) -> None:
        if not issubclass(spec.config, base):
            raise TypeError(f"{spec.config.__name__} must derive from {base.__name__}")
        if spec.kind in table:
            raise ValueError(f"driver kind `{spec.kind}` is registered twice")
        table[spec.kind] = spec
