"""Where the hourly aggregates live: an append-only SQLite database, written by a thread of its own.

Durability: the database runs in WAL mode with ``synchronous=FULL``. Each batch is one transaction; with FULL
the write-ahead log is synced to the disk before the commit returns, so a batch the writer has committed survives
a killed process *and* a power cut (an exhibit's power is often cut at closing time). ``synchronous=NORMAL`` in
WAL mode would survive a killed process too, but a power cut could lose every batch since the last checkpoint,
more than the current bin. The price (one fsync per batch) is paid by the writer thread, never by the control
loop, and batches are few (one per flush, not one per frame). A crash never corrupts the database: SQLite rolls
back the transaction it interrupted, so at most the batch being written is lost.

Off the control loop: :class:`AnalyticsWriter` owns the store's write connection on its own thread; its
:meth:`~AnalyticsWriter.submit` only puts the batch on a queue, so the caller never waits on the disk, even while
a reader or a checkpoint holds the database.

Real and simulated visitors never mix: :func:`database_path` gives a ``--simulate`` run a database of its own,
marked ``simulated = 1`` in its ``meta`` table; opening it as the other kind is refused, and every read
(:class:`StoredTotals`) carries the mark.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from engine.analytics.records import MAXIMA, BinRecord

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
DAY: Final = 86_400
BUSY_TIMEOUT_S: Final = 30.0
"""How long a connection waits for another one's lock before giving up (only the writer thread ever waits)."""

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS records ("
    " exhibit TEXT NOT NULL, start INTEGER NOT NULL, measure TEXT NOT NULL, key TEXT NOT NULL,"
    " value REAL NOT NULL, written_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS records_bin ON records (exhibit, start)",
    "CREATE TRIGGER IF NOT EXISTS records_append_only BEFORE UPDATE ON records"
    " BEGIN SELECT RAISE(ABORT, 'analytics records are append-only'); END",
)


class AnalyticsStoreError(Exception):
    """The database is not one this code may use: a newer schema, or the other kind (real / simulated)."""


def database_path(state_dir: Path, simulated: bool) -> Path:
    """The database of an exhibit's state folder: real visitors and ``--simulate`` runs never share one."""
    return state_dir / ("analytics-simulated.sqlite" if simulated else "analytics.sqlite")


class StoredTotals(list[BinRecord]):
    """What :meth:`AnalyticsStore.totals` read, and whether it came from a simulated run's database."""

    def __init__(self, records: Sequence[BinRecord] = (), *, simulated: bool) -> None:
        super().__init__(records)
        self.simulated = simulated


def merge_totals(parts: Sequence[StoredTotals]) -> StoredTotals:
    """Totals of several reads together (several periods, several exhibits' databases), refusing to mix a
    simulated run's records with real visitors'."""
    kinds = {part.simulated for part in parts}
    if len(kinds) > 1:
        raise AnalyticsStoreError("refusing to mix simulated and real visitors' analytics")
    return StoredTotals([r for part in parts for r in part], simulated=kinds == {True})


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions, each one is an explicit BEGIN ... COMMIT.
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA synchronous = FULL")
    return connection


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[sqlite3.Connection]:
    connection.execute(begin)
    try:
        yield connection
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


_MAXIMA: Final = tuple(sorted(MAXIMA))
_COMBINED: Final = f"CASE WHEN measure IN ({', '.join('?' * len(_MAXIMA))}) THEN MAX(value) ELSE SUM(value) END"
"""How the records of one key combine (its parameters: :data:`_MAXIMA`): summed, or the maximum for MAXIMA."""


class AnalyticsStore:
    """One analytics database: created (or checked) on construction, appended to by :meth:`add`, read by
    :meth:`totals`. Construct it at start-up, not in the control loop, and write through an
    :class:`AnalyticsWriter`; ``analytics.enabled: false`` means never constructing one (nothing on disk)."""

    def __init__(self, path: Path, *, simulated: bool = False, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.simulated = simulated
        self._clock = clock
        self._lock = threading.Lock()
        self._write: sqlite3.Connection | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(_connect(self.path)) as connection:
            # Before the first table exists, so that deleted rows' pages can be given back (retention).
            connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise AnalyticsStoreError(f"{self.path}: cannot use write-ahead logging (journal mode {mode})")
            with _transaction(connection):
                self._create(connection)

    def _create(self, connection: sqlite3.Connection) -> None:
        for statement in _SCHEMA:
            connection.execute(statement)
        row = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if row[0] is None:
            connection.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif row[0] > SCHEMA_VERSION:
            raise AnalyticsStoreError(
                f"{self.path}: analytics schema {row[0]} is newer than this controller's ({SCHEMA_VERSION})"
            )
        flag = "1" if self.simulated else "0"
        connection.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('simulated', ?)", (flag,))
        stored = connection.execute("SELECT value FROM meta WHERE name = 'simulated'").fetchone()[0]
        if stored != flag:
            kind = "a simulated run's" if stored == "1" else "real visitors'"
            raise AnalyticsStoreError(f"{self.path} holds {kind} analytics: never mixed with the other kind")

    def schema_version(self) -> int:
        with self._reading() as connection:
            return int(connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    def add(self, records: Sequence[BinRecord]) -> None:
        """Append ``records`` in one transaction (all or none). Blocks on the disk: call it from the writer."""
        if not records:
            return
        now = self._clock()
        rows = [(r.exhibit, r.start, r.measure, r.key, float(r.value), now) for r in records]
        with self._lock, _transaction(self._writer()) as connection:
            connection.executemany(
                "INSERT INTO records (exhibit, start, measure, key, value, written_at) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    def apply_retention(self, now: float, days: int) -> int:
        """Delete the records of bins that started more than ``days`` days before ``now``, give the space back
        to the file system, and return how many records went. Run it daily (the caller schedules it), through
        :meth:`AnalyticsWriter.retain` so that the control loop does not wait on it."""
        if days < 0:
            raise ValueError(f"retention of {days} days")
        cutoff = now - days * DAY
        with self._lock:
            connection = self._writer()
            with _transaction(connection):
                deleted = connection.execute("DELETE FROM records WHERE start < ?", (cutoff,)).rowcount
                # Python's sqlite3 steps a statement without result columns once: one page per execution.
                while connection.execute("PRAGMA freelist_count").fetchone()[0]:
                    connection.execute("PRAGMA incremental_vacuum")
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return int(deleted)

    def compact(self, before: float) -> int:
        """Merge the records of each (exhibit, hour, measure, key) of the hours that started before ``before`` into
        one record (their sum, the maximum for MAXIMA), in one transaction: a closed hour written minute by minute
        keeps one row per key, not sixty. Totals are unchanged. Returns how many rows went."""
        with self._lock:
            connection = self._writer()
            with _transaction(connection):
                connection.execute(
                    f"CREATE TEMP TABLE merged AS SELECT exhibit, start, measure, key, {_COMBINED} AS value,"
                    " MAX(written_at) AS written_at FROM records WHERE start < ?"
                    " GROUP BY exhibit, start, measure, key HAVING COUNT(*) > 1",
                    [*_MAXIMA, before],
                )
                deleted = connection.execute(
                    "DELETE FROM records WHERE start < ? AND (exhibit, start, measure, key) IN"
                    " (SELECT exhibit, start, measure, key FROM merged)",
                    (before,),
                ).rowcount
                added = connection.execute(
                    "INSERT INTO records (exhibit, start, measure, key, value, written_at)"
                    " SELECT exhibit, start, measure, key, value, written_at FROM merged"
                ).rowcount
                connection.execute("DROP TABLE merged")
                while connection.execute("PRAGMA freelist_count").fetchone()[0]:
                    connection.execute("PRAGMA incremental_vacuum")
        return int(deleted - added)

    def totals(self, exhibit: str, since: float, until: float, measure: str | None = None) -> StoredTotals:
        """The records of bins starting in [``since``, ``until``), one per (exhibit, start, measure, key): the
        sum of what was written, the maximum for :data:`~engine.analytics.records.MAXIMA`."""
        query = (
            f"SELECT exhibit, start, measure, key, {_COMBINED}"
            " FROM records WHERE exhibit = ? AND start >= ? AND start < ?"
        )
        parameters: list[object] = [*_MAXIMA, exhibit, since, until]
        if measure is not None:
            query += " AND measure = ?"
            parameters.append(measure)
        query += " GROUP BY exhibit, start, measure, key ORDER BY start, measure, key"
        with self._reading() as connection:
            rows = connection.execute(query, parameters).fetchall()
        return StoredTotals([BinRecord(*row) for row in rows], simulated=self.simulated)

    def close(self) -> None:
        with self._lock:
            if self._write is not None:
                self._write.close()
                self._write = None

    def _writer(self) -> sqlite3.Connection:
        if self._write is None:
            self._write = _connect(self.path)
        return self._write

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own for one read: readers never wait for the writer, nor it for them (WAL)."""
        with contextlib.closing(_connect(self.path)) as connection:
            connection.execute("PRAGMA query_only = ON")
            yield connection


@dataclass(frozen=True, slots=True)
class _Retention:
    now: float
    days: int


_Job = tuple[BinRecord, ...] | _Retention | None
"""A batch to append, a retention run, or None: stop."""


class AnalyticsWriter:
    """The thread that owns a store's writes. :meth:`submit` returns at once (a queue), :meth:`flush` waits
    until what was submitted is committed, :meth:`close` drains the queue, then closes the store."""

    def __init__(self, store: AnalyticsStore) -> None:
        self.store = store
        self.failed = 0
        """Jobs that failed (logged): their records are lost, the writer goes on."""
        self.deleted = 0
        """Records removed by retention since the writer started."""
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._done = threading.Condition()
        self._submitted = 0
        self._finished = 0
        self._closed = False
        self._compacted_before = -math.inf
        self._thread = threading.Thread(target=self._run, name=f"analytics writer {store.path.name}", daemon=True)
        self._thread.start()

    def submit(self, records: Sequence[BinRecord]) -> None:
        """Queue ``records`` to be appended as one transaction; never waits on the disk."""
        self._put(tuple(records))

    def retain(self, now: float, days: int) -> None:
        """Queue a retention run (:meth:`AnalyticsStore.apply_retention`) behind the batches already queued."""
        self._put(_Retention(now, days))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every job submitted so far is done; False if ``timeout`` passed first."""
        with self._done:
            target = self._submitted
            return self._done.wait_for(lambda: self._finished >= target, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, stop the thread and close the database."""
        with self._done:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.store.close()

    def _put(self, job: _Job) -> None:
        with self._done:  # held for a counter only, never while the disk is written
            if self._closed:
                raise RuntimeError("the analytics writer is closed")
            self._submitted += 1
        self._queue.put(job)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                if isinstance(job, _Retention):
                    self.deleted += self.store.apply_retention(job.now, job.days)
                elif job:
                    self.store.add(job)
                    latest = max(record.start for record in job)
                    if latest > self._compacted_before:  # an hour closed: one row per key from now on
                        self.store.compact(before=latest)
                        self._compacted_before = latest
            except (sqlite3.Error, OSError, ValueError):
                self.failed += 1
                log.exception("analytics: a write to %s failed, its records are lost", self.store.path)
            with self._done:
                self._finished += 1
                self._done.notify_all()
