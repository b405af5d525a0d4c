"""The operator's commands and the event protocol, on a running show on virtual time: what every
surface (console, OSC, MQTT) gets, checked once here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.control.audit import AuditLog
from engine.control.commands import COMMANDS, Actor
from engine.control.protocol import VERSION
from tests.support.show_harness import commands, start_show

EXHIBIT = """\
format_version: 1
id: control
title: {en: Control, zh: 控制}
sensors:
  panel:
    kind: osc
    signals:
      button: {address: /button, type: bool}
      level: {address: /level}
devices:
  wash:
    kind: mqtt
    properties:
      level: {type: float, range: [0, 100], safe: 0}
  turntable:
    kind: mqtt
    motion: true
    properties:
      speed: {type: float, range: [0, 10], safe: 0}
variables:
  visits: 0
  mood: calm
  live: false
  gain: 0.5
safety:
  estop: [panel.button]
states:
  mode:
    initial: idle
    states:
      idle: {}
      show: {enter: [{set: wash.level, value: 40}]}
cues:
  main:
    guard: 0s
    cues:
      - {id: "1", actions: [{set: wash.level, value: 10}]}
      - {id: "2", actions: [{set: wash.level, value: 20}]}
      - {id: "3", actions: [{set: wash.level, value: 30}]}
"""

OPERATOR = Actor("ana", "operator", "console", "127.0.0.1")
VIEWER = Actor("vic", "viewer", "console", "127.0.0.1")


async def test_go_fires_the_standby_cue_and_the_reply_says_where_the_playhead_is():
    runtime, _clock = await start_show(EXHIBIT)
    reply = runtime.control.execute("go", {}, OPERATOR)
    assert reply.ok and reply.data == {"cue_list": "main", "standby": "2", "last": "1"}
    assert commands(runtime, "wash")[-1][1] == {"level": 10}
    assert reply.as_dict() == {"status": "ok", "data": reply.data}
    await runtime.stop()


async def test_a_viewer_changes_nothing_and_is_told_why():
    runtime, _clock = await start_show(EXHIBIT)
    for name in ("go", "panic", "estop", "var"):
        reply = runtime.control.execute(name, {"name": "visits", "value": 3} if name == "var" else {}, VIEWER)
        assert not reply.ok and reply.code == "forbidden", name
    assert commands(runtime, "wash") == [] and not runtime.safety.latched and runtime.show and not runtime.show.panicked
    assert runtime.control.execute("unlock", {}, OPERATOR).code == "forbidden"  # only an admin unlocks
    await runtime.stop()


@pytest.mark.parametrize(
    ("name", "params", "code"),
    [
        ("go", {"cue": "9"}, "not_found"),
        ("playhead", {}, "bad_request"),
        ("playhead", {"cue": "9"}, "not_found"),
        ("go", {"cue_list": "nope"}, "not_found"),
        ("go", {"speed": 2}, "bad_request"),
        ("state", {"machine": "mode", "state": "party"}, "not_found"),
        ("state", {"machine": "nope", "state": "idle"}, "not_found"),
        ("var", {"name": "visits", "value": "many"}, "bad_request"),
        ("var", {"name": "visits", "value": 1.5}, "bad_request"),
        ("var", {"name": "gain", "value": float("inf")}, "bad_request"),
        ("var", {"name": "live", "value": 2.5}, "bad_request"),
        ("var", {"name": "ghost", "value": 1}, "not_found"),
        ("arm", {"device": "wash"}, "not_found"),
        ("fly", {}, "not_found"),
        ("reload", {}, "forbidden"),
    ],
)
async def test_bad_commands_are_refused_with_a_code_and_a_bilingual_sentence(name, params, code):
    runtime, _clock = await start_show(EXHIBIT)
    reply = runtime.control.execute(name, params, OPERATOR)
    assert not reply.ok and reply.code == code
    assert " / " in reply.error or "`" in reply.error
    assert commands(runtime, "wash") == []
    await runtime.stop()


async def test_variables_take_their_start_values_type():
    runtime, _clock = await start_show(EXHIBIT)
    assert runtime.control.execute("var", {"name": "visits", "value": "7"}, OPERATOR).data == {
        "name": "visits",
        "value": 7,
    }
    assert runtime.control.execute("var", {"name": "gain", "value": 2}, OPERATOR).data["value"] == 2.0
    assert runtime.control.execute("var", {"name": "live", "value": "on"}, OPERATOR).data["value"] is True
    assert runtime.control.execute("var", {"name": "mood", "value": 3}, OPERATOR).data["value"] == "3"
    assert runtime.store.get("var.visits").value == 7 and type(runtime.store.get("var.gain").value) is float
    await runtime.stop()


async def test_playhead_commands_move_the_standby_cue_without_firing_anything():
    runtime, _clock = await start_show(EXHIBIT)
    control = runtime.control
    assert control.execute("playhead", {"cue": 3}, OPERATOR).data["standby"] == "3"  # a QLab cue number
    assert control.execute("playhead/previous", {}, OPERATOR).data["standby"] == "2"
    assert control.execute("playhead/next", {}, OPERATOR).data["standby"] == "3"
    assert control.execute("playhead/next", {}, OPERATOR).data["standby"] is None  # past the end
    assert control.execute("go", {}, OPERATOR).code == "conflict"
    assert commands(runtime, "wash") == []
    await runtime.stop()


async def test_panic_refuses_go_until_reset_and_reset_fires_nothing():
    runtime, clock = await start_show(EXHIBIT)
    control = runtime.control
    control.execute("go", {}, OPERATOR)
    assert control.execute("panic", {}, OPERATOR).ok
    await clock.advance(5)
    assert commands(runtime, "wash")[-1][1] == {"level": 0}
    assert control.execute("go", {}, OPERATOR).code == "conflict"
    assert control.execute("reset", {}, OPERATOR).ok
    await clock.advance(1)
    assert commands(runtime, "wash")[-1][1] == {"level": 0}
    assert control.execute("go", {}, OPERATOR).ok
    await runtime.stop()


async def test_the_estop_says_what_latched_it_and_a_reset_arms_nothing():
    runtime, _clock = await start_show(EXHIBIT)
    control = runtime.control
    assert control.execute("arm", {"device": "turntable"}, OPERATOR).ok
    runtime.store.set("panel.button", True)
    runtime.events.refresh()
    assert runtime.events.state["safety"] | {"blocked": 0} == {
        "estop": True,
        "by": "panel.button",
        "motion": ["turntable"],
        "armed": [],
        "blocked": 0,
    }
    assert control.execute("arm", {"device": "turntable"}, OPERATOR).code == "conflict"
    assert control.execute("estop/reset", {}, OPERATOR).ok
    control.execute("estop", {}, OPERATOR)
    runtime.events.refresh()
    assert runtime.events.state["safety"]["by"] == "ana"
    control.execute("estop/reset", {}, OPERATOR)
    runtime.events.refresh()
    assert runtime.events.state["safety"]["estop"] is False and runtime.events.state["safety"]["armed"] == []
    await runtime.stop()


async def test_the_show_lock_refuses_reload_until_an_admin_unlocks():
    runtime, _clock = await start_show(EXHIBIT)
    admin = Actor("root", "admin", "console")
    control = runtime.control
    reloads: list[bool] = []

    def reload() -> bool:
        reloads.append(True)
        return True

    control.reloader = reload
    assert control.execute("lock", {}, OPERATOR).ok
    assert control.execute("reload", {}, admin).code == "conflict" and reloads == []
    assert control.execute("unlock", {}, admin).ok
    assert control.execute("reload", {}, admin).ok and reloads == [True]
    await runtime.stop()


async def test_every_command_is_audited_with_who_what_where_and_how_it_ended(tmp_path: Path):
    runtime, _clock = await start_show(EXHIBIT)
    runtime.control.audit = AuditLog(tmp_path / "audit.log", max_bytes=400, backups=2)
    runtime.control.execute("go", {}, OPERATOR)
    runtime.control.execute("go", {}, VIEWER)
    runtime.control.audit.flush()  # written once what the command sent has left
    lines = [json.loads(line) for line in (tmp_path / "audit.log").read_text(encoding="utf-8").splitlines()]
    first, second = lines
    assert (first["who"], first["via"], first["from"], first["action"], first["ok"]) == (
        "ana",
        "console",
        "127.0.0.1",
        "go",
        True,
    )
    assert (second["who"], second["ok"]) == ("vic", False) and "operator" in second["error"]
    for _ in range(10):  # the file rotates: the oldest lines go to audit.log.1, .2, never grow without end
        runtime.control.execute("back", {}, OPERATOR)
    runtime.control.audit.flush()
    assert (tmp_path / "audit.log.2").exists() and not (tmp_path / "audit.log.3").exists()
    assert len(runtime.control.audit.recent) == 12
    runtime.control.audit.close()
    await runtime.stop()


async def test_subscribers_get_the_whole_state_then_only_changes_in_protocol_events():
    runtime, _clock = await start_show(EXHIBIT)
    hub = runtime.events
    sub = hub.subscribe(topics=("cuelist/", "show", "state/"))
    first = {e["topic"]: e for e in await sub.next()}
    assert set(first) == {"cuelist/main", "show", "state/mode"}
    assert all(e["v"] == VERSION for e in first.values())
    assert first["cuelist/main"]["data"]["standby"] == "1"
    runtime.control.execute("go", {}, OPERATOR)
    changed = await sub.next()
    assert [e["topic"] for e in changed] == ["cuelist/main"]
    assert changed[0]["data"]["standby"] == "2" and changed[0]["data"]["last"] == "1"
    runtime.control.execute("state", {"machine": "mode", "state": "show"}, OPERATOR)
    assert [(e["topic"], e["data"]["state"]) for e in await sub.next()] == [("state/mode", "show")]
    sub.close()
    await runtime.stop()


async def test_a_slow_subscriber_gets_the_latest_state_not_a_backlog():
    runtime, _clock = await start_show(EXHIBIT)
    hub = runtime.events
    sub = hub.subscribe(topics=("cuelist/",))
    await sub.next()
    for _ in range(3):
        runtime.control.execute("go", {}, OPERATOR)
    events = await sub.next()
    assert len(events) == 1 and events[0]["data"]["last"] == "3"
    await runtime.stop()


async def test_health_figures_alone_go_out_once_a_second_and_a_new_status_at_once():
    runtime, _clock = await start_show(EXHIBIT)
    hub = runtime.events
    now = [1000.0]
    hub.now = lambda: now[0]
    sub = hub.subscribe(topics=("health/panel",))
    await sub.next()
    health = next(component for component in runtime.health if component.name == "panel")
    figure = next(iter(health.figures))
    sent: list[dict] = []
    for step in range(30):  # three seconds of a figure changing ten times a second
        health.figure(figure, 1000.0 + step)
        hub.refresh()
        sent += sub.take()
        now[0] += 0.1
    assert 3 <= len(sent) <= 4, [event["data"][figure] for event in sent]
    now[0] += 1.0
    hub.refresh()
    last = (sent + sub.take())[-1]["data"]
    assert last[figure] == 1029  # the latest figure arrives within a second
    health.set("degraded", "a test")
    hub.refresh()
    assert [event["data"]["status"] for event in sub.take()] == ["degraded"]  # a new status goes at once
    sub.close()
    await runtime.stop()


async def test_watched_signals_are_pushed_as_they_change_and_unwatched_ones_are_not():
    runtime, _clock = await start_show(EXHIBIT)
    hub = runtime.events
    sub = hub.subscribe(topics=("nothing",))
    assert hub.watch(sub, "panel.level") and not hub.watch(sub, "panel.nope")
    assert [e["topic"] for e in await sub.next()] == ["signal/panel.level"]
    runtime.store.set("panel.level", 0.25)
    (event,) = await sub.next()
    assert event["data"]["value"] == 0.25 and event["data"]["stale"] is False
    hub.unwatch(sub, "panel.level")
    runtime.store.set("panel.level", 0.5)
    runtime.control.execute("go", {}, OPERATOR)
    assert sub.take() == []  # nothing it asked for
    other = hub.subscribe(topics=("nothing",))
    hub.watch(other, "panel.level")
    sub.close()
    runtime.store.set("panel.level", float("nan"))
    events = await other.next()
    assert events[-1]["data"]["value"] is None  # JSON has no NaN
    await runtime.stop()


async def test_a_signal_change_wakes_each_sender_once_however_many_mailboxes_it_serves():
    runtime, _clock = await start_show(EXHIBIT)
    hub = runtime.events
    wakes: list[str] = []

    def sender() -> None:
        wakes.append("sender")

    def other_sender() -> None:
        wakes.append("other sender")

    alone = hub.subscribe(topics=("nothing",))  # read with next(): its own wake
    hub.watch(alone, "panel.level")
    served = [hub.subscribe(topics=("nothing",)) for _ in range(20)]
    for sub in served[:10]:
        sub.on_put = sender  # before watching...
        hub.watch(sub, "panel.level")
    for sub in served[10:]:
        hub.watch(sub, "panel.level")
    runtime.store.set("panel.level", 0.5)  # (the wakers are worked out)
    for sub in served[10:]:
        sub.on_put = other_sender  # ...or after
    wakes.clear()
    runtime.store.set("panel.level", 0.75)
    assert sorted(wakes) == ["other sender", "sender"]
    (event,) = await alone.next()
    assert event["data"]["value"] == 0.75
    assert all(sub.take()[-1]["data"]["value"] == 0.75 for sub in served)  # each still gets the value
    await runtime.stop()


def test_every_command_names_a_role_and_says_what_it_does():
    for command in COMMANDS.values():
        assert command.role in ("viewer", "operator", "admin") and command.summary.endswith(".")


async def test_the_schedule_topic_says_todays_hours_and_what_comes_next():
    import datetime

    text = EXHIBIT + (
        "schedule:\n  timezone: Asia/Shanghai\n  weekly: {fri: '09:00-12:00, 13:00-17:00'}\n"
        "  exceptions:\n    - {date: 2026-10-02, hours: '10:00-16:00', note: Golden Week}\n"
    )
    wall = datetime.datetime(2026, 10, 2, 3, 30, tzinfo=datetime.UTC)  # 11:30 in Shanghai, a Friday
    runtime, _clock = await start_show(text, wall=wall)
    runtime.events.refresh()
    assert runtime.events.state["schedule"] == {
        "open": True,
        "today": ["10:00-16:00"],
        "note": "Golden Week",
        "next_change": "2026-10-02T16:00:00+08:00",
        "opens": False,
    }
    assert runtime.events.state["show"]["open"] is True
    await runtime.stop()


async def test_a_subject_a_reload_removes_is_sent_once_more_as_null_then_forgotten():
    runtime, _clock = await start_show(EXHIBIT)
    hub = runtime.events
    sub = hub.subscribe(topics=("cuelist/",))
    await sub.next()
    from engine.validate import validate_text
    from tests.support.show_harness import registry

    assert runtime.reload(validate_text(EXHIBIT.split("cues:")[0], "show.yaml", registry()))
    hub.refresh()
    assert [(e["topic"], e["data"]) for e in await sub.next()] == [("cuelist/main", None)]
    assert "cuelist/main" not in hub.state
    await runtime.stop()


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("playhead", {"cue": 10**400}),
        ("playhead", {"cue": 10**5000}),
        ("var", {"name": "visits", "value": 10**400}),
        ("var", {"name": "gain", "value": -(10**400)}),
        ("playhead", {"cue": [1]}),
        ("playhead", {"cue": float("nan")}),
    ],
)
async def test_numbers_no_float_can_hold_are_refused_not_raised(name, params):
    runtime, _clock = await start_show(EXHIBIT)
    reply = runtime.control.execute(name, params, OPERATOR)
    assert not reply.ok and reply.code == "bad_request"
    assert json.loads(json.dumps(runtime.control.audit.recent[-1], allow_nan=False))["ok"] is False
    await runtime.stop()


def test_plain_turns_slots_dataclasses_and_arrays_into_json():
    from dataclasses import dataclass

    import numpy as np

    from engine.control.protocol import plain

    @dataclass(slots=True)
    class Point:
        x: float
        tags: tuple[str, ...]

    assert plain({"p": Point(float("inf"), ("a",)), "a": np.array([1.5, 2.0]), 3: 2**70}) == {
        "p": {"x": None, "tags": ["a"]},
        "a": [1.5, 2.0],
        "3": None,
    }
