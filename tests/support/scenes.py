"""Drawing scenes in tests: pictures of snapshots, and where a scene point lands in the picture."""

from __future__ import annotations

from pathlib import Path

from panda3d.core import Point2, Point3

from content.offscreen import Picture
from content.renderer import SceneRenderer
from content.scene_model import SceneSpec
from content.snapshot import SceneSnapshot


def pictures(
    spec: SceneSpec, *snapshots: SceneSnapshot, base_dir: Path = Path("."), size: tuple[int, int] = (320, 180)
) -> list[Picture]:
    """One picture per snapshot, drawn offscreen in order."""
    with SceneRenderer(spec, base_dir, size=size) as renderer:
        drawn = []
        for snapshot in snapshots:
            renderer.frame(snapshot)
            drawn.append(renderer.capture())
        return drawn


def pixel_of(renderer: SceneRenderer, point: tuple[float, float, float]) -> tuple[int, int]:
    """(row, column) where a scene point appears in the first output."""
    camera = renderer.outputs[0].cameras[0]
    local = camera.getRelativePoint(renderer.scene.root, Point3(*point))
    film = Point2()
    assert camera.node().getLens().project(local, film), f"{point} is out of view"
    output = renderer.outputs[0].output
    width, height = output.getXSize(), output.getYSize()
    return int((1 - film.y) / 2 * height), int((film.x + 1) / 2 * width)
