"""Exhibit computers woken by Wake-on-LAN, and (optionally) checked awake by a TCP probe.

Setting the property ``wake`` to true sends the magic packet (6 bytes 0xFF, then the MAC 16 times)
as a UDP broadcast, three times a few milliseconds apart, since UDP may lose one. ``wake`` is a trigger:
setting it to false sends nothing and lets the next true send again (the ``power`` service does both).

With ``check: {host, port}`` a TCP connection to the computer (its SSH or media server port) says
whether it is up: ``<name>.health.awake``, and ``offline`` with the reason while it does not answer.
Without a check there is nothing to know, and the device is ``ok`` while the network takes the packets.

Its safe state sends nothing: waking a computer is never dangerous, and PANIC must not wake a room.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from engine.curves import Duration
from engine.drivers import Device, DriverContext, Fault, check_fault
from engine.model import DeviceConfig, StoreType, Strict

log = logging.getLogger("devices.wake_on_lan")

REPEATS = 3
GAP = 0.005
"""Seconds between the repeated packets."""
_MAC = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$|^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$")


def magic_packet(mac: str) -> bytes:
    """6 x 0xFF, then the 6 bytes of ``mac`` 16 times (102 bytes)."""
    return b"\xff" * 6 + bytes.fromhex(re.sub(r"[^0-9a-fA-F]", "", mac)) * 16


class WakeCheck(Strict):
    host: str = Field(min_length=1, description="The computer's address.")
    port: int = Field(ge=1, le=65535, description="A TCP port it listens on when up (22 for SSH...).")
    interval: Duration = Field(10.0, ge=0.05, description="How often to look.")
    timeout: Duration = Field(2.0, ge=0.05, description="How long a connection may take.")


class WakeSchedule(Strict):
    wake_before_open: Duration = Field(1200.0, le=6 * 3600, description="Wake it this long before opening.")


class WakeOnLanConfig(DeviceConfig):
    """A computer woken over the network (its BIOS and network card must have Wake-on-LAN on)."""

    kind: Literal["wake_on_lan"]
    mac: str = Field(description="Its MAC address, e.g. `3c:52:82:1a:2b:3c`.")
    broadcast: str = Field("255.255.255.255", description="Where the packet goes: the subnet's broadcast address.")
    port: int = Field(9, ge=1, le=65535, description="UDP port (9, sometimes 7).")
    check: WakeCheck | None = Field(None, description="A TCP probe that says whether it is up.")
    schedule: WakeSchedule | None = Field(None, description="Wake it before the opening hours.")

    @field_validator("mac")
    @classmethod
    def _mac(cls, value: str) -> str:
        text = value.strip().lower()
        if not _MAC.match(text):
            raise ValueError(
                f"`{value}` is not a MAC address: write six pairs of hex digits, e.g. `3c:52:82:1a:2b:3c` "
                "(or with `-`, or `3c52.821a.2b3c`)"
            )
        digits = re.sub(r"[^0-9a-f]", "", text)
        return ":".join(digits[i : i + 2] for i in range(0, 12, 2))

    def settable_properties(self) -> list[str]:
        return ["wake"]

    def health_figures(self) -> dict[str, StoreType]:
        return {"awake": "bool", "last_wake": "float", "sent": "int"}

    def health_meanings(self) -> dict[str, str]:
        return {
            "awake": "it answers its check (true without a check once woken)",
            "last_wake": "when the last magic packet went (UNIX seconds)",
            "sent": "magic packets sent",
        }


class WakeOnLanDevice(Device):
    config: WakeOnLanConfig

    def __init__(self, name: str, config: WakeOnLanConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.packet = magic_packet(config.mac)
        self.sent = 0
        self.failing: str | None = None
        self._socket: socket.socket | None = None
        self._repeats: set[asyncio.Task[None]] = set()

    def set(self, values: Mapping[str, Any]) -> None:
        if not values.get("wake"):
            return
        self._send()
        self.health.figure("last_wake", self.context.clock.wall().timestamp())
        try:
            task = asyncio.get_running_loop().create_task(self._repeat())
        except RuntimeError:  # no loop (a test calling set() directly): send the rest now
            for _ in range(REPEATS - 1):
                self._send()
            return
        self._repeats.add(task)
        task.add_done_callback(self._repeats.discard)

    async def _repeat(self) -> None:
        for _ in range(REPEATS - 1):
            await self.context.clock.sleep(GAP)
            self._send()

    def _send(self) -> None:
        try:
            self.transmit(self.packet)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            if self.failing != reason:
                log.warning("wake-on-LAN packet for %s not sent: %s", self.name, reason)
            self.failing = reason
            self.health.set("offline", f"唤醒包未发出 / the wake-on-LAN packet was not sent ({reason})")
            return
        self.failing = None
        self.sent += 1
        self.health.figure("sent", self.sent)
        if self.config.check is None:
            self.health.set("ok")

    def transmit(self, packet: bytes) -> None:
        if self._socket is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            self._socket = sock
        self._socket.sendto(packet, (self.config.broadcast, self.config.port))

    async def run(self) -> None:
        check = self.config.check
        if check is None:
            self.health.set("ok")
            await asyncio.Event().wait()
            return
        while True:
            awake = await self.probe(check)
            self.health.figure("awake", awake)
            if awake:
                self.health.set("ok")
            else:
                self.health.set("offline", f"计算机未唤醒 / not awake: nothing answers on {check.host}:{check.port}")
            await self.context.clock.sleep(check.interval)

    async def probe(self, check: WakeCheck) -> bool:
        try:
            async with asyncio.timeout(check.timeout):
                _, writer = await asyncio.open_connection(check.host, check.port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True

    async def go_safe(self, timeout: float) -> bool:
        for task in list(self._repeats):
            task.cancel()
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        return True  # its safe state sends nothing


class SimulatedWakeOnLan(WakeOnLanDevice):
    """Keeps the packets instead of sending them; a simulated computer is awake once woken.
    ``inject("disconnect")`` makes sending fail as an unplugged network would; ``clear`` heals it."""

    def __init__(self, name: str, config: WakeOnLanConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.packets: list[bytes] = []
        self.fault: Fault = "clear"

    def inject(self, fault: Fault) -> None:
        check_fault(self, fault, ("disconnect", "clear"))
        self.fault = fault

    def transmit(self, packet: bytes) -> None:
        if self.fault == "disconnect":
            raise OSError(101, "simulated disconnect")
        self.packets.append(packet)

    async def probe(self, check: WakeCheck) -> bool:
        return bool(self.packets) and self.fault != "disconnect"
