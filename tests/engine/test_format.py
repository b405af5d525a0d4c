"""Exhibit files: every mistake reported at once with its file:line:col, nothing started."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.problems import ExhibitInvalid
from engine.validate import load_exhibit, validate_text
from tests.conftest import FLAGSHIP, run_launcher

GOOD = """\
format_version: 1
id: demo
title: {en: Demo, zh: 演示}
sensors:
  controls:
    kind: osc
    port: 9100
    signals:
      level: {address: /demo/level}
devices:
  wash:
    kind: mqtt
    properties:
      brightness: {type: int, range: [0, 255], safe: 0}
mappings:
  - from: controls.level
    to: wash.brightness
"""


def problems_of(text: str, registry) -> list[str]:
    with pytest.raises(ExhibitInvalid) as caught:
        validate_text(text, "demo.yaml", registry)
    return [str(p) for p in caught.value.problems]


def test_the_flagship_is_valid(registry):
    exhibit = load_exhibit(FLAGSHIP, registry)
    assert exhibit.id == "canal-lanterns"
    assert exhibit.title.zh == "运河灯影"
    assert exhibit.sensors["controls"].resources() == ["UDP port 9000", "TCP port 9001"]
    assert exhibit.devices["wash"].safe_state() == {"brightness": 0}


def test_a_good_file_validates(registry):
    exhibit = validate_text(GOOD, "demo.yaml", registry)
    assert [m.target for m in exhibit.mappings] == ["wash.brightness"]


def test_three_different_mistakes_are_all_reported_with_their_lines(tmp_path: Path):
    bad = GOOD.replace("    port: 9100", "    prot: 9100")  # line 7: unknown key
    bad = bad.replace("{type: int, range: [0, 255], safe: 0}", "{type: int, range: [0, 255], safe: dark}")  # line 14
    bad = bad.replace("    to: wash.brightness", "    to: wahs.brightness")  # line 17: no such device
    path = tmp_path / "exhibit.yaml"
    path.write_text(bad, encoding="utf-8")

    result = run_launcher("check", str(path))

    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith(str(path))]
    assert f"{path}:7:5: unknown key `prot` (did you mean `port`?)" in errors
    assert any(line.startswith(f"{path}:14:") and "`safe`" in line and "'dark'" in line for line in errors), errors
    assert f"{path}:17:9: no device named `wahs` (did you mean `wash`?)" in errors
    assert "nothing was started" in result.stderr
    assert "Traceback" not in result.stderr


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path):
    path = tmp_path / "exhibit.yaml"
    path.write_text("format_version: 1\nid: demo\ntitle: [en: Demo\nsensors: {}\n", encoding="utf-8")
    result = run_launcher("check", str(path))
    assert result.returncode == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{path}:4:8: YAML syntax error")
    assert "line 3" in first  # where the unclosed list began


def test_check_exits_0_for_a_valid_file():
    result = run_launcher("check", "canal-lanterns")
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_duplicate_keys_are_an_error(registry):
    errors = problems_of(GOOD.replace("id: demo\n", "id: demo\nid: again\n"), registry)
    assert errors == ["demo.yaml:3:1: YAML syntax error: duplicate key `id`"]


def test_unknown_kind_gets_a_hint(registry):
    errors = problems_of(GOOD.replace("kind: mqtt", "kind: mqt"), registry)
    assert "demo.yaml:12:11: unknown kind `mqt` (did you mean `mqtt`?)" in errors


def test_missing_signal_and_property_are_named(registry):
    text = GOOD.replace("from: controls.level", "from: controls.levle").replace("to: wash.brightness", "to: wash.dim")
    errors = problems_of(text, registry)
    assert "demo.yaml:16:11: sensor `controls` has no signal `levle` (did you mean `level`?)" in errors
    assert any(e.startswith("demo.yaml:17:9: device `wash` has no property `dim`") for e in errors)


def test_reference_to_a_broken_device_is_not_reported_twice(registry):
    # The device itself is invalid (no safe value): one problem, not a second "no device" one.
    errors = problems_of(GOOD.replace(", safe: 0}", "}"), registry)
    assert len(errors) == 1 and "missing required key `safe`" in errors[0]


def test_bad_names_and_missing_keys(registry):
    text = GOOD.replace("  controls:\n", "  Controls:\n").replace("title: {en: Demo, zh: 演示}\n", "")
    errors = problems_of(text, registry)
    assert any("missing required key `title`" in e for e in errors)
    assert any(e.startswith("demo.yaml:4:3: name `Controls` is not allowed") for e in errors)


def test_safe_value_must_fit_the_range(registry):
    errors = problems_of(GOOD.replace("safe: 0}", "safe: 300}"), registry)
    assert any("outside the range [0, 255]" in e and e.startswith("demo.yaml:14:") for e in errors)


def test_final_checks_catch_conflicts(registry):
    text = GOOD + "  - from: controls.level\n    to: wash.brightness\n"
    text = text.replace(
        "devices:", "  other:\n    kind: osc\n    port: 9100\n    signals: {x: {address: /x}}\ndevices:"
    )
    errors = problems_of(text, registry)
    assert any("`other` and `controls` both use UDP port 9100" in e for e in errors)
    assert any("already driven by mapping 1" in e for e in errors)


def test_mapping_needs_an_output_range_when_the_property_has_none(registry):
    errors = problems_of(GOOD.replace("{type: int, range: [0, 255], safe: 0}", "{safe: 0}"), registry)
    assert any("has no range of its own" in e for e in errors)
    validate_text(
        GOOD.replace("{type: int, range: [0, 255], safe: 0}", "{safe: 0}") + "    output: [0, 1]\n",
        "demo.yaml",
        registry,
    )


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("", "missing `format_version`"),
        ("format_version: 7\n", "reads formats up to 1"),
        ("format_version: 0\n", "does not exist"),
        ("format_version: one\n", "must be a whole number"),
    ],
)
def test_format_version(registry, version: str, expected: str):
    errors = problems_of(version + GOOD.replace("format_version: 1\n", ""), registry)
    assert len(errors) == 1 and expected in errors[0]


def test_broker_url_is_checked(registry):
    errors = problems_of(GOOD + "mqtt: {broker: 'tcp://host'}\n", registry)
    assert any("`mqtt://host:port`" in e for e in errors)


def test_not_a_mapping(registry):
    assert problems_of("- 1\n- 2\n", registry) == [
        "demo.yaml:1:1: an exhibit file must be a mapping of keys (`format_version: 1`, ...)"
    ]


def test_a_name_cannot_be_both_a_sensor_and_a_device(registry):
    text = GOOD.replace("  wash:\n    kind: mqtt", "  controls:\n    kind: mqtt").replace(
        "to: wash.brightness", "to: controls.brightness"
    )
    errors = problems_of(text, registry)
    assert any("`controls` is both a sensor and a device" in e for e in errors)
