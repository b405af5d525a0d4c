"""`launcher.py bench --json` prints the figures the issue names, each against a
baseline measured in the same run. Shape only: timings are never asserted."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_launcher


@pytest.mark.timeout(180)
def test_bench_json_reports_latency_figures_against_a_baseline():
    # Every group but the memory soak, which tests/integration/test_bench_soak.py runs on its own.
    groups = "osc,inputs,logic,devices,render,pose"
    result = run_launcher("bench", "--json", "--quick", "--only", groups, timeout=150)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    for name in ("osc_to_mqtt_latency_p50", "osc_to_mqtt_latency_p99"):
        figure = figures[name]
        assert set(figure) == {"value", "unit", "baseline", "ratio"}
        assert figure["unit"] == "ms"
        assert figure["value"] > 0 and figure["baseline"] > 0
        assert abs(figure["ratio"] - figure["value"] / figure["baseline"]) < 1e-9
    assert figures["osc_to_mqtt_delivered"]["value"] > 0.5  # the engine really carried the messages


def test_bench_refuses_a_group_it_does_not_have_in_one_sentence():
    result = run_launcher("bench", "--only", "smell", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "No such benchmark group: smell; the groups are osc, console, inputs, logic, devices, render, site, "
        "studio, sound, audience, pose, analytics, soak"
    ]
