"""Camera frames never leave memory: the whole pose path runs on a real video, into a
real Mosquitto, while every file opened for writing and every MQTT message is watched
for image bytes."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import aiomqtt
import numpy as np

from engine.runtime import RuntimeOptions
from engine.validate import validate_text
from launcher import build_registry, build_runtime
from sensors.pose.driver import PoseSensor
from tests.frames import walking, write_video

EXHIBIT = """\
format_version: 1
id: privacy
title: {en: Privacy}
sensors:
  body:
    kind: pose
    source: {video: visit.avi, realtime: false}
    num_poses: 2
devices:
  lanterns:
    kind: mqtt
    properties:
      brightness: {type: int, range: [0, 255], safe: 0}
      hue: {range: [0, 360], safe: 30}
mappings:
  - {from: body.nearest.hands_raised, to: lanterns.brightness}
  - {from: body.nearest.x, to: lanterns.hue, input: [0, 1], output: [0, 360]}
"""

_WATCHING: list[str] = []
_ACTIVE = [False]
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _audit(event: str, args: tuple) -> None:
    # Audit hooks cannot be removed, so this one only records while a test has it switched on.
    if not _ACTIVE[0] or event != "open":
        return
    path, mode, flags = args
    writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
        isinstance(flags, int) and flags & _WRITE_FLAGS
    )
    if writing and isinstance(path, str | bytes | os.PathLike):
        _WATCHING.append(os.fsdecode(path))


sys.addaudithook(_audit)


def image_windows(frames: list[np.ndarray], count: int = 400, size: int = 24) -> list[bytes]:
    """Byte runs taken from the frames' textured parts (not the flat background)."""
    rng = np.random.default_rng(0)
    windows: list[bytes] = []
    while len(windows) < count:
        frame = frames[rng.integers(len(frames))].tobytes()
        start = int(rng.integers(0, len(frame) - size))
        chunk = frame[start : start + size]
        if len(set(chunk)) > 8:
            windows.append(chunk)
    return windows


def leaks(blob: bytes, windows: list[bytes]) -> bool:
    magic = (b"\x89PNG", b"\xff\xd8\xff", b"RIFF", b"MJPG")
    return any(m in blob for m in magic) or any(w in blob for w in windows)


def test_the_leak_detector_itself_finds_a_leaked_frame():
    frames = walking(3)
    windows = image_windows(frames)
    assert leaks(b"prefix" + frames[1][200:260].tobytes() + b"suffix", windows)  # raw rows of a frame
    assert leaks(b"\xff\xd8\xff\xe0 a JPEG", windows)
    assert not leaks(b'{"brightness": 128, "hue": 30.0}', windows)


async def test_no_image_is_written_logged_or_published(tmp_path: Path, mosquitto, caplog):
    frames = walking(40)
    write_video(tmp_path / "visit.avi", frames)
    windows = image_windows(frames)
    registry = build_registry()
    exhibit = validate_text(EXHIBIT, str(tmp_path / "exhibit.yaml"), registry)
    runtime, _link = build_runtime(exhibit, registry, "127.0.0.1", mosquitto.port, RuntimeOptions(base_dir=tmp_path))

    payloads: list[bytes] = []
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="privacy-watch") as watch:
        await watch.subscribe("#", qos=1)

        async def collect() -> None:
            async for message in watch.messages:
                payloads.append(bytes(message.payload))

        collector = asyncio.create_task(collect())
        _WATCHING.clear()
        _ACTIVE[0] = True
        try:
            await runtime.start()
            sensor = runtime.sensors["body"]
            assert isinstance(sensor, PoseSensor)
            deadline = time.monotonic() + 30
            while sensor.frames < 60:  # the 40-frame video, looped
                assert time.monotonic() < deadline, "the pose pipeline did not run"
                await asyncio.sleep(0.05)
            await runtime.stop()
        finally:
            _ACTIVE[0] = False
        await asyncio.sleep(0.3)
        collector.cancel()

    assert runtime.store.get("body.count").value == 1  # the visitor was really seen
    assert len(payloads) > 20
    written = [p for p in _WATCHING if not p.startswith(("/proc", "/dev/null"))]
    assert written == [], f"files were opened for writing while a camera ran: {written}"
    assert not any(leaks(p, windows) for p in payloads)
    assert max(len(p) for p in payloads) < 1024
    assert not leaks(caplog.text.encode(), windows)


def test_the_file_watch_sees_writes(tmp_path: Path):
    _WATCHING.clear()
    _ACTIVE[0] = True
    try:
        (tmp_path / "frame.raw").write_bytes(b"\x00" * 16)
    finally:
        _ACTIVE[0] = False
    assert str(tmp_path / "frame.raw") in _WATCHING
