"""The input figures of `launcher.py bench`: OSC ingest rate through the real OscSensor and serial
latency through the real SerialSensor on a pty, each against its library's bare baseline in the same
run. Shape only: timings are never asserted."""

from __future__ import annotations

import json

from tests.bench.inputs import QUICK_INPUTS, run_inputs
from tests.bench.results import as_json, input_figures, input_samples, input_targets
from tests.support.bench_checks import assert_figures

NAMES = {"osc_ingest_rate": "msg/s", "serial_latency_p50": "ms", "serial_latency_p99": "ms"}


def test_quick_input_figures_have_a_value_a_baseline_and_their_ratio():
    inputs = run_inputs(QUICK_INPUTS)
    figures = json.loads(as_json(input_figures(inputs)))
    assert_figures(figures, NAMES)
    osc = inputs.osc
    for search in (osc.engine, osc.baseline):
        assert search.steps and all(step.sent == QUICK_INPUTS.burst for step in search.steps)
    assert osc.rcvbuf_engine == osc.rcvbuf_baseline  # both receivers got the same socket buffer
    assert osc.buffer_datagrams > 0
    serial = inputs.serial
    assert serial.engine.measured == serial.baseline.measured == QUICK_INPUTS.serial_lines
    assert serial.engine.delivered > 0.5 and serial.baseline.delivered > 0.5  # the lines really went through
    table = "\n".join(input_samples(inputs) + input_targets(input_figures(inputs)))
    assert "osc_ingest_rate at least 20,000/s" in table and "0.8x the baseline" in table
    assert "serial_latency_p99 at most 2 ms" in table
