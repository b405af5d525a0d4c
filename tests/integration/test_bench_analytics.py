"""The bench's analytics group on its quick plan: both figures are there and sane (no timing targets here; the
figures and their targets are the bench's to print)."""

from __future__ import annotations

import json

from tests.conftest import run_launcher


def test_the_analytics_group_gives_its_cost_ratio_and_disk_bytes_per_visitor():
    done = run_launcher("bench", "--only", "analytics", "--quick", "--json", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert set(figures) == {"analytics_cost_ratio", "analytics_disk_bytes_per_visitor"}
    cost = figures["analytics_cost_ratio"]
    assert cost["unit"] == "ratio" and 0.9 < cost["value"] < 1.5 and cost["baseline"] == 1.0
    disk = figures["analytics_disk_bytes_per_visitor"]
    assert disk["unit"] == "bytes" and 0 < disk["value"] < 10_000 and disk["baseline"] > 0
