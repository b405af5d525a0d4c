"""``GET /api/v1/analytics``: the figures of a real analytics database (SQLite, in the run's state folder) after
k-anonymity, the period chosen by ``days``, the roles, and the answer of a run that keeps no analytics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from engine.analytics.records import HOUR, BinRecord, hour_of
from engine.analytics.summary import DAY
from tests.content.console.conftest import Console, assemble_console, make_accounts, running_console

EXHIBIT_ID = "consoletest"


def hour_records(start: int) -> list[BinRecord]:
    """One busy hour: 13 visitors, small cells that k = 5 must merge or drop."""
    rows: list[tuple[str, str, float]] = [
        ("visitors", "camera", 13),
        ("stopped", "camera", 10),
        ("holding_s", "3", 5),
        ("holding_s", "10", 5),
        ("zone_visitors", "entrance", 9),
        ("zone_visitors", "nook", 2),  # below k: into `other`, which stays below k: dropped
        ("zone_dwell_s", "entrance", 180),
        ("zone_dwell_s", "nook", 30),
        ("occupancy_s", "camera", 7200),
        ("occupancy_peak", "camera", 4),
        ("interactions", "panel.level", 3),
        ("engaged_state", "show:finale", 6),
        ("engaged_cue", "main:2", 7),
        ("heatmap", "1,2", 40),
        ("heatmap", "2,2", 300),  # one visitor's five minutes: dropped with the cell's count
        ("heatmap_visitors", "1,2", 8),
        ("heatmap_visitors", "2,2", 1),
    ]
    return [BinRecord(EXHIBIT_ID, start, measure, key, value) for measure, key, value in rows]


def small_hour(start: int) -> list[BinRecord]:
    """Two visitors in a day of their own: their per-visitor measures are never published."""
    return [
        BinRecord(EXHIBIT_ID, start, "visitors", "camera", 2),
        BinRecord(EXHIBIT_ID, start, "stopped", "camera", 2),
        BinRecord(EXHIBIT_ID, start, "holding_s", "7", 2),
        BinRecord(EXHIBIT_ID, start, "occupancy_peak", "camera", 1),
        BinRecord(EXHIBIT_ID, start, "interactions", "panel.level", 1),  # an event count: kept per hour
    ]


@pytest.fixture
async def recorded(
    tmp_path: Path, mosquitto: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Console, int]]:
    """A console whose run keeps analytics (a state folder), its database filled beforehand; and the UTC midnight
    of yesterday, where the busy hour is. The exhibit names no time zone: the computer's is made UTC."""
    monkeypatch.setenv("TZ", "UTC")
    _, tokens = make_accounts(tmp_path / "accounts.json")
    runtime = assemble_console(tmp_path, mosquitto.url, state_dir=tmp_path / "state")
    assert runtime.analytics is not None
    now = time.time()
    yesterday = hour_of(now) // DAY * DAY - DAY
    store = runtime.analytics.writer.store
    store.add(hour_records(yesterday + 10 * HOUR))
    store.add(small_hour(yesterday - DAY + 15 * HOUR))
    store.add(hour_records(yesterday - 20 * DAY + 9 * HOUR))  # outside the last 7 days
    async with running_console(runtime, tokens) as console:
        yield console, yesterday


async def get(console: Console, query: str = "", token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with console.client().get(f"/api/v1/analytics{query}", headers=headers) as response:
        return response.status, await response.json()


async def test_figures_after_k_anonymity(recorded: tuple[Console, int]) -> None:
    console, yesterday = recorded
    status, body = await get(console, token=console.tokens["viewer"])
    assert status == 200, body
    assert body["enabled"] is True and body["simulated"] is True and body["k"] == 5 and body["days"] == 7
    assert body["empty"] is False
    assert body["until"] - body["since"] > 6 * DAY and body["since"] % DAY == 0
    totals = body["totals"]
    assert totals["visitors"] == 13 and totals["stopped"] == 10
    assert totals["attraction"] == pytest.approx(10 / 13)
    assert totals["holding_median"] == {"low": 3, "high": 4}
    assert totals["holding_p90"] == {"low": 10, "high": 11}
    assert totals["occupancy_mean"] == pytest.approx(7200 / (7 * DAY))
    assert totals["occupancy_peak"] == 4
    assert totals["interactions"] == 4  # the small hour's interaction is an event count, published per hour
    # the small hour: dropped, its day's holding histogram (2 visitors) too; the nook's visitors and dwell, one
    # heatmap cell's visitors and seconds: lost
    assert body["suppressed"] == {"merged_hours": 0, "suppressed_hours": 1, "suppressed_cells": 5}
    assert body["time_zone"] == "UTC" and all(d["date"] for d in body["per_day"])

    days = body["per_day"]
    assert len(days) == 7 and [d["start"] for d in days] == list(range(body["since"], body["until"], DAY))
    busy = next(d for d in days if d["start"] == yesterday)
    assert busy["visitors"] == 13 and busy["attraction"] == pytest.approx(10 / 13)
    assert sum(d["visitors"] for d in days) == 13  # the two visitors of the small day are not shown
    assert len(body["hour_of_day"]) == 24
    assert body["hour_of_day"][10]["occupancy_mean"] == pytest.approx(2 / 7)
    assert body["hour_of_day"][10]["occupancy_peak"] == 4
    holding = {group["label"]: group["visitors"] for group in body["holding"]}
    assert holding["0"] == 5 and holding["10"] == 5 and sum(holding.values()) == 10
    assert body["zones"] == [
        {"zone": "entrance", "visitors": 9, "dwell_s": 180, "dwell_per_visitor_s": pytest.approx(20)}
    ]
    assert body["interactions"] == [{"key": "panel.level", "count": 4}]
    assert body["engaged_state"] == [{"key": "show:finale", "visitors": 6}]
    assert body["engaged_cue"] == [{"key": "main:2", "visitors": 7}]
    assert body["heatmap"] == {"column0": 1, "row0": 2, "cells": [[40]], "other": 0, "peak": 40}


async def test_days_choose_the_period(recorded: tuple[Console, int]) -> None:
    console, _ = recorded
    status, body = await get(console, "?days=30", console.tokens["viewer"])
    assert status == 200
    assert body["totals"]["visitors"] == 26 and len(body["per_day"]) == 30
    status, body = await get(console, "?days=1", console.tokens["viewer"])
    assert status == 200 and body["empty"] is True and body["totals"]["visitors"] == 0
    assert body["totals"]["attraction"] is None and body["totals"]["holding_median"] is None
    assert body["heatmap"]["cells"] == []
    for bad in ("0", "401", "abc", "7.5", "-1"):
        status, body = await get(console, f"?days={bad}", console.tokens["viewer"])
        assert status == 400 and body["code"] == "bad_request", bad


async def test_roles(recorded: tuple[Console, int]) -> None:
    console, _ = recorded
    status, body = await get(console)
    assert status == 401 and body["code"] == "unauthorized"
    status, _ = await get(console, token="not-a-token")
    assert status == 401
    for role in ("viewer", "operator", "admin"):
        status, body = await get(console, token=console.tokens[role])
        assert status == 200 and body["totals"]["visitors"] == 13
    client, _ = await console.login("vic")  # a viewer's session
    async with client.get("/api/v1/analytics?days=7") as response:
        assert response.status == 200
        assert (await response.json())["totals"]["visitors"] == 13


async def test_a_run_without_analytics_says_so(console: Console) -> None:
    assert console.runtime.analytics is None  # no state folder: nothing on disk
    status, body = await get(console, "?days=30", console.tokens["viewer"])
    assert status == 200
    assert body["enabled"] is False and body["days"] == 30 and body["k"] == 5
    assert "no visitor analytics" in body["message"] and "观众统计" in body["message"]
    assert "totals" not in body
