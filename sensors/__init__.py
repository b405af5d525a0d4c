"""Input drivers. Each module holds a config model, the driver and its simulator."""

from engine.registry import DriverSpec, Registry
from sensors.mqtt import MqttSensor, MqttSensorConfig
from sensors.osc.inputs import OscSensor, OscSensorConfig, SimulatedOscSensor
from sensors.pose.driver import PoseSensor, PoseSensorConfig, SimulatedPoseSensor
from sensors.serial import SerialSensor, SerialSensorConfig, SimulatedSerialSensor


def register(registry: Registry) -> None:
    # Simulated exhibits run on the embedded broker, so MQTT inputs need no stand-in: the real driver serves both.
    registry.add_sensor(DriverSpec("mqtt", MqttSensorConfig, MqttSensor, MqttSensor))
    registry.add_sensor(DriverSpec("osc", OscSensorConfig, OscSensor, SimulatedOscSensor))
    registry.add_sensor(DriverSpec("pose", PoseSensorConfig, PoseSensor, SimulatedPoseSensor))
    registry.add_sensor(DriverSpec("serial", SerialSensorConfig, SerialSensor, SimulatedSerialSensor))
