"""The sound device's outputs and quiet hours (issue 18), without sound processes: a declared sound card that is
unplugged degrades the device once and recovers when it is back (ALSA's card list is a folder the test controls:
no sound card can be unplugged here); quiet periods cap the master by the local time of day; and OpenAL's device
list is read from what Panda3D prints (the real listing on this machine: none but the null output)."""

from __future__ import annotations

import ctypes.util
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest

from devices.sound.device import SoundDevice, SoundDeviceConfig
from devices.sound.outputs import list_outputs, parse_device_list
from devices.sound.process import SoundProcess
from devices.sound.protocol import Master, WorkerSettings
from engine.clock import MonotonicClock
from engine.drivers import DriverContext, Resources
from engine.signals import SignalStore
from engine.sound_model import AudioSettings, SoundSpec
from tests.conftest import run_launcher

USB = "USB Audio CODEC, USB Audio (CARD=CODEC,DEV=0)"


class Sent:
    """Stands in for a sound process: what the device sends it."""

    alive = True

    def __init__(self) -> None:
        self.commands: list[Any] = []

    def send(self, command: Any) -> bool:
        self.commands.append(command)
        return True


def device(audio: dict[str, Any], tmp_path: Path) -> SoundDevice:
    config = SoundDeviceConfig(
        kind="sound",
        sounds={
            "bell": SoundSpec.model_validate({"file": "bell.wav", "output": "booth" if "outputs" in audio else None})
        },
        audio=AudioSettings.model_validate(audio),
        timezone="Asia/Shanghai",
    )
    made = SoundDevice("sound", config, DriverContext("t", SignalStore(), MonotonicClock(), Resources(), tmp_path))
    made.asound = tmp_path / "asound"
    return made


def test_an_unplugged_card_degrades_the_device_once_and_it_recovers(tmp_path: Path, caplog):
    sound = device({"outputs": {"booth": {"device": USB}}}, tmp_path)
    (tmp_path / "asound" / "CODEC").mkdir(parents=True)
    sound.check_outputs()
    assert sound.links["booth"].problem is None
    (tmp_path / "asound" / "CODEC").rmdir()
    with caplog.at_level(logging.WARNING, logger="devices.sound"):
        for _ in range(3):
            sound.check_outputs()
    assert sound.health.status == "degraded"
    assert "CODEC" in sound.health.reason
    said = [r for r in caplog.records if r.name == "devices.sound" and "CODEC" in r.getMessage()]
    assert len(said) == 1, "said once, not at every look"
    (tmp_path / "asound" / "CODEC").mkdir()
    sound.check_outputs()
    assert sound.health.status == "ok"


def test_quiet_periods_cap_the_master_in_the_exhibit_time_zone(tmp_path: Path):
    sound = device({"master": 0.8, "quiet": [{"hours": "09:00-10:00", "level": 0.5}]}, tmp_path)
    sent = Sent()
    sound.links["main"].process = sent  # type: ignore[assignment]
    shanghai = dt.timezone(dt.timedelta(hours=8))
    sound.quiet_at(dt.datetime(2026, 12, 5, 9, 30, tzinfo=shanghai))
    assert sent.commands == [Master(0.5, 3.0)]
    sound.quiet_at(dt.datetime(2026, 12, 5, 1, 45, tzinfo=dt.UTC))  # 09:45 in Shanghai: still quiet, nothing new
    assert len(sent.commands) == 1
    sound.quiet_at(dt.datetime(2026, 12, 5, 10, 0, tzinfo=shanghai))
    assert sent.commands[-1] == Master(0.8, 3.0)  # back to the master the show set
    sound.set({"master.volume": 0.3})
    assert sent.commands[-1] == Master(0.3, 0.0)


def test_the_output_list_comes_from_what_panda_prints():
    said = (
        ":audio(debug): All OpenAL devices:\n"
        f":audio(debug):   {USB}\n"
        ":audio(debug):   ALSA Default [default]\n"
        ":audio(debug): OpenAL drivers:\n"
        ":audio(debug):   OpenAL Soft [default]\n"
    )
    assert parse_device_list(said) == ["ALSA Default", USB]
    assert list_outputs(driver="null") == []  # the null back-end's only device is "No Output"


@pytest.mark.parametrize("value", [0, 1])
def test_a_quiet_period_can_mute(tmp_path: Path, value: int):
    sound = device({"quiet": [{"hours": "22:00-02:00", "level": value}]}, tmp_path)
    sent = Sent()
    sound.links["main"].process = sent  # type: ignore[assignment]
    sound.quiet_at(dt.datetime(2026, 12, 5, 17, 30, tzinfo=dt.UTC))  # 01:30 in Shanghai: past midnight
    assert sent.commands == ([Master(0.0, 3.0)] if value == 0 else [])


async def test_an_output_that_is_not_there_is_said_and_the_default_one_plays():
    """OpenAL opens the default output instead of a named one it cannot find: the worker says so, so the device
    is degraded rather than silently playing in the wrong place (the null back-end: no sound card needed)."""
    process = SoundProcess(WorkerSettings(driver="null", device="Nope, USB Audio (CARD=NOPE,DEV=0)"))
    info = await process.start(30.0)
    try:
        assert info["valid"]
        assert "'Nope, USB Audio (CARD=NOPE,DEV=0)' is not there" in (info["fallback"] or ""), info
    finally:
        await process.close()


def test_exhibit_sound_outputs_lists_what_openal_can_play_on():
    silent = run_launcher("sound", "outputs", "--driver", "null")
    assert silent.returncode == 0, silent.stderr
    assert "No sound output on this computer" in silent.stdout  # the null back-end has none to name
    alsa = run_launcher("sound", "outputs", "--driver", "alsa")
    assert alsa.returncode == 0, alsa.stderr
    if ctypes.util.find_library("asound"):  # Chromium's dependencies bring it: ALSA names its default, card or not
        assert alsa.stdout.splitlines()[1].strip() == "ALSA Default", alsa.stdout
    else:
        assert "No sound output on this computer" in alsa.stdout
