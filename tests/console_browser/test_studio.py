"""The curator's studio in a real headless Chromium, on a copy of the flagship run by `launcher.py studio`
(simulated sensors, the scene rendered offscreen) with its devices on a real Mosquitto: a misspelt key is
shown at its line within a second and Save is off; the fix is saved and reloaded (a changed timeline reaches
the broker); a simulated visitor who raises both hands lights the lanterns and changes the preview; an
earlier version is restored."""

from __future__ import annotations

import io
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from tests.conftest import ROOT, Mosquitto
from tests.console_browser.conftest import MqttLines

FLAGSHIP = ROOT / "exhibits" / "canal-lanterns"
STUDIO_LINE = re.compile(r"^Studio / 工作室: (https?://\S+?)/login\?token=(\S+)&next=/studio$")
LANTERNS = "exhibit/canal-lanterns/devices/lanterns/#"
BREATH = "lanterns.brightness: [[0, 20], [3, 90, ease-in-out], [6, 20, ease-in-out]]"
BRIGHTER_BREATH = "lanterns.brightness: [[0, 20], [3, 240, ease-in-out], [6, 20, ease-in-out]]"
A_TUESDAY_MORNING = "2026-12-08T10:00:00"  # the flagship is open then (Asia/Shanghai, 09:00-17:00)


class StudioProcess:
    """`launcher.py studio COPY --port 0 --broker ...`, its output collected, its login link found."""

    def __init__(self, folder: Path, broker: str, state: Path) -> None:
        command = [
            sys.executable, str(ROOT / "launcher.py"), "studio", str(folder), "--port", "0", "--broker", broker,
            "--accounts", str(state / "accounts.json"), "--audit-log", str(state / "audit.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8"
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.link = self._wait_for_link()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def _wait_for_link(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            for line in list(self.lines):
                if STUDIO_LINE.match(line.strip()):
                    return line.strip().split(": ", 1)[1]
            time.sleep(0.05)
        self.stop()
        raise AssertionError("the studio printed no login link; its output:\n" + "\n".join(self.lines))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._reader.join(2)


@pytest.fixture
def flagship_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "canal-lanterns"
    shutil.copytree(FLAGSHIP, folder, ignore=shutil.ignore_patterns(".history"))
    return folder


@pytest.fixture
def studio(flagship_copy: Path, broker: Mosquitto, tmp_path: Path) -> Iterator[StudioProcess]:
    state = tmp_path / "state"
    state.mkdir()
    started = StudioProcess(flagship_copy, broker.url, state)
    yield started
    started.stop()


@pytest.fixture
def lanterns(broker: Mosquitto) -> Iterator[MqttLines]:
    lines = MqttLines(broker.port, LANTERNS)
    yield lines
    lines.close()


@pytest.fixture
def tab(browser: Any, studio: StudioProcess) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(studio.link)
    page.wait_for_selector(".cm-content")
    page.wait_for_function("() => Number(document.body.dataset.checks || 0) >= 1")  # the file as opened: checked
    yield page
    context.close()
    assert not errors, f"the page threw: {errors}"


def brightness(lines: MqttLines, since: int) -> list[int]:
    found = []
    for line in lines.lines[since:]:
        _, _, payload = line.partition(" ")
        try:
            value = json.loads(payload).get("brightness")
        except (ValueError, AttributeError):
            continue
        if isinstance(value, int | float):
            found.append(int(value))
    return found


def wait_for_brightness(lines: MqttLines, since: int, at_least: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = brightness(lines, since)
        if seen and max(seen) >= at_least:
            return max(seen)
        time.sleep(0.05)
    raise AssertionError(f"lanterns never reached brightness {at_least}; saw {brightness(lines, since)[-30:]}")


def wait_until_breathing(lines: MqttLines, ceiling: int, window: float = 6.5, timeout: float = 45.0) -> None:
    """Wait for a whole breath of the attract timeline (6 s) in which the lanterns stay at or below ``ceiling``:
    the recorded visitors have gone and any finale they started is over."""
    deadline = time.monotonic() + timeout
    start, since = time.monotonic(), lines.mark()
    while time.monotonic() < deadline:
        seen = brightness(lines, since)
        if seen and max(seen) > ceiling:
            start, since = time.monotonic(), lines.mark()
        elif time.monotonic() - start >= window and len(seen) >= 10:
            return
        time.sleep(0.1)
    raise AssertionError(f"the lanterns never settled at or below {ceiling}; saw {brightness(lines, since)[-30:]}")


def go_to_line(page: Any, line: int) -> None:
    page.click(".cm-content")
    page.keyboard.press("Control+Home")
    for _ in range(line - 1):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("End")


def preview_picture(page: Any) -> Image.Image:
    return Image.open(io.BytesIO(page.locator("#preview-image").screenshot())).convert("RGB")


def pane(page: Any, name: str) -> None:
    page.click(f"[data-pane={name}]")
    page.wait_for_selector(f"#pane-{name}:not([hidden])")


def test_a_curator_edits_checks_saves_simulates_previews_and_restores(
    tab: Any, studio: StudioProcess, flagship_copy: Path, lanterns: MqttLines
) -> None:
    original = (flagship_copy / "exhibit.yaml").read_text(encoding="utf-8")
    lines = original.splitlines()

    # The visitors of the recording leave; it is a Tuesday morning, so the exhibit is open and breathes.
    pane(tab, "simulate")
    tab.fill("#sim-clock", A_TUESDAY_MORNING)
    tab.click("#sim-clock-set")
    tab.wait_for_selector("#sim-clock-now:text-matches('2026-12-08T10:0')")
    tab.check("[data-sensor=body] [data-role=mute]")
    wait_until_breathing(lanterns, 90)

    # A misspelt key: shown at its line within a second, and Save is off.
    row = lines.index("timelines:") + 1
    go_to_line(tab, row)
    tab.keyboard.press("ArrowLeft")
    typed = time.monotonic()
    tab.keyboard.type("z")
    tab.wait_for_selector(f"#problems li[data-line='{row}']", timeout=1000)
    assert time.monotonic() - typed < 1.0
    assert "timelinesz" in tab.inner_text(f"#problems li[data-line='{row}']")
    assert tab.locator(".cm-lintRange-error").count() >= 1
    assert tab.is_disabled("#save")

    # Fixed, and the breathing made brighter; saved, reloaded, and the broker sees the new timeline.
    tab.keyboard.press("Backspace")
    tab.wait_for_selector("#problems:empty", state="attached")
    assert BREATH in original
    tab.click(".cm-content")
    tab.keyboard.press("Control+A")
    tab.keyboard.insert_text(original.replace(BREATH, BRIGHTER_BREATH))
    tab.wait_for_selector("#save:not([disabled])")
    before_save = lanterns.mark()
    tab.click("#save")
    tab.wait_for_selector(".toast:text-matches('Saved as version 2')")
    assert (flagship_copy / "exhibit.yaml").read_text(encoding="utf-8") == original.replace(BREATH, BRIGHTER_BREATH)
    assert wait_for_brightness(lanterns, before_save, 150) >= 150  # the old timeline never went above 90

    # A simulated visitor raises both hands: the lanterns rise on the broker and the preview changes.
    pane(tab, "preview")
    tab.wait_for_function("() => document.getElementById('preview-image').naturalWidth > 0")
    time.sleep(1.0)
    calm = preview_picture(tab)
    pane(tab, "simulate")
    tab.click("[data-sensor=body] [data-role=add]")
    visitor = tab.locator("[data-sensor=body] .visitor").first
    visitor.wait_for()
    before_hands = lanterns.mark()
    visitor.locator("[data-pose=left_hand]").fill("1")
    visitor.locator("[data-pose=right_hand]").fill("1")
    assert wait_for_brightness(lanterns, before_hands, 240) >= 240
    pane(tab, "preview")
    deadline = time.monotonic() + 10
    change = 0.0
    while time.monotonic() < deadline and change < 2.0:
        time.sleep(0.5)
        change = sum(ImageStat.Stat(ImageChops.difference(calm, preview_picture(tab))).mean) / 3
    assert change >= 2.0, f"the preview hardly changed (mean difference {change:.2f})"

    # The inspector says what drives the lanterns now, and plots a signal on a click.
    pane(tab, "inspector")
    lanterns_row = tab.locator("li.inspect-row[data-property='lanterns.brightness']")
    lanterns_row.wait_for()
    tab.wait_for_function(
        "() => /mapping|timeline/.test("
        "document.querySelector(\"li[data-property='lanterns.brightness']\").dataset.kind)"
    )
    assert "body.nearest.hands_raised" in lanterns_row.inner_text()  # the mapping, in charge or waiting its turn
    tab.click("li.inspect-row[data-signal='body.nearest.hands_raised'] .name")
    tab.wait_for_selector("#inspect-plot-title:text-is('body.nearest.hands_raised')")

    # The earlier version comes back.
    pane(tab, "history")
    tab.click("li.version[data-version='1'] button.restore")
    tab.click("#confirm [data-answer=yes]")
    tab.wait_for_selector(".toast:text-matches('Saved as version 3')")
    assert (flagship_copy / "exhibit.yaml").read_text(encoding="utf-8") == original
    # The editor holds the restored file again: its status says saved (the page compares it with the file).
    tab.wait_for_function("() => document.querySelector('#check-status').textContent.includes('Saved')")


def test_an_unsaved_draft_survives_a_reload(tab: Any, flagship_copy: Path) -> None:
    original = (flagship_copy / "exhibit.yaml").read_text(encoding="utf-8")
    warned: list[str] = []

    def leave_anyway(dialog: Any) -> None:
        warned.append(dialog.type)
        dialog.accept()

    tab.on("dialog", leave_anyway)
    tab.click(".cm-content")
    tab.keyboard.press("Control+Home")
    tab.keyboard.type("# a curator's note\n")
    tab.wait_for_function("() => !document.querySelector('#check-status').textContent.includes('Saved')")
    tab.reload()
    tab.wait_for_selector(".toast:text-matches('Your unsaved changes were restored')")
    assert tab.locator(".cm-content").inner_text().startswith("# a curator's note\n")
    assert (flagship_copy / "exhibit.yaml").read_text(encoding="utf-8") == original  # kept in the tab only
    assert warned == ["beforeunload"]  # leaving with unsaved changes asked first


def test_problem_columns_in_code_points_become_editor_columns(tab: Any) -> None:
    # The server counts code points, the editor UTF-16 units: an emoji or a CJK ext-B ideograph is two units.
    columns = tab.evaluate("""async () => {
        const { utf16Column } = await import("/static/js/studio/columns.js");
        return [utf16Column("a😀b: 1", 3), utf16Column("𠀀𠀀k: 1", 3), utf16Column("abc", 2), utf16Column("😀", 4)];
    }""")
    assert columns == [4, 5, 2, 5]
