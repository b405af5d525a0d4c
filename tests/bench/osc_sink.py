"""An OSC receiver for the ingest-rate search, in its own process as the engine would be.

    python -m tests.bench.osc_sink --kind engine|baseline --port UDPPORT --rcvbuf BYTES

``engine``: the real ``OscSensor`` (its own UDP socket, ``open()`` and ``run()``)
setting one float signal in a ``SignalStore``, with a subscriber counting sets.
``baseline``: python-osc's ``AsyncIOOSCUDPServer`` whose ``Dispatcher`` maps the
same address to an empty handler counting calls. Both ask for the same socket
receive buffer. Prints ``ready`` once listening, then answers one line per line
on stdin: ``count`` (messages handled so far) or ``rcvbuf`` (SO_RCVBUF as the
kernel reports it); ``quit`` or the end of stdin stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Literal

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import AsyncIOOSCUDPServer

from engine.clock import MonotonicClock
from engine.drivers import DriverContext, Resources
from engine.signals import SignalStore
from sensors.osc.inputs import OscSensor, OscSensorConfig
from tests.bench.sender import ADDRESS

HOST = "127.0.0.1"
SENSOR = "probe_in"

Kind = Literal["engine", "baseline"]
Closer = Callable[[], Awaitable[None]]


class Counter:
    """The whole of the "empty handler": one increment per message, the same in both receivers."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_: object) -> None:
        self.count += 1


async def open_engine(port: int, rcvbuf: int, counter: Counter) -> tuple[socket.socket, Closer]:
    """An ``OscSensor`` as the runtime builds it (cf. tests/test_osc_sensor.py), health task included."""
    config = OscSensorConfig.model_validate(
        {
            "kind": "osc",
            "host": HOST,
            "port": port,
            "receive_buffer": rcvbuf,
            "signals": {"seq": {"address": ADDRESS, "type": "float"}},
        }
    )
    clock = MonotonicClock()
    store = SignalStore(clock)
    for name, kind in config.signal_types().items():
        store.declare(f"{SENSOR}.{name}", kind)
    store.subscribe(f"{SENSOR}.seq", counter)
    sensor = OscSensor(SENSOR, config, DriverContext("bench", store, clock, Resources()))
    await sensor.open()
    task = asyncio.create_task(sensor.run(), name="bench-osc-sensor")
    assert sensor._transport is not None  # no public accessor; the sensor's tests read it the same way
    sock: socket.socket = sensor._transport.get_extra_info("socket")

    async def close() -> None:
        await sensor.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return sock, close


async def open_baseline(port: int, rcvbuf: int, counter: Counter) -> tuple[socket.socket, Closer]:
    """python-osc's own asyncio server, given the buffer the sensor asks for."""
    dispatcher = Dispatcher()
    dispatcher.map(ADDRESS, counter)
    server = AsyncIOOSCUDPServer((HOST, port), dispatcher, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport, _ = await server.create_serve_endpoint()
    sock: socket.socket = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)

    async def close() -> None:
        transport.close()

    return sock, close


async def answer(counter: Counter, sock: socket.socket) -> None:
    """Answer the parent's queries on the loop itself (no thread to take the GIL) until told to stop."""
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[None] = loop.create_future()
    fd = sys.stdin.fileno()
    pending = bytearray()

    def on_input() -> None:
        chunk = os.read(fd, 4096)
        done = not chunk  # the parent closed our stdin (or is gone)
        pending.extend(chunk)
        while (end := pending.find(b"\n")) >= 0:
            request = pending[:end].decode().strip()
            del pending[: end + 1]
            if request == "count":
                print(counter.count, flush=True)
            elif request == "rcvbuf":
                print(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), flush=True)
            else:
                done = done or request == "quit"
        if done and not stopped.done():
            stopped.set_result(None)

    loop.add_reader(fd, on_input)
    try:
        await stopped
    finally:
        loop.remove_reader(fd)


async def serve(kind: Kind, port: int, rcvbuf: int) -> None:
    counter = Counter()
    opener = open_engine if kind == "engine" else open_baseline
    sock, close = await opener(port, rcvbuf, counter)
    print("ready", flush=True)
    try:
        await answer(counter, sock)
    finally:
        await close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=["engine", "baseline"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rcvbuf", type=int, required=True, help="SO_RCVBUF to ask for, in bytes")
    args = parser.parse_args()
    asyncio.run(serve(args.kind, args.port, args.rcvbuf))


if __name__ == "__main__":
    main()
