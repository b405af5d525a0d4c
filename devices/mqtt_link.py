"""The one MQTT connection of an exhibit process, over aiomqtt (paho-mqtt 2).

- retained ``<prefix>/<exhibit>/status``: ``online`` once connected, ``offline``
  on a clean stop and, through the Last Will, when the process dies;
- reconnects with capped, jittered back-off; an absent broker is said once;
- delivers an incoming message only to the handlers whose filter matches its
  topic. Brokers such as amqtt 0.12.1 send retained messages for topics a
  client never subscribed to; those are counted and dropped here.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiomqtt
from paho.mqtt.client import topic_matches_sub

from engine.clock import Clock, MonotonicClock
from engine.supervisor import Backoff

log = logging.getLogger("devices.mqtt")

MessageHandler = Callable[[aiomqtt.Message], None]
ConnectHook = Callable[[], Awaitable[None]]


class NotConnected(Exception):
    """The broker is not reachable right now; the caller keeps its data for later."""


@dataclass(frozen=True)
class Topics:
    """The exhibit's topic scheme: ``<prefix>/<exhibit>/...``."""

    prefix: str
    exhibit: str

    @property
    def status(self) -> str:
        return f"{self.prefix}/{self.exhibit}/status"

    def device(self, device: str, leaf: str) -> str:
        return f"{self.prefix}/{self.exhibit}/devices/{device}/{leaf}"


class MqttLink:
    name = "mqtt"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        topics: Topics,
        keepalive: int = 10,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.client_id = client_id
        self.topics = topics
        self.keepalive = keepalive
        self.backoff = backoff or Backoff(initial=0.25, cap=5.0)
        self.clock = clock or MonotonicClock()
        self.connected = asyncio.Event()
        self.unsolicited = 0
        """Messages the broker sent on topics we did not subscribe to (dropped)."""
        self.connections = 0
        self._client: aiomqtt.Client | None = None
        self._subscriptions: dict[str, list[MessageHandler]] = {}
        self._connect_hooks: list[ConnectHook] = []
        self._stopping = asyncio.Event()
        self._rng = random.Random()

    @property
    def address(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def subscribe(self, topic_filter: str, handler: MessageHandler) -> None:
        """Call ``handler`` for messages matching ``topic_filter`` (active from the next connect)."""
        self._subscriptions.setdefault(topic_filter, []).append(handler)

    def on_connect(self, hook: ConnectHook) -> None:
        """Run ``hook`` after every (re)connection, e.g. to re-publish retained state."""
        self._connect_hooks.append(hook)

    async def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False, timeout: float = 5.0
    ) -> None:
        """Publish and, for QoS 1, wait for the broker's acknowledgement."""
        client = self._client
        if client is None or not self.connected.is_set():
            raise NotConnected(f"not connected to {self.address}")
        try:
            await client.publish(topic, payload, qos=qos, retain=retain, timeout=timeout)
        except aiomqtt.MqttError as exc:
            raise NotConnected(str(exc)) from exc

    async def run(self) -> None:
        attempt = 0
        said_waiting = False
        while not self._stopping.is_set():
            client = aiomqtt.Client(
                self.host,
                self.port,
                identifier=self.client_id,
                keepalive=self.keepalive,
                timeout=5.0,
                will=aiomqtt.Will(self.topics.status, b"offline", qos=1, retain=True),
            )
            try:
                async with client:
                    await self._connected(client)
                    attempt, said_waiting = 0, False
                    await self._serve(client)
                    return  # a clean stop: leaving the context sends DISCONNECT, so no Last Will
            except aiomqtt.MqttError as exc:
                if self.connected.is_set():
                    log.warning("lost the MQTT broker at %s (%s); reconnecting", self.address, exc)
                elif not said_waiting:
                    log.warning(
                        "waiting for the MQTT broker at %s (%s); the exhibit runs and will connect when it appears",
                        self.address,
                        exc,
                    )
                    said_waiting = True
            finally:
                self.connected.clear()
                self._client = None
            await self.clock.sleep(self.backoff.delay(attempt, self._rng))
            attempt += 1

    async def _connected(self, client: aiomqtt.Client) -> None:
        self._client = client
        await client.publish(self.topics.status, b"online", qos=1, retain=True)
        for topic_filter in self._subscriptions:
            await client.subscribe(topic_filter, qos=1)
        self.connections += 1
        self.connected.set()
        log.info(
            "%s the MQTT broker at %s as %s",
            "connected to" if self.connections == 1 else "reconnected to",
            self.address,
            self.client_id,
        )
        for hook in self._connect_hooks:
            await hook()

    async def _serve(self, client: aiomqtt.Client) -> None:
        reader = asyncio.create_task(self._read(client))
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({reader, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            stopping.cancel()
        if reader.done() and not reader.cancelled() and reader.exception():
            raise reader.exception()  # type: ignore[misc]

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self.dispatch(message)
        raise aiomqtt.MqttError("the broker closed the connection")

    def dispatch(self, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        handlers = [h for f, hs in self._subscriptions.items() if topic_matches_sub(f, topic) for h in hs]
        if not handlers:
            self.unsolicited += 1
            if self.unsolicited == 1:
                log.info("ignoring a message on %s: this client never subscribed to it", topic)
            return
        for handler in handlers:
            try:
                handler(message)
            except Exception:
                log.exception("handler for %s failed", topic)

    async def close(self, timeout: float) -> None:
        """Publish ``offline`` (retained) and disconnect cleanly."""
        if self.connected.is_set():
            try:
                await self.publish(self.topics.status, b"offline", retain=True, timeout=timeout)
                log.info("published offline on %s", self.topics.status)
            except NotConnected as exc:
                log.warning("could not publish offline (%s); the Last Will says it instead", exc)
        self._stopping.set()
