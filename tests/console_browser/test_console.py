"""The operator console end to end: a real Chromium, the exhibit as its own process, a real Mosquitto.
What an operator does on the tablet must reach the devices on the broker; what a viewer, a stranger
or another web page in the same browser does must change nothing."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import Mosquitto
from tests.console_browser.conftest import (
    DEVICES,
    TABLET,
    TEST_EXHIBIT,
    USERS,
    Api,
    ConsoleProcess,
    MqttLines,
    clean_slate,
    launch_console,
    sign_in,
)
from tests.support.net import free_port

STATIC = Path(__file__).resolve().parents[2] / "content" / "console" / "static"
ZH = json.loads((STATIC / "i18n" / "zh.json").read_text(encoding="utf-8"))
EN = json.loads((STATIC / "i18n" / "en.json").read_text(encoding="utf-8"))


def payload(line: str) -> dict[str, Any]:
    return json.loads(line.partition(" ")[2])


def on(topic: str, check: Any) -> Any:
    """A predicate for `mosquitto_sub -v` lines: this topic, and a JSON payload that passes ``check``."""
    return lambda line: line.partition(" ")[0] == topic and check(payload(line))


def in_page(page: Any, script: str, arg: Any = None) -> Any:
    return page.evaluate(script, arg)


def has(word: str) -> re.Pattern[str]:
    """A class list holding ``word``."""
    return re.compile(rf"(^|\s){word}(\s|$)")


POST_FROM_PAGE = """async ([name, csrf]) => {
  const headers = {"Content-Type": "application/json"};
  if (csrf !== null) headers["X-CSRF-Token"] = csrf;
  const reply = await fetch(`/api/v1/${name}`, {method: "POST", headers, body: "{}"});
  return [reply.status, await reply.json()];
}"""

SESSION_CSRF = "async () => (await (await fetch('/api/v1/session')).json()).csrf"

WS_COMMAND_FROM_PAGE = """([name, csrf]) => new Promise((resolve) => {
  const ws = new WebSocket(`ws://${location.host}/api/v1/ws`);
  ws.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.topic === "hello") ws.send(JSON.stringify({op: "command", id: 1, name, params: {}, csrf}));
    if (event.topic === "reply") { ws.close(); resolve(event.data); }
  };
  ws.onclose = () => resolve(null);
})"""


# --- operating the show -----------------------------------------------------------------------------


def test_an_operator_signs_in_presses_go_and_the_cue_reaches_the_broker(
    page: Any, operator_api: Api, devices: MqttLines
) -> None:
    clean_slate(operator_api, devices)
    sign_in(page, "olivia")
    expect(page.locator(".cue[data-cue='1']")).to_have_class(has("standby"))
    mark = devices.mark()
    page.click("button.go")
    # the playhead moves on the page, and the cue's command arrives at the device on the broker
    expect(page.locator(".cue[data-cue='2']")).to_have_class(has("standby"))
    expect(page.locator(".cue[data-cue='1']")).to_have_class(has("last"))
    devices.wait_for(on(f"{DEVICES}/lamp/set", lambda p: p == {"level": 100}), since=mark)
    state = operator_api.state()["cuelist/main"]
    assert (state["standby"], state["last"]) == ("2", "1")
    assert page.locator("button.go").bounding_box()["height"] >= 64
    assert page.locator("button.back").bounding_box()["height"] >= 64


def test_tapping_a_cue_puts_the_playhead_on_it_and_back_steps_back(page: Any, operator_api: Api) -> None:
    operator_api.command("playhead", {"cue": "1"})
    sign_in(page, "olivia")
    page.click(".cue[data-cue='3'] button")
    expect(page.locator(".cue[data-cue='3']")).to_have_class(has("standby"))
    assert operator_api.state()["cuelist/main"]["standby"] == "3"
    page.click("button.back")
    expect(page.locator(".cue[data-cue='2']")).to_have_class(has("standby"))
    assert operator_api.state()["cuelist/main"]["standby"] == "2"


def test_panic_asks_nothing_and_every_device_reaches_its_safe_state(
    page: Any, operator_api: Api, devices: MqttLines
) -> None:
    clean_slate(operator_api, devices)
    operator_api.command("playhead", {"cue": "2"})
    sign_in(page, "olivia")
    mark = devices.mark()
    page.click("button.go")  # fog on, lamp at 200
    expect(page.locator(".cue[data-cue='3']")).to_have_class(has("standby"))
    page.click("button.go")  # the turntable is armed and turns
    devices.wait_for(on(f"{DEVICES}/turntable/set", lambda p: p.get("speed") == 5.0), since=mark)
    mark = devices.mark()
    page.click("#panic-slot button.panic")
    # no question first: the PANIC is on the broker
    for device, safe in (
        ("lamp", {"level": 0}),
        ("fog", {"on": False}),
        ("turntable", {"speed": 0.0, "enabled": False}),
    ):
        devices.wait_for(on(f"{DEVICES}/{device}/set", lambda p, safe=safe: p.items() >= safe.items()), since=mark)
    assert not in_page(page, "document.getElementById('confirm').open")
    expect(page.locator("#panic-banner")).to_be_visible()
    assert operator_api.state()["show"]["panic"] is True
    # leaving PANIC asks first
    page.click("#panic-banner button.reset")
    expect(page.locator("#confirm")).to_be_visible()
    page.click("#confirm [data-answer=yes]")
    expect(page.locator("#panic-banner")).to_be_hidden()
    assert operator_api.state()["show"]["panic"] is False


def test_resetting_the_estop_asks_for_confirmation_and_cancel_keeps_it_latched(page: Any, operator_api: Api) -> None:
    if operator_api.state()["safety"]["estop"]:
        operator_api.command("estop/reset")
    sign_in(page, "olivia")
    page.click(".tab[data-tab=safety]")
    page.click("[data-cmd=estop]")  # latching never asks
    expect(page.locator(".estop-state")).to_have_attribute("data-latched", "true")
    expect(page.locator(".estop-by")).to_contain_text("olivia")
    expect(page.locator("#chips [data-chip=estop]")).to_be_visible()
    page.click("[data-cmd='estop/reset']")
    expect(page.locator("#confirm")).to_be_visible()
    page.click("#confirm [data-answer=no]")
    expect(page.locator("#confirm")).to_be_hidden()
    assert operator_api.state()["safety"]["estop"] is True
    page.click("[data-cmd='estop/reset']")
    page.click("#confirm [data-answer=yes]")
    expect(page.locator(".estop-state")).to_have_attribute("data-latched", "false")
    assert operator_api.state()["safety"]["estop"] is False


def test_an_operator_sets_a_state_and_a_variable_and_a_refusal_shows_its_sentence(page: Any, operator_api: Api) -> None:
    sign_in(page, "olivia")
    page.click(".machine[data-machine=mode] button[data-state=performance]")
    expect(page.locator(".machine[data-machine=mode] [data-state=performance]")).to_have_class(has("current"))
    assert operator_api.state()["state/mode"]["state"] == "performance"
    page.click(".machine[data-machine=mode] button[data-state=idle]")
    page.fill("input[name=var-visits]", "7")
    page.click(".variable[data-variable=visits] button")
    expect(page.locator(".variable[data-variable=visits] .row-value")).to_have_text("7")
    assert operator_api.state()["var/visits"]["value"] == 7
    page.fill("input[name=var-visits]", "many")
    page.click(".variable[data-variable=visits] button")
    # the server's own sentence (in both languages) in a toast, and the variable unchanged
    status, refusal = operator_api.request(
        "POST", "/api/v1/var", {"name": "visits", "value": "many"}, {"X-CSRF-Token": operator_api.csrf or ""}
    )
    assert status == 400 and " / " in refusal["error"]
    expect(page.locator(".toast.error")).to_contain_text(refusal["error"])
    assert operator_api.state()["var/visits"]["value"] == 7


# --- who may do what -------------------------------------------------------------------------------


def test_a_viewer_sees_no_command_button_and_the_api_refuses_its_go(page: Any, operator_api: Api) -> None:
    operator_api.command("playhead", {"cue": "1"})
    sign_in(page, "victor")
    expect(page.locator(".cue[data-cue='1']")).to_have_class(has("standby"))
    for tab in ("show", "safety", "health", "signals", "log"):
        page.click(f".tab[data-tab={tab}]")
        # not disabled: not there at all
        assert page.locator("[data-cmd], button.go, button.back, button.panic, button.reset").count() == 0, tab
    csrf = in_page(page, SESSION_CSRF)
    status, body = in_page(page, POST_FROM_PAGE, ["go", csrf])
    assert (status, body["code"]) == (403, "forbidden")
    reply = in_page(page, WS_COMMAND_FROM_PAGE, ["panic", csrf])
    assert reply["status"] == "error" and reply["code"] == "forbidden"
    state = operator_api.state()
    assert state["cuelist/main"]["standby"] == "1"
    assert state["show"]["panic"] is False


def test_without_a_session_or_with_a_forged_csrf_token_nothing_changes(
    page: Any, console: ConsoleProcess, operator_api: Api
) -> None:
    operator_api.command("playhead", {"cue": "1"})
    stranger = Api(console.url)
    assert stranger.request("POST", "/api/v1/go", {})[0] == 401
    assert stranger.request("POST", "/api/v1/panic", {}, {"Cookie": "exhibit_session=made-up"})[0] == 401
    assert stranger.request("GET", "/api/v1/state")[0] == 401
    sign_in(page, "olivia")  # a real session in this browser: only its CSRF token is wrong
    assert in_page(page, POST_FROM_PAGE, ["go", "forged"])[0] == 403
    assert in_page(page, POST_FROM_PAGE, ["go", None])[0] == 403
    reply = in_page(page, WS_COMMAND_FROM_PAGE, ["go", "forged"])
    assert reply["status"] == "error" and reply["code"] == "forbidden"
    assert operator_api.state()["cuelist/main"]["standby"] == "1"


@pytest.fixture
def other_site() -> Iterator[str]:
    """A web page on another port of this computer (another origin, the same site), as a rogue page
    the operator opened in another tab would be."""
    folder = Path(__file__).resolve().parent / "pages"
    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(5)


def test_another_web_page_in_the_same_browser_cannot_press_go(
    page: Any, console: ConsoleProcess, operator_api: Api, other_site: str
) -> None:
    operator_api.command("playhead", {"cue": "1"})
    sign_in(page, "olivia")  # the operator's session cookie is in this browser
    rogue = page.context.new_page()
    rogue.goto(f"{other_site}/rogue.html")
    outcome = rogue.evaluate("target => pressGo(target)", console.url)
    assert outcome["websocket"] == "refused"
    state = operator_api.state()
    assert state["cuelist/main"]["standby"] == "1"
    assert state["show"]["panic"] is False
    assert state["safety"]["estop"] is False
    entries = operator_api.request("GET", "/api/v1/audit?limit=50")[1]["entries"]
    assert not any(entry.get("from") and entry["action"] in ("go", "panic") and entry["t"] > outcome["t0"]
                   for entry in entries)  # fmt: skip


# --- languages, health, signals, log and audit ---------------------------------------------------------


def test_the_interface_switches_to_chinese_with_its_own_font_and_remembers_it(page: Any) -> None:
    sign_in(page, "olivia")
    assert in_page(page, "document.documentElement.lang") == "en"
    page.click("#app .lang-switch")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    for tab in ("show", "safety", "health", "site", "analytics", "signals", "visitors", "log", "audit"):
        expect(page.locator(f".tab[data-tab={tab}]")).to_have_text(ZH[f"tab.{tab}"])
    expect(page.locator("button.go")).to_have_text(ZH["btn.go"])
    expect(page.locator("#panic-slot button.panic")).to_have_text(ZH["btn.panic"])
    expect(page.locator("#logout")).to_have_text(ZH["header.logout"])
    # the Chinese glyphs come from the exhibit's own font, not the tablet's
    in_page(page, "document.fonts.ready")
    assert in_page(page, "document.fonts.check('20px \"Exhibit Sans\"', '紧急停止')")
    assert "loaded" in in_page(page, "[...document.fonts].filter(f => f.family.includes('Exhibit')).map(f => f.status)")
    page.reload()
    expect(page.locator(".tab[data-tab=show]")).to_have_text(ZH["tab.show"])
    assert in_page(page, "document.documentElement.lang") == "zh-CN"
    page.click("#app .lang-switch")
    expect(page.locator(".tab[data-tab=show]")).to_have_text(EN["tab.show"])


def test_a_chinese_browser_gets_chinese_first(browser: Any, console: ConsoleProcess) -> None:
    context = browser.new_context(viewport=TABLET, locale="zh-CN", base_url=console.url)
    try:
        tab = context.new_page()
        tab.goto("/")
        expect(tab.locator("#login h1")).to_have_text(ZH["login.heading"])
        tab.fill("input[name=user]", "olivia")
        tab.fill("input[name=password]", "not the password")
        tab.click("button[type=submit]")
        expect(tab.locator(".login-error")).to_have_text(ZH["login.wrong"])
    finally:
        context.close()


def test_health_lists_every_component_and_the_broker_link(page: Any, operator_api: Api) -> None:
    components = {topic[7:]: data for topic, data in operator_api.state().items() if topic.startswith("health/")}
    assert "mqtt" in components and "console" in components
    sign_in(page, "olivia")
    page.click(".tab[data-tab=health]")
    for name, data in components.items():
        card = page.locator(f".health-card[data-component='{name}']")
        shown = "unused" if data.get("in_use") is False else data["status"]  # a service this run does without
        expect(card).to_have_attribute("data-status", shown)
    assert components["broker"]["in_use"] is False  # the test's Mosquitto, not the embedded broker
    expect(page.locator(".chip.warn")).to_have_count(0)  # and it is not counted as a problem
    mqtt = page.locator(".health-card[data-component=mqtt]")
    expect(mqtt.locator(".status")).to_have_text(EN["health.status.ok"])
    expect(mqtt.locator(".badge")).to_have_text(EN["health.kind.service"])
    expect(page.locator(".health-card[data-component=controls] .seen")).to_contain_text("Last message")


def test_a_chosen_signal_is_plotted_live_and_stays_chosen(page: Any) -> None:
    sign_in(page, "olivia")
    page.click(".tab[data-tab=signals]")
    page.fill(".signal-picker input.search", "fader")
    page.check("input[data-signal='controls.fader']")
    plot = page.locator(".plot[data-signal='controls.fader']")
    first = plot.locator(".plot-value").text_content()
    expect(plot.locator(".plot-value")).not_to_have_text(first or "")  # it moves: the simulated fader
    page.wait_for_function(
        """() => {
          const canvas = document.querySelector(".plot[data-signal='controls.fader'] canvas");
          const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
          let lit = 0;
          for (let i = 0; i < pixels.length; i += 4) if (pixels[i] > 200 && pixels[i + 1] > 120) lit++;
          return lit > 50;  // the orange line
        }"""
    )
    page.reload()
    page.click(".tab[data-tab=signals]")
    expect(page.locator(".plot[data-signal='controls.fader']")).to_be_visible()


def test_the_log_filters_by_level_and_the_audit_shows_who_pressed_go(
    page: Any, operator_api: Api, devices: MqttLines
) -> None:
    operator_api.command("playhead", {"cue": "3"})
    sign_in(page, "olivia")
    page.click("button.go")
    expect(page.locator(".cue[data-cue='4']")).to_have_class(has("standby"))
    page.click(".tab[data-tab=audit]")
    row = page.locator("tr[data-action=go]").first
    expect(row).to_contain_text("olivia")
    expect(row).to_contain_text(EN["audit.ok"])
    page.click(".tab[data-tab=log]")
    cue_line = page.locator(".log-line", has_text="cue 3")
    expect(cue_line.first).to_be_visible()
    page.select_option("select.log-level", "warning")
    expect(cue_line).to_have_count(0)
    page.select_option("select.log-level", "")
    page.fill(".log-tools input.search", "cue 3")
    expect(cue_line.first).to_be_visible()
    assert page.locator(".log-line").count() == cue_line.count()


# --- the flagship's visitors, and a lost connection ------------------------------------------------------


@pytest.fixture(scope="module")
def flagship(accounts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleProcess]:
    """The flagship exhibit (simulated visitors from its recording) on its embedded broker."""
    folder = tmp_path_factory.mktemp("flagship")
    started = launch_console(
        "canal-lanterns", None, accounts, folder / "audit.log", "--embedded-port", str(free_port())
    )
    yield started
    started.stop()


def test_visitors_are_drawn_as_boxes_without_landmarks(browser: Any, flagship: ConsoleProcess) -> None:
    context = browser.new_context(viewport=TABLET, locale="en-US", base_url=flagship.url)
    context.set_default_timeout(15_000)
    try:
        tab = context.new_page()
        frames: list[str] = []  # what the page's WebSocket received
        tab.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
        sign_in(tab, "olivia")
        tab.click(".tab[data-tab=visitors]")
        tab.wait_for_function("() => Number(document.querySelector('.big-number').dataset.count) > 0")
        expect(tab.locator(".zone[data-zone=bridge]")).to_be_visible()
        tab.wait_for_function(
            """() => {
              const canvas = document.querySelector("canvas.visitor-map");
              const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
              let coloured = 0;  // a visitor's box is a saturated colour; the background and text are not
              for (let i = 0; i < pixels.length; i += 4) {
                const [r, g, b] = [pixels[i], pixels[i + 1], pixels[i + 2]];
                if (Math.max(r, g, b) - Math.min(r, g, b) > 80) coloured++;
              }
              return coloured > 200;
            }"""
        )
        assert tab.locator("img, video").count() == 0  # never a camera image
        boxes = [frame for frame in frames if '"signal/body.visitors"' in frame and '"box"' in frame]
        assert boxes and not any("landmarks" in frame for frame in frames), frames[-3:]
    finally:
        context.close()


def test_a_lost_connection_shows_a_banner_and_never_reloads_the_page(
    browser: Any, accounts: Path, tmp_path: Path
) -> None:
    port = str(free_port())
    embedded = str(free_port())
    extra = ("--embedded-port", embedded, "--console-port", port)
    first = launch_console(str(TEST_EXHIBIT), None, accounts, tmp_path / "audit.log", *extra)
    context = browser.new_context(viewport=TABLET, locale="en-US", base_url=first.url)
    context.set_default_timeout(10_000)
    try:
        tab = context.new_page()
        sign_in(tab, "olivia")
        in_page(tab, "window.stillTheSamePage = true")
        first.stop()
        expect(tab.locator("#conn-banner")).to_be_visible()
        expect(tab.locator("#conn-banner")).to_contain_text(EN["conn.lost"])
        expect(tab.locator("#conn-dot")).not_to_have_class(has("online"))
        # the exhibit comes back (its sessions did not survive the restart): sign in again, same page
        second = launch_console(str(TEST_EXHIBIT), None, accounts, tmp_path / "audit2.log", *extra)
        try:
            expect(tab.locator("#login")).to_be_visible(timeout=20_000)
            expect(tab.locator(".login-error")).to_have_text(EN["login.expired"])
            assert in_page(tab, "window.stillTheSamePage") is True
            tab.fill("input[name=user]", "olivia")
            tab.fill("input[name=password]", USERS["olivia"][1])
            tab.click("button[type=submit]")
            expect(tab.locator("#conn-dot")).to_have_class(has("online"))
            assert in_page(tab, "window.stillTheSamePage") is True
        finally:
            second.stop()
    finally:
        context.close()
        first.stop()


def test_the_broker_going_away_shows_on_the_health_tab_and_its_return_too(
    page: Any, broker: Mosquitto, devices: MqttLines
) -> None:
    """Last in the module: it stops the shared Mosquitto (and so the device subscriber)."""
    sign_in(page, "olivia")
    page.click(".tab[data-tab=health]")
    link = page.locator(".health-card[data-component=mqtt]")
    expect(link).to_have_attribute("data-status", "ok")
    broker.stop()
    try:
        expect(link).not_to_have_attribute("data-status", "ok")
        expect(link.locator(".reason")).to_be_visible()
        expect(page.locator("#chips .chip.warn")).to_be_visible()  # seen from every tab
    finally:
        broker.start()
    expect(link).to_have_attribute("data-status", "ok", timeout=30_000)
