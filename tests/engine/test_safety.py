"""The motion gate: what reaches a motion device while it may not move, and what reaches it once armed."""

from __future__ import annotations

from typing import Any

import pytest

from engine.safety import Safety

SAFE = {"speed": 0.0, "enabled": False}


@pytest.mark.parametrize(
    "command",
    [
        {"enabled": False, "speed": 5.0},
        {"speed": 5.0, "enabled": False},
        {"speed": 0.0, "enabled": True},
        {"speed": 5.0},
    ],
)
def test_a_command_not_all_safe_does_not_reach_a_disarmed_motion_device(command: dict[str, Any]):
    safety = Safety()
    safety.add_motion("turntable", SAFE)
    sent: list[dict[str, Any]] = []
    gate = safety.gate("turntable", lambda values: sent.append(dict(values)))
    gate(command)
    assert sent == [] and safety.blocked == 1
    gate({"enabled": False})  # only bringing it to its safe state: always passes
    gate(SAFE)
    assert sent == [{"enabled": False}, SAFE]
    safety.arm("turntable")
    gate(command)
    assert sent[-1] == command


def test_a_command_not_all_safe_does_not_reach_a_motion_device_after_the_estop():
    safety = Safety()
    safety.add_motion("turntable", SAFE)
    sent: list[dict[str, Any]] = []
    gate = safety.gate("turntable", lambda values: sent.append(dict(values)))
    safety.arm("turntable")
    safety.estop()
    gate({"enabled": False, "speed": 5.0})
    gate({"speed": 0.0, "enabled": False})
    assert sent == [{"speed": 0.0, "enabled": False}]


def test_no_message_reaches_a_disarmed_motion_device_whatever_its_arguments():
    safety = Safety()
    safety.add_motion("turntable", SAFE)
    sent: list[tuple[str, list[Any]]] = []
    send = safety.gate_message("turntable", lambda address, args: sent.append((address, args)))
    send("/turntable/speed", [0.0])  # looks like a safe value, but a message cannot be checked
    send("/turntable", [False, 5.0])
    assert sent == [] and safety.blocked == 2
    safety.arm("turntable")
    send("/turntable", [False, 5.0])
    assert sent == [("/turntable", [False, 5.0])]
