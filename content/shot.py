"""``exhibit shot``: a picture of the exhibit's scene as a curator would see it a few seconds in, with
simulated visitors, drawn offscreen. The exhibit runs as it would with ``run --simulate`` (on a private
embedded broker, so no real gear is driven), then its state is drawn once, in this process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from content.offscreen import Picture
from content.scene_model import SceneSpec
from content.snapshot_source import SnapshotSource
from engine.exhibit import ExhibitBase
from engine.registry import Registry
from engine.runtime import RuntimeOptions, assemble


async def take_shot(
    exhibit: ExhibitBase, registry: Registry, base_dir: Path, at: float, size: tuple[int, int] | None
) -> Picture:
    """Run ``exhibit`` simulated for ``at`` seconds, then draw its scene as it is then."""
    scene: SceneSpec = exhibit.scene  # type: ignore[attr-defined]
    options = RuntimeOptions(simulate=True, base_dir=base_dir, broker="embedded", embedded_port=0, render="off")
    runtime = assemble(exhibit, registry, options)
    await runtime.start()
    try:
        await asyncio.sleep(at)
        snapshot = SnapshotSource(runtime.store, runtime.clock, runtime.catalogue.visitor_fields()).take()
    finally:
        await runtime.stop()
    # Panda3D only for the commands that draw.
    from content.bindings import SnapshotResolver
    from content.renderer import SceneRenderer

    resolver = SnapshotResolver(runtime.catalogue)
    with SceneRenderer(
        scene, base_dir, size=size or scene.outputs[0].size, offscreen=True, resolver=resolver
    ) as renderer:
        renderer.frame(snapshot)
        return renderer.capture()
