"""The AR mirror's camera picture: a latest-frame channel in shared memory, engine -> render process.

A camera cannot be opened twice, so the render process shows the frames the pose sensor already
reads. The pose sensor (engine process) writes each frame it reads through a :class:`FrameWriter`;
the renderer reads the newest one with a :class:`FrameReader`. One writer, one reader, latest wins:
nothing queues, a reader that is slow simply skips frames.

Privacy: camera images are never kept, and the mirror is the one opt-in path by which
a camera image leaves the inference worker, and only as far as the exhibit's own screen. Frames
live in a POSIX shared-memory segment (``/dev/shm``: RAM, never a disk), created with mode 0600 by
the engine's user, under a random name. Nothing here writes a file, opens a socket, logs pixels or
pickles a frame: only the segment's *name* crosses to the render process. The writer zero-fills
the segment and unlinks it when the exhibit stops.

Layout: a header (magic, the latest sequence number) and two slots (double buffer). Each slot
starts with ``begin`` and ``end`` sequence numbers, the frame's width, height and capture time,
then the pixels. The writer fills the slot the reader is *not* pointed at: ``begin = n``, pixels,
``end = n``, then publishes ``latest = n``. The reader copies slot ``latest % 2`` and accepts the
copy only if ``begin == end == n`` afterwards, so it never returns a torn frame (a seqlock over a
double buffer: with one writer at camera rate, a retry is rare and bounded).

This module imports numpy only (cv2 lazily, to downscale): the engine process loads it, and it
must never pull in Panda3D.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import struct
import threading
import time
from multiprocessing import shared_memory

import numpy as np
import numpy.typing as npt

log = logging.getLogger("content.mirror")

__all__ = ["MAX_SIZE", "FrameReader", "FrameWriter", "MirrorFrame"]

CameraPicture = npt.NDArray[np.uint8]
"""An RGB frame, shape (height, width, 3), top row first."""

MAX_SIZE = (1280, 720)
"""Largest frame kept (width, height); larger frames are scaled down to fit, keeping their aspect."""

_MAGIC = 0x4D49524F  # "MIRO"
_TOP = struct.Struct("=IIQ")  # magic, reserved, latest sequence number
_SLOT = struct.Struct("=QQIId")  # begin, end, width, height, capture time (time.monotonic, system-wide)
_RETRIES = 8


def _slot_bytes(size: tuple[int, int]) -> int:
    return _SLOT.size + size[0] * size[1] * 3


def _fit(width: int, height: int, limit: tuple[int, int]) -> tuple[int, int]:
    """The largest size within ``limit`` with the frame's aspect (the frame's own size if it fits)."""
    scale = min(limit[0] / width, limit[1] / height, 1.0)
    return max(1, int(width * scale)), max(1, int(height * scale))


class MirrorFrame:
    """A frame as the reader got it: pixels (a private copy), sequence number and capture time."""

    __slots__ = ("captured", "image", "seq")

    def __init__(self, image: CameraPicture, seq: int, captured: float) -> None:
        self.image, self.seq, self.captured = image, seq, captured


class FrameWriter:
    """Creates the segment and writes frames into it (engine process; any thread).

    ``write`` is called on the camera or inference thread for every frame read; it copies the
    frame (scaled down to ``max_size`` if larger) and never blocks on the reader."""

    def __init__(self, max_size: tuple[int, int] = MAX_SIZE, *, name: str | None = None) -> None:
        self.max_size = max_size
        self.name = name or f"exhibit-mirror-{secrets.token_hex(8)}"
        slot = _slot_bytes(max_size)
        self._shm = shared_memory.SharedMemory(self.name, create=True, size=_TOP.size + 2 * slot)
        buf = self._shm.buf
        assert buf is not None
        self._top = np.frombuffer(buf, dtype=np.uint8, count=_TOP.size)
        self._slots = [np.frombuffer(buf, dtype=np.uint8, count=slot, offset=_TOP.size + i * slot) for i in (0, 1)]
        _TOP.pack_into(self._top.data, 0, _MAGIC, 0, 0)
        self._lock = threading.Lock()  # write() runs on sensor threads, close() on the loop
        self.seq = 0
        self.closed = False

    def write(self, image: CameraPicture, captured: float | None = None) -> None:
        """Publish ``image`` (RGB, (h, w, 3) uint8) as the newest frame."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"a mirror frame is (h, w, 3) uint8 RGB, not {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        fitted = _fit(width, height, self.max_size)
        if fitted != (width, height):
            import cv2  # only when a frame is larger than the segment holds

            image = np.asarray(cv2.resize(image, fitted, interpolation=cv2.INTER_AREA), dtype=np.uint8)
            width, height = fitted
        stamp = time.monotonic() if captured is None else captured
        with self._lock:
            if self.closed:
                return  # the exhibit is stopping: a late frame from a sensor thread goes nowhere
            n = self.seq + 1
            slot = self._slots[n % 2]
            struct.pack_into("=Q", slot.data, 0, n)  # begin: a reader copying this slot now will see it changed
            pixels = slot[_SLOT.size : _SLOT.size + width * height * 3]
            pixels[:] = np.ascontiguousarray(image).reshape(-1)
            _SLOT.pack_into(slot.data, 0, n, n, width, height, stamp)
            struct.pack_into("=Q", self._top.data, 8, n)
            self.seq = n

    def close(self) -> None:
        """Wipe the pixels and remove the segment (safe to call twice)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            # Defence in depth: a mapping still open elsewhere sees no picture. (No loop variable:
            # a leftover view of the segment would keep it from being closed.)
            self._slots[0].fill(0)
            self._slots[1].fill(0)
            del self._top, self._slots
            self._shm.close()
            with contextlib.suppress(FileNotFoundError):
                self._shm.unlink()

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class FrameReader:
    """Attaches to a writer's segment by name (render process) and copies out the newest frame."""

    def __init__(self, name: str, max_size: tuple[int, int] = MAX_SIZE) -> None:
        self.name = name
        self._shm = shared_memory.SharedMemory(name, create=False)
        buf = self._shm.buf
        assert buf is not None
        slot = _slot_bytes(max_size)
        if len(buf) < _TOP.size + 2 * slot:
            self._shm.close()
            raise ValueError(f"shared memory `{name}` is smaller than a {max_size[0]}x{max_size[1]} mirror")
        self._top = np.frombuffer(buf, dtype=np.uint8, count=_TOP.size)
        self._slots = [np.frombuffer(buf, dtype=np.uint8, count=slot, offset=_TOP.size + i * slot) for i in (0, 1)]
        magic = _TOP.unpack_from(self._top.data, 0)[0]
        if magic != _MAGIC:
            self.close()
            raise ValueError(f"shared memory `{name}` is not a mirror frame channel")
        self.torn = 0
        """Copies thrown away because the writer overwrote the slot meanwhile (then retried)."""

    @property
    def seq(self) -> int:
        """The newest frame's sequence number (0: nothing written yet); cheap, for polling."""
        return int(_TOP.unpack_from(self._top.data, 0)[2])

    def read(self) -> MirrorFrame | None:
        """The newest whole frame as a private copy, or None if none was written (or none could be
        copied whole in a few tries, which needs a writer far faster than any camera)."""
        for _ in range(_RETRIES):
            n = self.seq
            if n == 0:
                return None
            slot = self._slots[n % 2]
            begin, end, width, height, captured = _SLOT.unpack_from(slot.data, 0)
            if begin != n or end != n:
                self.torn += 1
                continue  # the writer has already moved on to this slot again
            size = width * height * 3
            out = slot[_SLOT.size : _SLOT.size + size].copy()
            begin_after, end_after = struct.unpack_from("=QQ", slot.data, 0)
            if begin_after == n and end_after == n:
                return MirrorFrame(out.reshape(height, width, 3), n, captured)
            self.torn += 1
        return None

    def latest(self) -> CameraPicture | None:
        """The newest whole frame's pixels (a private copy), or None."""
        frame = self.read()
        return None if frame is None else frame.image

    def close(self) -> None:
        with contextlib.suppress(AttributeError):
            del self._top, self._slots
        with contextlib.suppress(BufferError):
            self._shm.close()

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
