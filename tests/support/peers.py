"""Peers a test makes appear while an exhibit runs: an outside MQTT client that keeps every retained and
live message of a topic tree, a UDP listener (a DMX node, an OSC peer) that keeps the datagrams it
receives, and a camera that is plugged in (a named pipe fed with a live stream). All are for tests that
start the controller first and its peers later."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import aiomqtt
import cv2
import numpy as np


async def until(what: str, done: Callable[[], bool], timeout: float, seen: Callable[[], Any] = lambda: None) -> float:
    """Poll ``done()`` until true; the seconds it took. Fails with ``what`` and ``seen()`` after ``timeout``."""
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout:g} s; seen: {seen()}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


class TopicWatch:
    """An outside MQTT client keeping the latest payload of every topic under ``topic_filter``."""

    def __init__(self, port: int, topic_filter: str, identifier: str) -> None:
        self.port, self.topic_filter, self.identifier = port, topic_filter, identifier
        self.latest: dict[str, bytes] = {}
        self.history: list[tuple[str, bytes]] = []
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TopicWatch:
        self._client = aiomqtt.Client("127.0.0.1", self.port, identifier=self.identifier)
        await self._client.__aenter__()
        await self._client.subscribe(self.topic_filter, qos=1)
        self._reader = asyncio.create_task(self._read(self._client))
        return self

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = bytes(message.payload) if isinstance(message.payload, bytes | bytearray) else b""
            self.latest[message.topic.value] = payload
            self.history.append((message.topic.value, payload))

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._client is not None:
            await self._client.__aexit__(kind, error, trace)

    def text(self, topic: str) -> str | None:
        payload = self.latest.get(topic)
        return None if payload is None else payload.decode()

    def json(self, topic: str) -> dict[str, Any]:
        payload = self.latest.get(topic)
        return json.loads(payload) if payload else {}


class UdpPeer(asyncio.DatagramProtocol):
    """A UDP listener on loopback (an Art-Net node, an OSC peer) that keeps what it receives."""

    def __init__(self) -> None:
        self.datagrams: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.datagrams.append(data)

    @classmethod
    async def listen(cls, port: int) -> UdpPeer:
        loop = asyncio.get_running_loop()
        transport, peer = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", port))
        peer.transport = transport
        return peer

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class PipeCamera:
    """A camera plugged in while the exhibit runs: ``link`` appears (as udev makes ``/dev/v4l/by-id/...``
    appear) pointing at a named pipe that a thread feeds with a live YUV4MPEG stream of ``image`` (RGB) at
    ``fps``, for as long as the camera is plugged in; a reader that goes and comes back gets a new stream.
    OpenCV reads it as it reads a camera: frames at the camera's pace, never an end."""

    def __init__(self, link: Path, image: np.ndarray, fps: int = 15) -> None:
        height, width = image.shape[:2]
        self.link, self.fps = link, fps
        self.header = f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode()
        self.frame = b"FRAME\n" + cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), cv2.COLOR_BGR2YUV_I420).tobytes()
        self.pipe = link.parent / f".{link.name}.pipe"
        self.frames_sent = 0
        self.readers = 0
        """How many times a reader opened the camera."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def plug(self) -> PipeCamera:
        self.link.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(self.pipe)
        self.link.symlink_to(self.pipe)
        self._thread = threading.Thread(target=self._feed, name="pipe-camera", daemon=True)
        self._thread.start()
        return self

    def _feed(self) -> None:
        while not self._stop.is_set():
            try:
                fd = os.open(self.pipe, os.O_WRONLY | os.O_NONBLOCK)  # no reader yet: ENXIO, try again soon
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                self._stop.wait(0.05)
                continue
            os.set_blocking(fd, True)  # a frame is more than a pipe takes at once: written whole
            self.readers += 1
            try:
                os.write(fd, self.header)
                while not self._stop.is_set():
                    os.write(fd, self.frame)
                    self.frames_sent += 1
                    self._stop.wait(1.0 / self.fps)
            except BrokenPipeError:
                pass  # the reader went: wait for the next one
            finally:
                os.close(fd)

    def close(self) -> None:
        """Unplug: the stream stops and the path goes."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.link.unlink(missing_ok=True)
        self.pipe.unlink(missing_ok=True)
