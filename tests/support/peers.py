"""Peers a test makes appear while an exhibit runs: an outside MQTT client that keeps every retained and
live message of a topic tree, and a UDP listener (a DMX node, an OSC peer) that keeps the datagrams it
receives. Both are for tests that start the controller first and its peers later."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import aiomqtt


async def until(what: str, done: Callable[[], bool], timeout: float, seen: Callable[[], Any] = lambda: None) -> float:
    """Poll ``done()`` until true; the seconds it took. Fails with ``what`` and ``seen()`` after ``timeout``."""
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout:g} s; seen: {seen()}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


class TopicWatch:
    """An outside MQTT client keeping the latest payload of every topic under ``topic_filter``."""

    def __init__(self, port: int, topic_filter: str, identifier: str) -> None:
        self.port, self.topic_filter, self.identifier = port, topic_filter, identifier
        self.latest: dict[str, bytes] = {}
        self.history: list[tuple[str, bytes]] = []
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TopicWatch:
        self._client = aiomqtt.Client("127.0.0.1", self.port, identifier=self.identifier)
        await self._client.__aenter__()
        await self._client.subscribe(self.topic_filter, qos=1)
        self._reader = asyncio.create_task(self._read(self._client))
        return self

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = bytes(message.payload) if isinstance(message.payload, bytes | bytearray) else b""
            self.latest[message.topic.value] = payload
            self.history.append((message.topic.value, payload))

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._client is not None:
            await self._client.__aexit__(kind, error, trace)

    def text(self, topic: str) -> str | None:
        payload = self.latest.get(topic)
        return None if payload is None else payload.decode()

    def json(self, topic: str) -> dict[str, Any]:
        payload = self.latest.get(topic)
        return json.loads(payload) if payload else {}


class UdpPeer(asyncio.DatagramProtocol):
    """A UDP listener on loopback (an Art-Net node, an OSC peer) that keeps what it receives."""

    def __init__(self) -> None:
        self.datagrams: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.datagrams.append(data)

    @classmethod
    async def listen(cls, port: int) -> UdpPeer:
        loop = asyncio.get_running_loop()
        transport, peer = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", port))
        peer.transport = transport
        return peer

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
