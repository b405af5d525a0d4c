"""Sound in a running show (issue 18), heard through OpenAL Soft's `wave` back-end: the real runtime, the real
sound process, the mix rendered to a file in real time and read back.

One run, in order: a cue's `{sound: beep}` starts in the mix when GO was pressed, at the file's level; a mapping
from an input to `sound.tone.volume` lowers the playing tone by the ratio asked; PANIC leaves the mix silent within
`panic_time`; the PANIC reset brings the master back (the tone, still looping, is heard at its mapped level), and
after the tone is stopped a new `{sound: beep}` starts when its cue is fired.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from content.audio_synth import tone, write_wav
from devices.sound.wavfile import level_db, onsets, read_wav, segment
from engine.runtime import Runtime, RuntimeOptions, assemble
from engine.validate import validate_text
from launcher import build_registry
from tests.support.net import free_port

EXHIBIT = """\
format_version: 1
id: sounding
title: {en: Sound in a show}
sensors:
  panel:
    kind: osc
    port: {port}
    signals:
      level: {address: /level, range: [0, 1]}
sounds:
  beep: {file: beep.wav}
  tone: {file: tone.wav, loop: true}
mappings:
  - {from: panel.level, to: sound.tone.volume, input: [0, 1]}
cues:
  main:
    cues:
      - {id: "1", actions: [{sound: beep}]}
      - {id: "2", actions: [{sound: tone}]}
      - {id: "3", actions: [{sound: tone, do: stop}]}
      - {id: "4", actions: [{sound: beep}]}
safety:
  panic_time: 1s
"""
BEEP_LEVEL = 0.5
FRAME_TOLERANCE = 0.03
"""Seconds an onset may be off: the wave back-end's blocks, the loop's wake-ups and a busy CI machine."""


async def until(what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


def sounding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exhibit_text: str, simulate: bool = False
) -> tuple[Runtime, Path]:
    """The runtime of ``exhibit_text`` (its `{port}` a free UDP port) in ``tmp_path``, mixing into a file there:
    the runtime, and the file."""
    text = exhibit_text.replace("{port}", str(free_port(socket.SOCK_DGRAM)))
    (tmp_path / "exhibit.yaml").write_text(text, encoding="utf-8")
    render = tmp_path / "mix.wav"
    monkeypatch.setenv("EXHIBIT_AUDIO_RENDER", str(render))
    registry = build_registry()
    exhibit = validate_text(text, str(tmp_path / "exhibit.yaml"), registry)
    options = RuntimeOptions(
        base_dir=tmp_path, console=False, embedded_port=0, state_dir=tmp_path / "s", simulate=simulate
    )
    return assemble(exhibit, registry, options), render


async def test_cues_mappings_and_panic_as_heard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_wav(tmp_path / "beep.wav", tone(0.3, 660.0, BEEP_LEVEL))
    write_wav(tmp_path / "tone.wav", tone(2.0, 440.0, 0.5))
    runtime, render = sounding(tmp_path, monkeypatch, EXHIBIT)
    await runtime.start()
    marks: dict[str, float] = {}
    try:
        sound = runtime.devices["sound"]
        await until("the sound process is ready", lambda: sound.health.status == "ok")
        show = runtime.show
        assert show is not None
        await asyncio.sleep(0.5)  # some silence first: the first onset is the GO's
        marks["go"] = time.monotonic()
        show.go("main")
        await asyncio.sleep(0.6)
        runtime.store.set("panel.level", 1.0)
        marks["tone"] = time.monotonic()
        show.go("main")
        await asyncio.sleep(1.0)
        marks["quieter"] = time.monotonic()
        runtime.store.set("panel.level", 0.25)  # a quarter of the amplitude: 12 dB down
        await asyncio.sleep(1.0)
        marks["panic"] = time.monotonic()
        await show.panic()
        await asyncio.sleep(0.5)
        show.reset()
        await asyncio.sleep(0.3)
        marks["reset"] = time.monotonic()  # the master is back: the tone, still looping, is heard again
        await asyncio.sleep(0.3)
        show.go("main", "3")
        await asyncio.sleep(0.4)
        marks["again"] = time.monotonic()
        show.go("main", "4")
        await asyncio.sleep(0.8)
    finally:
        await runtime.stop()
    closed = runtime.devices["sound"].closed_at  # type: ignore[attr-defined]
    assert closed is not None, "the sound process never said it closed its output"
    samples, rate = read_wav(render)
    start = closed - len(samples) / rate  # the file ends when the output closed
    at = {name: t - start for name, t in marks.items()}

    found = onsets(samples, rate, threshold=0.02)
    first = next(t for t in found if t > at["go"] - 0.2)
    assert abs(first - at["go"]) < FRAME_TOLERANCE, (first, at["go"], found)
    beep = segment(samples, rate, first + 0.05, first + 0.25)[:, 0]
    assert abs(level_db(beep) - 20 * math.log10(BEEP_LEVEL / math.sqrt(2)) + 3.0) < 3.0  # centred: -3 dB a side

    loud = level_db(segment(samples, rate, at["quieter"] - 0.5, at["quieter"] - 0.1)[:, 0])
    quiet = level_db(segment(samples, rate, at["quieter"] + 0.3, at["quieter"] + 0.8)[:, 0])
    assert abs((loud - quiet) - 20 * math.log10(4)) < 2.0, (loud, quiet)

    after = segment(samples, rate, at["panic"] + 1.05, at["panic"] + 1.45)
    assert float(np.abs(after).max()) < 10 ** (-60 / 20), "PANIC left sound in the mix after panic_time"
    tone_back = level_db(segment(samples, rate, at["reset"], at["reset"] + 0.2)[:, 0])
    assert abs(tone_back - quiet) < 2.0, (tone_back, quiet)  # the loop never stopped: PANIC only muted it
    again = [t for t in found if t > at["again"] - 0.05]
    assert again and abs(again[0] - at["again"]) < FRAME_TOLERANCE, (again, at["again"])
