"""What `check` says about e-stop inputs and `on:` triggers: each problem at its place in the file,
with its hint, and an event or a true/false signal accepted as it is."""

from __future__ import annotations

import pytest

from engine.problems import ExhibitInvalid
from engine.validate import validate_text
from tests.support.show_harness import registry

HEAD = """\
format_version: 1
id: show
title: {en: Show}
sensors:
  panel:
    kind: osc
    signals:
      button: {address: /button, type: bool}
      level: {address: /level}
devices:
  turntable:
    kind: mqtt
    motion: true
    properties:
      speed: {type: float, range: [0, 10], safe: 0}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ExhibitInvalid) as caught:
        validate_text(text, "show.yaml", registry())
    return [str(problem) for problem in caught.value.problems]


def test_an_estop_input_that_does_not_exist_is_named_at_its_place_with_the_closest_signal():
    text = HEAD + "safety:\n  estop: [panel.level, panel.buton]\n"
    line = len(HEAD.splitlines()) + 2
    assert problems(text) == [
        f"show.yaml:{line}:11: `panel.level` is float; `on:` needs an event or a true/false signal"
        " (use `when:` for a condition)",
        f"show.yaml:{line}:24: no signal or event named `panel.buton` (did you mean `panel.button`?)",
    ]


def test_a_transition_on_a_number_is_a_check_error_at_its_on():
    text = (
        HEAD
        + """\
states:
  mode:
    initial: idle
    states:
      idle:
        transitions: [{to: busy, on: panel.level}]
      busy: {}
"""
    )
    line = len(HEAD.splitlines()) + 6
    assert problems(text) == [
        f"show.yaml:{line}:38: `panel.level` is float; `on:` needs an event or a true/false signal"
        " (use `when:` for a condition)"
    ]


def test_an_event_and_a_true_false_signal_are_accepted_as_estop_inputs():
    text = (
        HEAD
        + """\
safety:
  estop: [panel.button, scene.halt]
rules:
  - when: "panel.level > 0.9"
    do: [{event: scene.halt}]
"""
    )
    exhibit = validate_text(text, "show.yaml", registry())
    assert exhibit.safety.estop == ["panel.button", "scene.halt"]
