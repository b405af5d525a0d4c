"""The render process's memory stays flat: Panda3D's caches do not grow frame after frame.

Driven without ShowBase, Panda3D keeps every RenderState and TransformState ever made until they are
garbage-collected (ShowBase does it each frame; ``Display.render`` does it here), and a Geom whose vertex
data is replaced through ``modifyVertexData()`` leaves a copy in the munged-geom cache every frame
(``DynamicMesh`` writes its arrays in place). Either way the render process grew by about a gigabyte an
hour; this draws a show's worth of varied frames of the flagship's scene and counts what those caches hold.
"""

from __future__ import annotations

import math

import pytest
from panda3d.core import GeomCacheManager, RenderState, TransformState

from content.renderer import SceneRenderer
from content.scene_model import SceneSpec
from content.service import scene_event
from content.snapshot import Scalar, SceneEvent, SceneSnapshot, VisitorPose
from engine.validate import load_exhibit
from launcher import build_registry
from tests.conftest import FLAGSHIP
from tests.support.pose_synth import person

SIZE = (160, 90)
FPS = 60.0
FRAMES = 600
SETTLED = 200
"""By this frame every kind of content has been on screen (visitors come and go, bursts, a crossfade)."""
VISITORS = 3
GENERATION = 50
"""Frames between visitors leaving and new ones (new ids) arriving."""
STATE_GROWTH = 50
"""States that may be alive after frame 600 beyond those after frame 200 (the flat count wobbles by a few)."""
GEOM_CACHE_LIMIT = 200
"""Munged geoms the cache may hold: a few per drawn mesh, not one more every frame."""


def snapshot(index: int) -> SceneSnapshot:
    """Frame ``index``: visitors swaying (some with both hands up: lanterns rise from their wrists), new ids every
    ``GENERATION`` frames, the lanterns' glow following a changing ``hands_raised``, the mode switching, and a
    burst or a crossfade now and then."""
    t = index / FPS
    generation = index // GENERATION
    visitors = tuple(
        VisitorPose(
            generation * 10 + k,
            person(
                cx=0.25 + 0.25 * k + 0.03 * math.sin(3 * t + k),
                cy=0.6 + 0.01 * math.sin(5 * t + k),
                scale=0.12,
                arms="up" if (k + generation) % 2 == 0 else "down",
                aspect=SIZE[0] / SIZE[1],
            ),
        )
        for k in range(VISITORS)
    )
    values: dict[str, Scalar] = {
        "body.count": VISITORS,
        "body.nearest.hands_raised": 0.5 + 0.5 * math.sin(0.1 * index),
        "body.nearest.hand_height": 1.0 + 0.3 * math.sin(0.07 * index),
        "states.mode": "finale" if (index // 120) % 2 else "engaged",
    }
    events: tuple[SceneEvent, ...] = ()
    if index % 97 == 0:
        events += (scene_event("scene.burst.rising", 20),)
    if index % 151 == 0:
        events += (scene_event("scene.crossfade.all", 0.5),)
    return SceneSnapshot(time=t, values=values, visitors={"body": visitors}, events=events)


@pytest.fixture(scope="module")
def flagship() -> SceneSpec:
    scene = getattr(load_exhibit(FLAGSHIP, build_registry()), "scene", None)
    assert isinstance(scene, SceneSpec), "the flagship exhibit must have a scene"
    return scene


def test_a_long_varied_show_leaves_panda3ds_caches_flat(flagship: SceneSpec):
    cache = GeomCacheManager.getGlobalPtr()
    counts: dict[int, tuple[int, int, int]] = {}
    with SceneRenderer(flagship, FLAGSHIP.parent, size=SIZE, offscreen=True) as renderer:
        for index in range(1, FRAMES + 1):
            renderer.frame(snapshot(index))
            if index in (SETTLED, FRAMES):
                counts[index] = (RenderState.getNumStates(), TransformState.getNumStates(), cache.getTotalSize())
        assert renderer.ignored_events == 0  # every burst and crossfade reached the scene
    (states, transforms, geoms), (states_end, transforms_end, geoms_end) = counts[SETTLED], counts[FRAMES]
    assert states_end - states < STATE_GROWTH, f"RenderStates {states} -> {states_end}: not collected"
    assert transforms_end - transforms < STATE_GROWTH, f"TransformStates {transforms} -> {transforms_end}"
    assert geoms_end - geoms < STATE_GROWTH, f"munged geoms cached {geoms} -> {geoms_end}: a copy every frame"
    assert geoms_end < GEOM_CACHE_LIMIT, f"{geoms_end} munged geoms cached"
