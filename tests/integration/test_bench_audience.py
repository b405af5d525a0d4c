"""The audience figures of `launcher.py bench` (issue 19): a probe phone's tap to the device command carrying its
count, with a crowd of phones tapping and without; the ramp of phones held; and the OSC-to-MQTT latency with a
crowd and without, all through one engine with an audience page. The group's logic on made-up runs (its real runs
take minutes: `launcher.py bench --only audience`, whose figures the README and the closing notes give); timings are
never asserted against their targets."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path

import numpy as np
import pytest

from engine.validate import validate_text
from launcher import build_registry
from tests.bench.audience import (
    AUDIENCE_RATIO_LIMIT,
    PHONES_TARGET,
    TAP_LIMIT_MS,
    AudienceLoad,
    AudiencePlan,
    AudienceResults,
    AudienceStep,
    CrowdRun,
    PhoneTally,
    TapRun,
    audience_exhibit,
    audience_figures,
    audience_samples,
    phones_max,
    step_failures,
    tap_latencies,
)
from tests.bench.results import Latencies, as_json
from tests.bench.runner import GROUPS, NEEDS_BROKER
from tests.support.bench_checks import assert_figures
from tests.support.net import free_port

NAMES = {
    "audience_tap_to_signal_p50": "ms",
    "audience_tap_to_signal_p99": "ms",
    "audience_phones_max": "phones",
    "control_latency_audience_ratio": "ms",
}
TINY = AudiencePlan(taps=4, crowd=20, steps=(20,), rounds=1, messages=200, tap_warmup=1, latency_warmup=50)
"""The whole group, as small as it goes: a few taps, a few dozen phones."""


def crowd(phones: int = 500, **changes: object) -> CrowdRun:
    """A crowd that was held (2 taps a second each), with ``changes``."""
    fields: dict[str, object] = {
        "phones": phones,
        "tally": PhoneTally(connected=phones, sent=phones * 20, refused=0, errors=0),
        "counted": phones * 20,
        "connect_s": 1.0,
        "allowed_s": 2.25,
        "held": True,
        "taps_per_s": phones * 2.0,
        "work_s": 4.0,
        "dropped": 0,
        "restarted": False,
        "engine_cores": 0.1,
        "server_cores": 0.3,
        "phones_cores": 0.2,
    } | changes
    return CrowdRun(**fields)  # type: ignore[arg-type]


def control(p99: float) -> Latencies:
    return Latencies(ms=np.full(100, p99), measured=100)


def step(phones: int, p99: float = 1.0, idle: float = 1.0, **changes: object) -> AudienceStep:
    return AudienceStep(crowd=crowd(phones, **changes), control=control(p99), idle_p99=idle, rate=2.0)


def test_the_audience_group_runs_after_sound_and_before_pose_with_a_broker():
    assert GROUPS.index("sound") < GROUPS.index("audience") < GROUPS.index("pose") and "audience" in NEEDS_BROKER


def test_the_exhibit_is_the_probe_exhibit_plus_an_audience_whose_probe_pad_drives_a_device(tmp_path: Path):
    web = free_port()
    text = audience_exhibit("x", free_port(socket.SOCK_DGRAM), web)
    exhibit = validate_text(text, str(tmp_path / "audience.yaml"), build_registry())
    audience = exhibit.sensors["crowd"]
    assert audience.kind == "audience" and audience.port == web and audience.host == "127.0.0.1"  # type: ignore[attr-defined]
    assert audience.max_phones == 3000 and audience.rate == 10  # type: ignore[attr-defined]
    assert {name: offer.type for name, offer in audience.offers.items()} == {"probe": "tap", "lantern": "tap"}  # type: ignore[attr-defined]
    assert [(m.source, m.target) for m in exhibit.mappings] == [
        ("probe_in.seq", "probe.value"),
        ("crowd.probe.taps", "tap_probe.value"),
    ]


def test_the_probe_taps_are_spaced_at_random_the_same_each_run():
    plan = AudiencePlan(taps=50, crowd=0, steps=(), rounds=0, messages=0)
    gaps = plan.gaps()
    assert len(gaps) == plan.tap_warmup + plan.taps and gaps[0] == 0.5
    assert all(0.3 <= gap <= 0.6 for gap in gaps[1:]) and gaps == plan.gaps()


def test_each_tap_is_timed_to_the_first_command_whose_count_includes_it():
    """Counts before the probe's (``first``), repeats of a count every tick, two taps in one tick, rows out of
    order, a warm-up tap, and a tap whose count never came."""
    ms = 1_000_000
    first = 40
    sent = np.array([0, 500, 1000, 1050, 2000]) * ms
    received = np.array(
        [
            (40, 10 * ms),  # the count before the first tap: no tap's
            (41, 60 * ms),  # tap 1 (the warm-up)
            (41, 160 * ms),  # the same count again, a tick later
            (42, 570 * ms),  # tap 2: 70 ms
            (44, 1190 * ms),  # taps 3 and 4 in one tick, again a tick later
            (44, 1100 * ms),  # ... and first, out of order: tap 3 after 100 ms, tap 4 after 50 ms
        ]
    )
    run = tap_latencies(sent, received, first, warmup=1)
    assert run.measured == 4 and run.ms.tolist() == pytest.approx([70.0, 100.0, 50.0])  # tap 5 never came
    late = np.array([(41, 60 * ms), (42, 400 * ms), (42, 530 * ms)])  # a count seen before its tap went: not its
    assert tap_latencies(sent[:2], late, first, warmup=0).ms.tolist() == pytest.approx([60.0, 30.0])
    assert tap_latencies(sent, np.empty((0, 2), dtype=np.int64), first, warmup=1).ms.size == 0


def test_a_step_passes_only_when_the_crowd_was_held_every_way():
    assert step_failures(crowd(), ratio=1.05, rate=2.0) == []
    assert step_failures(crowd(), ratio=1.2, rate=2.0) == ["control p99 over 1.1x idle"]
    assert step_failures(crowd(counted=9_990), ratio=1.0, rate=2.0) == ["10 of 10,000 taps sent were not counted"]
    assert step_failures(crowd(taps_per_s=850.0), ratio=1.0, rate=2.0) == ["850 taps/s counted of 1,000 asked"]
    gone = crowd(held=False, connect_s=3.0)
    assert step_failures(gone, ratio=1.0, rate=2.0) == [
        "phones gone before the measurement ended (connecting took 3.0 s of the 2.2 s allowed)"
    ]
    assert step_failures(crowd(restarted=True), ratio=1.0, rate=2.0) == ["the audience server's process restarted"]
    short = crowd(tally=PhoneTally(connected=498, sent=10_000, refused=2, errors=0))
    assert step_failures(short, ratio=1.0, rate=2.0) == ["498/500 connected, 2 refused, 0 errors"]
    assert step_failures(crowd(), ratio=math.nan, rate=2.0) == ["control p99 over 1.1x idle"]


def test_the_phones_held_are_those_of_the_last_step_before_the_first_that_failed():
    assert phones_max([step(500), step(1000), step(1500, p99=1.3), step(2000)]) == 1000
    assert phones_max([step(500, counted=1)]) == 0
    assert phones_max([step(500), step(1000)]) == 1000
    assert phones_max([]) == 0


def test_the_figures_and_their_explanations():
    plan = AudiencePlan(taps=100, crowd=1000, steps=(500, 1000, 1500), rounds=2, messages=2500)
    taps = Latencies(ms=np.linspace(20.0, 120.0, 100), measured=100)
    idle_taps = Latencies(ms=np.linspace(10.0, 110.0, 100), measured=100)
    load = AudienceLoad(
        crowded=control(0.6), idle=control(0.5), crowded_p99=(0.6, 0.6), idle_p99=(0.5, 0.5),
        crowds=(crowd(1000), crowd(1000)), idle_engine_cores=(0.05, 0.05), runs=2, rate=1000.0,
    )  # fmt: skip
    steps = (step(500), step(1000), step(1500, p99=0.7, idle=0.5))
    results = AudienceResults(
        idle_taps=TapRun(idle_taps, None), crowd_taps=TapRun(taps, crowd(1000)), load=load, steps=steps, plan=plan
    )
    figures = json.loads(as_json(audience_figures(results)))
    assert_figures(figures, NAMES)
    assert figures["audience_phones_max"]["value"] == 1000 and figures["audience_phones_max"]["baseline"] == 1000
    assert figures["control_latency_audience_ratio"]["ratio"] == pytest.approx(1.2)
    table = "\n".join(audience_samples(results))
    assert f"audience_tap_to_signal_p99 at most {TAP_LIMIT_MS:g} ms: PASS" in table
    assert f"audience_phones_max at least {PHONES_TARGET:,}: PASS (1,000 phones)" in table
    assert f"control_latency_audience_ratio at most {AUDIENCE_RATIO_LIMIT:g}: MISS (1.20" in table
    assert "1,500 phones: FAILED: control p99 over 1.1x idle; control p99 0.700 ms (1.40x idle)" in table
    assert "  500 phones: passed" in table and "1,000 phones: passed" in table
