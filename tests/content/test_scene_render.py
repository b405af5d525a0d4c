"""Real Panda3D renders, offscreen (EGL on llvmpipe or a GPU; software rendering as the fallback).

Small pictures (320x180) keep each test to about a second. To accept a deliberate change of the
reference picture, run with ``UPDATE_SCENE_REFERENCE=1`` once and look at the new PNG (and once more
with ``EXHIBIT_OFFSCREEN=p3tinydisplay`` for the software renderer's reference).
"""

from __future__ import annotations

import base64
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from content.bindings import BindingError, SnapshotResolver
from content.offscreen import Picture
from content.renderer import SceneRenderer, render_bare
from content.scene_build import SceneBuildError, load_font
from content.scene_model import DEFAULT_FONT, SceneSpec
from content.snapshot import SceneEvent, SceneSnapshot, VisitorPose
from engine.catalogue import Catalogue, SignalInfo
from tests.support.scenes import pictures, pixel_of

REFERENCE = Path(__file__).parent / "reference"
SIZE = (320, 180)
BACKGROUND = (16, 32, 64)
CAMERA = {"position": [0, -10, 0], "look_at": [0, 0, 0], "fov": 40}


def scene(nodes: dict[str, Any], **extra: Any) -> SceneSpec:
    return SceneSpec.model_validate({"background": "#102040", "camera": CAMERA, "nodes": nodes, **extra})


def render(spec: SceneSpec, *snapshots: SceneSnapshot, base_dir: Path = Path(".")) -> list[Picture]:
    """One picture per snapshot."""
    return pictures(spec, *snapshots, base_dir=base_dir, size=SIZE)


def near(color: np.ndarray, expected: tuple[int, int, int], tolerance: int = 12) -> bool:
    return bool(np.all(np.abs(color.astype(int) - np.array(expected)) <= tolerance))


BOX = {"type": "primitive", "shape": "box", "color": "#ff0000"}


# --- the reference picture ------------------------------------------------------------------------------------------

REFERENCE_SCENE = {
    "sky": {"top": "#0b1d3a", "bottom": "#e08040"},
    "camera": {"position": [0, -10, 1], "look_at": [0, 0, 0], "fov": 45},
    "lights": {
        "fill": {"type": "ambient", "color": "#404040"},
        "key": {"type": "directional", "direction": [1, 2, -1.5], "intensity": 0.9},
    },
    "nodes": {
        "floor": {"type": "primitive", "shape": "plane", "pos": [0, 0, -1.5], "scale": [12, 12, 1], "color": "#3a6070"},
        "lamp": {"type": "primitive", "shape": "sphere", "pos": [-2.2, 0, 0], "scale": 1.4, "color": "#ffb347"},
        "crate": {"type": "primitive", "shape": "box", "hpr": [30, 20, 0], "color": "#c04040"},
        "post": {
            "type": "primitive",
            "shape": "cylinder",
            "pos": [2.2, 0, 0],
            "scale": [0.8, 0.8, 2],
            "color": "#e0e0e0",
        },
        "title": {"type": "text", "text": "运河灯会 Canal Lanterns", "pos": [0, -1, 1.8], "size": 0.55},
    },
}


def test_a_small_scene_matches_its_reference_picture(tmp_path: Path) -> None:
    spec = SceneSpec.model_validate(REFERENCE_SCENE)
    with SceneRenderer(spec, tmp_path, size=SIZE) as renderer:
        renderer.frame(SceneSnapshot(0.0))
        renderer.save_png(tmp_path / "scene.png")
        frame = renderer.capture()
        # Software rendering (the fallback where EGL does not work) lights per vertex: its own reference.
        backend = "software" if renderer.display.module == "p3tinydisplay" else "gl"
    reference_path = REFERENCE / f"small_scene.{backend}.png"
    if os.environ.get("UPDATE_SCENE_REFERENCE"):
        REFERENCE.mkdir(exist_ok=True)
        Image.fromarray(frame).save(reference_path)
    reference = np.asarray(Image.open(reference_path).convert("RGB"))
    assert reference.shape == frame.shape == (SIZE[1], SIZE[0], 3)
    saved = np.asarray(Image.open(tmp_path / "scene.png").convert("RGB"))
    assert np.array_equal(saved, frame)
    diff = float(np.mean(np.abs(frame.astype(float) - reference.astype(float))))
    # Different GL drivers shade a few edge pixels differently; a broken scene differs by tens.
    assert diff < 3.0, f"mean abs difference {diff:.2f} from {reference_path} (picture in {tmp_path})"
    assert frame[0, 0, 2] > frame[0, 0, 0]  # the top of the sky is blue (and not a blank picture)


def test_offscreen_rendering_uses_gl() -> None:
    # The software fallback has no shaders, no fog and its own blending: the tests below that use them
    # need GL, which on a machine without a GPU is Mesa's llvmpipe through EGL.
    with SceneRenderer(scene({}), Path("."), size=SIZE) as renderer:
        module = renderer.display.module
    assert module == "p3headlessgl", "no EGL: install libegl1, libegl-mesa0 and libgl1-mesa-dri (Mesa's llvmpipe)"


# --- bindings -------------------------------------------------------------------------------------------------------


def test_a_bound_signal_moves_a_box() -> None:
    spec = scene({"box": {**BOX, "bind": {"x": "controls.slider * 2"}}})
    with SceneRenderer(spec, Path("."), size=SIZE) as renderer:
        old, new = pixel_of(renderer, (0, 0, 0)), pixel_of(renderer, (2, 0, 0))
        renderer.frame(SceneSnapshot(0.0, {"controls.slider": 0.0}))
        before = renderer.capture()
        renderer.frame(SceneSnapshot(0.1, {"controls.slider": 1.0}))
        after = renderer.capture()
    assert near(before[old], (255, 0, 0)) and near(before[new], BACKGROUND)
    assert near(after[old], BACKGROUND) and near(after[new], (255, 0, 0))


def test_missing_or_unfit_values_leave_properties_alone_and_are_counted() -> None:
    spec = scene({"box": {**BOX, "pos": [1, 0, 0], "bind": {"x": "controls.slider * 2", "visible": "controls.on"}}})
    with SceneRenderer(spec, Path("."), size=SIZE) as renderer:
        at = pixel_of(renderer, (1, 0, 0))
        renderer.frame(SceneSnapshot(0.0))  # nothing known yet
        assert near(renderer.capture()[at], (255, 0, 0))
        assert renderer.bindings.skipped == 2
        renderer.frame(SceneSnapshot(0.1, {"controls.slider": "left", "controls.on": True}))  # text is no position
        assert near(renderer.capture()[at], (255, 0, 0))
        assert renderer.bindings.skipped == 3
        renderer.frame(SceneSnapshot(0.2, {"controls.slider": 0.5, "controls.on": False}))
        assert near(renderer.capture()[at], BACKGROUND)


def test_colour_alpha_and_scale_follow_signals() -> None:
    spec = scene(
        {
            "box": {
                **BOX,
                "bind": {
                    "color.g": "controls.g",
                    "alpha": "controls.a",
                    "scale": "1 + controls.grow",
                    "color.b": "controls.g",
                },
            }
        }
    )
    with SceneRenderer(spec, Path("."), size=SIZE) as renderer:
        centre, edge = pixel_of(renderer, (0, 0, 0)), pixel_of(renderer, (0.8, 0, 0))
        renderer.frame(SceneSnapshot(0.0, {"controls.g": 1.0, "controls.a": 1.0, "controls.grow": 0.0}))
        white = renderer.capture()
        renderer.frame(SceneSnapshot(0.1, {"controls.g": 0.0, "controls.a": 0.5, "controls.grow": 1.0}))
        faded = renderer.capture()
    assert near(white[centre], (255, 255, 255)) and near(white[edge], BACKGROUND)
    half_red = tuple(int(0.5 * 255 + 0.5 * c) for c in (16, 0, 0))
    assert near(faded[centre], (half_red[0], 16, 32), tolerance=16)  # red over the background, half and half
    assert not near(faded[edge], BACKGROUND)  # grown twice as big


def test_a_bind_expression_with_a_mistake_fails_the_build_with_its_path() -> None:
    spec = scene({"box": {**BOX, "bind": {"x": "clamp(controls.slider, 0"}}})
    with pytest.raises(BindingError) as caught:
        SceneRenderer(spec, Path("."), size=SIZE)
    assert caught.value.problems[0][0] == ("nodes", "box", "bind", "x")


def test_known_signal_types_catch_misspelt_names() -> None:
    spec = scene({"box": {**BOX, "bind": {"x": "controls.slidr"}}})
    resolver = SnapshotResolver(
        Catalogue({"controls.slider": SignalInfo("controls.slider", "float", "", "controls", "sensor")})
    )
    with pytest.raises(BindingError, match=r"did you mean `controls\.slider`"):
        SceneRenderer(spec, Path("."), size=SIZE, resolver=resolver)


def test_visitors_can_be_counted_in_expressions() -> None:
    spec = scene({"box": {**BOX, "bind": {"visible": "count(body.visitors, x < 0.5) > 0"}}})
    landmarks = np.zeros((33, 4), dtype=np.float32)
    landmarks[:, 0], landmarks[:, 3] = 0.2, 1.0
    visitor = VisitorPose(7, landmarks)
    with SceneRenderer(spec, Path("."), size=SIZE) as renderer:
        centre = pixel_of(renderer, (0, 0, 0))
        renderer.frame(SceneSnapshot(0.0, visitors={"body": ()}))
        assert near(renderer.capture()[centre], BACKGROUND)
        renderer.frame(SceneSnapshot(0.1, visitors={"body": (visitor,)}))
        assert near(renderer.capture()[centre], (255, 0, 0))


# --- text -----------------------------------------------------------------------------------------------------------


def test_chinese_and_english_text_renders() -> None:
    font = load_font(DEFAULT_FONT)
    from panda3d.core import TextNode

    probe = TextNode("probe")
    probe.setFont(font)
    assert all(probe.hasExactCharacter(c) for c in "运河灯会CanalLanterns")
    chinese = {"type": "text", "text": "运河灯会", "pos": [0, 0, 0.5], "size": 0.8, "color": "#ffffff"}
    english = {
        "type": "text",
        "text": "Canal Lanterns",
        "pos": [0, 0, -0.8],
        "size": 0.6,
        "bind": {"text": "controls.t"},
    }
    (frame,) = render(scene({"zh": chinese, "en": english}), SceneSnapshot(0.0))
    top, bottom = frame[40:75, 90:230], frame[100:125, 90:230]  # where each line lands
    for area in (top, bottom):
        lit = np.any(np.abs(area.astype(int) - np.array(BACKGROUND)) > 60, axis=2)
        assert 0.05 < lit.mean() < 0.8, lit.mean()  # strokes, not a blank and not a filled box
    # text follows a signal (numbers print without a trailing .0)
    (number,) = render(scene({"en": english}), SceneSnapshot(0.0, {"controls.t": 2.0}))
    lit = np.any(np.abs(number.astype(int) - np.array(BACKGROUND)) > 60, axis=2)
    assert 0 < lit[100:125].sum() < np.any(np.abs(bottom.astype(int) - np.array(BACKGROUND)) > 60, axis=2).sum()


# --- assets ---------------------------------------------------------------------------------------------------------


def write_gltf_quad(path: Path, color: tuple[float, float, float]) -> None:
    """A one-square glTF (in the XZ plane, facing -Y) with an unlit-looking emissive material."""
    positions = [(-0.5, 0, -0.5), (0.5, 0, -0.5), (0.5, 0, 0.5), (-0.5, 0, 0.5)]
    indices = [0, 1, 2, 0, 2, 3]
    # glTF is Y up; panda3d-gltf turns it into Panda3D's Z up, so write the square in glTF's XY plane.
    blob = b"".join(struct.pack("<3f", x, z, -y) for x, y, z in positions) + struct.pack("<6H", *indices)
    gltf = {
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1, "material": 0}]}],
        "materials": [
            {
                "pbrMetallicRoughness": {"baseColorFactor": [*color, 1.0]},
                "extensions": {"KHR_materials_unlit": {}},
                "doubleSided": True,
            }
        ],
        "extensionsUsed": ["KHR_materials_unlit"],
        "buffers": [
            {"byteLength": len(blob), "uri": "data:application/octet-stream;base64," + base64.b64encode(blob).decode()}
        ],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 0, "byteLength": 48},
            {"buffer": 0, "byteOffset": 48, "byteLength": 12},
        ],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": 4,
                "type": "VEC3",
                "min": [-0.5, -0.5, 0],
                "max": [0.5, 0.5, 0],
            },
            {"bufferView": 1, "componentType": 5123, "count": 6, "type": "SCALAR"},
        ],
    }
    path.write_text(json.dumps(gltf))


def test_gltf_models_and_images_render_from_the_exhibit_folder(tmp_path: Path) -> None:
    write_gltf_quad(tmp_path / "quad.gltf", (0.0, 1.0, 0.0))
    Image.new("RGB", (40, 20), (255, 255, 0)).save(tmp_path / "poster.png")
    spec = scene(
        {
            "quad": {"type": "model", "file": "quad.gltf", "pos": [-1.5, 0, 0], "scale": 1.5},
            "poster": {"type": "image", "file": "poster.png", "pos": [1.5, 0, 0], "width": 2},
        }
    )
    assert spec.check_files(tmp_path) == []
    with SceneRenderer(spec, tmp_path, size=SIZE) as renderer:
        quad, poster = pixel_of(renderer, (-1.5, 0, 0)), pixel_of(renderer, (1.5, 0, 0))
        poster_out = pixel_of(renderer, (1.5, 0, 0.7))  # the card keeps the picture's 2:1 shape: 1 unit high
        renderer.frame(SceneSnapshot(0.0))
        frame = renderer.capture()
    assert frame[quad][1] > 200 and frame[quad][0] < 60, frame[quad]
    assert near(frame[poster], (255, 255, 0))
    assert near(frame[poster_out], BACKGROUND)


def test_a_model_that_does_not_load_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "broken.gltf").write_text("{not json")
    with pytest.raises(SceneBuildError, match=r"broken\.gltf"):
        SceneRenderer(scene({"m": {"type": "model", "file": "broken.gltf"}}), tmp_path, size=SIZE)


# --- shaders, events, outputs ---------------------------------------------------------------------------------------

VERTEX = """#version 120
uniform mat4 p3d_ModelViewProjectionMatrix;
attribute vec4 p3d_Vertex;
void main() { gl_Position = p3d_ModelViewProjectionMatrix * p3d_Vertex; }
"""
FRAGMENT = """#version 120
uniform vec4 tint;
void main() { gl_FragColor = vec4(tint.rgb, 1.0); }
"""


def test_a_shader_input_follows_a_signal(tmp_path: Path) -> None:
    (tmp_path / "flat.vert").write_text(VERTEX)
    (tmp_path / "flat.frag").write_text(FRAGMENT)
    box = {
        "type": "primitive",
        "shape": "box",
        "shader": {"vertex": "flat.vert", "fragment": "flat.frag", "inputs": {"tint": [0, 0, 1, 1]}},
        "bind": {"shader.tint": "controls.level"},
    }
    frames = render(
        scene({"box": box}), SceneSnapshot(0.0), SceneSnapshot(0.1, {"controls.level": 1.0}), base_dir=tmp_path
    )
    centre = (SIZE[1] // 2, SIZE[0] // 2)
    assert near(frames[0][centre], (0, 0, 255))
    assert near(frames[1][centre], (255, 0, 0))  # a number sets the first component


def test_crossfade_dips_to_black_and_back() -> None:
    spec = scene({"box": {**BOX, "scale": 3}})
    fade = SceneEvent("crossfade", "next", {"duration": 2.0})
    frames = render(spec, SceneSnapshot(0.0, events=(fade,)), SceneSnapshot(1.0), SceneSnapshot(2.5))
    centre = (SIZE[1] // 2, SIZE[0] // 2)
    assert near(frames[0][centre], (255, 0, 0))
    assert near(frames[1][centre], (0, 0, 0)) and near(frames[1][0, 0], (0, 0, 0))
    assert near(frames[2][centre], (255, 0, 0)) and near(frames[2][0, 0], BACKGROUND)


def test_burst_spawns_particles_and_rate_is_bindable() -> None:
    emitter = {"type": "emitter", "pos": [0, 0, 0], "rate": 0, "bind": {"rate": "controls.rate"}}
    spec = scene({"sparks": emitter})
    with SceneRenderer(spec, Path("."), size=SIZE) as renderer:
        element: Any = renderer.scene.items["sparks"].element
        renderer.frame(SceneSnapshot(0.0, {"controls.rate": 0}))
        assert element.alive == 0
        renderer.frame(SceneSnapshot(0.1, {"controls.rate": 0}, events=(SceneEvent("burst", "sparks", {"count": 40}),)))
        assert element.alive == 40
        assert not np.array_equal(renderer.capture()[60:120, 130:190], np.full((60, 60, 3), BACKGROUND))
        renderer.frame(SceneSnapshot(1.1, {"controls.rate": 50}))
        assert element.alive > 40
        renderer.frame(SceneSnapshot(1.2, events=(SceneEvent("burst", "nowhere"), SceneEvent("dance", "sparks"))))
        assert renderer.ignored_events == 2


def test_stereo_side_by_side_draws_each_eye_in_its_half() -> None:
    spec = scene({"box": BOX}, outputs=[{"kind": "offscreen", "stereo": "side_by_side", "eye_separation": 0.5}])
    (frame,) = render(spec, SceneSnapshot(0.0))
    left, right = frame[:, : SIZE[0] // 2], frame[:, SIZE[0] // 2 :]
    red = [np.argwhere(np.all(np.abs(half.astype(int) - (255, 0, 0)) < 12, axis=2)) for half in (left, right)]
    assert len(red[0]) > 50 and len(red[1]) > 50
    # each eye sees the box near its half's centre, shifted opposite to the eye's offset
    assert red[0][:, 1].mean() > SIZE[0] / 4 > red[1][:, 1].mean()


def test_two_renderers_one_after_another_and_the_bare_baseline() -> None:
    spec = scene({"box": BOX})
    (first,) = render(spec, SceneSnapshot(0.0))
    (second,) = render(spec, SceneSnapshot(0.0))
    assert np.array_equal(first, second)
    bare = render_bare(spec, Path("."), size=SIZE, frames=5)
    assert len(bare.frame_seconds) == 5 and all(t > 0 for t in bare.frame_seconds)
    assert np.array_equal(bare.last, first)


ASSETS = Path(__file__).resolve().parents[2] / "content" / "assets"
SQUARE = {"type": "model", "file": "sliding_square.egg", "animations": ["slide"]}


def blue_columns(frame: Picture) -> float:
    """Mean column of the blue square's pixels."""
    blue = np.all(np.abs(frame.astype(int) - (0, 0, 255)) < 12, axis=2)
    assert blue.any()
    return float(np.argwhere(blue)[:, 1].mean())


def test_a_play_event_runs_an_animation_on_show_time() -> None:
    spec = scene({"square": SQUARE})
    play = SceneEvent("play", "square", {"anim": "slide"})
    with SceneRenderer(spec, ASSETS, size=SIZE) as renderer:
        starts = [pixel_of(renderer, (x, 0, 0))[1] for x in (0, 1, 3)]
        renderer.frame(SceneSnapshot(10.0))
        still = blue_columns(renderer.capture())
        renderer.frame(SceneSnapshot(10.0, events=(play,)))
        renderer.frame(SceneSnapshot(10.25))
        moving = blue_columns(renderer.capture())
        renderer.frame(SceneSnapshot(15.0))  # not looping: it stays at the end
        end = blue_columns(renderer.capture())
    assert abs(still - starts[0]) < 3 and abs(moving - starts[1]) < 3 and abs(end - starts[2]) < 3


def test_anim_and_play_rate_can_be_bound() -> None:
    spec = scene({"square": {**SQUARE, "bind": {"anim": "controls.clip", "play_rate": "controls.speed"}}})
    with SceneRenderer(spec, ASSETS, size=SIZE) as renderer:
        at = [pixel_of(renderer, (x, 0, 0))[1] for x in (0, 1, 2, 3)]

        def column(time: float, speed: float, clip: str = "slide") -> float:
            renderer.frame(SceneSnapshot(time, {"controls.clip": clip, "controls.speed": speed}))
            return blue_columns(renderer.capture())

        assert abs(column(0.0, 0.5) - at[0]) < 3
        assert abs(column(0.5, 0.5) - at[1]) < 3  # half speed: a quarter second of animation, one frame of four
        assert abs(column(1.0, 1.0) - at[2]) < 3  # a new rate starts from where the animation is
        assert abs(column(1.25, 1.0) - at[3]) < 3
        assert abs(column(1.5, 1.0) - at[0]) < 3  # it loops by default
        skipped = renderer.bindings.skipped
        column(1.6, 1.0, clip="dance")
        assert renderer.bindings.skipped == skipped + 1  # no such animation: the current one goes on


def test_a_missing_animation_is_an_error() -> None:
    with pytest.raises(SceneBuildError, match="no animation dance"):
        SceneRenderer(scene({"square": {**SQUARE, "animations": ["dance"]}}), ASSETS, size=SIZE)


def test_two_outputs_can_split_one_view_between_projectors() -> None:
    nodes = {
        "box": {**BOX, "pos": [-0.3, 0, 0.2]},
        "ball": {"type": "primitive", "shape": "sphere", "pos": [1.5, 0, 0]},
    }
    (whole,) = render(scene(nodes), SceneSnapshot(0.0))
    halves = [
        {"kind": "offscreen", "size": [SIZE[0] // 2, SIZE[1]], "view": [0, 0.5, 0, 1]},
        {"kind": "offscreen", "size": [SIZE[0] // 2, SIZE[1]], "view": [0.5, 1, 0, 1]},
    ]
    with SceneRenderer(scene(nodes, outputs=halves), Path("."), offscreen=False) as renderer:
        renderer.frame(SceneSnapshot(0.0))
        joined = np.hstack([renderer.capture(0), renderer.capture(1)])
    assert joined.shape == whole.shape
    assert float(np.mean(np.abs(joined.astype(float) - whole.astype(float)))) < 1.0


def test_physically_based_shading_draws_the_scene_twice_in_a_row() -> None:
    spec = scene({"box": BOX}, pbr=True, lights={"sun": {"type": "directional", "direction": [0, 1, -0.2]}})
    centre = (SIZE[1] // 2, SIZE[0] // 2)
    for _ in range(2):  # a second pipeline in the same process must work as well as the first
        (frame,) = render(spec, SceneSnapshot(0.0))
        assert frame[centre][0] > 80 and frame[centre][1] < 40 and frame[centre][2] < 40, frame[centre]


def test_fog_hides_far_nodes_and_light_intensity_follows_a_signal() -> None:
    far = {**BOX, "pos": [1.5, 30, 0], "scale": 4}
    near_box = {**BOX, "pos": [-1, 0, 0]}
    spec = scene(
        {"far": far, "near": near_box},
        fog={"color": "#ffffff", "start": 12, "end": 25},
        lights={"sun": {"type": "ambient", "bind": {"intensity": "controls.sun"}}},
    )
    with SceneRenderer(spec, Path("."), size=SIZE) as renderer:
        far_at, near_at = pixel_of(renderer, (1.5, 30, 0)), pixel_of(renderer, (-1, 0, 0))
        renderer.frame(SceneSnapshot(0.0, {"controls.sun": 1.0}))
        bright = renderer.capture()
        renderer.frame(SceneSnapshot(0.1, {"controls.sun": 0.25}))
        dim = renderer.capture()
    assert near(bright[far_at], (255, 255, 255))  # all fog
    assert near(bright[near_at], (255, 0, 0))
    assert near(dim[near_at], (64, 0, 0))
