"""The audience in a running show (issue 19): phones (real WebSocket clients) tap and vote on the audience page,
the crowd's signals drive a light on a real Mosquitto, a cue opens the vote and a rule closes it, and PANIC
pauses the audience until the reset."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from engine.runtime import RuntimeOptions, assemble
from engine.validate import validate_text
from launcher import build_registry
from tests.conftest import Mosquitto
from tests.sensors.test_audience_server import Phone
from tests.support.net import free_port

EXHIBIT = """\
format_version: 1
id: crowd-show
title: {en: Crowd show, zh: 观众演出}
sensors:
  crowd:
    kind: audience
    host: 127.0.0.1
    port: {port}
    offers:
      lantern: {type: tap, label: {zh: 放灯, en: Release a lantern}}
      season:
        type: vote
        label: {zh: 下一个季节, en: The next season}
        choices: {spring: {zh: 春, en: Spring}, autumn: {zh: 秋, en: Autumn}}
devices:
  lamp:
    kind: mqtt
    properties:
      level: {type: float, range: [0, 100], safe: 0}
      warm: {type: bool, safe: false}
mappings:
  - {from: crowd.lantern.taps_per_s, to: lamp.level, input: [0, 10]}
rules:
  - when: crowd.season.votes >= 2
    do: [{set: crowd.season.open, value: false}, {set: crowd.season.results, value: true}]
  - when: crowd.season.leader == "autumn"
    do: [{set: lamp.warm, value: true}]
cues:
  main:
    cues:
      - {id: "1", name: Vote for the season, actions: [{set: crowd.season.open, value: true}]}
"""


class Gear:
    """The lamp's commands as an outside MQTT client sees them."""

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    async def follow(self, port: int, ready: asyncio.Event) -> None:
        async with aiomqtt.Client("127.0.0.1", port) as client:
            await client.subscribe("exhibit/crowd-show/devices/lamp/set")
            ready.set()
            async for message in client.messages:
                self.commands.append(json.loads(bytes(message.payload)))

    def seen(self, prop: str, check: Any) -> bool:
        return any(prop in command and check(command[prop]) for command in self.commands)


async def until(what: str, check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


async def test_phones_tap_and_vote_and_the_show_follows(mosquitto: Mosquitto, tmp_path: Path):
    port = free_port()
    text = EXHIBIT.replace("{port}", str(port))
    registry = build_registry()
    exhibit = validate_text(text, str(tmp_path / "exhibit.yaml"), registry)
    options = RuntimeOptions(base_dir=tmp_path, console=False, broker=mosquitto.url, state_dir=tmp_path / "s")
    runtime = assemble(exhibit, registry, options)
    gear, ready = Gear(), asyncio.Event()
    follower = asyncio.create_task(gear.follow(mosquitto.port, ready))
    await ready.wait()
    await runtime.start()
    phones: list[Phone] = []
    try:
        crowd = runtime.sensors["crowd"]
        await until("the audience page is up", lambda: crowd.health.status == "ok", 30.0)

        class Page:  # what Phone.open needs of a server
            url = f"http://127.0.0.1:{port}/"

        phones = [await Phone.open(Page) for _ in range(3)]  # type: ignore[arg-type]
        await until("three phones", lambda: runtime.store.get("crowd.count").value == 3)
        for _ in range(4):
            for phone in phones:
                await phone.send(t="tap", id="lantern")
            await asyncio.sleep(0.1)
        await until("the lamp follows the taps", lambda: gear.seen("level", lambda v: v >= 50))
        assert runtime.store.get("crowd.lantern.taps").value == 12

        show = runtime.show
        assert show is not None
        show.go("main")
        await phones[0].state_where(lambda state: state["open"] == {"season": True})
        for phone, choice in zip(phones[:2], ("autumn", "autumn"), strict=True):
            await phone.send(t="vote", id="season", choice=choice)
        store = runtime.store
        await until(
            "the rule closed the vote",
            lambda: store.get("crowd.season.votes").value == 2 and store.get("crowd.season.voting").value is False,
        )
        await phones[2].send(t="vote", id="season", choice="spring")
        assert (await phones[2].answer("voted"))["why"] == "closed"
        await until("the lamp turns warm", lambda: gear.seen("warm", lambda v: v is True))
        results = await phones[2].state_where(lambda state: state["results"])
        assert results["results"] == {"season": {"spring": 0.0, "autumn": 1.0}}

        await show.panic()
        await until("PANIC pauses the audience", lambda: runtime.sensors["crowd"].values["paused"] is True)  # type: ignore[attr-defined]
        await phones[0].state_where(lambda state: state["paused"])
        before = runtime.store.get("crowd.lantern.taps").value
        await phones[0].send(t="tap", id="lantern")
        await asyncio.sleep(0.4)
        assert runtime.store.get("crowd.lantern.taps").value == before  # nothing counts meanwhile
        show.reset()
        await asyncio.sleep(0.3)
        await phones[0].send(t="tap", id="lantern")
        await until("taps count again", lambda: runtime.store.get("crowd.lantern.taps").value == before + 1)
    finally:
        for phone in phones:
            await phone.close()
        await runtime.stop()
        follower.cancel()
    assert runtime.sensors["crowd"].process is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("simulated", [True])
async def test_a_simulated_crowd_taps_and_votes_without_a_port(tmp_path: Path, simulated: bool):
    text = EXHIBIT.replace("{port}", str(free_port()))
    registry = build_registry()
    exhibit = validate_text(text, str(tmp_path / "exhibit.yaml"), registry)
    options = RuntimeOptions(
        base_dir=tmp_path, console=False, embedded_port=0, state_dir=tmp_path / "s", simulate=simulated
    )
    runtime = assemble(exhibit, registry, options)
    await runtime.start()
    try:
        store = runtime.store
        await until("phones arrive", lambda: (store.get("crowd.count").value or 0) >= 5, 20.0)
        await until("someone taps", lambda: (store.get("crowd.lantern.taps").value or 0) > 0, 20.0)
        assert runtime.show is not None
        runtime.show.go("main")
        await until("the crowd votes", lambda: (store.get("crowd.season.votes").value or 0) >= 2, 20.0)
        await until("the rule closes the vote", lambda: store.get("crowd.season.voting").value is False)
    finally:
        await runtime.stop()
