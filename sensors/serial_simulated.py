"""A serial board for ``--simulate``: the real driver, talking to a simulated board instead of a port.

Everything but the port is the real :class:`~sensors.serial.SerialSensor`: the wait for the
board to start, the Firmata handshake, parsing, health and reconnecting. The board is an
:class:`~sensors.simulated_board.AutoResetBoard` on the exhibit's clock, so it restarts when
the port opens and swallows what is sent during its bootloader, like an Uno.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os

from engine.drivers import DriverContext, Fault
from sensors.serial import BoardProtocol, PortMissing, SerialSensor, SerialSensorConfig
from sensors.simulated_board import BOOTLOADER_SECONDS, AutoResetBoard, FirmataSketch, LineSketch, Sketch

log = logging.getLogger("sensors.serial")

PUMP_SECONDS = 0.02
"""How often the simulated board's output is delivered (StandardFirmata samples every 19 ms)."""


class SimulatedPort:
    """The host's end of the simulated cable: what the sensor writes reaches the board at once."""

    def __init__(self, sensor: SimulatedSerialSensor, protocol: BoardProtocol) -> None:
        self.sensor = sensor
        self.protocol = protocol
        self.closing = False

    def write(self, data: bytes) -> None:
        self.sensor.written.append(bytes(data))
        replies = self.sensor.simulated_board.receive(bytes(data), self.sensor.context.clock.now())
        if replies:
            asyncio.get_running_loop().call_soon(self.deliver, replies)

    def deliver(self, data: bytes) -> None:
        if not self.closing and data:
            self.protocol.data_received(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self, exc: Exception | None = None) -> None:
        if not self.closing:
            self.closing = True
            self.protocol.connection_lost(exc)


class SimulatedSerialSensor(SerialSensor):
    """Plays the board, without a port: lines in the configured format (or StandardFirmata
    reports) go through the same parsing as real bytes. The first button presses for 0.3 s
    every 10 s (others every 60 s); numbers follow a slow wave over their scale's input range
    (0..1023 without one).

    ``inject("disconnect" | "stall" | "garbage" | "slow" | "clear")`` scripts faults:
    ``disconnect`` unplugs the board until ``clear``. Everything sent to the board is kept,
    encoded, in ``written``.
    """

    def __init__(
        self,
        name: str,
        config: SerialSensorConfig,
        context: DriverContext,
        rate: float = 10.0,
        bootloader_s: float = BOOTLOADER_SECONDS,
    ) -> None:
        super().__init__(name, config, context)
        self.rate = rate
        self.fault: Fault = "clear"
        self.written: list[bytes] = []
        self.sketch: Sketch = FirmataSketch(self.raw_values) if self.firmata else LineSketch(self.frame, rate)
        self.simulated_board = AutoResetBoard(self.sketch, context.clock.now(), bootloader_s)
        self._port: SimulatedPort | None = None
        self._chunks = 0

    def inject(self, fault: Fault) -> None:
        self.fault = fault
        if fault == "disconnect" and self._port is not None:
            self._port.close(PortMissing("simulated unplug"))
        log.info("simulated board %s: fault %s", self.name, fault)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(super().run())
            tasks.create_task(self._pump())

    async def _open(self) -> BoardProtocol:
        if self.fault == "disconnect":
            raise PortMissing(f"the simulated board at {self.config.identity()} is unplugged")
        protocol = BoardProtocol(self)
        self._port = SimulatedPort(self, protocol)
        self.simulated_board.open(self.context.clock.now())
        self._opened(self._port, f"a simulated board (no serial port is opened for {self.config.identity()})")
        return protocol

    async def _pump(self) -> None:
        """The board's output, delivered as its cable would, with the injected faults."""
        clock = self.context.clock
        while True:
            await clock.sleep(PUMP_SECONDS)
            data = self.simulated_board.poll(clock.now())
            port = self._port
            if not data or port is None or port.closing or self.fault == "stall":
                continue
            self._chunks += 1
            if self.fault == "slow" and self._chunks % 4:
                continue
            port.deliver(os.urandom(31) + b"\n" if self.fault == "garbage" else data)

    def raw_values(self, t: float) -> dict[str, float | int | bool]:
        """What each signal's field or pin reads at time ``t`` after the board started."""
        values: dict[str, float | int | bool] = {}
        buttons = 0
        for index, spec in enumerate(self.config.signals.values()):
            key = spec.field or spec.pin or ""
            if spec.type == "bool" or (spec.pin or "").startswith("D"):
                # The first button is pressed every 10 s, any others (an e-stop...) only every 60 s.
                period = 10.0 if buttons == 0 else 60.0
                values[key] = ((t + 5.0 * buttons) % period) < 0.3
                buttons += 1
                continue
            low, high = spec.scale.input if spec.scale else (0.0, 1023.0)
            wave = 0.5 - 0.5 * math.cos(2 * math.pi * t / (7.0 + index))
            value = low + wave * (high - low)
            values[key] = round(value) if spec.type == "int" or spec.scale is None else value
        return values

    def frame(self, t: float) -> bytes:
        """One line as the board prints it at time ``t``, in the configured format."""
        values = self.raw_values(t)
        shown = {key: int(v) if isinstance(v, bool) else v for key, v in values.items()}
        if self.config.format == "json":
            return (json.dumps(values) + "\n").encode()
        if self.config.format == "keyvalue":
            return (" ".join(f"{k}{self.config.separator}{v}" for k, v in shown.items()) + "\n").encode()
        if self.config.format == "csv":
            columns = self.config.columns or []
            return (self.config.delimiter.join(str(shown.get(c, 0)) for c in columns) + "\n").encode()
        return b""  # a regular expression cannot be played backwards: the simulated board stays quiet
