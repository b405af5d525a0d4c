"""A process that writes analytics through the store's writer until it is killed (tests/integration/
test_analytics_crash.py): batch after batch, each spread over several hour bins, flushed, then acknowledged on
stdout as ``committed N`` once the writer has committed it.

Usage: ``python -m tests.support.analytics_crash_child DATABASE FIRST_BATCH``
"""

from __future__ import annotations

import sys
from pathlib import Path

from engine.analytics.records import HOUR, BinRecord
from engine.analytics.store import AnalyticsStore, AnalyticsWriter

BINS_PER_BATCH = 4
KEYS_PER_BIN = 50
T0 = 1_700_000_000 - 1_700_000_000 % HOUR


def batch(number: int) -> list[BinRecord]:
    """Batch ``number``: every record carries its batch number as value, so a half-written batch would show."""
    return [
        BinRecord("crash", T0 + (number * BINS_PER_BATCH + b) * HOUR, "heatmap", f"{key},{number}", float(number))
        for b in range(BINS_PER_BATCH)
        for key in range(KEYS_PER_BIN)
    ]


def main(database: Path, first: int) -> None:
    writer = AnalyticsWriter(AnalyticsStore(database))
    number = first
    while True:
        writer.submit(batch(number))
        if not writer.flush(timeout=30) or writer.failed:
            raise SystemExit(f"batch {number} was not committed")
        print(f"committed {number}", flush=True)
        number += 1


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
