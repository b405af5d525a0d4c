"""OSCQuery: publish the OSC addresses an exhibit accepts, so TouchOSC, Chataigne and ossia score can discover them.

Implements the server side of the OSCQuery proposal (https://github.com/Vidvox/OSCQueryProposal):

* an HTTP/1.1 JSON namespace (``GET /`` for the whole tree, ``GET /a/b`` for a node,
  ``GET /a/b?TYPE`` for one attribute, ``GET /?HOST_INFO`` for the server's OSC port);
* zeroconf/mDNS advertisements of ``_oscjson._tcp`` (the HTTP port) and ``_osc._udp`` (the OSC port).

The HTTP server is deliberately tiny: GET only, one request per connection (``Connection: close``),
bounded line lengths and time, so a misbehaving client can never stop the exhibit. mDNS is best
effort: if it cannot start (no multicast, a sandbox), one warning is logged and HTTP keeps serving.

A server may also be given a namespace that is built at each request (live values), a handler for
WebSocket upgrades on the same port (``LISTEN``, see :mod:`sensors.osc.oscquery_listen`) and a check
of the client's address; the control server (:mod:`sensors.osc.oscquery_control`) uses all three.

What is described: each signal is a write-only method (``ACCESS`` 2: the exhibit receives, it never
reports values, so ``VALUE`` is not offered). Only the argument that carries a signal's value is
typed; arguments before it are declared ``f`` because the exhibit ignores them. Signals whose
address is an OSC pattern (``/fader[1-4]``) are not listed: OSCQuery describes concrete addresses,
and a client cannot send to a pattern's address literally.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import logging
import math
import re
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pydantic import Field, field_validator
from zeroconf import InterfaceChoice, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from engine.errors import UserError
from engine.model import SignalType, Strict

if TYPE_CHECKING:  # sensors.osc.inputs imports this module for its settings; at run time specs are only read
    from sensors.osc.inputs import OscSignalSpec

log = logging.getLogger("sensors.osc.oscquery")

OSCJSON_SERVICE = "_oscjson._tcp.local."
OSC_SERVICE = "_osc._udp.local."
ACCESS_WRITE_ONLY = 2
TYPE_TAGS: dict[SignalType, str] = {"float": "f", "int": "i", "bool": "T", "str": "s"}
"""OSC type tags by signal type. Booleans are declared ``T``; senders may send ``T`` (true) or ``F`` (false)."""
PADDING_TAG = "f"
ATTRIBUTES = frozenset(
    {
        "FULL_PATH",
        "CONTENTS",
        "TYPE",
        "VALUE",
        "RANGE",
        "ACCESS",
        "DESCRIPTION",
        "TAGS",
        "EXTENDED_TYPE",
        "UNIT",
        "CRITICAL",
        "CLIPMODE",
        "OVERLOADS",
        "HTML",
    }
)
"""Attributes the proposal defines: a query for one of these that a node lacks is 204, any other is 400."""
EXTENSIONS = {
    "ACCESS": True,
    "VALUE": False,
    "RANGE": True,
    "DESCRIPTION": True,
    "TAGS": False,
    "CLIPMODE": False,
    "UNIT": False,
    "CRITICAL": False,
    "LISTEN": False,
    "PATH_CHANGED": False,
}
OSC_TXT = {"txtvers": "1", "version": "1.0", "types": "ifhdsTF"}
"""TXT keys of ``_osc._udp`` as the OSC 1.1 paper suggests; ``types`` are the tags the OSC sensor converts."""
OSCJSON_TXT = {"txtvers": "1"}

MAX_LINE = 8192
MAX_HEADERS = 100
MAX_HEAD = 32768
"""Bytes of a request line and headers kept (a WebSocket handshake is handed on whole)."""
REQUEST_TIMEOUT = 10.0
LINGER = 1.0
WILDCARD_HOSTS = frozenset({"", "0.0.0.0"})
MDNS_GROUP = ("224.0.0.251", 5353)
INSTANCE_MAX_BYTES = 63


class OscQuerySettings(Strict):
    """Publishes the sensor's OSC addresses over OSCQuery (HTTP + zeroconf) for TouchOSC, Chataigne, ossia score."""

    port: int = Field(
        9001,
        ge=0,
        le=65535,
        description="TCP port of the OSCQuery HTTP server. It may equal the OSC UDP port (TCP and UDP ports are "
        "separate); it must differ from other TCP servers on this machine. 0 picks a free port at each start "
        "(clients then need zeroconf to find it).",
    )
    advertise: bool = Field(
        True,
        description="Announce the server on the local network with zeroconf/mDNS (`_oscjson._tcp` and `_osc._udp`) "
        "so clients list it without typing an address.",
    )
    name: str | None = Field(
        None,
        description="Name shown to clients (zeroconf service name and HOST_INFO NAME); default: the exhibit or "
        "sensor name. At most 63 bytes, no dots.",
    )

    @field_validator("name")
    @classmethod
    def _valid_instance_name(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.strip():
            raise ValueError("name must not be empty")
        if "." in value:
            raise ValueError("name must not contain `.` (zeroconf would read it as a domain separator)")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("name must not contain control characters")
        if len(value.encode()) > INSTANCE_MAX_BYTES:
            raise ValueError(f"name is {len(value.encode())} bytes long; zeroconf allows at most 63")
        return value


# --- namespace -------------------------------------------------------------------------------------------------------


def build_namespace(signals: Mapping[str, OscSignalSpec], description: str) -> dict[str, Any]:
    """The OSCQuery JSON tree of ``signals`` (by name): containers per address segment, one method per address.

    Signals on the same address (different ``arg``) merge into one method; pattern addresses are left out.
    """
    root: dict[str, Any] = {"FULL_PATH": "/", "CONTENTS": {}, "DESCRIPTION": description}
    by_address: dict[str, list[tuple[str, OscSignalSpec]]] = {}
    for name, spec in signals.items():
        if not spec.is_pattern:
            by_address.setdefault(spec.address, []).append((name, spec))
    for address, entries in by_address.items():
        node_at(root, address).update(_method(entries))
    return root


def node_at(root: dict[str, Any], address: str) -> dict[str, Any]:
    """The node for ``address``, creating the containers on the way."""
    if address == "/":
        return root
    node, path = root, ""
    for segment in address[1:].split("/"):
        path += "/" + segment
        node = node.setdefault("CONTENTS", {}).setdefault(segment, {"FULL_PATH": path})
    return node


def _method(entries: Sequence[tuple[str, OscSignalSpec]]) -> dict[str, Any]:
    """Attributes of one method; where two signals read the same argument, the first declared describes it."""
    width = max(spec.arg for _, spec in entries) + 1
    tags = [PADDING_TAG] * width
    ranges: list[dict[str, int | float]] = [{} for _ in range(width)]
    described: set[int] = set()
    for _, spec in entries:
        if spec.arg not in described:
            described.add(spec.arg)
            tags[spec.arg] = TYPE_TAGS[spec.type]
            ranges[spec.arg] = _range(spec)
    method: dict[str, Any] = {"TYPE": "".join(tags), "ACCESS": ACCESS_WRITE_ONLY}
    if any(ranges):
        method["RANGE"] = ranges
    method["DESCRIPTION"] = ", ".join(name for name, _ in entries)
    return method


def _range(spec: OscSignalSpec) -> dict[str, int | float]:
    """What senders should send: ``scale.input`` when scaled (raw values arrive), else ``range``; numbers only."""
    bounds = spec.scale.input if spec.scale is not None else spec.range
    if bounds is None or spec.type not in ("float", "int"):
        return {}
    low, high = sorted(bounds)
    out: dict[str, int | float] = {}
    for key, bound in (("MIN", low), ("MAX", high)):
        if math.isfinite(bound):
            out[key] = int(bound) if spec.type == "int" and bound.is_integer() else bound
    return out


def find_node(namespace: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The node at an OSC ``path`` (a trailing ``/`` is ignored), or None."""
    if path.endswith("/"):
        path = path[:-1]
    node = namespace
    for segment in path[1:].split("/") if path else ():
        contents = node.get("CONTENTS")
        if not isinstance(contents, dict) or segment not in contents:
            return None
        node = contents[segment]
    return node


def host_info(name: str, osc_port: int, extensions: Mapping[str, bool] | None = None) -> dict[str, Any]:
    """``GET /?HOST_INFO``: where to send OSC and what this server describes. No OSC_IP: same host as HTTP.

    ``extensions`` overrides entries of :data:`EXTENSIONS` (a server with live values says ``VALUE``, ``LISTEN``).
    """
    extended = EXTENSIONS | dict(extensions or {})
    return {"NAME": name, "OSC_PORT": osc_port, "OSC_TRANSPORT": "UDP", "EXTENSIONS": extended}


def answer(namespace: dict[str, Any], info: dict[str, Any], method: str, target: str) -> tuple[HTTPStatus, Any]:
    """The status and JSON body (None for no body) for one request; pure, so every route is easy to test."""
    if method != "GET":
        return HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"method {method} is not allowed; OSCQuery answers GET"}
    raw_path, _, query = target.partition("?")
    attribute = query.upper()
    if attribute == "HOST_INFO":
        return HTTPStatus.OK, info
    path = unquote(raw_path)
    node = find_node(namespace, path)
    if node is None:
        return HTTPStatus.NOT_FOUND, {"error": f"no OSC address or container {path}"}
    if not attribute:
        return HTTPStatus.OK, node
    if attribute not in ATTRIBUTES:
        return HTTPStatus.BAD_REQUEST, {"error": f"unknown OSCQuery attribute {query}"}
    if attribute not in node:
        return HTTPStatus.NO_CONTENT, None
    return HTTPStatus.OK, {attribute: node[attribute]}


# --- HTTP ------------------------------------------------------------------------------------------------------------


class BadRequest(Exception):
    """The request cannot be parsed; answered with 400."""


def parse_request_line(line: bytes) -> tuple[str, str]:
    """``GET /a/b?TYPE HTTP/1.1`` to ``("GET", "/a/b?TYPE")``; raises BadRequest otherwise."""
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3:
        raise BadRequest("the request line is not `METHOD /path HTTP/1.x`")
    method, target, version = parts
    if not re.fullmatch(r"[A-Z]{1,20}", method) or not target.startswith("/") or not version.startswith("HTTP/1."):
        raise BadRequest("the request line is not `METHOD /path HTTP/1.x`")
    return method, target


class QueryRequest:
    """A parsed request head: method, target, the raw head (for a WebSocket handshake), whether it asks to upgrade."""

    def __init__(self, method: str, target: str, head: bytes, upgrade: bool) -> None:
        self.method, self.target, self.head, self.upgrade = method, target, head, upgrade


async def read_request(reader: asyncio.StreamReader) -> QueryRequest:
    """Read the request line and the headers (bounded in number and length); GET has no body."""
    try:
        first = await reader.readuntil(b"\n")
        method, target = parse_request_line(first)
        head, upgrade = [first], False
        for _ in range(MAX_HEADERS):
            line = await reader.readuntil(b"\n")
            if sum(map(len, head)) + len(line) > MAX_HEAD:
                raise BadRequest(f"the request head is longer than {MAX_HEAD} bytes")
            head.append(line)
            if line.strip() == b"":
                return QueryRequest(method, target, b"".join(head), upgrade)
            name, _, value = line.partition(b":")
            upgrade |= name.strip().lower() == b"upgrade" and value.strip().lower() == b"websocket"
    except asyncio.LimitOverrunError:
        raise BadRequest(f"a line is longer than {MAX_LINE} bytes") from None
    raise BadRequest(f"more than {MAX_HEADERS} headers")


def encode_response(status: HTTPStatus, body: Any, head_only: bool = False) -> bytes:
    """A complete HTTP/1.1 response; 204 carries no body, and neither does a reply to HEAD."""
    lines = [f"HTTP/1.1 {status.value} {status.phrase}", "Connection: close", "Access-Control-Allow-Origin: *"]
    if status == HTTPStatus.METHOD_NOT_ALLOWED:
        lines.append("Allow: GET")
    payload = b""
    if status != HTTPStatus.NO_CONTENT:
        payload = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + payload


# --- zeroconf --------------------------------------------------------------------------------------------------------


def instance_name(name: str) -> str:
    """A valid DNS-SD instance name: no dots or control characters, at most 63 UTF-8 bytes."""
    clean = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in name).replace(".", "-").strip()
    data = (clean or "exhibit").encode()[:INSTANCE_MAX_BYTES]
    return data.decode(errors="ignore").strip() or "exhibit"


def host_label(text: str) -> str:
    """``text`` as a DNS host label (letters, digits, hyphens; at most 63)."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    return label or "exhibit"


def mdns_route_address() -> str | None:
    """The IPv4 address this machine sends mDNS from (no packet is sent), or None without a route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(MDNS_GROUP)
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address == "0.0.0.0" else address


async def advertised_addresses(http_host: str) -> list[str]:
    """IPv4 addresses clients should connect to: the bound one, or for a wildcard the one mDNS leaves from.

    Every one is an address of this machine, so it is reachable from here as well as from the network.
    """
    if http_host in WILDCARD_HOSTS:
        return [mdns_route_address() or "127.0.0.1"]
    try:
        return [str(ipaddress.IPv4Address(http_host))]
    except ValueError:
        infos = await asyncio.get_running_loop().getaddrinfo(http_host, None, family=socket.AF_INET)
        return sorted({str(info[4][0]) for info in infos})


def service_infos(
    instance: str, http_port: int, osc_port: int, addresses: Sequence[str], server: str
) -> list[AsyncServiceInfo]:
    """The two services an OSCQuery server registers: the JSON namespace (TCP) and the OSC input (UDP)."""
    return [
        AsyncServiceInfo(
            service_type,
            f"{instance}.{service_type}",
            port=port,
            parsed_addresses=list(addresses),
            server=server,
            properties=dict(properties),
        )
        for service_type, port, properties in (
            (OSCJSON_SERVICE, http_port, OSCJSON_TXT),
            (OSC_SERVICE, osc_port, OSC_TXT),
        )
    ]


# --- server ----------------------------------------------------------------------------------------------------------

Namespace = dict[str, Any] | Callable[[], dict[str, Any]]
"""A fixed namespace, or one built at each request (with the current values)."""
WebSocketHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[None]]
"""Takes over a connection whose request asks for a WebSocket; gets the raw request head to answer it."""
FORBIDDEN = {"error": "this address may not use the exhibit's control / 此地址无权使用展项控制"}


class OscQueryServer:
    """Serves ``namespace`` over HTTP on ``http_host`` and advertises it with zeroconf.

    ``name`` is the default service name (the exhibit or sensor name); ``settings.name`` overrides it.
    ``port`` is the HTTP port actually bound once started (useful with port 0). ``websocket`` takes the
    connections that ask for a WebSocket (without it they get the namespace like any GET); ``allow`` says
    which client addresses are served (others get 403); ``extensions`` are announced in HOST_INFO.
    """

    def __init__(
        self,
        name: str,
        osc_port: int,
        namespace: Namespace,
        http_host: str = "0.0.0.0",
        settings: OscQuerySettings | None = None,
        *,
        websocket: WebSocketHandler | None = None,
        allow: Callable[[str], bool] | None = None,
        extensions: Mapping[str, bool] | None = None,
    ) -> None:
        self.settings = settings if settings is not None else OscQuerySettings.model_validate({})
        self.name = instance_name(self.settings.name or name)
        self.osc_port = osc_port
        self.namespace = namespace
        self.http_host = http_host
        self.port = self.settings.port
        self.host_info = host_info(self.name, osc_port, extensions)
        self.websocket = websocket
        self.allow = allow
        self.services: list[AsyncServiceInfo] = []
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._zeroconf: AsyncZeroconf | None = None
        self._advertising: asyncio.Task[bool] | None = None

    async def start(self) -> None:
        """Listen for HTTP now; advertise in the background (mDNS probing takes about a second)."""
        where = f"{self.http_host}:{self.settings.port}"
        try:
            self._server = await asyncio.start_server(self._handle, self.http_host, self.settings.port, limit=MAX_LINE)
        except OSError as exc:
            raise self._bind_error(exc, where) from None
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("OSCQuery for %s on http://%s:%d/", self.name, self.http_host, self.port)
        if self.settings.advertise:
            self._advertising = asyncio.create_task(self._advertise(), name=f"oscquery-mdns-{self.name}")

    def _bind_error(self, exc: OSError, where: str) -> Exception:
        if exc.errno == errno.EADDRINUSE:
            return UserError(
                f"TCP port {self.settings.port} is already in use, so the OSCQuery server `{self.name}` cannot "
                f"listen on {where}; stop the other program or set `oscquery.port` to another port."
            )
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES) or isinstance(exc, socket.gaierror):
            return UserError(f"The OSCQuery server `{self.name}` cannot listen on {where}: {exc.strerror or exc}.")
        return exc

    async def wait_advertised(self) -> bool:
        """Wait for the zeroconf registration; True if both services are announced, False if off or failed."""
        if self._advertising is None:
            return False
        return await asyncio.shield(self._advertising)

    async def close(self) -> None:
        """Withdraw the zeroconf services (goodbye packets), then stop HTTP and drop open connections."""
        if self._advertising is not None:
            self._advertising.cancel()
            await asyncio.gather(self._advertising, return_exceptions=True)
            self._advertising = None
        await self._stop_zeroconf()
        if self._server is not None:
            self._server.close()
            await self._drop_connections()
            await self._server.wait_closed()
            self._server = None

    async def _drop_connections(self) -> None:
        """Abort open connections so their handlers end on their own (cancelling them makes Python 3.11 log errors).

        A handler still running after a second (it should not happen) is cancelled, so closing never hangs.
        """
        for writer in self._connections.values():
            writer.transport.abort()
        if self._connections:
            _, stuck = await asyncio.wait(self._connections, timeout=1.0)
            for task in stuck:
                task.cancel()

    # --- HTTP connections

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection, one request (or one WebSocket); a client's mistake is answered or dropped, never raised."""
        task = asyncio.current_task()
        if task is not None:
            self._connections[task] = writer
        try:
            peer = writer.get_extra_info("peername")
            if self.allow is not None and not (isinstance(peer, tuple) and self.allow(str(peer[0]))):
                await self._reply(reader, writer, "", HTTPStatus.FORBIDDEN, FORBIDDEN)
            else:
                await self._serve_one(reader, writer)
        except Exception:  # a safety net: a bug here must cost one request, never the server
            log.exception("OSCQuery server %s failed on a request", self.name)
        finally:
            if task is not None:
                self._connections.pop(task, None)
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                request = await read_request(reader)
            if request.upgrade and request.method == "GET" and self.websocket is not None:
                await self.websocket(reader, writer, request.head)
                return
            method = request.method
            namespace = self.namespace() if callable(self.namespace) else self.namespace
            status, body = answer(namespace, self.host_info, method, request.target)
        except BadRequest as exc:
            method, status, body = "", HTTPStatus.BAD_REQUEST, {"error": str(exc)}
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError) as exc:
            log.debug("OSCQuery client left before a complete request: %r", exc)
            return
        await self._reply(reader, writer, method, status, body)

    async def _reply(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str, status: HTTPStatus, body: Any
    ) -> None:
        try:
            writer.write(encode_response(status, body, head_only=method == "HEAD"))
            await writer.drain()
            writer.write_eof()
            await _linger(reader)
        except OSError as exc:  # ConnectionError, or ENOTCONN from write_eof once the client has reset
            log.debug("OSCQuery client left before the response was sent: %r", exc)

    # --- zeroconf

    async def _advertise(self) -> bool:
        addresses = await advertised_addresses(self.http_host)
        server = f"{host_label(f'{socket.gethostname()}-{self.name}')}.local."
        self.services = service_infos(self.name, self.port, self.osc_port, addresses, server)
        interfaces = InterfaceChoice.All if self.http_host in WILDCARD_HOSTS else addresses
        try:
            self._zeroconf = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
            zeroconf = self._zeroconf
            registrations = [zeroconf.async_register_service(info, allow_name_change=True) for info in self.services]
            announcements = await asyncio.gather(*registrations)
            await asyncio.gather(*announcements)
        except Exception as exc:  # mDNS is a convenience: its failure must never stop the exhibit
            log.warning(
                "OSCQuery `%s` is not advertised with zeroconf (%s: %s); it still serves http://<this machine>:%d/",
                self.name,
                type(exc).__name__,
                exc,
                self.port,
            )
            await self._stop_zeroconf()
            return False
        log.info("OSCQuery `%s` advertised with zeroconf at %s", self.name, ", ".join(addresses))
        return True

    async def _stop_zeroconf(self) -> None:
        if self._zeroconf is None:
            return
        zeroconf, self._zeroconf = self._zeroconf, None
        try:
            await zeroconf.async_unregister_all_services()
        except Exception as exc:  # the network may be gone; closing must still finish
            log.warning("OSCQuery `%s` could not withdraw its zeroconf services: %s", self.name, exc)
        await zeroconf.async_close()


async def _linger(reader: asyncio.StreamReader) -> None:
    """Drain what the client still sends, briefly, so closing does not reset the connection and lose the reply."""
    # The client closing, vanishing or dawdling past LINGER all end the drain the same way: by closing.
    with suppress(TimeoutError, OSError):
        async with asyncio.timeout(LINGER):
            while await reader.read(65536):
                continue
