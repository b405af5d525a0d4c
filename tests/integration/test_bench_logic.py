"""The show-logic figures of `launcher.py bench`: a typical rule's evaluation rate against a plain lambda,
and GO-to-broker latency of a show run as `launcher.py run` wires it, against a bare aiomqtt publish, each
measured in the same run. Shape only: timings are never asserted."""

from __future__ import annotations

import json

from tests.bench.logic import QUICK_LOGIC, RULE_SIGNALS, compiled_rule, plain_rule, rule_store, run_logic
from tests.bench.procs import find_mosquitto
from tests.bench.results import as_json, logic_figures, logic_samples, logic_targets
from tests.support.bench_checks import assert_figures

NAMES = {"expr_eval_rate": "eval/s", "cue_go_latency_p50": "ms", "cue_go_latency_p99": "ms"}


def test_the_rule_reads_every_signal_and_agrees_with_its_lambda():
    store = rule_store()
    engine, baseline = compiled_rule(store), plain_rule(store)
    assert engine() is True and baseline() is True  # every term true: no read is skipped
    for name, (kind, _value) in RULE_SIGNALS.items():
        if kind == "bool":
            store.set(name, False)
        else:
            store.set(name, -1 if kind == "int" else -1.0)
        assert engine() is False and not baseline(), name  # each signal is really read by both
        store.set(name, RULE_SIGNALS[name][1])


def test_quick_logic_figures_have_a_value_a_baseline_and_their_ratio():
    mosquitto = find_mosquitto()
    assert mosquitto is not None, "Mosquitto is needed: apt-get install mosquitto"
    logic = run_logic(QUICK_LOGIC, mosquitto)
    figures = json.loads(as_json(logic_figures(logic)))
    assert_figures(figures, NAMES)
    cue = logic.cue
    assert cue.engine.measured == cue.baseline.measured == QUICK_LOGIC.gos
    assert cue.engine.delivered > 0.5 and cue.baseline.delivered > 0.5  # the GOs really reached the broker
    table = "\n".join(logic_samples(logic) + logic_targets(logic_figures(logic)))
    assert "expr_eval_rate at least 0.5x the baseline" in table
    assert "cue_go_latency_p99 at most 5 ms" in table
