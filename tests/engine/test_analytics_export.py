"""Report figures (engine/analytics/summary.py) on hand-made records, and exports (engine/analytics/export.py):
CSV and Parquet after k-anonymity, validated against the data dictionary, with the manifest saying what was
suppressed and whether the data is simulated. Expectations are worked out by hand from the records below."""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engine.analytics.export import (
    COLUMNS,
    SCHEMA_NAME,
    Period,
    export,
    read_totals,
    row_schema,
    schema_text,
    value_text,
)
from engine.analytics.records import HOUR, MEASURES, BinRecord
from engine.analytics.store import DAY, AnalyticsStore, StoredTotals, database_path
from engine.analytics.summary import Bucket, figures, heatmap_grid, quantile, summarize
from engine.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
EX = "canal-lanterns"
T0 = 1_700_000_000 - 1_700_000_000 % DAY  # 2023-11-14, a UTC midnight
D2 = T0 + DAY
FIRST, LAST = "2023-11-14", "2023-11-15"


def rec(start: int, measure: str, key: str, value: float, exhibit: str = EX) -> BinRecord:
    return BinRecord(exhibit, start, measure, key, value)


def hour(start: int, visitors: int, stopped: int, holding: dict[str, int], occupancy: float, peak: int, **keyed):
    """One hour's records; ``keyed`` maps a measure to {key: value}."""
    found = [
        rec(start, "visitors", "cam", visitors),
        rec(start, "stopped", "cam", stopped),
        rec(start, "occupancy_s", "cam", occupancy),
        rec(start, "occupancy_peak", "cam", peak),
        *(rec(start, "holding_s", key, n) for key, n in holding.items()),
    ]
    return found + [rec(start, m, key, v) for m, keys in keyed.items() for key, v in keys.items()]


def sample() -> list[BinRecord]:
    """Two days. Day 1: a big hour (10 h, 8 visitors) and two small ones (11 h, 12 h: 3 visitors together, below
    k = 5: dropped). Day 2: two small hours (9 h, 14 h: 5 visitors together: merged into a day bin) and a big hour
    (15 h, 10 visitors)."""
    return [
        *hour(
            T0 + 10 * HOUR, 8, 6, {"3": 2, "12": 2, "45": 1, "600+": 1}, 1800.0, 3,
            zone_visitors={"plinth": 6, "door": 2}, zone_dwell_s={"plinth": 300.0, "door": 20.0},
            interactions={"plinth.button": 4}, engaged_state={"show:finale": 5, "show:idle": 2},
            engaged_cue={"main:finale": 5}, heatmap={"0,0": 100.0, "1,0": 50.0, "2,1": 3.0},
            heatmap_visitors={"0,0": 6, "1,0": 5, "2,1": 1},
        ),
        *hour(
            T0 + 11 * HOUR, 2, 1, {"5": 1}, 60.0, 1, interactions={"plinth.button": 1}, heatmap={"0,0": 30.0},
            heatmap_visitors={"0,0": 2},
        ),
        *hour(T0 + 12 * HOUR, 1, 1, {"8": 1}, 30.0, 1),
        *hour(D2 + 9 * HOUR, 3, 2, {"4": 1, "7": 1}, 100.0, 2),
        *hour(D2 + 14 * HOUR, 2, 2, {"20": 2}, 90.0, 2, zone_visitors={"plinth": 2}, zone_dwell_s={"plinth": 40.0}),
        *hour(
            D2 + 15 * HOUR, 10, 5, {"2": 5, "9": 3, "30": 2}, 3600.0, 4,
            zone_visitors={"plinth": 5}, zone_dwell_s={"plinth": 500.5},
            heatmap={"0,0": 400.0, "-1,2": 7.0, "3,3": 900.0},  # 3,3: one visitor stood there 15 minutes
            heatmap_visitors={"0,0": 9, "-1,2": 5, "3,3": 1},
        ),
    ]  # fmt: skip


def write_sample(state_dir: Path, *, simulated: bool = False, records: list[BinRecord] | None = None) -> Path:
    """The sample written the way the recorder writes it: into the state folder's database, in two batches."""
    path = database_path(state_dir, simulated)
    store = AnalyticsStore(path, simulated=simulated)
    found = sample() if records is None else records
    store.add(found[: len(found) // 2])
    store.add(found[len(found) // 2 :])
    store.close()
    return path


# --- summary ----------------------------------------------------------------------------------------------------


def test_holding_time_quantiles_are_nearest_rank_buckets_merged_ones_read_as_their_range():
    assert quantile({"3": 2, "12": 2, "45": 1, "600+": 1}, 0.5) == Bucket(12, 13)  # rank 3 of 6
    assert quantile({"3": 2, "12": 2, "45": 1, "600+": 1}, 0.9) == Bucket(600, None)  # rank ceil(5.4) = 6
    assert quantile({"3": 2, "12": 2, "45": 1, "600+": 1}, 0.1) == Bucket(3, 4)  # rank 1
    assert quantile({"10+": 5, "0-9": 5}, 0.5) == Bucket(0, 10)  # unsorted keys, merged buckets
    assert quantile({"10+": 5, "0-9": 5}, 0.9) == Bucket(10, None)
    assert quantile({}, 0.5) is None
    assert [str(Bucket.parse(k)) for k in ("12", "0-9", "600+")] == ["12 s", "0–10 s", "600+ s"]
    with pytest.raises(ValueError):
        quantile({"1": 1}, 0)


def test_figures_of_one_hour_are_exact():
    f = figures([r for r in sample() if r.start == T0 + 10 * HOUR], HOUR)
    assert (f.visitors, f.stopped, f.attraction) == (8, 6, 0.75)
    assert (f.holding_median, f.holding_p90) == (Bucket(12, 13), Bucket(600, None))
    assert (f.occupancy_mean, f.occupancy_peak) == (0.5, 3)
    assert f.zone_visitors == {"plinth": 6, "door": 2}
    assert (f.dwell_per_visitor("plinth"), f.dwell_per_visitor("door"), f.dwell_per_visitor("nowhere")) == (
        50.0,
        10.0,
        None,
    )
    assert f.interactions == {"plinth.button": 4}
    assert f.engaged_state == {"show:finale": 5, "show:idle": 2} and f.engaged_cue == {"main:finale": 5}
    assert figures([], HOUR).attraction is None and figures([], HOUR).occupancy_peak is None


def test_summary_per_day_hour_and_hour_of_day():
    summaries = summarize(sample(), days=2)
    assert list(summaries) == [EX]
    s = summaries[EX]
    assert list(s.per_day) == [T0, D2]
    day1, day2 = s.per_day[T0], s.per_day[D2]
    assert (day1.visitors, day1.stopped, day2.visitors, day2.stopped) == (11, 8, 15, 9)
    assert day1.occupancy_mean == (1800 + 60 + 30) / DAY
    assert (day1.occupancy_peak, day2.occupancy_peak) == (3, 4)
    assert day1.interactions == {"plinth.button": 5}
    assert list(s.per_hour) == [T0 + h * HOUR for h in (10, 11, 12)] + [D2 + h * HOUR for h in (9, 14, 15)]
    assert s.per_hour[D2 + 15 * HOUR].occupancy_mean == 1.0
    assert sorted(s.hour_of_day) == [9, 10, 11, 12, 14, 15]
    assert s.hour_of_day[10].occupancy_mean == 1800 / (2 * HOUR)  # over the period's two days
    assert s.total.visitors == 26 and s.total.seconds == 2 * DAY
    assert s.total.zone_visitors == {"plinth": 13, "door": 2}
    assert s.total.dwell_per_visitor("plinth") == (300 + 40 + 500.5) / 13
    assert s.total.heatmap == {"0,0": 530.0, "1,0": 50.0, "2,1": 3.0, "-1,2": 7.0, "3,3": 900.0}
    assert s.total.heatmap_visitors == {"0,0": 17, "1,0": 5, "2,1": 1, "-1,2": 5, "3,3": 1}


def test_day_bins_count_in_their_day_and_the_total_never_in_an_hour():
    day_bin = [rec(D2, "visitors", "cam", 5), rec(D2, "stopped", "cam", 4), rec(D2, "holding_s", "4-20", 4)]
    s = summarize([rec(D2 + 15 * HOUR, "visitors", "cam", 10)], day_bin, days=1)[EX]
    assert s.per_day[D2].visitors == 15 and s.total.visitors == 15
    assert s.per_hour[D2 + 15 * HOUR].visitors == 10 and D2 not in s.per_hour
    assert s.per_day[D2].holding_median == Bucket(4, 21)
    with pytest.raises(ValueError):
        summarize([], days=0)


def test_heatmap_grid_spans_the_cells_and_keeps_other_apart():
    grid = heatmap_grid({"0,0": 530.0, "1,0": 50.0, "-1,2": 7.0, "other": 3.0})
    assert (grid.column0, grid.row0, grid.other, grid.peak) == (-1, 0, 3.0, 530.0)
    assert grid.cells == [[0.0, 530.0, 50.0], [0.0, 0.0, 0.0], [7.0, 0.0, 0.0]]
    assert heatmap_grid({}).cells == []


# --- export -----------------------------------------------------------------------------------------------------


def read_csv_rows(path: Path) -> list[dict[str, Any]]:
    """CSV rows as a data platform reads them: numbers converted as the data dictionary says."""
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        found: list[dict[str, Any]] = []
        for row in reader:
            number = float(row["value"])
            found.append(
                {
                    **row,
                    "bin_length_s": int(row["bin_length_s"]),
                    "value": int(number) if number.is_integer() else number,
                }
            )
    return found


def validator() -> jsonschema.protocols.Validator:
    schema = row_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_the_data_dictionary_in_docs_is_the_one_exports_write_and_covers_every_measure():
    assert (ROOT / "docs" / SCHEMA_NAME).read_text(encoding="utf-8") == schema_text(), (
        "regenerate: python -c 'from engine.analytics.export import schema_text; print(schema_text(), end=\"\")' "
        "> docs/analytics.schema.json"
    )
    described = {choice["const"] for choice in row_schema()["properties"]["measure"]["oneOf"]}
    assert described == set(MEASURES)
    doc = (ROOT / "docs" / "analytics-data.md").read_text(encoding="utf-8")
    assert all(f"`{measure}`" in doc for measure in MEASURES)


def test_export_writes_suppressed_csv_and_parquet_that_validate(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_sample(tmp_path / "state")
    period = Period.parse(FIRST, LAST)
    totals = read_totals(tmp_path / "state", EX, period, simulated=False)
    out = tmp_path / "out"
    manifest = export(totals, EX, period, out, k=5)

    name = f"{EX}-analytics-{FIRST}-{LAST}"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{name}.csv", f"{name}.parquet", SCHEMA_NAME, "manifest.json"]
    )
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8")) == manifest
    assert json.loads((out / SCHEMA_NAME).read_text(encoding="utf-8")) == row_schema()
    assert manifest["simulated"] is False and manifest["k"] == 5
    assert manifest["suppression"] | {"rule": ""} == {
        "hour_rows": manifest["suppression"]["hour_rows"],
        # day 1: holding 3+, heatmap and heatmap_visitors of 0,0 and 1,0; day 2: visitors, stopped, occupancy_s
        # (its small hours), holding 2 and 4-30, heatmap and heatmap_visitors of 0,0 and -1,2
        "day_rows": 5 + 9,
        "hours_merged_into_days": 2,
        "hours_suppressed": 2,  # day 1's 11 h and 12 h: 3 visitors together
        # Day 1: 10 h's door into other (dropped) for zone_visitors and zone_dwell_s, show:idle into other
        # (dropped); the day's holding 3 (2), 5, 8 (1 each), 12 (2) reach 5 and 45, 600+ join them: `3+`; 2,1 (1
        # visitor) dropped for heatmap_visitors and heatmap. Day 2: plinth (2 visitors in the small hours) for
        # zone_visitors and zone_dwell_s; holding 2 (5) keeps its key, 4, 7, 9 reach 5 and 20, 30 join them:
        # `4-30`; 3,3 (one visitor, 900 visitor-seconds) dropped for heatmap_visitors and heatmap.
        "cells_merged_or_suppressed": (2 + 1 + 6 + 2) + (2 + 5 + 2),
        "rule": "",
    }

    rows = read_csv_rows(out / f"{name}.csv")
    check = validator()
    for row in rows:
        check.validate(row)
    published = {(r["bin_start"], r["bin_length_s"], r["measure"], r["key"]): r["value"] for r in rows}
    ten, eleven = "2023-11-14T10:00:00Z", "2023-11-14T11:00:00Z"
    day1, day2 = "2023-11-14T00:00:00Z", "2023-11-15T00:00:00Z"
    assert published[ten, HOUR, "visitors", "cam"] == 8
    assert published[ten, HOUR, "zone_dwell_s", "plinth"] == 300
    assert (ten, HOUR, "zone_visitors", "door") not in published and (
        ten,
        HOUR,
        "zone_dwell_s",
        "door",
    ) not in published
    # distributions are published per day only, every hour's together
    assert not any(n == HOUR and m in {"holding_s", "heatmap", "heatmap_visitors"} for (_, n, m, _) in published)
    assert {k: v for (t, _, m, k), v in published.items() if t == day1 and m == "holding_s"} == {"3+": 8}
    assert {k: v for (t, _, m, k), v in published.items() if t == day2 and m == "holding_s"} == {"2": 5, "4-30": 9}
    assert published[day1, DAY, "heatmap", "0,0"] == 130 and (day1, DAY, "heatmap", "2,1") not in published
    assert published[day2, DAY, "heatmap", "-1,2"] == 7
    assert (day2, DAY, "heatmap", "3,3") not in published  # one visitor's 15 minutes
    # a small hour publishes its event counters only
    assert {(m, k) for (t, _, m, k) in published if t == eleven} == {
        ("interactions", "plinth.button"),
        ("occupancy_peak", "cam"),
    }
    day2_small = {
        (m, k): v for (t, n, m, k), v in published.items() if t == day2 and m in {"visitors", "stopped", "occupancy_s"}
    }
    assert day2_small == {("visitors", "cam"): 5, ("stopped", "cam"): 4, ("occupancy_s", "cam"): 190}
    assert all(t not in (day1, day2) or n == DAY for (t, n, _, _) in published)  # no hour bin at midnight here
    assert published["2023-11-15T15:00:00Z", HOUR, "zone_dwell_s", "plinth"] == 500.5

    table = pq.read_table(out / f"{name}.parquet")
    assert table.schema.field("bin_start").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("bin_length_s").type == pa.int32()
    assert table.schema.field("value").type == pa.float64()
    assert [table.schema.field(c).type for c in ("exhibit", "measure", "key")] == [pa.string()] * 3
    assert all(not table.schema.field(c).nullable for c in COLUMNS)
    assert table.schema.metadata[b"simulated"] == b"false" and table.schema.metadata[b"k"] == b"5"
    assert table.column_names == list(COLUMNS) and table.num_rows == len(rows)
    for row, expected in zip(table.to_pylist(), rows, strict=True):
        as_json = {**row, "bin_start": row["bin_start"].strftime("%Y-%m-%dT%H:%M:%SZ")}
        as_json["value"] = int(row["value"]) if row["value"].is_integer() else row["value"]
        check.validate(as_json)
        assert as_json == expected
    assert manifest["files"][f"{name}.csv"]["rows"] == len(rows)


def test_a_simulated_database_exports_as_simulated_in_file_names_and_manifest(tmp_path: Path):
    write_sample(tmp_path, simulated=True)
    period = Period.parse(FIRST, FIRST)
    totals = read_totals(tmp_path, EX, period, simulated=True)
    manifest = export(totals, EX, period, tmp_path / "out", k=5, formats=["csv"])
    assert manifest["simulated"] is True and "SIMULATED" in manifest["data"]
    assert list(manifest["files"]) == [f"{EX}-analytics-SIMULATED-{FIRST}-{FIRST}.csv"]
    assert all(
        row["bin_start"].startswith(FIRST) for row in read_csv_rows(tmp_path / "out" / next(iter(manifest["files"])))
    )
    with pytest.raises(UserError, match="missing"):  # the real database was never written, and is not created
        read_totals(tmp_path, EX, period, simulated=False)
    assert not database_path(tmp_path, False).exists()


def test_export_refuses_bad_input_in_one_sentence(tmp_path: Path):
    with pytest.raises(UserError, match="YYYY-MM-DD"):
        Period.parse("14/11/2023", LAST)
    with pytest.raises(UserError, match="before"):
        Period.parse(LAST, FIRST)
    with pytest.raises(UserError, match="--format"):
        export(StoredTotals([], simulated=False), EX, Period.parse(FIRST, LAST), tmp_path, k=5, formats=["xlsx"])
    assert Period.parse(FIRST, LAST).until - Period.parse(FIRST, LAST).since == 2 * DAY
    assert (value_text(3.0), value_text(500.5), value_text(0.1)) == ("3", "500.5", "0.1")


def test_an_empty_period_exports_headers_only(tmp_path: Path):
    manifest = export(StoredTotals([], simulated=False), EX, Period.parse(FIRST, LAST), tmp_path, k=5)
    assert manifest["suppression"]["hour_rows"] == 0
    assert read_csv_rows(tmp_path / f"{EX}-analytics-{FIRST}-{LAST}.csv") == []


def test_the_export_command_end_to_end(tmp_path: Path):
    write_sample(tmp_path / "state")
    done = subprocess.run(
        [sys.executable, str(ROOT / "launcher.py"), "export", EX, "--from", FIRST, "--to", LAST,
         "--state-dir", str(tmp_path / "state"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "manifest.json" in done.stdout
    assert (tmp_path / "out" / f"{EX}-analytics-{FIRST}-{LAST}.parquet").is_file()
    missing = subprocess.run(
        [sys.executable, str(ROOT / "launcher.py"), "export", EX, "--from", FIRST, "--to", LAST,
         "--state-dir", str(tmp_path / "state"), "--out", str(tmp_path / "sim"), "--simulated"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 1 and missing.stderr.startswith("error: no simulated runs' analytics")
    assert len(missing.stderr.strip().splitlines()) == 1


def test_period_dates_are_utc_days():
    period = Period.parse(FIRST, LAST)
    assert dt.datetime.fromtimestamp(period.since, dt.UTC).isoformat() == "2023-11-14T00:00:00+00:00"
    assert period.since == T0 and period.days == 2
