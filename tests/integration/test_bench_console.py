"""The console figures of `launcher.py bench`: a GO over the console's WebSocket to the device command at the
broker against a bare aiomqtt publish, a signal change to a watching WebSocket client against the same change's
device command, and the OSC-to-MQTT p99 with 20 watching clients over the same without, all through one engine
(`launcher.py run --console-port --accounts`). Shape only: timings are never asserted."""

from __future__ import annotations

import json
import math

import numpy as np

from engine.show_model import SetAction
from engine.validate import validate_text
from launcher import build_registry
from tests.bench.console import EXHIBIT, EXHIBIT_ID, HEALTH_SIGNALS, QUICK_CONSOLE, SIGNAL, alternating_latencies
from tests.bench.procs import find_mosquitto
from tests.bench.results import as_json, console_figures, console_samples, console_targets
from tests.bench.runner import GROUPS, NEEDS_BROKER, run_console
from tests.support.bench_checks import assert_figures

NAMES = {
    "console_go_roundtrip_p50": "ms",
    "console_go_roundtrip_p99": "ms",
    "console_update_latency_p50": "ms",
    "console_update_latency_p99": "ms",
    "control_latency_console_ratio": "ms",
}
MS = 1_000_000


def test_the_console_group_runs_after_the_osc_group_on_a_broker():
    assert GROUPS[:2] == ("osc", "console") and "console" in NEEDS_BROKER


def test_the_exhibit_has_the_watched_signals_and_two_cues_setting_their_own_values():
    exhibit = validate_text(EXHIBIT.format(exhibit_id=EXHIBIT_ID, udp_port=9999), "bench.yaml", build_registry())
    assert [(m.source, m.target) for m in exhibit.mappings] == [("probe_in.seq", "probe.value")]
    cues = exhibit.cues["bench"].cues
    assert [cue.id for cue in cues] == ["1", "2"]
    actions = [cue.actions[0] for cue in cues]
    assert [(a.set, a.value) for a in actions if isinstance(a, SetAction)] == [("cued.value", 1), ("cued.value", 2)]
    assert SIGNAL == "probe_in.seq" and {name.split(".")[0] for name in HEALTH_SIGNALS} == {"probe_in", "probe"}


def test_a_lost_command_is_not_matched_to_a_later_one_with_the_same_value():
    sent = np.array([0, 10, 20, 30, 40], dtype=np.int64) * MS  # values 1, 2, 1, 2, 1
    received = np.array([(1, 1 * MS), (1, 22 * MS), (2, 33 * MS), (1, 41 * MS)], dtype=np.int64)
    result = alternating_latencies(sent, received, warmup=0)
    assert result.ms.tolist() == [1.0, 2.0, 3.0, 1.0]  # the second (value 2) was lost: 33 ms is the fourth's
    assert result.measured == 5
    assert alternating_latencies(sent, received, warmup=2).ms.tolist() == [2.0, 3.0, 1.0]


def test_quick_console_figures_have_a_value_a_baseline_and_their_ratio():
    mosquitto = find_mosquitto()
    assert mosquitto is not None, "Mosquitto is needed: apt-get install mosquitto"
    console = run_console(QUICK_CONSOLE, mosquitto)
    figures = json.loads(as_json(console_figures(console)))
    assert_figures(figures, NAMES)
    assert all(math.isfinite(figure[key]) for figure in figures.values() for key in ("value", "baseline", "ratio"))
    go, update, load = console.go, console.update, console.load
    assert go.engine.measured == go.baseline.measured == QUICK_CONSOLE.gos
    assert go.engine.delivered > 0.5 and go.baseline.delivered > 0.5  # the GOs really reached the broker
    assert update.engine.measured == QUICK_CONSOLE.updates
    # A client gets at most 50 changes a second (the console's pacing), the latest one each time: of values
    # changing 200 times a second, about a quarter reach it.
    assert update.engine.delivered > 0.1 and update.baseline.delivered > 0.5
    assert load.watched.measured == load.alone.measured == QUICK_CONSOLE.messages * QUICK_CONSOLE.rounds
    assert load.watched.delivered > 0.5 and load.alone.delivered > 0.5
    assert len(load.watchers) == QUICK_CONSOLE.rounds
    assert all(run.fewest > 0 for run in load.watchers)  # every client really received the live plot's values
    table = "\n".join(console_samples(console) + console_targets(console_figures(console)))
    assert "console_go_roundtrip_p99 at most 5 ms" in table
    assert "console_update_latency_p99 at most 20 ms" in table
    assert "control_latency_console_ratio at most 1.1" in table
