"""What `check` says about sounds (issue 18): a missing or unplayable file at its line, an action naming no sound,
a mapping to a parameter a sound does not have; and what a valid `sounds:` section becomes (the `sound` device,
whose properties mappings drive)."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from engine.problems import ExhibitInvalid
from engine.validate import validate_text
from launcher import build_registry

HEAD = """\
format_version: 1
id: sounding
title: {en: Sounds}
sensors:
  panel:
    kind: osc
    signals:
      level: {address: /level}
sounds:
  water: {file: water.wav, loop: true, autoplay: true, volume: 0.4}
  chime: {file: chime.wav}
"""


def write_wav(path: Path) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(b"\x00\x00" * 4800)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_wav(tmp_path / "water.wav")
    write_wav(tmp_path / "chime.wav")
    return tmp_path


def problems(folder: Path, text: str) -> list[str]:
    with pytest.raises(ExhibitInvalid) as caught:
        validate_text(text, str(folder / "exhibit.yaml"), build_registry())
    return [str(problem).replace(str(folder) + "/", "") for problem in caught.value.problems]


def test_a_valid_section_becomes_the_sound_device_whose_parameters_mappings_drive(folder: Path):
    text = HEAD + "mappings:\n  - {from: panel.level, to: sound.water.volume}\nrules:\n"
    text += "  - {when: panel.level > 0.5, do: [{sound: chime, fade: 0.5s}]}\n"
    exhibit = validate_text(text, str(folder / "exhibit.yaml"), build_registry())
    device = exhibit.devices["sound"]
    assert device.kind == "sound"
    assert set(device.settable_properties()) == {
        "water.volume", "water.rate", "water.pan", "chime.volume", "chime.rate", "chime.pan", "master.volume",
    }  # fmt: skip
    assert device.safe_state() == {"master.volume": 0.0}  # PANIC and a stop: silence
    assert device.initial_state()["water.volume"] == 0.4  # fades start from the declared volume


def test_a_missing_file_and_one_that_is_no_sound_are_reported_at_their_lines(folder: Path):
    (folder / "chime.wav").write_text("not a sound", encoding="utf-8")
    text = HEAD.replace("water.wav", "waters.wav")
    lines = HEAD.splitlines()
    water = lines.index("  water: {file: water.wav, loop: true, autoplay: true, volume: 0.4}") + 1
    chime = lines.index("  chime: {file: chime.wav}") + 1
    assert problems(folder, text) == [
        f"exhibit.yaml:{water}:17: sound file `waters.wav` not found in {folder}",
        f"exhibit.yaml:{chime}:17: sound file `chime.wav` is not a WAV, Ogg, FLAC or MP3 file",
    ]


def test_a_parameter_no_sound_has_and_an_action_naming_no_sound(folder: Path):
    mapping = HEAD + "mappings:\n  - {from: panel.level, to: sound.water.loudness}\n"
    found = problems(folder, mapping)
    assert any("device `sound` has no property `water.loudness`" in p and "water.volume" in p for p in found), found
    rule = HEAD + "rules:\n  - {when: panel.level > 0.5, do: [{sound: chimes}]}\n"
    found = problems(folder, rule)
    assert any("no sound named `chimes`" in p and "did you mean `chime`" in p for p in found), found


def test_master_is_no_sound_name_and_sound_no_device_name_beside_sounds(folder: Path):
    text = HEAD + "  master: {file: water.wav}\n"
    assert any("`master` is the name of every sound at once" in p for p in problems(folder, text))
    clash = HEAD + "devices:\n  sound: {kind: osc, port: 9000}\n"
    assert any("`sound` is the device the `sounds:` section becomes" in p for p in problems(folder, clash))


PLACED = """\
format_version: 1
id: placed
title: {en: Placed}
sensors:
  body:
    kind: pose
    source: {camera: 0}
    zones:
      bridge: {polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]}
sounds:
  water: {file: water.wav, at: {node: boat}}
  steps: {file: water.wav, follow: {sensor: bodies, landmark: nose}}
  bell: {file: chime.wav, output: booth}
narration:
  language_from: body.language
  zones:
    bridge: {files: {zh: bridge-zh.wav, en: chime.wav}}
    hall: {files: {zh: chime.wav}}
"""


def test_places_visitors_zones_outputs_and_narration_files_are_checked_at_their_lines(folder: Path):
    found = problems(folder, PLACED)
    lines = PLACED.splitlines()

    def line(text: str) -> int:
        return next(number for number, content in enumerate(lines, 1) if text in content)

    water = line("water: {file")
    column = lines[water - 1].index("boat") + 1
    assert f"exhibit.yaml:{water}:{column}: the scene has no node `boat`" in found, found
    assert any(
        p.startswith(f"exhibit.yaml:{line('steps:')}:") and "no pose sensor named `bodies`" in p for p in found
    ), found
    assert any(p.startswith(f"exhibit.yaml:{line('bell:')}:") and "no output `booth`" in p for p in found), found
    hall = f"exhibit.yaml:{line('hall:')}:"
    assert any(p.startswith(hall) and "no pose sensor has a zone `hall`" in p for p in found), found


def test_a_missing_narration_file_and_an_unknown_language_signal(folder: Path):
    text = PLACED.split("sounds:")[0] + "narration:\n  language_from: body.language\n  zones:\n"
    text += "    bridge: {files: {zh: bridge-zh.wav, en: chime.wav}}\n"
    found = problems(folder, text)
    lines = text.splitlines()
    bridge = next(number for number, content in enumerate(lines, 1) if "bridge: {files" in content)
    assert any(p.startswith(f"exhibit.yaml:{bridge}:") and "`bridge-zh.wav` not found" in p for p in found), found
    assert any("no signal named `body.language` to choose the language" in p for p in found), found
