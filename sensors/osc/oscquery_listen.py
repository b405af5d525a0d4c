"""LISTEN over the OSCQuery WebSocket: clients follow the exhibit's state as OSC messages.

A client opens a WebSocket on the OSCQuery HTTP port and sends ``{"COMMAND": "LISTEN", "DATA":
"/exhibit/state/mode"}`` (or ``IGNORE``). From then on every change of that address arrives as a binary
WebSocket message holding one OSC packet, beginning with the current value. A reload that changes the
namespace is announced with ``{"COMMAND": "PATH_CHANGED", "DATA": "/"}``.

The server holds one event hub subscription (:class:`engine.control.hub.EventHub`) and fans it out:
an address's value is typed and compared once, then queued to each client that listens. Each client
has a bounded queue; a client too slow to take its messages, or silent past two pings, is dropped, so
nothing a client does can hold up the show. What a client may send is small and checked: a garbage or
unknown message is counted and ignored, OSC sent over the WebSocket is refused (control goes to the OSC
control port, which checks who sends it).

The WebSocket protocol itself is websockets' sans-I/O implementation, driven on the connection that the
OSCQuery HTTP server (:mod:`sensors.osc.oscquery`) hands over, so one port serves both.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import suppress
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

from sensors.osc.oscquery_control import Readable, current_values, osc_packet, readables, state_values, typed

if TYPE_CHECKING:
    from engine.control.hub import Subscription
    from engine.runtime import Runtime

log = logging.getLogger("sensors.osc.oscquery_listen")

STATE_TOPICS = ("show", "safety", "schedule", "state/", "var/", "cuelist/", "timeline/", "health/")
"""The hub topics the namespace shows (signals are watched one by one, while someone listens)."""
QUEUE_LIMIT = 256
"""Messages waiting for one client; a client that lets more pile up is dropped."""
MAX_MESSAGE = 65536
MAX_CLIENTS = 64
PING_INTERVAL = 20.0
"""A quiet connection is pinged this often, and dropped when nothing came back for two intervals."""
READ_CHUNK = 65536


class ListenClient:
    """One WebSocket client: what it listens to and what waits to be sent to it."""

    def __init__(self, writer: asyncio.StreamWriter, peer: str) -> None:
        self.writer, self.peer = writer, peer
        self.paths: set[str] = set()
        self.queue: asyncio.Queue[bytes | str] = asyncio.Queue(QUEUE_LIMIT)
        self.dropped = False
        self.seen = asyncio.get_running_loop().time()
        self.fragments: list[bytes] = []
        self.kind = Opcode.TEXT

    def send(self, item: bytes | str) -> None:
        """Queue a binary OSC packet (bytes) or a JSON text message (str); drop the client when it lags."""
        if self.dropped:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.drop(f"it did not take {QUEUE_LIMIT} waiting messages")

    def drop(self, why: str) -> None:
        if not self.dropped:
            self.dropped = True
            log.warning("OSCQuery 监听客户端已断开 / OSCQuery listener %s dropped: %s", self.peer, why)
            self.writer.transport.abort()


class ListenHub:
    """Fans the event hub's changes out to the WebSocket clients that LISTEN; :meth:`session` serves one."""

    def __init__(self, runtime: Runtime, osc_port: int = 0) -> None:
        self.runtime = runtime
        self.osc_port = osc_port
        self.clients: set[ListenClient] = set()
        self.listeners: dict[str, set[ListenClient]] = {}
        self.sent: dict[str, Any] = {}
        """The last value of each address, as sent (only changes go out)."""
        self.refused = 0
        """Messages from clients that were refused (garbage, unknown commands or addresses, OSC)."""
        self._sub: Subscription | None = None
        self._shape: tuple[int, ...] | None = None
        self._readables: dict[str, Readable] = {}

    def open(self) -> None:
        self._sub = self.runtime.events.subscribe(STATE_TOPICS, stream_limit=1)

    def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
            self._sub = None

    async def run(self) -> None:
        """Send what changes, as it changes (the hub wakes this at once after each command)."""
        assert self._sub is not None, "open() first"
        while True:
            self.publish(await self._sub.next())

    def publish(self, events: list[dict[str, Any]]) -> None:
        known = self.readable()
        for event in events:
            for path, raw in state_values(event["topic"], event["data"]).items():
                readable = known.get(path)
                value = None if readable is None else typed(readable.tag, raw)
                if readable is None or value is None or self.sent.get(path, _NONE) == value:
                    continue
                self.sent[path] = value
                clients = self.listeners.get(path)
                packet = osc_packet(path, readable.tag, value) if clients else None
                for client in list(clients or ()):
                    if packet is not None:
                        client.send(packet)

    def readable(self) -> dict[str, Readable]:
        """The readable addresses, rebuilt when the exhibit, its show or its components change."""
        runtime = self.runtime
        parts = (runtime.exhibit, runtime.show, runtime.catalogue)
        shape = (*map(id, parts), runtime.reloads, len(list(runtime.health)))
        if shape != self._shape:
            changed = self._shape is not None
            self._shape, self._readables = shape, readables(runtime)
            if changed:
                text = json.dumps({"COMMAND": "PATH_CHANGED", "DATA": "/"})
                for client in list(self.clients):
                    client.send(text)
        return self._readables

    # --- LISTEN and IGNORE

    def listen(self, client: ListenClient, path: str) -> bool:
        """Start sending ``path`` to ``client``, with its current value now; False if it cannot be read."""
        readable = self.readable().get(path)
        if readable is None:
            return False
        if path not in client.paths:
            client.paths.add(path)
            self.listeners.setdefault(path, set()).add(client)
            if readable.signal is not None and self._sub is not None:
                self.runtime.events.watch(self._sub, readable.signal)
        value = current_values(self.runtime, {path: readable}).get(path)
        if value is not None:
            packet = osc_packet(path, readable.tag, value)
            if packet is not None:
                client.send(packet)
            if readable.signal is not None:
                self.sent[path] = value  # the watch's first push says the same: do not send it twice
        return True

    def ignore(self, client: ListenClient, path: str) -> None:
        client.paths.discard(path)
        clients = self.listeners.get(path)
        if clients is None:
            return
        clients.discard(client)
        if not clients:
            del self.listeners[path]
            readable = self._readables.get(path)
            if readable is not None and readable.signal is not None and self._sub is not None:
                self.runtime.events.unwatch(self._sub, readable.signal)
                self.sent.pop(path, None)  # no longer followed: the next watch starts afresh

    # --- one WebSocket connection

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        """Answer the handshake in ``head``, then serve the client until it leaves or is dropped."""
        protocol = ServerProtocol(max_size=MAX_MESSAGE, logger=log)
        protocol.receive_data(head)
        requests = [event for event in protocol.events_received() if isinstance(event, Request)]
        if not requests:  # websockets could not read the head and has queued its 400
            await _flush(protocol, writer)
            return
        if len(self.clients) >= MAX_CLIENTS:
            response = protocol.reject(HTTPStatus.SERVICE_UNAVAILABLE, "too many OSCQuery listeners / 监听客户端过多\n")
        else:
            response = protocol.accept(requests[0])
        protocol.send_response(response)
        await _flush(protocol, writer)
        if response.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
            return
        peer = writer.get_extra_info("peername")
        client = ListenClient(writer, f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?")
        self.clients.add(client)
        sender = asyncio.create_task(self._send(client, protocol), name=f"oscquery-listen-{client.peer}")
        try:
            await self._receive(client, protocol, reader)
        except ConnectionError as exc:
            log.debug("OSCQuery listener %s left: %r", client.peer, exc)
        finally:
            self.clients.discard(client)
            for path in list(client.paths):
                self.ignore(client, path)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    async def _receive(self, client: ListenClient, protocol: ServerProtocol, reader: asyncio.StreamReader) -> None:
        while not client.dropped:
            data = await reader.read(READ_CHUNK)
            if data:
                client.seen = asyncio.get_running_loop().time()
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            for event in protocol.events_received():
                if isinstance(event, Frame):
                    self._frame(client, event)
            if not await _flush(protocol, client.writer) or not data:
                return

    async def _send(self, client: ListenClient, protocol: ServerProtocol) -> None:
        loop = asyncio.get_running_loop()
        try:
            while protocol.state is OPEN:
                try:
                    item = await asyncio.wait_for(client.queue.get(), PING_INTERVAL)
                except TimeoutError:
                    if loop.time() - client.seen > 2 * PING_INTERVAL:
                        client.drop("it answered no ping")
                        return
                    protocol.send_ping(b"oscquery")
                else:
                    if protocol.state is not OPEN:
                        return
                    if isinstance(item, bytes):
                        protocol.send_binary(item)
                    else:
                        protocol.send_text(item.encode())
                if not await _flush(protocol, client.writer):
                    return
        except ConnectionError as exc:
            log.debug("OSCQuery listener %s left while being sent to: %r", client.peer, exc)

    # --- what clients send

    def _frame(self, client: ListenClient, frame: Frame) -> None:
        """Reassemble a message from its frames (pings and closes are websockets' to answer)."""
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            client.kind, client.fragments = frame.opcode, [bytes(frame.data)]
        elif frame.opcode is Opcode.CONT:
            client.fragments.append(bytes(frame.data))
        else:
            return
        if not frame.fin:
            return
        data, client.fragments = b"".join(client.fragments), []
        if client.kind is Opcode.BINARY:
            self._refuse(client, f"OSC over the WebSocket is not taken; send control to UDP port {self.osc_port}")
        else:
            self._command(client, data)

    def _command(self, client: ListenClient, data: bytes) -> None:
        try:
            message = json.loads(data.decode())
        except ValueError:  # UnicodeDecodeError is a ValueError too
            self._refuse(client, "not JSON")
            return
        command = message.get("COMMAND") if isinstance(message, dict) else None
        path = message.get("DATA") if isinstance(message, dict) else None
        if command not in ("LISTEN", "IGNORE") or not isinstance(path, str):
            self._refuse(client, 'not {"COMMAND": "LISTEN" or "IGNORE", "DATA": "/an/address"}')
        elif command == "IGNORE":
            self.ignore(client, path)
        elif not self.listen(client, path):
            self._refuse(client, f"no readable address {path[:200]}")

    def _refuse(self, client: ListenClient, why: str) -> None:
        self.refused += 1
        log.debug("OSCQuery listener %s: message refused: %s", client.peer, why)


class _Missing:
    pass


_NONE: Any = _Missing()


async def _flush(protocol: ServerProtocol, writer: asyncio.StreamWriter) -> bool:
    """Write what the protocol has to send; False once the connection is over (EOF sent, or it is closing)."""
    for chunk in protocol.data_to_send():
        if writer.transport.is_closing():
            return False
        if chunk:
            writer.write(chunk)
        else:  # websockets' signal to end the TCP stream (after a close, or a failed handshake)
            with suppress(OSError):
                writer.write_eof()
            return False
    await writer.drain()
    return not writer.transport.is_closing()
