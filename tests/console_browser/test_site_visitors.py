"""The Site page's "Visitors, last 24 hours" card in a real Chromium: an exhibit on a real Mosquitto, and other
exhibits' retained ``<prefix>/<id>/analytics/today`` summaries published by an outside client
(``mosquitto_pub``), as the exhibits of a site publish them. A row per exhibit (one with fewer than k visitors
shows "< k" and no per-visitor figure), the site's totals summed as the site report sums them, the simulated
marker only while a summary is simulated, and the empty state, in English and in Chinese."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from content.report.site import site_html
from tests.conftest import Mosquitto, require_tool
from tests.console_browser.conftest import TEST_EXHIBIT, ConsoleProcess, launch_console, sign_in, watched_tab

STATIC = Path(__file__).resolve().parents[2] / "content" / "console" / "static"
ZH = json.loads((STATIC / "i18n" / "zh.json").read_text(encoding="utf-8"))
EN = json.loads((STATIC / "i18n" / "en.json").read_text(encoding="utf-8"))
COLUMNS = ["exhibit", "visitors", "attraction", "median", "p90", "mean", "peak", "interactions"]
NOW = time.time()
NORTH = {  # fewer than k visitors: only the peak and the interactions are sent
    "exhibit": "north-hall", "from": NOW - 86_400, "to": NOW, "simulated": False, "k": 5, "suppressed": True,
    "occupancy_peak": 2, "interactions": {"plinth.button": 3},
}  # fmt: skip
SOUTH = {
    "exhibit": "south-hall", "from": NOW - 86_400, "to": NOW, "simulated": False, "k": 5, "suppressed": False,
    "visitors": 40, "stopped": 10, "attraction": 0.25, "holding_median_s": 12, "holding_p90_s": 48,
    "occupancy_mean": 0.7, "occupancy_peak": 5, "interactions": {"plinth.button": 9, "hands.raised": 4},
}  # fmt: skip
EAST = {  # simulated; with south: 18 of 80 stopped, 22.5 %, which the report rounds to 22 (half to even)
    "exhibit": "east-wing", "from": NOW - 86_400, "to": NOW, "simulated": True, "k": 5, "suppressed": False,
    "visitors": 40, "stopped": 8, "attraction": 0.2, "holding_median_s": 20, "holding_p90_s": 61,
    "occupancy_mean": 1.25, "occupancy_peak": 7, "interactions": {},
}  # fmt: skip


def publish(broker: Mosquitto, summary: dict[str, Any] | None, exhibit: str) -> None:
    """An exhibit's retained summary on the broker (None: the retained message is cleared)."""
    payload = ["-m", json.dumps(summary)] if summary is not None else ["-n"]
    topic = f"exhibit/{exhibit}/analytics/today"
    done = subprocess.run(
        [require_tool("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(broker.port), "-t", topic, "-q", "1", "-r",
         *payload],
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def report_totals(summaries: list[dict[str, Any]]) -> list[str]:
    """The totals row of the site report for the same summaries, without its label ("25 %" written "25%")."""
    page = site_html({s["exhibit"]: s for s in summaries}, dt.datetime.now(dt.UTC))
    row = page.split("全站 Site</th>")[1].split("</tr>")[0]
    return [cell.replace(" %", "%") for cell in re.findall(r"<th>(.*?)</th>", row)]


@pytest.fixture(scope="module")
def node(broker: Mosquitto, accounts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleProcess]:
    """The test exhibit with `analytics: {enabled: false}` (it publishes no figures of its own) on a Mosquitto
    where no exhibit has published yet."""
    folder = tmp_path_factory.mktemp("visitors")
    exhibit = folder / "exhibit"
    shutil.copytree(TEST_EXHIBIT, exhibit)
    file = exhibit / "exhibit.yaml"
    file.write_text(file.read_text(encoding="utf-8") + "\nanalytics:\n  enabled: false\n", encoding="utf-8")
    started = launch_console(
        str(exhibit), broker.url, accounts, folder / "audit.log", "--state-dir", str(folder / "state")
    )
    yield started
    started.stop()


@pytest.fixture
def site_page(browser: Any, node: ConsoleProcess) -> Iterator[Any]:
    """A viewer (the card needs no command) on the Site tab, in English; the page must throw nothing."""
    with watched_tab(browser, node.url) as tab:
        sign_in(tab, "victor")
        tab.click(".tab[data-tab=site]")
        yield tab


def test_the_site_page_adds_up_every_exhibits_last_24_hours(site_page: Any, broker: Mosquitto) -> None:
    page = site_page
    card = page.locator(".site-visitors")
    table = card.locator("table.site-visitors-table")
    empty = card.locator(".site-visitors-empty")
    marker = card.locator(".site-visitors-simulated")
    rows = card.locator("tr.site-visitor")
    totals = card.locator("tr.site-visitors-total th")
    north = card.locator("tr.site-visitor[data-exhibit=north-hall] td.num")
    south = card.locator("tr.site-visitor[data-exhibit=south-hall] td.num")
    east = card.locator("tr.site-visitor[data-exhibit=east-wing] td.num")

    # no exhibit has published (analytics off everywhere): the card says so, with no table
    expect(card.locator("h2")).to_have_text(EN["site.visitors_title"])
    expect(empty).to_be_visible()
    expect(empty).to_have_text(EN["site.visitors_none"])
    expect(table).to_be_hidden()
    expect(marker).to_be_hidden()

    # two exhibits, one with fewer than k visitors: "< 5" and dashes, and nothing of it in the totals
    publish(broker, NORTH, "north-hall")
    publish(broker, SOUTH, "south-hall")
    expect(rows).to_have_count(2)
    expect(empty).to_be_hidden()
    expect(card.locator("thead th")).to_have_text([EN[f"site.visitors_col.{c}"] for c in COLUMNS])
    expect(rows.locator(".row-name")).to_have_text(["north-hall", "south-hall"])  # sorted by exhibit id
    expect(north).to_have_text(["< 5", "–", "–", "–", "–", "2", "3"])
    expect(card.locator("tr.site-visitor[data-exhibit=north-hall]")).to_have_attribute("data-suppressed", "true")
    expect(south).to_have_text(["40", "25%", "12 s", "48 s", "0.70", "5", "13"])
    expect(totals).to_have_text([EN["site.visitors_total"], "40", "25%", "–", "–", "–", "5", "–"])
    assert report_totals([NORTH, SOUTH]) == ["40", "25%", "–", "–", "–", "5", "–"]
    expect(card.locator(".site-visitors-note")).to_have_text(EN["site.visitors_note"])
    expect(marker).to_be_hidden()  # no summary is simulated

    # a third exhibit, simulated: the marker names it; 18 of 80 stopped is 22.5 %, rounded half to even
    publish(broker, EAST, "east-wing")
    expect(rows).to_have_count(3)
    expect(rows.locator(".row-name")).to_have_text(["east-wing", "north-hall", "south-hall"])
    expect(east).to_have_text(["40", "20%", "20 s", "61 s", "1.25", "7", "0"])
    expect(totals).to_have_text([EN["site.visitors_total"], "80", "22%", "–", "–", "–", "7", "–"])
    assert report_totals([NORTH, SOUTH, EAST]) == ["80", "22%", "–", "–", "–", "7", "–"]
    expect(marker).to_be_visible()
    expect(marker).to_have_text(EN["site.visitors_simulated"].format(exhibits="east-wing"))

    # the same card in Chinese
    page.click("#app .lang-switch")
    expect(card.locator("h2")).to_have_text(ZH["site.visitors_title"])
    expect(card.locator("thead th")).to_have_text([ZH[f"site.visitors_col.{c}"] for c in COLUMNS])
    expect(north).to_have_text(["< 5", "–", "–", "–", "–", "2", "3"])
    expect(south).to_have_text(["40", "25%", "12 秒", "48 秒", "0.70", "5", "13"])
    expect(totals).to_have_text([ZH["site.visitors_total"], "80", "22%", "–", "–", "–", "7", "–"])
    expect(marker).to_have_text(ZH["site.visitors_simulated"].format(exhibits="east-wing"))
    expect(card.locator(".site-visitors-note")).to_have_text(ZH["site.visitors_note"])

    # the simulated exhibit's message cleared: its row, its figures and the marker go
    publish(broker, None, "east-wing")
    expect(rows).to_have_count(2)
    expect(totals).to_have_text([ZH["site.visitors_total"], "40", "25%", "–", "–", "–", "5", "–"])
    expect(marker).to_be_hidden()

    # every message cleared: the empty state, in Chinese
    publish(broker, None, "north-hall")
    publish(broker, None, "south-hall")
    expect(empty).to_have_text(ZH["site.visitors_none"])
    expect(table).to_be_hidden()
