"""OSC out: properties sent as OSC messages to software peers (QLab, Resolume,
TouchDesigner). Each property has an address (which may contain `{value}`, as in
QLab's `/cue/{value}/start`) and arguments (default: the value itself).

Whole messages go out the same way (:meth:`OscOutDevice.send_message`): that is how the show's
`{osc: /cue/1/start, host: ..., port: ...}` actions are sent, through a device of this kind made for
each peer they name (see :func:`action_peers`), so they have health like any other output."""

from __future__ import annotations

import asyncio
import logging
import math
import socket
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator
from pythonosc.osc_message_builder import OscMessageBuilder

from engine.drivers import Device, DriverContext, Fault, check_fault
from engine.model import DeviceConfig, Name, SignalType, StoreType, Strict, coerce_output
from engine.signals import Value

log = logging.getLogger("devices.osc_out")


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
    properties: dict[Name, OscOutProperty] = Field(
        default_factory=dict, description="What can be sent, by name (none for a peer only `{osc: ...}` actions use)."
    )

    @classmethod
    def peer(cls, host: str, port: int) -> OscOutConfig:
        """The device an `{osc: ..., host: ..., port: ...}` action sends through."""
        return cls(kind="osc", host=host, port=port)

    def health_figures(self) -> dict[str, StoreType]:
        return {"sent": "int", "errors": "int"}

    def health_meanings(self) -> dict[str, str]:
        return {"sent": "messages sent", "errors": "messages the network refused"}

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
    return datagram(spec.address.replace("{value}", shown), [value if arg == "{value}" else arg for arg in spec.args])


def datagram(address: str, args: list[Value]) -> bytes:
    """One OSC message as it goes on the wire."""
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
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

    def send_message(self, address: str, args: list[Value]) -> None:
        """Send one whole message now (an `{osc: ...}` action); never raises."""
        self._send(datagram(address, args))

    def _send(self, packet: bytes) -> None:
        try:
            self._socket.sendto(packet, (self.config.host, self.config.port))
        except OSError as exc:  # an unreachable peer must not stop the show
            self._failed(exc.strerror or str(exc))
        else:
            self._sent()

    def _sent(self) -> None:
        self.sent += 1
        self.health.figure("sent", self.sent)
        self.health.set("ok")

    def _failed(self, reason: str) -> None:
        self.errors += 1
        self.health.figure("errors", self.errors)
        self.health.set("offline", f"OSC to {self.config.host}:{self.config.port} not sent: {reason}")

    async def run(self) -> None:
        self.health.set("ok")  # UDP: nothing to connect; a refused message says otherwise
        await asyncio.Event().wait()  # sending happens in set(); nothing runs in between

    async def go_safe(self, timeout: float) -> bool:
        errors = self.errors
        self.set(self.config.safe_state())
        return self.errors == errors  # this safe state went out, whatever failed before


class SimulatedOscOut(OscOutDevice):
    """Keeps the datagrams instead of sending them; ``inject("disconnect")`` makes them fail as an
    unreachable network would, ``inject("clear")`` heals it."""

    def __init__(self, name: str, config: OscOutConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.datagrams: list[bytes] = []
        self.fault: Fault = "clear"

    def inject(self, fault: Fault) -> None:
        check_fault(self, fault, ("disconnect", "clear"))
        self.fault = fault

    def _send(self, packet: bytes) -> None:
        if self.fault == "disconnect":
            self._failed("simulated disconnect")
            return
        self.datagrams.append(packet)
        self._sent()
