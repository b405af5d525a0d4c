"""Retention removes old rows on a virtual clock (issue 17): a real runtime with analytics on and `retention: 3d`
deletes, from the real visitors' database of its state folder, the hours older than three days once at start and
then once a day of the runtime's clock, never of the computer's.

The database is filled beforehand with hours of several ages (by the start of their bin, as the store judges them):

============================  =================================  ====================================
row                           start of its hour                  fate
============================  =================================  ====================================
``a month past``              30 days before the limit           removed at start
``an hour past``              an hour before the limit           removed at start
``an hour inside``            an hour after the limit            kept at start, removed after a day
``half a day inside``         12 hours after the limit           kept at start, removed after a day
``a day and an hour inside``  a day and an hour after the limit  kept: still young enough after a day
``this hour``                 the hour the show starts in        kept
============================  =================================  ====================================

where the limit is the show's start (``WALL_START``) less three days. ``WALL_START`` lies in 2090, so every row is
in the future of the computer's clock: a retention on ``time.time()`` (or on the monotonic ``clock.now()``, which
starts at 0) would remove nothing, and the check at start fails. A retention run only at start fails the check after a
day, and so does one that keeps the wall time it started with; one run more often than daily (each flush, each
hour) fails the check a little before the day is over; days read as another unit (hours, seconds) remove the young
rows; a recorder sleeping on real time instead of the runtime's clock never reaches its second run.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from engine.analytics.records import HOUR, BinRecord
from engine.analytics.store import DAY, AnalyticsStore, database_path
from engine.clock import VirtualClock
from engine.runtime import Runtime, RuntimeOptions, assemble
from engine.validate import validate_text
from launcher import build_registry

EXHIBIT_ID = "kept"
RETENTION_DAYS = 3
EXHIBIT = f"""\
format_version: 1
id: {EXHIBIT_ID}
title: {{en: Analytics retention on a virtual clock}}
analytics:
  retention: {RETENTION_DAYS}d
"""
WALL_START = datetime.datetime(2090, 6, 15, 12, 0, tzinfo=datetime.UTC)
"""On the hour, and far in the future of any real clock that runs this test."""
START = int(WALL_START.timestamp())
LIMIT = START - RETENTION_DAYS * DAY
"""Bins that start before this are too old when the show starts."""

SEEDED = {
    "a month past": LIMIT - 30 * DAY,
    "an hour past": LIMIT - HOUR,
    "an hour inside": LIMIT + HOUR,
    "half a day inside": LIMIT + 12 * HOUR,
    "a day and an hour inside": LIMIT + DAY + HOUR,
    "this hour": START,
}
"""Each seeded row's key (so that it can be told apart from what the recorder writes itself) and its hour."""
AT_START = {"an hour inside", "half a day inside", "a day and an hour inside", "this hour"}
AFTER_A_DAY = {"a day and an hour inside", "this hour"}
MARGIN = 600.0
"""Seconds the clock is stopped short of, then moved past, the next daily run (the recorder's flush is a minute)."""


def seed(state: Path) -> None:
    store = AnalyticsStore(database_path(state, simulated=False))
    try:
        store.add([BinRecord(EXHIBIT_ID, start, "visitors", key, 1) for key, start in SEEDED.items()])
    finally:
        store.close()


def seeded_rows(path: Path) -> set[str]:
    """The seeded rows still in the database, read on a read-only connection of its own (WAL: the writer thread
    is never in its way, nor it in the writer's)."""
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        keys = {key for (key,) in db.execute("SELECT key FROM records WHERE exhibit = ?", (EXHIBIT_ID,))}
    return keys & SEEDED.keys()


async def written(runtime: Runtime) -> None:
    """Wait until the writer thread has done every job the recorder handed it so far (a retention among them)."""
    assert runtime.analytics is not None
    writer = runtime.analytics.writer
    assert await asyncio.to_thread(writer.flush, 10.0), "the analytics writer is stuck"
    assert writer.failed == 0


@contextlib.contextmanager
def absent_broker() -> Iterator[str]:
    """The address of a broker that is away: a port bound and never listened on, so every connection is refused
    (and no one else can take the port meanwhile)."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"mqtt://127.0.0.1:{bound.getsockname()[1]}"


async def test_retention_runs_at_start_then_daily_on_the_runtimes_clock(tmp_path: Path):
    # The premise of the virtual-clock checks: every row is in the computer's future, real time would remove none.
    assert min(SEEDED.values()) > time.time() + RETENTION_DAYS * DAY
    state = tmp_path / "state"
    seed(state)
    path = database_path(state, simulated=False)
    assert seeded_rows(path) == SEEDED.keys()

    registry = build_registry()
    exhibit = validate_text(EXHIBIT, str(tmp_path / "exhibit.yaml"), registry)
    clock = VirtualClock(wall=WALL_START)
    with absent_broker() as broker:
        # Every service runs, but with the broker away the link waits for it rather than publishing the health
        # topics every 10 s of the virtual day: 8,640 rounds over loopback would take this test 20 s.
        options = RuntimeOptions(base_dir=tmp_path, state_dir=state, simulate=False, console=False, broker=broker)
        runtime = assemble(exhibit, registry, options, clock=clock)
        await runtime.start()
        try:
            recorder = runtime.analytics
            assert recorder is not None and recorder.path == path, "analytics on, in the real visitors' database"
            await clock.advance(0)  # the recorder's task starts: its first retention is queued before its first sleep
            await written(runtime)
            assert seeded_rows(path) == AT_START
            assert recorder.writer.deleted == len(SEEDED) - len(AT_START)

            await clock.advance(DAY - MARGIN)  # nearly a day: the rows that aged past the limit are still there
            await written(runtime)
            assert seeded_rows(path) == AT_START

            await clock.advance(2 * MARGIN)  # a day and ten minutes: the daily run came, on the virtual wall time
            await written(runtime)
            assert seeded_rows(path) == AFTER_A_DAY
            assert recorder.writer.deleted == len(SEEDED) - len(AFTER_A_DAY)
        finally:
            await runtime.stop()  # the recorder's close: the writer drained, the database closed

    assert seeded_rows(path) == AFTER_A_DAY  # what retention left is what the next start finds
