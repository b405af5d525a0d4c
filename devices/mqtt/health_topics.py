"""The exhibit's health on MQTT, retained, so a console, a building system or ``mosquitto_sub``
sees it at once, even one that connects later:

    <prefix>/<exhibit>/health/<name>   {"status": "offline", "reason": "...", "since": 1733300000.0, ...figures}
    <prefix>/<exhibit>/health          {"status": "degraded", "components": {"plinth": {"kind": "sensor", ...}}}

A component's topic is published when its status or reason changes, and every ``refresh`` seconds with
its latest figures; the summary when any status or reason changes. Everything is published again after
every (re)connection, as a broker that restarted without persistence has forgotten it.
"""

from __future__ import annotations

import json
from typing import Any

from devices.mqtt.link import MqttLink, NotConnected, Topics
from engine.clock import Clock
from engine.health import ComponentHealth, HealthBoard

REFRESH = 10.0
"""Seconds between publications of the figures (health changes go out at once)."""


class HealthTopics:
    def __init__(self, board: HealthBoard, link: MqttLink, topics: Topics, clock: Clock, refresh: float = REFRESH):
        self.board, self.link, self.topics, self.clock, self.refresh = board, link, topics, clock, refresh
        self.published = 0
        board.listen(self._changed)
        link.on_connect(self._publish_all)

    def _changed(self, component: ComponentHealth) -> None:
        self._send(self.topics.health(component.name), component.as_dict())
        self._send(self.topics.health_summary, self.board.summary())

    async def _publish_all(self) -> None:
        for component in self.board:
            self._send(self.topics.health(component.name), component.as_dict())
        self._send(self.topics.health_summary, self.board.summary())

    def _send(self, topic: str, body: dict[str, Any]) -> None:
        try:
            self.link.send(topic, json.dumps(body, ensure_ascii=False), retain=True)
        except NotConnected:
            return  # published again on (re)connection
        self.published += 1

    async def run(self) -> None:
        while True:
            await self.clock.sleep(self.refresh)
            if self.link.connected.is_set():
                await self._publish_all()
