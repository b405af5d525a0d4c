"""The render process: builds the scene renderer and draws the latest snapshot it was sent.

Runs in its own process (started by :class:`content.render_host.RenderHost` with the ``spawn``
start method), so a slow frame, a GL driver hang or a crash never touches the engine's loop.
It talks to the host over one socket with length-prefixed pickles (see :func:`encode` and
:class:`MessageReader`): snapshots, preview requests and a stop request come in; ``Ready``,
``Heartbeat``, ``PreviewImage`` and ``Failed`` go out. Heartbeats (about 2 Hz) carry frame statistics;
their absence is how the host notices a hang.

Previews (:mod:`content.preview`): while the host wants them, the frame drawn when one is due also
draws a small preview buffer; its picture is read back at once and JPEG-encoded and sent by an encoder
thread, so drawing never waits on it. None is drawn while none is wanted.

Nothing here reads the signal store. Camera images reach the renderer only in AR mirror mode, and
never through this socket: the worker attaches to the pose sensor's shared-memory frame channel by
name (:mod:`content.mirror`); snapshots carry landmarks, never pixels.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from content.preview import PreviewImage, PreviewPlan, PreviewRequest, encode_jpeg
from content.snapshot import SceneSnapshot
from engine.catalogue import Catalogue
from engine.logs import setup_child_logging

SMALL_MACHINE_CORES = 4
"""Up to this many cores, software GL draws on one thread (LP_NUM_THREADS=1)."""
RENDER_NICENESS = 19
"""Where SCHED_IDLE is missing: the lowest ordinary priority (Unix nice)."""


def yield_cpu_to_control() -> None:
    """Give the render process the CPU only when the control process does not want it.

    When the machine is busy a late frame is better than a late command. Linux's SCHED_IDLE does
    exactly that (a waking engine preempts the renderer at once; nice alone still shares the CPU and
    cost the control path 4 ms at p99 with software GL on two cores). Called before GL starts its
    threads, which inherit it. Elsewhere: the lowest nice; where neither exists, nothing changes."""
    if (os.cpu_count() or 1) <= SMALL_MACHINE_CORES:
        # Mesa's software rasteriser (llvmpipe, CI and machines without a GPU) takes a thread per core;
        # on a small machine one is enough for the picture and leaves the others to sensors and devices.
        os.environ.setdefault("LP_NUM_THREADS", "1")
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError):
        pass
    with contextlib.suppress(AttributeError, OSError):
        os.nice(RENDER_NICENESS)


log = logging.getLogger("content.render_worker")

_HEADER = struct.Struct("!I")
MAX_MESSAGE = 64 * 1024 * 1024
"""A larger length prefix means a corrupt stream, not a big snapshot."""


# --- wire protocol ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stop:
    """Host -> worker: close the renderer and exit."""


@dataclass(frozen=True, slots=True)
class Ready:
    """Worker -> host: the renderer is built; heartbeats follow."""

    pid: int
    startup_s: float


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Worker -> host, about twice a second, whether or not frames were drawn."""

    frames: int
    """Frames drawn since the worker started."""
    fps: float
    """Frames per second over the last heartbeat interval."""
    frame_p99_ms: float
    """99th percentile of the time spent drawing a frame, over the last few seconds."""
    frame_mean_ms: float
    dropped: int
    """Snapshots superseded in the pipe before they were drawn (latest wins), since start."""
    mirror_frames: int = 0
    """AR mirror: camera frames shown as the picture since start (0 without a mirror)."""
    previews: int = 0
    """Preview frames sent since start."""
    preview_ms: float = 0.0
    """Mean cost of a preview (read back, JPEG-encode, send) over the last heartbeat interval; drawing excluded."""


@dataclass(frozen=True, slots=True)
class Failed:
    """Worker -> host: the renderer could not be built or raised while drawing; the worker exits."""

    error: str


WorkerMessage = Ready | Heartbeat | PreviewImage | Failed


def encode(message: object) -> bytes:
    """One message as it goes on the wire: a 4-byte big-endian length, then a pickle."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


class MessageReader:
    """Splits a byte stream back into messages; feed it whatever arrived, in any chunking."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[object]:
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size > MAX_MESSAGE:
                raise ValueError(f"render pipe: message of {size} bytes; stream corrupt")
            end = _HEADER.size + size
            if len(self._buffer) < end:
                return
            body = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            # Both ends are our own processes; the pipe is a private socketpair.
            yield pickle.loads(body)


# --- configuration ---------------------------------------------------------------------------


class Renderer(Protocol):
    """What the worker needs of a renderer (``content.renderer.SceneRenderer`` fits)."""

    def frame(self, snapshot: SceneSnapshot) -> None: ...

    def close(self) -> None: ...


RendererFactory = Callable[["WorkerConfig"], Renderer]
"""``(the worker's config) -> renderer``; must be a module-level callable, because the ``spawn`` start
method sends it to the child by its import path."""


@dataclass(frozen=True, slots=True)
class RenderFault:
    """A fault to inject, for tests and rehearsals: after ``after_frames`` frames the worker
    crashes (``os._exit``) or hangs (stops heartbeating, ignores SIGTERM). It applies to the first
    ``launches`` launches of the worker, so a restarted worker runs normally."""

    kind: Literal["crash", "hang"]
    after_frames: int = 30
    launches: int = 1

    @classmethod
    def parse(cls, text: str) -> RenderFault:
        """``crash:30``, ``hang:10``, ``crash:5:3`` (kind:after_frames[:launches])."""
        parts = text.strip().split(":")
        if parts[0] not in ("crash", "hang") or not 1 <= len(parts) <= 3:
            raise ValueError(f"render fault `{text}`: expected crash|hang[:after_frames[:launches]]")
        kind: Literal["crash", "hang"] = "crash" if parts[0] == "crash" else "hang"
        after = int(parts[1]) if len(parts) > 1 else 30
        launches = int(parts[2]) if len(parts) > 2 else 1
        return cls(kind, after, launches)


FAULT_ENV = "EXHIBIT_RENDER_FAULT"
"""Environment variable read by the host: a :meth:`RenderFault.parse` string."""


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    scene: dict[str, Any]
    base_dir: Path
    size: tuple[int, int] = (1280, 720)
    offscreen: bool = True
    fps_cap: float = 60.0
    heartbeat_interval: float = 0.5
    factory: RendererFactory | None = None
    """None: the real Panda3D scene renderer (:func:`scene_renderer`)."""
    fault: RenderFault | None = None
    stats_window: int = 240
    """Frames kept for the p99 frame time (4 s at 60 fps)."""
    mirror: str | None = None
    """AR mirror: the name of the shared-memory frame channel to show (never the frames themselves)."""
    catalogue: Catalogue | None = None
    """The exhibit's signal catalogue: bindings resolve names from it, as ``check`` did."""


def scene_renderer(config: WorkerConfig) -> Renderer:
    """The real renderer: validate the scene spec, then build Panda3D's scene graph."""
    # Imported here: Panda3D is loaded in the render process only, never in the engine.
    from content.bindings import SnapshotResolver
    from content.renderer import SceneRenderer
    from content.scene_model import SceneSpec

    spec = SceneSpec.model_validate(config.scene)
    resolver = SnapshotResolver(config.catalogue)
    renderer: Renderer = SceneRenderer(
        spec, config.base_dir, size=config.size, offscreen=config.offscreen, resolver=resolver
    )
    return renderer


# --- the process -----------------------------------------------------------------------------


class _Channel:
    """The worker's end of the socket: blocking writes, non-blocking drains."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = MessageReader()
        self.closed = False
        self._sending = threading.Lock()  # previews are sent from the encoder thread

    def send(self, message: object) -> None:
        data = encode(message)
        with self._sending:
            self.sock.sendall(data)

    def receive(self, timeout: float) -> list[object]:
        """Wait up to ``timeout`` for input, then take everything that is there now."""
        messages: list[object] = []
        wait = max(0.0, timeout)
        while not self.closed:
            ready, _, _ = select.select([self.sock], [], [], wait)
            if not ready:
                break
            data = self.sock.recv(1 << 20)
            if not data:
                self.closed = True  # the host went away: nobody to draw for
                break
            messages.extend(self.reader.feed(data))
            wait = 0.0
        return messages


class _FrameStats:
    def __init__(self, window: int) -> None:
        self.frames = 0
        self.dropped = 0
        self._times: deque[float] = deque(maxlen=window)
        self._window_frames = 0
        self._window_start = time.perf_counter()

    def add(self, seconds: float) -> None:
        self.frames += 1
        self._window_frames += 1
        self._times.append(seconds * 1000.0)

    def heartbeat(self, mirror_frames: int = 0, previews: _Previews | None = None) -> Heartbeat:
        now = time.perf_counter()
        elapsed = max(now - self._window_start, 1e-6)
        fps = self._window_frames / elapsed
        self._window_frames = 0
        self._window_start = now
        if self._times:
            times = np.fromiter(self._times, dtype=np.float64, count=len(self._times))
            p99, mean = float(np.percentile(times, 99)), float(times.mean())
        else:
            p99 = mean = 0.0
        sent, preview_ms = previews.figures() if previews is not None else (0, 0.0)
        return Heartbeat(self.frames, fps, p99, mean, self.dropped, mirror_frames, sent, preview_ms)


PREVIEW_STALE = 0.3
"""A preview picture older than this (seconds since drawn) when the encoder gets to it is dropped, not sent."""


class _Previews:
    """The worker's side of previews: what is due, arming the renderer before a frame, reading the pictures
    back after it, and an encoder thread that JPEG-encodes and sends them (latest wins per kind)."""

    def __init__(self, renderer: Renderer, channel: _Channel) -> None:
        self.plan = PreviewPlan()
        self.channel = channel
        self.sent = 0
        self.stale = 0
        """Pictures dropped because the encoder fell behind."""
        self._arm = getattr(renderer, "arm_previews", None)
        self._take = getattr(renderer, "take_previews", None)
        self._drop = getattr(renderer, "drop_previews", None)
        self._armed = False
        self._waiting: dict[bool, tuple[Any, float]] = {}  # kind -> (picture, taken_at), for the encoder
        self._ready = threading.Condition()
        self._encoder: threading.Thread | None = None
        self._spent = 0.0
        self._count = 0

    def request(self, message: PreviewRequest) -> None:
        self.plan.set(message.wants, time.monotonic())
        kinds = {want.camera for want in message.wants}
        with self._ready:
            for kind in [k for k in self._waiting if k not in kinds]:
                del self._waiting[kind]  # a kind no longer wanted is not sent
        if self._drop is not None:
            self._drop(kinds)  # and frees its buffer

    def before_frame(self) -> None:
        if not self.plan or self._arm is None:
            return
        due = self.plan.due(time.monotonic())
        if due:
            try:
                self._arm([(want.camera, want.width) for want in due])
                self._armed = True
            except Exception as exc:
                self._give_up(exc)

    def after_frame(self) -> None:
        """Right after drawing: read the armed previews back and hand them to the encoder."""
        if not self._armed or self._take is None:
            return
        self._armed = False
        taken_at = time.monotonic()
        begin = time.perf_counter()
        try:
            pictures: dict[bool, Any] = self._take()
        except Exception as exc:
            self._give_up(exc)
            return
        if not pictures:
            return
        with self._ready:
            for camera, picture in pictures.items():
                if camera in self.plan.wants:
                    self._waiting[camera] = (picture, taken_at)
                    self.plan.sent(camera, taken_at)
            self._spent += time.perf_counter() - begin
            self._ready.notify()
        if self._encoder is None:
            self._encoder = threading.Thread(target=self._encode_forever, name="preview-encoder", daemon=True)
            self._encoder.start()

    def _encode_forever(self) -> None:
        while not self.channel.closed:
            with self._ready:
                while not self._waiting:
                    self._ready.wait()
                camera = next(iter(self._waiting))
                picture, taken_at = self._waiting.pop(camera)
            if time.monotonic() - taken_at > PREVIEW_STALE:
                self.stale += 1
                continue
            begin = time.perf_counter()
            try:
                height, width = picture.shape[:2]
                jpeg = encode_jpeg(picture)
                self.channel.send(PreviewImage(camera, jpeg, width, height, taken_at))
            except OSError:
                return  # the host went away; the main loop notices too
            except Exception as exc:
                log.error("预览编码失败 / preview could not be encoded: %s: %s", type(exc).__name__, exc)
                continue
            with self._ready:
                self.sent += 1
                self._spent += time.perf_counter() - begin
                self._count += 1

    def figures(self) -> tuple[int, float]:
        """Previews sent, and their mean cost (read back, encode, send) since the last call, in ms."""
        with self._ready:
            mean_ms = self._spent / self._count * 1000.0 if self._count else 0.0
            self._spent, self._count = 0.0, 0
            return self.sent, mean_ms

    def _give_up(self, exc: BaseException) -> None:
        # A preview is a convenience: the exhibit's own picture goes on. The host's wish is kept, so a
        # restarted worker tries again.
        log.error("预览已停止 / preview stopped: %s: %s", type(exc).__name__, exc)
        self.plan.set((), time.monotonic())
        self._armed = False
        if self._drop is not None:
            with contextlib.suppress(Exception):
                self._drop(())


def _merge(pending: SceneSnapshot | None, newer: SceneSnapshot) -> SceneSnapshot:
    # Latest wins for state, but a superseded snapshot's one-shot events still play, in order.
    if pending is None or not pending.events:
        return newer
    return replace(newer, events=pending.events + newer.events)


def _inject(fault: RenderFault, frames: int) -> None:
    if frames < fault.after_frames:
        return
    if fault.kind == "crash":
        log.warning("render fault: crashing after %d frames", frames)
        os._exit(3)
    log.warning("render fault: hanging after %d frames", frames)
    # A hung GL driver ignores polite requests: so does this; the host must SIGKILL it.
    with contextlib.suppress(ValueError, OSError, AttributeError):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(3600)


def run_worker(sock: socket.socket, config: WorkerConfig) -> None:
    """The render process's main: draw the latest snapshot, at most ``fps_cap`` times a second."""
    # Ctrl+C in the terminal reaches the whole process group; the controller stops this process itself,
    # after the devices are safe, so the key must not kill it first (nor print a traceback).
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup_child_logging()
    yield_cpu_to_control()
    channel = _Channel(sock)
    started = time.perf_counter()
    factory = config.factory or scene_renderer
    try:
        renderer = factory(config)
    except Exception as exc:
        _fail(channel, "build", exc)
        sys.exit(2)
    if config.mirror is not None:
        _attach_mirror(renderer, config.mirror)
    try:
        channel.send(Ready(os.getpid(), time.perf_counter() - started))
        _loop(channel, renderer, config)
    except Exception as exc:
        _fail(channel, "frame", exc)
        sys.exit(1)
    finally:
        with contextlib.suppress(Exception):
            renderer.close()
        sock.close()


def _attach_mirror(renderer: Renderer, name: str) -> None:
    """Give the renderer the pose sensor's frames; without them the mirror shows the background."""
    attach = getattr(renderer, "attach_frames", None)
    if attach is None:
        return
    from content.mirror import FrameReader

    try:
        attach(FrameReader(name))
    except (OSError, ValueError) as exc:
        log.warning("AR mirror: no camera picture (%s: %s); showing the background", type(exc).__name__, exc)


def _fail(channel: _Channel, stage: str, exc: BaseException) -> None:
    text = f"{type(exc).__name__}: {exc}"
    log.error("render %s failed: %s\n%s", stage, text, traceback.format_exc())
    with contextlib.suppress(OSError):
        channel.send(Failed(f"{stage}: {text}"))


def _loop(channel: _Channel, renderer: Renderer, config: WorkerConfig) -> None:
    stats = _FrameStats(config.stats_window)
    previews = _Previews(renderer, channel)
    period = 1.0 / config.fps_cap if config.fps_cap > 0 else 0.0
    pending: SceneSnapshot | None = None
    next_frame = time.perf_counter()
    next_beat = next_frame + config.heartbeat_interval
    while not channel.closed:
        now = time.perf_counter()
        # Sleep until the next heartbeat, or until a frame is due if one is waiting to be drawn.
        wake = min(next_beat, next_frame) if pending is not None else next_beat
        for message in channel.receive(wake - now):
            if isinstance(message, SceneSnapshot):
                if pending is not None:
                    stats.dropped += 1
                pending = _merge(pending, message)
            elif isinstance(message, PreviewRequest):
                previews.request(message)
            elif isinstance(message, Stop):
                return
        now = time.perf_counter()
        if pending is not None and now >= next_frame:
            previews.before_frame()
            begin = time.perf_counter()
            renderer.frame(pending)
            stats.add(time.perf_counter() - begin)
            previews.after_frame()
            pending = None
            # Pace from the schedule, but never try to catch up on frames missed while slow.
            next_frame = max(next_frame + period, now)
            if config.fault is not None:
                _inject(config.fault, stats.frames)
        if now >= next_beat:
            channel.send(stats.heartbeat(int(getattr(renderer, "mirror_frames", 0)), previews))
            next_beat = max(next_beat + config.heartbeat_interval, now)


# --- a renderer that draws nothing -----------------------------------------------------------


class NullRenderer:
    """Takes snapshots and draws nothing (optionally spending ``frame_ms`` per frame): for
    measuring the transport, and for hosts on machines with no GL at all."""

    def __init__(self, frame_ms: float = 0.0) -> None:
        self.frame_ms = frame_ms
        self.frames = 0
        self.last: SceneSnapshot | None = None

    def frame(self, snapshot: SceneSnapshot) -> None:
        self.frames += 1
        self.last = snapshot
        if self.frame_ms > 0:
            time.sleep(self.frame_ms / 1000.0)

    def close(self) -> None:
        self.last = None


def null_renderer(config: WorkerConfig) -> Renderer:
    """A :data:`RendererFactory` for :class:`NullRenderer`; ``scene["frame_ms"]`` sets its cost."""
    return NullRenderer(float(config.scene.get("frame_ms", 0.0)))
