"""OSCQuery as a service of the running exhibit: one server per OSC sensor that asks for it
(``oscquery:`` in its settings), started before the drivers and stopped after them.

Simulated runs start none: a simulated OSC sensor opens no UDP port, so there is nothing to describe.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from engine.exhibit import ExhibitBase
from engine.health import ComponentHealth
from engine.registry import ServiceSpec
from sensors.osc.inputs import OscSensorConfig
from sensors.osc.oscquery import OscQueryServer, build_namespace

if TYPE_CHECKING:
    from engine.runtime import Runtime

log = logging.getLogger("sensors.osc.service")


def _published(exhibit: ExhibitBase) -> dict[str, OscSensorConfig]:
    return {
        name: config
        for name, config in exhibit.sensors.items()
        if isinstance(config, OscSensorConfig) and config.oscquery is not None
    }


class OscQueryService:
    name = "oscquery"

    def __init__(self, exhibit_id: str, sensors: dict[str, OscSensorConfig], health: ComponentHealth) -> None:
        self.exhibit_id, self.sensors, self.health = exhibit_id, sensors, health
        self.servers: dict[str, OscQueryServer] = {}

    async def start(self) -> None:
        for name, config in self.sensors.items():
            assert config.oscquery is not None
            namespace = build_namespace(config.signals, f"{self.exhibit_id}: OSC inputs of {name}")
            server = OscQueryServer(self.exhibit_id, config.port, namespace, config.host, config.oscquery)
            try:
                await server.start()
            except BaseException:
                await self.close(0.0)
                raise
            self.servers[name] = server
            log.info(
                "OSC sensor %s publishes its addresses over OSCQuery on http://%s:%d", name, config.host, server.port
            )
        self.health.set("ok")

    async def run(self) -> None:
        await asyncio.Event().wait()  # the servers answer on their own

    async def close(self, timeout: float) -> None:
        for server in self.servers.values():
            await server.close()
        self.servers.clear()
        self.health.stopped()


def _build(runtime: Runtime) -> OscQueryService | None:
    if runtime.options.simulate:
        return None
    health = runtime.context.health_of("oscquery", "service", {})
    return OscQueryService(runtime.exhibit.id, _published(runtime.exhibit), health)


SERVICE = ServiceSpec("oscquery", order=30, applies=lambda exhibit: bool(_published(exhibit)), build=_build)
