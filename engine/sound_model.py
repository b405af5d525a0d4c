"""The exhibit's ``sounds:`` and ``audio:`` sections (issue 18): what can be heard, and the limits on it.

Sounds become the properties of one output device named ``sound`` (:data:`SOUND_DEVICE`), so mappings, cues,
timelines and PANIC drive them as they drive lights: ``sound.water.volume``, ``sound.water.rate``,
``sound.water.pan`` and ``sound.master.volume`` are properties, and the safe state of audio is silence. Playing is
an action (``{sound: chime}``, ``do: stop``, ``fade:``). The device itself lives in ``devices/sound/``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import Field, field_validator, model_validator

from engine.curves import Duration
from engine.landmarks import LandmarkName
from engine.model import Name, Strict
from engine.schedule import DayHours, parse_hours

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


Point = tuple[float, float, float]
"""Metres in the room, as the audience sees the exhibit: x to the right, y towards the exhibit, z up; the camera
(or the scene's camera, for scene nodes) is at the origin."""


class NodeAt(Strict):
    """A sound that sits where a node of the scene is, heard as from the scene's camera."""

    node: Name = Field(description="A node of `scene.nodes` (in a group: its own name).")


class FollowSpec(Strict):
    """A sound that follows a visitor: a landmark of the nearest visitor a pose sensor sees."""

    sensor: Name = Field(description="The pose sensor.")
    landmark: LandmarkName = Field("nose", description="Which landmark: `nose`, `left_wrist`, `right_ankle`...")


class SoundSpec(Strict):
    """One sound: a file in the exhibit folder and how it plays."""

    file: str = Field(description="WAV, Ogg, FLAC or MP3 file, relative to the exhibit file.")
    volume: float = Field(1.0, ge=0, le=1, description="Start volume, 0 (silent) to 1 (the file's own level).")
    loop: bool = Field(False, description="Play again from the start when it ends (water, wind, a drone).")
    rate: float = Field(1.0, ge=0.25, le=4, description="Playback speed; pitch follows (2 is an octave up).")
    pan: float = Field(0.0, ge=-1, le=1, description="-1 left, 0 centre, 1 right (mono files).")
    autoplay: bool = Field(False, description="Start with the show (a background loop); stopped by PANIC like any.")
    at: Point | NodeAt | None = Field(
        None,
        description="Where it sits (mono files): `[x, y, z]` metres in the room (x right as the audience sees the "
        "exhibit, y towards it, z up, the camera at the origin), or `{node: boat}`, a node of the scene. "
        "Leave out for a sound that is not placed (stereo files, background).",
    )
    follow: FollowSpec | None = Field(
        None, description="Follow the nearest visitor's landmark (`{sensor: body, landmark: right_wrist}`)."
    )
    near: float = Field(
        1.0, gt=0, description="Metres within which a placed sound is at full volume; beyond, it halves per doubling."
    )
    output: Name | None = Field(None, description="The output it plays on, from `audio.outputs` (default: `main`).")

    @field_validator("file")
    @classmethod
    def _relative(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name a sound file")
        return value

    @model_validator(mode="after")
    def _one_place(self) -> SoundSpec:
        if self.at is not None and self.follow is not None:
            raise ValueError("a sound either sits somewhere (`at`) or follows a visitor (`follow`), not both")
        return self

    @property
    def placed(self) -> bool:
        """Heard from a place (OpenAL's 3D sound) rather than panned."""
        return self.at is not None or self.follow is not None


class ListenerSpec(Strict):
    """Where the ears are for placed sounds: at the camera by default, facing the exhibit."""

    at: Point = Field((0.0, 0.0, 0.0), description="Metres in the room (see `sounds.<name>.at`).")
    facing: Point = Field((0.0, 1.0, 0.0), description="The direction the listener faces: the exhibit, `[0, 1, 0]`.")


class QuietPeriod(Strict):
    """Daily hours when the exhibit plays quieter (a school group's morning, a neighbour's evening)."""

    hours: DayHours = Field(description="`09:00-10:30`, several ranges, or a list; in the opening hours' time zone.")
    level: float = Field(ge=0, le=1, description="The master volume is at most this meanwhile (0: muted).")

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: DayHours) -> DayHours:
        parse_hours(value)  # a clear error for `9-10` or an overlap
        return value


class Output(Strict):
    """A sound output: a sound card (or one of several), by its OpenAL device name."""

    device: str | None = Field(
        None,
        description="OpenAL's name for it (`exhibit sound outputs` lists them); leave out for the default output.",
    )


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
    listener: ListenerSpec = Field(default_factory=ListenerSpec, description="Where placed sounds are heard from.")  # type: ignore[arg-type]
    quiet: list[QuietPeriod] = Field(
        default_factory=list, description="Daily quiet (or muted) periods within the opening hours."
    )
    outputs: dict[Name, Output] = Field(
        default_factory=dict, description="Sound outputs by name; `main` is the default output unless declared."
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


Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
"""A language code: `zh`, `en`, `zh-Hant`, `yue`."""


class ZoneNarration(Strict):
    """What is said when a visitor comes into one zone, in each language."""

    files: dict[Language, str] = Field(
        min_length=1, description="One file per language, relative to the exhibit file: `{zh: ..., en: ...}`."
    )
    sensor: Name | None = Field(None, description="The pose sensor whose zone it is (needed only if several have it).")
    cooldown: Duration = Field(
        30.0, description="After it starts, visitors coming in do not start it again for this long."
    )
    volume: float = Field(1.0, ge=0, le=1, description="Its volume (0..1).")


class NarrationSettings(Strict):
    """Narration per zone and language: spoken when a visitor steps into a zone, over ducked background sound."""

    language: Language = Field("zh", description="The language spoken unless `language_from` says otherwise.")
    language_from: str | None = Field(
        None,
        description="A signal choosing the language (a language button): a code (`en`) or a number, "
        "the position in `languages` (0 is the first).",
    )
    languages: list[Language] = Field(
        default_factory=lambda: ["zh", "en"], description="The order of the languages, for a numeric signal."
    )
    duck: float = Field(
        0.3, ge=0, le=1, description="Every other sound plays at this share of its volume while narration speaks."
    )
    zones: dict[Name, ZoneNarration] = Field(default_factory=dict, description="Narration by zone name.")

    def language_of(self, value: object) -> str:
        """The language a signal's value chooses; the default one for a value that chooses none."""
        if isinstance(value, str) and value in self.codes:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self.language
        index = int(value)
        return self.languages[index] if 0 <= index < len(self.languages) else self.language

    @property
    def codes(self) -> set[str]:
        return set(self.languages) | {self.language}


def narration_voice(zone: str, language: str) -> str:
    """The sound process's name for one zone's narration in one language (never a `sounds:` name: it has a colon)."""
    return f"narration:{zone}:{language}"


def quiet_level(periods: Iterable[QuietPeriod], minute: int) -> float:
    """The master's ceiling at ``minute`` of the local day (0..1439): the lowest level of the quiet periods it is in,
    1 in none. A range past midnight (``22:00-02:00``) covers the early hours too."""
    level = 1.0
    for period in periods:
        for start, end in parse_hours(period.hours):
            if start <= minute < end or start <= minute + 24 * 60 < end:
                level = min(level, period.level)
    return level
