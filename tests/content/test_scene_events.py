"""Rules and cues reach the scene through events named ``scene.<action>.<node>``: through the signal
store, the scene service's snapshot source, the render process, to the renderer's event handling."""

from __future__ import annotations

import asyncio
from pathlib import Path

from content.scene_model import SceneSpec
from content.service import SceneService, scene_event
from content.snapshot import SceneEvent, SceneSnapshot
from engine.catalogue import Catalogue
from engine.clock import MonotonicClock
from engine.signals import SignalStore


def test_event_names_become_scene_events():
    assert scene_event("scene.burst.rising", 40) == SceneEvent("burst", "rising", {"count": 40})
    assert scene_event("scene.play.boat", "row") == SceneEvent("play", "boat", {"anim": "row"})
    assert scene_event("scene.crossfade.all", 2) == SceneEvent("crossfade", "all", {"duration": 2})
    assert scene_event("scene.burst.rising", None) == SceneEvent("burst", "rising", {})
    # Not an action the scene knows: passed on by name (the renderer counts it as ignored).
    assert scene_event("scene.finale", None) == SceneEvent("event", "finale", {})


async def test_a_store_event_reaches_the_scene_through_the_service(tmp_path: Path):
    store = SignalStore()
    store.declare("scene.burst.rising", "event")
    store.declare("scene.play.boat", "event")
    store.declare("controls.x", "float")
    spec = SceneSpec.model_validate({"nodes": {"rising": {"type": "emitter", "pos": [0, 0, 0]}}})
    service = SceneService(spec, tmp_path, Catalogue(), store, MonotonicClock(), offscreen=True)
    running = asyncio.create_task(service.run())
    try:
        for _ in range(500):  # the service builds its snapshot source when the runtime starts it
            if service.source is not None:
                break
            await asyncio.sleep(0.01)
        assert service.source is not None
        store.set("scene.burst.rising", 40)
        store.set("controls.x", 1.0)  # not an event: not a scene event
        store.set("scene.play.boat", "row")
        snapshot = service.source.take()
        assert list(snapshot.events) == [
            SceneEvent("burst", "rising", {"count": 40}),
            SceneEvent("play", "boat", {"anim": "row"}),
        ]
        assert service.source.take().events == ()  # each event goes to the scene once
    finally:
        await service.close(5.0)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def test_a_burst_event_spawns_lanterns_in_the_renderer(tmp_path: Path):
    from content.renderer import SceneRenderer

    spec = SceneSpec.model_validate(
        {"nodes": {"rising": {"type": "emitter", "pos": [0, 0, 0], "rate": 0}}, "outputs": [{"size": [64, 36]}]}
    )
    with SceneRenderer(spec, tmp_path, size=(64, 36), offscreen=True) as renderer:
        renderer.frame(SceneSnapshot(time=0.0))
        emitter = renderer.scene.items["rising"].element
        assert emitter is not None and emitter.alive == 0  # type: ignore[attr-defined]
        renderer.frame(SceneSnapshot(time=0.1, events=(scene_event("scene.burst.rising", 25),)))
        assert emitter.alive == 25  # type: ignore[attr-defined]
        renderer.frame(SceneSnapshot(time=0.2, events=(scene_event("scene.burst.nowhere", 5),)))
        assert renderer.ignored_events == 1
