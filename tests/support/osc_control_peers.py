"""Peers of the OSC control tests: a small exhibit with a cue list and MQTT gear on a real Mosquitto,
and OSC clients as a control surface would be (a UDP socket bound to its own port, a TCP connection
speaking SLIP), plus liblo's `oscsend` and `oscdump`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

from pythonosc import slip
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from devices.mqtt.link import MqttLink, Topics
from engine.runtime import Runtime, RuntimeOptions, assemble
from engine.validate import validate_text
from launcher import build_registry
from tests.support.mqtt_gear import MqttGear

DESK = """\
format_version: 1
id: osc-desk
title: {en: OSC desk, zh: OSC 控制台}
devices:
  lamp:
    kind: mqtt
    properties:
      level: {type: float, range: [0, 1], safe: 0}
  fan:
    kind: mqtt
    properties:
      on: {type: bool, safe: false}
variables:
  visits: 0
states:
  mode:
    initial: attract
    states:
      attract: {}
      engaged: {}
cues:
  main:
    guard: 0s
    cues:
      - {id: "1", name: Dusk, actions: [{set: lamp.level, value: 0.5}, {set: fan.on, value: true}]}
      - {id: "2", name: Night, actions: [{set: lamp.level, value: 0.2}]}
      - {id: "3", name: House lights, actions: [{set: lamp.level, value: 1}]}
safety: {panic_time: 0.2s}
"""
SAFE: dict[str, dict[str, Any]] = {"lamp": {"level": 0}, "fan": {"on": False}}
WAIT = 10.0
"""Seconds before a test gives up waiting for a peer (a failure guard, never a timing assertion)."""


def desk(control: str = "{port: 0}", extra: str = "") -> str:
    """The desk exhibit with this ``control: osc:`` section (and more YAML after it)."""
    return f"{DESK}control:\n  osc: {control}\n{extra}"


@contextlib.asynccontextmanager
async def running_desk(
    text: str, broker_port: int, tmp_path: Path, *, simulate: bool = False
) -> AsyncIterator[tuple[Runtime, dict[str, MqttGear]]]:
    """The gear joins the broker first, as in a venue; then the exhibit starts."""
    registry = build_registry()
    exhibit = validate_text(text, str(tmp_path / "exhibit.yaml"), registry)
    topics = Topics(exhibit.mqtt.prefix, exhibit.id)
    async with contextlib.AsyncExitStack() as stack:
        gears = {
            name: await stack.enter_async_context(
                MqttGear(broker_port, f"gear/{name}", command_topic=topics.device(name, "set"), safe=safe)
            )
            for name, safe in SAFE.items()
        }
        options = RuntimeOptions(
            base_dir=tmp_path, broker=f"mqtt://127.0.0.1:{broker_port}", console=False, simulate=simulate
        )
        runtime = assemble(exhibit, registry, options)
        await runtime.start()
        try:
            await asyncio.wait_for(runtime.resources.get(MqttLink).connected.wait(), WAIT)
            yield runtime, gears
        finally:
            await runtime.stop()


def osc(address: str, *args: Any) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


class OscHeard:
    """What a client received: (address, first argument as JSON when it is JSON)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, Any]] = []
        self.arrived = asyncio.Event()

    def add(self, packet: bytes) -> None:
        for timed in OscPacket(packet).messages:
            params = timed.message.params
            body: Any = params[0] if params else None
            with contextlib.suppress(TypeError, ValueError):
                body = json.loads(body)
            self.messages.append((timed.message.address, body))
        self.arrived.set()

    async def wait(self, address: str, where: Callable[[Any], bool] = lambda body: True, after: int = 0) -> Any:
        """The first message to ``address`` (from index ``after`` on) whose body satisfies ``where``."""
        deadline = time.monotonic() + WAIT
        while True:
            for got, body in self.messages[after:]:
                if got == address and where(body):
                    return body
            if time.monotonic() > deadline:
                raise AssertionError(f"no {address} came; got {self.messages}")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 0.2)


class UdpSurface(asyncio.DatagramProtocol):
    """A control surface on UDP: sends from its own port and hears replies there, as Companion does."""

    def __init__(self) -> None:
        self.heard = OscHeard()
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, port: int) -> UdpSurface:
        loop = asyncio.get_running_loop()
        _, surface = await loop.create_datagram_endpoint(cls, remote_addr=("127.0.0.1", port))
        return surface

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.heard.add(data)

    def send(self, address: str, *args: Any) -> None:
        self.send_raw(osc(address, *args))

    def send_raw(self, packet: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(packet)

    async def ask(self, address: str, *args: Any) -> Any:
        """Send and wait for the reply's JSON."""
        after = len(self.heard.messages)
        self.send(address, *args)
        return await self.heard.wait(f"/reply{address}", after=after)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class TcpSurface:
    """A control surface on TCP speaking SLIP (double END, as QLab and Companion frame)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.heard = OscHeard()
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, port: int) -> TcpSurface:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def _read(self) -> None:
        buffer = b""
        with contextlib.suppress(ConnectionError):
            await self._frames(buffer)

    async def _frames(self, buffer: bytes) -> None:
        while data := await self.reader.read(65536):
            buffer += data
            *frames, buffer = buffer.split(slip.END)
            for piece in frames:
                if piece:
                    self.heard.add(slip.decode(piece))

    def send(self, address: str, *args: Any) -> None:
        self.send_raw(slip.encode(osc(address, *args)))

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def ask(self, address: str, *args: Any) -> Any:
        after = len(self.heard.messages)
        self.send(address, *args)
        return await self.heard.wait(f"/reply{address}", after=after)

    async def close(self) -> None:
        self.task.cancel()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def eventually(predicate: Callable[[], bool]) -> None:
    """Wait until ``predicate`` holds (what the server does on its own time: a close, a count)."""
    deadline = time.monotonic() + WAIT
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError("it never happened")
        await asyncio.sleep(0.01)


async def oscsend(target: str, address: str, *typed: str) -> None:
    """liblo's `oscsend`; ``target`` is `HOST PORT` or a liblo URL (osc.tcp://...)."""
    await asyncio.to_thread(
        subprocess.run, ["oscsend", *target.split(), address, *typed], check=True, timeout=WAIT, capture_output=True
    )


class OscDump:
    """liblo's `oscdump` listening on a UDP port, its lines collected as they come."""

    LINE = re.compile(r'(?P<address>/\S+) (?P<types>\S*)(?: "(?P<text>.*)")?$')

    def __init__(self, port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            ["oscdump", "-L", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.lines.append(line.rstrip("\n"))

    async def listening(self) -> None:
        """Wait until oscdump hears on its port (it says nothing when it starts): what is sent before that is lost."""
        from pythonosc.udp_client import SimpleUDPClient

        probe = SimpleUDPClient("127.0.0.1", self.port)
        deadline = time.monotonic() + WAIT
        while not any("/oscdump/ready" in line for line in self.lines):
            if time.monotonic() > deadline:
                raise AssertionError(f"oscdump never heard on port {self.port}; got {self.lines}")
            probe.send_message("/oscdump/ready", "{}")
            await asyncio.sleep(0.05)

    async def wait(self, address: str, where: Callable[[Any], bool] = lambda body: True) -> Any:
        """The JSON of the first line to ``address`` whose JSON satisfies ``where``."""
        deadline = time.monotonic() + WAIT
        while True:
            for line in list(self.lines):
                found = self.LINE.search(line)
                if found and found["address"] == address and found["text"] is not None:
                    body = json.loads(found["text"])
                    if where(body):
                        return body
            if time.monotonic() > deadline:
                raise AssertionError(f"oscdump heard no {address}; got {self.lines}")
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(5)
        self._reader.join(2)
