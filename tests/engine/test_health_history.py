"""The health history: a line a minute and one per change of status, size-capped, never in the exhibit's way."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from engine.clock import VirtualClock
from engine.health import HealthBoard
from engine.health_history import HealthHistory, start_health_history
from engine.signals import SignalStore
from engine.supervisor import Supervisor


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def board(clock: VirtualClock) -> HealthBoard:
    board = HealthBoard(SignalStore(clock), clock)
    board.add("body", "sensor").set("ok")
    board.add("lights", "device").set("ok")
    return board


async def test_a_line_a_minute_and_one_per_change_of_status(tmp_path: Path, clock: VirtualClock, board: HealthBoard):
    path = tmp_path / "health.jsonl"
    history = HealthHistory(board, path, clock)
    task = asyncio.create_task(history.run())
    await clock.advance(0)
    board["body"].set("degraded", "no frames for 2 s")
    board["body"].set("degraded", "no frames for 3 s")  # only the reason: no line of its own
    await clock.advance(60)
    board["body"].set("ok")
    await clock.advance(60)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    found = lines(path)
    assert [line["why"] for line in found] == ["start", "change", "minute", "change", "minute", "stop"]
    start, degraded, minute, recovered, _, stop = found
    assert start["status"] == "ok" and set(start["components"]) == {"body", "lights"}
    assert degraded["status"] == "degraded"
    assert degraded["components"] == {"body": {"status": "degraded", "reason": "no frames for 2 s"}}
    assert minute["components"]["body"] == {"status": "degraded", "reason": "no frames for 3 s"}
    assert minute["components"]["lights"] == {"status": "ok", "reason": ""}
    assert minute["lag_ms"] == 0.0
    assert minute["t"] - start["t"] == pytest.approx(60)
    assert recovered["status"] == "ok" and recovered["components"]["body"]["status"] == "ok"
    assert stop["status"] == "ok"
    board["body"].set("offline", "unplugged")  # no longer listened to after the stop
    assert len(lines(path)) == len(found)


async def test_the_file_is_rotated_at_its_cap(tmp_path: Path, clock: VirtualClock, board: HealthBoard):
    path = tmp_path / "health.jsonl"
    history = HealthHistory(board, path, clock, max_bytes=2_000)
    task = asyncio.create_task(history.run())
    for minute in range(60):
        await clock.advance(60)
        board["lights"].set("degraded" if minute % 2 else "ok", "a dimmer does not answer")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    older = tmp_path / "health.jsonl.1"
    assert older.is_file()
    assert not (tmp_path / "health.jsonl.2").exists()
    assert path.stat().st_size <= 2_000 and older.stat().st_size <= 2_000
    assert lines(path)[-1]["why"] == "stop"
    assert history.written > len(lines(path)) + len(lines(older))  # older lines were dropped, as the cap says


async def test_a_flapping_sensor_writes_a_bounded_number_of_lines(
    tmp_path: Path, clock: VirtualClock, board: HealthBoard
):
    path = tmp_path / "health.jsonl"
    history = HealthHistory(board, path, clock, changes_per_interval=3)
    task = asyncio.create_task(history.run())
    await clock.advance(0)
    for flap in range(10):
        board["body"].set("offline" if flap % 2 == 0 else "ok", "cable")
    await clock.advance(60)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    found = lines(path)
    assert [line["why"] for line in found] == ["start", "change", "change", "change", "minute", "stop"]
    assert found[4]["unrecorded"] == 7


async def test_a_file_that_cannot_be_written_is_one_warning(
    tmp_path: Path, clock: VirtualClock, board: HealthBoard, caplog: pytest.LogCaptureFixture
):
    (tmp_path / "health.jsonl").mkdir()  # a folder where the file should be
    history = HealthHistory(board, tmp_path / "health.jsonl", clock)
    task = asyncio.create_task(history.run())
    with caplog.at_level(logging.WARNING, "engine.health_history"):
        for _ in range(3):
            await clock.advance(60)
            board["body"].set("offline", "gone")
            board["body"].set("ok")
    assert not task.done()  # still running, still trying
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    warnings = [r for r in caplog.records if r.name == "engine.health_history"]
    assert len(warnings) == 1 and "cannot write the health history" in warnings[0].getMessage()
    assert history.written == 0 and history.failed


async def test_the_runtime_keeps_it_only_with_a_state_folder(tmp_path: Path, clock: VirtualClock, board: HealthBoard):
    def runtime(state_dir: Path | None) -> Any:
        options = SimpleNamespace(state_dir=state_dir)
        return SimpleNamespace(options=options, health=board, clock=clock, supervisor=Supervisor(clock))

    without = runtime(None)
    assert start_health_history(cast(Any, without)) is None and without.supervisor.tasks == {}

    kept = runtime(tmp_path / "node")
    history = start_health_history(cast(Any, kept))
    assert history is not None and "health-history" in kept.supervisor.tasks
    await clock.advance(0)
    assert lines(tmp_path / "node" / "health.jsonl")[0]["why"] == "start"
    await kept.supervisor.cancel_all()
