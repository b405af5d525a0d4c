"""The console's Analytics page in a real Chromium, against exhibit processes whose state folders hold a real
analytics database (a simulated run's, filled beforehand): the figures after k-anonymity in English and Chinese,
the simulated-data banner, the privacy note, the charts, and the empty states (no data yet, analytics off).
Screenshots at 1280x800 go to /tmp/analytics-shots/."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from engine.analytics.records import HOUR, BinRecord, hour_of
from engine.analytics.store import AnalyticsStore, database_path
from engine.analytics.summary import DAY
from tests.conftest import Mosquitto
from tests.console_browser.conftest import TABLET, TEST_EXHIBIT, ConsoleProcess, launch_console, sign_in

STATIC = Path(__file__).resolve().parents[2] / "content" / "console" / "static"
ZH = json.loads((STATIC / "i18n" / "zh.json").read_text(encoding="utf-8"))
EN = json.loads((STATIC / "i18n" / "en.json").read_text(encoding="utf-8"))
SHOTS = Path("/tmp/analytics-shots")
EXHIBIT_ID = "console-test"


def hour(start: int, visitors: int, stopped: int, scale: float) -> list[BinRecord]:
    rows: list[tuple[str, str, float]] = [
        ("visitors", "body", visitors),
        ("stopped", "body", stopped),
        ("holding_s", "2", stopped - 5),
        ("holding_s", "14", 5),
        ("zone_visitors", "front", stopped),
        ("zone_visitors", "plinth", 5),
        ("zone_visitors", "corner", 1),  # below k = 5: merged away
        ("zone_dwell_s", "front", 20 * stopped),
        ("zone_dwell_s", "plinth", 45),
        ("zone_dwell_s", "corner", 4),
        ("occupancy_s", "body", 3600 * scale),
        ("occupancy_peak", "body", 2 + round(scale * 2)),
        ("interactions", "controls.wash", 6),
        ("engaged_state", "room:finale", stopped),
        ("engaged_state", "room:idle", visitors),
        ("engaged_cue", "main:1", stopped),
        ("engaged_cue", "main:2", 6),
    ]
    rows += [("heatmap", f"{c},{r}", 5 + (c + 1) * (r + 2) * 4 * scale) for c in range(6) for r in range(4)]
    rows += [("heatmap_visitors", f"{c},{r}", 5 + c + r) for c in range(6) for r in range(4)]
    return [BinRecord(EXHIBIT_ID, start, measure, key, value) for measure, key, value in rows]


def filled_state(folder: Path) -> tuple[Path, dict[str, float]]:
    """A state folder whose simulated-run database holds five busy hours over the last days, and what it totals."""
    yesterday = hour_of(time.time()) // DAY * DAY - DAY
    hours = [
        (yesterday + 10 * HOUR, 20, 14, 1.5),
        (yesterday + 13 * HOUR, 16, 11, 1.0),
        (yesterday + 16 * HOUR, 12, 8, 0.6),
        (yesterday - 2 * DAY + 11 * HOUR, 10, 7, 0.8),
        (yesterday - 3 * DAY + 15 * HOUR, 14, 9, 1.2),
    ]
    store = AnalyticsStore(database_path(folder, simulated=True), simulated=True)
    for start, visitors, stopped, scale in hours:
        store.add(hour(start, visitors, stopped, scale))
    store.add([BinRecord(EXHIBIT_ID, yesterday - DAY + 9 * HOUR, "visitors", "body", 2)])  # a small hour: left out
    store.close()
    return folder, {"visitors": sum(h[1] for h in hours), "stopped": sum(h[2] for h in hours)}


@pytest.fixture(scope="module")
def recorded(
    broker: Mosquitto, accounts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ConsoleProcess, dict[str, float]]]:
    folder, totals = filled_state(tmp_path_factory.mktemp("analytics-state"))
    audit = tmp_path_factory.mktemp("analytics-audit") / "audit.log"
    node = launch_console(str(TEST_EXHIBIT), broker.url, accounts, audit, "--state-dir", str(folder))
    yield node, totals
    node.stop()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []
    pages: list[Any] = []

    def opener(console: ConsoleProcess) -> Any:
        context = browser.new_context(viewport=TABLET, locale="en-US", base_url=console.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        tab = context.new_page()
        tab.errors = []
        tab.on("pageerror", lambda error: tab.errors.append(str(error)))
        pages.append(tab)
        return tab

    yield opener
    errors = [error for tab in pages for error in tab.errors]
    for context in contexts:
        context.close()
    assert not errors, f"the page threw: {errors}"


def open_analytics(page: Any) -> None:
    sign_in(page, "victor")  # a viewer may read the figures
    page.click(".tab[data-tab=analytics]")
    expect(page.locator("#view-analytics")).to_be_visible()


def switch_to_chinese(page: Any) -> None:
    page.click("#app .lang-switch")
    page.wait_for_function("document.documentElement.lang.startsWith('zh')")


def figure(page: Any, name: str) -> Any:
    return page.locator(f".analytics-figure[data-figure={name}] b")


def test_the_figures_in_english_and_chinese(open_page: Any, recorded: tuple[ConsoleProcess, dict[str, float]]) -> None:
    node, totals = recorded
    page = open_page(node)
    open_analytics(page)
    expect(figure(page, "visitors")).to_have_text(str(int(totals["visitors"])))
    expect(figure(page, "stopped")).to_have_text(str(int(totals["stopped"])))
    expect(figure(page, "attraction")).to_have_text(f"{round(totals['stopped'] / totals['visitors'] * 100)}%")
    expect(figure(page, "interactions")).to_have_text("30")
    expect(figure(page, "holding_median")).to_have_text("2 s")
    expect(figure(page, "holding_p90")).to_have_text("14 s")
    expect(page.locator(".analytics-simulated")).to_be_visible()
    expect(page.locator(".analytics-simulated")).to_have_text(EN["analytics.simulated"])
    privacy = page.locator(".analytics-privacy")
    expect(privacy).to_contain_text("at least k = 5 visitors")
    expect(privacy).to_contain_text("1 left out")  # the small hour
    expect(page.locator(".analytics-empty")).to_be_hidden()
    charts = page.locator(".analytics-chart")
    expect(charts).to_have_count(7)
    day_bars = page.locator("[data-chart=per_day] rect.bar")
    expect(day_bars).to_have_count(7)
    expect(page.locator("[data-chart=heatmap] rect.cell")).to_have_count(24)
    zones = page.locator("[data-chart=zones] svg")
    expect(zones).to_contain_text("front")
    expect(zones).to_contain_text("plinth")
    expect(zones).not_to_contain_text("corner")  # one visitor a hour: never shown on its own
    expect(page.locator("[data-chart=states] svg")).to_contain_text("room:finale")
    expect(page.locator("[data-chart=cues] svg")).to_contain_text("main:2")
    expect(page.locator("[data-chart=zones] h2")).to_have_text(EN["analytics.chart.zones"])
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.fonts.ready")
    page.screenshot(path=str(SHOTS / "analytics-en.png"))
    page.evaluate("document.getElementById('views').scrollTop = 1e6")  # the charts below the fold
    page.screenshot(path=str(SHOTS / "analytics-en-charts.png"))
    page.evaluate("document.getElementById('views').scrollTop = 0")

    switch_to_chinese(page)
    expect(page.locator(".tab[data-tab=analytics]")).to_have_text(ZH["tab.analytics"])
    expect(page.locator(".analytics-head h2")).to_have_text(ZH["analytics.title"])
    expect(page.locator(".analytics-figure[data-figure=visitors] span")).to_have_text(ZH["analytics.fig.visitors"])
    expect(figure(page, "visitors")).to_have_text(str(int(totals["visitors"])))
    expect(figure(page, "holding_median")).to_have_text("2 秒")
    expect(page.locator(".analytics-simulated")).to_have_text(ZH["analytics.simulated"])
    expect(privacy).to_contain_text("每个数字至少包含 k = 5 位观众")
    expect(page.locator("[data-chart=heatmap] h2")).to_have_text(ZH["analytics.chart.heatmap"])
    page.evaluate("document.fonts.ready")
    page.screenshot(path=str(SHOTS / "analytics-zh.png"))

    page.select_option("select[name=analytics-days]", "1")  # today only: nothing recorded yet
    expect(page.locator(".analytics-empty")).to_have_text(ZH["analytics.no_data"])
    expect(page.locator(".analytics-figures")).to_be_hidden()


@pytest.fixture(scope="module")
def fresh(broker: Mosquitto, accounts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleProcess]:
    """A node whose analytics have recorded nothing yet."""
    folder = tmp_path_factory.mktemp("analytics-fresh")
    node = launch_console(str(TEST_EXHIBIT), broker.url, accounts, folder / "audit.log", "--state-dir", str(folder))
    yield node
    node.stop()


@pytest.fixture(scope="module")
def off(broker: Mosquitto, accounts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleProcess]:
    """A node of the test exhibit with `analytics: {enabled: false}`."""
    folder = tmp_path_factory.mktemp("analytics-off")
    exhibit = folder / "exhibit"
    shutil.copytree(TEST_EXHIBIT, exhibit)
    file = exhibit / "exhibit.yaml"
    file.write_text(file.read_text(encoding="utf-8") + "\nanalytics:\n  enabled: false\n", encoding="utf-8")
    state = folder / "state"
    node = launch_console(str(exhibit), broker.url, accounts, folder / "audit.log", "--state-dir", str(state))
    yield node
    node.stop()
    assert not list(state.glob("analytics*")), "analytics off must leave nothing on disk"


def test_no_data_yet(open_page: Any, fresh: ConsoleProcess) -> None:
    page = open_page(fresh)
    open_analytics(page)
    empty = page.locator(".analytics-empty")
    expect(empty).to_have_text(EN["analytics.no_data"])
    expect(empty).to_have_attribute("data-state", "no-data")
    expect(page.locator(".analytics-figures")).to_be_hidden()
    expect(page.locator(".analytics-charts")).to_be_hidden()
    expect(page.locator(".analytics-simulated")).to_be_visible()  # a --simulate run: even its nothing is simulated
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "analytics-empty-en.png"))
    switch_to_chinese(page)
    expect(empty).to_have_text(ZH["analytics.no_data"])


def test_analytics_off(open_page: Any, off: ConsoleProcess) -> None:
    page = open_page(off)
    open_analytics(page)
    empty = page.locator(".analytics-empty")
    expect(empty).to_have_attribute("data-state", "off")
    expect(empty).to_contain_text(EN["analytics.off"])
    expect(page.locator(".analytics-simulated")).to_be_hidden()
    expect(page.locator(".analytics-privacy")).to_have_text(EN["analytics.privacy_off"].replace("{k}", "5"))
    expect(page.locator(".analytics-figures")).to_be_hidden()
    switch_to_chinese(page)
    expect(empty).to_contain_text(ZH["analytics.off"])
    page.screenshot(path=str(SHOTS / "analytics-off-zh.png"))
