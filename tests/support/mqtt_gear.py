"""Outside MQTT clients for the tests: a simulated fixture, and a listener that timestamps.

:class:`MqttGear` behaves like real gear behind Zigbee2MQTT: its own connection with
a stable client id and a persistent session (so the broker queues QoS 1 commands for
it while either side is away), a retained ``availability`` (``online``, ``offline``
as its Last Will), JSON commands on its command topic applied to its state, and its
state published, retained, on ``.../status`` after every command. A command carrying
``expiry`` (seconds) arms a watchdog, as firmware with a fall-back timer does: no command
for that long and the gear goes to its ``safe`` state by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import aiomqtt

RECONNECT_DELAY = 0.05


class MqttGear:
    """A fixture on the network, as a separate MQTT client."""

    def __init__(
        self,
        port: int,
        root: str,
        *,
        command_topic: str | None = None,
        client_id: str | None = None,
        safe: dict[str, Any] | None = None,
    ) -> None:
        self.port = port
        self.root = root
        self.command_topic = command_topic or f"{root}/set"
        self.status_topic = f"{root}/status"
        self.availability_topic = f"{root}/availability"
        self.client_id = client_id or f"gear-{root.replace('/', '-')}"
        self.state: dict[str, Any] = {}
        self.commands: list[dict[str, Any]] = []
        """Every command received, duplicates included (QoS 1 is at-least-once)."""
        self.connections = 0
        self.safe = safe or {}
        """Where the gear falls back to by itself when a command's ``expiry`` runs out."""
        self.expired = 0
        self._expiry: asyncio.TimerHandle | None = None
        self.connected = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MqttGear:
        self._task = asyncio.create_task(self.run())
        await asyncio.wait_for(self.connected.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        """Stay connected like firmware does: retry every few tens of milliseconds."""
        while True:
            try:
                await self._session()
            except aiomqtt.MqttError:
                self.connected.clear()
                await asyncio.sleep(RECONNECT_DELAY)

    async def _session(self) -> None:
        will = aiomqtt.Will(self.availability_topic, b"offline", qos=1, retain=True)
        async with aiomqtt.Client(
            "127.0.0.1", self.port, identifier=self.client_id, clean_session=False, keepalive=5, will=will
        ) as client:
            await client.publish(self.availability_topic, b"online", qos=1, retain=True)
            await client.subscribe(self.command_topic, qos=1)
            self.connections += 1
            self.connected.set()
            if self.state:
                self._changed.set()  # re-announce the state, like gear does after a reconnect
            publisher = asyncio.create_task(self._publish_status(client))
            try:
                async for message in client.messages:
                    self._apply(message)
            finally:
                publisher.cancel()

    def _apply(self, message: aiomqtt.Message) -> None:
        # Applied on arrival, never behind a publish: the broker already has our acknowledgement.
        command = json.loads(bytes(message.payload))
        self.commands.append(command)
        values = dict(command)
        expiry = values.pop("expiry", None)
        self.state.update(values)
        self._changed.set()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if expiry is not None:  # firmware with a watchdog: no word for `expiry` seconds, go safe
            self._expiry = asyncio.get_running_loop().call_later(float(expiry), self._fall_back)

    def _fall_back(self) -> None:
        self._expiry = None
        self.expired += 1
        self.state.update(self.safe)
        self._changed.set()

    async def _publish_status(self, client: aiomqtt.Client) -> None:
        """The latest state, retained, off the command path (a burst collapses into one)."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await client.publish(self.status_topic, json.dumps(self.state), qos=1, retain=True)
            except aiomqtt.MqttError:
                return  # the session is ending; the next one re-announces

    def values(self, key: str) -> list[Any]:
        """The values of ``key`` in the commands received, in arrival order."""
        return [c[key] for c in self.commands if key in c]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"gear {self.root} never got there; state {self.state}, {self.commands}")
            await asyncio.sleep(0.02)


@dataclass
class Heard:
    topic: str
    payload: str
    retained: bool
    at: float
    """``time.monotonic()`` when it arrived."""


class Listener:
    """An outside client recording what it hears, with arrival times."""

    def __init__(self, port: int, *filters: str) -> None:
        self.port, self.filters = port, filters
        self.heard: list[Heard] = []

    async def __aenter__(self) -> Self:
        self.client = aiomqtt.Client("127.0.0.1", self.port, identifier=f"listener-{id(self)}")
        await self.client.__aenter__()
        for topic_filter in self.filters:
            await self.client.subscribe(topic_filter, qos=1)
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for message in self.client.messages:
            payload = bytes(message.payload).decode()
            self.heard.append(Heard(message.topic.value, payload, message.retain, time.monotonic()))

    def payloads(self, topic: str) -> list[str]:
        return [h.payload for h in self.heard if h.topic == topic]

    async def wait_for(self, topic: str, payload: str | None = None, timeout: float = 10.0) -> Heard:
        deadline = time.monotonic() + timeout
        while True:
            for heard in self.heard:
                if heard.topic == topic and (payload is None or heard.payload == payload):
                    return heard
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic} {payload} not heard; got {self.heard}")
            await asyncio.sleep(0.01)

    async def __aexit__(self, *exc: object) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.client.__aexit__(None, None, None)
