"""Hot reload: a valid new version takes over the logic without restarting anything;
an invalid one is reported and the running version goes on."""

from __future__ import annotations

import logging
from pathlib import Path

from engine.clock import VirtualClock
from engine.reload import ExhibitWatcher
from engine.runtime import Runtime, RuntimeOptions
from engine.validate import load_exhibit
from tests.support.show_harness import commands, registry

TEXT = """\
format_version: 1
id: reload
title: {en: Reload}
sensors:
  panel:
    kind: osc
    signals: {level: {address: /level}}
devices:
  wash:
    kind: mqtt
    properties: {level: {type: float, range: [0, 100], safe: 0}}
variables: {count: 0}
states:
  mode:
    initial: idle
    states:
      idle: {transitions: [{to: busy, when: "panel.level > 0.5"}]}
      busy: {enter: [{set: wash.level, value: 100, fade: 10s}]}
mappings: []
"""


async def start(tmp_path: Path):
    path = tmp_path / "exhibit.yaml"
    path.write_text(TEXT)
    reg = registry()
    clock = VirtualClock()
    runtime = Runtime(load_exhibit(path, reg), reg, options=RuntimeOptions(simulate=True), clock=clock)
    await runtime.start()
    watcher = ExhibitWatcher(path, reg, runtime, clock)
    runtime.supervisor.start("reload", watcher.run)
    return path, runtime, clock, watcher


async def test_a_valid_change_takes_over_within_a_second_without_a_jump(tmp_path: Path):
    path, runtime, clock, watcher = await start(tmp_path)
    sensor = runtime.sensors["panel"]
    runtime.store.set("panel.level", 0.9)  # -> busy: a 10 s fade to 100 starts
    runtime.store.set("var.count", 3)
    await clock.advance(5.0)
    before = commands(runtime, "wash")[-1][1]["level"]
    path.write_text(
        TEXT.replace('when: "panel.level > 0.5"', 'when: "panel.level > 0.7"')
        + 'rules:\n  - {when: "panel.level < 0.1", do: [{set: wash.level, value: 1}]}\n'
    )
    await clock.advance(0.3)
    assert watcher.reloads == 1
    assert runtime.show is not None and runtime.show.machines["mode"].state == "busy"  # kept its state
    assert runtime.store.get("var.count").value == 3  # and its variables
    assert runtime.sensors["panel"] is sensor  # no input was reopened
    after = commands(runtime, "wash")[-1][1]["level"]
    assert 0 < after - before < 6  # the running fade went on, no jump
    await clock.advance(5.0)
    assert commands(runtime, "wash")[-1][1]["level"] == 100.0
    runtime.store.set("panel.level", 0.0)  # the new rule works
    await clock.advance(0.1)
    assert commands(runtime, "wash")[-1][1] == {"level": 1}
    await runtime.stop()


async def test_an_invalid_change_is_reported_and_changes_nothing(tmp_path: Path, caplog):
    caplog.set_level(logging.ERROR)
    path, runtime, clock, watcher = await start(tmp_path)
    show = runtime.show
    path.write_text(TEXT.replace('when: "panel.level > 0.5"', 'when: "panel.levle > 0.5"'))
    await clock.advance(0.3)
    assert watcher.reloads == 0 and watcher.rejected == 1 and runtime.show is show
    assert "unknown name `panel.levle`" in caplog.text and "the running version goes on unchanged" in caplog.text
    runtime.store.set("panel.level", 0.9)
    await clock.advance(0.1)
    assert show is not None and show.machines["mode"].state == "busy"  # the old logic still runs
    await runtime.stop()


async def test_hardware_changes_wait_for_a_restart(tmp_path: Path, caplog):
    path, runtime, clock, watcher = await start(tmp_path)
    path.write_text(TEXT.replace("range: [0, 100]", "range: [0, 255]"))
    await clock.advance(0.3)
    assert watcher.reloads == 0 and "restart the exhibit to apply them" in caplog.text
    await runtime.stop()


async def test_the_show_lock_holds_a_changed_file_until_unlocked_and_the_reload_command_forces_it(tmp_path: Path):
    from engine.control.commands import Actor

    path, runtime, clock, watcher = await start(tmp_path)
    admin = Actor("root", "admin", "console")
    runtime.control.reloader = lambda: watcher.check(force=True)
    assert runtime.control.execute("lock", {}, admin).ok
    path.write_text(TEXT.replace("variables: {count: 0}", "variables: {count: 0, extra: 1}"))
    await clock.advance(1.0)
    assert watcher.reloads == 0  # held while the performance runs
    assert runtime.control.execute("reload", {}, admin).code == "conflict"
    assert runtime.control.execute("unlock", {}, admin).ok
    await clock.advance(0.3)
    assert watcher.reloads == 1 and "extra" in runtime.exhibit.variables
    assert runtime.control.execute("reload", {}, admin).ok and watcher.reloads == 2  # same file, on demand
    await runtime.stop()


async def test_a_studio_save_is_applied_off_the_loop_and_held_while_the_show_is_locked(tmp_path: Path):
    from engine.control.commands import Actor

    path, runtime, clock, watcher = await start(tmp_path)
    admin = Actor("root", "admin", "console")
    path.write_text(TEXT.replace("variables: {count: 0}", "variables: {count: 0, saved: 1}"))
    assert await watcher.apply_saved() == "applied"
    assert "var.saved" in runtime.store and watcher.reloads == 1
    assert runtime.control.execute("lock", {}, admin).ok
    path.write_text(TEXT.replace("variables: {count: 0}", "variables: {count: 0, saved: 2}"))
    assert await watcher.apply_saved() == "held"
    await clock.advance(1.0)
    assert watcher.reloads == 1  # still held by the lock
    assert runtime.control.execute("unlock", {}, admin).ok
    await clock.advance(0.3)
    assert watcher.reloads == 2  # the unlock lets it in
    await runtime.stop()
