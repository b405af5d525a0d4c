"""The OSCQuery namespace of the exhibit's control: what ossia score, Chataigne and TouchOSC list, show and follow.

Three kinds of nodes, all under the OSC control port (``control.osc.port``, where the commands go):

* the commands, write-only (``ACCESS`` 2): ``/go``, ``/panic``, ``/playhead/next``, ``/playhead/<cue>``,
  ``/cue/<cue>/start``, ``/select/<cue>``, ``/exhibit/estop``... Those without an argument are typed ``I``
  (OSC 1.1's impulse: a button in ossia score, a trigger in Chataigne);
* the show's state, readable with its current ``VALUE`` (``ACCESS`` 1), and also writable (3) where the
  same address sets it: ``/exhibit/state/<machine>`` (``s``, ``RANGE`` ``VALS`` of its states),
  ``/exhibit/var/<name>`` (typed by its start value), ``/exhibit/estop/latched``, ``/exhibit/panic``,
  ``/exhibit/cuelist/<list>/standby``, ``/exhibit/health/<component>/status``...;
* the exhibit's inputs, read-only: ``/exhibit/input/<sensor>/<signal>`` for every sensor signal that is a
  number, a boolean or text (sensors take their own input on their own ports; here they are only shown).

Values come from the event hub's last state (the same payloads the console and MQTT get, see
:mod:`engine.control.protocol`) and, for inputs, from the signal store; :func:`state_values` is the one
mapping from protocol topics to OSC addresses, used for ``VALUE`` and for ``LISTEN`` alike.

Values are leaves: no node is both a value and a container (Chataigne shows such a node as a folder
only), which is why the e-stop's state is ``/exhibit/estop/latched`` beside the ``/exhibit/estop`` command.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pythonosc.osc_message_builder import OscMessageBuilder

from engine.health import STATUSES
from sensors.osc.oscquery import TYPE_TAGS, node_at

if TYPE_CHECKING:
    from engine.runtime import Runtime

ACCESS_READ, ACCESS_WRITE, ACCESS_BOTH = 1, 2, 3
IMPULSE = "I"
"""The type of a command without arguments: OSC 1.1's impulse, which ossia score and Chataigne show as a button."""
INPUT_ROOT = "/exhibit/input"
INPUT_TAGS: dict[str, str] = {str(kind): tag for kind, tag in TYPE_TAGS.items()}
"""Type tags of the inputs shown, by store type (events and objects are not shown)."""
UNSAFE = re.compile(r"[\s#*,/?\[\]{}\x00-\x1f\x7f]")
"""Characters an OSC address part cannot hold; a cue or component named with one is left out."""

COMMANDS: dict[str, str] = {
    "/go": "GO: fire the standby cue / 执行待命提示",
    "/stop": "stop every cue list and timeline; outputs hold / 停止所有提示列表和时间线，输出保持",
    "/pause": "pause cue lists, timelines and fades / 暂停提示列表、时间线和渐变",
    "/resume": "resume what PAUSE froze / 继续暂停的内容",
    "/panic": "PANIC: every output to its safe state now / 紧急停止：所有输出立即进入安全状态",
    "/reset": "leave PANIC; nothing resumes by itself / 解除紧急停止，不会自动继续",
    "/playhead/next": "move the playhead to the next cue / 播放头移到下一个提示",
    "/playhead/previous": "move the playhead back one cue / 播放头后退一个提示",
    "/exhibit/estop": "latch the e-stop: motion stops until reset / 锁定急停：运动停止直到复位",
    "/exhibit/estop/reset": "release the e-stop latch (re-arms nothing) / 解除急停锁定（不会重新启用运动设备）",
}


@dataclass(frozen=True, slots=True)
class Readable:
    """A node whose value can be read and LISTENed to."""

    tag: str
    """Its OSC type tag: ``T`` (true/false), ``i``, ``f`` or ``s``."""
    signal: str | None = None
    """The input signal it shows (watched only while someone LISTENs); None: a hub state topic holds it."""


@dataclass(frozen=True, slots=True)
class _Node:
    path: str
    description: str
    tag: str = IMPULSE
    access: int = ACCESS_WRITE
    signal: str | None = None
    vals: tuple[str, ...] = ()


# --- the mapping from protocol topics to addresses -------------------------------------------------------------------


def state_values(topic: str, data: Any) -> dict[str, Any]:
    """The OSC addresses a protocol state topic sets, with their values (before typing: see :func:`typed`)."""
    if not isinstance(data, dict):
        return {}
    kind, _, name = topic.partition("/")
    if kind == "show":
        return {f"/exhibit/{key}": data[key] for key in ("panic", "paused", "locked") if key in data}
    if kind == "safety":
        return {"/exhibit/estop/latched": data.get("estop"), "/exhibit/estop/by": data.get("by")}
    if kind == "schedule":
        return {"/exhibit/open": data.get("open")}
    if kind == "state":
        return {f"/exhibit/state/{name}": data.get("state")}
    if kind == "var":
        return {f"/exhibit/var/{name}": data.get("value")}
    if kind == "cuelist":
        base = f"/exhibit/cuelist/{name}"
        return {f"{base}/{key}": data.get(key) for key in ("standby", "playhead", "last")}
    if kind == "timeline":
        return {f"/exhibit/timeline/{name}/{key}": data.get(key) for key in ("playing", "position")}
    if kind == "health":
        return {f"/exhibit/health/{name}/{key}": data.get(key) for key in ("status", "reason")}
    if kind == "signal":
        return {input_path(name): data.get("value")}
    return {}


def input_path(signal: str) -> str:
    """``controls.wash`` -> ``/exhibit/input/controls/wash`` (each dot of the name is a level)."""
    return f"{INPUT_ROOT}/{signal.replace('.', '/')}"


def typed(tag: str, value: Any) -> Any:
    """``value`` as the JSON/OSC value of type ``tag``, or None when it has none (no standby cue is ``""``)."""
    if tag == "s":
        return "" if value is None else str(value)
    if value is None or isinstance(value, str):
        return None
    if tag == "T":
        return bool(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return int(number) if tag == "i" else number


def osc_packet(path: str, tag: str, value: Any) -> bytes | None:
    """The OSC message that says ``path`` now holds ``value`` (what a LISTENing client receives)."""
    value = typed(tag, value)
    if value is None:
        return None
    builder = OscMessageBuilder(path)
    builder.add_arg(value, ("T" if value else "F") if tag == "T" else tag)
    return bytes(builder.build().dgram)


# --- the namespace ---------------------------------------------------------------------------------------------------


def _ok(*parts: str) -> bool:
    return all(part and not UNSAFE.search(part) for part in parts)


def _var_tag(value: Any) -> str:
    if isinstance(value, bool):
        return "T"
    return "i" if isinstance(value, int) else "f" if isinstance(value, float) else "s"


def _nodes(runtime: Runtime) -> Iterator[_Node]:
    """Every node of the control namespace for the exhibit as it is now (a reload changes them)."""
    exhibit = runtime.exhibit
    for path, description in COMMANDS.items():
        yield _Node(path, description)
    for list_name, spec in exhibit.cues.items():
        for cue in spec.cues:
            if not _ok(cue.id):
                continue
            what = f"cue {cue.id}" + (f" ({cue.name})" if cue.name else "") + f" of `{list_name}`"
            if cue.id not in ("next", "previous"):
                yield _Node(f"/playhead/{cue.id}", f"put the playhead on {what} / 播放头移到提示 {cue.id}")
            yield _Node(f"/cue/{cue.id}/start", f"start {what} / 执行提示 {cue.id}")
            yield _Node(f"/select/{cue.id}", f"select {what} (it becomes standby) / 选择提示 {cue.id}")
        base = f"/exhibit/cuelist/{list_name}"
        yield _Node(f"{base}/standby", "the standby cue (empty at the end) / 待命提示（到末尾为空）", "s", ACCESS_READ)
        yield _Node(f"{base}/playhead", "the playhead's position, from 0 / 播放头位置（从0开始）", "i", ACCESS_READ)
        yield _Node(f"{base}/last", "the cue fired last / 最后执行的提示", "s", ACCESS_READ)
    yield _Node("/exhibit/estop/latched", "the e-stop is latched / 急停已锁定", "T", ACCESS_READ)
    yield _Node("/exhibit/estop/by", "what latched the e-stop / 触发急停的来源", "s", ACCESS_READ)
    yield _Node("/exhibit/panic", "the show is in PANIC / 演出处于紧急停止状态", "T", ACCESS_READ)
    yield _Node("/exhibit/paused", "the show is paused / 演出已暂停", "T", ACCESS_READ)
    yield _Node("/exhibit/locked", "the show lock is on / 演出锁定已开启", "T", ACCESS_READ)
    if exhibit.schedule is not None:
        yield _Node("/exhibit/open", "within opening hours / 在开放时间内", "T", ACCESS_READ)
    for machine, machine_spec in exhibit.states.items():
        yield _Node(
            f"/exhibit/state/{machine}",
            f"state of `{machine}`; send a state to change it / 状态机当前状态，发送状态名即可切换",
            "s",
            ACCESS_BOTH,
            vals=tuple(machine_spec.states),
        )
    for name, start in exhibit.variables.items():
        yield _Node(f"/exhibit/var/{name}", f"variable `{name}` / 变量", _var_tag(start), ACCESS_BOTH)
    for timeline in exhibit.timelines:
        base = f"/exhibit/timeline/{timeline}"
        yield _Node(f"{base}/playing", "the timeline is playing / 时间线正在播放", "T", ACCESS_READ)
        yield _Node(f"{base}/position", "position in seconds / 播放位置（秒）", "f", ACCESS_READ)
    for component in runtime.health:
        if _ok(component.name):
            base = f"/exhibit/health/{component.name}"
            yield _Node(f"{base}/status", f"{component.kind} health / 健康状态", "s", ACCESS_READ, vals=STATUSES)
            yield _Node(f"{base}/reason", "why, when not ok / 原因", "s", ACCESS_READ)
    for info in runtime.catalogue:
        tag = INPUT_TAGS.get(info.type)
        if info.group == "sensor" and tag and ".health." not in info.name and _ok(*info.name.split(".")):
            yield _Node(input_path(info.name), f"{info.meaning} ({info.name})", tag, ACCESS_READ, info.name)


def readables(runtime: Runtime) -> dict[str, Readable]:
    """Every address whose value can be read or LISTENed to, with its type."""
    return {node.path: Readable(node.tag, node.signal) for node in _nodes(runtime) if node.access & ACCESS_READ}


def current_values(runtime: Runtime, wanted: dict[str, Readable]) -> dict[str, Any]:
    """The current (typed) value of each ``wanted`` address that has one: hub state, and the store for inputs."""
    raw: dict[str, Any] = {}
    for topic, data in list(runtime.events.state.items()):
        raw.update(state_values(topic, data))
    values: dict[str, Any] = {}
    for path, readable in wanted.items():
        if readable.signal is not None:
            value = runtime.store.get(readable.signal).value if readable.signal in runtime.store else None
        elif path in raw:
            value = raw[path]
        else:
            continue
        value = typed(readable.tag, value)
        if value is not None:
            values[path] = value
    return values


def control_namespace(runtime: Runtime) -> dict[str, Any]:
    """The whole OSCQuery tree, with the current VALUE of every readable node (built at each request)."""
    title = runtime.exhibit.title
    name = f"{title.en} / {title.zh}" if title.zh else title.en
    root: dict[str, Any] = {"FULL_PATH": "/", "CONTENTS": {}, "DESCRIPTION": f"{name}: control and state / 控制与状态"}
    nodes = list(_nodes(runtime))
    values = current_values(runtime, {n.path: Readable(n.tag, n.signal) for n in nodes if n.access & ACCESS_READ})
    for node in nodes:
        attributes: dict[str, Any] = {"TYPE": node.tag, "ACCESS": node.access, "DESCRIPTION": node.description}
        if node.vals:
            attributes["RANGE"] = [{"VALS": list(node.vals)}]
        if node.path in values:
            attributes["VALUE"] = [values[node.path]]
        node_at(root, node.path).update(attributes)
    return root
