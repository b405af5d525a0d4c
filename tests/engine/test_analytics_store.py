"""The analytics store (engine/analytics/store.py) on real SQLite files, and k-anonymity (privacy.py beside it)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from engine.analytics.privacy import DAY, Suppression, suppress
from engine.analytics.records import HOUR, BinRecord
from engine.analytics.store import (
    SCHEMA_VERSION,
    AnalyticsStore,
    AnalyticsStoreError,
    AnalyticsWriter,
    StoredTotals,
    database_path,
    merge_totals,
)

T0 = 1_700_000_000 - 1_700_000_000 % DAY  # a UTC midnight
H = HOUR


def rec(start: int, measure: str, key: str, value: float, exhibit: str = "canal") -> BinRecord:
    return BinRecord(exhibit, start, measure, key, value)


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def test_records_round_trip_summed_per_bin_and_key_with_maxima_kept_as_maxima(tmp_path: Path):
    store = AnalyticsStore(tmp_path / "a.sqlite")
    store.add([rec(T0, "visitors", "pose", 3), rec(T0, "occupancy_peak", "pose", 2), rec(T0, "heatmap", "1,2", 4.5)])
    store.add([rec(T0, "visitors", "pose", 4), rec(T0, "occupancy_peak", "pose", 5), rec(T0, "heatmap", "1,2", 0.5)])
    store.add([rec(T0, "occupancy_peak", "pose", 1), rec(T0 + H, "visitors", "pose", 1)])
    store.add([rec(T0, "visitors", "pose", 100, exhibit="other-exhibit")])

    totals = store.totals("canal", T0, T0 + 2 * H)
    assert list(totals) == [
        rec(T0, "heatmap", "1,2", 5.0),
        rec(T0, "occupancy_peak", "pose", 5.0),
        rec(T0, "visitors", "pose", 7.0),
        rec(T0 + H, "visitors", "pose", 1.0),
    ]
    assert totals.simulated is False
    assert store.totals("canal", T0, T0 + H, measure="visitors") == [rec(T0, "visitors", "pose", 7.0)]
    assert store.totals("canal", T0 + H, T0 + 2 * H) == [rec(T0 + H, "visitors", "pose", 1.0)]  # until excluded
    assert store.totals("canal", T0 + 2 * H, T0 + 9 * H) == []
    store.close()

    reopened = AnalyticsStore(tmp_path / "a.sqlite")  # what was committed is there after a restart
    assert reopened.totals("canal", T0, T0 + H, measure="occupancy_peak") == [rec(T0, "occupancy_peak", "pose", 5.0)]


def test_a_batch_is_one_transaction_and_records_are_append_only(tmp_path: Path):
    store = AnalyticsStore(tmp_path / "a.sqlite", clock=lambda: 1234.5)
    store.add([rec(T0, "visitors", "pose", 1)])
    with sqlite3.connect(tmp_path / "a.sqlite") as db:
        assert db.execute("SELECT exhibit, start, measure, key, value, written_at FROM records").fetchall() == [
            ("canal", T0, "visitors", "pose", 1.0, 1234.5)
        ]
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE records SET value = 2")
        indexes = {row[1] for row in db.execute("PRAGMA index_list(records)")}
        assert "records_bin" in indexes
        assert [row[2] for row in db.execute("PRAGMA index_info(records_bin)")] == ["exhibit", "start"]


def test_the_database_runs_in_wal_mode_with_full_sync(tmp_path: Path):
    path = tmp_path / "a.sqlite"
    AnalyticsStore(path).add([rec(T0, "visitors", "pose", 1)])
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent: any connection sees it
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    store = AnalyticsStore(path)
    assert store._writer().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_the_schema_version_is_recorded_and_a_newer_one_refused(tmp_path: Path):
    path = tmp_path / "a.sqlite"
    store = AnalyticsStore(path)
    assert store.schema_version() == SCHEMA_VERSION == 1
    AnalyticsStore(path)  # opening again adds no second row
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
        db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(AnalyticsStoreError, match="newer"):
        AnalyticsStore(path)


def test_a_simulated_run_has_its_own_marked_database_never_mixed_with_real_visitors(tmp_path: Path):
    real_path, sim_path = database_path(tmp_path, simulated=False), database_path(tmp_path, simulated=True)
    assert real_path == tmp_path / "analytics.sqlite"
    assert sim_path == tmp_path / "analytics-simulated.sqlite"
    real, sim = AnalyticsStore(real_path), AnalyticsStore(sim_path, simulated=True)
    real.add([rec(T0, "visitors", "pose", 2)])
    sim.add([rec(T0, "visitors", "pose", 40)])

    assert real.totals("canal", T0, T0 + H) == [rec(T0, "visitors", "pose", 2.0)]
    simulated = sim.totals("canal", T0, T0 + H)
    assert simulated == [rec(T0, "visitors", "pose", 40.0)]
    assert isinstance(simulated, StoredTotals) and simulated.simulated is True
    with sqlite3.connect(sim_path) as db:
        assert db.execute("SELECT value FROM meta WHERE name = 'simulated'").fetchone() == ("1",)
    with sqlite3.connect(real_path) as db:
        assert db.execute("SELECT value FROM meta WHERE name = 'simulated'").fetchone() == ("0",)

    with pytest.raises(AnalyticsStoreError, match="simulated run"):
        AnalyticsStore(sim_path)  # a real run never writes into the simulated database
    with pytest.raises(AnalyticsStoreError, match="real visitors"):
        AnalyticsStore(real_path, simulated=True)
    with pytest.raises(AnalyticsStoreError, match="mix"):
        merge_totals([real.totals("canal", T0, T0 + H), simulated])
    both = merge_totals([simulated, sim.totals("canal", T0, T0 + H)])
    assert both.simulated is True and len(both) == 2
    assert merge_totals([real.totals("canal", T0, T0 + H)]).simulated is False


def test_retention_removes_the_old_rows_on_a_fixed_now_and_gives_the_space_back(tmp_path: Path):
    path = tmp_path / "a.sqlite"
    store = AnalyticsStore(path)
    now = T0 + 400 * DAY + 12 * H
    old = [rec(T0 - d * DAY, "heatmap", f"{c},{c}", 1.0) for d in range(1, 3) for c in range(2000)]
    store.add(old)
    store.add([rec(T0 + 12 * H - H, "visitors", "pose", 1)])  # 400 days and one hour before now: too old
    store.add([rec(T0 + 12 * H, "visitors", "pose", 2)])  # exactly 400 days before now: kept
    store.add([rec(now - H, "visitors", "pose", 3)])
    store._writer().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = disk_bytes(path)

    assert store.apply_retention(now, days=400) == len(old) + 1
    assert store.totals("canal", 0, now + DAY) == [
        rec(T0 + 12 * H, "visitors", "pose", 2.0),
        rec(now - H, "visitors", "pose", 3.0),
    ]
    assert disk_bytes(path) < before / 2
    assert store.apply_retention(now, days=400) == 0
    assert store.apply_retention(now, days=0) == 2


def test_the_writer_never_blocks_the_caller_even_while_the_database_is_held(tmp_path: Path):
    path = tmp_path / "a.sqlite"
    writer = AnalyticsWriter(AnalyticsStore(path))
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM records").fetchall()  # a long read transaction holds a snapshot
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # and another connection holds the write lock

    started = time.perf_counter()
    for hour in range(50):
        writer.submit([rec(T0 + hour * H, "visitors", "pose", 1), rec(T0 + hour * H, "stopped", "pose", 1)])
    assert time.perf_counter() - started < 0.5  # waiting for the lock would take BUSY_TIMEOUT_S (30 s)
    assert writer.flush(timeout=0.3) is False  # the writer thread is the one waiting for the lock

    holder.execute("ROLLBACK")
    assert writer.flush(timeout=10) is True
    assert len(writer.store.totals("canal", T0, T0 + 50 * H, measure="visitors")) == 50
    assert reader.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 0  # its snapshot, undisturbed
    reader.execute("COMMIT")
    writer.close()
    assert writer.failed == 0
    with pytest.raises(RuntimeError):
        writer.submit([rec(T0, "visitors", "pose", 1)])


def test_the_writer_runs_retention_behind_the_queued_batches_and_close_drains_the_queue(tmp_path: Path):
    path = tmp_path / "a.sqlite"
    writer = AnalyticsWriter(AnalyticsStore(path))
    writer.submit([rec(T0, "visitors", "pose", 1)])
    writer.submit([rec(T0 + 10 * DAY, "visitors", "pose", 1)])
    writer.retain(T0 + 10 * DAY, days=5)
    submitter = threading.Thread(target=writer.submit, args=([rec(T0 + 11 * DAY, "stopped", "pose", 1)],))
    submitter.start()  # another thread may submit too
    submitter.join()
    writer.close()
    assert writer.deleted == 1
    assert AnalyticsStore(path).totals("canal", 0, T0 + 20 * DAY) == [
        rec(T0 + 10 * DAY, "visitors", "pose", 1.0),
        rec(T0 + 11 * DAY, "stopped", "pose", 1.0),
    ]


def test_an_hour_with_fewer_than_k_visitors_is_merged_into_its_day_or_dropped():
    day2 = T0 + DAY
    records = [
        # 10:00, 9 visitors (in two flushes): published per hour; its small cells merged
        rec(T0 + 10 * H, "visitors", "pose", 4),
        rec(T0 + 10 * H, "visitors", "pose", 5),
        rec(T0 + 10 * H, "stopped", "pose", 8),
        rec(T0 + 10 * H, "holding_s", "2", 1),
        rec(T0 + 10 * H, "holding_s", "3", 5),
        rec(T0 + 10 * H, "holding_s", "7", 2),
        rec(T0 + 10 * H, "holding_s", "9", 3),
        rec(T0 + 10 * H, "holding_s", "600+", 1),
        rec(T0 + 10 * H, "zone_visitors", "bridge", 6),
        rec(T0 + 10 * H, "zone_visitors", "alcove", 1),
        rec(T0 + 10 * H, "zone_visitors", "door", 4),
        rec(T0 + 10 * H, "zone_dwell_s", "bridge", 60),
        rec(T0 + 10 * H, "zone_dwell_s", "alcove", 30),
        rec(T0 + 10 * H, "zone_dwell_s", "door", 10),
        rec(T0 + 10 * H, "engaged_cue", "main:finale", 2),
        rec(T0 + 10 * H, "heatmap", "1,1", 50),
        rec(T0 + 10 * H, "heatmap", "0,0", 2),
        rec(T0 + 10 * H, "heatmap", "0,1", 2),
        rec(T0 + 10 * H, "heatmap", "2,2", 500),  # many seconds, but one visitor: it would single them out
        rec(T0 + 10 * H, "heatmap_visitors", "1,1", 6),
        rec(T0 + 10 * H, "heatmap_visitors", "0,0", 1),
        rec(T0 + 10 * H, "heatmap_visitors", "0,1", 1),
        rec(T0 + 10 * H, "heatmap_visitors", "2,2", 1),
        rec(T0 + 10 * H, "occupancy_peak", "pose", 3),
        rec(T0 + 10 * H, "occupancy_peak", "pose", 4),
        # 11:00 and 12:00, 2 + 3 visitors: together they reach k, in a day bin
        rec(T0 + 11 * H, "visitors", "pose", 2),
        rec(T0 + 11 * H, "holding_s", "4", 2),
        rec(T0 + 11 * H, "interactions", "raise_hand", 7),
        rec(T0 + 11 * H, "occupancy_s", "pose", 40),
        rec(T0 + 12 * H, "visitors", "pose", 3),
        rec(T0 + 12 * H, "holding_s", "5", 3),
        rec(T0 + 12 * H, "occupancy_s", "pose", 90),
        # the next day, one visitor at 09:00 and none at 10:00: dropped
        rec(day2 + 9 * H, "visitors", "pose", 1),
        rec(day2 + 9 * H, "stopped", "pose", 1),
        rec(day2 + 9 * H, "holding_s", "42", 1),
        rec(day2 + 9 * H, "occupancy_peak", "pose", 1),
        rec(day2 + 10 * H, "occupancy_s", "pose", 12),
    ]
    result = suppress(records, k=5)
    assert result == Suppression(
        kept=[
            rec(T0 + 10 * H, "occupancy_peak", "pose", 4),
            rec(T0 + 10 * H, "stopped", "pose", 8),
            rec(T0 + 10 * H, "visitors", "pose", 9),
            rec(T0 + 10 * H, "zone_dwell_s", "bridge", 60),
            rec(T0 + 10 * H, "zone_dwell_s", "other", 40),
            rec(T0 + 10 * H, "zone_visitors", "bridge", 6),
            rec(T0 + 10 * H, "zone_visitors", "other", 5),
            rec(T0 + 11 * H, "interactions", "raise_hand", 7),
            rec(day2 + 9 * H, "occupancy_peak", "pose", 1),
        ],
        days=[
            # the day's distributions, every hour's together (10:00's with the small hours')
            rec(T0, "heatmap", "1,1", 50),
            rec(T0, "heatmap_visitors", "1,1", 6),
            rec(T0, "holding_s", "2-3", 6),
            rec(T0, "holding_s", "4-5", 5),
            rec(T0, "holding_s", "7+", 6),  # 7 and 9 reach k, the short tail (600+) joins them
            # the small hours 11:00 and 12:00
            rec(T0, "occupancy_s", "pose", 130),
            rec(T0, "visitors", "pose", 5),
        ],
        suppressed_bins=2,
        merged_bins=2,
        # 10:00: zones alcove, door (and their dwell); the cue. The day bin: holding 2, 3, 4, 5, 7, 9, 600+; cells
        # 0,0, 0,1 and 2,2 (their visitors and their seconds). Day 2's day bin: its one holding bucket, 42.
        suppressed_cells=2 + 2 + 1 + 7 + 3 + 3 + 1,
    )


def test_suppression_with_k_one_changes_nothing_but_summing_and_a_small_histogram_is_dropped():
    records = [
        rec(T0, "visitors", "pose", 1),
        rec(T0, "holding_s", "3", 1),
        rec(T0, "heatmap", "0,0", 1.5),
        rec(T0, "heatmap_visitors", "0,0", 1),
    ]
    distributions = {"holding_s", "heatmap", "heatmap_visitors"}  # published per day: T0 is a midnight
    assert suppress(records, k=1) == Suppression(
        kept=[r for r in records if r.measure not in distributions],
        days=sorted((r for r in records if r.measure in distributions), key=lambda r: r.measure),
    )
    one_stop = [rec(T0, "visitors", "pose", 6), rec(T0, "stopped", "pose", 1), rec(T0, "holding_s", "3", 1)]
    assert suppress(one_stop, k=5) == Suppression(
        kept=[rec(T0, "stopped", "pose", 1), rec(T0, "visitors", "pose", 6)], suppressed_cells=1
    )
    with pytest.raises(ValueError):
        suppress(records, k=0)


def test_a_closed_hour_written_minute_by_minute_is_compacted_to_one_row_per_key_totals_unchanged(tmp_path: Path):
    store = AnalyticsStore(database_path(tmp_path, simulated=False))
    first, second = 100 * HOUR, 101 * HOUR
    for minute in range(60):
        store.add([rec(first, "occupancy_s", "body", 10.0), rec(first, "occupancy_peak", "body", minute % 7)])
    store.add([rec(second, "occupancy_s", "body", 5.0), rec(second, "occupancy_s", "body", 5.0)])
    before = store.totals("canal", 0, 200 * HOUR)

    def rows() -> int:
        with sqlite3.connect(store.path) as db:
            return int(db.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    assert rows() == 122
    assert store.compact(before=second) == 118  # the open hour is left as it is
    assert rows() == 4
    assert store.totals("canal", 0, 200 * HOUR) == before
    assert [r.value for r in before if r.start == first] == [6.0, 600.0]  # the peak kept as a maximum
    store.close()


def test_the_writer_compacts_an_hour_once_the_next_one_is_written(tmp_path: Path):
    store = AnalyticsStore(database_path(tmp_path, simulated=False))
    writer = AnalyticsWriter(store)
    for minute in range(3):
        writer.submit([rec(100 * HOUR, "visitors", "body", 1.0 + minute)])
    writer.submit([rec(101 * HOUR, "visitors", "body", 1.0)])
    assert writer.flush(10)
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT start, value FROM records ORDER BY start").fetchall() == [
            (100 * HOUR, 6.0),
            (101 * HOUR, 1.0),
        ]
    writer.close(10)
