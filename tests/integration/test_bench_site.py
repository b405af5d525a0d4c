"""The show network's figures of `launcher.py bench`: a backup's takeover after the driving node's SIGKILL, a node
SIGKILLed and started again until every device is safe, and the spread of one synced GO's start over four nodes,
each against its baseline (takeover_after itself, a bare process publishing the safe states, bare listeners sleeping
until the start time). Real `launcher.py run` processes on a private Mosquitto. Shape only: timings are never
asserted against their targets."""

from __future__ import annotations

import json
import math

import pytest

from tests.bench.procs import find_mosquitto
from tests.bench.results import as_json
from tests.bench.runner import GROUPS, NEEDS_BROKER
from tests.bench.site import QUICK_SITE, SAFE, SiteResults, run_site, site_figures, site_samples, site_targets, spread
from tests.support.bench_checks import assert_figures

NAMES = {"takeover_ms": "ms", "restart_to_safe_ms": "ms", "sync_cue_skew_ms": "ms"}


def test_the_site_group_runs_before_the_studio_with_a_broker():
    assert GROUPS.index("site") < GROUPS.index("studio") and "site" in NEEDS_BROKER


def test_the_spread_is_from_the_first_start_to_the_last():
    reports = {"n1": {"at": 100.0015}, "n2": {"at": 100.0}, "n3": {"at": 100.004}, "n4": {"at": 100.002}}
    assert spread(reports) == pytest.approx(4.0)


@pytest.mark.timeout(240)  # about 40 s alone on two cores: five node processes at most, started and killed in turn
def test_quick_site_figures_come_from_real_kills_real_restarts_and_real_synced_gos():
    mosquitto = find_mosquitto()
    assert mosquitto is not None, "Mosquitto is needed: apt-get install mosquitto"
    site: SiteResults = run_site(QUICK_SITE, mosquitto)
    figures = json.loads(as_json(site_figures(site)))
    assert_figures(figures, NAMES)
    assert all(math.isfinite(figure[key]) for figure in figures.values() for key in ("value", "baseline", "ratio"))
    # Every kill was followed by a takeover, each at a higher epoch, after a silence (the backup waits for
    # takeover_after from the last heartbeat it heard, one every takeover_after / 6) and within a generous bound.
    assert len(site.takeover_ms) == QUICK_SITE.takeovers
    assert site.takeover_epochs == tuple(range(2, 2 + QUICK_SITE.takeovers))
    after_ms = site.takeover_after * 1000
    assert all(after_ms / 2 < ms < after_ms + 10_000 for ms in site.takeover_ms), site.takeover_ms
    # Every restart brought every device back to its safe state, in normal mode (no crash loop), and took longer
    # than a bare process doing only that.
    assert len(site.restart_ms) == len(site.restart_bare_ms) == QUICK_SITE.restarts
    assert site.restart_modes == ("running",) * QUICK_SITE.restarts
    assert all(0 < ms < 30_000 for ms in site.restart_ms + site.restart_bare_ms)
    assert min(site.restart_ms) > min(site.restart_bare_ms)
    # Every synced GO ran on all four nodes, and both spreads are real spreads (not one clock read four times).
    assert len(site.skew_ms) == len(site.skew_bare_ms) == len(site.late_ms) == QUICK_SITE.cues
    assert site.failed_gos == ()
    assert all(0 < ms < 1000 for ms in site.skew_ms + site.skew_bare_ms)
    assert len(site.offsets_ms) == QUICK_SITE.cues and all(math.isfinite(value) for value in site.offsets_ms)
    table = "\n".join(site_samples(site) + site_targets(site_figures(site), site))
    assert f"takeover_ms at most {site.takeover_after * 1000 + 500:,.0f} ms" in table
    assert "restart_to_safe_ms at most 5,000 ms" in table and "RestartSec=2" in table
    assert "sync_cue_skew_ms at most 5 ms" in table
    assert all(name in table for name in SAFE)
