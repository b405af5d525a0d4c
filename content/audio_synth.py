"""Sounds made from numbers: the flagship's water and chime, and test tones, written as 16-bit WAV files.

Deterministic (seeded), so the files in ``exhibits/canal-lanterns/sounds/`` can be made again byte for byte:
``python -m content.audio_synth exhibits/canal-lanterns/sounds``.
"""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

RATE = 48_000
AudioSamples = npt.NDArray[np.float64]


def write_wav(path: Path, samples: AudioSamples, rate: int = RATE) -> Path:
    """``samples`` (frames, or frames x channels, -1..1) as a 16-bit PCM WAV file."""
    data = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0)
    channels = 1 if data.ndim == 1 else data.shape[1]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((data * 32767).astype("<i2").tobytes())
    return path


def tone(seconds: float, hz: float = 440.0, level: float = 0.5, rate: int = RATE) -> AudioSamples:
    """A sine with 5 ms ramps at both ends (no click)."""
    t = np.arange(int(seconds * rate)) / rate
    ramp = np.minimum(1.0, np.minimum(t, seconds - t) / 0.005)
    return level * np.sin(2 * np.pi * hz * t) * np.clip(ramp, 0.0, 1.0)


def water(seconds: float = 4.0, rate: int = RATE, seed: int = 7) -> AudioSamples:
    """A canal's murmur: brown-ish noise with a slow swell, looping without a seam (its ends cross-faded)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    fade = rate // 2
    noise = np.cumsum(rng.normal(0.0, 1.0, n + fade))
    noise -= np.convolve(noise, np.ones(400) / 400, mode="same")  # take out the drift, keep the rumble
    noise /= np.max(np.abs(noise)) or 1.0
    t = np.arange(n + fade) / rate
    noise *= 0.8 + 0.2 * np.sin(2 * np.pi * t / seconds)
    body, tail = noise[:n].copy(), noise[n:]
    mix = np.linspace(0.0, 1.0, fade)
    body[:fade] = body[:fade] * mix + tail * (1.0 - mix)  # the end flows into the start
    return 0.35 * body


def chime(seconds: float = 1.6, hz: float = 880.0, rate: int = RATE) -> AudioSamples:
    """A small bell: a few inharmonic partials, a sharp attack and a long decay."""
    t = np.arange(int(seconds * rate)) / rate
    partials = ((1.0, 1.0, 2.2), (2.76, 0.5, 3.5), (5.4, 0.25, 5.0), (8.93, 0.12, 7.0))
    sound = sum(level * np.sin(2 * np.pi * hz * ratio * t) * np.exp(-decay * t) for ratio, level, decay in partials)
    attack = np.minimum(1.0, t / 0.003)
    return 0.4 * np.asarray(sound) * attack


def main(folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    print(write_wav(out / "water.wav", water(rate=24_000), rate=24_000))  # a rumble needs no 48 kHz: half the file
    print(write_wav(out / "chime.wav", chime()))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "exhibits/canal-lanterns/sounds")
