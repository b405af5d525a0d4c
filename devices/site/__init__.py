"""The show network: node announcements, clock offsets, synced cues and backup takeover over the MQTT broker."""

from devices.site.service import SITE_FIGURES, SITE_MEANINGS, build_site
from engine.registry import Registry, ServiceSpec

SITE = ServiceSpec(
    "site", order=25, applies=lambda exhibit: True, build=build_site, figures=SITE_FIGURES, meanings=SITE_MEANINGS
)


def register(registry: Registry) -> None:
    registry.add_service(SITE)
