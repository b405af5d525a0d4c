"""The exhibit's ``sounds:`` and ``audio:`` sections (issue 18): what can be heard, and the limits on it.

Sounds become the properties of one output device named ``sound`` (:data:`SOUND_DEVICE`), so mappings, cues,
timelines and PANIC drive them as they drive lights: ``sound.water.volume``, ``sound.water.rate``,
``sound.water.pan`` and ``sound.master.volume`` are properties, and the safe state of audio is silence. Playing is
an action (``{sound: chime}``, ``do: stop``, ``fade:``). The device itself lives in ``devices/sound/``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Final, Literal

from pydantic import Field, field_validator

from engine.curves import Duration
from engine.model import Name, Strict

SOUND_DEVICE: Final = "sound"
"""The device the ``sounds:`` section becomes: mappings write ``sound.<name>.volume``."""
MASTER: Final = "master"
"""``sound.master.volume``: every sound at once (a sound may not take this name)."""
PARAMETERS: Final = {"volume": (0.0, 1.0), "rate": (0.25, 4.0), "pan": (-1.0, 1.0)}
"""Each sound's properties and their ranges: volume (linear gain), rate (speed and pitch), pan (left -1, right 1)."""
AUDIO_FILES: Final = {
    b"RIFF": "WAV",
    b"OggS": "Ogg",
    b"fLaC": "FLAC",
    b"ID3": "MP3",
}
"""The first bytes of the files the player decodes (an MP3 without a tag starts with a frame sync instead)."""


class SoundSpec(Strict):
    """One sound: a file in the exhibit folder and how it plays."""

    file: str = Field(description="WAV, Ogg, FLAC or MP3 file, relative to the exhibit file.")
    volume: float = Field(1.0, ge=0, le=1, description="Start volume, 0 (silent) to 1 (the file's own level).")
    loop: bool = Field(False, description="Play again from the start when it ends (water, wind, a drone).")
    rate: float = Field(1.0, ge=0.25, le=4, description="Playback speed; pitch follows (2 is an octave up).")
    pan: float = Field(0.0, ge=-1, le=1, description="-1 left, 0 centre, 1 right (mono files).")
    autoplay: bool = Field(False, description="Start with the show (a background loop); stopped by PANIC like any.")
    at: tuple[float, float, float] | None = Field(
        None,
        description="Where it sits, in metres from the listener: x right, y ahead, z up (mono files). "
        "Leave out for a sound that is not placed (stereo files, narration).",
    )

    @field_validator("file")
    @classmethod
    def _relative(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name a sound file")
        return value


class AudioSettings(Strict):
    """The exhibit's audio output: the master level and its ceiling."""

    master: float = Field(1.0, ge=0, le=1, description="Master volume at start (`sound.master.volume`).")
    max_volume: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Ceiling no sound may exceed, whatever mappings, cues or the master ask (a venue's limit). "
        "OpenAL's limiter also keeps the mix from clipping.",
    )


class SoundAction(Strict):
    """Play a sound: `{sound: chime}`; `{sound: water, do: stop, fade: 3s}`; `do: pause` / `resume`."""

    sound: Name = Field(description="The sound, as named under `sounds:`.")
    do: Literal["play", "stop", "pause", "resume"] = Field("play", description="What to do with it.")
    fade: Duration | None = Field(None, description="Fade in (play, resume) or out (stop, pause) over this time.")


def sound_properties(sounds: Iterable[str]) -> list[str]:
    """The properties of the ``sound`` device: ``<name>.volume``, ``.rate``, ``.pan`` and ``master.volume``."""
    return [f"{name}.{parameter}" for name in sounds for parameter in PARAMETERS] + [f"{MASTER}.volume"]


def sound_file_problem(base: Path, file: str) -> str | None:
    """Why ``file`` (relative to the exhibit folder ``base``) cannot be played, or None."""
    path = base / file
    if not path.is_file():
        return f"sound file `{file}` not found in {base}"
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
    except OSError as exc:
        return f"sound file `{file}` cannot be read: {exc.strerror}"
    if head[:4] == b"RIFF" and head[8:12] != b"WAVE":
        return f"sound file `{file}` is a RIFF file but not a WAV"
    known = any(head.startswith(magic) for magic in AUDIO_FILES) or (
        len(head) > 1 and head[0] == 0xFF and head[1] >> 5 == 7
    )
    if not known:
        return f"sound file `{file}` is not a WAV, Ogg, FLAC or MP3 file"
    return None
