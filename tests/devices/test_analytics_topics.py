"""The last day's figures as `analytics/today` says them, from a real store: exact figures with k visitors or
more, nothing derived from single visitors below k."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from devices.mqtt.analytics_topics import last_day
from engine.analytics.records import HOUR, BinRecord
from engine.analytics.store import AnalyticsStore, database_path

NOW = 500 * HOUR + 1800.0  # half past an hour


def recorder(tmp_path: Path, records: list[BinRecord]) -> Any:
    store = AnalyticsStore(database_path(tmp_path, simulated=False))
    store.add(records)
    return SimpleNamespace(writer=SimpleNamespace(store=store))


def rec(hours_ago: int, measure: str, key: str, value: float) -> BinRecord:
    return BinRecord("hall", 500 * HOUR - hours_ago * HOUR, measure, key, value)


def test_enough_visitors_give_attraction_holding_and_occupancy(tmp_path: Path):
    records = [
        rec(0, "visitors", "body", 6),
        rec(0, "stopped", "body", 3),
        rec(0, "holding_s", "4", 1),
        rec(0, "holding_s", "9", 2),
        rec(3, "visitors", "body", 4),
        rec(3, "stopped", "body", 1),
        rec(3, "holding_s", "30", 1),
        rec(0, "occupancy_s", "body", 900),
        rec(0, "occupancy_peak", "body", 3),
        rec(0, "interactions", "plinth.button", 7),
        rec(24, "visitors", "body", 100),  # a day ago: outside the window
    ]
    summary = last_day(recorder(tmp_path, records), "hall", 5, NOW)
    assert summary["suppressed"] is False and summary["visitors"] == 10 and summary["stopped"] == 4
    assert summary["attraction"] == 0.4
    assert summary["holding_median_s"] == 9 and summary["holding_p90_s"] == 30  # ranks 2 and 4 of 4
    assert summary["occupancy_peak"] == 3 and summary["interactions"] == {"plinth.button": 7}
    assert summary["occupancy_mean"] == round(900 / (NOW - summary["from"]), 4)
    assert summary["from"] == 500 * HOUR - 23 * HOUR


def test_fewer_than_k_visitors_send_nothing_derived_from_single_visitors(tmp_path: Path):
    records = [rec(0, "visitors", "body", 2), rec(0, "stopped", "body", 2), rec(0, "holding_s", "12", 2)]
    summary = last_day(recorder(tmp_path, records), "hall", 5, NOW)
    assert summary["suppressed"] is True
    assert not {"visitors", "stopped", "attraction", "holding_median_s", "occupancy_mean"} & set(summary)


async def test_the_service_reads_the_window_of_the_runtimes_clock_not_the_computers(tmp_path: Path):
    """The figures are binned by the runtime's wall time (virtual in tests, pretended in the studio): the retained
    message must cover the 24 hours before *that* time, however far it is from the computer's."""
    from devices.mqtt.analytics_topics import AnalyticsTopics

    sent: list[tuple[str, str]] = []
    states: list[str] = []
    rec_ = recorder(tmp_path, [rec(0, "visitors", "body", 6), rec(0, "stopped", "body", 6)])
    rec_.wall = lambda: NOW  # 1970: the computer's clock would find nothing in its last day
    runtime = SimpleNamespace(
        exhibit=SimpleNamespace(id="hall", analytics=SimpleNamespace(k=5)),
        context=SimpleNamespace(
            health_of=lambda *_: SimpleNamespace(set=lambda state, *_: states.append(state), stopped=lambda: None)
        ),
    )
    link = SimpleNamespace(enqueue=lambda topic, payload, **_: sent.append((topic, payload)))
    topics = SimpleNamespace(prefix="exhibit", exhibit="hall")
    service = AnalyticsTopics(runtime, rec_, link, topics)  # type: ignore[arg-type]
    await service.publish()
    assert [topic for topic, _ in sent] == ["exhibit/hall/analytics/today"] and states == ["ok"]
    summary = json.loads(sent[0][1])
    assert (summary["to"], summary["visitors"], summary["suppressed"]) == (NOW, 6, False)
