"""The soak figures of `launcher.py bench`: how fast the flagship's render process and its controller grow in
memory while it runs as a user runs it, each against a floor running alongside (a bare Panda3D loop on the same
scene; a minimal exhibit's controller). Shape only: neither timings nor the growth itself are asserted, only
that every process was found and sampled and the figures are well formed."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import pytest

from tests.bench import runner
from tests.bench.procs import find_mosquitto
from tests.bench.results import (
    ProcessMemory,
    RssTrace,
    SoakResults,
    as_json,
    as_table,
    growth_figure,
    soak_figures,
    soak_samples,
    soak_targets,
)
from tests.bench.soak import FULL_SOAK, QUICK_SOAK, SoakPlan, rss_mib, run_soak

NAMES = {"render_rss_growth_mib_per_hour": "MiB/h", "controller_rss_growth_mib_per_hour": "MiB/h"}


def assert_growth_figures(figures: dict[str, Any]) -> None:
    """As ``bench_checks.assert_figures``, for growths: any finite value and baseline (memory may shrink), and a
    ratio only where the baseline grows (null otherwise)."""
    assert set(figures) == set(NAMES)
    for name, unit in NAMES.items():
        figure = figures[name]
        assert set(figure) == {"value", "unit", "baseline", "ratio"}
        assert figure["unit"] == unit
        assert math.isfinite(figure["value"]) and math.isfinite(figure["baseline"])
        if figure["baseline"] > 1.0:
            assert abs(figure["ratio"] - figure["value"] / figure["baseline"]) < 1e-9
        else:
            assert figure["ratio"] is None


def gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while rss_mib(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def trace(pid: int, seconds: np.ndarray, mib: np.ndarray) -> RssTrace:
    return RssTrace(pid, np.asarray(seconds, dtype=np.float64), np.asarray(mib, dtype=np.float64))


def test_growth_is_the_slope_after_the_warmup_and_a_restart_keeps_the_longest_pid():
    seconds = np.arange(0.0, 121.0, 2.0)
    # 50 MiB of start-up in the first 20 s, then 36 MiB/h (0.01 MiB/s).
    mib = np.where(seconds < 20, 200 + 2.5 * seconds, 250 + 0.01 * (seconds - 20))
    first = trace(101, seconds, mib)
    assert first.growth(warmup_s=30.0) == pytest.approx(36.0)
    assert first.fitted(warmup_s=30.0) == len(seconds[seconds >= 30])
    assert first.growth(warmup_s=0.0) > 36.0  # the start-up would count without the warm-up
    later = trace(102, np.arange(130.0, 151.0, 2.0), np.full(11, 300.0))
    memory = ProcessMemory(traces=(first, later), missed=2)
    assert memory.restarts == 1 and memory.samples == len(seconds) + 11
    assert memory.longest is first and memory.growth(30.0) == pytest.approx(36.0)
    assert math.isnan(trace(103, np.array([0.0, 40.0]), np.array([1.0, 2.0])).growth(30.0))  # one point left


def test_plans_warm_up_a_fifth_of_the_run_at_least_30_s():
    assert FULL_SOAK.seconds == 600 and FULL_SOAK.warmup_s == 120
    assert QUICK_SOAK.seconds == 90 and QUICK_SOAK.warmup_s == 30
    assert FULL_SOAK.lasting(3).seconds == 180 and FULL_SOAK.lasting(3).warmup_s == 36
    assert SoakPlan(seconds=40.0, interval_s=2.0).warmup_s == 20  # a very short run keeps half its samples
    with pytest.raises(ValueError):
        FULL_SOAK.lasting(0)


def test_a_ratio_only_against_a_baseline_that_really_grows():
    flat, growing = growth_figure(3.0, 0.4), growth_figure(3.0, 2.0)
    assert flat["ratio"] is None and growing["ratio"] == pytest.approx(1.5)
    results = {"render_rss_growth_mib_per_hour": flat, "controller_rss_growth_mib_per_hour": growing}
    assert_growth_figures(json.loads(as_json(results)))
    row = next(line for line in as_table(results, None, None).splitlines() if line.startswith("render_rss"))
    assert row.split()[1:] == ["3.000", "0.400", "-", "MiB/h"]


def test_the_runner_names_its_groups_and_refuses_others(capsys):
    assert runner.GROUPS[-1] == "soak"  # the soak goes last in a full run
    assert set(runner.GROUPS) >= {"osc", "inputs", "logic", "devices", "render", "pose"}
    assert runner.main(only=frozenset({"soak", "nonsense"})) == 2
    assert runner.main(only=frozenset({"soak"}), soak_minutes=0) == 2
    err = capsys.readouterr().err
    assert "nonsense" in err and "osc, console, inputs" in err


@pytest.mark.timeout(300)
def test_a_short_soak_samples_every_process_and_gives_both_growths(monkeypatch, capsys):
    assert find_mosquitto() is not None, "Mosquitto is needed: apt-get install mosquitto"
    ran: list[tuple[SoakPlan, SoakResults]] = []

    def kept(plan: SoakPlan, mosquitto: str) -> SoakResults:
        result = run_soak(plan, mosquitto)
        ran.append((plan, result))
        return result

    monkeypatch.setattr(runner, "run_soak", kept)
    assert runner.main(json_output=True, quick=True, soak_minutes=1.0, only=frozenset({"soak"})) == 0
    figures = json.loads(capsys.readouterr().out)
    assert_growth_figures(figures)  # only the soak's: no other group ran
    [(plan, soak)] = ran
    assert plan.seconds == 60 and plan.interval_s == QUICK_SOAK.interval_s
    processes = (soak.render, soak.render_bare, soak.controller, soak.controller_bare)
    for memory in processes:
        assert memory.longest.samples > 3 and memory.longest.fitted(soak.warmup_s) > 3
        # A Python process with its imports: tens of MiB at least. The first sample may catch a process
        # (the render process) in its first milliseconds, before its imports; the fit starts after the warm-up.
        assert np.all(memory.longest.mib[1:] > 10)
    pids = {memory.longest.pid for memory in processes}
    assert len(pids) == 4  # the render process is its own, not its controller's
    assert gone(soak.render.longest.pid, within=10.0)  # stopped with its controller: nothing left running
    assert soak.size == (1280, 720) and soak.bare_fps > 0
    table = "\n".join(soak_samples(soak) + soak_targets(soak_figures(soak), soak))
    assert "at most 5 MiB/h each over a 10-minute run" in table
    assert "(start -> after the warm-up -> end)" in table
