"""Everything MQTT, together: the link (aiomqtt on paho-mqtt 2), its credentials and TLS, the
embedded broker, MQTT devices and their payload profiles, MQTT inputs, the health topics, and
MQTT control (commands in, the show's state out)."""

from devices.mqtt.analytics_topics import ANALYTICS_TOPICS
from devices.mqtt.control import CONTROL
from devices.mqtt.device import MqttDevice, MqttDeviceConfig, SimulatedGear
from devices.mqtt.inputs import MqttSensor, MqttSensorConfig
from devices.mqtt.service import BROKER, LINK
from engine.registry import DriverSpec, Registry


def register(registry: Registry) -> None:
    registry.add_device(DriverSpec("mqtt", MqttDeviceConfig, MqttDevice, SimulatedGear))
    # Simulated exhibits run on the embedded broker, so MQTT inputs need no stand-in: the real driver serves both.
    registry.add_sensor(DriverSpec("mqtt", MqttSensorConfig, MqttSensor, MqttSensor))
    registry.add_service(BROKER)
    registry.add_service(LINK)
    registry.add_service(CONTROL)
    registry.add_service(ANALYTICS_TOPICS)
