"""The flagship exhibit's scene (canal-lanterns), drawn for real: Panda3D offscreen on Mesa's GL (llvmpipe
without a GPU, the software renderer as the fallback), and its render process under a real Mosquitto.

The pictures are 640x360 and come from fixed snapshots (show time, signal values, synthetic visitors), so
they are the same on every run. To accept a deliberate change of the scene, run once with
``UPDATE_SCENE_REFERENCE=1`` and look at the new ``tests/reference/canal_lanterns.<backend>.png`` (and once
more with ``EXHIBIT_OFFSCREEN=p3tinydisplay`` for the software renderer's reference).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from panda3d.core import TextNode
from PIL import Image

from content.elements import AvatarLayer
from content.render_worker import FAULT_ENV
from content.renderer import SceneRenderer
from content.scene_build import load_font
from content.scene_model import DEFAULT_FONT, SceneSpec
from content.snapshot import Scalar, SceneSnapshot, VisitorPose
from engine.validate import load_exhibit
from launcher import build_registry
from tests.conftest import FLAGSHIP, Launcher, Mosquitto, Subscriber, require_tool, run_launcher
from tests.support.pose_synth import person
from tests.support.scenes import pictures, pixel_of

REFERENCE = Path(__file__).parent / "reference"
SIZE = (640, 360)
WIDTH, HEIGHT = SIZE
AVATAR = (0x9F, 0xD0, 0xFF)  # the `visitors` node's colour (unlit, so drawn as is)
SHOW_TIME = 3.0

Frame = npt.NDArray[np.uint8]


# --- helpers --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flagship() -> SceneSpec:
    """The scene of the exhibit as shipped (loaded once: validating the exhibit takes about a second)."""
    exhibit = load_exhibit(FLAGSHIP, build_registry())
    scene = getattr(exhibit, "scene", None)
    assert isinstance(scene, SceneSpec), "the flagship exhibit must have a scene"
    return scene


def standing(visitor_id: int, cx: float, arms: str = "down") -> VisitorPose:
    """A visitor standing upright at ``cx`` across the camera image (0 left .. 1 right), facing it."""
    return VisitorPose(visitor_id, person(cx=cx, cy=0.55, scale=0.15, arms=arms))


TWO_VISITORS = (standing(1, 0.3), standing(2, 0.7))


def snapshot(
    hands_raised: float = 0.0, visitors: tuple[VisitorPose, ...] = TWO_VISITORS, at: float = SHOW_TIME
) -> SceneSnapshot:
    """A fixed snapshot: every signal the scene binds has a value, so nothing falls back to a default."""
    values: dict[str, Scalar] = {"body.nearest.hands_raised": hands_raised, "states.mode": "engaged"}
    return SceneSnapshot(at, values, visitors={"body": visitors})


def with_nodes(spec: SceneSpec, change: Callable[[dict[str, Any]], None]) -> SceneSpec:
    """A copy of ``spec`` whose node table ``change`` edited (validated again, as the render worker does)."""
    data = spec.model_dump(mode="json")
    change(data["nodes"])
    return SceneSpec.model_validate(data)


def draw(spec: SceneSpec, *snapshots: SceneSnapshot) -> list[Frame]:
    return pictures(spec, *snapshots, base_dir=FLAGSHIP.parent, size=SIZE)


def luminance(frame: Frame) -> npt.NDArray[np.float64]:
    return np.asarray(frame, dtype=float) @ np.array([0.299, 0.587, 0.114])


def avatar_mask(frame: Frame) -> npt.NDArray[np.bool_]:
    return np.all(np.abs(frame.astype(int) - np.array(AVATAR)) <= 12, axis=2)


def node(spec: SceneSpec, name: str) -> Any:
    return spec.nodes[name]


# --- 1. the reference picture ---------------------------------------------------------------------------------------


def test_the_flagship_scene_matches_its_reference_picture(flagship: SceneSpec, tmp_path: Path) -> None:
    with SceneRenderer(flagship, FLAGSHIP.parent, size=SIZE) as renderer:
        renderer.frame(snapshot())
        frame = renderer.capture()
        skipped = renderer.bindings.skipped
        # Software rendering (no fog, per-vertex lighting) gets its own reference, as in test_scene_render.
        backend = "software" if renderer.display.module == "p3tinydisplay" else "gl"
    # A binding without a value keeps its default: the picture would no longer depend on the snapshot alone.
    assert skipped == 0, "a scene binding reads a signal the fixed snapshot does not set: add it to snapshot()"
    reference_path = REFERENCE / f"canal_lanterns.{backend}.png"
    if os.environ.get("UPDATE_SCENE_REFERENCE"):
        REFERENCE.mkdir(exist_ok=True)
        Image.fromarray(frame).save(reference_path)
    assert reference_path.is_file(), f"no {reference_path.name}: run once with UPDATE_SCENE_REFERENCE=1"
    Image.fromarray(frame).save(tmp_path / "canal_lanterns.png")  # to look at when it fails
    reference = np.asarray(Image.open(reference_path).convert("RGB"))
    assert reference.shape == frame.shape == (HEIGHT, WIDTH, 3)
    signed = frame.astype(float) - reference.astype(float)
    diff = np.abs(signed).max(axis=2)
    mean, p99 = float(diff.mean()), float(np.percentile(diff, 99))
    # 20x20 blocks: edge pixels a driver rasterises differently average out (a whole picture one pixel off
    # moves a block by ~6), a missing node does not (the title ~21, the lantern field ~19, an avatar ~50).
    # Mean and p99 alone cannot see those: most of this picture is a dark, smooth night sky.
    blocks = np.abs(signed.reshape(HEIGHT // 20, 20, WIDTH // 20, 20, 3).mean(axis=(1, 3))).max(axis=2)
    worst = np.unravel_index(int(blocks.argmax()), blocks.shape)
    where = f"from {reference_path} (picture in {tmp_path})"
    assert mean < 3.0 and p99 < 60, f"mean {mean:.2f}, p99 {p99:.0f} {where}"
    assert blocks.max() < 10, (
        f"the 20x20 block at {tuple(20 * int(i) for i in worst)} is off by {blocks.max():.1f} {where}"
    )
    # The reference itself is a night sky over lit water, not a blank picture: the sky darkens upwards.
    assert luminance(frame[:10]).mean() < luminance(frame[100:110]).mean()
    assert avatar_mask(frame).sum() > 200


# --- 2. a bound signal changes the right pixels ----------------------------------------------------------------------


def test_raised_hands_light_the_lanterns_and_leave_the_sky_alone(flagship: SceneSpec) -> None:
    lanterns = node(flagship, "lanterns")
    x0, y0, x1, y1 = lanterns.area
    low, high = lanterns.height
    with SceneRenderer(flagship, FLAGSHIP.parent, size=SIZE) as renderer:
        # Where the lantern field lies on screen: its near corners low and high, its far corners high.
        top, _ = pixel_of(renderer, (0.0, y0, high))
        far_top, _ = pixel_of(renderer, (x0, y1, high))
        bottom, near_left = pixel_of(renderer, (x0, y0, low))
        _, near_right = pixel_of(renderer, (x1, y0, low))
        renderer.frame(snapshot(hands_raised=0.0))
        dark = renderer.capture()
        renderer.frame(snapshot(hands_raised=1.0))
        lit = renderer.capture()
    field = (slice(min(top, far_top), bottom + 1), slice(near_left, near_right + 1))
    gain = luminance(lit[field]) - luminance(dark[field])
    # Lantern glow goes from 0.35 to 1 and the lantern light brightens the water under them.
    assert gain.mean() > 8.0, f"the lantern field brightened by only {gain.mean():.1f} levels on average"
    assert np.percentile(gain, 99) > 60, "the lanterns themselves should flare, not just the water"
    assert (gain < -2).mean() < 0.01, "raising hands must not darken the lantern field"
    # Above the lanterns (minus half a lantern's height) is sky, the title and the fogged houses: no light there.
    sky = slice(0, min(top, far_top) - 12)
    sky_change = np.abs(lit[sky].astype(int) - dark[sky].astype(int)).max(axis=2)
    assert sky_change.mean() < 0.5 and (sky_change > 8).mean() < 0.01, (
        f"the sky changed: mean {sky_change.mean():.2f}, {(sky_change > 8).mean():.2%} of its pixels by more than 8"
    )


# --- 3. Chinese text ------------------------------------------------------------------------------------------------


def test_the_bilingual_title_draws_its_chinese_characters(flagship: SceneSpec) -> None:
    title = node(flagship, "title")
    chinese = title.text.split("·")[0].strip()
    assert chinese == "运河灯影"
    font = load_font(DEFAULT_FONT)  # the scene's default font must have every glyph of the title
    probe = TextNode("probe")
    probe.setFont(font)
    missing = [c for c in title.text if not c.isspace() and not probe.hasExactCharacter(c)]
    assert not missing, f"the font lacks {missing}"

    def hide_title(nodes: dict[str, Any]) -> None:
        nodes["title"]["visible"] = False

    def reorder_chinese(nodes: dict[str, Any]) -> None:
        # Same characters, other order: full-width glyphs share one advance, so the English part stays put.
        nodes["title"]["text"] = title.text.replace(chinese, chinese[::-1])

    shot = snapshot()
    (shown,) = draw(flagship, shot)
    (hidden,) = draw(with_nodes(flagship, hide_title), shot)
    (reordered,) = draw(with_nodes(flagship, reorder_chinese), shot)

    ink = np.abs(shown.astype(int) - hidden.astype(int)).max(axis=2) > 40
    assert ink.any(), "the title draws nothing"
    rows, cols = np.nonzero(ink)
    # One line of text near the top, centred (its anchor is at x = 0, straight ahead of the camera).
    assert rows.max() - rows.min() < 40 and rows.max() < HEIGHT / 2, (rows.min(), rows.max())
    assert abs((cols.min() + cols.max()) / 2 - WIDTH / 2) < 20 and cols.max() - cols.min() > 100
    # The first part of the line is the four Chinese characters: strokes, neither blank nor a filled block.
    span = cols.max() - cols.min()
    han = ink[rows.min() : rows.max() + 1, cols.min() : cols.min() + int(span * 0.3)]
    assert 0.1 < han.mean() < 0.7, f"{han.mean():.2f} of the Chinese part is ink"
    # Real glyphs differ from each other (missing ones would all be the same box): reordering them shows.
    moved = np.abs(reordered.astype(int) - shown.astype(int)).max(axis=2) > 40
    assert moved[:, : cols.min() + int(span * 0.3)].sum() > 0.3 * han.sum()
    assert moved[:, cols.min() + int(span * 0.45) :].sum() == 0, "the English part should not move"


# --- 4. one avatar per visitor --------------------------------------------------------------------------------------

# Visitors as (id, position across the camera image); ids deliberately not in order of arrival.
CROWD = ((4, 0.2), (9, 0.8), (17, 0.4), (23, 0.6))


def test_every_visitor_gets_an_avatar_where_a_mirror_would_show_them(flagship: SceneSpec) -> None:
    avatars = node(flagship, "visitors")
    with SceneRenderer(flagship, FLAGSHIP.parent, size=SIZE) as renderer:
        layer = renderer.scene.items["visitors"].element
        assert isinstance(layer, AvatarLayer)

        def column(cx: float) -> int:
            # Mirrored: a visitor at the camera image's left is on the screen's right.
            x = avatars.center[0] - (cx - 0.5) * avatars.width
            return pixel_of(renderer, (x, avatars.depth, avatars.center[1]))[1]

        half_band = abs(column(0.5) - column(0.5 + 0.08))  # wider than a figure with its arms down
        for count in (1, 2, 4, 1, 0):
            crowd = CROWD[:count]
            renderer.frame(snapshot(visitors=tuple(standing(i, cx) for i, cx in crowd)))
            assert layer.visible_ids == tuple(sorted(i for i, _ in crowd))
            mask = avatar_mask(renderer.capture())
            claimed = np.zeros(WIDTH, dtype=bool)
            for visitor_id, cx in crowd:
                at = column(cx)
                band = slice(max(at - half_band, 0), at + half_band + 1)
                claimed[band] = True
                assert mask[:, band].sum() > 300, f"{count} visitors: no figure for {visitor_id} near column {at}"
            stray = mask[:, ~claimed].sum()
            assert stray < 20, f"{count} visitors: {stray} avatar-coloured pixels outside the visitors' places"
        # The left-most visitor of the camera image stands on the right half of the screen.
        assert column(0.2) > WIDTH / 2 > column(0.8)


# --- 5. the shot command --------------------------------------------------------------------------------------------


def test_the_shot_command_writes_a_picture_of_the_running_exhibit(tmp_path: Path) -> None:
    out = tmp_path / "shot.png"
    result = run_launcher("shot", "canal-lanterns", "--out", str(out), "--at", "2", "--size", "320x180", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    picture = Image.open(out)
    assert picture.format == "PNG" and picture.size == (320, 180)
    pixels = np.asarray(picture.convert("RGB"))
    assert pixels.std() > 5 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50, "a uniform picture"
    assert pixels[0, :, 2].mean() > pixels[0, :, 0].mean()  # the top of the picture is the night sky: blue


# --- 6. a renderer crash does not interrupt device commands ---------------------------------------------------------

WASH_SET = "exhibit/canal-lanterns/devices/wash/set"
STATUS = "exhibit/canal-lanterns/status"
RECOVERED = "renderer running again (restart 2)"


class Lines:
    """A process's output, read line by line in a thread with the time each line arrived."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def first(self, text: str) -> float | None:
        return next((at for at, line in list(self.lines) if text in line), None)

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def join(self) -> None:
        self._thread.join(5)


class Arrivals(Subscriber):
    """mosquitto_sub, with the time each message arrived (the base class keeps only the text)."""

    def __init__(self, port: int, topic: str) -> None:
        self.stamped: list[tuple[float, str]] = []  # one list of pairs: never half-updated when read
        super().__init__(port, topic)

    def _read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            text = line.rstrip("\n")
            self.stamped.append((time.monotonic(), text))
            self.lines.append(text)


def arrival_after(commands: list[tuple[float, int]], sent_at: float, level: int) -> float:
    """When ``level`` first arrived on the broker after ``sent_at`` (infinity if it never did)."""
    return next((at for at, seen in commands if at >= sent_at and seen == level), float("inf"))


@pytest.fixture
def arrivals(mosquitto: Mosquitto) -> Iterator[Arrivals]:
    watch = Arrivals(mosquitto.port, "exhibit/canal-lanterns/#")
    yield watch
    watch.close()


def test_a_crashing_renderer_is_restarted_while_light_commands_keep_flowing(
    mosquitto: Mosquitto,
    arrivals: Arrivals,
    launcher: Callable[..., Launcher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    oscsend = require_tool("oscsend")
    # The first two render processes crash after 20 frames each; the third runs on.
    monkeypatch.setenv(FAULT_ENV, "crash:20:2")
    show = launcher("run", "canal-lanterns", "--headless", "--broker", mosquitto.url)
    output = Lines(show.process)
    try:
        arrivals.wait_for(lambda line: line == f"{STATUS} online", timeout=20)
    except AssertionError as error:
        raise AssertionError(f"{error}\nexhibit output:\n{output.text()}") from None

    sends: list[float] = []
    deadline = time.monotonic() + 30
    recovered: float | None = None
    # Keep the wash moving through both crashes and restarts, and one second past the recovery.
    while recovered is None or time.monotonic() < recovered + 1.0:
        assert time.monotonic() < deadline, f"the renderer did not recover within 30 s:\n{output.text()}"
        assert show.process.poll() is None, f"the exhibit stopped:\n{output.text()}"
        value = "0.2" if len(sends) % 2 else "0.8"
        sends.append(time.monotonic())  # before: the command may reach the broker before oscsend exits
        subprocess.run([oscsend, "127.0.0.1", "9000", "/canal/wash", "f", value], check=True, timeout=5)
        time.sleep(0.1)
        recovered = recovered or output.first(RECOVERED)
    time.sleep(0.6)  # the last command's way through the exhibit and the broker

    show.signal(signal.SIGTERM)
    code = show.process.wait(15)
    output.join()
    log = output.text()
    assert code == 0, log
    # What the assertions below print on failure: the exhibit's log and the commands' arrival times.
    story = (
        f"exhibit output:\n{log}\nbroker:\n"
        + "\n".join(f"{at:.2f} {line}" for at, line in arrivals.stamped)
        + "\nsent at: "
        + " ".join(f"{at:.2f}" for at in sends)
    )
    assert "Traceback" not in log, story
    # Both crashes were reported to the operator in Chinese and English, each with its restart.
    crashes = [line for line in log.splitlines() if "渲染进程意外退出" in line and "restarting" in line]
    assert len(crashes) == 2, story
    assert "渲染已恢复（第 2 次重启）" in log, story

    # Only the commands the OSC sends caused (0.2 -> 51, 0.8 -> 204): the schedule's opening or closing
    # fade, depending on the time of day, must not fill a gap.
    ours = {f'{WASH_SET} {{"brightness": {level}, "expiry": 10.0}}': level for level in (51, 204)}
    commands = [(at, ours[line]) for at, line in list(arrivals.stamped) if line in ours]
    first_crash = output.first("渲染进程意外退出")
    assert first_crash is not None and recovered is not None, story
    assert sends[0] < first_crash and sends[-1] > recovered, f"sending must span the whole window\n{story}"
    # No gap in the commands: each send's level reaches the broker within half a second, however the
    # renderer is doing. (Measured from each send rather than between arrivals, so a pause of this test's
    # own sending, on a busy machine, is not blamed on the exhibit.)
    latency = [arrival_after(commands, at, 204 if index % 2 == 0 else 51) - at for index, at in enumerate(sends)]
    worst = int(np.argmax(latency))
    assert latency[worst] < 0.5, f"the command sent at {sends[worst]:.2f} took {latency[worst]:.2f} s\n{story}"
    # Each send moved the light (a repeated level is the device's acknowledged confirmation of a step).
    levels = [level for _, level in commands]
    changes = 1 + sum(1 for a, b in itertools.pairwise(levels) if a != b)
    assert changes >= 0.9 * len(sends), f"{changes} level changes arrived for {len(sends)} sends\n{story}"
