"""The studio's simulation controls: what a curator previewing an exhibit with ``--simulate`` can do to its
pretend world, and the state the studio page shows of it.

- *Inputs*: pin any sensor input (``controls.wash``, ``body.nearest.hands_raised``...) to a value that
  overrides the simulator, and release it, or every pin at once (:meth:`engine.signals.SignalStore.override`).
  What latches PANIC or the e-stop is never pinned (:meth:`engine.signals.SignalStore.protect`).
- *Simulated visitors*: add (at most the sensor's ``num_poses``), pose and remove visitors in front of a
  pose sensor, and mute its recording so
  that only they are seen (any sensor with the :class:`PuppetStage` methods: the simulated pose sensor).
- *Events*: fire any event of the catalogue by hand, with an optional payload.
- *The clock*: pretend a wall time ("18:55 on a public holiday") that runs on from there; the opening
  hours follow at once (:meth:`engine.clock.PretendWall.pretend`).

The command table (:mod:`engine.control.commands`) names these ``sim/...`` and checks roles; the logic is
here. Every one is refused, and changes nothing, unless the run is simulated: a live show has none of it.
Refusals are :class:`SimulationRefused`, one sentence in English and Chinese with a command error code.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from engine.catalogue import ESTOP_SIGNAL, PANIC_SIGNAL, SignalInfo
from engine.problems import did_you_mean
from engine.signals import ProtectedSignal

if TYPE_CHECKING:
    from engine.runtime import Runtime

Code = Literal["bad_request", "forbidden", "not_found", "conflict", "unavailable"]
Control = Literal["fader", "number", "toggle", "button", "text"]
Number = float | int

INPUT_TYPES = ("float", "int", "bool", "str")
"""Types of signal that can be pinned (events are fired, collections are not set by hand)."""
PUPPET_RANGES: dict[str, tuple[float, float]] = {
    "x": (0.0, 1.0),
    "y": (0.0, 1.0),
    "height": (0.05, 1.0),
    "left_hand": (0.0, 1.0),
    "right_hand": (0.0, 1.0),
}
"""What a simulated visitor's pose is made of, and each one's range (see :mod:`sensors.pose.puppets`)."""
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
"""Pretended times are kept between these: the opening hours look a year ahead from them."""

SIMULATED_ONLY = (
    "simulation controls work only in a simulated run (`exhibit run --simulate`); a live show has none "
    "/ 模拟控制仅在模拟运行（--simulate）中可用，现场演出不可用"
)


class SimulationRefused(Exception):
    """A simulation command that cannot be done: one sentence in English and Chinese, and its error code."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code


@runtime_checkable
class PuppetStage(Protocol):
    """A sensor that shows simulated visitors (the simulated pose sensor)."""

    recording_muted: bool

    def puppet_list(self) -> list[dict[str, float | int]]: ...

    def add_puppet(self, pose: Mapping[str, float]) -> int: ...

    def pose_puppet(self, puppet_id: int, pose: Mapping[str, float]) -> bool: ...

    def remove_puppet(self, puppet_id: int) -> bool: ...

    def mute_recording(self, muted: bool) -> None: ...


# --- what can be pinned ---------------------------------------------------------------------------------------


def _simulated(runtime: Runtime) -> None:
    if not runtime.options.simulate:
        raise SimulationRefused("forbidden", SIMULATED_ONLY)


def _is_health(info: SignalInfo) -> bool:
    return info.name.startswith(f"{info.owner}.health.")


def _never_pinned(runtime: Runtime) -> set[str]:
    """Signals that latch the e-stop or PANIC: the safety chain is tested through its simulators, never pinned.
    E-stop triggers may be aliases (``visitors.*``): the signals they stand for; and what the store protects."""
    catalogue = runtime.catalogue
    triggers = {catalogue.canonical(trigger) for trigger in runtime.exhibit.safety.estop}
    return {*triggers, PANIC_SIGNAL, ESTOP_SIGNAL, *runtime.store.protected}


def overridable(runtime: Runtime) -> list[SignalInfo]:
    """Every input a curator may pin: the sensors' float, int, bool and str signals (raw inputs and derived
    ones such as ``body.nearest.hands_raised``), not their health, not what latches the e-stop."""
    never = _never_pinned(runtime)
    return [
        info
        for info in runtime.catalogue
        if info.group == "sensor"
        and info.type in INPUT_TYPES
        and not _is_health(info)
        and info.name not in never
        and info.name in runtime.store
    ]


def firable(runtime: Runtime) -> list[SignalInfo]:
    """Every event of the catalogue (gestures, arrivals, the show's own events)."""
    return [info for info in runtime.catalogue if info.type == "event" and info.name in runtime.store]


def signal_range(runtime: Runtime, name: str) -> tuple[float, float] | None:
    """The range of a sensor's numeric signal, where its configuration says one: a driver's
    ``signal_ranges()``, or the signal's ``range`` (or ``scale.output``) in the exhibit file."""
    info = runtime.catalogue.signals.get(name)
    if info is None or info.type not in ("float", "int"):
        return None
    config = runtime.exhibit.sensors.get(info.owner)
    if config is None:
        return None
    short = name.removeprefix(f"{info.owner}.")
    ranges = getattr(config, "signal_ranges", None)
    if callable(ranges):
        found = ranges().get(short)
        if found is not None:
            return _ordered(found)
    for attribute in ("signals", "inputs"):
        specs = getattr(config, attribute, None)
        spec = specs.get(short) if isinstance(specs, Mapping) else None
        if spec is None:
            continue
        found = getattr(spec, "range", None)
        scale = getattr(spec, "scale", None)
        if found is None and scale is not None and getattr(scale, "clamp", False):
            found = getattr(scale, "output", None)
        if found is not None:
            return _ordered(found)
    return None


def _ordered(bounds: Any) -> tuple[float, float]:
    low, high = float(bounds[0]), float(bounds[1])
    return (low, high) if low <= high else (high, low)


def control_kind(info: SignalInfo, bounds: tuple[float, float] | None) -> Control:
    """The control the studio suggests: a fader for a number with a range, a number box without one, a toggle
    for true/false, a button for an event, a text field for text."""
    if info.type == "event":
        return "button"
    if info.type == "bool":
        return "toggle"
    if info.type == "str":
        return "text"
    return "fader" if bounds is not None and info.type == "float" else "number"


def _lookup(runtime: Runtime, name: str, choices: list[SignalInfo], what: str) -> SignalInfo:
    """The catalogue entry ``name`` (or its alias) means, among ``choices``; refused with a sentence."""
    canonical = runtime.catalogue.canonical(name)
    info = runtime.catalogue.signals.get(canonical)
    if info is None:
        hint = did_you_mean(name, [i.name for i in choices])
        raise SimulationRefused("not_found", f"no signal `{name}`{f' ({hint})' if hint else ''} / 没有该信号")
    if info in choices:
        return info
    if what == "event":
        raise SimulationRefused(
            "bad_request", f"`{info.name}` is {info.type}, not an event: pin it with `sim/input` / 该信号不是事件"
        )
    if info.type == "event":
        raise SimulationRefused(
            "bad_request", f"`{info.name}` is an event: fire it with `sim/event` / 该信号是事件，请用 sim/event 触发"
        )
    if _is_health(info):
        reason = "is a health figure: only inputs can be pinned / 健康状态信号不能覆盖"
    elif info.name in _never_pinned(runtime):
        reason = "is part of the PANIC and e-stop chain: it is never pinned / 紧急停止与急停信号不能覆盖"
    elif info.group != "sensor":
        reason = f"belongs to the {info.owner}, not to a sensor: only inputs can be pinned / 只有传感器输入可以覆盖"
    else:
        reason = f"is {info.type}: only float, int, bool and str inputs can be pinned / 该类型的信号不能覆盖"
    raise SimulationRefused("forbidden", f"`{info.name}` {reason}")


# --- values -------------------------------------------------------------------------------------------------


def _number(key: str, value: Any, bounds: tuple[float, float] | None = None, *, integer: bool = False) -> Number:
    """``value`` as a finite number (an int where ``integer``) within ``bounds``; refused with a sentence."""
    kind = "a whole number" if integer else "a number"
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or (integer and not number.is_integer()):
        raise SimulationRefused("bad_request", f"`{key}` must be {kind}, got {value!r} / `{key}` 必须是数字")
    result: Number = int(number) if integer else number
    if bounds is not None and not bounds[0] <= number <= bounds[1]:
        low, high = (_plain(bound) for bound in bounds)
        raise SimulationRefused(
            "bad_request", f"`{key}` must be within [{low}, {high}], got {_plain(number)} / `{key}` 超出范围"
        )
    return result


def _plain(number: float) -> float | int:
    return int(number) if float(number).is_integer() else number


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "on", "off", "1", "0"):
        return value.strip().lower() in ("true", "on", "1")
    raise SimulationRefused("bad_request", f"`{key}` must be true or false, got {value!r} / `{key}` 必须是真或假")


def input_value(runtime: Runtime, info: SignalInfo, value: Any) -> float | int | bool | str:
    """``value`` as the type of ``info`` (an int for a float signal becomes a float), within its range."""
    if info.type == "bool":
        return _bool(info.name, value)
    if info.type == "str":
        if not isinstance(value, str):
            raise SimulationRefused("bad_request", f"`{info.name}` is text, got {value!r} / `{info.name}` 需要文本")
        return value
    return _number(info.name, value, signal_range(runtime, info.name), integer=info.type == "int")


# --- the commands ---------------------------------------------------------------------------------------------


def pin_input(runtime: Runtime, params: Mapping[str, Any]) -> dict[str, Any]:
    """``sim/input {signal, value}``: pin an input to ``value``; no ``value`` (null) releases it."""
    _simulated(runtime)
    info = _lookup(runtime, str(params["signal"]), overridable(runtime), "input")
    store = runtime.store
    if params.get("value") is None:
        store.release(info.name)
        return {"signal": info.name, "overridden": False, "value": _json(store.get(info.name).value)}
    value = input_value(runtime, info, params["value"])
    try:
        store.override(info.name, value)
    except ProtectedSignal as refused:
        raise SimulationRefused("forbidden", str(refused)) from None
    return {"signal": info.name, "overridden": True, "value": value}


def release_inputs(runtime: Runtime, params: Mapping[str, Any]) -> dict[str, Any]:
    """``sim/input/release``: release every pinned input; returns the names released (sorted)."""
    _simulated(runtime)
    return {"released": runtime.store.release_all()}


def fire_event(runtime: Runtime, params: Mapping[str, Any]) -> dict[str, Any]:
    """``sim/event {signal, payload?}``: fire an event of the catalogue, with its payload (or none)."""
    _simulated(runtime)
    info = _lookup(runtime, str(params["signal"]), firable(runtime), "event")
    payload = params.get("payload")
    runtime.store.set(info.name, payload)
    return {"signal": info.name, "payload": payload}


def _stage(runtime: Runtime, params: Mapping[str, Any]) -> tuple[str, PuppetStage]:
    """The pose sensor the command names (or the only one); refused with a sentence."""
    _simulated(runtime)
    stages = {name: s for name, s in runtime.sensors.items() if isinstance(s, PuppetStage)}
    pose = [name for name, config in runtime.exhibit.sensors.items() if config.kind == "pose"]
    name = params.get("sensor")
    if name is None:
        if len(pose) != 1:
            names = ", ".join(f"`{n}`" for n in pose) or "none / 无"
            raise SimulationRefused("bad_request", f"name the pose sensor (`sensor`): {names} / 请指定姿态传感器")
        name = pose[0]
    name = str(name)
    if name not in pose:
        hint = did_you_mean(name, pose) or ("this exhibit has none" if not pose else None)
        where = f" ({hint})" if hint else ""
        raise SimulationRefused("not_found", f"no pose sensor `{name}`{where} / 没有该姿态传感器")
    stage = stages.get(name)
    if stage is None:
        raise SimulationRefused(
            "unavailable", f"pose sensor `{name}` is not running (starting or stopping) / 姿态传感器未运行"
        )
    return name, stage


def _pose(params: Mapping[str, Any]) -> dict[str, float]:
    return {key: float(_number(key, params[key], bounds)) for key, bounds in PUPPET_RANGES.items() if key in params}


def _puppet_id(value: Any) -> int:
    return int(_number("id", value, integer=True))


def add_visitor(runtime: Runtime, params: Mapping[str, Any]) -> dict[str, Any]:
    """``sim/visitor/add {sensor?, x?, y?, height?, left_hand?, right_hand?}``: returns the new visitor."""
    name, stage = _stage(runtime, params)
    pose = _pose(params)
    try:
        puppet_id = stage.add_puppet(pose)
    except ValueError as refused:  # as many visitors as the sensor tracks (`num_poses`) are in view already
        raise SimulationRefused("conflict", str(refused)) from None
    return {"sensor": name, "id": puppet_id, "visitor": _puppet(stage, puppet_id)}


def pose_visitor(runtime: Runtime, params: Mapping[str, Any]) -> dict[str, Any]:
    """``sim/visitor/pose {sensor?, id, x?, y?, height?, left_hand?, right_hand?}``: move or pose a visitor."""
    name, stage = _stage(runtime, params)
    puppet_id = _puppet_id(params["id"])
    if not stage.pose_puppet(puppet_id, _pose(params)):
        raise SimulationRefused("not_found", _no_visitor(name, stage, puppet_id))
    return {"sensor": name, "id": puppet_id, "visitor": _puppet(stage, puppet_id)}


def remove_visitor(runtime: Runtime, params: Mapping[str, Any]) -> dict[str, Any]:
    """``sim/visitor/remove {sensor?, id}``: the visitor leaves."""
    name, stage = _stage(runtime, params)
    puppet_id = _puppet_id(params["id"])
    if not stage.remove_puppet(puppet_id):
        raise SimulationRefused("not_found", _no_visitor(name, stage, puppet_id))
    return {"sensor": name, "id": puppet_id, "visitors": stage.puppet_list()}


def mute_recording(runtime: Runtime, params: Mapping[str, Any]) -> dict[str, Any]:
    """``sim/recording {sensor?, muted}``: leave the recording's visitors out (only the simulated ones show)."""
    name, stage = _stage(runtime, params)
    muted = _bool("muted", params["muted"])
    stage.mute_recording(muted)
    return {"sensor": name, "muted": muted}


def _puppet(stage: PuppetStage, puppet_id: int) -> dict[str, float | int]:
    return next(p for p in stage.puppet_list() if p["id"] == puppet_id)


def _no_visitor(sensor: str, stage: PuppetStage, puppet_id: int) -> str:
    ids = ", ".join(str(p["id"]) for p in stage.puppet_list()) or "none / 无"
    return f"`{sensor}` has no simulated visitor {puppet_id} (there are: {ids}) / 没有该模拟观众"


def exhibit_timezone(runtime: Runtime) -> str:
    """The time zone of the exhibit's opening hours (UTC without them)."""
    schedule = runtime.exhibit.schedule
    return schedule.timezone if schedule is not None else "UTC"


def parse_time(text: str, timezone: str) -> dt.datetime:
    """An ISO 8601 date and time; without an offset it is a wall time in ``timezone``."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise SimulationRefused(
            "bad_request",
            f"`{text}` is not a date and time: write ISO 8601, e.g. `2026-10-01T18:55` "
            "/ 时间格式错误，请写 ISO 8601 格式，例如 2026-10-01T18:55",
        ) from None
    if when.tzinfo is None or when.utcoffset() is None:
        when = when.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
    if not EARLIEST <= when < LATEST:
        raise SimulationRefused(
            "bad_request", f"`{text}` is out of range: pretend a time between 1970 and 2199 / 时间超出范围 (1970–2199)"
        )
    return when


def pretend_clock(runtime: Runtime, params: Mapping[str, Any]) -> dict[str, Any]:
    """``sim/clock {at}``: pretend the wall time is ``at`` (ISO 8601; without an offset, in the exhibit's time
    zone), running on from there; no ``at`` (null) goes back to the true time. The opening hours follow
    at once."""
    _simulated(runtime)
    timezone = exhibit_timezone(runtime)
    at = params.get("at")
    runtime.clock.pretend(None if at is None else parse_time(str(at), timezone))
    return clock_state(runtime)


# --- the state the studio shows -------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    """A signal's value as JSON can carry it (NaN and infinities as null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def clock_state(runtime: Runtime) -> dict[str, Any]:
    timezone = exhibit_timezone(runtime)
    clock = runtime.clock
    at = clock.wall().astimezone(zoneinfo.ZoneInfo(timezone)).isoformat(timespec="seconds")
    return {"at": at if clock.pretending else None, "timezone": timezone}


def controls(runtime: Runtime) -> list[dict[str, Any]]:
    """A control for every input that can be pinned and every event that can be fired, in catalogue order."""
    store = runtime.store
    found: list[dict[str, Any]] = []
    for info in overridable(runtime):
        bounds = signal_range(runtime, info.name)
        found.append(
            {
                "name": info.name,
                "type": info.type,
                "range": list(bounds) if bounds is not None else None,
                "control": control_kind(info, bounds),
                "meaning": info.meaning,
                "owner": info.owner,
                "value": _json(store.get(info.name).value),
            }
        )
    for info in firable(runtime):
        found.append(
            {
                "name": info.name,
                "type": "event",
                "range": None,
                "control": "button",
                "meaning": info.meaning,
                "owner": info.owner,
                "value": None,
            }
        )
    return found


def simulation_state(runtime: Runtime) -> dict[str, Any]:
    """What the studio shows of the simulation (JSON-able): whether the run is simulated, the pinned inputs,
    each pose sensor's simulated visitors and muted flag, the pretended clock, and the controls."""
    simulated = runtime.options.simulate
    pose: dict[str, dict[str, Any]] = {}
    if simulated:
        for name, sensor in runtime.sensors.items():
            if isinstance(sensor, PuppetStage):
                pose[name] = {"muted": sensor.recording_muted, "visitors": sensor.puppet_list()}
    return {
        "simulated": simulated,
        "overrides": {name: _json(value) for name, value in sorted(runtime.store.overrides.items())},
        "pose": pose,
        "clock": clock_state(runtime),
        "controls": controls(runtime) if simulated else [],
    }


__all__ = [
    "PUPPET_RANGES",
    "PuppetStage",
    "SimulationRefused",
    "add_visitor",
    "controls",
    "fire_event",
    "mute_recording",
    "overridable",
    "parse_time",
    "pin_input",
    "pose_visitor",
    "pretend_clock",
    "release_inputs",
    "remove_visitor",
    "signal_range",
    "simulation_state",
]
