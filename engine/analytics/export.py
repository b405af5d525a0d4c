"""Open-format exports of an exhibit's analytics (issue 17, item 4): CSV and Parquet, after k-anonymity.

One row per published figure: ``exhibit, bin_start, bin_length_s, measure, key, value``. ``bin_start`` is the
bin's start in ISO 8601 UTC; ``bin_length_s`` is 3600 for an hour bin and the day's length (86 400; 82 800 or
90 000 across a clock change) for a *day bin* (the small hours of one of the exhibit's local days, merged by
:func:`~engine.analytics.privacy.suppress`; the manifest names the time zone). :func:`row_schema` is the data
dictionary (a JSON Schema of one row; ``docs/analytics.schema.json`` is it, written out); it goes into the output
folder beside the data, with ``manifest.json`` (the period, ``k``, what was suppressed, simulated or real, the
files' hashes). A simulated run's export says so in its file names and manifest. Local files only, no network.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from engine.analytics.calendar import UTC_CALENDAR, Calendar
from engine.analytics.privacy import Suppression, suppress
from engine.analytics.records import HOUR, MEASURES, BinRecord
from engine.analytics.store import AnalyticsStore, AnalyticsStoreError, StoredTotals, database_path
from engine.errors import UserError

COLUMNS: Final = ("exhibit", "bin_start", "bin_length_s", "measure", "key", "value")
FORMATS: Final = ("csv", "parquet")
SCHEMA_NAME: Final = "analytics.schema.json"
MANIFEST_NAME: Final = "manifest.json"
EXPORT_VERSION: Final = 1
DAY_LENGTHS: Final = (82_800, 86_400, 90_000)
"""A local day's seconds: 23, 24 or 25 hours."""
COUNTS: Final = frozenset(MEASURES) - {"zone_dwell_s", "occupancy_s", "heatmap"}
"""Measures whose values are whole numbers (visitors or events); the others are seconds."""
_KEY_PATTERNS: Final = {
    "holding_s": r"^(\d+|\d+-\d+|\d+\+)$",
    "heatmap": r"^(-?\d+,-?\d+|other)$",
    "heatmap_visitors": r"^(-?\d+,-?\d+|other)$",
    "engaged_state": r"^([^:]+:.+|other)$",
    "engaged_cue": r"^([^:]+:.+|other)$",
}


@dataclass(frozen=True, slots=True)
class Row:
    exhibit: str
    bin_start: int
    bin_length_s: int
    measure: str
    key: str
    value: float

    def iso_start(self) -> str:
        return iso(self.bin_start)


@dataclass(frozen=True, slots=True)
class Period:
    """The exhibit's local days ``first`` to ``last`` inclusive: bins starting in [``since``, ``until``)."""

    first: dt.date
    last: dt.date
    calendar: Calendar = UTC_CALENDAR

    @classmethod
    def parse(cls, first: str, last: str, calendar: Calendar = UTC_CALENDAR) -> Period:
        try:
            period = cls(dt.date.fromisoformat(first), dt.date.fromisoformat(last), calendar)
        except ValueError as exc:
            raise UserError(f"dates are written YYYY-MM-DD ({exc}) / 日期格式为 YYYY-MM-DD") from None
        if period.last < period.first:
            raise UserError(f"--to {last} is before --from {first} / 结束日期早于开始日期")
        return period

    @property
    def since(self) -> int:
        return self.calendar.midnight(self.first)

    @property
    def until(self) -> int:
        return self.calendar.next_day(self.calendar.midnight(self.last))

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def iso(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_totals(state_dir: Path, exhibit: str, period: Period, *, simulated: bool) -> StoredTotals:
    """The stored totals of ``exhibit`` over ``period``; a missing database is a :class:`UserError`, never
    created (reading must not leave a file behind)."""
    path = database_path(state_dir, simulated)
    if not path.is_file():
        kind = "simulated runs' " if simulated else ""
        raise UserError(f"no {kind}analytics recorded in {state_dir} ({path.name} is missing) / 没有访客统计数据")
    try:
        store = AnalyticsStore(path, simulated=simulated)
    except AnalyticsStoreError as exc:
        raise UserError(str(exc)) from None
    try:
        return store.totals(exhibit, period.since, period.until)
    finally:
        store.close()


def rows(published: Suppression, calendar: Calendar = UTC_CALENDAR) -> list[Row]:
    """The published records as rows, hour bins and day bins (as long as their local day) together, in a stable
    order."""
    found = [_row(r, HOUR) for r in published.kept] + [_row(r, calendar.day_length(r.start)) for r in published.days]
    return sorted(found, key=lambda r: (r.exhibit, r.bin_start, r.bin_length_s, r.measure, r.key))


def _row(record: BinRecord, length: int) -> Row:
    return Row(record.exhibit, record.start, length, record.measure, record.key, float(record.value))


def value_text(value: float) -> str:
    """``3`` for whole numbers, else the shortest text that reads back as the same float."""
    return str(int(value)) if value.is_integer() else repr(value)


def row_schema() -> dict[str, Any]:
    """The data dictionary: a JSON Schema (2020-12) of one exported row, numbers as numbers (CSV readers convert
    ``bin_length_s`` and ``value``)."""
    measures = {name: {"const": name, "description": text.replace("`", "")} for name, text in sorted(MEASURES.items())}
    rules: list[dict[str, Any]] = [
        {
            "if": {"properties": {"measure": {"enum": sorted(COUNTS)}}},
            "then": {"properties": {"value": {"type": "integer"}}},
        }
    ]
    rules += [
        {"if": {"properties": {"measure": {"const": m}}}, "then": {"properties": {"key": {"pattern": p}}}}
        for m, p in sorted(_KEY_PATTERNS.items())
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:exhibit-controller:analytics-export:1",
        "title": "Exhibit analytics export row / 展项访客统计导出行",
        "description": "One aggregate figure of one exhibit over one bin (an hour, or a local day's small hours "
        "merged by k-anonymity; the manifest's time_zone says whose days). Never a visitor: every figure counts at "
        "least k visitors or is an event counter. See docs/analytics-data.md.",
        "type": "object",
        "additionalProperties": False,
        "required": list(COLUMNS),
        "properties": {
            "exhibit": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$", "description": "The exhibit's id."},
            "bin_start": {
                "type": "string",
                "format": "date-time",
                "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:00:00Z$",
                "description": "Start of the bin, ISO 8601 UTC, on the hour (a day bin starts at the first hour of "
                "the local day: its midnight in the manifest's time_zone).",
            },
            "bin_length_s": {
                "type": "integer",
                "enum": [HOUR, *DAY_LENGTHS],
                "description": "3600: an hour bin. Otherwise a day bin, as long as its local day (86400; 82800 or "
                "90000 across a daylight-saving change) holding the per-visitor measures of that day's hours that "
                "had fewer than k visitors each (not the whole day).",
            },
            "measure": {"type": "string", "oneOf": list(measures.values()), "description": "What is counted."},
            "key": {
                "type": "string",
                "minLength": 1,
                "description": "What the value is of (pose sensor, zone, bucket, cell...: see the measure); `other` "
                "sums keys too small to publish on their own.",
            },
            "value": {"type": "number", "minimum": 0, "description": "Visitors, events or seconds (see measure)."},
        },
        "allOf": rules,
    }


def schema_text() -> str:
    return json.dumps(row_schema(), indent=2, ensure_ascii=False) + "\n"


def write_csv(path: Path, found: Sequence[Row]) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in found:
            writer.writerow((r.exhibit, r.iso_start(), r.bin_length_s, r.measure, r.key, value_text(r.value)))


def parquet_schema() -> Any:
    """The Parquet file's Arrow schema: ``bin_start`` a UTC timestamp in milliseconds (Parquet has no seconds
    unit), ``bin_length_s`` int32, ``value`` float64, the others strings; each field carries its description."""
    import pyarrow as pa  # only exports need it

    described = row_schema()["properties"]
    types = {
        "exhibit": pa.string(),
        "bin_start": pa.timestamp("ms", tz="UTC"),
        "bin_length_s": pa.int32(),
        "measure": pa.string(),
        "key": pa.string(),
        "value": pa.float64(),
    }
    return pa.schema(
        [
            pa.field(name, kind, nullable=False, metadata={"description": described[name]["description"]})
            for name, kind in types.items()
        ]
    )


def write_parquet(path: Path, found: Sequence[Row], metadata: dict[str, str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema().with_metadata(metadata)
    columns = {
        "exhibit": [r.exhibit for r in found],
        "bin_start": [dt.datetime.fromtimestamp(r.bin_start, dt.UTC) for r in found],
        "bin_length_s": [r.bin_length_s for r in found],
        "measure": [r.measure for r in found],
        "key": [r.key for r in found],
        "value": [r.value for r in found],
    }
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), path)


def base_name(exhibit: str, period: Period, simulated: bool) -> str:
    kind = "-SIMULATED" if simulated else ""
    return f"{exhibit}-analytics{kind}-{period.first.isoformat()}-{period.last.isoformat()}"


def export(
    totals: StoredTotals,
    exhibit: str,
    period: Period,
    out: Path,
    *,
    k: int,
    formats: Sequence[str] = FORMATS,
) -> dict[str, Any]:
    """Write ``totals`` (after k-anonymity) to ``out`` in ``formats``, with the data dictionary and the manifest;
    returns the manifest."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise UserError(f"--format takes {', '.join(FORMATS)} (not {', '.join(unknown) or 'nothing'})")
    published = suppress(totals, k, period.calendar)
    found = rows(published, period.calendar)
    out.mkdir(parents=True, exist_ok=True)
    name = base_name(exhibit, period, totals.simulated)
    metadata = {"exhibit": exhibit, "k": str(k), "simulated": "true" if totals.simulated else "false"}
    files: dict[str, dict[str, Any]] = {}
    for kind in dict.fromkeys(formats):
        path = out / f"{name}.{kind}"
        if kind == "csv":
            write_csv(path, found)
        else:
            write_parquet(path, found, metadata)
        files[path.name] = {"format": kind, "rows": len(found), "sha256": _sha256(path)}
    (out / SCHEMA_NAME).write_text(schema_text(), encoding="utf-8")
    manifest = {
        "export_version": EXPORT_VERSION,
        "exhibit": exhibit,
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "time_zone": period.calendar.zone,
        "simulated": totals.simulated,
        "data": "SIMULATED visitors (a --simulate run), not real ones" if totals.simulated else "real visitors",
        "k": k,
        "suppression": {
            "hour_rows": sum(1 for r in found if r.bin_length_s == HOUR),
            "day_rows": sum(1 for r in found if r.bin_length_s != HOUR),
            "hours_merged_into_days": published.merged_bins,
            "hours_suppressed": published.suppressed_bins,
            "cells_merged_or_suppressed": published.suppressed_cells,
            "rule": "docs/analytics-data.md, section Suppression (k-anonymity)",
        },
        "schema": SCHEMA_NAME,
        "columns": list(COLUMNS),
        "files": files,
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
