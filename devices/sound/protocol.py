"""What crosses the boundary between the controller and the sound process: its settings, the commands sent to it
and the replies it sends back.

Commands are small frozen dataclasses (picklable, so they go through a ``multiprocessing`` queue as they are).
Replies are plain tuples whose first item says what they are:

* ``("ready", info)``: the manager is up. ``info`` is a dict: ``valid`` (bool: False means no sound device, so
  the worker runs on with a null manager and nothing is heard), ``type`` (the manager's class name),
  ``started`` (``time.monotonic()`` just after it was created), ``fallback`` (None, or why nothing will be heard).
* ``("error", name, text)``: a command about sound ``name`` failed (a file that cannot be loaded, an unknown
  name); the worker carries on.
* ``("warning", name, text)``: a command did less than asked (pan or position on a stereo file), sent once a sound.
* ``("stopped", name)``: a sound that does not loop came to its end on its own (not after :class:`StopSound`).
* ``("silent", t)``: a :class:`Silence` completed at ``time.monotonic()`` ``t``: every sound is stopped.
* ``("closed", t, t_after)``: the worker shut the manager down after :class:`Quit`; ``t`` and ``t_after`` are
  ``time.monotonic()`` just before and just after ``shutdown()``. A rendered WAV ends between the two (within
  about 2 ms of ``t`` when ``shutdown()`` is quick), so its first sample is at about ``t - frames / rate``.
* ``("fatal", text)``: the worker could not start (Panda3D failed to import, say) and has exited.

Times are ``time.monotonic()`` (CLOCK_MONOTONIC), which is the same clock in every process of the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

SoundReply = tuple[Any, ...]


@dataclass(frozen=True)
class WorkerSettings:
    """How the sound process opens its output.

    ``render_to``: mix to this WAV file instead of a sound card (OpenAL Soft's ``wave`` back-end, in real time;
    the file is complete once the worker has quit). It takes precedence over ``driver``.
    ``driver``: OpenAL Soft's back-end (``ALSOFT_DRIVERS``): ``"null"`` (a real device that mixes into nothing:
    CI), ``"pulse"``, ``"alsa"``; None lets OpenAL Soft choose.
    ``period_size``: frames per mixing block; 64 at 48 kHz gives 1.3 ms blocks (onsets within about 2 ms).
    """

    render_to: str | None = None
    driver: str | None = None
    period_size: int = 64
    frequency: int = 48000
    ceiling: float = 1.0
    """The mix's peak may not go above this (``audio.max_volume``): the worker turns the master down whenever the
    sounds playing could add up to more (see :meth:`devices.sound.worker.Mixer.guard`)."""
    device: str | None = None
    """OpenAL's name of the output device (``audio.outputs``); None: the default one."""


@dataclass(frozen=True)
class Load:
    """Load ``path`` as sound ``name`` (replacing a sound of that name).

    ``pan`` (-1 left .. +1 right, None: centred) works on mono files only and not with ``positional`` (then
    :class:`Position` places it). ``volume`` is 0..1 (OpenAL cannot boost); ``rate`` resamples (pitch and
    speed together). ``near``: metres within which a positional sound is at full volume. ``duck``: while this
    sound plays, every sound without a ``duck`` of its own plays at this share of its volume (narration)."""

    name: str
    path: str
    loop: bool = False
    volume: float = 1.0
    rate: float = 1.0
    pan: float | None = None
    positional: bool = False
    near: float = 1.0
    duck: float | None = None


@dataclass(frozen=True)
class Play:
    """Play from the start, fading in over ``fade`` seconds (0: at once)."""

    name: str
    fade: float = 0.0


@dataclass(frozen=True)
class StopSound:
    """Fade out over ``fade`` seconds, then stop (the next :class:`Play` starts from the beginning)."""

    name: str
    fade: float = 0.0


@dataclass(frozen=True)
class Pause:
    """Fade out over ``fade`` seconds, then stop, keeping the position for :class:`Resume`."""

    name: str
    fade: float = 0.0


@dataclass(frozen=True)
class Resume:
    """Continue a paused sound from where it was, fading in over ``fade`` seconds. On a playing sound it cancels a
    fade-out; on a stopped one it plays from the start."""

    name: str
    fade: float = 0.0


SetParam = Literal["volume", "rate", "pan"]


@dataclass(frozen=True)
class Set:
    """Ramp one parameter of a sound to ``value`` over ``fade`` seconds (0: at once)."""

    name: str
    param: SetParam
    value: float
    fade: float = 0.0


@dataclass(frozen=True)
class Position:
    """Place a positional sound, in scene units (metres): X right, Y forward, Z up."""

    name: str
    x: float
    y: float
    z: float


@dataclass(frozen=True)
class ListenerAt:
    """Place the listener (the visitor's ears): position, and the forward and up directions."""

    x: float
    y: float
    z: float
    forward: tuple[float, float, float] = (0.0, 1.0, 0.0)
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)


@dataclass(frozen=True)
class Master:
    """Ramp the master volume (every sound, also quiet hours) to ``volume`` over ``fade`` seconds."""

    volume: float
    fade: float = 0.0


@dataclass(frozen=True)
class Silence:
    """PANIC: fade everything out so the room is silent within ``within`` seconds of the worker receiving it,
    stop every sound, then put the master volume back (so later plays are heard). Replies ``("silent", t)``."""

    within: float = 1.0


@dataclass(frozen=True)
class Quit:
    """Shut the manager down (this finalises a rendered WAV) and exit. Replies ``("closed", t, t_after)``."""


SoundCommand = Load | Play | StopSound | Pause | Resume | Set | Position | ListenerAt | Master | Silence | Quit
