"""The audience page on phones (issue 19), in Chromium's mobile emulation (a Pixel-sized touch screen), in
Chinese and in English: a tap, a vote and a slider on the page reach the crowd's signals and, through the
exhibit's mappings and rules, a device on a real Mosquitto. The exhibit runs as `exhibit run` runs it."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Mosquitto
from tests.console_browser.conftest import (
    CHROMIUM_ARGS,
    Api,
    MqttLines,
    chromium_path,
    latest,
    launch_console,
    sign_in,
    watched_tab,
)
from tests.support.certs import self_signed
from tests.support.net import free_port

EXHIBIT = """\
format_version: 1
id: crowd-page
title: {en: Crowd page, zh: 观众页面}
sensors:
  crowd:
    kind: audience
    host: 127.0.0.1
    port: {port}
    offers:
      lantern: {type: tap, label: {zh: 放灯, en: Release a lantern}}
      season:
        type: vote
        open: true
        label: {zh: 下一个季节, en: The next season}
        choices: {spring: {zh: 春, en: Spring}, autumn: {zh: 秋, en: Autumn}}
      wind: {type: slider, label: {zh: 风, en: Wind}, range: [0, 1]}
      shake: {type: motion, label: {zh: 摇动手机, en: Shake your phone}}
devices:
  lamp:
    kind: mqtt
    properties:
      level: {type: float, range: [0, 100], safe: 0}
      fan: {type: float, range: [0, 100], safe: 0}
      warm: {type: bool, safe: false}
      wave: {type: float, range: [0, 100], safe: 0}
mappings:
  - {from: crowd.lantern.taps_per_s, to: lamp.level, input: [0, 5]}
  - {from: crowd.wind.mean, to: lamp.fan, input: [0, 1]}
  - {from: crowd.shake.energy, to: lamp.wave, input: [0, 1]}
rules:
  - when: crowd.season.votes >= 2
    do: [{set: crowd.season.open, value: false}, {set: crowd.season.results, value: true}]
  - when: crowd.season.leader == "autumn"
    do: [{set: lamp.warm, value: true}]
"""
TOPIC = "exhibit/crowd-page/devices/lamp/set"
PHONE = {
    "viewport": {"width": 393, "height": 851},
    "device_scale_factor": 2.75,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
}


def run_exhibit(folder: Path, text: str, broker: Mosquitto, url: str) -> subprocess.Popen[str]:
    """``text`` as `exhibit run` runs it, once its audience page answers at ``url`` (over HTTPS without checking
    the certificate: the browser checks it)."""
    (folder / "exhibit.yaml").write_text(text, encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "launcher.py"), "run", str(folder / "exhibit.yaml"), "--headless", "--no-render",
         "--no-console", "--no-reload", "--broker", broker.url, "--state-dir", str(folder / "state")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    unchecked = ssl.create_default_context()
    unchecked.check_hostname, unchecked.verify_mode = False, ssl.CERT_NONE
    deadline = time.monotonic() + 40
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2, context=unchecked):
                return process
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "the audience page never came up"
            time.sleep(0.2)


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(20)


@pytest.fixture(scope="module")
def crowd_page(
    broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, MqttLines, subprocess.Popen[str]]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    lines = MqttLines(broker.port, TOPIC)
    process = run_exhibit(tmp_path_factory.mktemp("crowd"), EXHIBIT.replace("{port}", str(port)), broker, url)
    yield url, lines, process
    stop(process)
    lines.close()


def phone(browser: Any, locale: str) -> Any:
    context = browser.new_context(locale=locale, **PHONE)
    return context.new_page()


def wait_lamp(lines: MqttLines, check: Any, timeout: float = 10.0, since: int = 0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in reversed(lines.lines[since:]):
            payload = json.loads(line.partition(" ")[2])
            if check(payload):
                return payload
        time.sleep(0.05)
    raise AssertionError(f"the lamp never got there; last: {latest(lines, TOPIC)}")


def test_phones_in_chinese_and_english_tap_vote_and_slide(browser: Any, crowd_page: tuple[str, MqttLines, Any]):
    url, lamp, _ = crowd_page
    chinese, english = phone(browser, "zh-CN"), phone(browser, "en-GB")
    for page in (chinese, english):
        page.goto(url)
        page.wait_for_selector("button.tap[data-offer=lantern]")
    assert chinese.locator("html").get_attribute("lang", timeout=5000).startswith("zh")
    assert "放灯" in chinese.content() and "春" in chinese.content()
    assert "Release a lantern" in english.content() and "Spring" in english.content()
    assert english.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # nothing off the side

    pad = chinese.locator("button.tap[data-offer=lantern]")
    for _ in range(6):
        pad.tap()
        chinese.wait_for_timeout(60)
    wait_lamp(lamp, lambda p: p.get("level", 0) > 0)

    slider = english.locator("input[type=range][data-offer=wind]")
    slider.fill("0.8")  # a touch drag ends in the same input events
    slider.dispatch_event("change")
    wait_lamp(lamp, lambda p: p.get("fan", 0) >= 50)

    chinese.locator("button.choice[data-offer=season][data-choice=autumn]").tap()
    english.locator("button.choice[data-offer=season][data-choice=autumn]").tap()
    wait_lamp(lamp, lambda p: p.get("warm") is True)
    result = english.locator(".result[data-offer=season][data-choice=autumn]")
    result.wait_for(timeout=5000)
    assert "100" in result.inner_text()  # both votes: 100 %
    spring = chinese.locator("button.choice[data-offer=season][data-choice=spring]")
    assert spring.is_disabled()  # closed by the rule, and this phone has voted

    english.locator("button[data-offer=shake]").tap()  # Chromium asks no permission; iOS Safari would
    shaking = "() => window.dispatchEvent(new DeviceMotionEvent('devicemotion', {acceleration: {x: 14, y: 0, z: 0}}))"
    for _ in range(20):  # a phone shaken for a second: |a| = 14 m/s², energy 0.7
        english.evaluate(shaking)
        english.wait_for_timeout(50)
    wait_lamp(lamp, lambda p: p.get("wave", 0) >= 50)
    for page in (chinese, english):
        page.context.close()


def spawned_children(pid: int) -> list[int]:
    """The processes ``pid`` spawned with multiprocessing (the audience server among them)."""
    tasks = Path(f"/proc/{pid}/task").iterdir()  # any thread's: they are started from the executor's threads
    children = [c for task in tasks for c in (task / "children").read_text().split()]
    return [int(c) for c in children if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")]


def test_a_phone_reconnects_by_itself_when_the_audience_server_comes_back(
    browser: Any, crowd_page: tuple[str, MqttLines, subprocess.Popen[str]]
):
    url, lamp, exhibit = crowd_page
    page = phone(browser, "en-GB")
    page.goto(url)
    pad = page.locator("button.tap[data-offer=lantern]")
    pad.wait_for()
    page.wait_for_timeout(1500)  # the earlier test's taps have left the last second
    spawned = spawned_children(exhibit.pid)
    assert spawned, "the exhibit has no audience server process"
    for pid in spawned:
        os.kill(pid, signal.SIGKILL)  # the server dies (a crash, the OOM killer)
    page.locator("#reconnecting").wait_for(state="visible", timeout=10000)
    page.locator("#reconnecting").wait_for(state="hidden", timeout=30000)  # started again; the page is back
    since = lamp.mark()
    for _ in range(5):
        pad.tap()
        page.wait_for_timeout(80)
    wait_lamp(lamp, lambda p: p.get("level", 0) > 0, since=since)
    page.context.close()


def test_the_console_shows_the_phones_and_an_operator_pauses_the_audience(
    browser: Any, broker: Mosquitto, accounts: Path, tmp_path: Path
):
    """The simulated crowd (`--simulate`) on the console's Show page: its phones and votes live, and the pause
    switch, whose use is in the audit log."""
    (tmp_path / "exhibit.yaml").write_text(EXHIBIT.replace("{port}", str(free_port())), encoding="utf-8")
    audit_log = tmp_path / "audit.log"
    console = launch_console(str(tmp_path / "exhibit.yaml"), broker.url, accounts, audit_log)
    try:
        with watched_tab(browser, console.url) as tab:
            sign_in(tab, "olivia")
            tab.click(".tab[data-tab=show]")
            row = tab.locator(".row.audience[data-audience=crowd]")
            row.wait_for(timeout=10000)
            tab.wait_for_function(
                "() => parseInt(document.querySelector('.audience-count')?.textContent || '0') >= 3", timeout=20000
            )
            assert "season" in row.locator(".audience-votes").inner_text()
            row.locator("button[data-cmd='audience/pause']").click()
            row.locator(".badge.warn:not([hidden])").wait_for(timeout=5000)
            api = Api(console.url)
            api.login("olivia")
            assert api.state()["audience/crowd"]["paused"] is True
            row.locator("button[data-cmd='audience/pause']").click()
            row.locator(".badge.warn").wait_for(state="hidden", timeout=5000)
    finally:
        console.stop()
    audited = [json.loads(line) for line in audit_log.read_text(encoding="utf-8").splitlines()]
    pauses = [entry for entry in audited if entry.get("action") == "audience/pause"]
    assert [entry["params"]["paused"] for entry in pauses] == [True, False], pauses


def spki_hash(cert: Path) -> str:
    """The base64 SHA-256 of the certificate's public key, as Chromium's ``--ignore-certificate-errors-spki-list``
    takes it (the browser then trusts that certificate as it would one from a CA)."""
    public = subprocess.run(["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"], check=True,
                            capture_output=True).stdout  # fmt: skip
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=public, check=True,
                         capture_output=True).stdout  # fmt: skip
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def test_motion_needs_the_page_over_https_and_works_there(
    browser: Any, broker: Mosquitto, crowd_page: tuple[str, MqttLines, Any], tmp_path: Path
):
    """A phone reaches the exhibit by a name (`exhibit.test`, as on a venue's Wi-Fi), not by loopback, which browsers
    count as secure: over plain HTTP the page tells it that motion needs a secure page; over HTTPS (the audience
    sensor's `tls:`, a certificate the browser trusts) motion and taps reach the lamp through `wss://`."""
    http_url, _, _ = crowd_page
    port = free_port()
    cert, _ = self_signed(tmp_path, "page", names=("exhibit.test",))
    text = EXHIBIT.replace("{port}", str(port)).replace("    offers:\n", "    tls: {cert: page.crt, key: page.key}\n"
                                                        "    offers:\n", 1)  # fmt: skip
    secure_url = f"https://exhibit.test:{port}/"
    args = [
        "--host-resolver-rules=MAP exhibit.test 127.0.0.1",
        f"--ignore-certificate-errors-spki-list={spki_hash(cert)}",
    ]
    named = browser.browser_type.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS + args)
    lamp = MqttLines(broker.port, TOPIC)
    process = run_exhibit(tmp_path, text, broker, f"https://127.0.0.1:{port}/")
    try:
        insecure = phone(named, "zh-CN")
        insecure.goto(http_url.replace("127.0.0.1", "exhibit.test"))
        insecure.locator("button[data-offer=shake]").tap()
        assert insecure.evaluate("window.isSecureContext") is False
        note = insecure.locator("section[data-card=shake] .note")
        note.wait_for(timeout=5000)
        assert "非 https" in note.inner_text()
        assert insecure.locator("button[data-offer=shake]").is_disabled()

        secure = phone(named, "en-GB")
        secure.goto(secure_url)
        assert secure.evaluate("window.isSecureContext") is True
        pad = secure.locator("button.tap[data-offer=lantern]")
        for _ in range(5):
            pad.tap()
            secure.wait_for_timeout(80)
        wait_lamp(lamp, lambda p: p.get("level", 0) > 0)
        secure.locator("button[data-offer=shake]").tap()
        shaking = (
            "() => window.dispatchEvent(new DeviceMotionEvent('devicemotion', {acceleration: {x: 14, y: 0, z: 0}}))"
        )
        for _ in range(20):
            secure.evaluate(shaking)
            secure.wait_for_timeout(50)
        wait_lamp(lamp, lambda p: p.get("wave", 0) >= 50)
        assert secure.evaluate("window.audience.state.motion.on") is True
    finally:
        named.close()
        stop(process)
        lamp.close()
