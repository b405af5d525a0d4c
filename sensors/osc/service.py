"""OSCQuery as services of the running exhibit.

``oscquery``: one server per OSC sensor that asks for it (``oscquery:`` in its settings), started before
the drivers and stopped after them. Simulated runs start none: a simulated OSC sensor opens no UDP port,
so there is nothing to describe.

``oscquery_control``: one server for the operator's control (:class:`ControlQueryService`), on the port
after the OSC control port; it runs whenever OSC control is on, simulated or not.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.errors import UserError
from engine.exhibit import ExhibitBase
from engine.health import ComponentHealth
from engine.registry import ServiceSpec
from sensors.osc.inputs import OscSensorConfig
from sensors.osc.oscquery import OscQueryServer, OscQuerySettings, build_namespace
from sensors.osc.oscquery_control import control_namespace
from sensors.osc.oscquery_listen import ListenHub

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


# --- OSCQuery for control --------------------------------------------------------------------------------------------

OSC_CONTROL_SERVICE = "osc_control"
"""The OSC control service, whose bound port HOST_INFO gives when the exhibit file asks for any free port."""


def control_port(runtime: Runtime) -> int:
    """Where clients send control: the OSC control service's bound port once it runs, else the configured one."""
    port = getattr(runtime.service(OSC_CONTROL_SERVICE), "port", None)
    return port if isinstance(port, int) and port > 0 else runtime.exhibit.control.osc.port


def control_http_port(osc_port: int) -> int:
    """The OSCQuery HTTP port of the control: the one after the configured OSC port (53001 by default), or any
    free one when that is 0 (or taken: :meth:`ControlQueryService.start` logs which one it got)."""
    return osc_port + 1 if 0 < osc_port < 65535 else 0


def allowed_by(networks: list[str]) -> Callable[[str], bool]:
    """Whether a client address is in one of ``networks`` (the control's allow-list)."""
    parsed = [ipaddress.ip_network(network, strict=False) for network in networks]

    def allowed(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.partition("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in parsed)

    return allowed


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ControlQueryService:
    """OSCQuery for the exhibit's control: the namespace of commands, state and inputs with live VALUEs, and
    LISTEN over a WebSocket on the same port. It listens where OSC control does (``control.osc.host``) and
    serves only the networks OSC control allows; it is announced with zeroconf unless that is loopback."""

    name = "oscquery_control"

    def __init__(self, runtime: Runtime, health: ComponentHealth, http_port: int | None = None) -> None:
        self.runtime, self.health, self.http_port = runtime, health, http_port
        self.server: OscQueryServer | None = None
        self.hub = ListenHub(runtime)

    @property
    def port(self) -> int:
        return self.server.port if self.server is not None else 0

    def _server(self, osc_port: int, http_port: int) -> OscQueryServer:
        settings = self.runtime.exhibit.control.osc
        return OscQueryServer(
            f"{self.runtime.exhibit.id} control",
            osc_port,
            lambda: control_namespace(self.runtime),
            settings.host,
            OscQuerySettings.model_validate({"port": http_port, "advertise": not is_loopback(settings.host)}),
            websocket=self.hub.session,
            allow=allowed_by(settings.allow),
            extensions={"VALUE": True, "LISTEN": True, "PATH_CHANGED": True},
        )

    async def start(self) -> None:
        osc_port = control_port(self.runtime)
        configured = self.runtime.exhibit.control.osc.port  # not the bound one: 53001 stays 53001 when QLab has 53000
        wanted = self.http_port if self.http_port is not None else control_http_port(configured)
        self.hub.osc_port = osc_port
        server = self._server(osc_port, wanted)
        try:
            await server.start()
        except UserError:
            if wanted == 0:
                raise
            log.warning(
                "OSCQuery 控制端口 %d 已被占用，改用空闲端口 / TCP port %d for OSCQuery control is taken; "
                "using a free port instead (clients find it with zeroconf, or read it in this log)",
                wanted,
                wanted,
            )
            server = self._server(osc_port, 0)
            await server.start()
        self.server = server
        self.hub.open()
        log.info(
            "OSCQuery 控制与状态 / OSCQuery control and state on http://%s:%d/ (OSC control: UDP port %d)",
            server.http_host,
            server.port,
            osc_port,
        )
        self.health.set("ok")

    async def run(self) -> None:
        await self.hub.run()

    async def close(self, timeout: float) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None
        self.hub.close()
        self.health.stopped()


def _build_control(runtime: Runtime) -> ControlQueryService:
    return ControlQueryService(runtime, runtime.context.health_of("oscquery_control", "service", {}))


CONTROL_SERVICE = ServiceSpec(
    "oscquery_control", order=45, applies=lambda exhibit: exhibit.control.osc.enabled, build=_build_control
)
"""OSCQuery for the control; starts after the OSC control service so that it knows the port that one bound."""
