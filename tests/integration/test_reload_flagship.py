"""Hot reload on the flagship itself, as found: any edit was refused (configs compared by object state),
and once accepted the attract loop went dark (a kept state did not keep playing its timeline); an edited
scene was not reloaded at all."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import numpy as np
import pytest

import content.service
from content.offscreen import Picture
from content.render_worker import Renderer, WorkerConfig
from content.scene_model import SceneSpec
from content.service import SceneService
from engine.clock import MonotonicClock
from engine.reload import ExhibitWatcher
from engine.runtime import Runtime, RuntimeOptions, assemble
from engine.validate import load_exhibit
from launcher import build_registry
from tests.integration.test_cli import copy_flagship

ATTRACT = "lanterns.brightness: [[0, 20], [3, 90, ease-in-out], [6, 20, ease-in-out]]"
RAISED = "lanterns.brightness: [[0, 30], [3, 90, ease-in-out], [6, 30, ease-in-out]]"


class OpenHours(MonotonicClock):
    """The real clock, but the wall clock of a Tuesday morning in Beijing: the flagship is open (its
    opening hours would otherwise close it, and fade the lanterns, on Mondays and at night)."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def wall(self) -> datetime.datetime:
        tuesday = datetime.datetime(2026, 12, 8, 2, 0, tzinfo=datetime.UTC)  # 10:00 in Asia/Shanghai
        return tuesday + datetime.timedelta(seconds=time.monotonic() - self.started)


@contextlib.asynccontextmanager
async def flagship(exhibit: Path, options: RuntimeOptions) -> AsyncIterator[tuple[Runtime, ExhibitWatcher]]:
    """The flagship copy, running as `exhibit run` runs it, with nobody in view (the attract loop plays)."""
    registry = build_registry()
    runtime = assemble(load_exhibit(exhibit, registry), registry, options, clock=OpenHours())
    await runtime.start()
    runtime.sensors["body"].inject("disconnect")  # type: ignore[attr-defined]
    watcher = ExhibitWatcher(exhibit, registry, runtime, runtime.clock, interval=0.1)
    runtime.supervisor.start("reload", watcher.run)
    try:
        yield runtime, watcher
    finally:
        await runtime.stop()


class Brightness:
    """Every brightness the lanterns were sent, with its arrival time, from an outside MQTT client."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int]] = []

    async def follow(self, port: int) -> None:
        async with aiomqtt.Client("127.0.0.1", port, identifier="reload-watch") as client:
            await client.subscribe("exhibit/canal-lanterns/devices/lanterns/set", qos=1)
            async for message in client.messages:
                body = json.loads(bytes(message.payload))
                if "brightness" in body:
                    self.samples.append((time.monotonic(), int(body["brightness"])))

    def between(self, start: float, end: float) -> list[int]:
        return [value for at, value in self.samples if start <= at < end]


async def test_editing_the_attract_timeline_changes_the_lanterns_within_a_second_without_going_dark(
    tmp_path: Path, mosquitto
):
    exhibit = copy_flagship(tmp_path, lambda text: text)
    seen = Brightness()
    follower = asyncio.create_task(seen.follow(mosquitto.port))
    options = RuntimeOptions(simulate=True, base_dir=exhibit.parent, broker=mosquitto.url)
    try:
        async with flagship(exhibit, options) as (runtime, watcher):
            await asyncio.sleep(7.0)  # a whole breath and more
            before = seen.between(time.monotonic() - 6.0, time.monotonic())
            assert runtime.store.get("states.mode").value == "attract"
            assert min(before) <= 25 and max(before) >= 85, before

            text = exhibit.read_text(encoding="utf-8")
            assert ATTRACT in text
            exhibit.write_text(text.replace(ATTRACT, RAISED), encoding="utf-8")
            edited = time.monotonic()
            while watcher.reloads == 0:
                assert time.monotonic() - edited < 1.0, "the edit was not taken within a second"
                await asyncio.sleep(0.02)
            await asyncio.sleep(7.0)
            after = seen.between(edited, time.monotonic())
            settled = seen.between(edited + 1.0, time.monotonic())
            assert runtime.store.get("states.mode").value == "attract"
    finally:
        follower.cancel()
    assert watcher.rejected == 0
    assert min(after) > 0, "the lanterns went dark on reload"
    assert min(settled) >= 29, f"the new low point is not followed: {settled}"
    assert max(settled) >= 85, "the attract loop stopped breathing"


class CapturingRenderer:
    """The scene renderer, keeping its last picture in a file named after its process when it stops."""

    def __init__(self, config: WorkerConfig) -> None:
        from content.bindings import SnapshotResolver
        from content.renderer import SceneRenderer

        spec = SceneSpec.model_validate(config.scene)
        self.renderer = SceneRenderer(
            spec, config.base_dir, size=(160, 90), offscreen=True, resolver=SnapshotResolver(config.catalogue)
        )
        self.out = config.base_dir / f"capture-{time.monotonic_ns()}.npy"

    def frame(self, snapshot) -> None:
        self.renderer.frame(snapshot)

    def close(self) -> None:
        np.save(self.out, self.renderer.capture())
        self.renderer.close()


def capturing(config: WorkerConfig) -> Renderer:
    return CapturingRenderer(config)


def corner(picture: Picture) -> np.ndarray:
    return picture[2:10, 2:10].reshape(-1, 3).mean(axis=0)


@pytest.mark.timeout(180)
async def test_an_edited_scene_is_drawn_after_reload_and_a_broken_one_is_refused_at_its_line(
    tmp_path: Path, mosquitto, monkeypatch, caplog
):
    exhibit = copy_flagship(tmp_path, lambda text: text)
    monkeypatch.setattr(content.service, "DEFAULT_FACTORY", capturing)
    options = RuntimeOptions(simulate=True, base_dir=exhibit.parent, broker=mosquitto.url, render="offscreen")
    async with flagship(exhibit, options) as (runtime, watcher):
        service = runtime.service("render")
        assert isinstance(service, SceneService)
        await until(lambda: runtime.store.get("render.health.status").value == "ok", 60)
        text = exhibit.read_text(encoding="utf-8")

        # A mistake in the scene: refused with its line; the running picture goes on.
        broken = text.replace('bind: {h: "30 if states.mode', 'bind: {h: "30 if state.mode')
        assert broken != text
        exhibit.write_text(broken, encoding="utf-8")
        await until(lambda: watcher.rejected == 1, 5)
        line = next(i for i, row in enumerate(broken.splitlines(), 1) if "30 if state.mode" in row)
        assert f"exhibit.yaml:{line}:" in caplog.text
        assert service.scenes == 1 and runtime.store.get("render.health.status").value == "ok"

        # A valid edit: the sky turns red, drawn by a render process started with the new scene.
        sky = 'sky: {top: "#050b1e", bottom: "#1c2a4a"}'
        assert sky in text
        exhibit.write_text(text.replace(sky, 'sky: {top: "#ff0000", bottom: "#ff0000"}'), encoding="utf-8")
        await until(lambda: watcher.reloads == 1 and service.scenes == 2, 5)
        await until(lambda: runtime.store.get("render.health.status").value == "ok", 60)
        assert runtime.store.get("render.health.restarts").value == 0  # a new scene, not a crash
        await asyncio.sleep(1.0)
    captures = sorted(exhibit.parent.glob("capture-*.npy"))
    assert len(captures) == 2, captures
    old, new = (corner(np.load(path)) for path in captures)
    assert old[0] < 60 and new[0] > 150 and new[2] < 60, (old, new)


async def until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
