"""The runtime on virtual time: a failing driver is restarted and never stops the others;
a clean stop makes every device safe before the services close."""

from __future__ import annotations

from typing import Literal

from devices.mqtt.device import MqttDeviceConfig, SimulatedGear
from engine.clock import VirtualClock
from engine.drivers import Sensor
from engine.model import SensorConfig, StoreType
from engine.registry import DriverSpec, Registry, ServiceSpec
from engine.runtime import Runtime, RuntimeOptions
from engine.validate import validate_text
from sensors.osc.inputs import OscSensorConfig, SimulatedOscSensor


class FlakyConfig(SensorConfig):
    kind: Literal["flaky"]

    def signal_types(self) -> dict[str, StoreType]:
        return {"level": "float"}


class FlakySensor(Sensor):
    """Fails one second after every start, like a board that keeps dropping off."""

    starts = 0

    async def run(self) -> None:
        FlakySensor.starts += 1
        self.context.store.set(f"{self.name}.level", 1.0)
        await self.context.clock.sleep(1.0)
        raise OSError("device reports not ready")


class RecordingService:
    name = "recorder"

    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def start(self) -> None:
        self.events.append("service started")

    async def run(self) -> None:
        self.events.append("service running")

    async def close(self, timeout: float) -> None:
        self.events.append("service closed")


EXHIBIT = """\
format_version: 1
id: test
title: {en: Test}
sensors:
  panel:
    kind: osc
    signals: {fader: {address: /fader, range: [0, 1]}}
  board:
    kind: flaky
devices:
  wash:
    kind: mqtt
    properties: {brightness: {type: int, range: [0, 255], safe: 0}}
  spot:
    kind: mqtt
    properties: {level: {range: [0, 1], safe: 0}}
mappings:
  - {from: panel.fader, to: wash.brightness}
  - {from: board.level, to: spot.level}
"""


def registry() -> Registry:
    reg = Registry()
    reg.add_sensor(DriverSpec("osc", OscSensorConfig, SimulatedOscSensor, SimulatedOscSensor))
    reg.add_sensor(DriverSpec("flaky", FlakyConfig, FlakySensor, FlakySensor))
    reg.add_device(DriverSpec("mqtt", MqttDeviceConfig, SimulatedGear, SimulatedGear))
    return reg


async def test_a_failing_sensor_restarts_while_the_rest_goes_on():
    reg = registry()
    clock = VirtualClock()
    events: list[str] = []
    runtime = Runtime(
        validate_text(EXHIBIT, "test.yaml", reg),
        reg,
        service_specs=[ServiceSpec("recorder", 50, lambda exhibit: True, lambda runtime: RecordingService(events))],
        options=RuntimeOptions(simulate=True),
        clock=clock,
    )
    FlakySensor.starts = 0
    await runtime.start()
    wash = runtime.devices["wash"]
    assert isinstance(wash, SimulatedGear)

    await clock.advance(1.0)
    first = len(wash.history)
    await clock.advance(20.0)

    assert FlakySensor.starts >= 5
    assert runtime.supervisor.tasks["sensor:board"].failures >= 4
    assert runtime.supervisor.tasks["sensor:panel"].failures == 0
    assert len(wash.history) > first + 100  # the panel kept driving the wash the whole time
    assert 0 <= int(wash.state["brightness"]) <= 255

    await runtime.stop()
    assert wash.state == {"brightness": 0}
    assert runtime.devices["spot"].state == {"level": 0}  # type: ignore[attr-defined]
    assert events == ["service started", "service running", "service closed"]
    assert all(state.task.done() for state in runtime.supervisor.tasks.values())


async def test_stop_reports_a_device_that_cannot_go_safe(caplog):
    reg = registry()
    clock = VirtualClock()
    runtime = Runtime(validate_text(EXHIBIT, "test.yaml", reg), reg, options=RuntimeOptions(simulate=True), clock=clock)
    await runtime.start()
    await clock.advance(0.5)
    runtime.devices["spot"].inject("disconnect")  # type: ignore[attr-defined]
    await runtime.stop()
    assert "1 of 2 devices never confirmed their safe state (the safe state was not acknowledged): spot" in caplog.text
    assert runtime.devices["wash"].state == {"brightness": 0}  # type: ignore[attr-defined]
