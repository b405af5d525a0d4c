"""The console's Site page and its mode banners in a real Chromium: a show network of two exhibit processes
(a primary and a backup) on a real Mosquitto, and a node started in safe mode from its state folder. What the
operator sees (every node, this one highlighted, a backup's banner, safe mode's banner) and what the buttons
do (take over, GO together, leave safe mode) is checked against each node's own API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import Mosquitto
from tests.console_browser.conftest import TABLET, TEST_EXHIBIT, Api, ConsoleProcess, launch_console, sign_in
from tests.support.net import free_port

STATIC = Path(__file__).resolve().parents[2] / "content" / "console" / "static"
ZH = json.loads((STATIC / "i18n" / "zh.json").read_text(encoding="utf-8"))
EN = json.loads((STATIC / "i18n" / "en.json").read_text(encoding="utf-8"))


def wait_until(check: Any, timeout: float = 10.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} did not hold within {timeout} s")


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """A fresh tablet-sized browser context on a given console; the page must throw nothing."""
    contexts: list[Any] = []
    pages: list[Any] = []

    def opener(console: ConsoleProcess, locale: str = "en-US") -> Any:
        context = browser.new_context(viewport=TABLET, locale=locale, base_url=console.url)
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


# --- a show network: a primary and a backup ---------------------------------------------------------


@pytest.fixture(scope="module")
def network(
    broker: Mosquitto, accounts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ConsoleProcess]]:
    """Two nodes of the test exhibit on one Mosquitto: ``alpha`` (primary) drives, ``beta`` (backup) tracks."""
    folder = tmp_path_factory.mktemp("network")
    nodes: dict[str, ConsoleProcess] = {}
    try:
        for name, role in (("alpha", "primary"), ("beta", "backup")):
            nodes[name] = launch_console(
                str(TEST_EXHIBIT), broker.url, accounts, folder / f"{name}-audit.log",
                "--node", name, "--role", role, "--state-dir", str(folder / name),
            )  # fmt: skip
        apis = {name: Api(node.url) for name, node in nodes.items()}
        for api in apis.values():
            api.login("olivia")

        def both_heard() -> bool:  # each node has heard the other's announcement, and who drives
            for api in apis.values():
                site = {n["node"]: n for n in api.state()["site"]["nodes"]}
                if not {"alpha", "beta"} <= set(site) or "role" not in site["alpha"] or "role" not in site["beta"]:
                    return False
            return apis["beta"].state()["node"]["mode"] == "tracking"

        wait_until(both_heard, 20, "both nodes hearing each other")
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()


def test_the_site_page_lists_every_node_and_a_backup_says_it_tracks(
    open_page: Any, network: dict[str, ConsoleProcess]
) -> None:
    page = open_page(network["beta"])
    sign_in(page, "olivia")
    # on every page: this node is a backup, tracking alpha
    banner = page.locator("#tracking-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(EN["mode.tracking_banner"].format(holder="alpha"))
    expect(page.locator("#safe-banner")).to_be_hidden()
    page.click(".tab[data-tab=site]")
    rows = page.locator("tr.site-node")
    expect(rows).to_have_count(2)
    beta = page.locator("tr.site-node[data-node=beta]")
    alpha = page.locator("tr.site-node[data-node=alpha]")
    # this node is highlighted and named so; the other is not
    expect(beta).to_have_attribute("data-self", "true")
    expect(beta).to_contain_text(EN["site.this_node"])
    expect(alpha).to_have_attribute("data-self", "false")
    assert "this-node" in (beta.get_attribute("class") or "")
    expect(beta).to_have_attribute("data-mode", "tracking")
    expect(alpha).to_have_attribute("data-mode", "running")
    expect(beta).to_contain_text(EN["site.role.backup"])
    expect(alpha).to_contain_text(EN["site.role.primary"])
    expect(alpha).to_contain_text(EN["site.driving"])
    expect(beta).to_contain_text(EN["site.not_driving"])
    expect(alpha).to_contain_text("epoch 1")
    expect(alpha).to_contain_text("console-test")
    expect(alpha).to_contain_text(EN["site.online"])
    expect(alpha.locator("td").nth(6)).to_contain_text(" ms")  # the clock offset to site time
    state = Api(network["beta"].url)
    state.login("olivia")
    announced = {n["node"]: n for n in state.state()["site"]["nodes"]}
    expect(alpha).to_contain_text(announced["alpha"]["file_hash"][:8])
    expect(alpha).to_contain_text(announced["alpha"]["version"])
    # the same page in Chinese
    page.click("#app .lang-switch")
    expect(page.locator(".tab[data-tab=site]")).to_have_text(ZH["tab.site"])
    expect(beta).to_contain_text(ZH["site.this_node"])
    expect(beta).to_contain_text(ZH["site.mode.tracking"])
    expect(page.locator(".site-table th").first).to_have_text(ZH["site.col.node"])
    expect(banner).to_contain_text(ZH["mode.tracking_banner"].format(holder="alpha"))
    # a backup sends no synced GO of its own: the node that drives does
    expect(page.locator("button.go-together")).to_be_disabled()


def test_a_backup_takes_over_after_confirming_and_then_goes_together_with_the_other_node(
    open_page: Any, network: dict[str, ConsoleProcess]
) -> None:
    apis = {name: Api(node.url) for name, node in network.items()}
    for api in apis.values():
        api.login("olivia")
    page = open_page(network["beta"])
    sign_in(page, "olivia")
    page.click(".tab[data-tab=site]")
    takeover = page.locator("[data-cmd='site/takeover']")
    expect(takeover).to_be_visible()
    expect(takeover).to_have_text(EN["site.takeover"])
    # cancelling changes nothing
    takeover.click()
    expect(page.locator("#confirm")).to_be_visible()
    expect(page.locator("#confirm .confirm-text")).to_contain_text("alpha")
    page.click("#confirm [data-answer=no]")
    expect(page.locator("#confirm")).to_be_hidden()
    assert apis["beta"].state()["node"]["driving"] is False
    # confirmed: beta drives with a new epoch, alpha yields and tracks it
    takeover.click()
    page.click("#confirm [data-answer=yes]")
    expect(page.locator("#tracking-banner")).to_be_hidden()
    expect(takeover).to_be_hidden()
    node = apis["beta"].state()["node"]
    assert (node["mode"], node["driving"], node["epoch"]) == ("running", True, 2)
    wait_until(lambda: apis["alpha"].state()["node"]["mode"] == "tracking", 10, "alpha tracking beta")
    expect(page.locator("tr.site-node[data-node=alpha]")).to_have_attribute("data-mode", "tracking")
    expect(page.locator("tr.site-node[data-node=beta]")).to_contain_text("epoch 2")
    # alpha's own console now says it tracks beta
    other = open_page(network["alpha"])
    sign_in(other, "olivia")
    expect(other.locator("#tracking-banner")).to_contain_text(EN["mode.tracking_banner"].format(holder="beta"))

    # GO together: the playhead on cue 1 (set where the devices are driven: a tracking node refuses it)
    apis["beta"].command("playhead", {"cue": "1"})
    page.click("button.go-together")  # no node chosen yet: it says so and sends nothing
    expect(page.locator(".go-card .hint")).to_have_text(EN["site.go_pick"])
    page.check(".go-node[data-node=alpha] input")
    page.check(".go-node[data-node=beta] input")
    page.select_option("select[name=go-cue-list]", "main")
    page.fill("input[name=go-lead]", "0.5")
    page.click("button.go-together")
    expect(page.locator(".go-card .hint")).to_have_attribute("data-note", "site.go_sent")
    expect(page.locator(".go-card .hint")).to_contain_text("alpha, beta")
    for name, api in apis.items():
        wait_until(lambda api=api: api.state()["cuelist/main"]["last"] == "1", 10, f"cue 1 fired on {name}")


# --- a node started in safe mode ------------------------------------------------------------------


@pytest.fixture
def safe_node(accounts: Path, tmp_path: Path) -> Iterator[ConsoleProcess]:
    """The test exhibit started from a state folder that says safe mode (as after repeated crashes)."""
    state = tmp_path / "state"
    state.mkdir()
    record = {"version": 1, "running": False, "crashes": [], "safe_mode": True, "show": {}}
    (state / "show-state.json").write_text(json.dumps(record), encoding="utf-8")
    node = launch_console(
        str(TEST_EXHIBIT), None, accounts, tmp_path / "audit.log",
        "--embedded-port", str(free_port()), "--state-dir", str(state),
    )  # fmt: skip
    yield node
    node.stop()


def test_safe_mode_shows_a_banner_on_every_page_and_leaving_it_asks_first(
    open_page: Any, safe_node: ConsoleProcess
) -> None:
    api = Api(safe_node.url)
    api.login("olivia")
    assert api.state()["node"]["mode"] == "safe-mode"
    page = open_page(safe_node)
    sign_in(page, "olivia")
    banner = page.locator("#safe-banner")
    for tab in ("show", "safety", "site", "log"):
        page.click(f".tab[data-tab={tab}]")
        expect(banner).to_be_visible()
    expect(banner).to_contain_text(EN["mode.safe_banner"])
    expect(page.locator("#tracking-banner")).to_be_hidden()
    # the Site page lists this node alone, in safe mode
    row = page.locator("tr.site-node[data-self=true]")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-mode", "safe-mode")
    expect(page.locator("tr.site-node")).to_have_count(1)
    # in Chinese
    page.click("#app .lang-switch")
    expect(banner).to_contain_text(ZH["mode.safe_banner"])
    leave = banner.locator("[data-cmd='safe-mode/leave']")
    expect(leave).to_have_text(ZH["mode.leave_safe"])
    page.click("#app .lang-switch")
    expect(leave).to_have_text(EN["mode.leave_safe"])
    # cancel: still in safe mode
    leave.click()
    expect(page.locator("#confirm")).to_be_visible()
    expect(page.locator("#confirm .confirm-title")).to_have_text(EN["mode.confirm_leave_title"])
    page.click("#confirm [data-answer=no]")
    assert api.state()["node"]["mode"] == "safe-mode"
    expect(banner).to_be_visible()
    # confirmed: the show's logic runs, the banner goes
    leave.click()
    page.click("#confirm [data-answer=yes]")
    expect(banner).to_be_hidden()
    state = api.state()
    assert state["node"]["mode"] == "running" and state["show"]["running"] is True
    page.click(".tab[data-tab=site]")
    expect(page.locator("tr.site-node[data-self=true]")).to_have_attribute("data-mode", "running")


def test_a_viewer_sees_the_safe_mode_banner_but_no_button(open_page: Any, safe_node: ConsoleProcess) -> None:
    page = open_page(safe_node)
    sign_in(page, "victor")
    expect(page.locator("#safe-banner")).to_be_visible()
    page.click(".tab[data-tab=site]")
    expect(page.locator("tr.site-node")).to_have_count(1)
    assert page.locator("[data-cmd], button.go-together").count() == 0
