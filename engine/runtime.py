"""The running exhibit: builds drivers from the registry, wires mappings, and
stops cleanly (devices safe first, then the services that announce ``offline``)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.clock import Clock, MonotonicClock
from engine.drivers import Device, DriverContext, Resources, Sensor, Service, WritableSensor
from engine.exhibit import ExhibitBase
from engine.fades import FadeEngine
from engine.model import DeviceConfig, Outputs, SensorConfig
from engine.registry import Registry
from engine.safety import Safety
from engine.show import Show
from engine.signals import SignalStore
from engine.supervisor import Supervisor

log = logging.getLogger("engine.runtime")


def settle_memory() -> None:
    """Move everything built so far (models, drivers, the show) out of the garbage collector's sight.

    The exhibit's objects live as long as the process, yet every full collection walks them all:
    with 512 fixtures at 44 Hz that is a 70-90 ms pause twice a second, which stalls the fade
    ticks and the sensor-to-device path alike. ``gc.freeze()`` keeps collecting what is made
    from now on and is the documented remedy (CPython's gc docs, "freeze")."""
    gc.collect()
    gc.freeze()


@dataclass
class RuntimeOptions:
    simulate: bool = False
    fade_rate: float = 44.0
    """Fades and timelines are rendered at this rate (the DMX refresh), coalesced per device."""
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
        self.fades = FadeEngine(self.clock, self.options.fade_rate)
        self.safety = Safety()
        self.show: Show | None = None

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
            for short, type_ in device_config.health_signals().items():
                self.store.declare(f"{name}.{short}", type_)
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

        outputs = self._outputs()
        for name, (target, outputs_config) in outputs.items():
            if outputs_config.is_motion():
                self.safety.add_motion(name, outputs_config.safe_state())
            setter = self.safety.gate(name, target.set)
            self.fades.add_target(name, setter, outputs_config.safe_state(), outputs_config.max_rate())
        self.show = Show(
            self.exhibit,
            self.store,
            self.clock,
            self.fades,
            {name: config for name, (_, config) in outputs.items()},
            self.safety,
        )

        self.supervisor.start("fades", self.fades.run)
        for service in self.services:
            self.supervisor.start(f"service:{service.name}", service.run)
        for name, device in self.devices.items():
            self.supervisor.start(f"device:{name}", device.run)
        for name, sensor in self.sensors.items():
            self.supervisor.start(f"sensor:{name}", sensor.run)
        self.show.start()
        settle_memory()
        log.info(
            "exhibit %s started: %d sensors, %d devices, %d mappings%s",
            self.exhibit.id,
            len(self.sensors),
            len(self.devices),
            len(self.exhibit.mappings),
            " (simulated sensors)" if self.options.simulate else "",
        )

    def reload(self, exhibit: ExhibitBase) -> bool:
        """Let a new version's logic take over (it was validated already). Sensors, devices and the
        broker keep their connections, machines keep their states, variables their values, and
        running fades go on. Changes to sensors, devices or MQTT need a restart: then nothing
        changes and False is returned."""
        hardware = ("sensors", "devices", "mqtt")
        if any(getattr(exhibit, key) != getattr(self.exhibit, key) for key in hardware):
            log.warning(
                "reload: sensors, devices or MQTT settings changed; restart the exhibit to apply them "
                "(the running version goes on unchanged)"
            )
            return False
        assert self.show is not None
        keep = {name: machine.state for name, machine in self.show.machines.items()}
        self.show.stop()
        self.exhibit = exhibit
        self.show = Show(exhibit, self.store, self.clock, self.fades, self.show.outputs, self.safety)
        self.show.start(keep=keep)
        settle_memory()
        log.info("reload: the new logic runs (states kept: %s)", ", ".join(f"{k}={v}" for k, v in keep.items()) or "-")
        return True

    def _outputs(self) -> dict[str, tuple[Device | WritableSensor, Outputs]]:
        """Everything logic may drive: devices, and sensors that take commands."""
        found: dict[str, tuple[Device | WritableSensor, Outputs]] = {
            name: (device, self.device_configs[name]) for name, device in self.devices.items()
        }
        for name, sensor in self.sensors.items():
            if isinstance(sensor, WritableSensor):
                found[name] = (sensor, self.sensor_configs[name])
        return found

    async def stop(self) -> None:
        """Stop logic and inputs, bring every device to its safe state, then close the services."""
        if self.show is not None:
            self.show.stop()
        await self.supervisor.cancel("fades", *[f"sensor:{n}" for n in self.sensors])
        for name, sensor in self.sensors.items():
            if isinstance(sensor, WritableSensor) and not await sensor.go_safe(self.options.safe_timeout):
                log.error("could not confirm the safe state of the outputs of %s", name)
            await sensor.close()
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
