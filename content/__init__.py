"""Panda3D scenes: the picture half of an exhibit (``scene:`` in the exhibit file), drawn by the
``render`` service in a process of its own; and the operators' web console (``console`` service)."""

from engine.registry import Registry


def register(registry: Registry) -> None:
    # pydantic and the render host only: Panda3D is imported by the render process, aiohttp by the console's start.
    from content.console.service import SERVICE as CONSOLE
    from content.scene_model import SceneSpec
    from content.service import SERVICE

    registry.scene = SceneSpec
    registry.add_service(SERVICE)
    registry.add_service(CONSOLE)
