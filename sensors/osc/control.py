"""QLab-style OSC control, as a service of the running exhibit: GO, PANIC and the rest from a Companion
page, a TouchOSC layout, Open Stage Control or a QLab network cue, over UDP and TCP on one port
(``control: osc:`` in the exhibit file; 53000 by default, QLab's).

Each message becomes one command of the controller (the addresses: :mod:`sensors.osc.control_routes`)
and is answered as QLab answers: ``/reply/<address>`` with one JSON string,
``{"workspace_id", "address", "status": "ok"|"error", "data"...}``; over UDP to the port it came
from (or the one ``/udpReplyPort`` names), over TCP on the connection, in the framing the client used
(SLIP, or a length before each packet). A client that sends ``/updates 1`` gets ``/update/<topic>``
with the topic's JSON, the same payload as the console's WebSocket and the MQTT state topics; a UDP
client must say ``/thump`` (or anything) at least every 61 s to keep them, as with QLab.

Bad input is counted and answered, never raised: a malformed packet is dropped, a packet from outside
``allow`` is ignored without a word, a command before ``/connect <passcode>`` (when one is set) gets
an error reply. Simulated runs serve OSC control too: operators rehearse with their own surfaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pythonosc.osc_packet import OscPacket

from engine.control.commands import Actor
from engine.control.settings import OscControlSettings
from engine.errors import UserError
from engine.health import ComponentHealth
from engine.model import StoreType
from engine.registry import ServiceSpec
from sensors.osc.control_peer import (
    OscPeer,
    Passcodes,
    denied,
    error,
    message,
    nothing,
    qlab_cue_lists,
    qlab_workspace,
    source_ip,
    version,
    write_framed,
)
from sensors.osc.control_routes import OscRoute, RouteError, route
from sensors.osc.framing import FrameSplitter

if TYPE_CHECKING:
    from engine.control.hub import Subscription
    from engine.runtime import Runtime

log = logging.getLogger("sensors.osc.control")

DEFAULT_PORT = 53000
UPDATE_TOPICS = ("show", "cuelist/", "safety", "health/", "state/")
THUMP_TIMEOUT = 61.0
"""A UDP client's updates stop this long after the last message from it (QLab's rule)."""
MAX_UPDATE_CLIENTS = 32
MAX_CONNECTIONS = 64
MAX_UDP_PEERS = 1024
_LOOPBACK = {4: ipaddress.ip_network("127.0.0.0/8"), 6: ipaddress.ip_network("::1/128")}
MAX_PACKET = 65000
"""Largest OSC packet sent over UDP, and largest frame taken over TCP."""

FIGURES: dict[str, StoreType] = {
    "port": "int",
    "received": "int",
    "commands": "int",
    "malformed": "int",
    "refused": "int",
    "denied": "int",
    "clients": "int",
    "connections": "int",
}
MEANINGS = {
    "port": "the UDP and TCP port OSC control listens on",
    "received": "OSC packets received",
    "commands": "commands run for OSC clients",
    "malformed": "packets or frames that were not OSC, dropped",
    "refused": "packets and connections from outside `allow`, ignored",
    "denied": "commands refused for want of the passcode",
    "clients": "clients receiving /update pushes",
    "connections": "open TCP connections",
}


class OscControlService:
    name = "osc_control"

    def __init__(self, runtime: Runtime, settings: OscControlSettings, health: ComponentHealth) -> None:
        self.runtime, self.settings, self.health = runtime, settings, health
        self.allow = [ipaddress.ip_network(network, strict=False) for network in settings.allow]
        self.now: Callable[[], float] = runtime.clock.now
        self.port = 0
        self.counts = dict.fromkeys(("received", "commands", "malformed", "refused", "denied"), 0)
        self.udp_peers: dict[tuple[str, int], OscPeer] = {}
        self.connections: set[OscPeer] = set()
        self.passcodes = Passcodes(settings.passcode)
        self.oversize = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    # --- ports ----------------------------------------------------------------------------

    async def start(self) -> None:
        settings = self.settings
        where = f"{settings.host}:{settings.port}"
        try:
            await self._bind(settings.port)
        except OSError as exc:
            explicit = "port" in settings.model_fields_set
            if exc.errno == errno.EADDRINUSE and settings.port == DEFAULT_PORT and not explicit:
                log.warning(
                    "OSC 控制端口 %d 已被占用（QLab？），改用空闲端口 / OSC control: port %d is in use (QLab on this "
                    "machine?); listening on a free port instead; set `control: osc: port:` to choose one",
                    DEFAULT_PORT,
                    DEFAULT_PORT,
                )
                await self._bind(0)
            elif exc.errno == errno.EADDRINUSE:
                raise UserError(
                    f"Port {settings.port} is already in use, so OSC control cannot listen on {where}; stop the other "
                    f"program or set another `control: osc: port:` / OSC 控制端口 {settings.port} 已被占用。"
                ) from None
            elif exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES) or isinstance(exc, socket.gaierror):
                raise UserError(
                    f"OSC control cannot listen on {where}: {exc.strerror or exc} / OSC 控制无法监听 {where}。"
                ) from None
            else:
                raise
        self.health.set("ok")
        self.publish_figures()
        self._say_who_may()
        log.info("OSC control (QLab-style) on udp%s://%s:%d", "+tcp" if self._tcp else "", settings.host, self.port)

    def _say_who_may(self) -> None:
        """Warn of the two ways a venue gets this wrong: surfaces shut out, or anyone let in."""
        loopback = all(network.subnet_of(_LOOPBACK[network.version]) for network in self.allow)  # type: ignore[arg-type]
        if loopback and self.settings.host not in ("127.0.0.1", "::1", "localhost"):
            log.warning(
                "OSC control listens on %s but `allow` admits only this machine; add your surfaces' network "
                "(e.g. 192.168.1.0/24) / 允许列表只含本机，其他设备的 OSC 控制会被忽略",
                self.settings.host,
            )
        elif not loopback and self.settings.passcode is None:
            log.warning(
                "OSC control takes commands from %s without a passcode; set `control: osc: passcode:` "
                "/ OSC 控制未设口令",
                ", ".join(self.settings.allow),
            )

    async def _bind(self, port: int) -> None:
        """UDP and TCP on one port; with port 0, a port free for both."""
        loop = asyncio.get_running_loop()
        for _ in range(20 if port == 0 else 1):
            transport, _protocol = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self), local_addr=(self.settings.host, port)
            )
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            bound = int(sock.getsockname()[1])
            if not self.settings.tcp:
                self._udp, self.port = transport, bound
                return
            try:
                self._tcp = await asyncio.start_server(self._serve_connection, self.settings.host, bound)
            except OSError as exc:
                transport.close()
                if port == 0 and exc.errno == errno.EADDRINUSE:
                    continue  # the free UDP port is taken for TCP: another one
                raise
            self._udp, self.port = transport, bound
            return
        raise OSError(errno.EADDRINUSE, "no port free for both UDP and TCP")

    async def run(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.sweep()

    async def close(self, timeout: float) -> None:
        for peer in [*self.udp_peers.values(), *self.connections]:
            self._stop_updates(peer)
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for peer in list(self.connections):
                if peer.writer is not None:
                    peer.writer.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tcp.wait_closed(), timeout)
            self._tcp = None
        self.health.stopped()

    # --- housekeeping ---------------------------------------------------------------------

    def sweep(self) -> None:
        """Stop the updates of UDP clients that went quiet, forget idle ones, refresh the figures."""
        now = self.now()
        for key, peer in list(self.udp_peers.items()):
            if now - peer.heard <= THUMP_TIMEOUT:
                continue
            if peer.updates is not None:
                log.info("OSC control: %s sent no /thump for %.0f s; its updates stop", peer.name, THUMP_TIMEOUT)
                self._stop_updates(peer)
            del self.udp_peers[key]
        self.publish_figures()

    def publish_figures(self) -> None:
        self.health.figure("port", self.port)
        for name, value in self.counts.items():
            self.health.figure(name, value)
        self.health.figure("clients", len(self._subscribed()))
        self.health.figure("connections", len(self.connections))

    def _subscribed(self) -> list[OscPeer]:
        return [p for p in (*self.udp_peers.values(), *self.connections) if p.updates is not None]

    def allowed(self, host: Any) -> bool:
        ip = source_ip(host)
        return ip is not None and any(ip in network for network in self.allow)

    # --- receiving ------------------------------------------------------------------------

    def udp_peer(self, addr: tuple[Any, ...]) -> OscPeer:
        key = (str(addr[0]), int(addr[1]))
        peer = self.udp_peers.get(key)
        if peer is None:
            if len(self.udp_peers) >= MAX_UDP_PEERS:  # forget the quietest client that takes no updates
                idle = [k for k, p in self.udp_peers.items() if p.updates is None]
                if idle:
                    del self.udp_peers[min(idle, key=lambda k: self.udp_peers[k].heard)]
            ip = str(source_ip(addr[0]) or addr[0])
            peer = OscPeer(ip, key[1], nothing, self.now(), reply_to=tuple(addr))
            peer.send = functools.partial(self._reply_udp, peer)
            self.udp_peers[key] = peer
        return peer

    def _reply_udp(self, peer: OscPeer, packet: bytes) -> None:
        self._sendto(packet, peer.reply_to)

    def _sendto(self, packet: bytes, addr: tuple[Any, ...]) -> None:
        if self._udp is None or self._udp.is_closing():
            return
        if len(packet) > MAX_PACKET:
            self.oversize += 1
            if self.oversize == 1:
                log.warning(
                    "OSC control: a %d-byte packet is too big for UDP; use TCP / 消息过大，请改用 TCP", len(packet)
                )
            return
        self._udp.sendto(packet, addr)

    def handle_packet(self, data: bytes, peer: OscPeer) -> None:
        self.counts["received"] += 1
        try:
            messages = OscPacket(data).messages
        except Exception as exc:  # python-osc raises several types on garbage
            self.counts["malformed"] += 1
            if self.counts["malformed"] == 1 or self.counts["malformed"] % 1000 == 0:
                log.warning(
                    "OSC control dropped a malformed packet from %s (%s; %d so far)",
                    peer.name,
                    exc,
                    self.counts["malformed"],
                )
            return
        peer.heard = self.now()
        for timed in messages:  # a bundle's messages in order; time tags hold nothing back
            self.handle_message(timed.message.address, list(timed.message.params), peer)

    def handle_message(self, address: str, args: list[Any], peer: OscPeer) -> None:
        show = self.runtime.show
        lists = {name: [cue.id for cue in c.cues] for name, c in show.cue_lists.items()} if show else {}
        try:
            found = route(address, args, self.runtime.exhibit.id, lists)
        except RouteError as unknown:
            self.reply(peer, address, error(unknown.code, str(unknown)))
            return
        if found.session:
            self._session(found, address, args, peer)
            return
        if not self.passcodes.granted(peer):
            self.counts["denied"] += 1
            self.reply(peer, address, denied())
            return
        actor = Actor(name=peer.name, role="operator", via="osc", address=peer.ip)
        self.counts["commands"] += 1
        try:
            answer = self.runtime.control.execute(found.command, found.params, actor).as_dict()
        except Exception:  # a fault in the show must not silence the control surface
            log.exception("OSC control: %s from %s failed", found.command, peer.name)
            answer = error("unavailable", f"`{found.command}` failed: see the log / 命令执行失败，请查看日志")
        self.reply(peer, address, answer)

    # --- the client's session -------------------------------------------------------------

    def _session(self, found: OscRoute, address: str, args: list[Any], peer: OscPeer) -> None:
        word, first = found.session, args[0] if args else None
        if word == "thump":
            self.reply(peer, address, {"status": "ok", "data": "thump"})
        elif word == "connect":
            self._connect(address, first, peer)
        elif word == "disconnect":
            self._stop_updates(peer)
            self.passcodes.revoke(peer)
            self.reply(peer, address, {"status": "ok"})
        elif word == "version":
            self.reply(peer, address, {"status": "ok", "data": version()})
        elif word == "workspaces":
            workspace = qlab_workspace(self.runtime.exhibit, self.passcodes.expected is not None, self.port)
            self.reply(peer, address, {"status": "ok", "data": [workspace]})
        elif word == "udpReplyPort":
            self._reply_port(address, first, peer)
        elif word == "alwaysReply":
            self.reply(peer, address, {"status": "ok"})  # every message is answered anyway
        elif not self.passcodes.granted(peer):
            self.counts["denied"] += 1
            self.reply(peer, address, denied())
        elif word == "updates":
            self._updates(address, first, peer)
        elif word == "cueLists":
            self.reply(peer, address, {"status": "ok", "data": qlab_cue_lists(self.runtime.show)})

    def _connect(self, address: str, given: Any, peer: OscPeer) -> None:
        if self.passcodes.expected is None:
            self.reply(peer, address, {"status": "ok", "data": "ok"})
            return
        outcome = self.passcodes.check(peer, given, self.now())
        if outcome != "locked":
            detail = "" if outcome == "ok" else "wrong passcode"
            self.runtime.control.audit.note(peer.name, "osc", peer.ip, "connect", outcome == "ok", detail)
        if outcome == "ok":
            self.reply(peer, address, {"status": "ok", "data": "ok"})
        elif outcome == "locked":
            self.reply(peer, address, denied("too many wrong passcodes: wait a minute / 口令错误过多，请稍后再试"))
        else:
            self.reply(peer, address, denied("wrong passcode / 口令错误"))

    def _reply_port(self, address: str, port: Any, peer: OscPeer) -> None:
        if peer.tcp:
            self.reply(peer, address, {"status": "ok"})  # replies go back on the connection
            return
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            self.reply(peer, address, error("bad_request", "/udpReplyPort takes a port number / 需要端口号"))
            return
        peer.reply_to = (peer.reply_to[0], port, *peer.reply_to[2:])
        self.reply(peer, address, {"status": "ok"})

    def _updates(self, address: str, on: Any, peer: OscPeer) -> None:
        wanted = on is True or (isinstance(on, int | float) and on != 0) or (isinstance(on, str) and on == "1")
        if not wanted:
            self._stop_updates(peer)
        elif peer.updates is None:
            if len(self._subscribed()) >= MAX_UPDATE_CLIENTS:
                self.reply(
                    peer,
                    address,
                    error("unavailable", f"{MAX_UPDATE_CLIENTS} clients already take updates / 订阅更新的客户端已满"),
                )
                return
            peer.updates = self.runtime.events.subscribe(UPDATE_TOPICS)
            peer.pushing = asyncio.get_running_loop().create_task(self._push(peer, peer.updates))
        self.reply(peer, address, {"status": "ok"})

    async def _push(self, peer: OscPeer, updates: Subscription) -> None:
        while True:
            for event in await updates.next():
                peer.send(message(f"/update/{event['topic']}", event["data"]))

    def _stop_updates(self, peer: OscPeer) -> None:
        if peer.updates is not None:
            peer.updates.close()
            peer.updates = None
        if peer.pushing is not None:
            peer.pushing.cancel()
            peer.pushing = None

    def reply(self, peer: OscPeer, address: str, body: dict[str, Any]) -> None:
        peer.send(message(f"/reply{address}", {"workspace_id": self.runtime.exhibit.id, "address": address, **body}))

    # --- TCP ------------------------------------------------------------------------------

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername") or ("?", 0)
        if not self.allowed(peername[0]) or len(self.connections) >= MAX_CONNECTIONS:
            self.counts["refused"] += 1
            writer.close()
            return
        splitter = FrameSplitter(MAX_PACKET)
        ip = str(source_ip(peername[0]) or peername[0])
        peer = OscPeer(ip, int(peername[1]), nothing, self.now(), tcp=True, writer=writer)
        peer.send = lambda packet: write_framed(writer, packet, splitter.framing or "slip")
        self.connections.add(peer)
        try:
            while not writer.is_closing():
                data = await reader.read(65536)
                if not data:
                    break
                packets, bad = splitter.feed(data)
                self.counts["malformed"] += bad
                for packet in packets:
                    self.handle_packet(packet, peer)
                if splitter.broken:
                    log.warning("OSC control: %s sent a frame over %d bytes; connection closed", peer.name, MAX_PACKET)
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            self._stop_updates(peer)
            self.connections.discard(peer)
            writer.close()


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, service: OscControlService) -> None:
        self.service = service

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        service = self.service
        if not service.allowed(addr[0]):
            service.counts["refused"] += 1
            if service.counts["refused"] == 1:
                log.warning("OSC control ignores packets from %s (not in `allow`) / 来源不在允许列表中", addr[0])
            return
        service.handle_packet(data, service.udp_peer(addr))

    def error_received(self, exc: Exception) -> None:
        # A reply to a client that no longer listens (`oscsend` exits at once): nothing to do.
        log.debug("OSC control socket: %s", exc)


def _build(runtime: Runtime) -> OscControlService | None:
    settings = runtime.exhibit.control.osc
    if not settings.enabled:
        return None
    return OscControlService(runtime, settings, runtime.context.health_of("osc_control", "service", FIGURES))


SERVICE = ServiceSpec(
    "osc_control",
    order=40,
    applies=lambda exhibit: exhibit.control.osc.enabled,
    build=_build,
    figures=FIGURES,
    meanings=MEANINGS,
)
