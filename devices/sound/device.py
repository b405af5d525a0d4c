"""The ``sound`` device: the exhibit's ``sounds:`` as an output like any other (issue 18).

Its properties are each sound's ``volume``, ``rate`` and ``pan`` and ``master.volume``: mappings, cues, presets and
timelines drive them, and fades reach it as steps. ``{sound: chime}`` actions arrive as messages (``/play/chime``
with the fade), through the same safety gate as OSC. The mixing happens in a process of its own
(:mod:`devices.sound.worker`, Panda3D's OpenAL): a sound card that disappears, or a crash in a driver, never touches
the control loop, and the process is started again with back-off.

Safety: the safe state is ``master.volume`` 0, so PANIC fades every sound out within ``panic_time`` and a clean stop
leaves the room silent; a PANIC reset brings the master back to ``audio.master``. No volume goes above
``audio.max_volume``, whatever asks. Where there is no sound card (a server, CI) the process falls back to a
null output and the exhibit runs on; the device says so in its health (degraded), once.

Each output of ``audio.outputs`` (``main``, the default output, unless declared otherwise) has a sound process of
its own; a sound plays on its ``output``. An output that is not there, or whose process ends, degrades the device
(said once in the log) and the others play on.

Placed sounds: ``at`` a point or a scene node (resolved by :mod:`engine.sound_plan`), or following the nearest
visitor's landmark, which the device reads from the pose sensor's signals 30 times a second. Narration: the device
listens for ``<sensor>.zone.<zone>.enter`` and speaks the zone's file in the language of the moment, unless that
narration is speaking or started less than ``cooldown`` ago; every other sound is ducked meanwhile (in the worker).
Quiet periods cap the master by the local time of day.

Where the mix goes: the default output, or what the environment asks: ``EXHIBIT_AUDIO_RENDER=FILE.wav`` mixes into
a file in real time (OpenAL Soft's ``wave`` back-end: tests, and the bench; an output other than ``main`` goes to
``FILE-<output>.wav``) in blocks of ``EXHIBIT_AUDIO_BLOCK`` frames (64 by default, onsets timed within 1.3 ms;
1024 mixes as often as OpenAL Soft does for a sound card), ``EXHIBIT_AUDIO_DRIVER=null|alsa|pulse`` picks OpenAL
Soft's back-end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import os
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from devices.sound.outputs import card_of, present
from devices.sound.process import SoundProcess
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
from engine.drivers import Device, DriverContext, Fault, check_fault
from engine.errors import UserError
from engine.model import DeviceConfig, StoreType
from engine.reconnect import Backoff, Reconnect
from engine.signals import Signal
from engine.sound_model import (
    MASTER,
    PARAMETERS,
    SOUND_DEVICE,
    AudioSettings,
    NarrationSettings,
    Point,
    SoundSpec,
    narration_voice,
    quiet_level,
    sound_properties,
)
from engine.sound_plan import FollowPlan, SoundPlan

log = logging.getLogger("devices.sound")

RENDER_ENV = "EXHIBIT_AUDIO_RENDER"
DRIVER_ENV = "EXHIBIT_AUDIO_DRIVER"
BLOCK_ENV = "EXHIBIT_AUDIO_BLOCK"
BLOCKS = range(16, 8193)
"""Frames per mixing block a rendered mix may have."""
MAIN = "main"
"""The default output."""
FOLLOW_RATE = 30.0
"""Times a second a sound that follows a visitor is moved (the camera's frame rate)."""
FOLLOW_STEP = 0.01
"""Metres a followed landmark must move before the sound is moved."""
NOBODY_AT: Point = (0.0, -2.0, 0.0)
"""Where a sound that follows a visitor waits before anyone is seen: 2 m in front of the exhibit."""
PRESENCE_CHECK = 2.0
"""Seconds between looks at whether the declared sound cards are still plugged in."""
QUIET_CHECK = 10.0
"""Seconds between looks at the time of day for quiet periods."""
QUIET_FADE = 3.0
"""Seconds the master takes to go to or from a quiet level."""
START_TIMEOUT = 20.0
"""Seconds the sound process may take to open its output (Panda3D imports in it)."""
ACTIONS: dict[str, type[Play | StopSound | Pause | Resume]] = {
    "play": Play,
    "stop": StopSound,
    "pause": Pause,
    "resume": Resume,
}


class SoundDeviceConfig(DeviceConfig):
    """The exhibit's sounds, narration and audio settings, as one output device (made from ``sounds:``,
    ``narration:`` and ``audio:``, with places resolved by :func:`engine.sound_plan.sound_plan`)."""

    kind: Literal["sound"]
    sounds: dict[str, SoundSpec] = Field(default_factory=dict, description="The sounds, by name.")
    audio: AudioSettings = Field(default_factory=AudioSettings)  # type: ignore[arg-type]
    narration: NarrationSettings = Field(default_factory=NarrationSettings)  # type: ignore[arg-type]
    places: dict[str, Point] = Field(default_factory=dict, description="Where placed sounds sit, in the room.")
    follows: dict[str, FollowPlan] = Field(default_factory=dict, description="Sounds that follow a visitor.")
    zone_sensors: dict[str, str] = Field(default_factory=dict, description="The pose sensor of each narrated zone.")
    timezone: str | None = Field(None, description="The time zone of quiet periods (None: this computer's).")

    @classmethod
    def of(cls, exhibit: Any, plan: SoundPlan) -> SoundDeviceConfig:
        schedule = getattr(exhibit, "schedule", None)
        return cls(
            kind="sound",
            sounds=dict(exhibit.sounds),
            audio=exhibit.audio,
            narration=exhibit.narration,
            places=plan.places,
            follows=plan.follows,
            zone_sensors=plan.zone_sensors,
            timezone=schedule.timezone if schedule is not None else None,
        )

    def settable_properties(self) -> list[str]:
        return sound_properties(self.sounds)

    def property_range(self, name: str) -> tuple[float, float] | None:
        return PARAMETERS.get(name.rpartition(".")[2])

    def safe_state(self) -> dict[str, Any]:
        return {f"{MASTER}.volume": 0.0}

    def initial_state(self) -> dict[str, Any]:
        values: dict[str, Any] = {f"{MASTER}.volume": self.audio.master}
        for name, spec in self.sounds.items():
            values |= {f"{name}.volume": spec.volume, f"{name}.rate": spec.rate, f"{name}.pan": spec.pan}
        return values

    def reset_state(self) -> dict[str, Any]:
        return {f"{MASTER}.volume": self.audio.master}

    def output_of(self, voice: str) -> str:
        """The output a sound (or a narration, on ``main``) plays on."""
        spec = self.sounds.get(voice)
        return spec.output if spec is not None and spec.output is not None else MAIN

    def outputs(self) -> list[str]:
        """Every output something plays on, ``main`` first."""
        used = {self.output_of(name) for name in self.sounds}
        return [MAIN, *sorted(used - {MAIN})]

    def health_figures(self) -> dict[str, StoreType]:
        return {"playing": "int", "errors": "int", "output": "str", "narrations": "int"}

    def health_meanings(self) -> dict[str, str]:
        return {
            "playing": "sounds started and not yet ended or stopped",
            "errors": "sound files or commands the sound process refused",
            "output": "where the mix goes: the sound card, a file, or nowhere (no sound card)",
            "narrations": "narrations spoken since the start",
        }


def worker_settings(audio: AudioSettings | None = None, output: str = MAIN) -> WorkerSettings:
    """Where this run's mix goes for ``output`` (see the module's documentation)."""
    render = os.environ.get(RENDER_ENV) or None
    if render is not None and output != MAIN:
        path = Path(render)
        render = str(path.with_name(f"{path.stem}-{output}{path.suffix}"))
    declared = audio.outputs.get(output) if audio is not None else None
    return WorkerSettings(
        render_to=render,
        period_size=render_block(),
        driver=os.environ.get(DRIVER_ENV) or None,
        ceiling=audio.max_volume if audio is not None else 1.0,
        device=declared.device if declared is not None else None,
    )


def render_block() -> int:
    """Frames per mixing block of a rendered mix (``EXHIBIT_AUDIO_BLOCK``)."""
    text = os.environ.get(BLOCK_ENV) or str(WorkerSettings.period_size)
    if not text.isdigit() or int(text) not in BLOCKS:
        raise UserError(f"{BLOCK_ENV}={text!r}: give the frames per mixing block, {BLOCKS.start} to {BLOCKS.stop - 1}.")
    return int(text)


@dataclass
class OutputLink:
    """One output's sound process and what the device knows of it."""

    name: str
    process: SoundProcess | None = None
    problem: str | None = None
    """Why nothing (or not all) is heard on it; None when it plays."""
    silent: asyncio.Event = field(default_factory=asyncio.Event)
    closed_at: float | None = None
    said: set[str] = field(default_factory=set)
    """Problems already logged: each once."""
    unplugged: bool = False


class SoundDevice(Device):
    config: SoundDeviceConfig
    asound: Path | None = None
    """Where ALSA lists sound cards (None: ``/proc/asound``); tests point it elsewhere."""

    def __init__(self, name: str, config: SoundDeviceConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        render_block()  # a bad EXHIBIT_AUDIO_BLOCK stops the start, in one sentence
        self.links = {output: OutputLink(output) for output in config.outputs()}
        self.values = config.initial_state()
        """The latest value of every property: sent again to a restarted sound process."""
        self.playing: set[str] = set()
        self.errors = 0
        self.quiet = 1.0
        """The quiet periods' ceiling on the master now."""
        self.positions: dict[str, Point] = dict(config.places)
        self.narrating: dict[str, str] = {}
        """Zone -> the narration voice speaking now."""
        self.narration_started: dict[str, float] = {}
        self.narrations = 0

    @property
    def closed_at(self) -> float | None:
        """``time.monotonic()`` when the main output's process closed it: a rendered file ends there."""
        return self.links[MAIN].closed_at

    # --- what the show sends ---------------------------------------------------------------------

    def set(self, values: Mapping[str, Any]) -> None:
        for prop, value in values.items():
            self.values[prop] = value
            sound, _, parameter = prop.partition(".")
            if sound == MASTER:
                self._broadcast(self._master())
            elif sound in self.config.sounds and parameter in PARAMETERS:
                low, high = PARAMETERS[parameter]
                number = min(high, max(low, float(value)))
                self._send(Set(sound, parameter, number))  # type: ignore[arg-type]

    def _master(self, fade: float = 0.0) -> Master:
        return Master(min(float(self.values[f"{MASTER}.volume"]), self.quiet), fade)

    def send_message(self, address: str, args: list[Any]) -> None:
        """``/play/<sound>`` (``stop``, ``pause``, ``resume``) with the fade in seconds: a ``{sound: ...}`` action."""
        _, do, sound = address.split("/", 2) if address.count("/") == 2 else ("", "", "")
        command = ACTIONS.get(do)
        if command is None or sound not in self.config.sounds:
            self.errors += 1
            self.health.figure("errors", self.errors)
            log.warning("sound: no such action %s", address)
            return
        fade = float(args[0]) if args else 0.0
        if do in ("play", "resume"):
            self.playing.add(sound)
        elif do == "stop":
            self.playing.discard(sound)
        self.health.figure("playing", len(self.playing))
        self._send(command(sound, fade))

    def _send(self, command: Any) -> None:
        """To the output of the sound the command names."""
        link = self.links[self.config.output_of(command.name)]
        if link.process is not None and link.process.alive:
            link.process.send(command)

    def _broadcast(self, command: SoundCommand) -> None:
        for link in self.links.values():
            if link.process is not None and link.process.alive:
                link.process.send(command)

    # --- narration ----------------------------------------------------------------------------------

    def narrate(self, zone: str) -> bool:
        """A visitor came into ``zone``: speak its narration unless it is speaking, started less than its cooldown
        ago, or the room is silenced (PANIC, closed). True if it started."""
        spec = self.config.narration.zones.get(zone)
        now = self.context.clock.now()
        if spec is None or zone in self.narrating or float(self.values[f"{MASTER}.volume"]) <= 0 or self.quiet <= 0:
            return False
        if now - self.narration_started.get(zone, -math.inf) < spec.cooldown:
            return False
        # The language of the moment, else the exhibit's, else the zone's first file.
        choices = (self.language(), self.config.narration.language, next(iter(spec.files)))
        language = next(code for code in choices if code in spec.files)
        voice = narration_voice(zone, language)
        self.narrating[zone] = voice
        self.narration_started[zone] = now
        self.narrations += 1
        self.health.figure("narrations", self.narrations)
        log.info("sound: narration of zone %s in %s", zone, language)
        self._send(Play(voice))
        return True

    def language(self) -> str:
        """The language narration speaks now: the signal's choice, or the exhibit's."""
        settings = self.config.narration
        if settings.language_from is None or settings.language_from not in self.context.store:
            return settings.language
        return settings.language_of(self.context.store.get(settings.language_from).value)

    def _listen_for_zones(self) -> list[Callable[[], None]]:
        unsubscribe = []
        for zone, sensor in self.config.zone_sensors.items():
            name = f"{sensor}.zone.{zone}.enter"
            if name in self.context.store:

                def entered(signal: Signal, zone: str = zone) -> None:
                    if not signal.stale:
                        self.narrate(zone)

                unsubscribe.append(self.context.store.subscribe(name, entered))
            else:
                log.warning("sound: no signal %s: the narration of zone %s is never spoken", name, zone)
        return unsubscribe

    # --- placed sounds -----------------------------------------------------------------------------

    def follow_once(self) -> None:
        """Move each sound that follows a visitor to where its landmark is now (nobody: it stays)."""
        for name, plan in self.config.follows.items():
            point = visitor_point(self.context.store, plan)
            if point is None:
                continue
            last = self.positions.get(name)
            if last is None or math.dist(last, point) >= FOLLOW_STEP:
                self.positions[name] = point
                self._send(Position(name, *point))

    async def _follow(self) -> None:
        while True:
            self.follow_once()
            await self.context.clock.sleep(1.0 / FOLLOW_RATE)

    def quiet_at(self, when: dt.datetime) -> None:
        """Apply the quiet periods at ``when`` (an aware time): the master is capped, with a fade, if that changed."""
        zone = zoneinfo.ZoneInfo(self.config.timezone) if self.config.timezone else None
        local = when.astimezone(zone)
        level = quiet_level(self.config.audio.quiet, local.hour * 60 + local.minute)
        if level != self.quiet:
            if level < 1:
                log.info("sound: quiet period: the master is at most %.2f", level)
            else:
                log.info("sound: the quiet period is over")
            self.quiet = level
            self._broadcast(self._master(QUIET_FADE))

    async def _keep_quiet(self) -> None:
        while True:
            self.quiet_at(self.context.clock.wall())  # the show's wall time: a rehearsal can pretend another
            await self.context.clock.sleep_wall(QUIET_CHECK)

    def check_outputs(self) -> None:
        """An output whose sound card has gone degrades the device (said once); when it is back, its sound
        process starts again on it."""
        for link in self.links.values():
            declared = self.config.audio.outputs.get(link.name)
            device = declared.device if declared is not None else None
            if present(device, self.asound):
                if link.unplugged:
                    link.unplugged = False
                    log.info("sound (%s): the sound card %s is back", link.name, card_of(device))
                    link.problem = None
                    self._summarise()
                    if link.process is not None:
                        link.process.send(Quit())  # started again at once, on the card
            elif not link.unplugged:
                link.unplugged = True
                self._trouble(link, f"声卡已拔出 / the sound card {card_of(device)} of output {link.name} is gone")

    async def _watch_outputs(self) -> None:
        while True:
            self.check_outputs()
            await self.context.clock.sleep(PRESENCE_CHECK)

    # --- the sound processes -----------------------------------------------------------------------

    async def run(self) -> None:
        """Keep a sound process running for each output, and placed sounds and narration going. Cancelling this
        leaves the processes running: :meth:`go_safe` silences and closes them (the runtime cancels devices
        before it makes them safe)."""
        unsubscribe = self._listen_for_zones()
        try:
            async with asyncio.TaskGroup() as group:
                for link in self.links.values():
                    group.create_task(self._keep(link))
                if self.config.follows:
                    group.create_task(self._follow())
                if self.config.audio.quiet:
                    group.create_task(self._keep_quiet())
                if any(card_of(output.device) for output in self.config.audio.outputs.values()):
                    group.create_task(self._watch_outputs())
        finally:
            for stop in unsubscribe:
                stop()

    async def _keep(self, link: OutputLink) -> None:
        retry = Reconnect(Backoff(), self.context.clock)
        while True:
            settings = worker_settings(self.config.audio, link.name)
            process = SoundProcess(settings, lambda reply: self._reply(link, reply))
            try:
                info = await process.start(START_TIMEOUT)
            except asyncio.CancelledError:
                await process.close(1.0)
                raise
            except Exception as exc:  # the process could not start: say it, try again later
                self._trouble(link, f"声音进程无法启动 / the sound process did not start: {exc}", offline=True)
                await process.close(1.0)
                await self.context.clock.sleep(retry.next_delay())
                continue
            link.process = process
            retry.up()
            self._ready(link, info, settings)
            self._prime(link)
            await process.wait()
            link.process = None
            self.playing -= {name for name in self.playing if self.config.output_of(name) == link.name}
            if process.exitcode == 0 and not link.unplugged:  # quit to open a card plugged back in
                continue
            self._trouble(link, "声音进程已退出 / the sound process ended; starting it again", offline=True)
            await self.context.clock.sleep(retry.next_delay())

    def _ready(self, link: OutputLink, info: Mapping[str, Any], settings: WorkerSettings) -> None:
        if info.get("valid") and not info.get("fallback"):
            link.problem = None
            if link.name == MAIN:
                self.health.figure("output", "file" if settings.render_to else "sound card")
            self._summarise()
            return
        if link.name == MAIN:
            self.health.figure("output", "sound card" if info.get("valid") else "none")
        reason = info.get("fallback") or "no sound output on this computer"
        self._trouble(link, f"没有声音输出，展项照常运行 / nothing is heard on {link.name}: {reason}")

    def _trouble(self, link: OutputLink, problem: str, offline: bool = False) -> None:
        link.problem = problem
        if problem not in link.said:
            link.said.add(problem)
            log.warning("sound (%s): %s; the exhibit runs on", link.name, problem)
        self._summarise(offline and link.name == MAIN)

    def _summarise(self, main_offline: bool = False) -> None:
        problems = [link.problem for link in self.links.values() if link.problem]
        if not problems:
            self.health.set("ok")
        else:
            self.health.set("offline" if main_offline else "degraded", "; ".join(problems))

    def _prime(self, link: OutputLink) -> None:
        """A new process: its sounds loaded at their current values, the listener, the master, then the places
        and background loops."""
        process = link.process
        assert process is not None
        base = self.context.base_dir
        mine = {name: spec for name, spec in self.config.sounds.items() if self.config.output_of(name) == link.name}
        for name, spec in mine.items():
            process.send(
                Load(
                    name,
                    str(base / spec.file),
                    loop=spec.loop,
                    volume=float(self.values.get(f"{name}.volume", spec.volume)),
                    rate=float(self.values.get(f"{name}.rate", spec.rate)),
                    pan=None if spec.placed else float(self.values.get(f"{name}.pan", spec.pan)),
                    positional=spec.placed,
                    near=spec.near,
                )
            )
        if link.name == MAIN:
            narration = self.config.narration
            for zone, spoken in narration.zones.items():
                for language, file in spoken.files.items():
                    voice = narration_voice(zone, language)
                    process.send(Load(voice, str(base / file), volume=spoken.volume, duck=narration.duck))
            self.narrating.clear()
        listener = self.config.audio.listener
        process.send(ListenerAt(*listener.at, forward=listener.facing))
        process.send(self._master())
        for name, spec in mine.items():
            if spec.placed:
                process.send(Position(name, *self.positions.get(name, NOBODY_AT)))
            if spec.autoplay:
                self.playing.add(name)
                process.send(Play(name))
        self.health.figure("playing", len(self.playing))

    def _reply(self, link: OutputLink, reply: SoundReply) -> None:
        kind = reply[0]
        if kind == "error":
            self.errors += 1
            self.health.figure("errors", self.errors)
            log.warning("sound `%s`: %s", reply[1], reply[2])
        elif kind == "warning":
            log.warning("sound `%s`: %s", reply[1], reply[2])
        elif kind == "stopped":
            name = str(reply[1])
            self.playing.discard(name)
            self.narrating = {zone: voice for zone, voice in self.narrating.items() if voice != name}
            self.health.figure("playing", len(self.playing))
        elif kind == "silent":
            link.silent.set()
        elif kind == "closed":
            link.closed_at = float(reply[1])

    async def go_safe(self, timeout: float) -> bool:
        """The last thing at a stop: everything fades out (within a second at most), then the processes close
        (a rendered file is complete then)."""
        self.values[f"{MASTER}.volume"] = 0.0
        results = await asyncio.gather(*(self._silence(link, timeout) for link in self.links.values()))
        self.playing.clear()
        self.narrating.clear()
        return all(results)

    async def _silence(self, link: OutputLink, timeout: float) -> bool:
        process, link.process = link.process, None
        if process is None or not process.alive:
            return True  # nothing sounds
        link.silent.clear()
        process.send(Silence(within=min(timeout / 2, 1.0)))
        try:
            async with asyncio.timeout(timeout):
                await link.silent.wait()
        except TimeoutError:
            log.warning("sound (%s): the sound process did not confirm silence in %.1f s", link.name, timeout)
        finally:
            await process.close(timeout)
        return link.silent.is_set()


def visitor_point(store: Any, plan: FollowPlan) -> Point | None:
    """Where the followed landmark of the nearest visitor is in the room, or None (nobody, or not seen)."""
    names = (f"{plan.sensor}.visitors", f"{plan.sensor}.nearest.id")
    if any(name not in store for name in names):
        return None
    visitors, nearest = store.get(names[0]).value, store.get(names[1]).value
    chosen = next((v for v in visitors or () if v.id == nearest), None)
    if chosen is None:
        return None
    x, y, _z, visibility = (float(v) for v in chosen.landmarks[plan.landmark][:4])
    distance = float(chosen.features.distance)
    if visibility < 0.5 or not math.isfinite(distance):
        return None
    return plan.point(x, y, distance)


class SimulatedSound(SoundDevice):
    """``--simulate`` plays sound too: curators preview with it (the device is the same)."""

    def inject(self, fault: Fault) -> None:
        check_fault(self, fault, ())


def sound_device_config(exhibit: Any, plan: SoundPlan) -> SoundDeviceConfig:
    """What the registry gives the exhibit for its ``sounds:`` (engine.exhibit.with_sound_device)."""
    return SoundDeviceConfig.of(exhibit, plan)


__all__ = ["SOUND_DEVICE", "SimulatedSound", "SoundDevice", "SoundDeviceConfig", "sound_device_config"]
