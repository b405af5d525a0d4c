"""Where frames come from: a camera, a video file (looping, for rehearsals), or a
simulated camera with scriptable faults. ``read()`` is called on the inference
worker thread; it blocks until a frame is there and raises :class:`SourceLost`
when the source goes away, so the sensor can reopen it with back-off.

Frames are latest-wins: a camera is drained by its own thread into a one-frame
slot (a frame overwritten before inference took it is counted as dropped), and
a real-time video file skips the frames it is late for.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from engine.drivers import FrameTap
from sensors.pose.inference import Image

log = logging.getLogger("sensors.pose.sources")


class SourceLost(Exception):
    """The camera or file is gone or stalled; the sensor reopens it with back-off."""


class SourceEnded(SourceLost):
    """A video that does not loop has played to its end: there is nothing to reopen."""


@dataclass(frozen=True, slots=True)
class Captured:
    image: Image
    timestamp: float
    """Capture time on the monotonic clock."""
    index: int


class FrameSource(ABC):
    description: str = "source"

    def __init__(self) -> None:
        self.dropped = 0
        self.tap: FrameTap | None = None
        """Where every frame read goes as well (the AR mirror), set by the sensor; None: nowhere."""
        self._tap_failed = False

    def _to_tap(self, image: Image) -> None:
        """Hand a frame to the tap, if any, as soon as it is read: the mirror's picture keeps the
        camera's rate, not the model's. A failing tap is logged once and never stops tracking."""
        tap = self.tap
        if tap is None:
            return
        try:
            tap(image)
        except Exception as exc:
            if not self._tap_failed:
                self._tap_failed = True
                log.warning(
                    "%s: the mirror tap failed (%s: %s); tracking goes on", self.description, type(exc).__name__, exc
                )

    @abstractmethod
    def open(self) -> None:
        """Open the device or file; raise :class:`SourceLost` if it is not there."""

    @abstractmethod
    def read(self) -> Captured:
        """The next frame; blocks until it arrives; raises :class:`SourceLost`."""

    def close(self) -> None:  # noqa: B027 - sources without resources need nothing
        """Release the device or file."""


def _rgb(bgr: np.ndarray, size: tuple[int, int] | None) -> Image:
    if size is not None and (bgr.shape[1], bgr.shape[0]) != size:
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def camera_present(device: int | str) -> bool:
    """Whether a camera can be there at all (``/dev/videoN`` or the path exists)."""
    if isinstance(device, int):
        return sys.platform != "linux" or os.path.exists(f"/dev/video{device}")
    return os.path.exists(device)


def camera_backend(device: int | str) -> int:
    """OpenCV's reader for a camera: V4L2 for an index or a device node on Linux; for a path to
    anything else (a named pipe another program feeds with a live stream), OpenCV's own choice."""
    if sys.platform != "linux":
        return cv2.CAP_ANY
    try:
        node = isinstance(device, int) or stat.S_ISCHR(os.stat(device).st_mode)
    except OSError:
        node = True  # gone again: V4L2 says it cannot open it
    return cv2.CAP_V4L2 if node else cv2.CAP_ANY


class VideoFileSource(FrameSource):
    def __init__(
        self, path: Path, *, loop: bool = True, realtime: bool = True, size: tuple[int, int] | None = None
    ) -> None:
        super().__init__()
        self.path, self.loop, self.realtime, self.size = path, loop, realtime, size
        self.description = f"video {path.name}"
        self._capture: cv2.VideoCapture | None = None
        self._index = 0
        self._started = 0.0
        self._fps = 30.0

    def open(self) -> None:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise SourceLost(f"cannot open the video file {self.path}")
        self._capture = capture
        self._fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
        self._index = 0
        self._started = 0.0  # set by the first read, so loading the model does not count as lateness

    def read(self) -> Captured:
        capture = self._capture
        if capture is None:
            raise SourceLost("the video file is not open")
        if self._index == 0 and self._started == 0.0:
            self._started = time.monotonic()
        if self.realtime:
            self._keep_pace(capture)
        ok, bgr = capture.read()
        if not ok:
            if self._index == 0:
                raise SourceLost(f"the video file {self.path.name} has no frames")
            if not self.loop:
                raise SourceEnded(f"the video file {self.path.name} has played to its end")
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = capture.read()
            if not ok:
                raise SourceLost(f"the video file {self.path.name} cannot be read again")
        # Unpaced (recording, benchmarks): the frame's own time in the video, so a recording
        # made from it replays at the speed the video plays.
        stamp = time.monotonic() if self.realtime else self._started + self._index / self._fps
        frame = Captured(_rgb(bgr, self.size), stamp, self._index)
        self._to_tap(frame.image)
        self._index += 1
        return frame

    def _keep_pace(self, capture: cv2.VideoCapture) -> None:
        """Wait for this frame's time; skip frames we are already late for (latest wins)."""
        due = self._started + self._index / self._fps
        late = time.monotonic() - due
        if late < 0:
            time.sleep(-late)
            return
        skip = int(late * self._fps)
        for _ in range(skip):
            if not capture.grab():
                break
            self._index += 1
            self.dropped += 1

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class CameraSource(FrameSource):
    """A V4L2/USB camera, drained by its own thread so inference always gets the newest frame."""

    def __init__(
        self, device: int | str, *, size: tuple[int, int] = (640, 480), fps: int = 30, stall_timeout: float = 2.0
    ) -> None:
        super().__init__()
        self.device, self.size, self.fps, self.stall_timeout = device, size, fps, stall_timeout
        self.description = f"camera {device}"
        self._capture: cv2.VideoCapture | None = None
        self._slot: Captured | None = None
        self._lost: str | None = None
        self._ready = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None
        self._index = 0

    def open(self) -> None:
        if not camera_present(self.device):
            raise SourceLost(f"no camera at {self.device!r}")
        capture = cv2.VideoCapture(self.device, camera_backend(self.device))
        if not capture.isOpened():
            raise SourceLost(f"camera {self.device!r} cannot be opened")
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        capture.set(cv2.CAP_PROP_FPS, self.fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._capture, self._lost, self._slot, self._running = capture, None, None, True
        self._thread = threading.Thread(target=self._drain, name=f"camera-{self.device}", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        assert self._capture is not None
        while self._running:
            ok, bgr = self._capture.read()
            with self._ready:
                if not ok:
                    self._lost = f"camera {self.device!r} stopped delivering frames"
                    self._ready.notify_all()
                    return
                if self._slot is not None:
                    self.dropped += 1
                self._slot = Captured(_rgb(bgr, self.size), time.monotonic(), self._index)
                self._index += 1
                self._ready.notify_all()
                image = self._slot.image
            # Outside the lock: the tap copies the frame, inference need not wait for it.
            self._to_tap(image)

    def read(self) -> Captured:
        with self._ready:
            if not self._ready.wait_for(
                lambda: self._slot is not None or self._lost is not None, timeout=self.stall_timeout
            ):
                raise SourceLost(f"camera {self.device!r} sent no frame for {self.stall_timeout:.0f} s")
            if self._slot is None:
                raise SourceLost(self._lost or "camera lost")
            frame, self._slot = self._slot, None
            return frame

    def close(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._capture is not None:
            self._capture.release()
            self._capture = None


CameraFault = Literal["disconnect", "stall", "garbage", "slow", "clear"]


class SimulatedCamera(FrameSource):
    """Behaves like a camera that can be unplugged: frames from a list, played at ``fps``.

    Faults: ``disconnect`` (open and read fail, as when the USB cable is pulled),
    ``stall`` (no frames; ``read`` times out like a frozen driver), ``garbage``
    (noise frames), ``slow`` (a quarter of the frame rate), ``clear``.
    """

    def __init__(self, frames: list[Image], *, fps: float = 30.0, stall_timeout: float = 0.5) -> None:
        super().__init__()
        self.frames, self.fps, self.stall_timeout = frames, fps, stall_timeout
        self.description = "simulated camera"
        self.fault: CameraFault = "clear"
        self.opened = 0
        self._index = 0
        self._rng = np.random.default_rng(0)

    def inject(self, fault: CameraFault) -> None:
        self.fault = fault

    def open(self) -> None:
        if self.fault == "disconnect":
            raise SourceLost("simulated camera is unplugged")
        self.opened += 1

    def read(self) -> Captured:
        if self.fault == "disconnect":
            raise SourceLost("simulated camera was unplugged")
        if self.fault == "stall":
            time.sleep(self.stall_timeout)
            raise SourceLost(f"simulated camera sent no frame for {self.stall_timeout} s")
        time.sleep(1.0 / (self.fps / 4 if self.fault == "slow" else self.fps))
        image = self.frames[self._index % len(self.frames)]
        if self.fault == "garbage":
            image = self._rng.integers(0, 256, image.shape, dtype=np.uint8)
        frame = Captured(image, time.monotonic(), self._index)
        self._to_tap(image)
        self._index += 1
        return frame
