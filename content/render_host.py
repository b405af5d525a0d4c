"""Runs the scene renderer in its own process, fed from the engine's loop, under a watchdog.

The engine's asyncio loop is the control plane: a slow frame, a GL hang or a crash in the
renderer must never delay a light cue. So the renderer lives in a child process
(:mod:`content.render_worker`, started with ``spawn``: Panda3D/GL and a running asyncio loop do not
survive ``fork``), and the host only ever does non-blocking things on the loop:

* each frame it takes a snapshot (:class:`~content.snapshot_source.SnapshotSource`) and writes it
  to the worker's socket, unless the previous one is still unsent, in which case this one is
  dropped and counted (latest wins; its scene events ride along with the next one);
* heartbeats are read by an asyncio stream on the same socket;
* a watchdog on the same tick notices a worker that exited, failed, never became ready or
  stopped heartbeating, tells the operator (Chinese and English), kills it and starts a new one
  after a capped, jittered back-off (:mod:`engine.reconnect`).

Previews for the studio (:mod:`content.preview`): :meth:`RenderHost.want_preview` returns a lease;
while a lease of a kind (camera or not) is open, the worker sends JPEG previews of that kind, and
:meth:`RenderHost.next_preview` waits for the next one on the loop. The wish outlives worker restarts.

Its health is the ``render`` service's (:mod:`engine.health`): ``render.health.status`` is ``ok`` while
the renderer draws, ``offline`` (with the reason) while it starts, restarts or is stopped; its figures
are ``render.health.fps``, ``.frame_p99_ms``, ``.restarts`` and ``.state`` (``starting``, ``running``,
``stalled``, ``crashed``, ``failed``, ``stopped``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import random
import socket
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any, Literal, Protocol

from content.preview import (
    DEFAULT_RATE,
    DEFAULT_WIDTH,
    PreviewClosed,
    PreviewFrame,
    PreviewImage,
    PreviewLease,
    PreviewRequest,
    PreviewWant,
    check_want,
    merge_wants,
)
from content.render_worker import (
    FAULT_ENV,
    Failed,
    Heartbeat,
    MessageReader,
    Ready,
    RendererFactory,
    RenderFault,
    Stop,
    WorkerConfig,
    encode,
    run_worker,
)
from content.snapshot import SceneEvent, SceneSnapshot
from engine.catalogue import Catalogue
from engine.clock import MonotonicClock
from engine.health import ComponentHealth
from engine.model import StoreType
from engine.reconnect import Backoff, Reconnect
from engine.signals import SignalStore

log = logging.getLogger("content.render_host")

RenderStatus = Literal["starting", "running", "stalled", "crashed", "failed", "stopped"]

HEALTH_FIGURES: dict[str, StoreType] = {"fps": "float", "frame_p99_ms": "float", "restarts": "int", "state": "str"}
HEALTH_MEANINGS = {
    "fps": "frames drawn per second",
    "frame_p99_ms": "99th percentile of the time to draw a frame",
    "restarts": "times the render process was started again",
    "state": "starting, running, stalled, crashed, failed or stopped",
}

_MAX_CARRIED_EVENTS = 256
_PREVIEW_FPS_WINDOW = 2.0
"""Seconds of received previews that :attr:`RenderStats.preview_fps` is counted over."""
_READ_CHUNK = 1 << 16


class SnapshotTaker(Protocol):
    def take(self) -> SceneSnapshot: ...


@dataclass
class RenderStats:
    status: RenderStatus = "stopped"
    restarts: int = 0
    """Workers started again after one crashed, failed, stalled or never became ready."""
    crashes: int = 0
    stalls: int = 0
    failures: int = 0
    """Renderer errors the worker reported (a scene that does not build, an exception in a frame)."""
    start_timeouts: int = 0
    pid: int | None = None
    frames: int = 0
    """Frames drawn by the current worker."""
    fps: float = 0.0
    frame_p99_ms: float = 0.0
    frame_mean_ms: float = 0.0
    startup_s: float = 0.0
    """How long the current worker took from spawn to its first ``Ready``."""
    sent: int = 0
    dropped_sends: int = 0
    """Snapshots not written because the previous one was still in the pipe (latest wins)."""
    worker_dropped: int = 0
    """Snapshots the current worker superseded before drawing them."""
    skipped: int = 0
    """Snapshots taken while no worker was ready (their events are dropped: a fresh scene starts clean)."""
    heartbeats: int = 0
    mirror_frames: int = 0
    """AR mirror: camera frames the current worker has shown as its picture."""
    preview_frames: int = 0
    """Preview frames received (both kinds, every worker)."""
    preview_fps: float = 0.0
    """Preview frames received per second over the last two seconds (both kinds)."""
    preview_age_ms: float = 0.0
    """Age of the latest preview when it arrived: from drawn in the worker to read here."""
    preview_encode_ms: float = 0.0
    """The worker's mean time to read back and JPEG-encode a preview (its heartbeat's figure)."""
    heartbeat_age: float | None = None
    """Seconds since the last heartbeat of the current worker."""
    last_error: str | None = None


@dataclass
class _Worker:
    process: SpawnProcess
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    launched: float
    frames: MessageReader = field(default_factory=MessageReader)
    ready_at: float | None = None
    last_beat: float = 0.0
    eof: bool = False
    failed: str | None = None
    read_task: asyncio.Task[None] | None = None


class RenderHost:
    """Owns the render process: feeds it snapshots, watches it, restarts it, reports its health.

    ``scene`` is the scene spec as a plain dict (it crosses a process boundary; the worker
    validates it), ``base_dir`` the folder its assets are relative to. ``fps`` is both the rate
    snapshots are taken at and the worker's frame cap."""

    def __init__(
        self,
        scene: Mapping[str, Any],
        base_dir: Path,
        source: SnapshotTaker,
        store: SignalStore | None = None,
        *,
        health: ComponentHealth | None = None,
        catalogue: Catalogue | None = None,
        size: tuple[int, int] = (1280, 720),
        offscreen: bool = True,
        fps: float = 60.0,
        stall_timeout: float = 3.0,
        start_timeout: float = 30.0,
        stop_timeout: float = 2.0,
        heartbeat_interval: float = 0.5,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        factory: RendererFactory | None = None,
        fault: RenderFault | None = None,
        mirror: str | None = None,
    ) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        if stall_timeout <= heartbeat_interval:
            raise ValueError("stall_timeout must be longer than the heartbeat interval")
        self.scene = dict(scene)
        self.base_dir = Path(base_dir)
        self.source = source
        self.store = store
        self.size = size
        self.offscreen = offscreen
        self.fps = fps
        self.stall_timeout = stall_timeout
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.heartbeat_interval = heartbeat_interval
        self.backoff = backoff or Backoff(initial=0.5, cap=10.0, stable_after=30.0)
        self.rng = rng or random.Random()
        self.factory = factory
        env_fault = os.environ.get(FAULT_ENV)
        self.fault = fault or (RenderFault.parse(env_fault) if env_fault else None)
        self.catalogue = catalogue
        """The exhibit's signal catalogue, for the worker's bindings (None: names unchecked, for tests)."""
        self.mirror = mirror
        """AR mirror: the shared-memory frame channel's name, handed to every worker it starts."""
        self._ctx = multiprocessing.get_context("spawn")
        self._stats = RenderStats()
        self._worker: _Worker | None = None
        self._launches = 0
        self._carry: tuple[SceneEvent, ...] = ()
        self._leases: list[PreviewLease] = []
        self._wants: tuple[PreviewWant, ...] = ()
        self._latest: dict[bool, PreviewFrame | None] = {False: None, True: None}
        self._sequence: dict[bool, int] = {False: 0, True: 0}
        self._news: dict[bool, asyncio.Event] = {}
        self._arrivals: deque[float] = deque(maxlen=1024)
        if health is None and store is not None:
            health = ComponentHealth("render", "service", store, MonotonicClock(), HEALTH_FIGURES)
        self.health = health
        self._publish("restarts", 0)
        self._publish("fps", 0.0)
        self._publish("frame_p99_ms", 0.0)
        self._set_status("stopped")

    # --- public ---------------------------------------------------------------------------

    @property
    def stats(self) -> RenderStats:
        """A copy of the current figures (safe to keep)."""
        stats = dataclasses.replace(self._stats)
        now = time.monotonic()
        worker = self._worker
        if worker is not None and worker.ready_at is not None:
            stats.heartbeat_age = now - worker.last_beat
        recent = [t for t in self._arrivals if now - t <= _PREVIEW_FPS_WINDOW]
        stats.preview_fps = (len(recent) - 1) / (now - recent[0]) if len(recent) >= 2 else 0.0
        return stats

    # --- previews (for the studio) ---------------------------------------------------------

    def want_preview(
        self, camera: bool = False, width: int = DEFAULT_WIDTH, rate: float = DEFAULT_RATE
    ) -> PreviewLease:
        """Ask for previews: JPEGs of the scene at most ``width`` wide, ``rate`` a second (at most 15),
        until the lease is closed. ``camera``: the AR mirror's camera picture may be in them, if the
        exhibit opted in (``scene.mirror.preview_camera``); only ask so for a viewer on this computer.
        Leases of one kind share a stream (the widest and fastest asked)."""
        width, rate = check_want(width, rate)
        lease = PreviewLease(bool(camera), width, rate, self._release_preview)
        self._leases.append(lease)
        self._update_wants()
        return lease

    async def next_preview(self, lease: PreviewLease, after: int) -> PreviewFrame:
        """The first preview of ``lease``'s kind whose ``sequence`` is above ``after`` (waits for it).
        Raises :class:`~content.preview.PreviewClosed` once the lease is closed."""
        while True:
            if lease.closed:
                raise PreviewClosed("the preview lease is closed")
            frame = self._latest[lease.camera]
            if frame is not None and frame.sequence > after:
                return frame
            news = self._news.get(lease.camera)
            if news is None:
                news = self._news[lease.camera] = asyncio.Event()
            await news.wait()

    def latest_preview(self, camera: bool) -> PreviewFrame | None:
        """The newest preview of that kind, without waiting (None: none yet, or nobody wants that kind)."""
        return self._latest[bool(camera)]

    def _release_preview(self, lease: PreviewLease) -> None:
        with contextlib.suppress(ValueError):
            self._leases.remove(lease)
        if not any(other.camera == lease.camera for other in self._leases):
            self._latest[lease.camera] = None  # nobody watches: keep no picture (least of all a camera one)
        self._update_wants()
        self._announce(lease.camera)  # waiters on a closed lease wake and leave

    def _update_wants(self) -> None:
        wants = merge_wants(self._leases)
        if wants != self._wants:
            self._wants = wants
            worker = self._worker
            if worker is not None and worker.ready_at is not None:
                self._send_wants(worker)

    def _send_wants(self, worker: _Worker) -> None:
        # Always written, even behind a snapshot: a small control message that must not be lost.
        if not worker.writer.transport.is_closing():
            worker.writer.write(encode(PreviewRequest(self._wants)))

    def _announce(self, camera: bool) -> None:
        news = self._news.pop(camera, None)
        if news is not None:
            news.set()

    def _on_preview(self, message: PreviewImage, now: float) -> None:
        camera = bool(message.camera)
        if not any(lease.camera == camera for lease in self._leases):
            return  # a stop still in flight: nobody wants this kind any more
        self._sequence[camera] += 1
        frame = PreviewFrame(message.jpeg, message.width, message.height, self._sequence[camera], message.taken_at)
        self._latest[camera] = frame
        self._arrivals.append(now)
        self._stats.preview_frames += 1
        self._stats.preview_age_ms = (now - message.taken_at) * 1000.0
        self._announce(camera)

    async def run(self) -> None:
        """Run the renderer until cancelled; then stop it (killing it after ``stop_timeout``)."""
        restarts = Reconnect(self.backoff, MonotonicClock(), self.rng)
        try:
            while True:
                worker = await self._launch()
                restarts.up()
                reason = await self._supervise(worker)
                await self._retire(worker, reason)
                await restarts.wait()
                self._stats.restarts += 1
                self._publish("restarts", self._stats.restarts)
        finally:
            current = self._worker
            if current is not None:
                try:
                    await self._stop(current)
                except BaseException:
                    # Cancelled again while stopping: never leave a renderer behind.
                    self._kill(current)
                    raise
            self._set_status("stopped")

    # --- the worker's life ----------------------------------------------------------------

    async def _launch(self) -> _Worker:
        parent, child = socket.socketpair()
        fault = self.fault if self.fault is not None and self._launches < self.fault.launches else None
        self._launches += 1
        config = WorkerConfig(
            scene=self.scene,
            base_dir=self.base_dir,
            size=self.size,
            offscreen=self.offscreen,
            fps_cap=self.fps,
            heartbeat_interval=self.heartbeat_interval,
            factory=self.factory,
            fault=fault,
            mirror=self.mirror,
            catalogue=self.catalogue,
        )
        process = self._ctx.Process(target=run_worker, args=(child, config), name="exhibit-render", daemon=True)
        self._set_status("starting")
        # start() spawns an interpreter and writes the pickled config to it: off the loop.
        starting = asyncio.ensure_future(asyncio.to_thread(process.start))
        try:
            await asyncio.shield(starting)
        except BaseException:
            # Cancelled (or failed) mid-start: the thread still finishes; do not leave its child behind.
            with contextlib.suppress(BaseException):
                await starting
            if process.pid is not None:
                process.kill()
            parent.close()
            raise
        finally:
            child.close()
        reader, writer = await asyncio.open_connection(sock=parent)
        worker = _Worker(process, reader, writer, launched=time.monotonic())
        worker.read_task = asyncio.create_task(self._read(worker), name="render-heartbeats")
        self._worker = worker
        self._stats.pid = process.pid
        self._stats.frames = 0
        self._stats.worker_dropped = 0
        self._stats.mirror_frames = 0
        return worker

    async def _supervise(self, worker: _Worker) -> str:
        """Feed the worker at ``fps`` until it exits, fails, stalls or never starts; say which."""
        period = 1.0 / self.fps
        next_tick = time.monotonic()
        while True:
            now = time.monotonic()
            reason = self._check(worker, now)
            if reason is not None:
                return reason
            snapshot = self.source.take()
            if worker.ready_at is not None:
                self._send(worker, snapshot)
            else:
                self._stats.skipped += 1
            # Keep the schedule, but never burst to catch up after a slow tick.
            next_tick = max(next_tick + period, now)
            await asyncio.sleep(next_tick - time.monotonic())

    def _check(self, worker: _Worker, now: float) -> str | None:
        if worker.failed is not None:
            return "failed"
        if worker.eof or worker.process.exitcode is not None:
            return "crashed"
        if worker.ready_at is None:
            return "start_timeout" if now - worker.launched > self.start_timeout else None
        return "stalled" if now - worker.last_beat > self.stall_timeout else None

    def _send(self, worker: _Worker, snapshot: SceneSnapshot) -> None:
        transport = worker.writer.transport
        if self._carry:
            snapshot = dataclasses.replace(snapshot, events=self._carry + snapshot.events)
            self._carry = ()
        if transport.is_closing() or transport.get_write_buffer_size() > 0:
            # The pipe is full (the worker is behind or hung): drop this one, keep its events.
            self._stats.dropped_sends += 1
            self._carry = snapshot.events[-_MAX_CARRIED_EVENTS:]
            return
        worker.writer.write(encode(snapshot))
        self._stats.sent += 1

    async def _read(self, worker: _Worker) -> None:
        try:
            while True:
                data = await worker.reader.read(_READ_CHUNK)
                if not data:
                    break
                for message in worker.frames.feed(data):
                    self._on_message(worker, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A reset socket or a garbled stream: either way this worker is finished.
            log.debug("render pipe closed: %s: %s", type(exc).__name__, exc)
        finally:
            worker.eof = True

    def _on_message(self, worker: _Worker, message: object) -> None:
        now = time.monotonic()
        if isinstance(message, PreviewImage):
            self._on_preview(message, now)
        elif isinstance(message, Heartbeat):
            worker.last_beat = now
            stats = self._stats
            stats.heartbeats += 1
            stats.frames = message.frames
            stats.fps = message.fps
            stats.frame_p99_ms = message.frame_p99_ms
            stats.frame_mean_ms = message.frame_mean_ms
            stats.worker_dropped = message.dropped
            stats.mirror_frames = message.mirror_frames
            stats.preview_encode_ms = message.preview_ms
            self._publish("fps", float(message.fps))
            self._publish("frame_p99_ms", float(message.frame_p99_ms))
        elif isinstance(message, Ready):
            worker.ready_at = worker.last_beat = now
            self._stats.startup_s = message.startup_s
            if self._stats.restarts:
                log.warning(
                    "渲染已恢复（第 %d 次重启）/ renderer running again (restart %d)",
                    self._stats.restarts,
                    self._stats.restarts,
                )
            else:
                log.info("renderer ready in %.2f s (pid %d)", message.startup_s, message.pid)
            self._set_status("running")
            if self._wants:
                self._send_wants(worker)  # a restarted worker resumes the previews still wanted
        elif isinstance(message, Failed):
            worker.failed = message.error
        else:
            log.warning("render worker sent an unknown message: %r", type(message).__name__)

    async def _retire(self, worker: _Worker, reason: str) -> None:
        """Tell the operator what went wrong, kill the worker and wait for it to be gone."""
        stats = self._stats
        if reason == "stalled":
            stats.stalls += 1
            stats.last_error = f"no heartbeat for {self.stall_timeout:.1f} s"
            log.error(
                "渲染进程无响应（%.1f 秒无心跳），正在重启 / renderer stalled (no heartbeat for %.1f s), restarting",
                self.stall_timeout,
                self.stall_timeout,
            )
            self._set_status("stalled")
        elif reason == "start_timeout":
            stats.start_timeouts += 1
            stats.last_error = f"not ready within {self.start_timeout:.0f} s"
            log.error(
                "渲染进程启动超时（%.0f 秒），正在重启 / renderer did not start within %.0f s, restarting",
                self.start_timeout,
                self.start_timeout,
            )
            self._set_status("stalled")
        elif reason == "failed":
            stats.failures += 1
            stats.last_error = worker.failed
            log.error("渲染器出错：%s，正在重启 / renderer failed: %s; restarting", worker.failed, worker.failed)
            self._set_status("failed")
        else:
            stats.crashes += 1
            await self._reap(worker, 0.5)  # an EOF arrives just before the exit code
            code = worker.process.exitcode
            stats.last_error = f"exit code {code}"
            log.error(
                "渲染进程意外退出（退出码 %s），正在重启 / renderer exited unexpectedly (exit code %s), restarting",
                code,
                code,
            )
            self._set_status("crashed")
        stats.fps = 0.0
        self._publish("fps", 0.0)
        self._kill(worker)
        await self._reap(worker, 2.0)
        self._release(worker)

    async def _stop(self, worker: _Worker) -> None:
        """Ask the worker to stop; kill it if it is not gone within ``stop_timeout``."""
        if not worker.writer.transport.is_closing():
            worker.writer.write(encode(Stop()))
        if not await self._reap(worker, self.stop_timeout):
            log.warning(
                "渲染进程未在 %.1f 秒内退出，强制结束 / renderer did not exit within %.1f s; killing it",
                self.stop_timeout,
                self.stop_timeout,
            )
            self._kill(worker)
            await self._reap(worker, 2.0)
        self._release(worker)

    @staticmethod
    def _kill(worker: _Worker) -> None:
        # SIGKILL: a hung renderer (a GL driver in a kernel call) may ignore anything politer.
        if worker.process.exitcode is None:
            with contextlib.suppress(OSError, ValueError):
                worker.process.kill()

    @staticmethod
    async def _reap(worker: _Worker, timeout: float) -> bool:
        """Wait (polling, never blocking the loop) up to ``timeout`` for the process to exit."""
        deadline = time.monotonic() + timeout
        while worker.process.exitcode is None:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def _release(self, worker: _Worker) -> None:
        if worker.read_task is not None:
            worker.read_task.cancel()
        worker.writer.close()
        if worker.process.exitcode is not None:
            worker.process.close()
        if self._worker is worker:
            self._worker = None
        self._stats.pid = None

    # --- health -------------------------------------------------------------------------

    def _set_status(self, status: RenderStatus) -> None:
        if self._stats.status == status and self.health is not None and self.health.figures.get("state") == status:
            return
        self._stats.status = status
        self._publish("state", status)
        if self.health is None:
            return
        if status == "running":
            self.health.set("ok")
        elif status == "starting":
            self.health.set("offline", "restarting" if self._stats.restarts else "starting")
        elif status == "stopped":
            self.health.stopped()
        else:
            self.health.set("offline", f"{status}: {self._stats.last_error}; restarting")

    def _publish(self, figure: str, value: float | int | str) -> None:
        if self.health is not None:
            self.health.figure(figure, value)
