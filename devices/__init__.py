"""Output drivers. Each module holds a config model, the driver and its simulator."""

from devices.mqtt_device import MqttDevice, MqttDeviceConfig, SimulatedGear
from engine.registry import DriverSpec, Registry


def register(registry: Registry) -> None:
    registry.add_device(DriverSpec("mqtt", MqttDeviceConfig, MqttDevice, SimulatedGear))
