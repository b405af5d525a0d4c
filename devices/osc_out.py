"""OSC out: properties sent as OSC messages to software peers (QLab, Resolume,
TouchDesigner). Each property has an address (which may contain `{value}`, as in
QLab's `/cue/{value}/start`) and arguments (default: the value itself).

Whole messages go out the same way (:meth:`OscOutDevice.send_message`): that is how the show's
`{osc: /cue/1/start, host: ..., port: ...}` actions are sent, through a device of this kind made for
each peer they name (see :func:`action_peers`), so they have health like any other output.

A peer named by an IP address is sent to at once. A peer named by a host name (``qlab.local``) is looked up
in the background by :meth:`OscOutDevice.run`, retried with back-off while the name server or the peer is
away, and looked up again every :data:`LOOKUP_REFRESH` seconds: a lookup never runs on the event loop (it
can take many seconds on a network without its name server). Until the first lookup answers, the latest
value of each property waits and goes out then; whole messages are refused (counted in ``errors``)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import random
import socket
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator
from pythonosc.osc_message_builder import OscMessageBuilder

from engine.authority import Authority
from engine.drivers import Device, DriverContext, Fault, check_fault
from engine.model import DeviceConfig, Name, SignalType, StoreType, Strict, coerce_output
from engine.reconnect import Backoff, Reconnect
from engine.signals import Value

log = logging.getLogger("devices.osc_out")

LOOKUP_REFRESH = 60.0
"""Seconds between lookups of a peer named by a host name, once found (its address may change)."""
Address = tuple[str, int]


def ip_address(host: str, port: int) -> Address | None:
    """``(host, port)`` when ``host`` is an IPv4 address already (nothing to look up); None for a name."""
    try:
        return str(ipaddress.IPv4Address(host)), port
    except ValueError:
        return None


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
        self.address: Address | None = ip_address(config.host, config.port)
        """Where datagrams go; None until a host name is looked up (:meth:`run`)."""
        self.backoff = Backoff(initial=0.5, cap=10.0)
        self._waiting: dict[str, bytes] = {}
        """The latest message of each property, kept while the peer's name is not looked up yet."""
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self.held = 0
        """Messages not sent because another node of the show network drives the devices (this one tracks it)."""
        try:
            self._authority: Authority | None = context.resources.get(Authority)
        except LookupError:
            self._authority = None

    def set(self, values: Mapping[str, Any]) -> None:
        for prop, value in values.items():
            spec = self.config.properties[prop]
            packet = message(spec, spec.coerce(value))
            if self.address is None:
                self._waiting[prop] = packet  # sent once the name is found: latest wins
            else:
                self._send(packet)

    def send_message(self, address: str, args: list[Value]) -> None:
        """Send one whole message now (an `{osc: ...}` action); never raises."""
        self._send(datagram(address, args))

    def _send(self, packet: bytes) -> None:
        if self._authority is not None and not self._authority.driving:
            self.held += 1
            return
        if self.address is None:
            self._failed(f"the address of {self.config.host} is not known yet")
            return
        try:
            self._socket.sendto(packet, self.address)  # an address, never a name: sendto must not look it up
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
        if self.address is not None:
            self.health.set("ok")  # UDP: nothing to connect; a refused message says otherwise
            await asyncio.Event().wait()  # sending happens in set(); nothing runs in between
        await self._look_up_forever()

    async def _look_up_forever(self) -> None:
        """Find the peer's address, retrying with back-off while it cannot be found, then again every
        :data:`LOOKUP_REFRESH` seconds (a failed refresh keeps the address it had)."""
        host, clock = self.config.host, self.context.clock
        reconnect = Reconnect(self.backoff, clock, random.Random())
        said = False
        self.health.set("offline", f"looking up the OSC peer {host}", expected=True)
        while True:
            try:
                found = await self._look_up()
            except OSError as exc:
                if self.address is None:
                    reason = f"OSC peer {host} not found: {exc.strerror or exc}"
                    self.health.set("offline", reason)
                    if not said:
                        log.warning("device %s: %s; the exhibit goes on and keeps looking", self.name, reason)
                        said = True
                await reconnect.wait()
                continue
            reconnect.up()
            first, before = self.address is None, self.address
            self.address = found
            if found != before:
                log.info("device %s: OSC peer %s is at %s:%d", self.name, host, *found)
            if first:
                self.health.set("ok")
                waiting, self._waiting = self._waiting, {}
                for packet in waiting.values():
                    self._send(packet)
            await clock.sleep(LOOKUP_REFRESH)

    async def _look_up(self) -> Address:
        """The peer's IPv4 address, looked up in a worker thread (the loop's ``getaddrinfo``)."""
        loop = asyncio.get_running_loop()
        found = await loop.getaddrinfo(
            self.config.host, self.config.port, family=socket.AF_INET, type=socket.SOCK_DGRAM
        )
        if not found:
            raise OSError(f"no IPv4 address for {self.config.host}")
        host, port = found[0][4][:2]
        return str(host), int(port)

    async def go_safe(self, timeout: float) -> bool:
        errors = self.errors
        self.set(self.config.safe_state())
        # This safe state went out, whatever failed before; not while the peer's address is still unknown.
        return self.errors == errors and (self.address is not None or not self.config.safe_state())


class SimulatedOscOut(OscOutDevice):
    """Keeps the datagrams instead of sending them; ``inject("disconnect")`` makes them fail as an
    unreachable network would, ``inject("clear")`` heals it."""

    def __init__(self, name: str, config: OscOutConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.address = (config.host, config.port)  # nothing is looked up: the datagrams are kept here
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
