"""A crash (SIGKILL) while analytics are being written leaves a database that opens, passes SQLite's integrity
check and holds every batch the writer had acknowledged: at most the batch being written is lost, and no batch
is ever half there (issue 17)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from engine.analytics.store import AnalyticsStore
from tests.support.analytics_crash_child import BINS_PER_BATCH, KEYS_PER_BIN, T0

ROOT = Path(__file__).resolve().parent.parent.parent


def run_until_killed(database: Path, first: int, acknowledged_before_kill: int, then: float) -> list[int]:
    """Run the writing child from batch ``first``, SIGKILL it ``then`` seconds after it has acknowledged that many
    batches (it is writing the next ones), and return every batch it acknowledged."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.support.analytics_crash_child", str(database), str(first)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    seen, deadline = 0, time.monotonic() + 60
    try:
        while seen < acknowledged_before_kill and time.monotonic() < deadline:
            line = child.stdout.readline()
            assert line, f"the child stopped: {child.stderr.read() if child.stderr else ''}"
            seen += 1
        time.sleep(then)
    finally:
        child.send_signal(signal.SIGKILL)
    rest, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert seen == acknowledged_before_kill
    acknowledged = list(range(first, first + seen)) + [int(line.split()[1]) for line in rest.splitlines()]
    assert acknowledged == list(range(first, first + len(acknowledged)))
    return acknowledged


def batches_in(database: Path) -> list[int]:
    """The batches the database holds, each checked to be whole."""
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        counts = db.execute("SELECT CAST(value AS INTEGER), COUNT(*) FROM records GROUP BY value").fetchall()
    for number, count in counts:
        assert count == BINS_PER_BATCH * KEYS_PER_BIN, f"batch {number} is half there: {count} records"
    return sorted(number for number, _ in counts)


def test_a_killed_writer_loses_at_most_the_batch_being_written(tmp_path: Path):
    database = tmp_path / "analytics.sqlite"
    first = 0
    for acknowledged_before_kill, then in ((3, 0.0), (5, 0.001), (8, 0.003), (13, 0.005), (21, 0.011)):
        acknowledged = run_until_killed(database, first, acknowledged_before_kill, then)
        present = batches_in(database)
        assert present[: first + len(acknowledged)] == list(range(first + len(acknowledged)))  # none missing
        assert len(present) <= first + len(acknowledged) + 1  # at most the one being written when killed...
        assert present == list(range(len(present)))  # ...which is whole, or not there at all
        first = len(present)

        store = AnalyticsStore(database)  # it opens again, and reads what was written
        totals = store.totals("crash", T0, T0 + 10_000 * 3600)
        assert len(totals) == len(present) * BINS_PER_BATCH * KEYS_PER_BIN
        assert store.schema_version() == 1
        store.close()
