"""The scene as a service of the running exhibit (``render``): the render process, fed from the
signal store.

The runtime builds it when the exhibit has a ``scene:`` and the run draws (not ``--no-render``).
Logic reaches the scene through events named ``scene.<action>.<node>``
(``{event: scene.burst.lanterns, payload: 40}``): ``burst`` (payload: how many), ``play`` (payload:
the animation), ``crossfade`` (payload: seconds). Rendering runs in its own process
(content/render_host.py): nothing here waits on it.

Hot reload: :meth:`SceneService.replace` takes a new, already validated scene; the render process
is stopped and started again with it, in this service's own task, so the control path never waits.

AR mirror (``scene.mirror``): the service owns the shared-memory frame channel
(:class:`content.mirror.FrameWriter`) and hands its ``write`` to the mirrored pose sensor as its
frame tap (:class:`engine.drivers.FrameTaps`, put in the drivers' resources before they are
built); every render worker attaches to the channel by name; the channel is wiped and removed when
the service stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from content.mirror import FrameWriter
from content.render_host import HEALTH_FIGURES, HEALTH_MEANINGS, RenderHost
from content.render_worker import RendererFactory
from content.scene_model import SceneSpec
from content.snapshot import SceneEvent
from content.snapshot_source import SnapshotSource
from engine.catalogue import Catalogue
from engine.clock import Clock
from engine.drivers import FrameTaps
from engine.health import ComponentHealth
from engine.registry import ServiceSpec
from engine.signals import Signal, SignalStore

if TYPE_CHECKING:
    from engine.runtime import Runtime

log = logging.getLogger("content.service")

SCENE_EVENT_PREFIX = "scene."
STOP_TIMEOUT = 5.0
"""Seconds the render host may take to stop its process (asked, then killed after 2 s, then reaped)."""
EVENT_ARGUMENT = {"burst": "count", "play": "anim", "crossfade": "duration"}
"""What an event's payload means, by action."""
DEFAULT_FACTORY: RendererFactory | None = None
"""The renderer the render process builds (None: the scene renderer); tests may put their own here."""


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
    """Starts the render process with the exhibit's scene and keeps it running."""

    name = "render"

    def __init__(
        self,
        scene: SceneSpec,
        base_dir: Path,
        catalogue: Catalogue,
        store: SignalStore,
        clock: Clock,
        *,
        offscreen: bool,
        health: ComponentHealth | None = None,
        factory: RendererFactory | None = None,
    ) -> None:
        self.scene, self.base_dir, self.catalogue = scene, base_dir, catalogue
        self.store, self.clock = store, clock
        self.offscreen = offscreen
        self.health = health
        self.factory = factory
        """The render worker's renderer (None: the scene renderer); tests give their own."""
        self.frame_writer: FrameWriter | None = FrameWriter() if scene.mirror is not None else None
        """AR mirror: where the mirrored pose sensor's frames go (shared memory, RAM only)."""
        self.source: SnapshotSource | None = None
        self.host: RenderHost | None = None
        self.scenes = 0
        """Scenes the service has started a render process with (1 + the reloads that changed the scene)."""
        self._events: set[str] = set()
        self._replaced = asyncio.Event()
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        """Nothing to wait for: the render process is spawned by :meth:`run`, off the control path."""

    def reload(self, exhibit: Any, catalogue: Catalogue) -> None:
        """Follow a hot reload: a scene whose content changed is drawn by a new render process."""
        scene: SceneSpec | None = getattr(exhibit, "scene", None)
        self.catalogue = catalogue
        if scene is None:
            log.warning("reload: the scene was removed; it goes on being drawn until the exhibit restarts")
        elif scene.model_dump(mode="json") != self.scene.model_dump(mode="json"):
            self.replace(scene, catalogue)

    def replace(self, scene: SceneSpec, catalogue: Catalogue) -> None:
        """Draw ``scene`` from now on (hot reload): the render process restarts with it. Never blocks."""
        if scene.mirror is not None and self.frame_writer is None:
            log.warning("reload: an AR mirror added to the scene needs a restart of the exhibit to get the camera")
        self.scene, self.catalogue = scene, catalogue
        self._replaced.set()

    def _host(self) -> RenderHost:
        # Built when the service runs: by then every signal (the show's events too) is declared.
        self.source = SnapshotSource(self.store, self.clock, self.catalogue.visitor_fields())
        self._follow_events()
        output = self.scene.outputs[0]
        self.scenes += 1
        return RenderHost(
            self.scene.model_dump(mode="json"),
            self.base_dir,
            self.source,
            self.store,
            health=self.health,
            catalogue=self.catalogue,
            size=output.size,
            offscreen=self.offscreen or output.kind == "offscreen",
            fps=self.scene.fps_cap,
            factory=self.factory,
            mirror=self.frame_writer.name if self.frame_writer is not None else None,
        )

    def _follow_events(self) -> None:
        for name in self.store.names():
            if (
                name.startswith(SCENE_EVENT_PREFIX)
                and name not in self._events
                and self.store.get(name).type == "event"
            ):
                self.store.subscribe(name, self._on_event)
                self._events.add(name)

    def _on_event(self, signal: Signal) -> None:
        if self.source is not None:
            self.source.fire(scene_event(signal.name, signal.value))

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._replaced.clear()
                self.host = self._host()
                hosting = asyncio.create_task(self.host.run())
                try:
                    await _first(self._stopping.wait(), self._replaced.wait(), hosting)
                finally:
                    hosting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await hosting  # the host stops its process (killing it if it must) before returning
                if self._replaced.is_set() and not self._stopping.is_set():
                    log.info("reload: the scene changed; the render process restarts with it")
        finally:
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


async def _first(*waits: Any) -> None:
    """Until the first of ``waits`` (coroutines or tasks) is done; the other coroutines are cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task, wait in zip(tasks, waits, strict=True):
            if task is not wait:
                task.cancel()


def _applies(exhibit: Any) -> bool:
    return getattr(exhibit, "scene", None) is not None


def _build(runtime: Runtime) -> SceneService | None:
    scene: SceneSpec | None = getattr(runtime.exhibit, "scene", None)
    if scene is None or runtime.options.render == "off":
        return None
    health = runtime.context.health_of("render", "service", HEALTH_FIGURES)
    service = SceneService(
        scene,
        runtime.context.base_dir,
        runtime.catalogue,
        runtime.store,
        runtime.clock,
        offscreen=runtime.options.render == "offscreen",
        health=health,
        factory=DEFAULT_FACTORY,
    )
    if service.frame_writer is not None and scene.mirror is not None:
        # AR mirror: the mirrored pose sensor's frames go to the render process through shared memory;
        # no other sensor gets a tap, and without a scene to draw nobody does.
        runtime.context.resources.put(FrameTaps({scene.mirror.sensor: service.frame_writer.write}))
    return service


SERVICE = ServiceSpec(
    "render", order=90, applies=_applies, build=_build, figures=HEALTH_FIGURES, meanings=HEALTH_MEANINGS
)
