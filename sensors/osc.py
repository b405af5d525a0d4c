"""OSC 1.0 over UDP: addressed values become signals ``<sensor>.<signal>``.

Parsing is python-osc's; bundles are unpacked at once (a future time tag never
holds a message back). A malformed datagram is counted and dropped; the
server never stops for one. The simulator feeds real OSC datagrams through
the same parsing path, with scriptable faults.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import os
import socket
from typing import Any, Literal

from pydantic import Field
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from engine.drivers import DriverContext, Sensor
from engine.errors import UserError
from engine.model import Name, SensorConfig, SignalType, StoreType, Strict
from engine.signals import Value

log = logging.getLogger("sensors.osc")


class OscSignalSpec(Strict):
    address: str = Field(pattern=r"^/[^\s#*,?\[\]{}]*$", description="OSC address, e.g. `/canal/wash`.")
    arg: int = Field(0, ge=0, description="Which argument of the message carries the value (0 = first).")
    type: SignalType = Field("float", description="Signal type; OSC arguments are converted to it.")
    range: tuple[float, float] | None = Field(None, description="Expected range, used by the simulator.")


class OscSensorConfig(SensorConfig):
    """Listens for OSC messages on a UDP port (TouchOSC, QLab, TouchDesigner, `oscsend`)."""

    kind: Literal["osc"]
    host: str = Field("0.0.0.0", description="Address to listen on; `127.0.0.1` for this machine only.")
    port: int = Field(9000, ge=1, le=65535, description="UDP port.")
    receive_buffer: int = Field(4 << 20, ge=65536, description="Socket receive buffer in bytes, for bursts.")
    signals: dict[Name, OscSignalSpec] = Field(min_length=1, description="Signals fed by this sensor, by name.")

    def signal_types(self) -> dict[str, StoreType]:
        return {name: spec.type for name, spec in self.signals.items()}

    def resources(self) -> list[str]:
        return [f"UDP port {self.port}"]


def coerce(value: Any, type_: SignalType) -> Value | None:
    """An OSC argument as a signal value, or None if it cannot be one."""
    if isinstance(value, bool | int | float):
        if type_ == "float":
            return float(value)
        if type_ == "int":
            return round(value) if math.isfinite(value) else None
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
        self.routes: dict[str, list[tuple[str, OscSignalSpec]]] = {}
        for short, spec in config.signals.items():
            self.routes.setdefault(spec.address, []).append((f"{name}.{short}", spec))
        self.received = 0
        self.parse_errors = 0
        self.unmatched = 0
        self.type_errors = 0
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
        self.health = "ok"
        log.info("OSC sensor %s listening on udp://%s", self.name, where)

    async def run(self) -> None:
        if self._transport is None or self._transport.is_closing():
            await self.open()
        assert self._protocol is not None
        exc = await self._protocol.lost
        self.health = "offline"
        self.context.store.mark_stale(f"{self.name}.")
        raise OSError(f"OSC socket closed: {exc}")

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self.health = "offline"

    def handle_datagram(self, data: bytes, addr: Any = None) -> None:
        """Parse one datagram and set the signals it addresses; bad input is counted, never raised."""
        self.received += 1
        try:
            messages = OscPacket(data).messages
        except Exception as exc:  # python-osc raises several types on garbage
            self.parse_errors += 1
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

    def _route(self, address: str, params: list[Any]) -> None:
        routes = self.routes.get(address)
        if routes is None:
            self.unmatched += 1
            return
        for signal, spec in routes:
            value = coerce(params[spec.arg], spec.type) if spec.arg < len(params) else None
            if value is None:
                self.type_errors += 1
                continue
            self.context.store.set(signal, value)


Fault = Literal["disconnect", "stall", "garbage", "slow", "clear"]


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
        self.health = "ok"
        log.info("OSC sensor %s is simulated (no UDP port is opened)", self.name)

    def inject(self, fault: Fault) -> None:
        self.fault = fault
        self.health = "offline" if fault == "disconnect" else "ok"
        if fault == "disconnect":
            self.context.store.mark_stale(f"{self.name}.")
        log.info("simulated OSC sensor %s: fault %s", self.name, fault)

    async def run(self) -> None:
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
            low, high = spec.range or (0.0, 1.0)
            wave = 0.5 - 0.5 * math.cos(2 * math.pi * t / (8.0 + index))
            builder = OscMessageBuilder(spec.address)
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
