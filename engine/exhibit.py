"""The whole exhibit file: the format's top level, joining the drivers' configs
(through the registry) with the show logic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, create_model

from engine.analytics.settings import AnalyticsSettings
from engine.control.settings import ConsoleSettings, ControlSettings
from engine.model import DeviceConfig, Mapping, MqttSettings, Name, SensorConfig, Strict, Title
from engine.show_model import CueListSpec, MachineSpec, RuleSpec, SafetySpec, ScheduleSpec
from engine.sound_model import MASTER, SOUND_DEVICE, AudioSettings, NarrationSettings, SoundSpec
from engine.sound_plan import Where, sound_plan
from engine.timeline import TimelineSpec

if TYPE_CHECKING:
    from engine.registry import Registry


class ExhibitBase(Strict):
    format_version: Literal[1] = Field(description="Version of this file format; old versions are migrated.")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Stable id, used in MQTT topics.")
    title: Title
    mqtt: MqttSettings = Field(default_factory=MqttSettings)  # type: ignore[arg-type]
    # Narrowed to the registered drivers' configs by build_exhibit_model().
    sensors: dict[str, SensorConfig] = Field(default_factory=dict)
    devices: dict[str, DeviceConfig] = Field(default_factory=dict)
    mappings: list[Mapping] = Field(default_factory=list)
    variables: dict[Name, float | int | bool | str] = Field(
        default_factory=dict, description="Named values logic can read (`var.visits`) and set; with their start value."
    )
    presets: dict[Name, dict[str, float | int | bool | str]] = Field(
        default_factory=dict, description="Named looks: `device.property: value` pairs recalled by a `preset` action."
    )
    states: dict[Name, MachineSpec] = Field(default_factory=dict, description="State machines, run in parallel.")
    rules: list[RuleSpec] = Field(default_factory=list, description="When a condition becomes true, do something.")
    cues: dict[Name, CueListSpec] = Field(default_factory=dict, description="Cue lists for performances.")
    timelines: dict[Name, TimelineSpec] = Field(default_factory=dict, description="Keyframed animations.")
    schedule: ScheduleSpec | None = Field(None, description="Opening hours, in the exhibit's time zone.")
    safety: SafetySpec = Field(default_factory=SafetySpec, description="E-stop, arming, PANIC time.")  # type: ignore[arg-type]
    console: ConsoleSettings = Field(
        default_factory=ConsoleSettings,  # type: ignore[arg-type]
        description="The operators' web console and HTTP/WebSocket API.",
    )
    sounds: dict[Name, SoundSpec] = Field(
        default_factory=dict,
        description="Sounds, by name: `{sound: chime}` plays one; `sound.<name>.volume` (and `.rate`, `.pan`) are "
        "properties mappings, cues and timelines drive.",
    )
    audio: AudioSettings = Field(
        default_factory=AudioSettings,  # type: ignore[arg-type]
        description="The audio output: master volume and the ceiling no sound exceeds.",
    )
    narration: NarrationSettings = Field(
        default_factory=NarrationSettings,  # type: ignore[arg-type]
        description="Narration per zone and language, spoken when a visitor steps into a zone.",
    )
    analytics: AnalyticsSettings = Field(
        default_factory=AnalyticsSettings,
        description="Visitor analytics: what visitors do (how many stop, how long, where), never who they are.",
    )
    control: ControlSettings = Field(
        default_factory=ControlSettings,  # type: ignore[arg-type]
        description="Control from other surfaces: QLab-style OSC, MQTT.",
    )


def _union(models: list[type[BaseModel]]) -> Any:
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator="kind")]  # noqa: UP007


def build_exhibit_model(registry: Registry) -> type[ExhibitBase]:
    """The complete exhibit model for the drivers in ``registry``."""
    sensor = _union([spec.config for spec in registry.sensors.values()])
    device = _union([spec.config for spec in registry.devices.values()])
    fields: dict[str, Any] = {
        "sensors": (dict[Name, sensor], Field(default_factory=dict, description="Inputs, by name.")),  # type: ignore[valid-type]
        "devices": (dict[Name, device], Field(default_factory=dict, description="Outputs, by name.")),  # type: ignore[valid-type]
    }
    if registry.scene is not None:
        fields["scene"] = (
            registry.scene | None,
            Field(None, description="The picture: a Panda3D scene whose properties follow signals."),
        )
    return create_model("Exhibit", __base__=ExhibitBase, **fields)


def component_adapter(registry: Registry, section: Literal["sensors", "devices"]) -> Any:
    """A validator for one sensor or device, used to check components one by one."""
    from pydantic import TypeAdapter

    specs = registry.sensors if section == "sensors" else registry.devices
    return TypeAdapter(_union([spec.config for spec in specs.values()]))


def with_sound_device(exhibit: ExhibitBase, registry: Registry) -> list[tuple[Where, str]]:
    """Give the ``sounds:`` and ``narration:`` sections their output device, ``sound`` (``devices/sound/``), so
    sounds are properties and outputs like any other. Returns (where, problem) for a name that clashes or a place,
    visitor or zone that cannot be resolved."""
    problems: list[tuple[Where, str]] = []
    if MASTER in exhibit.sounds:
        problems.append((("sounds", MASTER), f"`{MASTER}` is the name of every sound at once (`sound.master.volume`)"))
    if not (exhibit.sounds or exhibit.narration.zones) or registry.sound_device is None:
        return problems
    for section in ("sensors", "devices"):
        if SOUND_DEVICE in getattr(exhibit, section):
            problems.append(((section, SOUND_DEVICE), f"`{SOUND_DEVICE}` is the device the `sounds:` section becomes"))
    plan = sound_plan(exhibit)
    problems += plan.problems
    if not problems:
        exhibit.devices[SOUND_DEVICE] = registry.sound_device(exhibit, plan)
    return problems


def with_action_peers(exhibit: ExhibitBase, registry: Registry) -> list[tuple[str, str]]:
    """Give every `{osc: ..., host: ..., port: ...}` action its OSC out device (one per peer), so actions
    go out through the devices' code, health and safety gate like every other output. Returns
    (name, problem) for a peer whose name a declared sensor or device already has."""
    from engine.catalogue import action_lists  # the catalogue imports this module
    from engine.show_model import OscAction

    problems: list[tuple[str, str]] = []
    for _, actions in action_lists(exhibit):
        for action in actions:
            if not isinstance(action, OscAction) or action.port is None or registry.osc_peer is None:
                continue
            peer = registry.osc_peer(action.host, action.port)
            name = action.target
            known = exhibit.devices.get(name)
            if known is None and name not in exhibit.sensors:
                exhibit.devices[name] = peer
            elif known is None or known.model_dump() != peer.model_dump():
                problems.append((name, f"`{name}` is already the name of the OSC peer {action.host}:{action.port}"))
    return problems
