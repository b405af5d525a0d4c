"""Preview frames of the rendered scene (for the curator's studio page): data types and pure helpers.

The render process draws a preview into its own small offscreen buffer when, and only when, the host
asks (:meth:`content.render_host.RenderHost.want_preview`), encodes it as a JPEG and sends it over the
render socket. Nothing here imports Panda3D: the engine process loads this module.

Privacy: a preview never carries a camera pixel. The preview buffer has no display region for the AR
mirror's card at all, so the camera picture cannot reach it. The one exception is a *camera* stream,
which gets the mirror only when the exhibit opted in (``scene.mirror.preview_camera``) **and** the host
asked for it (the studio does so for a client on loopback only). Camera and non-camera streams are two
separate buffers and two separate kinds on the wire; a camera frame is never handed to a non-camera lease.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_RATE",
    "DEFAULT_WIDTH",
    "JPEG_QUALITY",
    "MAX_RATE",
    "PreviewClosed",
    "PreviewFrame",
    "PreviewImage",
    "PreviewLease",
    "PreviewPlan",
    "PreviewRequest",
    "PreviewWant",
    "encode_jpeg",
    "merge_wants",
    "preview_size",
]

DEFAULT_WIDTH = 640
DEFAULT_RATE = 5.0
MAX_RATE = 15.0
"""Most preview frames per second, per kind: a preview is a glance, not a second output."""
MIN_WIDTH = 16
JPEG_QUALITY = 70


@dataclass(frozen=True, slots=True)
class PreviewFrame:
    """One preview picture, as the host hands it out."""

    jpeg: bytes
    width: int
    height: int
    sequence: int
    """Counts up per kind for the host's life (across render process restarts)."""
    taken_at: float
    """``time.monotonic()`` in the render process when it was drawn (system-wide on Linux)."""


class PreviewClosed(Exception):
    """Waiting on a lease that was closed."""


@dataclass(eq=False)
class PreviewLease:
    """A wish for previews of one kind; :meth:`close` (idempotent) withdraws it. When the last lease of a
    kind closes, the render process stops drawing that kind."""

    camera: bool
    width: int
    rate: float
    _on_close: Callable[[PreviewLease], None] = field(repr=False)
    closed: bool = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._on_close(self)

    def __enter__(self) -> PreviewLease:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


# --- wire messages (host <-> render process) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreviewWant:
    """One kind of preview stream the host wants: width is the most asked, rate the fastest asked."""

    camera: bool
    width: int
    rate: float


@dataclass(frozen=True, slots=True)
class PreviewRequest:
    """Host -> worker: the previews wanted from now on (empty: none). Sent whole, so it is idempotent and a
    restarted worker is brought up to date with one message."""

    wants: tuple[PreviewWant, ...] = ()


@dataclass(frozen=True, slots=True)
class PreviewImage:
    """Worker -> host: one encoded preview of kind ``camera``."""

    camera: bool
    jpeg: bytes
    width: int
    height: int
    taken_at: float


# --- pure helpers ----------------------------------------------------------------------------------


def check_want(width: int, rate: float) -> tuple[int, float]:
    """A request's width and rate, made safe: width at least 16, rate in (0, 15]."""
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"preview rate must be positive, not {rate}")
    if width < MIN_WIDTH:
        raise ValueError(f"preview width must be at least {MIN_WIDTH}, not {width}")
    return int(width), min(float(rate), MAX_RATE)


def merge_wants(leases: list[PreviewLease]) -> tuple[PreviewWant, ...]:
    """The streams to ask the worker for: per kind, the widest and fastest of its open leases."""
    wants: list[PreviewWant] = []
    for camera in (False, True):
        mine = [lease for lease in leases if lease.camera == camera and not lease.closed]
        if mine:
            wants.append(PreviewWant(camera, max(m.width for m in mine), max(m.rate for m in mine)))
    return tuple(wants)


def preview_size(size: tuple[int, int], max_width: int) -> tuple[int, int]:
    """The picture ``size`` scaled to fit ``max_width`` (never up), keeping its aspect."""
    width, height = max(size[0], 1), max(size[1], 1)
    fitted = max(1, min(int(max_width), width))
    return fitted, max(1, round(height * fitted / width))


def encode_jpeg(picture: npt.NDArray[np.uint8], quality: int = JPEG_QUALITY) -> bytes:
    """An (h, w, 3) RGB picture as JPEG bytes."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture), "RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


class PreviewPlan:
    """The render process's schedule: which kinds of preview are due at a moment.

    A kind is due once ``1 / rate`` has passed since its last preview was sent. A due kind stays due until
    one is sent (a new buffer's first picture may be skipped), and a late one is not caught up on."""

    def __init__(self) -> None:
        self.wants: dict[bool, PreviewWant] = {}
        self._next: dict[bool, float] = {}

    def set(self, wants: tuple[PreviewWant, ...], now: float) -> None:
        new = {want.camera: want for want in wants}
        for camera in new:
            if camera not in self.wants:
                self._next[camera] = now  # a new stream starts at once
        for camera in list(self._next):
            if camera not in new:
                del self._next[camera]
        self.wants = new

    def due(self, now: float) -> list[PreviewWant]:
        return [want for camera, want in self.wants.items() if now >= self._next[camera]]

    def sent(self, camera: bool, now: float) -> None:
        want = self.wants.get(camera)
        if want is not None:
            # Pace from the schedule, but never burst to catch up after a slow spell.
            period = 1.0 / want.rate
            due = self._next[camera] + period
            self._next[camera] = due if due > now else now + period

    def __bool__(self) -> bool:
        return bool(self.wants)
