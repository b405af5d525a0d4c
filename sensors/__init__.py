"""Input drivers. Each module (or package) holds a config model, the driver and its simulator."""

from engine.registry import DriverSpec, Registry
from sensors.audience.driver import AudienceSensor, SimulatedAudienceSensor
from sensors.audience.model import AudienceSensorConfig
from sensors.osc.control import SERVICE as OSC_CONTROL
from sensors.osc.inputs import OscSensor, OscSensorConfig, SimulatedOscSensor
from sensors.osc.service import CONTROL_SERVICE as OSCQUERY_CONTROL
from sensors.osc.service import SERVICE as OSCQUERY
from sensors.pose.driver import PoseSensor, PoseSensorConfig, SimulatedPoseSensor
from sensors.serial import SerialSensor, SerialSensorConfig
from sensors.serial_simulated import SimulatedSerialSensor


def register(registry: Registry) -> None:
    registry.add_sensor(DriverSpec("audience", AudienceSensorConfig, AudienceSensor, SimulatedAudienceSensor))
    registry.add_sensor(DriverSpec("osc", OscSensorConfig, OscSensor, SimulatedOscSensor))
    registry.add_sensor(DriverSpec("pose", PoseSensorConfig, PoseSensor, SimulatedPoseSensor))
    registry.add_sensor(DriverSpec("serial", SerialSensorConfig, SerialSensor, SimulatedSerialSensor))
    registry.add_service(OSCQUERY)
    registry.add_service(OSC_CONTROL)
    registry.add_service(OSCQUERY_CONTROL)
