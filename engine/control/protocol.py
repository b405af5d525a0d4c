"""The one event protocol every operator surface speaks (version 1).

An event is a topic and a JSON payload: ``{"v": 1, "topic": "cuelist/main", "data": {...}}`` on the
console's WebSocket; the same payload, retained, on ``<prefix>/<id>/show/cuelist/main`` over MQTT; the
same payload as a JSON string in ``/update/cuelist/main`` over OSC. State topics (everything but
``log``, ``audit`` and ``reply``) always carry the whole current state of their subject, so a client
that joins late, or misses one, needs nothing else.

State topics:

``show``                 panic, open (opening hours), locked (show lock), paused, action_errors
``cuelist/<name>``       cues, playhead, standby, last fired, paused
``state/<machine>``      the machine's current state
``timeline/<name>``      playing, paused, position
``var/<name>``           a variable's value
``safety``               e-stop latched and by what, motion devices and which are armed
``health/<component>``   status, reason, since, and the component's figures (rate, age...); ``in_use: false``
                         for a service this run does without (offline, nothing wrong)
``schedule``             open now, the next change and whether it opens or closes
``audience/<sensor>``    phones connected, input paused, and each vote: open, votes, the choice ahead
``signal/<name>``        value, stale, t (only the signals a client asks for)

A state topic whose subject is gone (a reload removed the cue list) is sent once more with ``data: null``.

Stream topics: ``log`` (a log line), ``audit`` (a control action), ``reply`` (a command's result).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.control.commands import Controller
    from engine.runtime import Runtime
    from engine.signals import Signal

VERSION = 1
STREAM_TOPICS = ("log", "audit", "reply")


def after_output(callback: Callable[[], None]) -> None:
    """Call ``callback`` once what the current callback sent to devices has left: two turns of the loop on.

    A device command is written when the selector next reports its socket writable (the MQTT client
    registers a writer), and that write is queued behind whatever was already ready; a plain ``call_soon``
    would still run first. Without a running loop, at once."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        callback()
        return
    loop.call_soon(loop.call_soon, callback)


def event(topic: str, data: Any) -> dict[str, Any]:
    return {"v": VERSION, "topic": topic, "data": data}


def plain(value: Any) -> Any:
    """``value`` as JSON can carry it: non-finite and huge numbers become null, tuples lists, objects their fields."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        return None  # no JSON reader holds it (and Python will not even print one of 4,300 digits)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    outward = getattr(value, "outward", None)
    if callable(outward):  # what the object lets out (a visitor: never its landmarks)
        return plain(outward())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # slots dataclasses have no __dict__
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return plain(value.tolist())
    if hasattr(value, "__dict__"):
        return {k: plain(v) for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)


def signal_data(signal: Signal) -> dict[str, Any]:
    return {"value": plain(signal.value), "stale": signal.stale, "t": signal.timestamp}


def audience_data(show: Any, name: str, config: Any) -> dict[str, Any]:
    """An audience sensor for operators: its phones, whether input is paused, and its votes."""

    def value(signal: str) -> Any:
        full = f"{name}.{signal}"
        return plain(show.store.get(full).value) if full in show.store else None

    votes = {
        vote: {
            "open": bool(value(f"{vote}.voting")),
            "votes": value(f"{vote}.votes") or 0,
            "leader": value(f"{vote}.leader"),
        }
        for vote in config.of_type("vote")
    }
    return {"count": value("count") or 0, "paused": bool(show.fades.value(name, "paused")), "votes": votes}


def state_topics(runtime: Runtime, controller: Controller) -> dict[str, Any]:
    """Every state topic but ``signal/...``, as it is now."""
    topics: dict[str, Any] = {}
    show = runtime.show
    health = runtime.health
    for component in health:
        topics[f"health/{component.name}"] = {
            "kind": component.kind,
            **plain(component.as_dict()),
            **({} if component.in_use else {"in_use": False}),
        }
    safety = runtime.safety
    topics["safety"] = {
        "estop": safety.latched,
        "by": safety.latched_by,
        "motion": sorted(safety.motion),
        "armed": sorted(safety.armed),
        "blocked": safety.blocked,
    }
    recovered = runtime.recovered
    site = runtime.site
    authority = runtime.authority
    topics["node"] = {
        "name": site.node,
        "mode": runtime.mode,
        "safe_mode": runtime.safe_mode,
        "crashes": len(recovered.crashes) if recovered else 0,
        "recovered": bool(recovered and recovered.crashed),
        "role": authority.role if authority else None,
        "driving": authority.driving if authority else True,
        "epoch": authority.epoch if authority else 0,
    }
    topics["site"] = {
        "prefix": site.prefix,
        "reference": site.reference,
        "clock_offset_ms": round(site.site_offset() * 1000, 1),
        "nodes": [plain(info) for _, info in sorted(site.nodes.items())],
        "analytics": [plain(figures) for _, figures in sorted(site.analytics.items())],
    }
    if show is None:
        topics["show"] = {
            "running": False,
            "panic": False,
            "open": None,
            "locked": controller.locked,
            "safe_mode": runtime.safe_mode,
        }
        return topics
    paused = any(c.pauser.paused for c in show.cue_lists.values())
    topics["show"] = {
        "running": True,
        "panic": show.panicked,
        "open": show.store.get("schedule.open").value if show.exhibit.schedule is not None else None,
        "locked": controller.locked,
        "paused": paused,
        "action_errors": show.ctx.errors,
    }
    for name, cue_list in show.cue_lists.items():
        standby = cue_list.standby
        topics[f"cuelist/{name}"] = {
            "cues": [{"id": cue.id, "name": cue.name} for cue in cue_list.cues],
            "playhead": cue_list.playhead,
            "standby": standby.id if standby else None,
            "last": cue_list.fired[-1][1] if cue_list.fired else None,
            "paused": cue_list.pauser.paused,
        }
    for name, machine in show.machines.items():
        topics[f"state/{name}"] = {"state": machine.state, "states": list(machine.states)}
    for name, timeline in show.timelines.items():
        topics[f"timeline/{name}"] = {
            "playing": timeline.playing,
            "paused": timeline.paused,
            "position": round(timeline.position, 3),
        }
    for name in show.exhibit.variables:
        topics[f"var/{name}"] = {"value": plain(show.store.get(f"var.{name}").value)}
    for name, config in show.exhibit.sensors.items():
        if config.kind == "audience":
            topics[f"audience/{name}"] = audience_data(show, name, config)
    schedule = show.exhibit.schedule
    if schedule is not None:
        now = runtime.clock.wall()
        try:
            change, opens = schedule.next_change(now)
            upcoming: dict[str, Any] = {"next_change": change.isoformat(), "opens": opens}
        except ValueError:  # always open or always closed: nothing changes
            upcoming = {"next_change": None, "opens": None}
        topics["schedule"] = {"open": schedule.is_open(now), **schedule.day_summary(now), **upcoming}
    return topics
