"""The controller killed mid-move: ``launcher.py run`` in its own process, over a real Mosquitto, is
SIGKILLed (no clean stop, no safe state sent) while a turntable turns and a wash is lit. Both are
devices with `expiry` (README, "Devices and safety"): the expiry travels with every command, the
state is re-sent every third of it while the controller lives, and gear that hears nothing for that
long falls back to its safe state by itself. The gear is tests/support/mqtt_gear.py's, a separate MQTT
client whose firmware honours the expiry as real gear does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.controller_process import MOTOR_SAFE, ControllerProcess, TimedGear
from tests.support.mqtt_gear import Listener

EXPIRY = 1.5
LATE = 0.25
"""Seconds the fall-back may come after ``EXPIRY``: the gear's timer and the kill's own latency."""

EXHIBIT = f"""\
# yaml-language-server: $schema=../exhibit.schema.json
format_version: 1
id: kill-drill
title: {{en: Power cut, zh: 断电演练}}
mqtt: {{broker: embedded, prefix: exhibit}}     # the test gives --broker (a real Mosquitto)

devices:
  wash:
    kind: mqtt
    properties:
      brightness: {{type: int, range: [0, 255], safe: 0}}
    expiry: {EXPIRY}s       # if this controller dies, the wash goes dark by itself
  boat:                     # the turntable: stops by itself if the controller dies
    kind: mqtt
    profile: {{profile: motor, soft_limits: [0, 360], max_speed: 20, max_accel: 10}}
    expiry: {EXPIRY}s

timelines:
  voyage:                   # speeds up for a second, then turns steadily (nothing new to send)
    tracks:
      boat.speed: [[0, 2], [1, 12, ease-in-out], [60, 12]]

states:
  mode:
    initial: voyage
    states:
      voyage:
        enter:
          - {{set: boat.enabled, value: true}}
          - {{timeline: voyage}}
          - {{set: wash.brightness, value: 200, fade: 1s}}

safety:
  armed_at_start: [boat]
"""


async def test_killed_mid_move_the_motor_and_the_light_fall_back_to_safe_within_the_expiry(mosquitto, tmp_path: Path):
    path = tmp_path / "exhibit.yaml"
    path.write_text(EXHIBIT)

    def gear(name: str, safe: dict[str, object]) -> TimedGear:
        return TimedGear(
            mosquitto.port, f"gear/{name}", command_topic=f"exhibit/kill-drill/devices/{name}/set", safe=safe
        )

    async with (
        gear("boat", MOTOR_SAFE) as boat,
        gear("wash", {"brightness": 0}) as wash,
        Listener(mosquitto.port, "exhibit/kill-drill/status") as status,
    ):
        controller = ControllerProcess.run(path, mosquitto.url)
        try:
            await boat.moving(lambda s: s.get("enabled") is True and s.get("speed") == 12)
            await wash.moving(lambda s: s.get("brightness") == 200)
            # Turning steadily for longer than the expiry: only the controller's refreshes keep the gear up.
            await asyncio.sleep(EXPIRY * 1.7)
            assert boat.fell_back_at == [] and wash.fell_back_at == [], "gear fell back while the controller lived"
            assert boat.state["speed"] == 12 and boat.state["enabled"] is True and wash.state["brightness"] == 200
            assert all(c.get("expiry") == EXPIRY for g in (boat, wash) for _, c in g.timed), "a command had no expiry"
            assert controller.alive(), controller.output()

            killed = controller.kill()
            await boat.wait_until(lambda: bool(boat.fell_back_at), timeout=EXPIRY + 2)
            await wash.wait_until(lambda: bool(wash.fell_back_at), timeout=2)
            for fixture in (boat, wash):
                fell = fixture.fell_back_at[0]
                last = fixture.timed[-1][0]
                assert last <= killed + 0.05, f"{fixture.root} heard a command after the kill"
                assert fell - killed <= EXPIRY + LATE, f"{fixture.root} fell back {fell - killed:.2f} s after the kill"
                assert fell - last >= EXPIRY - 0.05, f"{fixture.root} fell back early"
            assert boat.state["speed"] == 0 and boat.state["enabled"] is False
            assert wash.state["brightness"] == 0
            # The exhibit's own status says it is gone (its Last Will), for the console.
            await status.wait_for("exhibit/kill-drill/status", "offline", timeout=5)
        except BaseException:
            print(controller.output())
            raise
        finally:
            controller.close()
