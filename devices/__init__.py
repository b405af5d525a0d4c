"""Output drivers. Each module (or package, for MQTT) holds a config model, the driver and its simulator."""

from devices import mqtt, site
from devices.dmx import DmxDevice, DmxDeviceConfig, SimulatedDmx
from devices.osc_out import OscOutConfig, OscOutDevice, SimulatedOscOut
from devices.pjlink import PjlinkConfig, PjlinkDevice, SimulatedPjlink
from devices.power_schedule import SERVICE as POWER_SERVICE
from devices.sound.device import SimulatedSound, SoundDevice, SoundDeviceConfig, sound_device_config
from devices.wake_on_lan import SimulatedWakeOnLan, WakeOnLanConfig, WakeOnLanDevice
from engine.registry import DriverSpec, Registry


def register(registry: Registry) -> None:
    mqtt.register(registry)
    site.register(registry)
    registry.add_device(DriverSpec("dmx", DmxDeviceConfig, DmxDevice, SimulatedDmx))
    registry.add_device(DriverSpec("osc", OscOutConfig, OscOutDevice, SimulatedOscOut))
    registry.osc_peer = OscOutConfig.peer
    registry.add_device(DriverSpec("pjlink", PjlinkConfig, PjlinkDevice, SimulatedPjlink))
    registry.add_device(DriverSpec("wake_on_lan", WakeOnLanConfig, WakeOnLanDevice, SimulatedWakeOnLan))
    registry.add_service(POWER_SERVICE)
    registry.add_device(DriverSpec("sound", SoundDeviceConfig, SoundDevice, SimulatedSound))
    registry.sound_device = sound_device_config
