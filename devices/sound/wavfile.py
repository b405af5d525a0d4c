"""Reading a rendered WAV back, and measuring it: for the sound tests and the bench.

OpenAL Soft's ``wave`` back-end writes WAVE_FORMAT_EXTENSIBLE (0xFFFE), which Python's ``wave`` module cannot
read, and leaves the size fields at 0xFFFFFFFF if the process ended without ``shutdown()``. :func:`read_wav`
reads both (and plain PCM and float files) with numpy alone.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float64]
"""Shape (frames, channels), full scale ±1."""

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_IEEE_FLOAT = 3
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
SILENCE_DB = -200.0
"""The level of digital silence (instead of -inf)."""


def read_wav(path: str | Path) -> tuple[Samples, int]:
    """The samples of a WAV file as floats (frames, channels) in -1..1, and its sample rate."""
    data = Path(path).read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a WAV file")
    pos = 12
    fmt: tuple[int, int, int, bool] | None = None
    pcm: bytes | None = None
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + size]
        if chunk == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == WAVE_FORMAT_EXTENSIBLE:
                tag = struct.unpack("<H", body[24:26])[0]  # the sub-format GUID starts with the plain tag
            if tag not in (WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT):
                raise ValueError(f"{path}: unsupported WAV format {tag:#x}")
            fmt = (channels, rate, bits, tag == WAVE_FORMAT_IEEE_FLOAT)
        elif chunk == b"data":
            # To the end of the file: a render that was not shut down leaves the size at 0xFFFFFFFF.
            pcm = data[pos + 8 : pos + 8 + size] if size != 0xFFFFFFFF else data[pos + 8 :]
            break
        pos += 8 + size + (size & 1)
    if fmt is None or pcm is None:
        raise ValueError(f"{path}: no fmt or data chunk")
    channels, rate, bits, is_float = fmt
    width = bits // 8
    frames = len(pcm) // (channels * width)
    raw = pcm[: frames * channels * width]
    if is_float:
        samples = np.frombuffer(raw, dtype=np.float32 if bits == 32 else np.float64).astype(np.float64)
    elif bits == 8:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif bits == 24:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        values = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        samples = np.where(values >= 1 << 23, values - (1 << 24), values).astype(np.float64) / 2.0**23
    elif bits in (16, 32):
        samples = np.frombuffer(raw, dtype=np.int16 if bits == 16 else np.int32).astype(np.float64) / 2.0 ** (bits - 1)
    else:
        raise ValueError(f"{path}: unsupported sample width {bits}")
    return samples.reshape(-1, channels), rate


def segment(samples: Samples, rate: int, start: float, end: float) -> Samples:
    """The samples from ``start`` to ``end`` seconds (clipped to the file)."""
    return samples[max(0, round(start * rate)) : max(0, round(end * rate))]


def rms(samples: npt.NDArray[np.float64]) -> float:
    """Root mean square over all the samples given (one channel: pass ``samples[:, k]``); 0 for none."""
    return float(np.sqrt(np.mean(np.square(samples)))) if samples.size else 0.0


def level_db(samples: npt.NDArray[np.float64]) -> float:
    """The RMS level in dB full scale (a full-scale sine is -3 dB); :data:`SILENCE_DB` for silence."""
    value = rms(samples)
    return 20.0 * math.log10(value) if value > 0 else SILENCE_DB


def onsets(
    samples: Samples, rate: int, threshold: float = 0.01, hold: float = 0.002, min_gap: float = 0.05
) -> list[float]:
    """Times (seconds) where the sound rises past ``threshold`` after at least ``min_gap`` seconds below it.

    The envelope is the peak of all channels over the last ``hold`` seconds (causal, so an onset is not moved
    earlier): comparing single samples would find an "onset" at every zero crossing of a tone."""
    if not len(samples):
        return []
    peak = np.abs(samples).max(axis=1)
    width = max(1, int(hold * rate))
    envelope = np.lib.stride_tricks.sliding_window_view(np.r_[np.zeros(width - 1), peak], width).max(axis=1)
    loud = envelope > threshold
    rises = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1
    if loud[0]:
        rises = np.r_[0, rises]
    falls = np.flatnonzero(~loud[1:] & loud[:-1]) + 1
    found: list[float] = []
    for rise in rises:
        before = falls[falls < rise]  # the last fall before this rise began the quiet
        if not len(before) or rise - before[-1] >= min_gap * rate:
            found.append(float(rise) / rate)
    return found


def band(samples: Samples, rate: int, low: float, high: float) -> Samples:
    """Only what lies between ``low`` and ``high`` Hz, every channel (an FFT brick-wall filter: to tell sounds of
    different pitches apart in one mix)."""
    spectrum = np.fft.rfft(samples, axis=0)
    freqs = np.fft.rfftfreq(len(samples), 1.0 / rate)
    spectrum[(freqs < low) | (freqs > high)] = 0
    return np.fft.irfft(spectrum, n=len(samples), axis=0)
