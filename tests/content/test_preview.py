"""Live previews of the rendered scene for the studio: asked for with a lease, drawn in the render process,
sent as JPEGs over the render socket, handed out on the engine's loop.

Real Panda3D offscreen rendering in a real ``spawn``ed worker throughout; JPEGs are decoded with Pillow.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from content.preview import (
    MAX_RATE,
    PreviewClosed,
    PreviewFrame,
    PreviewLease,
    PreviewPlan,
    PreviewWant,
    merge_wants,
    preview_size,
)
from content.render_host import RenderHost
from content.render_worker import RenderFault
from content.renderer import SceneRenderer
from content.scene_model import SceneSpec
from content.snapshot import SceneSnapshot
from content.snapshot_source import SnapshotSource
from engine.clock import MonotonicClock
from engine.signals import SignalStore
from engine.supervisor import Backoff

pytestmark = pytest.mark.timeout(90)

SIZE = (320, 180)
BACKGROUND = (16, 24, 48)
BOX = (250, 250, 250)
SCENE: dict[str, Any] = {
    "background": "#101830",
    "camera": {"position": [0, -10, 0], "look_at": [0, 0, 0], "fov": 40},
    "nodes": {
        # A flat, unlit white box in the middle, shown while `s.show` is non-zero.
        "box": {"type": "primitive", "shape": "box", "scale": 1.5, "color": "#fafafa", "bind": {"visible": "s.show"}},
    },
}
MAX_AGE = 0.4
"""A preview is at most this old (seconds since drawn) when it reaches the host's loop."""


# --- helpers ------------------------------------------------------------------------------------------------------


def make_host(tmp_path: Path, **kwargs: Any) -> tuple[RenderHost, SignalStore]:
    store = SignalStore()
    store.declare("s.show", "float")
    store.set("s.show", 0.0)
    source = SnapshotSource(store, MonotonicClock(), [])
    options: dict[str, Any] = {
        "size": SIZE,
        "fps": 30.0,
        "stall_timeout": 5.0,
        "start_timeout": 30.0,
        "backoff": Backoff(initial=0.05, cap=0.2),
    }
    options.update(kwargs)
    scene = options.pop("scene", SCENE)
    return RenderHost(scene, tmp_path, source, store, **options), store


@contextlib.asynccontextmanager
async def running(host: RenderHost) -> AsyncIterator[None]:
    task = asyncio.create_task(host.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def decode(frame: PreviewFrame) -> np.ndarray:
    image = Image.open(io.BytesIO(frame.jpeg))
    assert image.format == "JPEG"
    assert image.size == (frame.width, frame.height)
    return np.asarray(image.convert("RGB"))


async def collect(host: RenderHost, lease: PreviewLease, seconds: float) -> list[tuple[PreviewFrame, float]]:
    """Every preview of the lease's kind for ``seconds``, each with the monotonic time it was handed out."""
    frames: list[tuple[PreviewFrame, float]] = []
    after = 0
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = await asyncio.wait_for(host.next_preview(lease, after), left)
        except TimeoutError:
            break
        frames.append((frame, time.monotonic()))
        after = frame.sequence
    return frames


def near(color: np.ndarray, expected: tuple[int, ...], tolerance: int = 20) -> bool:
    return bool(np.all(np.abs(color.astype(int) - np.array(expected)) <= tolerance))


# --- pure helpers ---------------------------------------------------------------------------------------------------


def test_preview_size_fits_the_width_and_keeps_the_aspect() -> None:
    assert preview_size((1280, 720), 640) == (640, 360)
    assert preview_size((320, 180), 640) == (320, 180)  # never scaled up
    assert preview_size((1920, 1080), 100) == (100, 56)


def test_the_plan_paces_each_kind_and_a_due_kind_waits_until_sent() -> None:
    plan = PreviewPlan()
    assert not plan and plan.due(0.0) == []
    plan.set((PreviewWant(False, 640, 5.0), PreviewWant(True, 320, 2.0)), now=10.0)
    assert {w.camera for w in plan.due(10.0)} == {False, True}  # new streams start at once
    plan.sent(False, 10.0)
    assert [w.camera for w in plan.due(10.1)] == [True]  # not sent yet: still due
    plan.sent(True, 10.1)
    assert plan.due(10.15) == []
    assert [w.camera for w in plan.due(10.2)] == [False]
    plan.sent(False, 13.0)  # late: no burst to catch up
    assert [w.camera for w in plan.due(13.1)] == [True]
    assert {w.camera for w in plan.due(13.2)} == {False, True}
    plan.set((), now=13.2)
    assert not plan and plan.due(20.0) == []


def test_leases_of_a_kind_share_the_widest_and_fastest_stream() -> None:
    closed: list[PreviewLease] = []
    leases = [
        PreviewLease(False, 320, 2.0, closed.append),
        PreviewLease(False, 640, 1.0, closed.append),
        PreviewLease(True, 200, 5.0, closed.append),
    ]
    assert merge_wants(leases) == (PreviewWant(False, 640, 2.0), PreviewWant(True, 200, 5.0))
    leases[2].close()
    leases[2].close()  # idempotent
    assert closed == [leases[2]]
    assert merge_wants(leases) == (PreviewWant(False, 640, 2.0),)


# --- in the renderer ----------------------------------------------------------------------------------------------


def test_the_renderer_draws_a_preview_only_when_armed() -> None:
    spec = SceneSpec.model_validate(SCENE)
    with SceneRenderer(spec, Path("."), size=SIZE) as renderer:
        renderer.frame(SceneSnapshot(0.0, values={"s.show": 1.0}))
        assert renderer.take_previews() == {} and renderer.previews == {}  # nothing asked: no buffer at all
        pictures: dict[bool, np.ndarray] = {}
        for i in range(3):  # a new buffer's first picture is held back
            renderer.arm_previews([(False, 160)])
            renderer.frame(SceneSnapshot(0.1 * i, values={"s.show": 1.0}))
            pictures = renderer.take_previews()
        picture = pictures[False]
        assert picture.shape == (90, 160, 3)
        main = renderer.capture()
        assert near(picture[45, 80], tuple(int(c) for c in main[90, 160]))
        assert near(picture[3, 3], tuple(int(c) for c in main[5, 5]))
        renderer.frame(SceneSnapshot(1.0))
        assert renderer.take_previews() == {}  # not armed: not drawn
        assert not renderer.previews[False].buffer.isActive()
        renderer.drop_previews()
        assert renderer.previews == {}


# --- through the render process ------------------------------------------------------------------------------------


async def test_previews_arrive_at_the_asked_size_as_fresh_jpegs(tmp_path: Path) -> None:
    host, _store = make_host(tmp_path)
    async with running(host):
        await wait_for(lambda: host.stats.status == "running", 30, "the worker")
        capped = host.want_preview(rate=100.0)
        assert capped.rate == MAX_RATE
        capped.close()
        with host.want_preview(width=160, rate=5.0) as lease:
            await host.next_preview(lease, 0)
            frames = await collect(host, lease, 2.0)
            stats = host.stats
    assert 6 <= len(frames) <= 14, f"{len(frames)} previews in 2 s at 5/s"
    sequences = [frame.sequence for frame, _ in frames]
    assert sequences == sorted(set(sequences))
    for frame, handed in frames:
        assert decode(frame).shape == (90, 160, 3)
        assert (frame.width, frame.height) == (160, 90)
        assert handed - frame.taken_at < MAX_AGE, f"a preview {1000 * (handed - frame.taken_at):.0f} ms old"
    assert stats.preview_frames >= len(frames)
    assert stats.preview_age_ms < MAX_AGE * 1000
    assert stats.preview_encode_ms < 100


async def test_the_stream_runs_at_the_asked_rate_and_stops_when_the_lease_closes(tmp_path: Path) -> None:
    host, _store = make_host(tmp_path)
    async with running(host):
        await wait_for(lambda: host.stats.status == "running" and host.stats.frames > 30, 30, "frames")
        assert host.stats.preview_frames == 0, "previews were drawn before anybody asked"
        assert host.latest_preview(False) is None
        lease = host.want_preview(width=160, rate=5.0)
        await host.next_preview(lease, 0)
        started = time.monotonic()
        frames = await collect(host, lease, 3.0)
        rate = len(frames) / (time.monotonic() - started)
        assert 3.5 <= rate <= 6.5, f"{rate:.1f} previews/s, asked 5"
        assert 3.5 <= host.stats.preview_fps <= 6.5
        assert host.latest_preview(False) == frames[-1][0]
        assert host.latest_preview(True) is None  # the other kind was never asked for

        waiting = asyncio.create_task(host.next_preview(lease, frames[-1][0].sequence + 1000))
        await asyncio.sleep(0.05)
        lease.close()
        with pytest.raises(PreviewClosed):
            await waiting  # a waiter on a closed lease is told, not left hanging
        with pytest.raises(PreviewClosed):
            await host.next_preview(lease, 0)
        lease.close()  # idempotent
        count = host.stats.preview_frames
        await asyncio.sleep(2.1)  # the rate is counted over the last two seconds
        assert host.stats.preview_frames <= count + 1  # at most one already in flight
        assert host.latest_preview(False) is None  # nobody watches: no picture kept
        assert host.stats.preview_fps == 0.0
        assert host.stats.heartbeat_age is not None and host.stats.heartbeat_age < 1.0


async def test_previews_follow_the_scene(tmp_path: Path) -> None:
    host, store = make_host(tmp_path)
    async with running(host):
        await wait_for(lambda: host.stats.status == "running", 30, "the worker")
        with host.want_preview(width=160, rate=10.0) as lease:
            first = await host.next_preview(lease, 0)
            assert near(decode(first)[45, 80], BACKGROUND), "the box is hidden: the middle is background"
            store.set("s.show", 1.0)
            changed = time.monotonic()
            frame = first
            while frame.taken_at < changed + 0.1:  # a preview drawn after the snapshot with the change
                frame = await asyncio.wait_for(host.next_preview(lease, frame.sequence), 5.0)
            picture = decode(frame)
            assert near(picture[45, 80], BOX), f"the box does not show: {picture[45, 80]}"
            assert near(picture[3, 3], BACKGROUND)


async def test_previews_resume_after_the_render_process_restarts(tmp_path: Path) -> None:
    host, _store = make_host(tmp_path, fault=RenderFault("crash", after_frames=60))
    async with running(host):
        await wait_for(lambda: host.stats.status == "running", 30, "the worker")
        with host.want_preview(width=160, rate=5.0) as lease:
            first = await host.next_preview(lease, 0)
            first_pid = host.stats.pid
            await wait_for(lambda: host.stats.crashes == 1, 30, "the injected crash")
            await wait_for(lambda: host.stats.status == "running", 30, "the restarted worker")
            assert host.stats.pid != first_pid
            restarted = time.monotonic()
            frame = first
            while frame.taken_at < restarted:  # one drawn by the new worker, without asking again
                frame = await asyncio.wait_for(host.next_preview(lease, frame.sequence), 15.0)
            assert frame.sequence > first.sequence  # sequences go on counting across workers
            assert decode(frame).shape == (90, 160, 3)
    assert host.stats.restarts == 1
