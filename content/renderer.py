"""The scene renderer: draws a :class:`~content.scene_model.SceneSpec`, one snapshot per frame.

No ShowBase: each renderer owns its graphics engine, scene graph and cameras, so several can be
created and closed one after another in one process (tests do). Frames are driven by the caller
(:class:`content.render_worker` at the scene's ``fps_cap``); animations and particles advance on
the snapshot's show time, so the same snapshots always give the same pictures.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from panda3d.core import (
    Camera,
    CardMaker,
    GraphicsOutput,
    NodePath,
    OrthographicLens,
    PerspectiveLens,
    Point2,
    Texture,
    TransparencyAttrib,
    Vec3,
    Vec4,
)

from content.bindings import Bindings, SnapshotResolver
from content.elements import InstanceField
from content.mirror import FrameReader
from content.offscreen import Display, Picture, open_offscreen, open_window, output_frame, save_png, texture_frame
from content.preview import preview_size
from content.scene_build import BuiltScene, SceneItem, build_scene
from content.scene_model import MirrorSpec, OutputSpec, SceneCameraSpec, SceneSpec, rgba
from content.snapshot import SceneEvent, SceneSnapshot

log = logging.getLogger("content.renderer")

__all__ = ["BareRun", "MirrorBackground", "SceneRenderer", "picture_extent", "render_bare"]

DEFAULT_PICTURE = (640, 480)
"""Camera picture size assumed for placing anchors before the first frame arrives (a simulated sensor's)."""


Rect = tuple[float, float, float, float]
"""A display region: left, right, bottom, top (0..1 of its output)."""


@dataclass
class _Output:
    """One window or buffer, with its cameras and (for offscreen ones) the RAM copy of its picture."""

    output: GraphicsOutput
    spec: OutputSpec
    cameras: list[NodePath]
    texture: Texture | None = None
    eyes: list[Rect] = field(default_factory=list)
    """Each camera's display region, in the same order."""


@dataclass
class _Preview:
    """A small offscreen buffer that redraws the first output's picture for the studio's preview.

    Without ``camera`` it has regions for the sky and the scene only: the AR mirror's card lives in its
    own scene graph, drawn by its own cameras, and this buffer has no region for it, so no camera pixel
    can reach it, whatever the mirror shows on the main output at that moment."""

    buffer: GraphicsOutput
    texture: Texture
    camera: bool
    """Whether the mirror's camera picture is drawn too (only when the scene opted in)."""
    size: tuple[int, int]
    own_cameras: list[NodePath]
    drawn: int = 0
    armed: bool = False


def _lens(camera: SceneCameraSpec, spec: OutputSpec, pixels: tuple[float, float]) -> PerspectiveLens:
    """A lens for a region of ``pixels``, showing the ``spec.view`` part of the whole picture."""
    left, right, bottom, top = spec.view
    # The whole picture's size, of which this region shows the `view` part.
    full_w, full_h = pixels[0] / (right - left), pixels[1] / (top - bottom)
    lens = PerspectiveLens()
    lens.setNearFar(camera.near, camera.far)
    vfov = camera.fov
    hfov = math.degrees(2 * math.atan(math.tan(math.radians(vfov) / 2) * full_w / full_h))
    lens.setFilmSize(full_w, full_h)
    lens.setFov(hfov, vfov)
    if spec.view != (0.0, 1.0, 0.0, 1.0):
        focal = lens.getFocalLength()
        lens.setFilmSize(full_w * (right - left), full_h * (top - bottom))
        lens.setFocalLength(focal)
        lens.setFilmOffset(full_w * ((left + right) / 2 - 0.5), full_h * ((bottom + top) / 2 - 0.5))
    return lens


def picture_extent(mirror: MirrorSpec, picture: tuple[int, int], screen_aspect: float) -> tuple[float, float]:
    """Half-width and half-height of the mirror picture in film units (the screen spans -1..1 both ways)."""
    image_aspect = picture[0] / max(picture[1], 1)
    wider = image_aspect > screen_aspect
    if mirror.fit == "stretch":
        return 1.0, 1.0
    if (mirror.fit == "cover") == wider:
        return image_aspect / screen_aspect, 1.0  # cover: a wider picture overflows at the sides
    return 1.0, screen_aspect / image_aspect


class MirrorBackground:
    """The AR mirror: the camera picture on a card behind the scene, and where image points land on screen.

    The card lies in its own display region under the scene's (an orthographic camera, like the sky),
    its texture replaced from the shared-memory :class:`~content.mirror.FrameReader` whenever a new
    frame is there. Without a fresh frame (none yet, or none for ``spec.timeout`` s) the card is
    hidden and the scene's background shows.

    A mirror is for one screen: the picture fills every output region whole, and landmark content is
    placed through the first output's (first eye's) camera, so ``view`` splits and stereo outputs
    show the picture but do not line content up with it."""

    def __init__(self, spec: MirrorSpec, frames: FrameReader | None = None) -> None:
        self.spec = spec
        self.frames = frames
        self.root = NodePath("mirror")
        maker = CardMaker("mirror-picture")
        maker.setFrame(-1, 1, -1, 1)
        # Texture row 0 is the picture's top row (RAM order): v = 0 at the top of the card. Flipped,
        # the picture's right edge (u = 1) is on the screen's left.
        left, right = (1.0, 0.0) if spec.flip else (0.0, 1.0)
        maker.setUvRange(Point2(left, 1.0), Point2(right, 0.0))
        self.card = self.root.attachNewNode(maker.generate())
        self.card.setY(1.0)
        self.card.setDepthTest(False)
        self.card.setDepthWrite(False)
        self.card.setLightOff(1)
        self.card.setTwoSided(True)
        r, g, b, _a = rgba(spec.tint)
        self.card.setColorScale(r, g, b, spec.opacity)
        if spec.opacity < 1.0:
            self.card.setTransparency(TransparencyAttrib.M_alpha)
        self.texture = Texture("mirror")
        self.texture.setMinfilter(Texture.FT_linear)
        self.texture.setMagfilter(Texture.FT_linear)
        self.texture.setWrapU(Texture.WM_clamp)
        self.texture.setWrapV(Texture.WM_clamp)
        self.card.setTexture(self.texture)
        self.card.hide()
        self.picture = DEFAULT_PICTURE
        self.seq = 0
        """Sequence number of the frame on the card (0: none yet)."""
        self.shown = 0
        """Camera frames put on the card so far."""
        self.captured: float | None = None
        self.screen_aspect = 16 / 9

    def region(self, output: GraphicsOutput, rect: Rect) -> NodePath:
        """Draw the picture into ``rect`` of ``output``, above the sky and under the scene; returns its camera."""
        lens = OrthographicLens()
        lens.setFilmSize(2, 2)
        lens.setNearFar(0.5, 2.0)  # the card lies at y = 1
        camera_np = self.root.attachNewNode(Camera("mirror", lens))
        region = output.makeDisplayRegion(*rect)
        region.setSort(5)
        region.setCamera(camera_np)
        return camera_np

    def update(self, now: float) -> None:
        """Take the newest frame, if there is a new one; show the card only while frames are fresh."""
        frames = self.frames
        if frames is not None and frames.seq != self.seq:
            frame = frames.read()
            if frame is not None:
                self._upload(frame.image)
                self.seq, self.captured = frame.seq, frame.captured
                self.shown += 1
        fresh = self.captured is not None and now - self.captured <= self.spec.timeout
        if fresh and self.card.isHidden():
            self.card.show()
        elif not fresh and not self.card.isHidden():
            self.card.hide()

    def _upload(self, image: npt.NDArray[np.uint8]) -> None:
        height, width = image.shape[:2]
        if (width, height) != self.picture or self.seq == 0:
            self.texture.setup2dTexture(width, height, Texture.T_unsigned_byte, Texture.F_rgb8)
            self.picture = (width, height)
            self._fit()
        # Panda3D keeps RGB textures as BGR in RAM: swap the channels while copying into the texture.
        self.texture.setRamImage(np.ascontiguousarray(image[:, :, ::-1]))

    def set_screen(self, aspect: float) -> None:
        self.screen_aspect = aspect
        self._fit()

    def _fit(self) -> None:
        half_w, half_h = picture_extent(self.spec, self.picture, self.screen_aspect)
        self.card.setScale(half_w, 1.0, half_h)

    def film_points(self, xy: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """Normalised image points (n, 2; x right, y down, 0..1) -> where the card shows them, in film
        coordinates (-1..1, y up)."""
        half_w, half_h = picture_extent(self.spec, self.picture, self.screen_aspect)
        x = np.asarray(xy[:, 0], dtype=np.float64)
        u = 1.0 - x if self.spec.flip else x
        film = np.empty((xy.shape[0], 2), dtype=np.float64)
        film[:, 0] = (2.0 * u - 1.0) * half_w
        film[:, 1] = (1.0 - 2.0 * np.asarray(xy[:, 1], dtype=np.float64)) * half_h
        return film

    def close(self) -> None:
        self.root.removeNode()
        if self.frames is not None:
            self.frames.close()
            self.frames = None


def _matrix(mat: Any) -> npt.NDArray[np.float64]:
    return np.array([[mat.getCell(r, c) for c in range(4)] for r in range(4)], dtype=np.float64)


class SceneRenderer:
    """Builds ``spec`` (assets relative to ``base_dir``) and draws it.

    ``offscreen=True``: one offscreen buffer of ``size`` (the first output's ``stereo`` and ``view``
    still apply), readable with :meth:`capture`. ``offscreen=False``: every output of the spec (windows,
    and buffers for ``kind: offscreen``). ``resolver`` may carry the exhibit's signal types, so bind
    expressions are checked against them. ``frames``: the AR mirror's camera frames (see
    :meth:`attach_frames`), for a scene with ``mirror``.
    """

    def __init__(
        self,
        spec: SceneSpec,
        base_dir: Path,
        *,
        size: tuple[int, int] = (1280, 720),
        offscreen: bool = True,
        resolver: SnapshotResolver | None = None,
        frames: FrameReader | None = None,
    ) -> None:
        self.spec = spec
        self.base_dir = Path(base_dir)
        self.scene: BuiltScene = build_scene(spec, self.base_dir)
        self.bindings = Bindings(spec, self.scene.items, self.scene.lights, resolver)
        self.rig = self.scene.root.attachNewNode("camera")
        self._place_camera(spec.camera)
        self.sky_root = NodePath("sky")
        if self.scene.sky is not None:
            self.scene.sky.reparentTo(self.sky_root)
        self.mirror = MirrorBackground(spec.mirror, frames) if spec.mirror is not None else None
        self.outputs: list[_Output] = []
        self.previews: dict[bool, _Preview] = {}
        """Preview buffers by kind (camera or not), made on the first request for that kind."""
        self.display = self._open(size, offscreen)
        if not self.display.supports_shaders:
            for item in self.scene.items.values():  # moving lanterns: on the CPU where the GPU path is missing
                if isinstance(item.element, InstanceField):
                    item.element.use_cpu_motion()
        if self.mirror is not None:
            self._init_mirror(self.mirror)
        self.ignored_events = 0
        """Events whose action or target this scene does not have."""
        self.frames = 0
        self._last_time: float | None = None
        self._fade: tuple[float, float] | None = None  # (start, duration) of a crossfade dip
        self._fade_level = 1.0
        self._pbr_tasks: Any = None
        self._pbr: Any = None
        if spec.pbr:
            self._init_pbr()
        self._closed = False
        # The first frame after opening an output skips some display regions (seen with the sky on
        # llvmpipe): draw it now, so frame() always gives a complete picture.
        self._draw()

    # --- setup ---

    def _place_camera(self, camera: SceneCameraSpec) -> None:
        self.rig.setPos(Vec3(*camera.position))
        if camera.look_at is not None:
            self.rig.lookAt(Vec3(*camera.look_at))
        else:
            self.rig.setHpr(Vec3(*camera.hpr))

    def _init_mirror(self, mirror: MirrorBackground) -> None:
        # Landmark-driven content follows the picture: it is placed through the first output's camera.
        lens = self.outputs[0].cameras[0].node().getLens()
        mirror.set_screen(lens.getAspectRatio())
        for item in self.scene.items.values():
            if item.element is not None and hasattr(item.element, "project"):
                item.element.project = self.project

    def attach_frames(self, frames: FrameReader) -> None:
        """Show ``frames`` (the pose sensor's camera, through shared memory) as the mirror's picture."""
        if self.mirror is None:
            frames.close()
            raise ValueError("the scene has no `mirror`")
        if self.mirror.frames is not None:
            self.mirror.frames.close()
        self.mirror.frames = frames

    @property
    def mirror_frames(self) -> int:
        """Camera frames shown as the mirror's picture so far (0 without a mirror)."""
        return 0 if self.mirror is None else self.mirror.shown

    def project(self, node: NodePath, xy: npt.NDArray[np.float32], depth: float) -> npt.NDArray[np.float32]:
        """Image points (n, 2) -> points in ``node``'s coordinates on the plane y = ``depth`` that the scene
        camera draws exactly where the mirror picture shows them (NaN rows where the ray misses the plane)."""
        assert self.mirror is not None
        film = self.mirror.film_points(xy)
        camera = self.outputs[0].cameras[0]
        lens = camera.node().getLens()
        # Panda3D multiplies row vectors: film -> camera space -> node space.
        to_node = _matrix(lens.getProjectionMatInv()) @ _matrix(camera.getMat(node))
        n = film.shape[0]
        ends = []
        for z in (-1.0, 1.0):  # the near and far ends of each pixel's ray
            rows = np.column_stack([film, np.full(n, z), np.ones(n)]) @ to_node
            ends.append(rows[:, :3] / rows[:, 3:4])
        near, far = ends
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (depth - near[:, 1]) / (far[:, 1] - near[:, 1])
        points = near + t[:, None] * (far - near)
        points[~np.isfinite(t) | (t < 0)] = np.nan  # the plane is behind the camera or along the ray
        return points.astype(np.float32)

    def _open(self, size: tuple[int, int], offscreen: bool) -> Display:
        if offscreen:
            first = self.spec.outputs[0].model_copy(update={"kind": "offscreen", "size": size, "region": (0, 1, 0, 1)})
            offscreen_display, buffer, texture = open_offscreen(size)
            self._add_output(buffer, first, texture)
            return offscreen_display
        display: Display | None = None
        for index, output in enumerate(self.spec.outputs):
            if output.kind == "window":
                origin = output.origin or (output.display * output.size[0], 0)
                display, window = open_window(
                    display, output.size, title=f"exhibit {index}", fullscreen=output.fullscreen, origin=origin
                )
                self._add_output(window, output, None)
            else:
                display, buffer, texture = (
                    open_offscreen(output.size) if display is None else self._buffer(display, output)
                )
                self._add_output(buffer, output, texture)
        assert display is not None  # outputs has at least one entry
        return display

    @staticmethod
    def _buffer(display: Display, output: OutputSpec) -> tuple[Display, GraphicsOutput, Texture]:
        host = display.outputs[0]
        buffer = host.makeTextureBuffer(f"output {len(display.outputs)}", *output.size, Texture("frame"), True)
        if buffer is None:
            raise RuntimeError(f"could not open a {output.size[0]}x{output.size[1]} offscreen buffer")
        display.outputs.append(buffer)
        return display, buffer, buffer.getTexture()

    def _add_output(self, output: GraphicsOutput, spec: OutputSpec, texture: Texture | None) -> None:
        background = rgba(self.spec.background)
        output.setClearColor(Vec4(*background))
        output.setClearColorActive(True)
        left, right, bottom, top = spec.region
        eyes = [(left, right, 0.0)]
        if spec.stereo == "side_by_side":
            middle = (left + right) / 2
            half = spec.eye_separation / 2
            eyes = [(left, middle, -half), (middle, right, half)]
        cameras: list[NodePath] = []
        rects: list[Rect] = []
        for eye_left, eye_right, shift in eyes:
            if self.scene.sky is not None:
                self._sky_region(output, (eye_left, eye_right, bottom, top))
            if self.mirror is not None:
                self.mirror.region(output, (eye_left, eye_right, bottom, top))
            region = output.makeDisplayRegion(eye_left, eye_right, bottom, top)
            region.setSort(10)
            region.setClearDepthActive(True)
            pixels = (output.getXSize() * (eye_right - eye_left), output.getYSize() * (top - bottom))
            camera = Camera(f"eye {len(cameras)}", _lens(self.spec.camera, spec, pixels))
            camera_np = self.rig.attachNewNode(camera)
            camera_np.setX(shift)
            region.setCamera(camera_np)
            cameras.append(camera_np)
            rects.append((eye_left, eye_right, bottom, top))
        self.outputs.append(_Output(output, spec, cameras, texture, rects))

    def _sky_region(self, output: GraphicsOutput, rect: Rect) -> NodePath:
        lens = OrthographicLens()
        lens.setFilmSize(2, 2)
        lens.setNearFar(0.5, 2.0)  # the sky card lies at y = 1
        camera_np = self.sky_root.attachNewNode(Camera("sky", lens))
        region = output.makeDisplayRegion(*rect)
        region.setSort(0)
        region.setCamera(camera_np)
        return camera_np

    def _init_pbr(self) -> None:
        # Optional and off by default: simplepbr wants a real GPU (GLSL 1.20+, float buffers) and is
        # built around ShowBase; on any failure the scene is drawn with plain shading instead.
        # Shadows stay off (they crash llvmpipe).
        pipeline: Any = None
        if self.display.module == "p3tinydisplay":
            log.warning("physically based shading is off: the software renderer has no shaders")
            return
        try:
            import simplepbr
            from direct.task.Task import TaskManager

            tasks = TaskManager()
            first = self.outputs[0]
            pipeline = simplepbr.init(
                render_node=self.scene.root,
                window=first.output,
                camera_node=first.cameras[0],
                taskmgr=tasks,
                enable_shadows=False,
            )
            tasks.step()
            self.display.render()  # a trial frame: shader errors show here
            self._pbr_tasks, self._pbr = tasks, pipeline
        except Exception as error:  # any failure: plain shading is a fine fallback
            log.warning("physically based shading is off: %s", error)
            self._pbr_tasks = None
            if pipeline is not None:
                pipeline._filtermgr.cleanup()  # gives the scene camera its display region back
            self.scene.root.clearShader()
            self.scene.root.clearShaderInput("camera_world_position")

    # --- frames ---

    def frame(self, snapshot: SceneSnapshot) -> None:
        """Apply bindings and events from ``snapshot``, advance animations, and draw one frame."""
        now = snapshot.time
        dt = 0.0 if self._last_time is None else max(now - self._last_time, 0.0)
        self._last_time = now
        for item in self.scene.items.values():
            item.now = now  # before bindings: an animation started or re-timed by one starts now
        self.bindings.apply(snapshot)
        for event in snapshot.events:
            self._event(event, now)
        for item in self.scene.items.values():
            if item.animator is not None:
                item.animator.update(now)
            if item.element is not None:
                item.element.update(snapshot, dt)
        if self.mirror is not None:
            self.mirror.update(time.monotonic())  # frames are stamped on the system-wide monotonic clock
        self._update_fade(now)
        self._draw()
        self.frames += 1

    def _draw(self) -> None:
        if self._pbr_tasks is not None:
            self._pbr_tasks.step()  # simplepbr's task sets its shaders' camera inputs
        self.display.render()

    def _event(self, event: SceneEvent, now: float) -> None:
        handled = False
        if event.action == "crossfade":
            duration = _float_arg(event.args, "duration", 1.0)
            self._fade = (now, max(duration, 1e-3))
            handled = True
        elif (item := self.scene.items.get(event.target)) is not None:
            handled = _item_event(item, event, now)
        if not handled:
            self.ignored_events += 1
            log.debug("scene event %s on %r ignored", event.action, event.target)

    def _update_fade(self, now: float) -> None:
        level = 1.0
        if self._fade is not None:
            start, duration = self._fade
            t = (now - start) / duration
            if t >= 1.0:
                self._fade = None
            else:
                level = abs(1.0 - 2.0 * max(t, 0.0))  # down to black at half time, back up
        if level == self._fade_level:
            return
        self._fade_level = level
        self.scene.root.setColorScale(level, level, level, 1.0)
        self.sky_root.setColorScale(level, level, level, 1.0)
        if self.mirror is not None:
            self.mirror.root.setColorScale(level, level, level, 1.0)
        for output in self.outputs:
            output.output.setClearColor(self._clear_color())
        for preview in self.previews.values():
            preview.buffer.setClearColor(self._clear_color())

    def _clear_color(self) -> Vec4:
        r, g, b, a = rgba(self.spec.background)
        level = self._fade_level
        return Vec4(r * level, g * level, b * level, a)

    # --- previews ---

    @property
    def preview_camera(self) -> bool:
        """Whether the exhibit lets a camera preview show the mirror's picture (``mirror.preview_camera``)."""
        return self.mirror is not None and self.mirror.spec.preview_camera

    def arm_previews(self, wanted: Iterable[tuple[bool, int]]) -> None:
        """Draw these previews, ``(camera, max_width)`` each, with the next :meth:`frame` (and only then).

        A camera preview shows the mirror's picture only if the scene opted in; otherwise it is drawn
        exactly like a non-camera one."""
        for camera, width in wanted:
            preview = self._preview(camera, width)
            preview.armed = True
            preview.buffer.setActive(True)

    def take_previews(self) -> dict[bool, Picture]:
        """After :meth:`frame`: the armed previews' pictures by kind, (h, w, 3) RGB. A new buffer's first
        picture is left out (a first frame may miss display regions); that kind stays wanted."""
        pictures: dict[bool, Picture] = {}
        for kind, preview in self.previews.items():
            if not preview.armed:
                continue
            preview.armed = False
            preview.buffer.setActive(False)  # costs nothing until armed again
            preview.drawn += 1
            if preview.drawn < 2:
                continue
            picture = texture_frame(preview.texture)
            if picture is not None:
                pictures[kind] = picture
        return pictures

    def drop_previews(self, keep: Collection[bool] = ()) -> None:
        """Free the preview buffers of every kind not in ``keep``."""
        for kind in [k for k in self.previews if k not in keep]:
            self._free_preview(self.previews.pop(kind))

    def _preview(self, camera: bool, max_width: int) -> _Preview:
        first = self.outputs[0]
        left, right, bottom, top = first.spec.region
        pixels = (
            round(first.output.getXSize() * (right - left)),
            round(first.output.getYSize() * (top - bottom)),
        )
        size = preview_size(pixels, max_width)
        with_camera = camera and self.preview_camera
        preview = self.previews.get(camera)
        if preview is not None and preview.size == size and preview.camera == with_camera:
            return preview
        if preview is not None:
            self._free_preview(preview)
        buffer = first.output.makeTextureBuffer(f"preview {int(camera)}", *size, Texture("preview"), True)
        if buffer is None:
            raise RuntimeError(f"could not open a {size[0]}x{size[1]} preview buffer")
        buffer.setClearColor(self._clear_color())
        buffer.setClearColorActive(True)
        own: list[NodePath] = []
        for rect, eye_camera in zip(first.eyes, first.cameras, strict=True):
            # The first output's regions, relative to its own region; the scene cameras are shared, so the
            # preview shows what the screen shows.
            x0, x1 = (rect[0] - left) / (right - left), (rect[1] - left) / (right - left)
            y0, y1 = (rect[2] - bottom) / (top - bottom), (rect[3] - bottom) / (top - bottom)
            if self.scene.sky is not None:
                own.append(self._sky_region(buffer, (x0, x1, y0, y1)))
            if with_camera and self.mirror is not None:
                own.append(self.mirror.region(buffer, (x0, x1, y0, y1)))
            region = buffer.makeDisplayRegion(x0, x1, y0, y1)
            region.setSort(10)
            region.setClearDepthActive(True)
            region.setCamera(eye_camera)
        preview = _Preview(buffer, buffer.getTexture(), with_camera, size, own)
        self.previews[camera] = preview
        return preview

    def _free_preview(self, preview: _Preview) -> None:
        self.display.engine.removeWindow(preview.buffer)
        for camera_np in preview.own_cameras:
            camera_np.removeNode()

    # --- pictures ---

    def capture(self, output: int = 0) -> Picture:
        """An output's latest picture as (h, w, 3) RGB uint8 (the scene as built, before any frame())."""
        chosen = self.outputs[output]
        frame = texture_frame(chosen.texture) if chosen.texture is not None else output_frame(chosen.output)
        if frame is None:
            raise RuntimeError("no picture has been drawn yet")
        return frame

    def save_png(self, path: Path) -> None:
        save_png(self.capture(), Path(path))

    def close(self) -> None:
        """Free the scene and the graphics engine; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._pbr is not None:
            self._pbr._filtermgr.cleanup()
            self._pbr_tasks.removeTasksMatching("*")
        for item in self.scene.items.values():
            destroy = getattr(item.element, "destroy", None)
            if destroy is not None:
                destroy()
        self.previews.clear()
        self.display.close()
        self.scene.root.removeNode()
        self.sky_root.removeNode()
        if self.mirror is not None:
            self.mirror.close()

    def __enter__(self) -> SceneRenderer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _float_arg(args: dict[str, Any], key: str, default: float) -> float:
    value = args.get(key, default)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else default


def _item_event(item: SceneItem, event: SceneEvent, now: float) -> bool:
    """``play`` an animation or ``burst`` particles on one item; False if it cannot."""
    if event.action == "play" and item.animator is not None:
        animator = item.animator
        name = event.args.get("anim", animator.name or next(iter(animator.names()), None))
        if not isinstance(name, str) or not animator.play(name, loop=bool(event.args.get("loop", False)), now=now):
            return False
        if "rate" in event.args:
            animator.set_rate(_float_arg(event.args, "rate", 1.0), now)
        return True
    if event.action == "burst":
        burst = getattr(item.element, "burst", None)
        if burst is None:
            return False
        burst(int(_float_arg(event.args, "count", 30)))
        return True
    return False


# --- the benchmark baseline ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BareRun:
    frame_seconds: list[float]
    """Wall time of each drawn frame."""
    last: Picture
    """The last picture."""


def render_bare(
    spec: SceneSpec,
    base_dir: Path,
    *,
    size: tuple[int, int] = (1280, 720),
    frames: int = 60,
    snapshots: Sequence[SceneSnapshot] = (),
) -> BareRun:
    """Draw the same scene graph ``frames`` times in a bare Panda3D loop: no bindings, no snapshot
    handling, no events, no bookkeeping. With ``snapshots`` (one per frame, cycled), the loop moves the
    content as a hand-written Panda3D program would have to, calling the avatars', emitters' and
    lanterns' own updates directly, so it draws the same frames the renderer draws; what the renderer
    adds on top of this is the cost of being driven by an exhibit file."""
    renderer = SceneRenderer(spec, base_dir, size=size, offscreen=True)
    elements = [item.element for item in renderer.scene.items.values() if item.element is not None]
    try:
        if snapshots:
            renderer.frame(snapshots[0])  # the bound values of that moment, set once
        times: list[float] = []
        previous = snapshots[0].time if snapshots else 0.0
        for index in range(frames):
            start = time.perf_counter()
            if snapshots:
                moment = snapshots[index % len(snapshots)]
                for element in elements:
                    element.update(moment, max(moment.time - previous, 0.0))
                previous = moment.time
            renderer.display.render()
            times.append(time.perf_counter() - start)
        renderer.frames += frames
        return BareRun(times, renderer.capture())
    finally:
        renderer.close()
