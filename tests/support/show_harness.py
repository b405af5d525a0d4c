"""A runtime on virtual time whose devices record every command with its time."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping
from typing import Any

from devices.mqtt.device import MqttDeviceConfig
from devices.osc_out import OscOutConfig, OscOutDevice
from engine.clock import VirtualClock
from engine.drivers import Device, DriverContext
from engine.registry import DriverSpec, Registry
from engine.runtime import Runtime, RuntimeOptions
from engine.validate import validate_text
from sensors.osc.inputs import OscSensorConfig, SimulatedOscSensor


class RecordingDevice(Device):
    """Keeps each command it is sent with the (virtual) time it was sent."""

    def __init__(self, name: str, config: Any, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.commands: list[tuple[float, dict[str, Any]]] = []

    def set(self, values: Mapping[str, Any]) -> None:
        self.commands.append((round(self.context.clock.now(), 6), dict(values)))

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def go_safe(self, timeout: float) -> bool:
        self.set(self.config.safe_state())
        return True


class QuietOsc(SimulatedOscSensor):
    """An OSC input that sends nothing by itself: tests set its signals."""

    async def _serve(self) -> None:
        await asyncio.Event().wait()


def registry() -> Registry:
    reg = Registry()
    reg.add_sensor(DriverSpec("osc", OscSensorConfig, QuietOsc, QuietOsc))
    reg.add_device(DriverSpec("mqtt", MqttDeviceConfig, RecordingDevice, RecordingDevice))
    # `{osc: ...}` actions go out through the real OSC out devices, as in a running exhibit.
    reg.add_device(DriverSpec("osc", OscOutConfig, OscOutDevice, OscOutDevice))
    reg.osc_peer = OscOutConfig.peer
    return reg


async def start_show(text: str, wall: datetime.datetime | None = None) -> tuple[Runtime, VirtualClock]:
    reg = registry()
    clock = VirtualClock(wall=wall)
    runtime = Runtime(validate_text(text, "show.yaml", reg), reg, options=RuntimeOptions(simulate=True), clock=clock)
    await runtime.start()
    await clock.advance(0)
    return runtime, clock


def commands(runtime: Runtime, device: str) -> list[tuple[float, dict[str, Any]]]:
    target = runtime.devices[device]
    assert isinstance(target, RecordingDevice)
    return target.commands
