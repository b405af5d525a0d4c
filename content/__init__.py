"""Panda3D scenes: the picture half of an exhibit (``scene:`` in the exhibit file)."""

from engine.registry import Registry


def register(registry: Registry) -> None:
    from content.scene_model import SceneSpec  # pydantic only: Panda3D is imported by the render process

    registry.scene = SceneSpec
