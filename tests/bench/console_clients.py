"""Console WebSocket clients watching live plots, as tablets in a gallery would: a child process of the console bench.

    python console_clients.py --url WSURL --token TOKEN --clients 20 --signals a.b,c.d

Each client opens the console's WebSocket with the API token, waits for ``hello``, sends
``{"op": "watch", "signals": [...]}`` and reads every message, parsing its JSON as a page would. Prints ``ready``
once every client has a first value of every signal it watches. A line on stdin (or its end) closes them; it
then prints one JSON line, ``{"messages", "events", "fewest", "seconds", "cpu_s"}``: WebSocket messages and the
events in them received by all clients since ``ready``, the fewest events one client got, the seconds since
``ready`` and this process's CPU seconds over them, and exits.

The clients stand in for tablets, which are other machines: here they share the engine's two cores with the
broker and the OSC bench's processes, so they cost this machine as little as a client can. They are plain
sockets (RFC 6455 framing by hand, no event-loop machinery per message), the process runs at the lowest CPU
priority (``nice 19``), and once ready it reads every socket every ``POLL_S`` (a page's frame) instead of
waking for each message: 20 wake-ups per tick would compete with the control path's processes for a core,
which tablets elsewhere never do. The engine's own side of serving them (the events, the sends, the kernel's
delivery on loopback) is all counted.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import selectors
import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

READY_S = 20.0
POLL_S = 0.02
"""Once ready, the clients read what arrived this often."""


class Watcher:
    """One WebSocket client on a non-blocking socket."""

    def __init__(self, sock: socket.socket, signals: list[str]) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.waiting = {f"signal/{name}" for name in signals}
        self.messages = 0
        self.events = 0

    def receive(self) -> None:
        """Everything that arrived, every whole frame of it taken."""
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                break
            if not data:
                raise RuntimeError("the console closed a WebSocket")
            self.buffer += data
        while (frame := next_frame(self.buffer)) is not None:
            opcode, payload = frame
            if opcode == 0x1:
                self.take(json.loads(payload))
            elif opcode == 0x9:  # the server's heartbeat
                self.sock.sendall(masked(0xA, payload))
            elif opcode == 0x8:
                raise RuntimeError(f"the console closed a WebSocket: {payload[2:].decode(errors='replace')}")

    def take(self, payload: Any) -> None:
        events = payload if isinstance(payload, list) else [payload]
        self.messages += 1
        self.events += len(events)
        if self.waiting:
            for event in events:
                if isinstance(event, dict):
                    self.waiting.discard(str(event.get("topic")))


def next_frame(buffer: bytearray) -> tuple[int, bytes] | None:
    """The first whole frame in ``buffer`` (removed from it) as (opcode, payload); None until one is whole.
    Server frames are unmasked and, from the console, never fragmented."""
    if len(buffer) < 2:
        return None
    size, start = buffer[1] & 0x7F, 2
    if size == 126:
        if len(buffer) < 4:
            return None
        size, start = int.from_bytes(buffer[2:4], "big"), 4
    elif size == 127:
        if len(buffer) < 10:
            return None
        size, start = int.from_bytes(buffer[2:10], "big"), 10
    if len(buffer) < start + size:
        return None
    opcode, payload = buffer[0] & 0x0F, bytes(buffer[start : start + size])
    del buffer[: start + size]
    return opcode, payload


def masked(opcode: int, payload: bytes) -> bytes:
    """A client frame: final, masked (RFC 6455 requires it of clients)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + mask + bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


def connect(url: str, token: str) -> tuple[socket.socket, bytes]:
    """The opening handshake, blocking; returns the socket and whatever arrived after the response's head."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    sock = socket.create_connection((host, port), timeout=10.0)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    sock.sendall(request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("the console closed the connection during the WebSocket handshake")
        head += chunk
    head, rest = head.split(b"\r\n\r\n", 1)
    status = head.split(b"\r\n", 1)[0]
    if b" 101 " not in status + b" ":
        raise RuntimeError(f"the console refused the WebSocket: {status.decode(errors='replace')}")
    sock.setblocking(False)
    return sock, rest


def main(args: argparse.Namespace) -> None:
    os.nice(19)
    selector = selectors.DefaultSelector()
    watchers = []
    for _ in range(args.clients):
        sock, rest = connect(args.url, args.token)
        watcher = Watcher(sock, args.signals)
        watcher.buffer += rest
        sock.setblocking(True)
        sock.sendall(masked(0x1, json.dumps({"op": "watch", "signals": args.signals}).encode()))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, watcher)
        watchers.append(watcher)
    deadline = time.monotonic() + READY_S
    while any(watcher.waiting for watcher in watchers):
        if time.monotonic() > deadline:
            missing = sorted(set().union(*(watcher.waiting for watcher in watchers)))
            sys.exit(f"console_clients: not every client had {', '.join(missing)} within {READY_S:.0f} s")
        for key, _ in selector.select(timeout=0.5):
            key.data.receive()
    for watcher in watchers:
        watcher.messages = watcher.events = 0
    started, cpu = time.monotonic(), time.process_time()
    print("ready", flush=True)
    selector.close()
    stdin = selectors.DefaultSelector()
    stdin.register(sys.stdin, selectors.EVENT_READ)
    while not stdin.select(timeout=POLL_S):
        for watcher in watchers:
            watcher.receive()
    seconds, cpu_s = time.monotonic() - started, time.process_time() - cpu
    for watcher in watchers:
        watcher.sock.close()
    report = {
        "messages": sum(watcher.messages for watcher in watchers),
        "events": sum(watcher.events for watcher in watchers),
        "fewest": min(watcher.events for watcher in watchers),
        "seconds": seconds,
        "cpu_s": cpu_s,
    }
    print(json.dumps(report), flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="the console's WebSocket, http://HOST:PORT/api/v1/ws")
    parser.add_argument("--token", required=True, help="an API token (Authorization: Bearer)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--signals", type=lambda text: [s for s in text.split(",") if s], required=True)
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse())
