"""Spoken narration for the flagship's bridge zone: ``bridge-zh.wav`` (Mandarin) and ``bridge-en.wav`` (English).

The exhibit ships the generated WAVs (16-bit PCM, mono, 22050 Hz, peak -3 dBFS, under 50 ms of silence before the
voice and 200 ms after it). Making them again needs the ``espeak-ng`` program (Debian package ``espeak-ng``), and
nothing else beyond numpy: ``python -m content.narration_voice exhibits/canal-lanterns/sounds``.

The Mandarin is spoken from tone-numbered pinyin by espeak-ng's ``cmn-latn-pinyin`` voice. Its ``cmn`` voice reads
Hanzi too, but espeak-ng 1.51 (Debian 12) speaks the pinyin of some characters as English words (你 becomes "ni
three"); check a change with ``espeak-ng -v cmn-latn-pinyin -x "..."``, which prints the phonemes and tones.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from content.audio_synth import AudioSamples as Samples
from content.audio_synth import write_wav

RATE = 22_050  # espeak-ng's own rate: no resampling
PEAK_DBFS = -3.0
LEAD_S = 0.02  # silence kept before the voice
TAIL_S = 0.2  # silence added after it


@dataclass(frozen=True)
class Narration:
    file: str
    voice: str
    speed: int  # words a minute
    spoken: str  # what espeak-ng is given
    text: str  # what the visitor hears, as written


NARRATIONS = (
    Narration(
        "bridge-zh.wav",
        "cmn-latn-pinyin",
        160,
        "huan1 ying2 lai2 dao4 yun4 he2 qiao2 shang4。qian1 bai3 nian2 lai2，deng1 long2 zhao4 liang4 le5 da4 yun4 he2 "
        "de5 ye4 wan3。ju3 qi3 shuang1 shou3，dian3 liang4 ta1 men5。",
        "欢迎来到运河桥上。千百年来，灯笼照亮了大运河的夜晚。举起双手，点亮它们。",
    ),
    Narration(
        "bridge-en.wav",
        "en-us",
        150,
        "Welcome to the canal bridge. For centuries, lanterns have lit the nights of the Grand Canal. "
        "Raise your hands to light them.",
        "Welcome to the canal bridge. For centuries, lanterns have lit the nights of the Grand Canal. "
        "Raise your hands to light them.",
    ),
)


def speak(narration: Narration) -> Samples:
    """espeak-ng's voice for ``narration``, -1..1, at ``RATE``."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "voice.wav"
        cmd = ["espeak-ng", "-v", narration.voice, "-s", str(narration.speed), "-w", str(path), narration.spoken]
        subprocess.run(cmd, check=True, capture_output=True)
        with wave.open(str(path), "rb") as wav:
            if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (1, 2, RATE):
                raise RuntimeError(f"espeak-ng wrote {wav.getparams()}, not 16-bit mono at {RATE} Hz")
            data = wav.readframes(wav.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768


def finish(samples: Samples) -> Samples:
    """Trimmed to the voice (``LEAD_S`` before it), ``TAIL_S`` of silence after it, peak at ``PEAK_DBFS``."""
    loud = np.flatnonzero(np.abs(samples) > 0.003 * np.max(np.abs(samples)))  # -50 dB under the peak
    if loud.size == 0:
        raise RuntimeError("espeak-ng made silence")
    start = max(0, loud[0] - int(LEAD_S * RATE))
    voice = samples[start : loud[-1] + 1]
    ramp = np.minimum(1.0, np.arange(voice.size) / (0.005 * RATE))  # 5 ms fades: no click at either end
    voice = voice * ramp * ramp[::-1] / np.max(np.abs(voice)) * 10 ** (PEAK_DBFS / 20)
    return np.concatenate([voice, np.zeros(int(TAIL_S * RATE))])


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "exhibits/canal-lanterns/sounds")
    folder.mkdir(parents=True, exist_ok=True)
    for narration in NARRATIONS:
        samples = finish(speak(narration))
        path = write_wav(folder / narration.file, samples, rate=RATE)
        print(f"{path}: {samples.size / RATE:.2f} s, {path.stat().st_size // 1024} KiB  {narration.text}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
