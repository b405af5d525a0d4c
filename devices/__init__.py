"""Output drivers. Each module holds a config model, the driver and its simulator."""

from devices.dmx import DmxDevice, DmxDeviceConfig, SimulatedDmx
from devices.mqtt.device import MqttDevice, MqttDeviceConfig, SimulatedGear
from devices.osc_out import OscOutConfig, OscOutDevice, SimulatedOscOut
from engine.registry import DriverSpec, Registry


def register(registry: Registry) -> None:
    registry.add_device(DriverSpec("mqtt", MqttDeviceConfig, MqttDevice, SimulatedGear))
    registry.add_device(DriverSpec("dmx", DmxDeviceConfig, DmxDevice, SimulatedDmx))
    registry.add_device(DriverSpec("osc", OscOutConfig, OscOutDevice, SimulatedOscOut))
