"""Output drivers. Each module (or package, for MQTT) holds a config model, the driver and its simulator."""

from devices import mqtt
from devices.dmx import DmxDevice, DmxDeviceConfig, SimulatedDmx
from devices.osc_out import OscOutConfig, OscOutDevice, SimulatedOscOut
from engine.registry import DriverSpec, Registry


def register(registry: Registry) -> None:
    mqtt.register(registry)
    registry.add_device(DriverSpec("dmx", DmxDeviceConfig, DmxDevice, SimulatedDmx))
    registry.add_device(DriverSpec("osc", OscOutConfig, OscOutDevice, SimulatedOscOut))
    registry.osc_peer = OscOutConfig.peer
