"""The running exhibit: builds drivers from the registry, wires mappings, and
stops cleanly (devices safe first, then the services that announce ``offline``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.clock import Clock, MonotonicClock
from engine.drivers import Device, DriverContext, Resources, Sensor, Service, WritableSensor
from engine.mapping import bind_mapping
from engine.model import DeviceConfig, ExhibitBase, Outputs, SensorConfig
from engine.registry import Registry
from engine.signals import SignalStore
from engine.supervisor import Supervisor

log = logging.getLogger("engine.runtime")


@dataclass
class RuntimeOptions:
    simulate: bool = False
    base_dir: Path | None = None
    """The exhibit's folder (files it names are relative to it); default: the working directory."""
    safe_timeout: float = 2.0
    """How long a clean stop waits for devices to confirm their safe state."""


@dataclass
class Runtime:
    exhibit: ExhibitBase
    registry: Registry
    resources: Resources = field(default_factory=Resources)
    services: Sequence[Service] = ()
    options: RuntimeOptions = field(default_factory=RuntimeOptions)
    clock: Clock = field(default_factory=MonotonicClock)

    def __post_init__(self) -> None:
        self.store = SignalStore(self.clock)
        self.supervisor = Supervisor(self.clock)
        self.context = DriverContext(
            self.exhibit.id, self.store, self.clock, self.resources, self.options.base_dir or Path.cwd()
        )
        self.sensors: dict[str, Sensor] = {}
        self.devices: dict[str, Device] = {}
        self._unbind: list[Callable[[], None]] = []

    @property
    def sensor_configs(self) -> dict[str, SensorConfig]:
        return self.exhibit.sensors

    @property
    def device_configs(self) -> dict[str, DeviceConfig]:
        return self.exhibit.devices

    async def start(self) -> None:
        """Build and start everything; a ``UserError`` from a sensor's ``open`` stops the start."""
        for name, config in self.sensor_configs.items():
            for short, type_ in config.signal_types().items():
                self.store.declare(f"{name}.{short}", type_)
            spec = self.registry.sensors[config.kind]
            build = spec.simulate if self.options.simulate else spec.create
            self.sensors[name] = build(name, config, self.context)
        for name, device_config in self.device_configs.items():
            self.devices[name] = self.registry.devices[device_config.kind].create(name, device_config, self.context)

        opened: list[Sensor] = []
        try:
            for sensor in self.sensors.values():
                await sensor.open()
                opened.append(sensor)
        except BaseException:
            for sensor in opened:
                await sensor.close()
            raise

        for mapping in self.exhibit.mappings:
            device_name, prop = mapping.target.split(".", 1)
            outputs: Outputs = self.device_configs.get(device_name) or self.sensor_configs[device_name]
            output = mapping.output or outputs.property_range(prop)
            assert output is not None, "validation guarantees an output range"
            target = self.devices.get(device_name) or self.sensors[device_name]
            assert isinstance(target, Device | WritableSensor), "validation guarantees a writable target"
            self._unbind.append(bind_mapping(mapping, output, self.store, _setter(target)))

        for service in self.services:
            self.supervisor.start(f"service:{service.name}", service.run)
        for name, device in self.devices.items():
            self.supervisor.start(f"device:{name}", device.run)
        for name, sensor in self.sensors.items():
            self.supervisor.start(f"sensor:{name}", sensor.run)
        log.info(
            "exhibit %s started: %d sensors, %d devices, %d mappings%s",
            self.exhibit.id,
            len(self.sensors),
            len(self.devices),
            len(self.exhibit.mappings),
            " (simulated sensors)" if self.options.simulate else "",
        )

    async def stop(self) -> None:
        """Stop inputs, bring every device to its safe state, then close the services."""
        await self.supervisor.cancel(*[f"sensor:{n}" for n in self.sensors])
        for name, sensor in self.sensors.items():
            if isinstance(sensor, WritableSensor) and not await sensor.go_safe(self.options.safe_timeout):
                log.error("could not confirm the safe state of the outputs of %s", name)
            await sensor.close()
        for unbind in self._unbind:
            unbind()
        await self.supervisor.cancel(*[f"device:{n}" for n in self.devices])
        results = await asyncio.gather(*(d.go_safe(self.options.safe_timeout) for d in self.devices.values()))
        unsafe = [name for name, ok in zip(self.devices, results, strict=True) if not ok]
        if unsafe:
            log.error("could not confirm the safe state of: %s", ", ".join(unsafe))
        else:
            log.info("all %d devices are in their safe state", len(self.devices))
        for service in self.services:
            await service.close(self.options.safe_timeout)
        await self.supervisor.cancel()
        log.info("exhibit %s stopped", self.exhibit.id)


def _setter(device: Device | WritableSensor) -> Callable[[str, Any], None]:
    def set_property(prop: str, value: Any) -> None:
        device.set({prop: value})

    return set_property
