"""Validation in stages: YAML syntax, format version, schema, cross-references, final checks.

Every problem found is reported, each with its ``file:line:col``; the later
stages run on whatever parts of the file are valid, so one run shows all the
mistakes a curator has to fix.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.catalogue import build_catalogue, reserved_names
from engine.errors import UserError
from engine.exhibit import ExhibitBase, build_exhibit_model, component_adapter, with_action_peers, with_sound_device
from engine.migrations import migrate
from engine.model import PROPERTY_REFERENCE, SIGNAL_REFERENCE
from engine.problems import ExhibitInvalid, Problem, did_you_mean
from engine.registry import Registry
from engine.show_check import show_problems
from engine.sound_model import SOUND_DEVICE, sound_file_problem, sound_properties
from engine.yamlpos import PositionedData, YamlPath, load_yaml

EXHIBIT_FILE = "exhibit.yaml"


def resolve_exhibit_path(spec: str | Path, exhibits_dir: Path) -> Path:
    """An exhibit named by folder, by file, or by its folder name under ``exhibits/``."""
    candidates = list(dict.fromkeys([Path(spec), Path(spec) / EXHIBIT_FILE, exhibits_dir / str(spec) / EXHIBIT_FILE]))
    for path in candidates:
        if path.is_file():
            return path
    raise UserError(f"No exhibit file found at `{spec}` (looked for {', '.join(str(c) for c in candidates)}).")


def load_exhibit(path: Path, registry: Registry, *, hardware: bool = False) -> ExhibitBase:
    """Load and validate an exhibit file; raises :class:`ExhibitInvalid` with every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"The exhibit file `{path}` does not exist.") from None
    except UnicodeDecodeError as exc:
        raise ExhibitInvalid([Problem(str(path), 1, 1, f"the file is not UTF-8 text ({exc.reason})")]) from None
    except OSError as exc:
        raise UserError(f"The exhibit file `{path}` cannot be read: {exc.strerror}.") from None
    return validate_text(text, str(path), registry, hardware=hardware)


def validate_text(text: str, file: str, registry: Registry, *, hardware: bool = False) -> ExhibitBase:
    """Validate an exhibit; ``hardware`` also checks that named cameras and ports exist here."""
    doc = load_yaml(text, file)
    if not isinstance(doc.data, dict):
        raise ExhibitInvalid([doc.problem((), "an exhibit file must be a mapping of keys (`format_version: 1`, ...)")])
    version_problems = migrate(doc)
    if version_problems:
        raise ExhibitInvalid(version_problems)

    model_cls = _exhibit_model(registry)
    problems: list[Problem] = []
    exhibit: ExhibitBase | None = None
    try:
        exhibit = model_cls.model_validate(doc.data)
    except ValidationError as exc:
        schema = _exhibit_schema(model_cls)
        problems += [_schema_problem(doc, error, schema) for error in exc.errors()]
    problems += _cross_reference_problems(doc, registry)
    if exhibit is not None and not problems:
        problems += _name_problems(doc, exhibit, registry)
        problems += _osc_peer_problems(doc, exhibit, registry)
        problems += [doc.problem(where, message) for where, message in with_sound_device(exhibit, registry)]
        problems += _final_problems(doc, exhibit)
        problems += _component_problems(doc, exhibit, hardware)
        problems += show_problems(doc, exhibit, build_catalogue(exhibit, registry))
    if problems:
        raise ExhibitInvalid(_unique(problems))
    assert exhibit is not None
    return exhibit


# --- schema stage -----------------------------------------------------------------


def _exhibit_model(registry: Registry) -> type[ExhibitBase]:
    """The exhibit model for ``registry``'s drivers, built once per set of drivers: the studio checks a draft
    at every keystroke, and building the model costs more than checking a small file."""
    key = (
        tuple((kind, spec.config) for kind, spec in registry.sensors.items()),
        tuple((kind, spec.config) for kind, spec in registry.devices.items()),
        registry.scene,
    )
    model = _MODELS.get(key)
    if model is None:
        model = _MODELS[key] = build_exhibit_model(registry)
    return model


@functools.lru_cache(maxsize=8)
def _exhibit_schema(model_cls: type[ExhibitBase]) -> dict[str, Any]:
    """The model's JSON Schema, where the schema stage looks up allowed keys (75 ms to make; made once)."""
    return model_cls.model_json_schema(by_alias=True)


_MODELS: dict[Any, type[ExhibitBase]] = {}


def _data_path(data: Any, loc: Iterable[Any]) -> YamlPath:
    """Follow pydantic's error location through the data, skipping union tags and markers."""
    path: list[str | int] = []
    node = data
    for part in loc:
        in_mapping = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            path.append(part)
            node = node[part]
    return tuple(path)


def _schema_node(schema: dict[str, Any], loc: Iterable[Any]) -> dict[str, Any]:
    """The JSON Schema node at an error location, to list the keys allowed there."""
    defs = schema.get("$defs", {})

    def deref(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        return node

    node = deref(schema)
    for part in loc:
        if isinstance(part, str) and part in node.get("properties", {}):
            node = deref(node["properties"][part])
        elif isinstance(node.get("additionalProperties"), dict):
            node = deref(node["additionalProperties"])
        elif node.get("patternProperties"):
            node = deref(next(iter(node["patternProperties"].values())))
        elif isinstance(part, int) and isinstance(node.get("items"), dict):
            node = deref(node["items"])
        elif "discriminator" in node and part in node["discriminator"].get("mapping", {}):
            node = deref({"$ref": node["discriminator"]["mapping"][part]})
    return node


def _schema_problem(doc: PositionedData, error: Any, schema: dict[str, Any]) -> Problem:
    loc = tuple(error["loc"])
    kind = error["type"]
    path = _data_path(doc.data, loc)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _schema_node(schema, loc[:-1]).get("properties", {}).keys()
        return doc.problem(path, f"unknown key `{key}`", did_you_mean(key, allowed), key=True)
    if kind == "literal_error" and loc[-1] == "kind":
        tag = str(error["input"])
        expected = [t.strip(" '") for t in str(error["ctx"]["expected"]).replace(" or ", ",").split(",")]
        return doc.problem(path, f"unknown kind `{tag}`", did_you_mean(tag, expected))
    if kind == "missing":
        where = ""
        if path:
            where = f" in item {path[-1] + 1} of `{path[-2]}`" if isinstance(path[-1], int) else f" in `{path[-1]}`"
        return doc.problem(path, f"missing required key `{loc[-1]}`{where}", key=True)
    if kind == "union_tag_invalid":
        tag = str(error["ctx"]["tag"])
        expected = [t.strip(" '") for t in str(error["ctx"]["expected_tags"]).split(",")]
        return doc.problem((*path, "kind"), f"unknown kind `{tag}`", did_you_mean(tag, expected))
    if kind == "union_tag_not_found":
        return doc.problem(path, "missing `kind`", "every sensor and device names its driver with `kind:`", key=True)
    if "[key]" in loc:
        name = str(loc[loc.index("[key]") - 1])
        return doc.problem(
            path,
            f"name `{name}` is not allowed",
            "use lower-case letters, digits and `_`, starting with a letter",
            key=True,
        )
    field = next((p for p in reversed(path) if isinstance(p, str)), None)
    message = str(error["msg"])
    message = message[0].lower() + message[1:]
    if kind.startswith("value_error"):
        message = message.removeprefix("value error, ")
    subject = f"`{field}`: " if field else ""
    got = "" if kind in ("value_error", "assertion_error") else f", got {error['input']!r}"
    return doc.problem(path, f"{subject}{message}{got}")


# --- cross-reference stage ---------------------------------------------------------


def _declared(doc: PositionedData, registry: Registry, section: str) -> dict[str, Any]:
    """Each component by name: its validated config, or None if it is itself invalid."""
    raw = doc.data.get(section)
    if not isinstance(raw, dict):
        return {}
    adapter = component_adapter(registry, section)  # type: ignore[arg-type]
    declared: dict[str, Any] = {}
    for name, config in raw.items():
        try:
            declared[str(name)] = adapter.validate_python(config)
        except ValidationError:
            declared[str(name)] = None
    return declared


def _cross_reference_problems(doc: PositionedData, registry: Registry) -> list[Problem]:
    sensors = _declared(doc, registry, "sensors")
    devices = _declared(doc, registry, "devices")
    # Mappings drive devices, and sensors that take commands too (a board's LED).
    targets = {name: c for name, c in sensors.items() if c is None or c.settable_properties()} | devices
    sounds = doc.data.get("sounds")
    if isinstance(sounds, dict) and SOUND_DEVICE not in targets:
        targets[SOUND_DEVICE] = SoundTargets([str(name) for name in sounds])
    problems: list[Problem] = []
    mappings = doc.data.get("mappings")
    for index, mapping in enumerate(mappings if isinstance(mappings, list) else []):
        if not isinstance(mapping, dict):
            continue
        path: YamlPath = ("mappings", index)
        problems += _reference_problems(
            doc,
            (*path, "from"),
            mapping.get("from"),
            ("sensor", "signal", SIGNAL_REFERENCE),
            sensors,
            lambda c: list(c.signal_types()),
        )
        target = mapping.get("to")
        if isinstance(target, str) and "{slot}" in target:
            target = target.replace("{slot}", "1")  # fan-out: slot 1 must exist; the others are optional
        problems += _reference_problems(
            doc,
            (*path, "to"),
            target,
            ("device", "property", PROPERTY_REFERENCE),
            targets,
            lambda c: c.settable_properties(),
        )
    return problems


def _reference_problems(
    doc: PositionedData,
    path: YamlPath,
    ref: Any,
    what: tuple[str, str, re.Pattern[str]],
    table: dict[str, Any],
    members: Any,
) -> list[Problem]:
    if not isinstance(ref, str):
        return []  # the schema stage reports a missing or mistyped reference
    owner, member, pattern = what
    match = pattern.match(ref)
    if not match:
        return [doc.problem(path, f"`{ref}` is not a {owner} {member}", f"write it as `{owner}.{member}`")]
    name, part = match.groups()
    if name not in table:
        return [doc.problem(path, f"no {owner} named `{name}`", did_you_mean(name, table))]
    config = table[name]
    if config is None:
        return []  # that component has its own problems, reported by the schema stage
    known = members(config)
    if part not in known:
        return [doc.problem(path, f"{owner} `{name}` has no {member} `{part}`", did_you_mean(part, known))]
    return []


# --- final checks -----------------------------------------------------------------


def _name_problems(doc: PositionedData, exhibit: ExhibitBase, registry: Registry) -> list[Problem]:
    """Names the show or a service already uses."""
    problems: list[Problem] = []
    reserved = reserved_names(registry)
    for section in ("sensors", "devices"):
        for name in getattr(exhibit, section):
            if name in reserved:
                problems.append(
                    doc.problem(
                        (section, name), f"`{name}` is a name the exhibit itself uses", "choose another", key=True
                    )
                )
    return problems


def _osc_peer_problems(doc: PositionedData, exhibit: ExhibitBase, registry: Registry) -> list[Problem]:
    """Gives each OSC peer that actions send to its device (the exhibit gains them here), and reports a peer
    whose device name a declared sensor or device already has."""
    problems: list[Problem] = []
    for name, message in with_action_peers(exhibit, registry):
        section = "sensors" if name in exhibit.sensors else "devices"
        problems.append(doc.problem((section, name), message, "rename it, or send with `device:`", key=True))
    return problems


def _final_problems(doc: PositionedData, exhibit: ExhibitBase) -> list[Problem]:
    problems: list[Problem] = []
    sensors = exhibit.sensors
    devices = exhibit.devices

    for name in sensors.keys() & devices.keys():
        problems.append(
            doc.problem(("devices", name), f"`{name}` is both a sensor and a device", "names must be unique", key=True)
        )

    claimed: dict[str, str] = {}
    for name, sensor in sensors.items():
        for resource in sensor.resources():
            if resource in claimed:
                problems.append(
                    doc.problem(
                        ("sensors", name),
                        f"`{name}` and `{claimed[resource]}` both use {resource}",
                        "give each its own port",
                        key=True,
                    )
                )
            claimed.setdefault(resource, name)

    targets: dict[str, int] = {}
    for index, mapping in enumerate(exhibit.mappings):
        path: YamlPath = ("mappings", index)
        if mapping.target in targets:
            problems.append(
                doc.problem(
                    (*path, "to"),
                    f"`{mapping.target}` is already driven by mapping {targets[mapping.target] + 1}",
                    "one mapping per device property",
                )
            )
        targets.setdefault(mapping.target, index)
        sensor_name, signal = mapping.source.split(".", 1)
        signal_type = sensors[sensor_name].signal_types()[signal]
        if mapping.field is not None:
            fields = sensors[sensor_name].collection_fields().get(signal)
            if fields is None:
                problems.append(
                    doc.problem(
                        (*path, "from"),
                        f"`{mapping.source}` is not a collection of visitors",
                        "fan-out reads a collection such as `body.visitors`",
                    )
                )
            elif mapping.field not in fields:
                problems.append(
                    doc.problem(
                        (*path, "field"),
                        f"visitors have no field `{mapping.field}`",
                        did_you_mean(mapping.field, fields),
                    )
                )
        elif signal_type in ("event", "object", "str"):
            problems.append(
                doc.problem(
                    (*path, "from"),
                    f"`{mapping.source}` is {_a(signal_type)}, not a number",
                    "a mapping follows a number or a true/false signal",
                )
            )
        device_name, prop = mapping.slot_target(1).split(".", 1)
        target = devices.get(device_name) or sensors[device_name]
        if mapping.output is None and target.property_range(prop) is None:
            problems.append(
                doc.problem(
                    path,
                    f"`{mapping.target}` has no range of its own",
                    "give the mapping an `output: [from, to]`",
                    key=True,
                )
            )
    return problems


def _a(signal_type: str) -> str:
    return {"event": "an event", "object": "a list of visitors", "str": "text"}.get(signal_type, signal_type)


class SoundTargets:
    """What mappings may drive of the ``sounds:`` section before it is a device (the cross-reference stage)."""

    def __init__(self, sounds: list[str]) -> None:
        self.names = sound_properties(sounds)

    def settable_properties(self) -> list[str]:
        return self.names


def _component_problems(doc: PositionedData, exhibit: ExhibitBase, hardware: bool) -> list[Problem]:
    """Driver-specific checks: missing files always, missing hardware with ``check --hardware``."""
    base = Path(doc.file).parent
    problems: list[Problem] = []
    for name, sound in exhibit.sounds.items():
        if (unplayable := sound_file_problem(base, sound.file)) is not None:
            problems.append(doc.problem(("sounds", name, "file"), unplayable))
    for zone, narration in exhibit.narration.zones.items():
        for language, file in narration.files.items():
            if (unplayable := sound_file_problem(base, file)) is not None:
                problems.append(doc.problem(("narration", "zones", zone, "files", language), unplayable))
    for name, sensor in exhibit.sensors.items():
        found = sensor.check_files(base) + (sensor.check_hardware() if hardware else [])
        problems += [doc.problem(("sensors", name, *where), message) for where, message in found]
    scene = getattr(exhibit, "scene", None)
    if scene is not None:
        problems += [doc.problem(("scene", *where), message) for where, message in scene.check_files(base)]
        pose = [name for name, config in exhibit.sensors.items() if config.kind == "pose"]
        problems += [doc.problem(("scene", *where), message) for where, message in scene.check_sensors(pose)]
    return problems


def _unique(problems: list[Problem]) -> list[Problem]:
    return sorted(set(problems))
