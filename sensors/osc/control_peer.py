"""The clients of OSC control: who they are, whether they gave the passcode, and what is sent to them
(replies and updates as one JSON string, QLab's answers to ``/workspaces`` and ``/cueLists``)."""

from __future__ import annotations

import asyncio
import hmac
import importlib.metadata
import ipaddress
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pythonosc.osc_message_builder import OscMessageBuilder

from engine.control.protocol import plain
from sensors.osc.framing import Framing, frame

if TYPE_CHECKING:
    from engine.control.hub import Subscription
    from engine.exhibit import ExhibitBase
    from engine.show import Show

log = logging.getLogger("sensors.osc.control")

TCP_BACKLOG = 1 << 20
"""A TCP client this far behind (bytes waiting) is dropped: it reads no more."""
PASSCODE_TRIES = 10
"""Wrong passcodes from one address before it must wait a minute."""
MAX_REMEMBERED = 1024
PASSCODE_REQUIRED = "passcode required: send /connect <passcode> first / 需要口令：请先发送 /connect <口令>"


@dataclass(eq=False)
class OscPeer:
    """One client: a UDP address and port, or one TCP connection."""

    ip: str
    port: int
    send: Callable[[bytes], None]
    """Sends one OSC packet to the client (its reply port, or its connection)."""
    heard: float
    tcp: bool = False
    reply_to: tuple[Any, ...] = ()
    """UDP: where replies and updates go (where it sends from, unless it asked for another port)."""
    writer: asyncio.StreamWriter | None = field(default=None, repr=False)
    granted: bool = False
    updates: Subscription | None = None
    pushing: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"osc {self.ip}:{self.port}"


def source_ip(host: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(host)
    except (TypeError, ValueError):
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d
    return ip


class Passcodes:
    """Who gave the passcode: a TCP connection for as long as it lasts; a UDP client by its address
    (liblo's `oscsend` sends from a new port every time) until it says ``/disconnect``."""

    def __init__(self, expected: str | None) -> None:
        self.expected = expected
        self.udp_granted: set[str] = set()
        self._tries: dict[str, tuple[int, float]] = {}

    def granted(self, peer: OscPeer) -> bool:
        if self.expected is None:
            return True
        return peer.granted if peer.tcp else peer.ip in self.udp_granted

    def check(self, peer: OscPeer, given: Any, now: float) -> Literal["ok", "wrong", "locked"]:
        assert self.expected is not None
        tries, since = self._tries.get(peer.ip, (0, now))
        if now - since > 60.0:
            tries, since = 0, now
        if tries >= PASSCODE_TRIES:
            return "locked"
        text = str(given) if isinstance(given, str | int) and not isinstance(given, bool) else ""
        if not hmac.compare_digest(text.encode(), self.expected.encode()):
            if len(self._tries) >= MAX_REMEMBERED:
                self._tries.clear()
            self._tries[peer.ip] = (tries + 1, since)
            return "wrong"
        self._tries.pop(peer.ip, None)
        if peer.tcp:
            peer.granted = True
        else:
            if len(self.udp_granted) >= MAX_REMEMBERED:
                self.udp_granted.clear()
            self.udp_granted.add(peer.ip)
        return "ok"

    def revoke(self, peer: OscPeer) -> None:
        peer.granted = False
        self.udp_granted.discard(peer.ip)


def message(address: str, body: Any) -> bytes:
    """An OSC message carrying ``body`` as one JSON string (UTF-8: the error sentences are bilingual)."""
    builder = OscMessageBuilder(address)
    builder.add_arg(json.dumps(plain(body), ensure_ascii=False), "s")
    return builder.build().dgram


def error(code: str, sentence: str) -> dict[str, Any]:
    return {"status": "error", "error": sentence, "code": code}


def denied(sentence: str = PASSCODE_REQUIRED) -> dict[str, Any]:
    return {**error("forbidden", sentence), "data": "badpass"}  # QLab's word, which Companion looks for


def version() -> str:
    try:
        return f"exhibit-controller {importlib.metadata.version('exhibit-controller')}"
    except importlib.metadata.PackageNotFoundError:
        return "exhibit-controller"


def write_framed(writer: asyncio.StreamWriter, packet: bytes, framing: Framing) -> None:
    if writer.is_closing():
        return
    if writer.transport.get_write_buffer_size() > TCP_BACKLOG:
        log.warning("OSC control: a TCP client reads nothing any more; connection closed / 客户端无响应，已断开")
        writer.close()
        return
    writer.write(frame(packet, framing))


def nothing(packet: bytes) -> None:
    """Where a client's packets go before it has a way back."""


def qlab_workspace(exhibit: ExhibitBase, has_passcode: bool, port: int) -> dict[str, Any]:
    """The exhibit as the one workspace in QLab's answer to ``/workspaces``."""
    return {
        "uniqueID": exhibit.id,
        "displayName": exhibit.title.en,
        "hasPasscode": has_passcode,
        "version": version(),
        "port": port,
    }


def qlab_cue_lists(show: Show | None) -> list[dict[str, Any]]:
    """Each cue list and its cues in the shape QLab answers ``/cueLists`` with."""
    if show is None:
        return []
    return [
        {
            "uniqueID": name,
            "number": "",
            "name": name,
            "listName": name,
            "type": "Cue List",
            "cues": [
                {"uniqueID": c.id, "number": c.id, "name": c.name or "", "listName": c.name or "", "type": "Group"}
                for c in cue_list.cues
            ],
        }
        for name, cue_list in show.cue_lists.items()
    ]
