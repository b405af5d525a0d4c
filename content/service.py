"""The scene as a runtime service: the render process, fed from the signal store.

``launcher.py run`` adds it when the exhibit has a ``scene:``. Logic reaches the scene through
events named ``scene.<action>.<node>`` (``{event: scene.burst.lanterns, payload: 40}``):
``burst`` (payload: how many), ``play`` (payload: the animation), ``crossfade`` (payload:
seconds). Rendering runs in its own process (content/render_host.py): nothing here waits on it.

AR mirror (``scene.mirror``): the service owns the shared-memory frame channel
(:class:`content.mirror.FrameWriter`). The launcher hands :attr:`SceneService.frame_writer`'s
``write`` to the mirrored pose sensor as its frame tap; every render worker attaches to the
channel by name; the channel is wiped and removed when the service stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from content.mirror import FrameWriter
from content.render_host import RenderHost
from content.render_worker import RendererFactory
from content.scene_model import SceneSpec
from content.snapshot import SceneEvent
from content.snapshot_source import SnapshotSource
from engine.clock import Clock
from engine.signals import Signal, SignalStore

log = logging.getLogger("content.service")

SCENE_EVENT_PREFIX = "scene."
STOP_TIMEOUT = 5.0
"""Seconds the render host may take to stop its process (asked, then killed after 2 s, then reaped)."""
EVENT_ARGUMENT = {"burst": "count", "play": "anim", "crossfade": "duration"}
"""What an event's payload means, by action."""


def scene_event(name: str, payload: Any) -> SceneEvent:
    """``scene.burst.lanterns`` with payload 40 -> burst lanterns, count 40; ``scene.finale`` -> an
    event named ``finale`` for the scene (counted as ignored if no node answers it)."""
    parts = name[len(SCENE_EVENT_PREFIX) :].split(".", 1)
    if len(parts) == 2 and parts[0] in EVENT_ARGUMENT:
        action, target = parts
        args = {} if payload is None else {EVENT_ARGUMENT[action]: payload}
        return SceneEvent(action, target, args)
    return SceneEvent("event", ".".join(parts), {} if payload is None else {"payload": payload})


class SceneService:
    """Starts the render process with the exhibit's scene and keeps it running (a runtime Service)."""

    name = "scene"

    def __init__(
        self,
        scene: SceneSpec,
        base_dir: Path,
        pose_sensors: list[str],
        *,
        offscreen: bool,
        factory: RendererFactory | None = None,
    ) -> None:
        self.scene, self.base_dir = scene, base_dir
        self.pose_sensors, self.offscreen = pose_sensors, offscreen
        self.factory = factory
        """The render worker's renderer (None: the scene renderer); tests give their own."""
        self.frame_writer: FrameWriter | None = FrameWriter() if scene.mirror is not None else None
        """AR mirror: where the mirrored pose sensor's frames go (shared memory, RAM only)."""
        self.store: SignalStore | None = None
        self.clock: Clock | None = None
        self.source: SnapshotSource | None = None
        self.host: RenderHost | None = None
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()

    def attach(self, store: SignalStore, clock: Clock) -> None:
        """The runtime's signal store and clock, which exist only once the runtime does."""
        self.store, self.clock = store, clock

    def _start_host(self) -> RenderHost:
        if self.store is None or self.clock is None:
            raise RuntimeError("SceneService.attach() must be called before the runtime starts")
        # Built when the runtime starts its services: by then every signal (the show's events too) is declared.
        self.source = SnapshotSource(self.store, self.clock, self.pose_sensors)
        output = self.scene.outputs[0]
        for name in self.store.names():
            if name.startswith(SCENE_EVENT_PREFIX) and self.store.get(name).type == "event":
                self.store.subscribe(name, self._on_event)
        return RenderHost(
            self.scene.model_dump(mode="json"),
            self.base_dir,
            self.source,
            self.store,
            size=output.size,
            offscreen=self.offscreen or output.kind == "offscreen",
            fps=self.scene.fps_cap,
            factory=self.factory,
            mirror=self.frame_writer.name if self.frame_writer is not None else None,
        )

    def _on_event(self, signal: Signal) -> None:
        if self.source is not None:
            self.source.fire(scene_event(signal.name, signal.value))

    async def run(self) -> None:
        self.host = self._start_host()
        hosting = asyncio.create_task(self.host.run())
        try:
            await self._stopping.wait()
        finally:
            hosting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hosting  # the host stops its process (killing it if it must) before returning
            self._close_frames()
            self._stopped.set()

    def _close_frames(self) -> None:
        # After the render process is gone: wipe the last picture and remove the segment.
        if self.frame_writer is not None:
            self.frame_writer.close()

    async def close(self, timeout: float) -> None:
        """Stop the render process: asked to stop, killed if it does not within the host's stop time."""
        self._stopping.set()
        try:
            await asyncio.wait_for(self._stopped.wait(), max(timeout, STOP_TIMEOUT))
        except TimeoutError:
            log.error("渲染进程未能停止 / the render process did not stop within %.0f s", STOP_TIMEOUT)
        finally:
            self._close_frames()  # also when the service never ran
