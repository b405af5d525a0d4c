"""The crash record and the show's memory on disk (engine/recovery.py): atomic, counted, and safe mode after
three crashes within five minutes, not after three spread over an hour."""

from __future__ import annotations

import json
from pathlib import Path

from engine.recovery import CRASH_WINDOW, RecoveryFile
from engine.show_memory import ShowMemory


class Wall:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def crash(file: RecoveryFile) -> None:
    """A run that started and never stopped cleanly."""
    file.begin()


def test_a_clean_stop_is_no_crash_and_keeps_the_memory(tmp_path: Path):
    file = RecoveryFile(tmp_path / "show-state.json")
    assert file.begin().memory is None
    memory = ShowMemory(estop=True, estop_by="alice", standby={"evening": "2"}, variables={"visits": 3})
    file.write(memory, running=False)
    again = RecoveryFile(tmp_path / "show-state.json").begin()
    assert again.memory == memory and not again.crashed and not again.safe_mode


def test_three_crashes_within_five_minutes_give_safe_mode_which_outlives_a_restart(tmp_path: Path):
    wall = Wall()
    path = tmp_path / "show-state.json"
    for expected in (0, 1, 2):
        recovered = RecoveryFile(path, wall).begin()
        assert len(recovered.crashes) == expected and not recovered.safe_mode
        wall.now += 60
    third = RecoveryFile(path, wall).begin()
    assert third.crashed and third.safe_mode
    file = RecoveryFile(path, wall)
    assert file.begin().safe_mode  # still, until an operator ends it
    file.leave_safe_mode()
    file.write(ShowMemory(), running=False)
    assert not RecoveryFile(path, wall).begin().safe_mode


def test_crashes_spread_beyond_the_window_do_not_add_up(tmp_path: Path):
    wall = Wall()
    path = tmp_path / "show-state.json"
    for _ in range(6):
        recovered = RecoveryFile(path, wall).begin()
        wall.now += CRASH_WINDOW / 2 + 1
    assert not recovered.safe_mode and len(recovered.crashes) == 2


def test_an_unreadable_file_is_kept_aside_and_counted_as_a_crash(tmp_path: Path):
    path = tmp_path / "show-state.json"
    path.write_text("{not json")
    recovered = RecoveryFile(path).begin()
    assert recovered.crashed and recovered.memory is None
    assert (tmp_path / "show-state.unreadable").read_text() == "{not json"
    assert json.loads(path.read_text())["running"] is True


def test_the_write_is_atomic_no_partial_file_is_left(tmp_path: Path):
    path = tmp_path / "show-state.json"
    file = RecoveryFile(path)
    file.begin()
    file.write(ShowMemory(variables={"name": "夜"}), running=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["show-state.json"]
    assert json.loads(path.read_text(encoding="utf-8"))["show"]["variables"] == {"name": "夜"}
