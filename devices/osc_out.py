"""OSC out: properties sent as OSC messages to software peers (QLab, Resolume,
TouchDesigner). Each property has an address (which may contain `{value}`, as in
QLab's `/cue/{value}/start`) and arguments (default: the value itself)."""

from __future__ import annotations

import asyncio
import logging
import math
import socket
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator
from pythonosc.osc_message_builder import OscMessageBuilder

from engine.drivers import Device, DriverContext
from engine.model import DeviceConfig, Name, SignalType, Strict, coerce_output

log = logging.getLogger("devices.osc_out")

Value = float | int | bool | str


def _value_only() -> list[Value]:
    return ["{value}"]


class OscOutProperty(Strict):
    address: str = Field(pattern=r"^/\S*$", description="OSC address; `{value}` is replaced by the value.")
    args: list[Value] = Field(
        default_factory=_value_only, description="Arguments; the text `{value}` is replaced by the value."
    )
    type: SignalType = Field("float", description="Value type.")
    range: tuple[float, float] | None = Field(None, description="[min, max] for numbers; values are clamped.")
    safe: Value | None = Field(None, description="Sent at start-up, on PANIC and at a clean stop (none: nothing sent).")

    @model_validator(mode="after")
    def _uses_value(self) -> OscOutProperty:
        if "{value}" not in self.address and "{value}" not in self.args:
            raise ValueError("put `{value}` in the address or in `args`, or the value is never sent")
        return self

    def coerce(self, value: Any) -> Value:
        return coerce_output(value, self.type, self.range)


class OscOutConfig(DeviceConfig):
    """A software peer that takes OSC: QLab (port 53000), Resolume (7000), TouchDesigner."""

    kind: Literal["osc"]
    host: str = Field("127.0.0.1", description="The peer's address.")
    port: int = Field(ge=1, le=65535, description="The peer's UDP port.")
    properties: dict[Name, OscOutProperty] = Field(min_length=1, description="What can be sent, by name.")

    def settable_properties(self) -> list[str]:
        return list(self.properties)

    def property_range(self, name: str) -> tuple[float, float] | None:
        return self.properties[name].range

    def safe_state(self) -> dict[str, Any]:
        return {name: spec.safe for name, spec in self.properties.items() if spec.safe is not None}

    def max_rate(self) -> float:
        return math.inf  # UDP to software on the same network takes what we send


def message(spec: OscOutProperty, value: Value) -> bytes:
    """The OSC datagram for ``value`` (booleans as T/F, `{value}` replaced in address and args)."""
    shown = str(int(value)) if isinstance(value, bool) else str(value)
    builder = OscMessageBuilder(spec.address.replace("{value}", shown))
    for arg in spec.args:
        builder.add_arg(value if arg == "{value}" else arg)
    return builder.build().dgram


class OscOutDevice(Device):
    config: OscOutConfig

    def __init__(self, name: str, config: OscOutConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.sent = 0
        self.errors = 0
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setblocking(False)

    def set(self, values: Mapping[str, Any]) -> None:
        for prop, value in values.items():
            spec = self.config.properties[prop]
            self._send(message(spec, spec.coerce(value)))

    def _send(self, datagram: bytes) -> None:
        try:
            self._socket.sendto(datagram, (self.config.host, self.config.port))
            self.sent += 1
        except OSError as exc:  # an unreachable peer must not stop the show
            self.errors += 1
            if self.errors == 1:
                log.warning("OSC to %s:%d failed: %s", self.config.host, self.config.port, exc)

    async def run(self) -> None:
        await asyncio.Event().wait()  # sending happens in set(); nothing runs in between

    async def go_safe(self, timeout: float) -> bool:
        self.set(self.config.safe_state())
        return self.errors == 0


class SimulatedOscOut(OscOutDevice):
    """Keeps the datagrams instead of sending them."""

    def __init__(self, name: str, config: OscOutConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.datagrams: list[bytes] = []

    def _send(self, datagram: bytes) -> None:
        self.datagrams.append(datagram)
        self.sent += 1
