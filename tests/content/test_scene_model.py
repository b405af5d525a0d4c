"""The scene section's model: what curators may write, what they get told, what the engine can check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from content.scene_model import (
    COMMON_PROPERTIES,
    DEFAULT_FONT,
    AvatarsNode,
    EmitterNode,
    GroupNode,
    InstancesNode,
    ModelNode,
    SceneSpec,
    TextNode,
    rgba,
)

FULL_SCENE: dict[str, Any] = {
    "sky": {"top": "#0b1d3a", "bottom": [0.9, 0.5, 0.2]},
    "fog": {"color": "#0b1d3a", "start": 10, "end": 40},
    "camera": {"position": [0, -12, 3], "look_at": [0, 0, 1], "fov": 45},
    "lights": {
        "ambient": {"type": "ambient", "color": "#303040"},
        "moon": {"type": "directional", "direction": [0.3, 1, -1], "bind": {"intensity": "controls.moon"}},
    },
    "nodes": {
        "boat": {
            "type": "model",
            "file": "boat.glb",
            "animations": ["row"],
            "anim": "row",
            "bind": {"anim": "controls.mode"},
        },
        "water": {"type": "primitive", "shape": "plane", "scale": [20, 20, 1], "color": "#103050"},
        "title": {"type": "text", "text": "运河灯会 Canal Lanterns", "size": 0.6, "bind": {"text": "controls.title"}},
        "poster": {"type": "image", "file": "poster.png", "width": 2},
        "bank": {
            "type": "group",
            "pos": [0, 5, 0],
            "bind": {"alpha": "controls.fade"},
            "children": {
                "lamp": {"type": "primitive", "shape": "sphere", "bind": {"z": "body.nearest.hand_height * 2"}},
                "sign": {"type": "text", "text": "码头", "font": "fonts/kai.ttf"},
            },
        },
        "sparks": {"type": "emitter", "pos": [0, 0, 1], "bind": {"rate": "controls.rate * 10", "x": "controls.x"}},
        "crowd": {"type": "avatars", "sensor": "body", "offset": [0, 2, 0]},
        "lanterns": {"type": "instances", "count": 50, "bind": {"glow": "controls.glow"}},
    },
    "outputs": [
        {"kind": "window", "size": [1920, 1080], "fullscreen": True, "display": 1},
        {"kind": "window", "size": [1920, 1080], "region": [0, 1, 0, 1], "view": [0.5, 1, 0, 1]},
        {"kind": "offscreen", "size": [640, 360], "stereo": "side_by_side", "eye_separation": 0.06},
    ],
    "fps_cap": 30,
}


def errors(data: dict[str, Any]) -> list[Any]:
    with pytest.raises(ValidationError) as caught:
        SceneSpec.model_validate(data)
    return list(caught.value.errors())


def test_a_full_scene_parses_with_every_node_type() -> None:
    spec = SceneSpec.model_validate(FULL_SCENE)
    assert isinstance(spec.nodes["boat"], ModelNode)
    assert isinstance(spec.nodes["bank"], GroupNode)
    assert isinstance(spec.nodes["bank"].children["sign"], TextNode)
    assert isinstance(spec.nodes["sparks"], EmitterNode)
    assert isinstance(spec.nodes["crowd"], AvatarsNode)
    assert isinstance(spec.nodes["lanterns"], InstancesNode)
    assert spec.outputs[2].stereo == "side_by_side"
    assert rgba(spec.sky.bottom if spec.sky else "#000000") == (0.9, 0.5, 0.2, 1.0)
    assert [path[-1] for path, _ in spec.walk()] == [
        "boat", "water", "title", "poster", "bank", "lamp", "sign", "sparks", "crowd", "lanterns"
    ]  # fmt: skip


def test_defaults_make_a_black_scene_with_one_window() -> None:
    spec = SceneSpec.model_validate({})
    assert spec.background == "#000000"
    assert [o.kind for o in spec.outputs] == ["window"]
    assert spec.outputs[0].size == (1280, 720)
    assert spec.fps_cap == 60


def test_an_unknown_key_is_an_error_at_its_path() -> None:
    found = errors({"nodes": {"box": {"type": "primitive", "shape": "box", "colour": "#ff0000"}}})
    assert [(e["type"], e["loc"]) for e in found] == [("extra_forbidden", ("nodes", "box", "primitive", "colour"))]


def test_a_bad_colour_is_an_error_with_a_hint() -> None:
    found = errors({"background": "reddish"})
    assert found[0]["loc"] == ("background",)
    assert "#rrggbb" in found[0]["msg"]
    found = errors({"nodes": {"b": {"type": "primitive", "shape": "box", "color": [2, 0, 0]}}})
    assert "0..1" in found[0]["msg"]


def test_an_unknown_node_type_or_shape_is_an_error() -> None:
    assert errors({"nodes": {"b": {"type": "blob"}}})[0]["type"] == "union_tag_invalid"
    assert errors({"nodes": {"b": {"type": "primitive", "shape": "torus"}}})[0]["type"] == "literal_error"


def test_binding_a_property_the_node_does_not_have_is_an_error() -> None:
    found = errors({"nodes": {"b": {"type": "primitive", "shape": "box", "bind": {"rate": "controls.x"}}}})
    assert "cannot bind `rate`" in found[0]["msg"]
    found = errors({"nodes": {"b": {"type": "primitive", "shape": "box", "bind": {"shader.tint": "controls.x"}}}})
    assert "no `shader`" in found[0]["msg"]
    found = errors({"nodes": {"e": {"type": "emitter", "pos": [0, 0, 0], "bind": {"anim": "controls.x"}}}})
    assert "cannot bind `anim`" in found[0]["msg"]


def test_fog_needs_one_kind_and_names_must_be_unique() -> None:
    assert "not both" in errors({"fog": {"density": 0.1, "start": 1, "end": 5}})[0]["msg"]
    assert "needs `density`" in errors({"fog": {"start": 1}})[0]["msg"]
    duplicate = {
        "nodes": {
            "lamp": {"type": "primitive", "shape": "box"},
            "g": {"type": "group", "children": {"lamp": {"type": "primitive", "shape": "box"}}},
        }
    }
    assert "two nodes are named `lamp`" in errors(duplicate)[0]["msg"]


def test_bad_outputs_are_errors() -> None:
    assert "[left, right, bottom, top]" in errors({"outputs": [{"region": [0.5, 0.2, 0, 1]}]})[0]["msg"]
    assert errors({"outputs": [{"stereo": "top_bottom"}]})[0]["type"] == "literal_error"
    assert errors({"outputs": []})[0]["type"] == "too_short"


def test_expressions_lists_every_binding_with_its_yaml_path() -> None:
    spec = SceneSpec.model_validate(FULL_SCENE)
    assert spec.expressions() == [
        (("lights", "moon", "bind", "intensity"), "controls.moon"),
        (("nodes", "boat", "bind", "anim"), "controls.mode"),
        (("nodes", "title", "bind", "text"), "controls.title"),
        (("nodes", "bank", "bind", "alpha"), "controls.fade"),
        (("nodes", "bank", "children", "lamp", "bind", "z"), "body.nearest.hand_height * 2"),
        (("nodes", "sparks", "bind", "rate"), "controls.rate * 10"),
        (("nodes", "sparks", "bind", "x"), "controls.x"),
        (("nodes", "lanterns", "bind", "glow"), "controls.glow"),
    ]


def test_check_files_reports_each_missing_asset_at_its_key(tmp_path: Path) -> None:
    spec = SceneSpec.model_validate(FULL_SCENE)
    problems = spec.check_files(tmp_path)
    assert [path for path, _ in problems] == [
        ("nodes", "boat", "file"),
        ("nodes", "poster", "file"),
        ("nodes", "bank", "children", "sign", "font"),
    ]
    assert "`boat.glb`" in problems[0][1]
    (tmp_path / "boat.glb").write_bytes(b"glTF")
    (tmp_path / "fonts").mkdir()
    (tmp_path / "fonts" / "kai.ttf").write_bytes(b"font")
    assert [path for path, _ in spec.check_files(tmp_path)] == [("nodes", "poster", "file")]


def test_check_files_covers_shaders_and_element_models(tmp_path: Path) -> None:
    spec = SceneSpec.model_validate(
        {
            "nodes": {
                "b": {"type": "primitive", "shape": "box", "shader": {"vertex": "s.vert", "fragment": "s.frag"}},
                "l": {"type": "instances", "file": "lantern.bam"},
            }
        }
    )
    assert [path for path, _ in spec.check_files(tmp_path)] == [
        ("nodes", "b", "shader", "vertex"),
        ("nodes", "b", "shader", "fragment"),
        ("nodes", "l", "file"),
    ]


def test_the_default_font_ships_with_its_licence() -> None:
    assert DEFAULT_FONT.is_file()
    assert DEFAULT_FONT.stat().st_size > 1_000_000  # a full CJK font, not a stub
    assert (DEFAULT_FONT.parent / "NOTICE").is_file()
    assert (DEFAULT_FONT.parent / "LICENSE-Apache-2.0").is_file()


def _properties_without_descriptions(schema: dict[str, Any]) -> list[str]:
    missing: list[str] = []
    for model_name, model in schema.get("$defs", {}).items():
        for prop, body in model.get("properties", {}).items():
            if "description" not in body:
                missing.append(f"{model_name}.{prop}")
    return missing


def test_the_json_schema_describes_every_field() -> None:
    schema = SceneSpec.model_json_schema()
    assert _properties_without_descriptions(schema) == []
    assert set(schema["$defs"]["PrimitiveNode"]["properties"]["shape"]["enum"]) == {
        "box",
        "sphere",
        "plane",
        "cylinder",
    }


def test_element_bindable_properties_match_their_runtimes() -> None:
    from content.elements import AvatarLayer, Emitter, InstanceField

    assert AvatarsNode.own_properties == set(AvatarLayer.properties())
    assert EmitterNode.own_properties == set(Emitter.properties())
    assert InstancesNode.own_properties == set(InstanceField.properties())
    assert {"x", "alpha", "visible", "color.r"} <= COMMON_PROPERTIES
