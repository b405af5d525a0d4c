"""OSC 1.0 over UDP: addressed values become signals ``<sensor>.<signal>``.

Parsing is python-osc's; bundles are unpacked at once (a future time tag never
holds a message back). A malformed datagram is counted and dropped; the
server never stops for one. So is a non-finite number (``inf``, ``nan``): it
is bad input, never scaled or clamped into a full-scale value. The simulator
feeds real OSC datagrams through the same parsing path, with scriptable faults.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import math
import os
import re
import socket
from typing import Any, Literal

from pydantic import Field, IPvAnyNetwork, field_validator
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from engine.drivers import DriverContext, Fault, Sensor
from engine.errors import UserError
from engine.health import InputHealth, MessageInputConfig
from engine.model import Name, Scale, SignalType, StoreType, Strict
from engine.signals import Value
from sensors.osc.oscquery import OscQuerySettings

log = logging.getLogger("sensors.osc.inputs")

Route = tuple[str, "OscSignalSpec"]


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """An OSC 1.0 address pattern (``*``, ``?``, ``[a-z]``, ``[!0-9]``, ``{wash,spot}``) as a regex."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f"`[` at position {i + 1} of `{pattern}` is never closed")
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace("\\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = end
        elif c == "{":
            end = pattern.find("}", i + 1)
            if end < 0:
                raise ValueError(f"`{{` at position {i + 1} of `{pattern}` is never closed")
            out.append("(?:" + "|".join(re.escape(part) for part in pattern[i + 1 : end].split(",")) + ")")
            i = end
        elif c in "]}":
            raise ValueError(f"`{c}` at position {i + 1} of `{pattern}` was never opened")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


class OscSignalSpec(Strict):
    address: str = Field(
        pattern=r"^/[^\s#]*$",
        description="OSC address, e.g. `/canal/wash`, or a pattern: `/canal/*/level`, `/fader[1-4]`, `/{wash,spot}`.",
    )
    arg: int = Field(0, ge=0, description="Which argument of the message carries the value (0 = first).")
    type: SignalType = Field("float", description="Signal type; OSC arguments are converted to it.")
    range: tuple[float, float] | None = Field(None, description="Expected range, used by the simulator and OSCQuery.")
    scale: Scale | None = Field(None, description="Convert the incoming number, e.g. input [0, 127] (MIDI) to [0, 1].")

    @field_validator("address")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        pattern_regex(value)
        return value

    @property
    def is_pattern(self) -> bool:
        return any(c in self.address for c in "*?[{")


class OscSensorConfig(MessageInputConfig):
    """Listens for OSC messages on a UDP port (TouchOSC, QLab, TouchDesigner, `oscsend`)."""

    kind: Literal["osc"]
    host: str = Field("0.0.0.0", description="Address to listen on; `127.0.0.1` for this machine only.")
    port: int = Field(9000, ge=1, le=65535, description="UDP port.")
    receive_buffer: int = Field(4 << 20, ge=65536, description="Socket receive buffer in bytes, for bursts.")
    allow: list[IPvAnyNetwork] | None = Field(
        None, description="Only accept datagrams from these addresses or networks (`192.168.1.0/24`, `127.0.0.1`)."
    )
    signals: dict[Name, OscSignalSpec] = Field(min_length=1, description="Signals fed by this sensor, by name.")
    oscquery: OscQuerySettings | None = Field(
        None, description="Publish these addresses over OSCQuery (HTTP JSON + zeroconf) for TouchOSC, Chataigne, ossia."
    )

    def signal_types(self) -> dict[str, StoreType]:
        return {name: spec.type for name, spec in self.signals.items()}

    def signal_meanings(self) -> dict[str, str]:
        return {name: f"OSC {spec.address}, argument {spec.arg}" for name, spec in self.signals.items()}

    def resources(self) -> list[str]:
        claimed = [f"UDP port {self.port}"]
        if self.oscquery is not None and self.oscquery.port:
            claimed.append(f"TCP port {self.oscquery.port}")
        return claimed


def nonfinite(value: Any) -> bool:
    """Whether ``value`` is a number that is not finite (``inf``, ``-inf``, ``nan``): bad input whatever
    the signal's type, never to be scaled or clamped into a full-scale value."""
    return isinstance(value, float) and not math.isfinite(value)


def coerce(value: Any, type_: SignalType, scale: Scale | None = None) -> Value | None:
    """An OSC argument as a signal value, or None if it cannot be one (a non-finite number never can)."""
    if isinstance(value, bool | int | float):
        if nonfinite(value):
            return None
        if scale is not None and not isinstance(value, bool):
            value = scale.apply(float(value))
            if nonfinite(value):  # a finite number scaled past what a float holds
                return None
        if type_ == "float":
            return float(value)
        if type_ == "int":
            return round(value)
        if type_ == "bool":
            return bool(value)
        return str(value)
    if isinstance(value, str) and type_ == "str":
        return value
    return None


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, sensor: OscSensor) -> None:
        self.sensor = sensor
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.sensor.handle_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.warning("OSC socket error on sensor %s: %s", self.sensor.name, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


class OscSensor(Sensor):
    config: OscSensorConfig

    def __init__(self, name: str, config: OscSensorConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.exact: dict[str, list[Route]] = {}
        self.patterns: list[tuple[re.Pattern[str], Route]] = []
        for short, spec in config.signals.items():
            route = (f"{name}.{short}", spec)
            if spec.is_pattern:
                self.patterns.append((pattern_regex(spec.address), route))
            else:
                self.exact.setdefault(spec.address, []).append(route)
        self._resolved: dict[str, list[Route]] = {}
        self.allow = config.allow
        self.health_signals = InputHealth(self.health)
        self.received = 0
        self.parse_errors = 0
        self.unmatched = 0
        self.type_errors = 0
        self.nonfinite_errors = 0
        self.rejected = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Protocol | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        where = f"{self.config.host}:{self.config.port}"
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), local_addr=(self.config.host, self.config.port)
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(
                    f"UDP port {self.config.port} is already in use, so OSC sensor `{self.name}` "
                    f"cannot listen on {where}; stop the other program or choose another port."
                ) from None
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES) or isinstance(exc, socket.gaierror):
                raise UserError(f"OSC sensor `{self.name}` cannot listen on {where}: {exc.strerror or exc}.") from None
            raise
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.config.receive_buffer)
        self._transport, self._protocol = transport, protocol
        self.health_signals.set_status("ok")
        log.info("OSC sensor %s listening on udp://%s", self.name, where)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.health_signals.run())
            tasks.create_task(self._serve())

    async def _serve(self) -> None:
        if self._transport is None or self._transport.is_closing():
            await self.open()
        assert self._protocol is not None
        exc = await self._protocol.lost
        self.context.store.mark_stale(f"{self.name}.")
        self.health_signals.set_status("offline", f"socket closed ({exc or 'no error'})")
        raise OSError(f"OSC socket closed: {exc}")

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self.health.stopped()

    def handle_datagram(self, data: bytes, addr: Any = None) -> None:
        """Parse one datagram and set the signals it addresses; bad input is counted, never raised."""
        self.received += 1
        if self.allow is not None and not self._allowed(addr):
            self.rejected += 1
            self.health_signals.error("rejected")
            if self.rejected == 1:
                log.warning("OSC sensor %s ignores datagrams from %s (not in `allow`)", self.name, addr)
            return
        try:
            messages = OscPacket(data).messages
        except Exception as exc:  # python-osc raises several types on garbage
            self.parse_errors += 1
            self.health_signals.error("parse")
            if self.parse_errors == 1 or self.parse_errors % 1000 == 0:
                log.warning(
                    "OSC sensor %s dropped a malformed datagram from %s (%s; %d so far)",
                    self.name,
                    addr,
                    exc,
                    self.parse_errors,
                )
            return
        for timed in messages:
            self._route(timed.message.address, timed.message.params)

    def _allowed(self, addr: Any) -> bool:
        try:
            source = ipaddress.ip_address(addr[0])
        except (TypeError, ValueError, IndexError):
            return False
        return any(source in network for network in self.allow or ())

    def routes_for(self, address: str) -> list[Route]:
        """Exact routes plus the patterns that match; remembered per address (bounded)."""
        routes = self._resolved.get(address)
        if routes is None:
            routes = self.exact.get(address, []) + [r for regex, r in self.patterns if regex.match(address)]
            if len(self._resolved) >= 4096:  # senders inventing addresses must not grow memory
                self._resolved.clear()
            self._resolved[address] = routes
        return routes

    def _route(self, address: str, params: list[Any]) -> None:
        routes = self.routes_for(address)
        if not routes:
            self.unmatched += 1
            return
        for signal, spec in routes:
            arg = params[spec.arg] if spec.arg < len(params) else None
            value = coerce(arg, spec.type, spec.scale)
            if value is None:
                if nonfinite(arg):  # inf or nan: dropped, never clamped to a full-scale value
                    self.nonfinite_errors += 1
                    self.health_signals.error("nonfinite")
                else:
                    self.type_errors += 1
                    self.health_signals.error("type")
                continue
            self.context.store.set(signal, value)
            self.health_signals.message()


def example_address(pattern: str) -> str:
    """An address that ``pattern`` matches, for the simulator (``/fader[1-4]`` -> ``/fader1``)."""
    address = re.sub(r"\{([^,}]*)[^}]*\}", r"\1", pattern)
    address = re.sub(r"\[![^\]]*\]", "~", address)  # OSC addresses never use `~`, so it is never excluded
    address = re.sub(r"\[([^\]])[^\]]*\]", r"\1", address)
    return address.replace("*", "x").replace("?", "x")


class SimulatedOscSensor(OscSensor):
    """Plays the part of a TouchOSC panel: real OSC datagrams, no socket, scriptable faults.

    Each signal follows a slow wave across its ``range`` (0..1 by default).
    ``inject("disconnect" | "stall" | "garbage" | "slow" | "clear")`` scripts faults.
    """

    def __init__(self, name: str, config: OscSensorConfig, context: DriverContext, rate: float = 20.0) -> None:
        super().__init__(name, config, context)
        self.rate = rate
        self.fault: Fault = "clear"

    async def open(self) -> None:
        self.health_signals.set_status("ok")
        log.info("OSC sensor %s is simulated (no UDP port is opened)", self.name)

    def inject(self, fault: Fault) -> None:
        self.fault = fault
        if fault == "disconnect":
            self.context.store.mark_stale(f"{self.name}.")
            self.health_signals.set_status("offline", "simulated disconnect")
        else:
            self.health_signals.set_status("ok")
        log.info("simulated OSC sensor %s: fault %s", self.name, fault)

    async def _serve(self) -> None:
        clock = self.context.clock
        start = clock.now()
        while True:
            await clock.sleep(1.0 / (self.rate / 10 if self.fault == "slow" else self.rate))
            if self.fault in ("disconnect", "stall"):
                continue
            if self.fault == "garbage":
                self.handle_datagram(os.urandom(24), "simulator")
                continue
            for datagram in self.frame(clock.now() - start):
                self.handle_datagram(datagram, "simulator")

    def frame(self, t: float) -> list[bytes]:
        """The datagrams a panel would send at time ``t``."""
        datagrams = []
        for index, spec in enumerate(self.config.signals.values()):
            low, high = spec.scale.input if spec.scale else spec.range or (0.0, 1.0)
            wave = 0.5 - 0.5 * math.cos(2 * math.pi * t / (8.0 + index))
            builder = OscMessageBuilder(example_address(spec.address))
            for _ in range(spec.arg):
                builder.add_arg(0.0)
            if spec.type == "bool":
                builder.add_arg(wave > 0.5)
            elif spec.type == "str":
                builder.add_arg(f"sim-{int(t)}")
            elif spec.type == "int":
                builder.add_arg(round(low + wave * (high - low)))
            else:
                builder.add_arg(low + wave * (high - low), "f")
            datagrams.append(builder.build().dgram)
        return datagrams
