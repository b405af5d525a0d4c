"""The sound process, heard: each test spawns the real worker (Panda3D's OpenAL Soft) and either renders the mix
to a WAV file (OpenAL Soft's ``wave`` back-end, in real time) and measures it, or runs it on OpenAL Soft's null
device (real sound state, no output).

A rendered file's first sample is at ``closed - frames / rate``, where ``closed`` is ``time.monotonic()`` just
before the worker's ``shutdown()`` (the ``("closed", t, t_after)`` reply): with 64-frame blocks at 48 kHz that
maps the file onto the monotonic clock to about 2 ms (measured in /work/notes/issue18-research.md), or to within
the time ``shutdown()`` took on a busy machine (the file can end anywhere in it). Commands are stamped with
``time.monotonic()`` as they are sent.

Levels: a mono sound, centred, comes out at -4.5 dB per channel (OpenAL Soft's pan law for stereo speakers), so
a 0.5-amplitude sine (-9.03 dB) is -13.5 dB in each channel; panned fully to one side it is 0 dB there.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from devices.sound.process import SoundProcess
from devices.sound.protocol import (
    ListenerAt,
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
from devices.sound.wavfile import level_db, onsets, read_wav, segment
from devices.sound.worker import NICENESS

RATE = 48000
BLOCK = 64 / RATE
"""One mixing block (the worker's default period_size): when a command is heard, at the earliest."""
START_TIMEOUT = 30.0  # a spawned Python importing Panda3D, on a busy CI machine
SILENT_DB = -60.0
CENTRED_DB = 20 * math.log10(0.5 / math.sqrt(2)) - 4.5  # a 0.5 sine, centred: -13.5 dB a channel
ONSET_TOLERANCE = 0.010
"""Seconds between a Play's send and its onset in the file: measured +1..+3 ms on an idle 2-core machine."""
LEVEL_TOLERANCE = 1.0
"""dB, for levels OpenAL sets exactly (measured within 0.1 dB)."""


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> str:
    """A 16-bit WAV of ``samples`` (frames,) mono or (frames, 2) stereo, with the stdlib's writer."""
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return str(path)


def sine(seconds: float, freq: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return amplitude * np.sin(2 * np.pi * freq * t)


@pytest.fixture
def sounds(tmp_path: Path) -> dict[str, str]:
    marked = np.zeros(round(1.2 * RATE))
    marked[round(0.6 * RATE) : round(0.9 * RATE)] = sine(0.3, 880)  # a beep 0.6 s into 1.2 s of silence
    return {
        "beep": write_wav(tmp_path / "beep.wav", sine(0.3, 440)),
        "tone": write_wav(tmp_path / "tone.wav", sine(2.0, 440)),
        "low": write_wav(tmp_path / "low.wav", sine(2.0, 220, 0.3)),
        "mid": write_wav(tmp_path / "mid.wav", sine(2.0, 330, 0.3)),
        "high": write_wav(tmp_path / "high.wav", sine(2.0, 550, 0.3)),
        "marked": write_wav(tmp_path / "marked.wav", marked),
        "stereo": write_wav(tmp_path / "stereo.wav", np.stack([sine(1.0, 440), sine(1.0, 660)], axis=1)),
    }


@dataclass
class Render:
    samples: np.ndarray
    rate: int
    origin: float
    """``time.monotonic()`` of the first sample (or up to ``slack`` later)."""
    slack: float
    """How long ``shutdown()`` took: the origin may be this much late, so times in the file this much early."""

    def level(self, start: float, end: float, channel: int | None = None) -> float:
        """dB of the mix between two monotonic times (one channel, or both)."""
        part = segment(self.samples, self.rate, start - self.origin, end - self.origin)
        return level_db(part if channel is None else part[:, channel])

    def onsets(self, after: float = 0.0) -> list[float]:
        """Onsets as monotonic times."""
        return [self.origin + t for t in onsets(self.samples, self.rate) if self.origin + t >= after]


class Session:
    """A worker, the replies it sent, and (rendering) the file it wrote."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.process = SoundProcess(settings)
        self.replies: list[SoundReply] = []
        self._seen = 0
        self.info: dict = {}

    async def __aenter__(self) -> Session:
        self.info = await self.process.start(START_TIMEOUT)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.process.alive:
            await self.process.close()

    def send(self, *commands: SoundCommand) -> float:
        """Send now; the monotonic time it was sent."""
        sent = time.monotonic()
        for command in commands:
            assert self.process.send(command)
        return sent

    async def expect(self, kind: str, name: str | None = None, timeout: float = 5.0) -> SoundReply:
        """The next reply of this kind (for this sound), waiting up to ``timeout``."""
        async with asyncio.timeout(timeout):
            while True:
                for reply in self.replies[self._seen :]:
                    self._seen += 1
                    if reply[0] == kind and (name is None or reply[1] == name):
                        return reply
                self.replies.append(await self.process.get())

    def of_kind(self, kind: str) -> list[SoundReply]:
        return [reply for reply in self.replies if reply[0] == kind]

    async def close(self) -> int | None:
        code = await self.process.close()
        while not self.replies or self.replies[-1][0] != "exited":
            self.replies.append(await self.process.get(timeout=5.0))
        return code

    async def render(self) -> Render:
        """Quit the worker and read what it mixed."""
        assert await self.close() == 0
        _, closing, closed = self.of_kind("closed")[0]
        assert self.settings.render_to is not None
        samples, rate = read_wav(self.settings.render_to)
        assert rate == RATE and samples.shape[1] == 2
        return Render(samples, rate, closing - len(samples) / rate, closed - closing)


def rendering(tmp_path: Path) -> Session:
    return Session(WorkerSettings(render_to=str(tmp_path / "mix.wav")))


def null_output() -> Session:
    return Session(WorkerSettings(driver="null"))


async def test_the_sound_process_and_its_mixing_thread_yield_the_cpu_to_the_show(tmp_path, sounds):
    async with rendering(tmp_path) as session:
        session.send(Load("tone", sounds["tone"], loop=True), Play("tone"))
        await asyncio.sleep(0.3)  # OpenAL's mixing thread is running
        pid = session.process.pid
        assert pid is not None
        threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
        niceness = {tid: os.getpriority(os.PRIO_PROCESS, tid) for tid in threads}
    assert len(threads) > 2 and set(niceness.values()) == {os.getpriority(os.PRIO_PROCESS, 0) + NICENESS}, niceness


async def test_a_play_starts_on_time_at_its_level(tmp_path, sounds):
    async with rendering(tmp_path) as session:
        assert session.info["valid"] and session.info["fallback"] is None
        session.send(Load("beep", sounds["beep"]))
        sent = []
        for gap in (0.35, 0.47, 0.41, 0.53):  # uneven, so a constant offset cannot hide behind the rhythm
            await asyncio.sleep(gap)
            sent.append(session.send(Play("beep")))
        await asyncio.sleep(0.4)
        mix = await session.render()

    heard = mix.onsets()
    assert len(heard) == len(sent), heard
    errors = [onset - play for onset, play in zip(heard, sent, strict=True)]
    early = ONSET_TOLERANCE + mix.slack
    assert all(-early <= error <= ONSET_TOLERANCE for error in errors), [round(e * 1000, 1) for e in errors]
    assert mix.level(mix.origin, sent[0] - early) < SILENT_DB  # nothing before the first Play
    for onset in heard:
        for channel in (0, 1):
            assert mix.level(onset + 0.05, onset + 0.25, channel) == pytest.approx(CENTRED_DB, abs=LEVEL_TOLERANCE)
        assert mix.level(onset + 0.31, onset + 0.34) < SILENT_DB  # and it ends with the file (0.3 s)
    assert len(session.of_kind("stopped")) == len(sent)


async def test_volume_and_master_change_the_level(tmp_path, sounds):
    async with rendering(tmp_path) as session:
        session.send(Load("tone", sounds["tone"], loop=True))
        played = session.send(Play("tone"))
        await asyncio.sleep(0.5)
        quieter = session.send(Set("tone", "volume", 0.25))
        await asyncio.sleep(0.4)
        mastered = session.send(Master(0.5))
        await asyncio.sleep(0.4)
        ended = session.send(StopSound("tone"))
        await asyncio.sleep(0.1)
        mix = await session.render()

    full = mix.level(played + 0.05, quieter - 0.02, 0)
    assert full == pytest.approx(CENTRED_DB, abs=LEVEL_TOLERANCE)
    assert mix.level(quieter + 0.03, mastered - 0.02, 0) - full == pytest.approx(-12.04, abs=LEVEL_TOLERANCE)
    assert mix.level(mastered + 0.03, ended - 0.02, 0) - full == pytest.approx(-18.06, abs=LEVEL_TOLERANCE)
    assert mix.level(ended + 0.02, ended + 0.08) < SILENT_DB


async def test_position_and_pan_place_a_sound_left_or_right(tmp_path, sounds):
    left, right = 0, 1
    async with rendering(tmp_path) as session:
        session.send(
            ListenerAt(0, 0, 0, forward=(0, 1, 0), up=(0, 0, 1)),
            Load("walker", sounds["tone"], loop=True, positional=True),
            Load("narrator", sounds["tone"], loop=True, pan=-1.0),
            Load("music", sounds["stereo"], loop=True, pan=-1.0),
            Position("walker", -2, 0, 0),
        )
        marks = [session.send(Play("walker"))]
        await asyncio.sleep(0.35)
        marks.append(session.send(Position("walker", 2, 0, 0)))
        await asyncio.sleep(0.35)
        marks.append(session.send(StopSound("walker"), Play("narrator")))
        await asyncio.sleep(0.35)
        marks.append(session.send(Set("narrator", "pan", 1.0)))
        await asyncio.sleep(0.35)
        marks.append(session.send(StopSound("narrator"), Play("music")))
        await asyncio.sleep(0.35)
        marks.append(session.send(StopSound("music")))
        warning = await session.expect("warning", "music")
        mix = await session.render()

    def balance(k: int) -> tuple[float, float]:
        start, end = marks[k] + 0.04, marks[k + 1] - 0.02
        return mix.level(start, end, left), mix.level(start, end, right)

    walker_left, walker_right, narrator_left, narrator_right, music = (balance(k) for k in range(5))
    # Positional, 2 m away (half the level): fully in the near ear (measured 81 dB apart).
    assert walker_left[0] == pytest.approx(CENTRED_DB + 4.5 - 6.0, abs=LEVEL_TOLERANCE)
    assert walker_left[0] - walker_left[1] > 40
    assert walker_right[1] - walker_right[0] > 40
    # Pan ±1 puts a mono sound at ±90°: fully on that side, at its own level.
    assert narrator_left[0] == pytest.approx(CENTRED_DB + 4.5, abs=LEVEL_TOLERANCE)
    assert narrator_left[0] - narrator_left[1] > 40
    assert narrator_right[1] - narrator_right[0] > 40
    # A stereo file is not panned (and the worker says so): each channel plays as recorded.
    assert "stereo" in warning[2]
    assert music[0] == pytest.approx(CENTRED_DB + 4.5, abs=LEVEL_TOLERANCE)
    assert music[1] == pytest.approx(CENTRED_DB + 4.5, abs=LEVEL_TOLERANCE)


async def test_silence_fades_everything_out_in_time_and_later_plays_are_heard(tmp_path, sounds):
    async with rendering(tmp_path) as session:
        session.send(*(Load(name, sounds[name], loop=True) for name in ("low", "mid", "high")))
        session.send(*(Play(name) for name in ("low", "mid", "high")))
        await asyncio.sleep(0.5)
        panic = session.send(Silence(within=1.0))
        silent = (await session.expect("silent", timeout=3.0))[1]
        await asyncio.sleep(0.2)
        again = session.send(Play("mid"))
        await asyncio.sleep(0.3)
        mix = await session.render()

    assert panic < silent <= panic + 1.0 + 0.05  # the reply comes when it is done, within the time asked
    assert mix.level(panic - 0.3, panic) > -20  # three loops were playing
    assert mix.level(panic + 0.1, panic + 0.2) > -25  # a fade, not a cut
    # Silent from the deadline (one block, and the file's time origin, of slack) until the next Play.
    assert mix.level(panic + 1.0 + BLOCK + 0.004 + mix.slack, again - 0.02) < SILENT_DB
    # The master is back: a later Play is heard at full level.
    assert mix.level(again + 0.03, again + 0.25, 0) == pytest.approx(20 * math.log10(0.3 / math.sqrt(2)) - 4.5, abs=1)


async def test_fades_and_pause_resume(tmp_path, sounds):
    async with rendering(tmp_path) as session:
        session.send(Load("tone", sounds["tone"], loop=True), Load("marked", sounds["marked"]))
        fade_in = session.send(Play("tone", fade=0.5))
        await asyncio.sleep(0.7)
        fade_out = session.send(StopSound("tone", fade=0.4))
        await asyncio.sleep(0.6)
        # The marker file beeps 0.6 s in: paused at 0.3 s and resumed, it must beep 0.3 s after the Resume.
        played = session.send(Play("marked"))
        await asyncio.sleep(0.3)
        paused = session.send(Pause("marked", fade=0.0))
        await asyncio.sleep(0.5)
        resumed = session.send(Resume("marked"))
        await asyncio.sleep(1.0)  # it ends 0.9 s after the Resume
        mix = await session.render()

    full = mix.level(fade_in + 0.55, fade_out - 0.02)
    assert full == pytest.approx(CENTRED_DB, abs=LEVEL_TOLERANCE)
    assert mix.level(fade_in + 0.03, fade_in + 0.08) - full < -12  # gain about 0.1 on the way up
    assert mix.level(fade_in + 0.23, fade_in + 0.28) - full == pytest.approx(-6, abs=2)  # halfway: about 0.5
    assert mix.level(fade_out + 0.18, fade_out + 0.22) - full == pytest.approx(-6, abs=2)
    assert mix.level(fade_out + 0.4 + 0.02, played - 0.02) < SILENT_DB  # stopped once faded out

    position = paused - played
    beeps = mix.onsets(after=played)
    assert len(beeps) == 1, beeps  # not during the pause, not twice
    assert beeps[0] - resumed == pytest.approx(0.6 - position, abs=0.03)
    assert session.of_kind("stopped") == [("stopped", "marked")]  # the loop never ends on its own


async def test_a_sound_that_ends_says_so(sounds):
    async with null_output() as session:
        session.send(Load("beep", sounds["beep"]), Load("tone", sounds["tone"], loop=True))
        session.send(Play("tone"))
        played = session.send(Play("beep"))
        stopped = await session.expect("stopped", timeout=3.0)
        ended = time.monotonic()
        assert stopped == ("stopped", "beep")
        assert 0.28 <= ended - played <= 0.3 + 0.25
        session.send(StopSound("tone"))  # stopped on purpose: no "stopped" reply
        await asyncio.sleep(0.2)
        await session.close()
    assert session.of_kind("stopped") == [("stopped", "beep")]
    assert not session.of_kind("error")


async def test_a_missing_or_broken_file_is_an_error_and_the_worker_runs_on(tmp_path, sounds):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(np.random.default_rng(1).bytes(4000))
    async with null_output() as session:
        session.send(Load("gone", str(tmp_path / "no-such.wav")), Load("broken", str(garbage)))
        assert (await session.expect("error", "gone"))[2].startswith("no such sound file")
        assert "cannot read" in (await session.expect("error", "broken"))[2]
        session.send(Play("broken"))
        assert "no sound is loaded" in (await session.expect("error", "broken"))[2]
        session.send(Load("beep", sounds["beep"]), Play("beep"))
        assert await session.expect("stopped", "beep", timeout=3.0)
        assert session.process.alive
        assert await session.close() == 0


async def test_the_null_device_takes_every_command(sounds):
    async with null_output() as session:
        assert session.info["valid"] is True  # a real OpenAL device that mixes into nothing
        assert session.info["type"] == "OpenALAudioManager"
        assert session.info["fallback"] is None
        session.send(
            ListenerAt(0, 0, 0),
            Load("walker", sounds["tone"], loop=True, positional=True),
            Load("beep", sounds["beep"], volume=0.5, rate=1.5, pan=0.5),
            Position("walker", 1, 2, 0),
            Play("walker", fade=0.2),
            Play("beep"),
            Set("beep", "pan", -0.5, fade=0.1),
            Set("walker", "rate", 0.8, fade=0.1),
            Master(0.7, fade=0.1),
        )
        assert await session.expect("stopped", "beep", timeout=3.0)  # 0.3 s at 1.5x
        session.send(Pause("walker", fade=0.1), Resume("walker"), Silence(within=0.2))
        assert await session.expect("silent", timeout=3.0)
        assert await session.close() == 0
    assert not session.of_kind("error") and not session.of_kind("warning")


async def test_without_a_sound_device_the_worker_falls_back_and_runs_on(sounds):
    async with Session(WorkerSettings(driver="no-such-driver")) as session:
        assert session.info["valid"] is False
        assert "no sound device" in session.info["fallback"]
        session.send(Load("beep", sounds["beep"]), Play("beep"), Silence(within=0.1))
        assert await session.expect("stopped", "beep", timeout=3.0)  # nothing is playing
        assert await session.expect("silent", timeout=3.0)
        assert await session.close() == 0
    assert not session.of_kind("error")


async def test_the_handle_calls_back_with_replies_and_sees_the_process_end(sounds):
    replies: list[SoundReply] = []
    ended = asyncio.Event()

    def on_reply(reply: SoundReply) -> None:
        replies.append(reply)
        if reply == ("stopped", "beep"):
            ended.set()

    process = SoundProcess(WorkerSettings(driver="null"), on_reply=on_reply)
    info = await process.start(START_TIMEOUT)
    try:
        assert info["valid"] and process.alive
        assert process.send(Load("beep", sounds["beep"])) and process.send(Play("beep"))
        await asyncio.wait_for(ended.wait(), 3.0)
        assert process._process is not None
        process._process.kill()  # a crash: wait() returns, so the device can start another
        assert await asyncio.wait_for(process.wait(), 5.0) == -9
        assert replies[-1] == ("exited", -9)
        assert not process.alive and not process.send(Play("beep"))
    finally:
        await process.close(1.0)


async def test_the_mix_never_goes_above_the_ceiling(tmp_path, sounds):
    """Three 0.3 sines could add up to 0.9 (0.53 a channel, centred): with a ceiling of 0.4 the worker turns the
    master down before they do, and back up when they end; a sound alone under the ceiling is left as it is."""
    ceiling = 0.4
    settings = WorkerSettings(render_to=str(tmp_path / "mix.wav"), ceiling=ceiling)
    async with Session(settings) as session:
        for name in ("low", "mid", "high"):
            session.send(Load(name, sounds[name], loop=True))
        alone = session.send(Play("low"))
        await asyncio.sleep(0.5)
        together = session.send(Play("mid"), Play("high"))
        await asyncio.sleep(0.8)
        ended = session.send(StopSound("mid"), StopSound("high"))
        await asyncio.sleep(0.5)
        mix = await session.render()

    peak = float(np.abs(mix.samples).max())
    assert peak <= ceiling * 1.02, f"the mix reached {peak:.3f}, above the ceiling {ceiling}"
    low_alone = mix.level(alone + 0.05, together - 0.02, 0)
    assert low_alone == pytest.approx(20 * math.log10(0.3 / math.sqrt(2)) - 4.5, abs=LEVEL_TOLERANCE)
    guarded = segment(mix.samples, mix.rate, together + 0.05 - mix.origin, ended - 0.02 - mix.origin)
    assert float(np.abs(guarded).max()) > ceiling * 0.4, "the guard turned the mix down far more than needed"
    assert mix.level(ended + 0.1, ended + 0.4, 0) == pytest.approx(low_alone, abs=LEVEL_TOLERANCE)
