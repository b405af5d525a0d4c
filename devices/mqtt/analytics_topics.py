"""Visitor analytics on MQTT, for site dashboards: ``<prefix>/<id>/analytics/today`` (retained), the figures of the
last 24 hours from the stored hour aggregates, at start, every minute and at a clean stop.

The same privacy rule as exports: with fewer than ``analytics.k`` visitors in the window, nothing derived from
single visitors is sent (``suppressed: true``); only interactions and the peak occupancy remain."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from devices.mqtt.link import MqttLink, Topics
from engine.analytics.records import HOUR, hour_of
from engine.analytics.summary import figures
from engine.registry import ServiceSpec

if TYPE_CHECKING:
    from engine.analytics.recorder import AnalyticsRecorder
    from engine.runtime import Runtime

log = logging.getLogger("devices.mqtt.analytics")

PUBLISH_EVERY = 60.0
WINDOW_HOURS = 24


def last_day(recorder: AnalyticsRecorder, exhibit: str, k: int, now: float) -> dict[str, Any]:
    """The figures of the hours from 23 hours before this one to now, as the retained message says them."""
    since = hour_of(now) - (WINDOW_HOURS - 1) * HOUR
    store = recorder.writer.store  # reads take a connection of their own: never in the writer's way
    totals = store.totals(exhibit, since, hour_of(now) + HOUR)
    period = figures(totals, int(now - since))
    summary: dict[str, Any] = {
        "exhibit": exhibit,
        "from": since,
        "to": round(now, 3),
        "simulated": store.simulated,
        "k": k,
        "occupancy_peak": period.occupancy_peak or 0,
        "interactions": period.interactions,
    }
    if period.visitors < k:
        return {**summary, "suppressed": True}
    median, p90 = period.holding_median, period.holding_p90
    return {
        **summary,
        "suppressed": False,
        "visitors": period.visitors,
        "stopped": period.stopped,
        "attraction": round(period.attraction or 0.0, 4),
        "holding_median_s": median.low if median else None,
        "holding_p90_s": p90.low if p90 else None,
        "occupancy_mean": round(period.occupancy_mean, 4),
    }


class AnalyticsTopics:
    name = "analytics_topics"

    def __init__(self, runtime: Runtime, recorder: AnalyticsRecorder, link: MqttLink, topics: Topics) -> None:
        self.runtime = runtime
        self.recorder = recorder
        self.link = link
        self.topic = f"{topics.prefix}/{topics.exhibit}/analytics/today"
        self.published = 0
        self.health = runtime.context.health_of(self.name, "service", {})

    async def start(self) -> None:
        self.health.set("offline", "waiting for the MQTT broker")

    async def run(self) -> None:
        await self.link.connected.wait()
        while True:
            await self.publish()
            await self.recorder.sleep(PUBLISH_EVERY)  # the runtime's clock, as the figures' own times

    async def publish(self) -> None:
        exhibit = self.runtime.exhibit
        try:
            now = self.recorder.wall()  # the hours the recorder binned by: virtual in tests, pretended in the studio
            summary = await asyncio.to_thread(last_day, self.recorder, exhibit.id, exhibit.analytics.k, now)
        except Exception:  # a summary that cannot be read must not stop the service
            log.exception("analytics: could not read the last day's figures from %s", self.recorder.path)
            self.health.set("degraded", f"cannot read {self.recorder.path}")
            return
        self.link.enqueue(self.topic, json.dumps(summary, ensure_ascii=False), qos=1, retain=True)
        self.published += 1
        self.health.set("ok")

    async def close(self, timeout: float) -> None:
        """The run's last figures (the recorder has written what it held by now)."""
        await self.publish()
        self.health.stopped()


def _build(runtime: Runtime) -> AnalyticsTopics | None:
    if runtime.analytics is None:
        return None
    return AnalyticsTopics(
        runtime, runtime.analytics, runtime.context.resources.get(MqttLink), runtime.context.resources.get(Topics)
    )


ANALYTICS_TOPICS = ServiceSpec("analytics_topics", order=40, applies=lambda e: e.analytics.enabled, build=_build)
