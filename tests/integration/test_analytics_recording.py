"""Analytics in a real run (issue 17, first part): the flagship with its simulated visitors records hour aggregates
into its own, marked database in the state folder (never the real visitors' one); with `analytics.enabled: false`
nothing is written at all."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

from tests.conftest import ROOT, run_launcher

FLAGSHIP = ROOT / "exhibits" / "canal-lanterns"


def run(exhibit: Path, state: Path) -> None:
    done = run_launcher(
        "run", str(exhibit), "--simulate", "--headless", "--no-render", "--no-console", "--no-reload",
        "--duration", "12", "--embedded-port", "0", "--state-dir", str(state), timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_simulated_run_records_aggregates_in_its_own_database(tmp_path: Path):
    state = tmp_path / "state"
    run(FLAGSHIP, state)
    assert not (state / "analytics.sqlite").exists()  # never mixed with real visitors
    database = state / "analytics-simulated.sqlite"
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        totals = dict(db.execute("SELECT measure, SUM(value) FROM records GROUP BY measure").fetchall())
        columns = {row[1] for row in db.execute("PRAGMA table_info(records)")}
    assert totals.get("visitors", 0) >= 1 and totals.get("occupancy_s", 0) > 1, totals
    assert columns <= {"exhibit", "start", "measure", "key", "value", "written_at", "id", "rowid"}, columns


def test_analytics_disabled_leaves_nothing_on_disk(tmp_path: Path):
    folder = tmp_path / "canal-lanterns"
    shutil.copytree(FLAGSHIP, folder)
    text = (folder / "exhibit.yaml").read_text(encoding="utf-8")
    off, found = re.subn(r"(?m)^analytics:.*$", "analytics:\n  enabled: false", text)  # the flagship's own section
    assert found == 1, "the flagship has one analytics section"
    (folder / "exhibit.yaml").write_text(off, encoding="utf-8")
    state = tmp_path / "state"
    run(folder / "exhibit.yaml", state)
    assert not list(state.glob("analytics*")), sorted(p.name for p in state.iterdir())


async def test_the_last_days_figures_are_left_retained_on_mqtt_for_site_dashboards(mosquitto, tmp_path: Path):
    import asyncio
    import json

    import aiomqtt

    state = tmp_path / "state"
    done = await asyncio.to_thread(
        run_launcher,
        "run", str(FLAGSHIP), "--simulate", "--headless", "--no-render", "--no-console", "--no-reload",
        "--duration", "12", "--broker", mosquitto.url, "--state-dir", str(state), timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="dashboard") as client:
        await client.subscribe("exhibit/canal-lanterns/analytics/today", qos=1)
        async with asyncio.timeout(5):
            message = await anext(aiter(client.messages))
    summary = json.loads(bytes(message.payload))
    assert message.retain and summary["exhibit"] == "canal-lanterns" and summary["simulated"] is True
    assert summary["k"] == 5 and summary["to"] - summary["from"] <= 24 * 3600
    if summary["suppressed"]:  # fewer than k visitors in a 12 s run: nothing derived from single visitors is sent
        assert "visitors" not in summary and "attraction" not in summary and "holding_median_s" not in summary
    else:
        assert summary["visitors"] >= 5 and 0 <= summary["attraction"] <= 1
