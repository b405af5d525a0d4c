"""The many-device figures of `launcher.py bench`: the update rate 512 RGB fixtures moved at 44 Hz reach a
subscriber with, and PANIC to the last fixture's safe command, of a show run as `launcher.py run` wires it,
each against bare aiomqtt publishing from the same process. Shape only: timings are never asserted."""

from __future__ import annotations

import json

import numpy as np

from engine.validate import validate_text
from launcher import build_registry
from tests.bench.devices import QUICK_DEVICES, TIMELINE, devices_exhibit, run_devices
from tests.bench.procs import find_mosquitto
from tests.bench.results import as_json, device_figures, device_samples, device_targets

NAMES = {"fanout_update_rate": "updates/s", "fanout_cpu_cores": "cores", "panic_to_safe_ms": "ms"}


def test_the_exhibit_has_every_fixture_on_the_timeline_and_no_panic_fade():
    exhibit = validate_text(devices_exhibit(8), "bench-devices.yaml", build_registry())
    assert sorted(exhibit.devices) == sorted(f"f{i}" for i in range(1, 9))
    assert exhibit.safety.panic_time == 0
    assert len(exhibit.timelines[TIMELINE].tracks) == 8


def test_quick_device_figures_have_a_value_a_baseline_and_their_ratio():
    mosquitto = find_mosquitto()
    assert mosquitto is not None, "Mosquitto is needed: apt-get install mosquitto"
    devices = run_devices(QUICK_DEVICES, mosquitto)
    results = device_figures(devices)
    figures = json.loads(as_json(results))
    assert set(figures) == set(NAMES)
    for name, unit in NAMES.items():
        figure = figures[name]
        assert set(figure) == {"value", "unit", "baseline", "ratio"}
        assert figure["unit"] == unit
    for name in ("fanout_update_rate", "fanout_cpu_cores"):
        assert figures[name]["value"] > 0 and figures[name]["baseline"] > 0  # updates really reached the broker
    panic = devices.panic
    assert len(panic.engine) == len(panic.baseline) == QUICK_DEVICES.panics
    assert np.isfinite(panic.engine).any() and np.isfinite(panic.baseline).any()  # every fixture went safe once
    table = "\n".join(device_samples(devices) + device_targets(results))
    assert "fanout_update_rate at 22,528 updates/s (512 x 44) with the engine under one core" in table
    assert "panic_to_safe_ms at most 100 ms" in table
