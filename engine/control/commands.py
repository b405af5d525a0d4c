"""The operator's commands, one table for every surface: the console and its HTTP API, QLab-style OSC,
MQTT control and OSCQuery all call :meth:`Controller.execute` with a command's name, its parameters and
who asks, and get the same :class:`Reply`. Every command is checked against the asker's role and
written to the audit log, whether it worked or not.

What a command does is the :class:`engine.show.Show` interface; this module only names, checks and
records. Commands that need the show answer ``unavailable`` while none runs (at start, at stop).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from engine.control.audit import AuditLog
from engine.studio import simulation

if TYPE_CHECKING:
    from engine.cues import CueList
    from engine.runtime import Runtime
    from engine.show import Show

log = logging.getLogger("engine.control")

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
"""From least to most allowed: each role may do what the ones before it may."""
ErrorCode = Literal["bad_request", "forbidden", "not_found", "conflict", "unavailable"]


@dataclass(frozen=True)
class Actor:
    """Who asks: a console user, an API token, an OSC or MQTT client."""

    name: str
    role: Role
    via: str
    """The surface: ``console``, ``http``, ``osc``, ``mqtt``..."""
    address: str = ""
    """Where from: the client's IP address (and port), or the MQTT client."""

    def may(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class Reply:
    ok: bool
    data: Any = None
    error: str = ""
    """One sentence, in English and Chinese, when ``ok`` is false."""
    code: ErrorCode | None = None

    def as_dict(self) -> dict[str, Any]:
        """The reply every surface sends: ``{"status": "ok", "data": ...}`` or ``{"status": "error", ...}``."""
        if self.ok:
            return {"status": "ok", "data": self.data}
        return {"status": "error", "error": self.error, "code": self.code}


class CommandError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Param:
    type: Literal["str", "number", "bool", "value"]
    required: bool = False
    summary: str = ""


@dataclass(frozen=True)
class Command:
    name: str
    """Also the path of its HTTP endpoint and MQTT topic: ``estop/reset`` is ``POST /api/v1/estop/reset``."""
    role: Role
    summary: str
    run: Callable[[Controller, Mapping[str, Any]], Any]
    params: Mapping[str, Param] = field(default_factory=dict)
    needs_show: bool = True


CUE_LIST = Param("str", summary="the cue list (optional when the exhibit has one)")


def _show(controller: Controller) -> Show:
    show = controller.runtime.show
    if show is None:
        raise CommandError("unavailable", "the show is not running (starting or stopping) / 演出未在运行")
    return show


def _cue_list(show: Show, p: Mapping[str, Any]) -> CueList:
    """The cue list a command names (or the only one), and its cue if it names one; refused with a sentence."""
    name = p.get("cue_list")
    if name is None and len(show.cue_lists) != 1:
        names = ", ".join(show.cue_lists) or "none / 无"
        raise CommandError("bad_request", f"name the cue list (`cue_list`): {names} / 请指定提示列表")
    cue_list = show.cue_lists.get(name) if name is not None else next(iter(show.cue_lists.values()))
    if cue_list is None:
        raise CommandError("not_found", f"no cue list `{name}` / 没有该提示列表")
    cue = p.get("cue")
    if cue is not None and all(c.id != cue for c in cue_list.cues):
        raise CommandError("not_found", f"cue list `{cue_list.name}` has no cue `{cue}` / 没有该提示")
    return cue_list


def _go(c: Controller, p: Mapping[str, Any]) -> Any:
    show = _show(c)
    _cue_list(show, p)
    if show.panicked:
        raise CommandError("conflict", "the show is in PANIC: reset it first / 演出处于紧急停止状态，请先复位")
    fired = show.go(p.get("cue_list"), p.get("cue"))
    if not fired:
        raise CommandError("conflict", "nothing to GO: the list is at its end or GO came too soon / 没有可执行的提示")
    return c.cue_list_state(show, p.get("cue_list"))


def _back(c: Controller, p: Mapping[str, Any]) -> Any:
    show = _show(c)
    _cue_list(show, p)
    show.back(p.get("cue_list"))
    return c.cue_list_state(show, p.get("cue_list"))


def _goto(c: Controller, p: Mapping[str, Any]) -> Any:
    show = _show(c)
    _cue_list(show, p)
    show.goto(p["cue"], p.get("cue_list"))
    return c.cue_list_state(show, p.get("cue_list"))


def _step(offset: int) -> Callable[[Controller, Mapping[str, Any]], Any]:
    def step(c: Controller, p: Mapping[str, Any]) -> Any:
        show = _show(c)
        cue_list = _cue_list(show, p)
        if offset < 0:
            cue_list.back()
        else:
            cue_list.playhead = min(len(cue_list.cues), cue_list.playhead + offset)
        return c.cue_list_state(show, p.get("cue_list"))

    return step


def _stop(c: Controller, p: Mapping[str, Any]) -> Any:
    show = _show(c)
    for cue_list in show.cue_lists.values():
        cue_list.stop()
    for timeline in show.timelines.values():
        timeline.stop()
    return None


def _pause(c: Controller, p: Mapping[str, Any]) -> Any:
    _show(c).pause()


def _resume(c: Controller, p: Mapping[str, Any]) -> Any:
    _show(c).resume()


def _panic(c: Controller, p: Mapping[str, Any]) -> Any:
    _show(c).panic()


def _reset(c: Controller, p: Mapping[str, Any]) -> Any:
    _show(c).reset()


def _estop(c: Controller, p: Mapping[str, Any]) -> Any:
    _show(c).estop(by=c.current.name if c.current else "operator")


def _estop_reset(c: Controller, p: Mapping[str, Any]) -> Any:
    _show(c).reset_estop()


def _arm(c: Controller, p: Mapping[str, Any]) -> Any:
    show = _show(c)
    if p["device"] not in show.safety.motion:
        raise CommandError("not_found", f"`{p['device']}` is not a motion device / 不是运动设备")
    if not show.arm(p["device"]):
        raise CommandError("conflict", "the e-stop is latched: reset it first / 急停已锁定，请先复位")


def _disarm(c: Controller, p: Mapping[str, Any]) -> Any:
    show = _show(c)
    if p["device"] not in show.safety.motion:
        raise CommandError("not_found", f"`{p['device']}` is not a motion device / 不是运动设备")
    show.disarm(p["device"])


def _state(c: Controller, p: Mapping[str, Any]) -> Any:
    show = _show(c)
    machine = show.machines.get(p["machine"])
    if machine is None:
        raise CommandError("not_found", f"no state machine `{p['machine']}` / 没有该状态机")
    if p["state"] not in machine.states:
        raise CommandError("not_found", f"`{p['machine']}` has no state `{p['state']}` / 没有该状态")
    machine.go(p["state"])
    return {"machine": machine.name, "state": machine.state}


def _var(c: Controller, p: Mapping[str, Any]) -> Any:
    show = _show(c)
    name = p["name"]
    if name not in show.exhibit.variables:
        raise CommandError("not_found", f"no variable `{name}` / 没有该变量")
    value = _coerce(show.exhibit.variables[name], p["value"])
    show.store.set(f"var.{name}", value)
    return {"name": name, "value": value}


def _audience_pause(c: Controller, p: Mapping[str, Any]) -> Any:
    """Pause (or let in again) what the audience's phones send: nothing they send counts meanwhile."""
    show = _show(c)
    audiences = [name for name, config in show.exhibit.sensors.items() if config.kind == "audience"]
    name = p.get("sensor") or (audiences[0] if len(audiences) == 1 else None)
    if name not in audiences:
        have = ", ".join(audiences) or "none"
        raise CommandError("not_found", f"name the audience sensor ({have}) / 请指定观众互动传感器")
    if show.panicked and not p["paused"]:
        raise CommandError("conflict", "PANIC holds the audience paused: reset first / 紧急停止中，请先复位")
    show.fades.set_now(name, "paused", bool(p["paused"]))
    return {"sensor": name, "paused": bool(p["paused"])}


def _coerce(initial: Any, value: Any) -> float | int | bool | str:
    """``value`` as the type of the variable's start value; raises CommandError when it cannot be."""
    kind = type(initial)
    try:
        if kind is bool:
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "on", "off"):
                return value.lower() in ("true", "1", "on")
            if isinstance(value, bool | int) and not isinstance(value, float):
                return bool(value)
            raise ValueError
        if kind is str:
            return str(value)
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if not math.isfinite(number):
            raise ValueError
        if kind is int:
            if number != int(number):
                raise ValueError
            return int(number)
        return number
    except (TypeError, ValueError, OverflowError):
        raise CommandError(
            "bad_request", f"{value!r} is not a {kind.__name__} / 数值类型不符 ({kind.__name__})"
        ) from None


def _take_over(c: Controller, p: Mapping[str, Any]) -> Any:
    authority = c.runtime.authority
    if authority is None:
        raise CommandError("conflict", "this node has no backup role in a show network / 本节点不在演出网络中")
    if authority.driving:
        raise CommandError("conflict", "this node drives the devices already / 本节点已在驱动设备")
    if not authority.ready:
        raise CommandError("unavailable", "not in touch with the show network's broker / 未连接演出网络")
    who = c.current.name if c.current else "operator"
    claim = authority.take_over(c.runtime.clock.now(), f"taken over by {who}")
    return {"node": claim.node, "epoch": claim.epoch}


def _site_go(c: Controller, p: Mapping[str, Any]) -> Any:
    send = c.runtime.site.send_cue
    authority = c.runtime.authority
    if authority is not None and not authority.driving:
        raise CommandError("conflict", "a backup node sends no cues: the node that drives does / 备份节点不发送提示")
    if send is None:
        raise CommandError("unavailable", "not connected to the show network / 未连接演出网络")
    nodes = [n.strip() for n in str(p["nodes"]).split(",") if n.strip()]
    if not nodes:
        raise CommandError("bad_request", "name the nodes (`nodes`: a,b or *) / 请指定节点")
    lead = float(p.get("lead", 1.0))
    if not 0.05 <= lead <= 60:
        raise CommandError("bad_request", "`lead` is between 0.05 and 60 seconds / 提前量须在 0.05 到 60 秒之间")
    return send(nodes, p.get("cue_list"), p.get("cue"), lead)


def _leave_safe_mode(c: Controller, p: Mapping[str, Any]) -> Any:
    if not c.runtime.leave_safe_mode():
        raise CommandError("conflict", "the exhibit is not in safe mode / 展品未处于安全模式")
    return {"safe_mode": False}


def _lock(locked: bool) -> Callable[[Controller, Mapping[str, Any]], Any]:
    def lock(c: Controller, p: Mapping[str, Any]) -> Any:
        c.locked = locked
        return {"locked": locked}

    return lock


def _reload(c: Controller, p: Mapping[str, Any]) -> Any:
    if c.locked:
        raise CommandError("conflict", "the show lock is on: unlock it to reload / 演出锁定中，无法重新加载")
    if c.reloader is None:
        raise CommandError("unavailable", "this run does not watch its exhibit file / 本次运行不支持重新加载")
    if not c.reloader():
        raise CommandError("conflict", "the exhibit file did not reload: see the log / 重新加载失败，请查看日志")


def _sim(action: Callable[[Runtime, Mapping[str, Any]], Any]) -> Callable[[Controller, Mapping[str, Any]], Any]:
    """A studio simulation control (:mod:`engine.studio.simulation`): refused unless the run is simulated."""

    def run(c: Controller, p: Mapping[str, Any]) -> Any:
        try:
            return action(c.runtime, p)
        except simulation.SimulationRefused as refused:
            raise CommandError(refused.code, str(refused)) from None

    return run


POSE_SENSOR = Param("str", summary="the pose sensor (optional when the exhibit has one)")
VISITOR_POSE = {
    "x": Param("number", summary="where the visitor stands across the image, 0..1"),
    "y": Param("number", summary="where their feet are, image y 0..1 (down)"),
    "height": Param("number", summary="feet to the top of the head, in frame heights (0.05..1)"),
    "left_hand": Param("number", summary="0 the arm down by the hip .. 1 the hand well above the head"),
    "right_hand": Param("number", summary="as left_hand"),
}


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command(
            "go",
            "operator",
            "Fire the standby cue (or the named cue).",
            _go,
            {"cue_list": CUE_LIST, "cue": Param("str", summary="fire this cue instead of the standby one")},
        ),
        Command("back", "operator", "Move the playhead back one cue.", _back, {"cue_list": CUE_LIST}),
        Command(
            "playhead",
            "operator",
            "Put the playhead on a cue (it becomes standby).",
            _goto,
            {"cue": Param("str", True, "the cue"), "cue_list": CUE_LIST},
        ),
        Command("playhead/next", "operator", "Move the playhead to the next cue.", _step(1), {"cue_list": CUE_LIST}),
        Command("playhead/previous", "operator", "Move the playhead back one cue.", _step(-1), {"cue_list": CUE_LIST}),
        Command("stop", "operator", "Stop every cue list and timeline (no PANIC: outputs hold).", _stop),
        Command("pause", "operator", "Pause cue lists, timelines and fades.", _pause),
        Command("resume", "operator", "Resume what PAUSE froze.", _resume),
        Command("panic", "operator", "Every output to its safe state now; logic stops until reset.", _panic),
        Command("reset", "operator", "Leave PANIC: logic restarts; nothing resumes by itself.", _reset),
        Command("estop", "operator", "Latch the e-stop: motion stops until a deliberate reset.", _estop),
        Command("estop/reset", "operator", "Release the e-stop latch (re-arms nothing).", _estop_reset),
        Command("arm", "operator", "Allow a motion device to move.", _arm, {"device": Param("str", True)}),
        Command("disarm", "operator", "Stop a motion device from moving.", _disarm, {"device": Param("str", True)}),
        Command(
            "state",
            "operator",
            "Put a state machine in a state.",
            _state,
            {"machine": Param("str", True), "state": Param("str", True)},
        ),
        Command(
            "var", "operator", "Set a variable.", _var, {"name": Param("str", True), "value": Param("value", True)}
        ),
        Command(
            "audience/pause",
            "operator",
            "Pause what the audience's phones send (nothing counts), or let it in again.",
            _audience_pause,
            {
                "paused": Param("bool", True),
                "sensor": Param("str", summary="the audience sensor (optional when the exhibit has one)"),
            },
        ),
        Command(
            "site/takeover",
            "operator",
            "Backup node: take over the devices now (a new epoch; the node that drove them stops at once).",
            _take_over,
            needs_show=False,
        ),
        Command(
            "site/go",
            "operator",
            "GO on several nodes of the show network at once, in sync: they start at the same site time.",
            _site_go,
            {
                "nodes": Param("str", True, "node names, comma separated, or * for every node"),
                "cue_list": Param("str", summary="the cue list on each node (optional where it has one)"),
                "cue": Param("str", summary="fire this cue instead of the standby one"),
                "lead": Param("number", summary="seconds from now to the common start (default 1)"),
            },
            needs_show=False,
        ),
        Command(
            "safe-mode/leave",
            "operator",
            "End safe mode (entered after repeated crashes): the show's logic starts; motion stays disarmed.",
            _leave_safe_mode,
            needs_show=False,
        ),
        Command(
            "lock",
            "operator",
            "Turn the show lock on: no reload or editing during a performance.",
            _lock(True),
            needs_show=False,
        ),
        Command("unlock", "admin", "Turn the show lock off.", _lock(False), needs_show=False),
        Command(
            "reload", "admin", "Reload the exhibit file (refused while the show lock is on).", _reload, needs_show=False
        ),
        Command(
            "sim/input",
            "admin",
            "Simulated runs: pin a sensor input to a value over its simulator (no value: release it).",
            _sim(simulation.pin_input),
            {"signal": Param("str", True, "the input"), "value": Param("value", summary="the value; null releases")},
            needs_show=False,
        ),
        Command(
            "sim/input/release",
            "admin",
            "Simulated runs: release every pinned input; returns the names released.",
            _sim(simulation.release_inputs),
            needs_show=False,
        ),
        Command(
            "sim/visitor/add",
            "admin",
            "Simulated runs: a simulated visitor steps in front of a pose sensor; returns its id.",
            _sim(simulation.add_visitor),
            {"sensor": POSE_SENSOR, **VISITOR_POSE},
            needs_show=False,
        ),
        Command(
            "sim/visitor/pose",
            "admin",
            "Simulated runs: move or pose a simulated visitor.",
            _sim(simulation.pose_visitor),
            {"sensor": POSE_SENSOR, "id": Param("number", True, "the visitor's id"), **VISITOR_POSE},
            needs_show=False,
        ),
        Command(
            "sim/visitor/remove",
            "admin",
            "Simulated runs: a simulated visitor leaves.",
            _sim(simulation.remove_visitor),
            {"sensor": POSE_SENSOR, "id": Param("number", True, "the visitor's id")},
            needs_show=False,
        ),
        Command(
            "sim/recording",
            "admin",
            "Simulated runs: mute a pose sensor's recording (only simulated visitors are seen), or unmute it.",
            _sim(simulation.mute_recording),
            {"sensor": POSE_SENSOR, "muted": Param("bool", True)},
            needs_show=False,
        ),
        Command(
            "sim/event",
            "admin",
            "Simulated runs: fire an event by hand.",
            _sim(simulation.fire_event),
            {"signal": Param("str", True, "the event"), "payload": Param("value", summary="its payload")},
            needs_show=False,
        ),
        Command(
            "sim/clock",
            "admin",
            "Simulated runs: pretend the wall time (ISO 8601, the exhibit's time zone without an offset); "
            "null: the true time. The opening hours follow at once.",
            _sim(simulation.pretend_clock),
            {"at": Param("str", summary="e.g. 2026-10-01T18:55; null goes back to the true time")},
            needs_show=False,
        ),
    )
}


ALWAYS = frozenset({"estop", "panic"})
"""Never refused on a backup node: they act on its model at once, and the site service passes them on to the node
that drives the devices."""


class Controller:
    """Runs commands for every surface, checks roles and records each one in the audit log."""

    def __init__(self, runtime: Runtime, audit: AuditLog | None = None) -> None:
        self.runtime = runtime
        self.audit = audit or AuditLog(None)
        self.locked = runtime.exhibit.control.show_lock
        self.reloader: Callable[[], bool] | None = None
        """Reloads the exhibit file (set by the run that watches it); True when the new version runs."""
        self.current: Actor | None = None
        self.listeners: list[Callable[[str, Reply], None]] = []
        """Told of every command that ran (the event hub refreshes the show state at once)."""
        self.counts = {"ok": 0, "error": 0}

    def execute(self, name: str, params: Mapping[str, Any] | None, actor: Actor) -> Reply:
        reply = self._run(name, dict(params or {}), actor)
        self.counts["ok" if reply.ok else "error"] += 1
        self.audit.record(actor, name, dict(params or {}), reply)
        for listener in list(self.listeners):
            try:
                listener(name, reply)
            except Exception:
                log.exception("a command listener failed")
        return reply

    def _run(self, name: str, params: dict[str, Any], actor: Actor) -> Reply:
        command = COMMANDS.get(name)
        if command is None:
            return Reply(False, error=f"no command `{name}` / 没有该命令", code="not_found")
        if not actor.may(command.role):
            return Reply(
                False, error=f"`{name}` needs the {command.role} role / 需要{command.role}权限", code="forbidden"
            )
        authority = self.runtime.authority
        if command.needs_show and authority is not None and not authority.driving and name not in ALWAYS:
            return Reply(
                False,
                error="this node is a backup tracking the one that drives the devices: take over first "
                "/ 本节点为备份节点，正在跟随主节点，请先接管",
                code="conflict",
            )
        try:
            checked = _check_params(command, params)
            self.current = actor
            data = command.run(self, checked)
        except CommandError as error:
            return Reply(False, error=str(error), code=error.code)
        except Exception:  # a fault in the show must reach the operator as an answer, never kill the surface
            log.exception("command %s failed", name)
            return Reply(False, error=f"`{name}` failed: see the log / 命令执行失败，请查看日志", code="unavailable")
        finally:
            self.current = None
        return Reply(True, data)

    def cue_list_state(self, show: Show, name: str | None) -> dict[str, Any]:
        cue_list = show.cue_list(name)
        standby = cue_list.standby
        return {
            "cue_list": cue_list.name,
            "standby": standby.id if standby else None,
            "last": cue_list.fired[-1][1] if cue_list.fired else None,
        }


def _check_params(command: Command, params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(command.params))
    if unknown:
        raise CommandError("bad_request", f"`{command.name}` takes no `{unknown[0]}` / 未知参数 `{unknown[0]}`")
    for key, param in command.params.items():
        value = params.get(key)
        if value is None:
            if param.required:
                raise CommandError("bad_request", f"`{command.name}` needs `{key}` / 缺少参数 `{key}`")
            params.pop(key, None)
            continue
        if param.type == "str" and not isinstance(value, str):
            params[key] = _as_name(key, value)
        elif param.type == "value" and not isinstance(value, str | int | float | bool):
            raise CommandError("bad_request", f"`{key}` must be a number, text or true/false / 参数类型错误")
    return params


def _as_name(key: str, value: Any) -> str:
    # A QLab cue number sent as a number (/playhead/3 arrives as text; {"cue": 3} as a number).
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**18:
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and abs(value) < 1e18:
        return str(int(value)) if value.is_integer() else str(value)
    raise CommandError("bad_request", f"`{key}` must be text / 参数 `{key}` 必须是文本")
