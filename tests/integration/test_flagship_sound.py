"""The flagship's sound, heard (issue 18): a visitor stepping onto the bridge hears the narration in the language
the language button chose, over the canal's water, ducked; the whole mix rendered through OpenAL Soft's `wave`
back-end and compared with the narration files themselves."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from devices.sound.wavfile import read_wav, segment
from engine.runtime import RuntimeOptions, assemble
from engine.validate import load_exhibit
from launcher import build_registry
from tests.integration.test_cli import copy_flagship
from tests.integration.test_reload_flagship import OpenHours, until

FLAGSHIP_SOUNDS = Path(__file__).resolve().parents[2] / "exhibits" / "canal-lanterns" / "sounds"
FRAME = 0.05


def envelope(samples: np.ndarray, rate: int) -> np.ndarray:
    """RMS of every 50 ms, mono: the rhythm of speech, whatever the sample rate or level."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    size = int(FRAME * rate)
    frames = mono[: len(mono) // size * size].reshape(-1, size)
    return np.sqrt((frames**2).mean(axis=1))


def likeness(heard: np.ndarray, spoken: np.ndarray, slack: int = 10) -> float:
    """How alike two envelopes are (correlation, -1..1), the best of ``slack`` frames either way: when the
    narration started is known to a poll of the device, not to the sample."""
    best = -1.0
    for lag in range(-slack, slack + 1):
        a, b = (heard[lag:], spoken) if lag >= 0 else (heard, spoken[-lag:])
        n = min(len(a), len(b))
        best = max(best, float(np.corrcoef(a[:n], b[:n])[0, 1]))
    return best


async def test_a_visitor_on_the_bridge_hears_the_narration_in_the_chosen_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    render = tmp_path / "mix.wav"
    monkeypatch.setenv("EXHIBIT_AUDIO_RENDER", str(render))
    path = copy_flagship(tmp_path, lambda text: text.replace("simulate: recordings/visitors.jsonl.gz", ""))
    registry = build_registry()  # above: no recorded visitors, only the test's one
    options = RuntimeOptions(
        simulate=True, base_dir=path.parent, console=False, embedded_port=0, state_dir=tmp_path / "s"
    )
    runtime = assemble(load_exhibit(path, registry), registry, options, clock=OpenHours())  # open, not quiet
    await runtime.start()
    try:
        sound, body = runtime.devices["sound"], runtime.sensors["body"]
        await until(lambda: sound.health.status == "ok", 30)
        runtime.sensors["controls"].inject("stall")  # type: ignore[attr-defined]  # the simulated panel stops
        runtime.store.set("controls.language", 0)  # 中文
        await asyncio.sleep(0.5)
        body.add_puppet({"x": 0.5, "y": 0.9, "height": 0.6})  # type: ignore[attr-defined]  # onto the bridge
        await until(lambda: sound.narrations == 1, 10)  # type: ignore[attr-defined]
        started = time.monotonic()
        await asyncio.sleep(11.0)  # the Chinese narration is 10.4 s
    finally:
        await runtime.stop()
    closed = sound.closed_at  # type: ignore[attr-defined]
    assert closed is not None
    samples, rate = read_wav(render)
    origin = closed - len(samples) / rate
    heard = envelope(segment(samples, rate, started - origin - 0.3, started - origin + 8.0), rate)
    zh, zh_rate = read_wav(FLAGSHIP_SOUNDS / "bridge-zh.wav")
    en, en_rate = read_wav(FLAGSHIP_SOUNDS / "bridge-en.wav")
    as_zh, as_en = likeness(heard, envelope(zh, zh_rate)), likeness(heard, envelope(en, en_rate))
    print(f"likeness: Chinese {as_zh:.2f}, English {as_en:.2f}")
    assert as_zh > 0.7, f"the mix does not follow the Chinese narration: {as_zh:.2f}"
    assert as_zh > as_en + 0.3, f"Chinese {as_zh:.2f}, English {as_en:.2f}"
