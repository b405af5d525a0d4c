"""The whole path, as an operator runs it: a real `oscsend` changes a real light
command on a real Mosquitto, through `launcher.py run` in its own process."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

from tests.conftest import FLAGSHIP, require_tool

STATUS = "exhibit/canal-lanterns/status"
WASH_SET = "exhibit/canal-lanterns/devices/wash/set"
WASH_STATE = "exhibit/canal-lanterns/devices/wash/state"


def oscsend(*args: str) -> None:
    subprocess.run([require_tool("oscsend"), "127.0.0.1", "9000", *args], check=True, timeout=5)


def test_oscsend_drives_the_wash_light_then_sigterm_goes_safe_and_offline(mosquitto, subscriber, launcher):
    watch = subscriber(mosquitto.port, "exhibit/canal-lanterns/#")
    show = launcher("run", "canal-lanterns", "--broker", mosquitto.url, "--headless")
    watch.wait_for(lambda line: line == f"{STATUS} online")

    oscsend("/canal/wash", "f", "0.5")
    watch.wait_for(lambda line: line == f'{WASH_SET} {{"brightness": 128, "expiry": 10.0}}')
    watch.wait_for(lambda line: line == f'{WASH_STATE} {{"brightness": 128}}')
    oscsend("/canal/wash", "f", "1.5")  # out of range: clamped, never beyond what the light takes
    watch.wait_for(lambda line: line == f'{WASH_SET} {{"brightness": 255, "expiry": 10.0}}')

    show.signal(signal.SIGTERM)
    code, output = show.wait()
    assert code == 0, output
    offline = watch.wait_for(lambda line: line == f"{STATUS} offline")
    lines = watch.lines
    safe = lines.index(
        f'{WASH_SET} {{"brightness": 0, "expiry": 10.0}}',
        lines.index(f'{WASH_SET} {{"brightness": 255, "expiry": 10.0}}'),
    )
    assert safe < lines.index(offline), "devices must be safe before offline is published"
    assert "Traceback" not in output


def test_sigkill_leaves_offline_through_the_last_will(mosquitto, subscriber, launcher):
    watch = subscriber(mosquitto.port, STATUS)
    show = launcher("run", "canal-lanterns", "--broker", mosquitto.url, "--headless")
    watch.wait_for(lambda line: line == f"{STATUS} online")
    show.signal(signal.SIGKILL)
    show.wait()
    watch.wait_for(lambda line: line == f"{STATUS} offline")
    # Retained: a console that connects afterwards still learns the exhibit is down.
    late = subscriber(mosquitto.port, STATUS)
    late.wait_for(lambda line: line == f"{STATUS} offline")


def test_retained_state_reflects_the_last_command(mosquitto, subscriber, launcher):
    show = launcher("run", "canal-lanterns", "--broker", mosquitto.url, "--headless")
    subscriber(mosquitto.port, STATUS).wait_for(lambda line: line == f"{STATUS} online")
    oscsend("/canal/wash", "f", "0.2")
    late = subscriber(mosquitto.port, WASH_STATE)
    line = late.wait_for(lambda line: line.startswith(WASH_STATE) and '"brightness": 51' in line)
    assert json.loads(line.split(" ", 1)[1]) == {"brightness": 51}
    show.signal(signal.SIGINT)
    assert show.wait()[0] == 0


def always_open_flagship(tmp_path: Path) -> Path:
    """The flagship without its opening hours: outside Beijing's, the closing fade to the safe state would
    send its own wash commands in the middle of what a test watches."""
    folder = tmp_path / "canal-lanterns"
    shutil.copytree(FLAGSHIP.parent, folder)
    exhibit = folder / "exhibit.yaml"
    text = exhibit.read_text(encoding="utf-8")
    exhibit.write_text(text[: text.index("\nschedule:")] + text[text.index("\nsafety:") :], encoding="utf-8")
    return folder


def test_a_non_finite_wash_from_osc_is_dropped_not_full_brightness(mosquitto, subscriber, launcher, tmp_path):
    """Found: `/canal/wash f inf` drove the wash to 255 (scaled, then clamped), `-inf` to 0."""
    watch = subscriber(mosquitto.port, "exhibit/canal-lanterns/#")
    show = launcher("run", str(always_open_flagship(tmp_path)), "--broker", mosquitto.url, "--headless")
    watch.wait_for(lambda line: line == f"{STATUS} online")

    oscsend("/canal/wash", "f", "0.5")
    first = watch.wait_for(lambda line: line == f'{WASH_SET} {{"brightness": 128, "expiry": 10.0}}')
    for tag, number in [("f", "inf"), ("f", "-inf"), ("f", "nan"), ("d", "inf"), ("d", "-inf"), ("d", "nan")]:
        oscsend("/canal/wash", tag, number)
    oscsend("/canal/wash", "f", "0.25")  # the next good value still gets through
    last = watch.wait_for(lambda line: line == f'{WASH_SET} {{"brightness": 64, "expiry": 10.0}}')

    lines = list(watch.lines)
    between = lines[lines.index(first) + 1 : lines.index(last)]
    commands = [json.loads(line.split(" ", 1)[1]) for line in between if line.startswith(f"{WASH_SET} ")]
    assert all(command["brightness"] == 128 for command in commands), commands
    show.signal(signal.SIGTERM)
    code, output = show.wait()
    assert code == 0, output
