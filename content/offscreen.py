"""Panda3D graphics outputs without ShowBase: offscreen buffers (no display needed) and windows.

Each :class:`Display` owns its own :class:`GraphicsEngine`, so renderers can be created and
destroyed one after another in one process. Offscreen rendering tries EGL (``p3headlessgl``,
a GPU, or Mesa's llvmpipe on machines without one) and falls back to Panda3D's software
renderer (``p3tinydisplay``), so a render works in CI with no X server and no GPU.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from panda3d.core import (
    FrameBufferProperties,
    GraphicsEngine,
    GraphicsOutput,
    GraphicsPipe,
    GraphicsPipeSelection,
    RenderState,
    Texture,
    TransformState,
    TypeRegistry,
    WindowProperties,
    loadPrcFileData,
)
from PIL import Image

log = logging.getLogger("content.offscreen")

Picture = npt.NDArray[np.uint8]
"""One picture: shape (height, width, 3), RGB, top row first."""

OFFSCREEN_MODULES = tuple(
    name.strip() for name in os.environ.get("EXHIBIT_OFFSCREEN", "p3headlessgl,p3tinydisplay").split(",") if name
)
"""Display modules tried, in order, for offscreen rendering; ``EXHIBIT_OFFSCREEN=p3tinydisplay`` forces
software rendering (a machine whose GL driver misbehaves)."""
_OFFSCREEN_PIPE_TYPES = {"p3tinydisplay": "TinyOffscreenGraphicsPipe"}
"""A module's pipe type that needs no X server, where its default pipe does (tinydisplay's opens X)."""

# Quiet, deterministic defaults; set before any pipe exists. No audio: a render process plays nothing.
loadPrcFileData(
    "content.offscreen",
    "audio-library-name null\nnotify-level-display error\nnotify-level-device fatal\nsync-video false\n",
)


@dataclass
class Display:
    """A graphics engine with one pipe and the outputs opened on it."""

    engine: GraphicsEngine
    pipe: GraphicsPipe
    outputs: list[GraphicsOutput] = field(default_factory=list)
    module: str = ""
    """The display module in use (``p3headlessgl``, ``p3tinydisplay``; empty for the default pipe)."""

    @property
    def renderer_name(self) -> str:
        """The GL driver in use (``llvmpipe``, a GPU's name, or ``TinyPanda`` for software)."""
        gsg = self.engine.getWindow(0).getGsg() if self.engine.getNumWindows() else None
        return gsg.getDriverRenderer() if gsg is not None else self.pipe.getInterfaceName()

    @property
    def supports_shaders(self) -> bool:
        """GLSL is there (any GL driver); Panda3D's software renderer draws fixed-function only."""
        gsg = self.engine.getWindow(0).getGsg() if self.engine.getNumWindows() else None
        return gsg is not None and bool(gsg.getSupportsBasicShaders())

    def render(self) -> None:
        """Draw one frame on every output (and copy RAM textures)."""
        self.engine.renderFrame()
        # ShowBase's per-frame task, which nothing else runs here: Panda3D caches every state ever made
        # (a new one per frame while glow, the lanterns' sway time or a crossfade moves) until collected.
        TransformState.garbageCollect()
        RenderState.garbageCollect()

    def close(self) -> None:
        self.engine.removeAllWindows()
        self.outputs.clear()


def _fb_props(multisamples: int = 0) -> FrameBufferProperties:
    props = FrameBufferProperties()
    props.setRgbColor(True)
    props.setColorBits(24)
    props.setAlphaBits(8)
    props.setDepthBits(24)
    if multisamples:
        props.setMultisamples(multisamples)
    return props


def _module_pipe(selection: GraphicsPipeSelection, module: str) -> GraphicsPipe | None:
    pipe = selection.makeModulePipe(module)  # also loads the module, registering its pipe types
    type_name = _OFFSCREEN_PIPE_TYPES.get(module)
    if type_name is not None and (pipe is None or not pipe.isValid()):
        pipe_type = TypeRegistry.ptr().findType(type_name)
        pipe = selection.makePipe(pipe_type) if pipe_type is not None else None
    return pipe


def open_offscreen(size: tuple[int, int], multisamples: int = 0) -> tuple[Display, GraphicsOutput, Texture]:
    """An offscreen buffer of ``size`` whose picture is copied to a RAM texture every frame."""
    selection = GraphicsPipeSelection.getGlobalPtr()
    errors: list[str] = []
    for module in OFFSCREEN_MODULES:
        pipe = _module_pipe(selection, module)
        if pipe is None or not pipe.isValid():
            errors.append(f"{module}: no pipe")
            continue
        engine = GraphicsEngine(pipe)
        win_props = WindowProperties.size(*size)
        buffer = engine.makeOutput(
            pipe, "scene", 0, _fb_props(multisamples), win_props, GraphicsPipe.BFRefuseWindow, None, None
        )
        engine.openWindows()  # outputs open lazily: open now, so a failure shows here and not mid-show
        if buffer is None or not buffer.isValid():
            errors.append(f"{module}: could not open a {size[0]}x{size[1]} buffer")
            engine.removeAllWindows()
            continue
        texture = Texture("frame")
        buffer.addRenderTexture(texture, GraphicsOutput.RTMCopyRam)
        display = Display(engine, pipe, [buffer], module)
        log.info("offscreen rendering with %s (%s)", module, pipe.getInterfaceName())
        return display, buffer, texture
    raise RuntimeError("no offscreen renderer works here: " + "; ".join(errors))


def open_window(
    display: Display | None,
    size: tuple[int, int],
    *,
    title: str = "exhibit",
    fullscreen: bool = False,
    origin: tuple[int, int] | None = None,
) -> tuple[Display, GraphicsOutput]:
    """A window on the default display pipe (a second one shares the first one's engine)."""
    if display is None:
        pipe = GraphicsPipeSelection.getGlobalPtr().makeDefaultPipe()
        if pipe is None:
            raise RuntimeError("no display pipe: is there a display? (use offscreen rendering)")
        display = Display(GraphicsEngine(pipe), pipe)
    props = WindowProperties.size(*size)
    props.setTitle(title)
    props.setFullscreen(fullscreen)
    if origin is not None:
        props.setOrigin(*origin)
    gsg = display.outputs[0].getGsg() if display.outputs else None
    window = display.engine.makeOutput(
        display.pipe, title, len(display.outputs), _fb_props(), props, GraphicsPipe.BFRequireWindow, gsg, None
    )
    if window is None:
        raise RuntimeError(f"could not open a {size[0]}x{size[1]} window")
    display.outputs.append(window)
    return display, window


def texture_frame(texture: Texture) -> Picture | None:
    """The RAM copy of a rendered texture as (h, w, 3) RGB, top row first; None before the first frame."""
    if not texture.hasRamImage():
        return None
    data = texture.getRamImageAs("RGB")
    height, width = texture.getYSize(), texture.getXSize()
    frame = np.frombuffer(bytes(data), dtype=np.uint8).reshape(height, width, 3)
    return np.ascontiguousarray(frame[::-1])  # Panda3D stores the bottom row first


def output_frame(output: GraphicsOutput) -> Picture | None:
    """A screenshot of a window (or any output) as (h, w, 3) RGB."""
    texture = output.getScreenshot()
    return None if texture is None else texture_frame(texture)


def save_png(frame: Picture, path: Path) -> None:
    """Write a frame as a PNG."""
    Image.fromarray(frame, "RGB").save(path, format="PNG")
