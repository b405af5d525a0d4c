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

Where the mix goes: the default output, or what the environment asks: ``EXHIBIT_AUDIO_RENDER=FILE.wav`` mixes into
a file in real time (OpenAL Soft's ``wave`` back-end: tests, and the bench), ``EXHIBIT_AUDIO_DRIVER=null|alsa|pulse``
picks OpenAL Soft's back-end.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from devices.sound.process import SoundProcess
from devices.sound.protocol import (
    Load,
    Master,
    Pause,
    Play,
    Position,
    Resume,
    Set,
    Silence,
    SoundCommand,
    SoundReply,
    StopSound,
    WorkerSettings,
)
from engine.drivers import Device, DriverContext, Fault, check_fault
from engine.model import DeviceConfig, StoreType
from engine.reconnect import Backoff, Reconnect
from engine.sound_model import MASTER, PARAMETERS, SOUND_DEVICE, AudioSettings, SoundSpec, sound_properties

log = logging.getLogger("devices.sound")

RENDER_ENV = "EXHIBIT_AUDIO_RENDER"
DRIVER_ENV = "EXHIBIT_AUDIO_DRIVER"
START_TIMEOUT = 20.0
"""Seconds the sound process may take to open its output (Panda3D imports in it)."""
ACTIONS: dict[str, type[Play | StopSound | Pause | Resume]] = {
    "play": Play,
    "stop": StopSound,
    "pause": Pause,
    "resume": Resume,
}


class SoundDeviceConfig(DeviceConfig):
    """The exhibit's sounds and audio settings, as one output device (made from ``sounds:`` and ``audio:``)."""

    kind: Literal["sound"]
    sounds: dict[str, SoundSpec] = Field(default_factory=dict, description="The sounds, by name.")
    audio: AudioSettings = Field(default_factory=AudioSettings)  # type: ignore[arg-type]

    @classmethod
    def of(cls, sounds: dict[str, SoundSpec], audio: AudioSettings) -> SoundDeviceConfig:
        return cls(kind="sound", sounds=dict(sounds), audio=audio)

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

    def health_figures(self) -> dict[str, StoreType]:
        return {"playing": "int", "errors": "int", "output": "str"}

    def health_meanings(self) -> dict[str, str]:
        return {
            "playing": "sounds started and not yet ended or stopped",
            "errors": "sound files or commands the sound process refused",
            "output": "where the mix goes: the sound card, a file, or nowhere (no sound card)",
        }


def worker_settings() -> WorkerSettings:
    """Where this run's mix goes (see the module's documentation)."""
    return WorkerSettings(render_to=os.environ.get(RENDER_ENV) or None, driver=os.environ.get(DRIVER_ENV) or None)


class SoundDevice(Device):
    config: SoundDeviceConfig

    def __init__(self, name: str, config: SoundDeviceConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.process: SoundProcess | None = None
        self.values = config.initial_state()
        """The latest value of every property: sent again to a restarted sound process."""
        self.playing: set[str] = set()
        self.errors = 0
        self._fallback_said = False
        self._silent = asyncio.Event()
        self.closed_at: float | None = None
        """``time.monotonic()`` when the sound process closed its output: a rendered file ends there."""

    # --- what the show sends ---------------------------------------------------------------------

    def set(self, values: Mapping[str, Any]) -> None:
        for prop, value in values.items():
            self.values[prop] = value
            command = self._command(prop, value)
            if command is not None:
                self._send(command)

    def _command(self, prop: str, value: Any) -> SoundCommand | None:
        sound, _, parameter = prop.partition(".")
        ceiling = self.config.audio.max_volume
        if sound == MASTER:
            return Master(min(float(value), ceiling))
        if sound not in self.config.sounds or parameter not in PARAMETERS:
            return None
        low, high = PARAMETERS[parameter]
        number = min(high, max(low, float(value)))
        if parameter == "volume":
            number = min(number, ceiling)
        return Set(sound, parameter, number)  # type: ignore[arg-type]

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

    def _send(self, command: SoundCommand) -> None:
        if self.process is not None and self.process.alive:
            self.process.send(command)

    # --- the sound process -----------------------------------------------------------------------

    async def run(self) -> None:
        """Keep a sound process running. Cancelling this leaves it running: :meth:`go_safe` silences and closes it
        (the runtime cancels devices before it makes them safe)."""
        retry = Reconnect(Backoff(), self.context.clock)
        while True:
            process = SoundProcess(worker_settings(), self._reply)
            try:
                info = await process.start(START_TIMEOUT)
            except asyncio.CancelledError:
                await process.close(1.0)
                raise
            except Exception as exc:  # the process could not start: say it, try again later
                self.health.set("offline", f"声音进程无法启动 / {exc}")
                log.warning("sound: %s", exc)
                await process.close(1.0)
                await self.context.clock.sleep(retry.next_delay())
                continue
            self.process = process
            retry.up()
            self._ready(info)
            self._prime()
            await process.wait()
            self.process = None
            self.playing.clear()
            self.health.set("offline", "声音进程已退出 / the sound process ended; starting it again")
            log.warning("sound: the sound process ended; starting it again")
            await self.context.clock.sleep(retry.next_delay())

    def _ready(self, info: Mapping[str, Any]) -> None:
        output = "file" if worker_settings().render_to else "sound card"
        if info.get("valid"):
            self.health.figure("output", output)
            self.health.set("ok")
            return
        self.health.figure("output", "none")
        reason = info.get("fallback") or "no sound output on this computer"
        self.health.set("degraded", f"没有声音输出，展项照常运行 / nothing is heard: {reason}")
        if not self._fallback_said:
            log.warning("sound: %s; the exhibit runs on without sound", reason)
            self._fallback_said = True

    def _prime(self) -> None:
        """A new process: every sound loaded at its current values, the master, then the background loops."""
        assert self.process is not None
        base = self.context.base_dir
        for name, spec in self.config.sounds.items():
            volume = min(float(self.values.get(f"{name}.volume", spec.volume)), self.config.audio.max_volume)
            self.process.send(
                Load(
                    name,
                    str(base / spec.file),
                    loop=spec.loop,
                    volume=volume,
                    rate=float(self.values.get(f"{name}.rate", spec.rate)),
                    pan=None if spec.at is not None else float(self.values.get(f"{name}.pan", spec.pan)),
                    positional=spec.at is not None,
                )
            )
        master = min(float(self.values[f"{MASTER}.volume"]), self.config.audio.max_volume)
        self.process.send(Master(master))
        for name, spec in self.config.sounds.items():
            if spec.at is not None:
                self.process.send(Position(name, *spec.at))
            if spec.autoplay:
                self.playing.add(name)
                self.process.send(Play(name))
        self.health.figure("playing", len(self.playing))

    def _reply(self, reply: SoundReply) -> None:
        kind = reply[0]
        if kind == "error":
            self.errors += 1
            self.health.figure("errors", self.errors)
            log.warning("sound `%s`: %s", reply[1], reply[2])
        elif kind == "warning":
            log.warning("sound `%s`: %s", reply[1], reply[2])
        elif kind == "stopped":
            self.playing.discard(str(reply[1]))
            self.health.figure("playing", len(self.playing))
        elif kind == "silent":
            self._silent.set()
        elif kind == "closed":
            self.closed_at = float(reply[1])

    async def go_safe(self, timeout: float) -> bool:
        """The last thing at a stop: everything fades out (within a second at most), then the process closes
        (a rendered file is complete then)."""
        self.values[f"{MASTER}.volume"] = 0.0
        process, self.process = self.process, None
        if process is None or not process.alive:
            return True  # nothing sounds
        self._silent.clear()
        process.send(Silence(within=min(timeout / 2, 1.0)))
        try:
            async with asyncio.timeout(timeout):
                await self._silent.wait()
        except TimeoutError:
            log.warning("sound: the sound process did not confirm silence in %.1f s", timeout)
        finally:
            self.playing.clear()
            await process.close(timeout)
        return self._silent.is_set()


class SimulatedSound(SoundDevice):
    """``--simulate`` plays sound too: curators preview with it (the device is the same)."""

    def inject(self, fault: Fault) -> None:
        check_fault(self, fault, ())


def sound_device_config(sounds: dict[str, SoundSpec], audio: AudioSettings) -> SoundDeviceConfig:
    """What the registry gives the exhibit for its ``sounds:`` (engine.exhibit.with_sound_device)."""
    return SoundDeviceConfig.of(sounds, audio)


__all__ = ["SOUND_DEVICE", "SimulatedSound", "SoundDevice", "SoundDeviceConfig", "sound_device_config"]
