"""The sound figures of `launcher.py bench`: GO to the cue's beep in the mix the sound process rendered, against a
bare Panda3D loop playing the same beeps, and the OSC-to-MQTT latency with sound playing and without, each in the
same run. Shape only: timings are never asserted against their targets."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path

import numpy as np
import pytest

from content.audio_synth import write_wav
from engine.validate import validate_text
from launcher import build_registry
from tests.bench.procs import BenchError, find_mosquitto
from tests.bench.results import as_json
from tests.bench.runner import GROUPS, NEEDS_BROKER, run_sound
from tests.bench.sound import (
    EARLY_S,
    LATE_S,
    QUICK_SOUND,
    SoundPlan,
    beep,
    go_exhibit,
    heard,
    load_exhibit_text,
    sound_figures,
    sound_samples,
    write_sounds,
)
from tests.support.bench_checks import assert_figures
from tests.support.net import free_port

NAMES = {"sound_go_latency_p99": "ms", "control_latency_sound_ratio": "ms"}


def test_the_sound_group_runs_after_the_studio_and_before_pose_with_a_broker():
    assert GROUPS.index("studio") < GROUPS.index("sound") < GROUPS.index("pose") and "sound" in NEEDS_BROKER


def test_the_exhibits_are_valid_and_differ_only_in_their_sound(tmp_path: Path):
    write_sounds(tmp_path)
    registry = build_registry()
    go = validate_text(go_exhibit(), str(tmp_path / "go.yaml"), registry)
    assert set(go.sounds) == {"beep"}
    port = free_port(socket.SOCK_DGRAM)
    sounding = validate_text(load_exhibit_text("x", port, True), str(tmp_path / "on.yaml"), registry)
    silent = validate_text(load_exhibit_text("x", port, False), str(tmp_path / "off.yaml"), registry)
    assert set(sounding.sounds) == {"hum", "beep"} and not silent.sounds
    assert sounding.sounds["hum"].autoplay and sounding.sounds["hum"].loop
    for exhibit in (sounding, silent):
        assert [(m.source, m.target) for m in exhibit.mappings] == [("probe_in.seq", "probe.value")]
        assert set(exhibit.states["pulse"].states) == {"tick", "tock"}


def test_each_go_is_matched_to_the_first_onset_after_it(tmp_path: Path):
    """A mix made here: beeps at known places, GOs a known time before each (one a little after: a block early)."""
    plan = SoundPlan(gos=4, rounds=0, messages=0, warmup=1)
    rate = 48_000
    starts = [0.5, 0.7, 0.95, 1.15, 1.4]
    late_ms = [9.0, 2.0, 4.5, -0.5, 30.0]
    mix = np.zeros(int(2.0 * rate))
    for start in starts:
        at = round(start * rate)
        mix[at : at + len(beep())] += beep()
    write_wav(tmp_path / "mix.wav", mix)
    closed_at = 1000.0
    origin = closed_at - len(mix) / rate
    gos = [origin + start - ms / 1000 for start, ms in zip(starts, late_ms, strict=True)]
    run = heard(tmp_path / "mix.wav", closed_at, gos, plan)
    assert run.gos == 4 and run.seconds == pytest.approx(2.0)
    assert run.ms == pytest.approx(late_ms[1:], abs=0.1)  # the warm-up's GO is not timed
    with pytest.raises(BenchError, match="only 2 of 4 beeps"):  # a GO with nothing after it is not heard
        heard(tmp_path / "mix.wav", closed_at, [*gos[:3], origin + 1.8, origin + 1.9], plan)


@pytest.mark.timeout(240)  # about 40 s alone on two cores: a bare loop, a show in this process, four engines
def test_quick_sound_figures_come_from_real_mixes():
    mosquitto = find_mosquitto()
    assert mosquitto is not None, "Mosquitto is needed: apt-get install mosquitto"
    sound = run_sound(QUICK_SOUND, mosquitto)
    figures = json.loads(as_json(sound_figures(sound)))
    assert_figures(figures, NAMES)
    assert all(math.isfinite(figure[key]) for figure in figures.values() for key in ("value", "baseline", "ratio"))
    # Nearly every GO was heard, each within the window it may be matched in.
    for run in (sound.engine, sound.bare):
        assert run.gos == QUICK_SOUND.gos and len(run.ms) >= 0.9 * run.gos
        assert np.all(run.ms >= -EARLY_S * 1000) and np.all(run.ms < LATE_S * 1000)
    assert sound.buffer_ms == pytest.approx(64 / 48)
    # The messages really went through both kinds of run, and the runs with sound were heard all along.
    load = sound.load
    assert load.sounding.measured == load.silent.measured == QUICK_SOUND.messages * QUICK_SOUND.rounds
    assert load.sounding.delivered > 0.5 and load.silent.delivered > 0.5
    assert len(load.mixes) == len(load.sounding_p99) == len(load.silent_p99) == QUICK_SOUND.rounds
    for mix in load.mixes:
        assert mix.health["status"] == "ok" and mix.health["playing"] >= 1 and not mix.health.get("errors")
        assert mix.hum_db > -40 and mix.beeps >= 2
    table = "\n".join(sound_samples(sound))
    assert "period_size 64 at 48000 Hz: a 1.33 ms buffer" in table
    assert "sound_go_latency_p99 at most 21.33 ms" in table
    assert "control_latency_sound_ratio at most 1.1" in table
