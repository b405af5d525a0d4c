"""The sound process: Panda3D's OpenAL back-end (OpenAL Soft 1.19, bundled in the wheel), driven by commands.

It runs in a process of its own (``multiprocessing.get_context("spawn")``, see :mod:`devices.sound.process`)
because the renderer's processes force ``audio-library-name null`` (:mod:`content.offscreen`), because Panda's
audio calls hold the GIL and one global lock (they must not stall the engine's loop), and because OpenAL Soft
reads its configuration (``ALSOFT_CONF``, ``ALSOFT_DRIVERS``) once, at the first call in a process.

The loop wakes for each command as it arrives (so a cue is heard within a mixing block of being sent) and
ticks at 100 Hz: it advances fades and ramps, notices sounds that have ended and calls ``mgr.update()``
(which streams long files). Fades are linear in amplitude: simple, and the level is at 0 exactly when a
fade-out ends. OpenAL interpolates each volume step over one mixing block, so a 100 Hz ramp has no steps.

Panda's OpenAL back-end has no working balance (``setBalance`` does nothing), so ``pan`` places a mono,
non-positional (listener-relative) sound on the unit circle at ``pan * 90°``; stereo files are never panned or
spatialised by OpenAL, and a warning says so.

With no sound device Panda gives a null manager: the worker says so in its ``ready`` reply and runs on, taking
commands, so the exhibit runs without sound rather than not at all (a sound that does not loop is then reported
``stopped`` at the tick after its Play: nothing is playing).
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import queue
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from typing import Any, Literal

import numpy as np

from devices.sound.protocol import (
    ListenerAt,
    Load,
    Master,
    Pause,
    Play,
    Position,
    Quit,
    Resume,
    Set,
    Silence,
    SoundCommand,
    SoundReply,
    StopSound,
    WorkerSettings,
)
from engine.priority import lower_priority

log = logging.getLogger("devices.sound")

TICK = 0.01
"""Seconds between ticks while something glides (a fade, a ramp, ducking): 100 Hz, so ramps have no steps."""
IDLE_TICK = 0.05
"""Seconds between ticks while nothing glides (end-of-sound checks, ``mgr.update()`` for streamed files): 20 Hz.
The process then wakes a fifth as often, which the show's control path, on the same cores, notices."""
SILENCE_MARGIN = 0.03
"""A :class:`Silence` fade ends this long before its deadline: the tick that stops the sounds may come up to
one tick late, and the mixer needs a block to hear it."""
PARENT_CHECK_TICKS = 50
"""Every this many ticks the worker checks that its parent is alive, and quits if not (no orphaned audio)."""
RENDER_ENV = "EXHIBIT_SOUND_RENDER"
"""The render file reaches OpenAL Soft's config through this variable (it expands ``$VARS``), so a path needs
no quoting in the config file."""

DUCK_DOWN = 0.4
"""Seconds background sounds take to fall to their ducked level when narration starts."""
DUCK_UP = 1.5
"""Seconds they take to come back up after it ends."""
PEAK_CHUNK = 48000
"""Frames read at a time when measuring a file's peak."""

NICENESS = 10
"""The sound process runs at a lower priority than the show: when both want a core, the show's control path comes
first (measured by ``launcher.py bench --only sound``). Mixing takes about 1% of a core and OpenAL keeps a few
blocks queued (three of 1024 frames, 64 ms, for a sound card), so a wait for the core is not heard; the renderer
(nice 19) is still below it."""

PAN_DEGREES = 90.0
"""Pan ±1 puts a sound at ±90° (fully on one side); ±0.5 is about 13 dB between the channels."""


def _alsoft_conf(settings: WorkerSettings) -> str:
    # Every key that matters is set: ALSOFT_CONF is read after ~/.config/alsoft.conf etc. and overrides key by key.
    return (
        "[general]\n"
        "drivers=wave\n"
        f"frequency={settings.frequency}\n"
        "channels=stereo\n"
        "sample-type=int16\n"
        f"period_size={settings.period_size}\n"
        "stereo-mode=speakers\n"
        "hrtf=false\n"
        "dither=false\n"  # int16 dithers ±1 LSB by default, even in silence: off gives exact digital silence
        "output-limiter=true\n"
        "[wave]\n"
        f"file=${RENDER_ENV}\n"
    )


class Ramped:
    """A value that can glide to a target: linear over ``fade`` seconds, or at once."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.target = value
        self._start = value
        self._t0 = 0.0
        self._duration = 0.0

    def to(self, target: float, fade: float, now: float) -> None:
        self.target = target
        if fade <= 0:
            self.value = self._start = target
            self._duration = 0.0
        else:
            self._start, self._t0, self._duration = self.value, now, fade

    @property
    def moving(self) -> bool:
        return self._duration > 0

    def advance(self, now: float) -> bool:
        """Move along the ramp; True if the value changed."""
        if not self._duration:
            return False
        x = (now - self._t0) / self._duration
        if x >= 1.0:
            self.value, self._duration = self.target, 0.0
        else:
            self.value = self._start + (self.target - self._start) * max(0.0, x)
        return True


@dataclass
class Voice:
    """One loaded sound and what the worker knows of it (Panda's own state is not to be trusted on a null
    manager, where every sound reports READY)."""

    name: str
    sound: Any
    loop: bool
    mono: bool
    positional: bool
    volume: Ramped
    rate: Ramped
    pan: Ramped | None
    peak: float = 1.0
    """The file's largest sample (0..1): what it adds to the mix at most, at volume 1."""
    duck: float | None = None
    """This sound ducks the others to this share while it plays (narration); None: it is ducked."""
    gain: Ramped = field(default_factory=lambda: Ramped(1.0))
    """The fade envelope, kept apart from the volume so a fade and a volume ramp combine."""
    state: Literal["stopped", "playing", "paused"] = "stopped"
    after_fade: Literal["stop", "pause"] | None = None
    paused_at: float = 0.0
    warned: bool = False


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


class Mixer:
    """Carries out commands on one Panda audio manager. Not thread-safe: the worker's loop owns it."""

    def __init__(self, core: Any, mgr: Any, replies: Queue[SoundReply], valid: bool, ceiling: float = 1.0) -> None:
        self._core = core
        self.mgr = mgr
        self._replies = replies
        self.valid = valid
        self.ceiling = ceiling
        self.voices: dict[str, Voice] = {}
        self.ducking = Ramped(1.0)
        """The share of their volume ducked sounds play at: below 1 while narration speaks."""
        self.master = Ramped(1.0)
        self.master_setting = 1.0
        self._master_applied = -1.0
        """The master volume last asked for: a :class:`Silence` returns to it."""
        self._silences: list[float] = []
        """Deadlines of :class:`Silence` commands in progress (one reply each)."""

    def reply(self, *items: Any) -> None:
        self._replies.put(tuple(items))

    # -- commands ---------------------------------------------------------------------------------------------

    def handle(self, command: SoundCommand, now: float) -> None:
        match command:
            case Load():
                self._load(command, now)
            case Play(name, fade):
                if voice := self._voice(name):
                    self._play(voice, fade, now, at=0.0)
            case Resume(name, fade):
                if voice := self._voice(name):
                    self._resume(voice, fade, now)
            case StopSound(name, fade) | Pause(name, fade):
                if voice := self._voice(name):
                    self._fade_out(voice, "stop" if isinstance(command, StopSound) else "pause", fade, now)
            case Set():
                if voice := self._voice(command.name):
                    self._set(voice, command, now)
            case Position(name, x, y, z):
                if voice := self._voice(name):
                    if voice.positional:
                        voice.sound.set3dAttributes(x, y, z, 0, 0, 0)
                    else:
                        self.reply("error", name, f"{name!r} was not loaded as positional: use pan instead")
            case ListenerAt(x, y, z, forward, up):
                self.mgr.audio3dSetListenerAttributes(x, y, z, 0, 0, 0, *forward, *up)
            case Master(volume, fade):
                self.master_setting = _clamp(volume, 0.0, 1.0)
                if not self._silences:  # a Silence in progress wins; it restores this setting when done
                    self.master.to(self.master_setting, fade, now)
                    self._apply_master()
            case Silence(within):
                self._silences.append(now + max(0.0, within))
                # From the level now to 0 by the earliest deadline (a second PANIC can only make it sooner).
                self.master.to(0.0, min(self._silences) - SILENCE_MARGIN - now, now)
                self._apply_master()
                self._check_silence()
            case _:
                self.reply("error", "", f"not a sound command: {command!r}")

    def _voice(self, name: str) -> Voice | None:
        voice = self.voices.get(name)
        if voice is None:
            self.reply("error", name, f"no sound is loaded as {name!r}")
        return voice

    def _load(self, command: Load, now: float) -> None:
        core = self._core
        old = self.voices.pop(command.name, None)
        if old is not None:
            old.sound.stop()
        if not os.path.isfile(command.path):
            self.reply("error", command.name, f"no such sound file: {command.path}")
            return
        filename = core.Filename.fromOsSpecific(command.path)
        sound = self.mgr.getSound(filename, positional=command.positional)
        # A file Panda cannot read gives a NullAudioSound, not an exception (on a null manager every sound is one).
        if self.valid and sound.getType().getName() == "NullAudioSound":
            self.reply("error", command.name, f"cannot read {command.path} as a sound (see the audio log)")
            return
        cursor = core.MovieAudio.get(filename).open()
        mono = cursor is not None and cursor.audioChannels() == 1
        voice = Voice(
            command.name,
            sound,
            loop=command.loop,
            mono=mono,
            positional=command.positional,
            volume=Ramped(_clamp(command.volume, 0.0, 1.0)),
            rate=Ramped(max(0.01, command.rate)),
            pan=None,
            peak=_peak(core, cursor),
            duck=None if command.duck is None else _clamp(command.duck, 0.0, 1.0),
        )
        sound.setLoop(command.loop)
        if command.positional:
            sound.set3dMinDistance(max(0.01, command.near))
        if command.positional and not mono:
            self._warn(voice, "a stereo file is not spatialised (OpenAL places mono sounds only)")
        if command.pan is not None:
            if command.positional:
                self._warn(voice, "pan is ignored on a positional sound: Position places it")
            elif mono:
                voice.pan = Ramped(_clamp(command.pan, -1.0, 1.0))
            else:
                self._warn(voice, "pan is ignored on a stereo file (OpenAL pans mono sounds only)")
        self._apply(voice)
        self.voices[command.name] = voice

    def _warn(self, voice: Voice, text: str) -> None:
        if not voice.warned:
            voice.warned = True
            self.reply("warning", voice.name, text)

    def _play(self, voice: Voice, fade: float, now: float, at: float) -> None:
        sound = voice.sound
        sound.stop()
        voice.gain.to(0.0, 0.0, now)
        voice.gain.to(1.0, fade, now)
        voice.after_fade = None
        voice.state = "playing"
        self._apply(voice)
        self._apply_master()  # the guard counts this sound before it is heard
        sound.setTime(at)  # play() starts here (0 for Play; the paused position for Resume)
        sound.play()

    def _resume(self, voice: Voice, fade: float, now: float) -> None:
        if voice.state == "paused":
            self._play(voice, fade, now, at=voice.paused_at)
        elif voice.state == "playing":  # cancel a fade-out on its way
            voice.after_fade = None
            voice.gain.to(1.0, fade, now)
            self._apply(voice)
        else:
            self._play(voice, fade, now, at=0.0)

    def _fade_out(self, voice: Voice, then: Literal["stop", "pause"], fade: float, now: float) -> None:
        if voice.state == "playing" and fade > 0:
            voice.after_fade = then
            voice.gain.to(0.0, fade, now)
        elif voice.state == "playing":
            self._halt(voice, then)
        elif then == "stop":  # stopping a paused sound forgets its position
            voice.state = "stopped"

    def _halt(self, voice: Voice, then: Literal["stop", "pause"]) -> None:
        if then == "pause":
            self.mgr.update()  # Panda's getTime() is the time at its last update(): bring it up to now
            voice.paused_at = float(voice.sound.getTime())
        voice.sound.stop()
        voice.state = "paused" if then == "pause" else "stopped"
        voice.after_fade = None

    def _set(self, voice: Voice, command: Set, now: float) -> None:
        if command.param == "volume":
            voice.volume.to(_clamp(command.value, 0.0, 1.0), command.fade, now)
        elif command.param == "rate":
            voice.rate.to(max(0.01, command.value), command.fade, now)
        elif command.param == "pan":
            if voice.positional or not voice.mono:
                self._warn(voice, "pan works on mono, non-positional sounds only")
                return
            if voice.pan is None:
                voice.pan = Ramped(0.0)
            voice.pan.to(_clamp(command.value, -1.0, 1.0), command.fade, now)
        else:
            self.reply("error", voice.name, f"cannot set {command.param!r}: volume, rate or pan")
            return
        self._apply(voice)

    # -- applying ---------------------------------------------------------------------------------------------

    def _apply(self, voice: Voice) -> None:
        self._apply_volume(voice)
        voice.sound.setPlayRate(voice.rate.value)
        self._apply_pan(voice)

    def _level(self, voice: Voice) -> float:
        ducked = self.ducking.value if voice.duck is None else 1.0
        return voice.volume.value * voice.gain.value * ducked

    def _apply_volume(self, voice: Voice) -> None:
        voice.sound.setVolume(self._level(voice))

    def _apply_pan(self, voice: Voice) -> None:
        if voice.pan is not None:
            # Non-positional sources are listener-relative: the unit circle in front, no distance attenuation.
            theta = math.radians(voice.pan.value * PAN_DEGREES)
            voice.sound.set3dAttributes(math.sin(theta), math.cos(theta), 0, 0, 0, 0)

    def guard(self) -> float:
        """The share of the master that keeps the mix under the ceiling: 1 unless the sounds playing, each at its
        file's peak and its volume, could add up to more than the ceiling (a limiter that never lets a peak
        through, at the cost of turning down sooner than a look-ahead one would)."""
        worst = sum(voice.peak * self._level(voice) for voice in self.voices.values() if voice.state == "playing")
        return 1.0 if worst <= self.ceiling else self.ceiling / worst

    def _apply_master(self) -> None:
        volume = self.master.value * self.guard()
        if volume != self._master_applied:  # Panda sets every sound's gain on each call
            self._master_applied = volume
            self.mgr.setVolume(volume)

    def _duck(self, now: float) -> None:
        """Narration playing: the others fall to its ``duck`` level; none: they come back up."""
        levels = [v.duck for v in self.voices.values() if v.duck is not None and v.state == "playing"]
        target = min(levels) if levels else 1.0
        if target != self.ducking.target:
            self.ducking.to(target, DUCK_DOWN if target < self.ducking.value else DUCK_UP, now)

    def tick(self, now: float) -> None:
        """Advance ramps, finish fades, notice sounds that ended, then let Panda update."""
        self.master.advance(now)
        self._check_silence()
        self._duck(now)
        ducking = self.ducking.advance(now)
        playing = self._core.AudioSound.PLAYING
        for voice in self.voices.values():
            if voice.volume.advance(now) | voice.gain.advance(now) | (ducking and voice.duck is None):
                self._apply_volume(voice)
            if voice.rate.advance(now):
                voice.sound.setPlayRate(voice.rate.value)
            if voice.pan is not None and voice.pan.advance(now):
                self._apply_pan(voice)
            if voice.after_fade and not voice.gain.moving:
                self._halt(voice, voice.after_fade)
            if voice.state == "playing" and not voice.loop and voice.sound.status() != playing:
                voice.state = "stopped"
                self.reply("stopped", voice.name)
        self._apply_master()  # every tick: the guard follows fades, ducking and sounds that ended
        self.mgr.update()

    def gliding(self) -> bool:
        """Whether a level is on its way somewhere (the next tick must come at :data:`TICK`)."""
        if self.master.moving or self.ducking.moving or self._silences:
            return True
        return any(
            voice.volume.moving
            or voice.gain.moving
            or voice.rate.moving
            or (voice.pan is not None and voice.pan.moving)
            for voice in self.voices.values()
        )

    def _check_silence(self) -> None:
        if not self._silences or self.master.moving:
            return
        for voice in self.voices.values():
            voice.sound.stop()
            voice.state = "stopped"
            voice.after_fade = None
        self.mgr.stopAllSounds()
        self.master.to(self.master_setting, 0.0, 0.0)
        self._apply_master()  # later plays are heard again
        done = time.monotonic()
        for _ in self._silences:
            self.reply("silent", done)
        self._silences.clear()


def _peak(core: Any, cursor: Any) -> float:
    """The largest sample of a file (0..1), read through Panda's decoder; 1 when it cannot be read."""
    if cursor is None:
        return 1.0
    left = round(cursor.length() * cursor.audioRate())  # the cursor reads on past the end: count the frames
    peak = 0
    while left > 0:
        chunk = core.Datagram()
        frames = min(left, PEAK_CHUNK)
        cursor.readSamples(frames, chunk)
        left -= frames
        samples = np.frombuffer(chunk.getMessage(), dtype=np.int16)
        if len(samples):
            peak = max(peak, int(np.abs(samples.astype(np.int32)).max()))
    return min(1.0, peak / 32767) if peak else 0.0


class _Caught:
    def __init__(self, file: Any) -> None:
        self.file = file

    def text(self) -> str:
        self.file.seek(0)
        return str(self.file.read().decode("utf-8", "replace"))


@contextlib.contextmanager
def _stderr_caught() -> Any:
    """What C libraries write to file descriptor 2 meanwhile, kept instead of shown (``.text()`` after)."""
    with tempfile.TemporaryFile() as caught:
        saved = os.dup(2)
        try:
            os.dup2(caught.fileno(), 2)
            yield _Caught(caught)
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _first_reason(said: str) -> str:
    """The line of what the libraries said that names the cause (Panda's, else the last ALSA one), as `: ...`."""
    lines = [line.strip() for line in said.splitlines() if line.strip()]
    panda = [line for line in lines if line.startswith(":audio") and "device" in line.lower()]
    chosen = panda[0] if panda else (lines[-1] if lines else "")
    return f" ({chosen[:160]})" if chosen else ""


def worker_main(commands: Queue[SoundCommand], replies: Queue[SoundReply], settings: WorkerSettings) -> None:
    """The sound process's entry point: open the output, reply ``ready``, carry out commands until :class:`Quit`
    (or until the parent dies), then shut the manager down (which finalises a rendered WAV) and reply
    ``closed``."""
    conf_dir: str | None = None
    lower_priority(NICENESS)  # before OpenAL starts its mixing thread, which inherits it
    os.environ.setdefault("ALSOFT_LOGLEVEL", "0")  # OpenAL Soft's own warnings go to stderr otherwise
    # OpenAL Soft reads these once, at the first OpenAL call in the process: set them before Panda opens it.
    if settings.render_to is not None:
        conf_dir = tempfile.mkdtemp(prefix="exhibit-sound-")
        conf = os.path.join(conf_dir, "alsoft.conf")
        with open(conf, "w", encoding="utf-8") as file:
            file.write(_alsoft_conf(settings))
        os.environ["ALSOFT_CONF"] = conf
        os.environ[RENDER_ENV] = os.path.abspath(settings.render_to)
        os.environ.pop("ALSOFT_DRIVERS", None)  # it would override drivers=wave
    elif settings.driver is not None:
        os.environ["ALSOFT_DRIVERS"] = settings.driver
    said = ""
    try:
        import panda3d.core as core

        # The most recent page wins before the first manager: undo content.offscreen's `null` if it was imported.
        core.loadPrcFileData("sound worker", "audio-library-name p3openal_audio")
        if settings.device is not None and settings.render_to is None:
            core.loadPrcFileData("sound worker output", f"openal-device {settings.device}")
        with _stderr_caught() as caught:  # ALSA and Panda write a screenful where there is no sound card
            mgr = core.AudioManager.createAudioManager()
            said = caught.text()
    except Exception as exc:  # nothing to shut down: say why, and exit
        replies.put(("fatal", f"the sound manager did not start: {type(exc).__name__}: {exc}"))
        if conf_dir:
            shutil.rmtree(conf_dir, ignore_errors=True)
        return
    try:
        valid = bool(mgr.isValid())
        fallback = None if valid else "no sound device could be opened" + _first_reason(said)
        if valid and settings.device is not None and "falling back to default device" in said:
            fallback = f"the output {settings.device!r} is not there: playing on the default output"
        info = {"valid": valid, "type": str(mgr.getType()), "started": time.monotonic(), "fallback": fallback}
        replies.put(("ready", info))
        _run(Mixer(core, mgr, replies, valid, settings.ceiling), commands)
    finally:
        # Release the sounds first: a rendered file ends when the device closes, so the less shutdown() has to do
        # after `closing` is taken, the closer `closing` is to the file's last sample.
        with contextlib.suppress(Exception):
            mgr.stopAllSounds()
        closing = time.monotonic()
        mgr.shutdown()  # closes the device (all managers); the wave back-end writes the WAV's sizes now
        replies.put(("closed", closing, time.monotonic()))
        if conf_dir:
            shutil.rmtree(conf_dir, ignore_errors=True)


def _run(mixer: Mixer, commands: Queue[SoundCommand]) -> None:
    try:
        _loop(mixer, commands)
    finally:
        mixer.voices.clear()  # Panda frees each sound's source and buffer with the last reference


def _loop(mixer: Mixer, commands: Queue[SoundCommand]) -> None:
    parent = multiprocessing.parent_process()
    next_tick = time.monotonic()
    ticks = 0
    while True:
        wait = next_tick - time.monotonic()
        if wait > 0:
            try:
                command = commands.get(timeout=wait)  # wakes at once for a command: cues are not held to a tick
            except queue.Empty:
                pass
            except (EOFError, OSError):  # the parent's end of the queue is gone: so is the parent
                log.warning("sound: the controller has gone; the sound process quits")
                return
            else:
                if isinstance(command, Quit):
                    return
                try:
                    mixer.handle(command, time.monotonic())
                except Exception as exc:  # one bad command must not end the sound of the exhibit
                    log.exception("sound: %r failed", command)
                    with contextlib.suppress(Exception):
                        mixer.reply("error", getattr(command, "name", ""), f"{type(exc).__name__}: {exc}")
                if mixer.gliding():  # a fade (or PANIC's silence) starts now, not at the next idle tick
                    next_tick = min(next_tick, time.monotonic() + TICK)
                continue
        now = time.monotonic()
        mixer.tick(now)
        step = TICK if mixer.gliding() else IDLE_TICK
        next_tick += step
        if next_tick < now:  # fell behind (a busy machine): tick again soon, without a burst to catch up
            next_tick = now + step
        ticks += 1
        if parent is not None and ticks % PARENT_CHECK_TICKS == 0 and not parent.is_alive():
            log.warning("sound: the controller has gone; the sound process quits")
            return
