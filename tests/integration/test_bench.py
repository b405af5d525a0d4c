"""`launcher.py bench --json` prints the figures the issue names, each against a
baseline measured in the same run. Shape only: timings are never asserted."""

from __future__ import annotations

import json

from tests.conftest import run_launcher


def test_bench_json_reports_latency_figures_against_a_baseline():
    result = run_launcher("bench", "--json", "--quick", timeout=120)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    for name in ("osc_to_mqtt_latency_p50", "osc_to_mqtt_latency_p99"):
        figure = figures[name]
        assert set(figure) == {"value", "unit", "baseline", "ratio"}
        assert figure["unit"] == "ms"
        assert figure["value"] > 0 and figure["baseline"] > 0
        assert abs(figure["ratio"] - figure["value"] / figure["baseline"]) < 1e-9
    assert figures["osc_to_mqtt_delivered"]["value"] > 0.5  # the engine really carried the messages
