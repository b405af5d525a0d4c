"""A PJLink class 1 projector over TCP, for tests and the curator's studio.

It speaks what a real projector speaks on port 4352: the greeting (``PJLINK 0``, or ``PJLINK 1 <random>``
with a password), MD5 authentication on the first command of each connection (``PJLINK ERRA`` and a
closed connection for a wrong one; a digest before later commands is accepted too, as some controllers
send it every time), and the class 1 commands ``POWR``, ``INPT``, ``AVMT``, ``ERST``, ``LAMP``,
``NAME``, ``INF1``, ``INF2``, ``INFO`` and ``CLSS`` with their error replies: ``ERR1`` (no such command),
``ERR2`` (parameter out of range), ``ERR3`` (unavailable now: warming up, cooling down, or in standby).

Power goes off -> warming (3) -> on (1) -> cooling (2) -> off (0) with warm-up and cool-down times
of its own (seconds; tests use fractions of one). It is told the shared fault words: ``disconnect``
(connections are closed at once), ``stall`` (connected, never a byte), ``garbage`` (replies are
noise), ``slow`` (each reply late by ``slow_delay``), ``clear``.

It shares no code with the client in ``devices/pjlink.py`` on purpose: a mistake in one is not
repeated in the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from typing import Literal

from engine.drivers import Fault

PowerState = Literal["off", "on", "cooling", "warming"]
POWER_CODES: dict[PowerState, str] = {"off": "0", "on": "1", "cooling": "2", "warming": "3"}
MUTE_CODES = ("10", "11", "20", "21", "30", "31")
FAULTS: tuple[Fault, ...] = ("disconnect", "stall", "garbage", "slow", "clear")
LINE_LIMIT = 256


class PjlinkSimulator:
    """One projector listening on ``host`` (``port`` 0: any free port, read back from :attr:`port`)."""

    def __init__(
        self,
        password: str | None = None,
        warm_up: float = 1.0,
        cool_down: float = 1.0,
        inputs: tuple[str, ...] = ("11", "31", "32", "51"),
        lamp_hours: int = 1200,
        host: str = "127.0.0.1",
        port: int = 0,
        slow_delay: float = 1.0,
    ) -> None:
        self.password = password
        self.warm_up, self.cool_down = warm_up, cool_down
        self.inputs = inputs
        self.input = inputs[0]
        self.mute = "30"
        self.errors = "000000"
        """ERST: fan, lamp, temperature, cover, filter, other; 0 fine, 1 warning, 2 error."""
        self.lamp_hours = lamp_hours
        self.host, self.port = host, port
        self.slow_delay = slow_delay
        self.fault: Fault = "clear"
        self.received: list[str] = []
        """Every command line it answered (without the digest), for tests."""
        self.auth_failures = 0
        self.connections = 0
        self._power: PowerState = "off"
        self._until = 0.0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # --- control -------------------------------------------------------------------------------------------------

    async def start(self) -> int:
        """Listen; the port it listens on."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=LINE_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._drop_all()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self._server.wait_closed()
            self._server = None

    def inject(self, fault: Fault) -> None:
        if fault not in FAULTS:
            raise ValueError(f"the PJLink simulator plays {', '.join(FAULTS)}; not `{fault}`")
        self.fault = fault
        if fault == "disconnect":
            self._drop_all()

    @property
    def power(self) -> PowerState:
        """Its power state now (warming and cooling end by themselves)."""
        if self._power in ("warming", "cooling") and time.monotonic() >= self._until:
            self._power = "on" if self._power == "warming" else "off"
        return self._power

    def switch(self, on: bool) -> None:
        """Press the projector's own power button: warming or cooling starts."""
        self._power = "warming" if on else "cooling"
        self._until = time.monotonic() + (self.warm_up if on else self.cool_down)

    # --- the protocol --------------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            if self.fault == "disconnect":
                return
            if self.fault == "stall":
                await reader.read()  # silent until the client gives up
                return
            salt = secrets.token_hex(4) if self.password else None
            writer.write(f"PJLINK 1 {salt}\r".encode() if salt else b"PJLINK 0\r")
            await writer.drain()
            await self._converse(reader, writer, salt)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, salt: str | None) -> None:
        authenticated = salt is None
        while True:
            line = (await reader.readuntil(b"\r"))[:-1].decode("ascii", "replace")
            if self.fault in ("disconnect", "stall"):
                return
            expected = _digest(salt, self.password) if salt is not None and self.password else ""
            if not authenticated:
                if line[:32] != expected:
                    self.auth_failures += 1
                    writer.write(b"PJLINK ERRA\r")
                    await writer.drain()
                    return
                authenticated = True
                line = line[32:]
            elif expected and line[:32] == expected:
                line = line[32:]
            if self.fault == "slow":
                await asyncio.sleep(self.slow_delay)
            if self.fault == "garbage":
                writer.write(b"\x07#?%1\xff\xfeNOISE\r")
            else:
                self.received.append(line)
                writer.write(f"{self.answer(line)}\r".encode("ascii"))
            await writer.drain()

    def answer(self, line: str) -> str:
        """The reply to one command line (``%1POWR 1``), without the CR."""
        if len(line) < 7 or not line.startswith("%1") or line[6] != " ":
            return f"{line[:6]}=ERR1" if line.startswith("%1") else "%1ERR1=ERR1"
        command, parameter = line[2:6].upper(), line[7:].strip()
        handler = {
            "POWR": self._powr,
            "INPT": self._inpt,
            "AVMT": self._avmt,
            "ERST": lambda p: self.errors if p == "?" else "ERR2",
            "LAMP": lambda p: f"{self.lamp_hours} {int(self.power == 'on')}" if p == "?" else "ERR2",
            "NAME": lambda p: "Simulated projector",
            "INF1": lambda p: "Exhibit",
            "INF2": lambda p: "PJLink simulator",
            "INFO": lambda p: "",
            "CLSS": lambda p: "1",
        }.get(command)
        return f"%1{command}={handler(parameter) if handler else 'ERR1'}"

    def _powr(self, parameter: str) -> str:
        state = self.power
        if parameter == "?":
            return POWER_CODES[state]
        if parameter not in ("0", "1"):
            return "ERR2"
        if state in ("warming", "cooling"):
            return "ERR3"
        if (parameter == "1") != (state == "on"):
            self.switch(parameter == "1")
        return "OK"

    def _inpt(self, parameter: str) -> str:
        if self.power != "on":
            return "ERR3"
        if parameter == "?":
            return self.input
        if parameter not in self.inputs:
            return "ERR2"
        self.input = parameter
        return "OK"

    def _avmt(self, parameter: str) -> str:
        if self.power != "on":
            return "ERR3"
        if parameter == "?":
            return self.mute
        if parameter not in MUTE_CODES:
            return "ERR2"
        self.mute = parameter
        return "OK"

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()


def _digest(salt: str, password: str) -> str:
    return hashlib.md5((salt + password).encode("utf-8")).hexdigest()
