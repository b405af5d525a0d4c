"""The MQTT services of a running exhibit, in start order:

1. ``broker``: the embedded broker (amqtt on loopback), only when the exhibit's broker is
   ``embedded`` and the command line names no other;
2. ``mqtt``: the exhibit's one MQTT link, shared by MQTT devices and MQTT inputs, which also keeps the
   exhibit's health on its retained health topics.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from devices.mqtt.broker import EmbeddedBroker
from devices.mqtt.health_topics import HealthTopics
from devices.mqtt.link import MqttLink, Topics
from devices.mqtt.security import SecretMissing
from engine.errors import UserError
from engine.model import StoreType, parse_broker_url
from engine.registry import ServiceSpec

if TYPE_CHECKING:
    from engine.runtime import Runtime

LINK_FIGURES: dict[str, StoreType] = {"connections": "int", "dropped": "int"}
LINK_MEANINGS = {
    "connections": "connections the broker accepted since start",
    "dropped": "discrete messages dropped from the full outbox while the broker was away",
}


def broker_url(runtime: Runtime) -> str:
    """The broker this run uses: the command line's, else the exhibit file's."""
    return runtime.options.broker or runtime.exhibit.mqtt.broker


class LinkService:
    """The link, and its health topics, as one service."""

    name = "mqtt"

    def __init__(self, link: MqttLink, health_topics: HealthTopics) -> None:
        self.link, self.health_topics = link, health_topics

    async def start(self) -> None:
        await self.link.start()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            publishing = tasks.create_task(self.health_topics.run())
            await self.link.run()  # returns after close()
            publishing.cancel()

    async def close(self, timeout: float) -> None:
        await self.link.close(timeout)


def _build_broker(runtime: Runtime) -> EmbeddedBroker | None:
    if broker_url(runtime) != "embedded":
        return None
    health = runtime.context.health_of("broker", "service", {})
    return EmbeddedBroker(port=runtime.options.embedded_port, health=health)


def client_id(runtime: Runtime) -> str:
    """The link's stable client id: ``exhibit-<id>``, with the node's name where a primary and a backup run the same
    exhibit (two clients with one id would throw each other off the broker)."""
    base = runtime.exhibit.mqtt.client_id or f"exhibit-{runtime.exhibit.id}"
    return f"{base}-{runtime.site.node}" if runtime.authority is not None else base


def _build_link(runtime: Runtime) -> LinkService:
    settings = runtime.exhibit.mqtt
    url = broker_url(runtime)
    if url == "embedded":
        broker = runtime.context.resources.get(EmbeddedBroker)
        host, port = broker.host, broker.port
    else:
        try:
            host, port = parse_broker_url(url)
        except ValueError as exc:
            raise UserError(f"The broker address is not valid: {exc}.") from None
    topics = Topics(settings.prefix, runtime.exhibit.id)
    health = runtime.context.health_of("mqtt", "service", LINK_FIGURES)
    try:
        link = MqttLink(
            host,
            port,
            client_id=client_id(runtime),
            topics=topics,
            keepalive=settings.keepalive,
            security=settings.security,
            security_base=runtime.context.base_dir,
            health=health,
        )
    except SecretMissing as exc:
        raise UserError(f"The MQTT settings cannot be used: {exc}") from None
    link.presence = lambda: b"safe-mode" if runtime.safe_mode else b"online"
    runtime.mode_listeners.append(link.say_presence)
    runtime.context.resources.put(link)
    runtime.context.resources.put(topics)
    return LinkService(link, HealthTopics(runtime.health, link, topics, runtime.clock))


BROKER = ServiceSpec("broker", order=10, applies=lambda exhibit: True, build=_build_broker)
LINK = ServiceSpec(
    "mqtt", order=20, applies=lambda exhibit: True, build=_build_link, figures=LINK_FIGURES, meanings=LINK_MEANINGS
)
