"""Placed sounds and narration in a running show (issue 18), heard through OpenAL Soft's `wave` back-end.

The runtime runs simulated (`--simulate`): the pose sensor sees the studio's simulated visitors, which go through
the real tracking, features and zones; the sound device reads them as it would a camera's. Sounds of different
pitches share the mix and are told apart by band-pass filtering it.

The room's frame is the audience's: the camera at the exhibit faces them, so a visitor on the audience's left is
on the right of the camera's picture (image x above 0.5).
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from content.audio_synth import tone, write_wav
from devices.sound.wavfile import band, level_db, onsets, read_wav, segment
from engine.runtime import Runtime
from tests.integration.test_sound_show import sounding, until

EXHIBIT = """\
format_version: 1
id: placed-sounds
title: {en: Placed sounds}
sensors:
  panel:
    kind: osc
    port: {port}
    signals:
      language: {address: /language, type: int, range: [0, 1]}
  body:
    kind: pose
    source: {camera: 0}
    zones:
      bridge: {polygon: [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]}   # the picture's right half
sounds:
  steps: {file: steps.wav, loop: true, autoplay: true, follow: {sensor: body, landmark: nose}}
  bed: {file: bed.wav, loop: true, autoplay: true, volume: 0.5}
narration:
  language: zh
  language_from: panel.language
  duck: 0.25
  zones:
    bridge:
      cooldown: 3s
      files: {zh: bridge-zh.wav, en: bridge-en.wav}
"""
STEPS_HZ, BED_HZ, ZH_HZ, EN_HZ = 440.0, 220.0, 1000.0, 1500.0
BEEPS = 3
"""A narration here is three 0.2 s beeps 0.2 s apart: a restart would add onsets."""


def beeps(hz: float) -> np.ndarray:
    gap = np.zeros(int(0.2 * 48000))
    return np.concatenate([np.r_[tone(0.2, hz, 0.5), gap] for _ in range(BEEPS)])


@pytest.fixture
def placed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Runtime, Path]:
    write_wav(tmp_path / "steps.wav", tone(2.0, STEPS_HZ, 0.5))
    write_wav(tmp_path / "bed.wav", tone(2.0, BED_HZ, 0.5))
    write_wav(tmp_path / "bridge-zh.wav", beeps(ZH_HZ))
    write_wav(tmp_path / "bridge-en.wav", beeps(EN_HZ))
    return sounding(tmp_path, monkeypatch, EXHIBIT, simulate=True)


async def started(runtime: Runtime) -> tuple[Any, Any]:
    """Start the show; its sound device and pose sensor once the sound process is ready."""
    await runtime.start()
    sound, body = runtime.devices["sound"], runtime.sensors["body"]
    await until("the sound process is ready", lambda: sound.health.status == "ok", timeout=30.0)
    return sound, body


def heard(runtime: Runtime, render: Path) -> tuple[np.ndarray, int, float]:
    """The mix, its rate, and the monotonic time of its first sample."""
    closed = runtime.devices["sound"].closed_at  # type: ignore[attr-defined]
    assert closed is not None, "the sound process never said it closed its output"
    samples, rate = read_wav(render)
    return samples, rate, closed - len(samples) / rate


async def test_a_sound_following_a_visitor_is_heard_on_their_side(placed):
    runtime, render = placed
    _, body = await started(runtime)
    marks: dict[str, float] = {}
    try:
        visitor = body.add_puppet({"x": 0.8, "height": 0.6})
        await until("the visitor is tracked", lambda: runtime.store.get("body.count").value == 1)
        await asyncio.sleep(0.5)
        marks["left"] = time.monotonic()
        await asyncio.sleep(1.0)
        body.pose_puppet(visitor, {"x": 0.2})
        await asyncio.sleep(0.8)
        marks["right"] = time.monotonic()
        await asyncio.sleep(1.0)
    finally:
        await runtime.stop()
    samples, rate, start = heard(runtime, render)
    steps = band(samples, rate, STEPS_HZ - 40, STEPS_HZ + 40)

    def sides(mark: str) -> tuple[float, float]:
        window = segment(steps, rate, marks[mark] - start, marks[mark] - start + 0.8)
        return level_db(window[:, 0]), level_db(window[:, 1])

    left, right = sides("left")
    assert left > right + 6, f"a visitor on the audience's left: left {left:.1f} dB, right {right:.1f} dB"
    left, right = sides("right")
    assert right > left + 6, f"the visitor moved to the right: left {left:.1f} dB, right {right:.1f} dB"


async def test_narration_speaks_once_per_visit_in_the_chosen_language_over_ducked_sound(placed):
    runtime, render = placed
    sound, body = await started(runtime)
    marks: dict[str, float] = {}
    try:
        await asyncio.sleep(0.5)
        marks["before"] = time.monotonic()
        first = body.add_puppet({"x": 0.75, "height": 0.6})
        await until("the first narration starts", lambda: sound.narrations == 1)
        marks["speaking"] = time.monotonic()
        await asyncio.sleep(0.4)
        second = body.add_puppet({"x": 0.9, "height": 0.5})
        await asyncio.sleep(4.0)  # both stay, past the narration and past its cooldown
        assert sound.narrations == 1, "the narration started again while visitors stayed"
        body.remove_puppet(first)
        body.remove_puppet(second)
        await until("the zone is empty", lambda: runtime.store.get("body.zone.bridge.count").value == 0)
        runtime.store.set("panel.language", 1)  # the language button: English
        body.add_puppet({"x": 0.8, "height": 0.6})
        await until("the second narration starts", lambda: sound.narrations == 2)
        await asyncio.sleep(1.5)
    finally:
        await runtime.stop()
    samples, rate, start = heard(runtime, render)
    zh = [t + start for t in onsets(band(samples, rate, ZH_HZ - 60, ZH_HZ + 60), rate, threshold=0.05)]
    en = [t + start for t in onsets(band(samples, rate, EN_HZ - 60, EN_HZ + 60), rate, threshold=0.05)]
    assert len(zh) == BEEPS, f"the Chinese narration, once and whole: beeps at {zh}"
    assert len(en) == BEEPS, f"then the English one, once: beeps at {en}"
    assert zh[-1] < en[0]
    bed = band(samples, rate, BED_HZ - 40, BED_HZ + 40)
    before = level_db(segment(bed, rate, marks["before"] - start - 0.4, marks["before"] - start)[:, 0])
    ducked = level_db(segment(bed, rate, zh[0] - start + 0.5, zh[0] - start + 1.0)[:, 0])
    assert abs((before - ducked) - 20 * math.log10(1 / 0.25)) < 2.0, (before, ducked)
