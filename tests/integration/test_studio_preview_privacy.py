"""End to end: the curator studio's preview never carries camera pixels, through a real AR mirror exhibit and
the real HTTP routes.

A real pose sensor reads a real video file showing a saturated magenta/green checkerboard (colours no scene
here uses). A video file is the pose sensor's source closest to a camera: its frames go through the same
mirror tap (:meth:`sensors.pose.sources.FrameSource._to_tap`) into the same shared-memory frame channel as a
camera's, and real MediaPipe inference runs on them (it finds nobody). ``--simulate`` and ``replay`` sources
replay landmarks only and would send no camera frame at all, so this run is not simulated. The exhibit runs as
``launcher.py run`` wires it (``assemble`` with ``exhibit_file`` set, so the studio is there; render offscreen;
console on a free loopback port), with a renderer that also leaves its main output's picture on disk, so the
test sees that the camera reaches the exhibit's own screen (else the test could not fail).

Then an admin logs in and fetches ``preview.jpg`` and ``preview.mjpg`` with and without ``?camera=1``: no
frame may show the pattern unless the exhibit opted in (``scene.mirror.preview_camera``) and the request
asked for the camera from this computer.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from aiohttp.test_utils import make_mocked_request
from PIL import Image

import content.service
from content.console.context import Refusal
from content.console.studio import _preview_options
from content.render_worker import Renderer, WorkerConfig
from content.renderer import SceneRenderer
from content.scene_model import SceneSpec
from content.service import SceneService
from content.snapshot import SceneSnapshot
from engine.control import accounts as accounts_module
from engine.control.accounts import Accounts
from engine.runtime import Runtime, RuntimeOptions, assemble
from engine.validate import validate_text
from launcher import build_registry
from sensors.pose.driver import PoseSensor
from tests.content.test_preview_privacy import ABSENT, PRESENT, pattern_frame, pattern_share

pytestmark = pytest.mark.timeout(180)

ADMIN, PASSWORD = "ada", "admin pass 1"
FETCH_SECONDS = 4.0
MAIN_EVERY = 0.2
"""The renderer leaves its main output's picture on disk at most this often (seconds)."""

EXHIBIT = """\
format_version: 1
id: studio-privacy
title: {en: Studio preview privacy}
sensors:
  body:
    kind: pose
    source: {video: camera.avi}
    num_poses: 1
scene:
  background: "#102040"
  camera: {position: [0, -10, 0], look_at: [0, 0, 0], fov: 40}
  outputs: [{kind: offscreen, size: [320, 180]}]
  fps_cap: 30
  mirror: {sensor: body, timeout: 30, preview_camera: PREVIEW_CAMERA}
  nodes:
    hands:
      type: anchor
      sensor: body
      landmark: [left_wrist, right_wrist]
      children:
        lantern: {type: primitive, shape: sphere, scale: 0.2, color: "#ffb347"}
"""


def write_camera_video(path: Path, frames: int = 60, fps: float = 30.0) -> Path:
    """A real MJPEG .avi of the pattern (what a camera aimed at a test card would send), read as a camera is."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (640, 480))
    assert writer.isOpened(), "OpenCV cannot write MJPEG"
    bgr = cv2.cvtColor(pattern_frame(), cv2.COLOR_RGB2BGR)
    for _ in range(frames):
        writer.write(bgr)
    writer.release()
    return path


# --- the render process: the real scene renderer, leaving its main output on disk -------------------------------


class ScreenRecordingRenderer(SceneRenderer):
    """The real scene renderer (previews and all); every :data:`MAIN_EVERY` seconds, and on close, it writes its
    main output's picture to ``main.npy`` in the exhibit's folder (atomically), for the test to look at."""

    def __init__(self, config: WorkerConfig) -> None:
        from content.bindings import SnapshotResolver

        spec = SceneSpec.model_validate(config.scene)
        resolver = SnapshotResolver(config.catalogue)
        super().__init__(spec, config.base_dir, size=config.size, offscreen=True, resolver=resolver)
        self.out = config.base_dir
        self.left = 0.0

    def frame(self, snapshot: SceneSnapshot) -> None:
        super().frame(snapshot)
        if time.monotonic() - self.left >= MAIN_EVERY:
            self.left = time.monotonic()
            self._leave_picture()

    def _leave_picture(self) -> None:
        partial = self.out / "main.partial.npy"
        with partial.open("wb") as file:
            np.save(file, self.capture())
        os.replace(partial, self.out / "main.npy")

    def close(self) -> None:
        if not self._closed:
            with contextlib.suppress(RuntimeError):
                self._leave_picture()
        super().close()


def screen_recording_renderer(config: WorkerConfig) -> Renderer:
    return ScreenRecordingRenderer(config)


# --- the running exhibit -----------------------------------------------------------------------------------------


@dataclass
class Running:
    runtime: Runtime
    folder: Path
    url: str
    clients: list[aiohttp.ClientSession] = field(default_factory=list)

    @property
    def service(self) -> SceneService:
        service = self.runtime.service("render")
        assert isinstance(service, SceneService)
        return service

    @property
    def mirror_frames(self) -> int:
        host = self.service.host
        return 0 if host is None else host.stats.mirror_frames

    async def admin(self) -> aiohttp.ClientSession:
        # unsafe: keep cookies set by an IP address (127.0.0.1), as a browser does.
        client = aiohttp.ClientSession(self.url, cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.clients.append(client)
        async with client.post("/api/v1/login", json={"user": ADMIN, "password": PASSWORD}) as response:
            assert response.status == 200, await response.text()
        return client

    def main_picture(self) -> tuple[int, np.ndarray] | None:
        """The main output's latest picture the renderer left (with the file's time, to tell new ones)."""
        path = self.folder / "main.npy"
        try:
            stamp = path.stat().st_mtime_ns
            picture: np.ndarray = np.load(path)
        except (FileNotFoundError, ValueError, EOFError):
            return None
        return stamp, picture


@contextlib.asynccontextmanager
async def running_exhibit(
    tmp_path: Path, broker: str, monkeypatch: pytest.MonkeyPatch, *, preview_camera: bool
) -> AsyncIterator[Running]:
    """The exhibit as ``launcher.py run EXHIBIT --headless --console-port 0`` wires it, camera showing the
    pattern; yields once the mirror has shown camera frames and the console listens."""
    monkeypatch.setattr(accounts_module, "SCRYPT_N", 2**10)  # a cheap hash for the test's own account
    Accounts(tmp_path / "accounts.json").add_user(ADMIN, PASSWORD, "admin")
    write_camera_video(tmp_path / "camera.avi")
    file = tmp_path / "exhibit.yaml"
    file.write_text(EXHIBIT.replace("PREVIEW_CAMERA", "true" if preview_camera else "false"))
    registry = build_registry()
    exhibit = validate_text(file.read_text(), str(file), registry)
    options = RuntimeOptions(
        base_dir=tmp_path,
        broker=broker,
        render="offscreen",
        exhibit_file=file,
        console_port=0,
        accounts=tmp_path / "accounts.json",
        audit_log=tmp_path / "audit.log",
    )
    assert not options.simulate, "a simulated pose sensor sends no camera frames"
    runtime = assemble(exhibit, registry, options)
    monkeypatch.setattr(content.service, "DEFAULT_FACTORY", screen_recording_renderer)
    await runtime.start()
    running: Running | None = None
    try:
        sensor = runtime.sensors["body"]
        assert isinstance(sensor, PoseSensor)
        console = runtime.service("console")
        deadline = time.monotonic() + 90
        while True:
            url = getattr(console, "url", "")
            running = Running(runtime, tmp_path, url.rstrip("/"))
            if url and sensor.frames >= 5 and running.mirror_frames >= 5:
                break
            assert time.monotonic() < deadline, (
                f"not ready: console {url!r}, {sensor.frames} frames inferred, "
                f"{running.mirror_frames} shown by the mirror"
            )
            await asyncio.sleep(0.05)
        assert url.startswith("http://127.0.0.1:"), url
        yield running
    finally:
        if running is not None:
            for client in running.clients:
                await client.close()
        await runtime.stop()


# --- reading the previews over HTTP ------------------------------------------------------------------------------


def decode(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))


async def stills(client: aiohttp.ClientSession, query: str, seconds: float) -> list[np.ndarray]:
    """``GET preview.jpg`` again and again for ``seconds``: each distinct frame (by ``X-Frame-Sequence``) once."""
    pictures: dict[int, np.ndarray] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        async with client.get(f"/api/v1/studio/preview.jpg?{query}") as response:
            assert response.status == 200, await response.text()
            assert response.content_type == "image/jpeg"
            pictures[int(response.headers["X-Frame-Sequence"])] = decode(await response.read())
        await asyncio.sleep(0.05)  # a curator's page polling, not a busy loop on the shared cores
    return list(pictures.values())


async def stream(client: aiohttp.ClientSession, query: str, seconds: float) -> list[np.ndarray]:
    """The parts of ``GET preview.mjpg`` (``multipart/x-mixed-replace; boundary=frame``) for ``seconds``."""
    pictures: list[np.ndarray] = []
    deadline = time.monotonic() + seconds
    async with client.get(f"/api/v1/studio/preview.mjpg?{query}") as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
        body = response.content
        while time.monotonic() < deadline:
            line = await asyncio.wait_for(body.readline(), 10.0)
            if line in (b"\r\n", b""):
                assert line, "the stream ended"
                continue
            assert line == b"--frame\r\n", line
            headers: dict[str, str] = {}
            while (line := await body.readline()) != b"\r\n":
                name, _, value = line.decode("ascii").partition(":")
                headers[name.strip().lower()] = value.strip()
            assert headers["content-type"] == "image/jpeg"
            jpeg = await body.readexactly(int(headers["content-length"]))
            assert await body.readexactly(2) == b"\r\n"
            pictures.append(decode(jpeg))
    return pictures


@dataclass
class Fetched:
    plain_stills: list[np.ndarray]
    camera_stills: list[np.ndarray]
    plain_stream: list[np.ndarray]
    camera_stream: list[np.ndarray]
    screen: list[float]
    """The pattern's share of the main output's pictures left while the previews were fetched."""
    mirror_frames: tuple[int, int]
    """The mirror's camera frames shown, before and after."""


async def fetch_all(running: Running) -> Fetched:
    """All four kinds of preview at once for :data:`FETCH_SECONDS`, watching the main output meanwhile."""
    client = await running.admin()
    before = running.mirror_frames
    screen: dict[int, float] = {}

    async def watch_screen() -> None:
        deadline = time.monotonic() + FETCH_SECONDS
        while time.monotonic() < deadline:
            found = running.main_picture()
            if found is not None:
                screen[found[0]] = pattern_share(found[1])
            await asyncio.sleep(0.1)

    width = "width=320"
    results = await asyncio.gather(
        stills(client, width, FETCH_SECONDS),
        stills(client, f"{width}&camera=1", FETCH_SECONDS),
        stream(client, width, FETCH_SECONDS),
        stream(client, f"{width}&camera=1", FETCH_SECONDS),
        watch_screen(),
    )
    return Fetched(
        results[0], results[1], results[2], results[3], list(screen.values()), (before, running.mirror_frames)
    )


def assert_on_screen(fetched: Fetched) -> None:
    before, after = fetched.mirror_frames
    assert after >= before + 5, f"the mirror showed only {after - before} camera frames while previews were read"
    assert len(fetched.screen) >= 3, "the renderer left too few pictures of its main output"
    assert min(fetched.screen) > PRESENT, f"the main output does not show the camera: shares {fetched.screen}"


def assert_absent(pictures: list[np.ndarray], what: str) -> None:
    for index, picture in enumerate(pictures):
        share = pattern_share(picture)
        assert share < ABSENT, f"{what} {index} shows the camera picture ({share:.1%} of its pixels)"


def shares(pictures: list[np.ndarray]) -> str:
    values = [pattern_share(p) for p in pictures]
    return f"{len(values)} frames, pattern share {min(values):.4f}..{max(values):.4f}" if values else "no frames"


# --- the tests ---------------------------------------------------------------------------------------------------


async def test_no_studio_preview_shows_the_camera_of_an_exhibit_that_did_not_opt_in(
    tmp_path: Path, mosquitto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_exhibit(tmp_path, mosquitto.url, monkeypatch, preview_camera=False) as running:
        fetched = await fetch_all(running)
    print(
        f"screen shares {[round(s, 3) for s in fetched.screen]}; plain stills {shares(fetched.plain_stills)}; "
        f"camera=1 stills {shares(fetched.camera_stills)}; plain stream {shares(fetched.plain_stream)}; "
        f"camera=1 stream {shares(fetched.camera_stream)}"
    )
    assert_on_screen(fetched)
    for pictures in (fetched.plain_stills, fetched.camera_stills, fetched.plain_stream, fetched.camera_stream):
        assert len(pictures) >= 5, "too few previews to tell"
        assert pictures[0].shape == (180, 320, 3)
    # Asking for the camera from this computer changes nothing while the exhibit has not opted in.
    assert_absent(fetched.plain_stills, "preview.jpg")
    assert_absent(fetched.camera_stills, "preview.jpg?camera=1")
    assert_absent(fetched.plain_stream, "preview.mjpg part")
    assert_absent(fetched.camera_stream, "preview.mjpg?camera=1 part")


async def test_an_opted_in_exhibit_shows_its_camera_only_to_a_camera_request_from_this_computer(
    tmp_path: Path, mosquitto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_exhibit(tmp_path, mosquitto.url, monkeypatch, preview_camera=True) as running:
        fetched = await fetch_all(running)
    print(
        f"screen shares {[round(s, 3) for s in fetched.screen]}; plain stills {shares(fetched.plain_stills)}; "
        f"camera=1 stills {shares(fetched.camera_stills)}; plain stream {shares(fetched.plain_stream)}; "
        f"camera=1 stream {shares(fetched.camera_stream)}"
    )
    assert_on_screen(fetched)
    for pictures in (fetched.plain_stills, fetched.camera_stills, fetched.plain_stream, fetched.camera_stream):
        assert len(pictures) >= 5, "too few previews to tell"
    # The measurement works through HTTP: the opted-in camera preview is the pattern...
    for what, pictures in (("preview.jpg?camera=1", fetched.camera_stills), ("mjpg?camera=1", fetched.camera_stream)):
        for index, picture in enumerate(pictures):
            share = pattern_share(picture)
            assert share > PRESENT, f"{what} {index} does not show the opted-in camera ({share:.1%})"
    # ... and a plain request still never is.
    assert_absent(fetched.plain_stills, "preview.jpg")
    assert_absent(fetched.plain_stream, "preview.mjpg part")


class _Peer:
    """A transport that says the request came from ``address``."""

    def __init__(self, address: str) -> None:
        self.address = address

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.address, 5000) if name == "peername" else default


@pytest.mark.parametrize("address", ["192.168.1.20", "10.0.0.5", "203.0.113.7", "fe80::1", "::ffff:192.168.1.20"])
@pytest.mark.parametrize("flag", ["1", "true"])
def test_the_camera_is_refused_to_a_browser_on_another_computer(address: str, flag: str) -> None:
    request = make_mocked_request("GET", f"/api/v1/studio/preview.jpg?camera={flag}", transport=_Peer(address))
    assert request.remote == address
    with pytest.raises(Refusal) as refused:
        _preview_options(request)
    assert refused.value.code == "forbidden"
    assert refused.value.message == "the camera picture is shown only on this computer / 摄像头画面只能在本机预览"
    assert refused.value.response().status == 403
    # The same browser may still have the plain preview.
    plain = make_mocked_request("GET", "/api/v1/studio/preview.jpg?width=320", transport=_Peer(address))
    assert _preview_options(plain) == (False, 320)


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_the_camera_may_be_asked_for_from_this_computer(address: str) -> None:
    request = make_mocked_request("GET", "/api/v1/studio/preview.jpg?camera=1", transport=_Peer(address))
    assert _preview_options(request) == (True, 640)
