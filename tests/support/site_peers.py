"""Peers for the show network tests: a TCP proxy whose link can be cut (a network partition, the process on either
side alive), and an MQTT 5 watcher of the device topics that checks no two nodes' commands ever interleave."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Self

import aiomqtt
from aiomqtt import ProtocolVersion


class Partition:
    """Forwards ``127.0.0.1:<port>`` to a broker until :meth:`cut`; then every connection through it is dropped and
    new ones are refused (closed at once) until :meth:`heal`."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.cut_off = False
        self._pairs: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def cut(self) -> None:
        self.cut_off = True
        for writer in list(self._pairs):
            writer.transport.abort()  # no FIN, no DISCONNECT: as when a cable is pulled
        self._pairs.clear()

    def heal(self) -> None:
        self.cut_off = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._pairs |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)
        self._pairs -= {writer, up_writer}

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.cut_off:
                    return
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()


@dataclass(frozen=True)
class Command:
    at: float
    topic: str
    node: str
    epoch: int
    payload: str


class Watcher(ABC):
    """An outside MQTT client reading ``filters`` in a task of its own until the ``async with`` ends."""

    filters: tuple[str, ...] = ()
    protocol: ProtocolVersion | None = None

    def __init__(self, port: int) -> None:
        self.port = port

    async def __aenter__(self) -> Self:
        self.client = aiomqtt.Client("127.0.0.1", self.port, identifier=f"watch-{id(self)}", protocol=self.protocol)
        await self.client.__aenter__()
        for topic_filter in self.filters:
            await self.client.subscribe(topic_filter, qos=1)
        self.task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.client.__aexit__(None, None, None)

    @abstractmethod
    async def _read(self) -> None:
        """Read ``self.client.messages`` for as long as the watcher lives."""


class DeviceWatch(Watcher):
    """An MQTT 5 client on the exhibit's device topics, recording which node sent each message at which epoch (the
    user properties every node of a show network sends)."""

    protocol = ProtocolVersion.V5

    def __init__(self, port: int, exhibit: str, prefix: str = "exhibit") -> None:
        super().__init__(port)
        self.filters = (f"{prefix}/{exhibit}/devices/#",)
        self.heard: list[Command] = []
        self.unnamed: list[str] = []
        """Messages that named no node or epoch."""

    async def _read(self) -> None:
        async for message in self.client.messages:
            if message.retain:
                continue  # kept from before we subscribed: not a command sent now
            properties = dict(getattr(message.properties, "UserProperty", None) or [])
            payload = bytes(message.payload).decode()
            if "node" not in properties or "epoch" not in properties:
                self.unnamed.append(f"{message.topic.value} {payload}")
                continue
            self.heard.append(
                Command(time.monotonic(), message.topic.value, properties["node"], int(properties["epoch"]), payload)
            )

    def nodes_after(self, moment: float) -> set[str]:
        return {c.node for c in self.heard if c.at > moment}

    def first_from(self, node: str, after: float = 0.0) -> Command | None:
        return next((c for c in self.heard if c.node == node and c.at > after), None)

    def interleaving(self) -> list[str]:
        """Every place where a message came from another node than the one before it at the same or an older epoch:
        two nodes' commands interleaved. Empty when the devices only ever heard one node at a time."""
        found = []
        current: tuple[int, str] | None = None
        for command in self.heard:
            if current is not None and (command.epoch, command.node) != current:
                newer = command.epoch > current[0]
                if not newer:
                    found.append(f"{command.node}@{command.epoch} after {current[1]}@{current[0]}: {command.topic}")
                    continue
            current = (command.epoch, command.node)
        return found

    async def wait_for(self, predicate: Any, timeout: float = 20.0) -> None:
        for _ in range(int(timeout / 0.02)):
            if predicate():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"not seen within {timeout:g} s; heard {len(self.heard)} commands")


class NodeInfo(Watcher):
    """The retained announcements of every node of a site."""

    def __init__(self, port: int, site: str = "exhibit/site") -> None:
        super().__init__(port)
        self.filters = (f"{site}/nodes/+/info", f"{site}/nodes/+/status")
        self.info: dict[str, dict[str, Any]] = {}
        self.status: dict[str, str] = {}

    async def _read(self) -> None:
        async for message in self.client.messages:
            topic = message.topic.value
            node = topic.split("/")[-2]
            payload = bytes(message.payload).decode()
            if topic.endswith("/status"):
                self.status[node] = payload
            elif payload:
                self.info[node] = json.loads(payload)

    async def wait_for(self, node: str, timeout: float = 20.0, **expected: Any) -> dict[str, Any]:
        for _ in range(int(timeout / 0.05)):
            info = self.info.get(node, {})
            if all(info.get(key) == value for key, value in expected.items()) and info:
                return info
            await asyncio.sleep(0.05)
        raise AssertionError(f"{node} never announced {expected}; last: {self.info.get(node)}")
