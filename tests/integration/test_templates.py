"""``exhibit new NAME --template T``: every template makes an exhibit that passes ``check`` and runs for 10 s
with ``--simulate`` (headless: the scene is drawn offscreen), on the embedded broker, as a curator would try it;
and the command refuses what it must, changing nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from engine.errors import UserError
from engine.templates import TEMPLATES_DIR, create_exhibit, template_names
from tests.conftest import ROOT, free_port, run_launcher

SIMULATED = {
    "pose-lights": "pose sensor body is simulated from recordings/visitors.jsonl.gz",
    "button-cue": "board plinth connected on a simulated board",
    "osc-bridge": "OSC sensor desk is simulated",
    "ar-mirror": "pose sensor body is simulated from recordings/visitors.jsonl.gz",
}


def test_every_template_is_offered_and_is_an_exhibit_folder():
    assert sorted(template_names()) == sorted(SIMULATED)
    assert sorted(path.name for path in TEMPLATES_DIR.iterdir() if path.is_dir()) == sorted(SIMULATED)


@pytest.mark.parametrize("template", sorted(SIMULATED))
def test_a_new_exhibit_from_each_template_checks_and_runs_10_s_simulated(template: str, tmp_path: Path):
    made = run_launcher("new", "my-exhibit", "--template", template, "--into", str(tmp_path))
    assert made.returncode == 0, made.stderr
    folder = tmp_path / "my-exhibit"
    assert "id: my-exhibit" in (folder / "exhibit.yaml").read_text(encoding="utf-8")
    recordings = folder / "recordings"
    assert not recordings.exists() or all(not p.is_symlink() and p.stat().st_size > 0 for p in recordings.iterdir())
    checked = run_launcher("check", str(folder))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    port = free_port()
    argv = [
        sys.executable, str(ROOT / "launcher.py"), "run", str(folder), "--simulate", "--headless",
        "--duration", "10", "--embedded-port", str(port), "--console-port", str(free_port()),
    ]  # fmt: skip
    log = tmp_path / "run.log"  # a file, not a pipe: nobody reads it while the exhibit runs
    with log.open("w") as output, subprocess.Popen(argv, cwd=ROOT, stdout=output, stderr=output) as proc:
        commands = asyncio.run(device_commands(port, "my-exhibit", seconds=8.0))
        proc.wait(timeout=60)
    err = log.read_text(encoding="utf-8")
    assert proc.returncode == 0, err
    assert "Traceback" not in err and " ERROR " not in err, err
    assert "connected to the MQTT broker" in err
    assert SIMULATED[template] in err
    assert "devices are in their safe state" in err
    if template == "pose-lights":  # the recorded visitors raise their hands: the light follows
        assert any(command.get("brightness", 0) > 0 for command in commands.get("light", [])), commands


async def device_commands(port: int, exhibit_id: str, seconds: float) -> dict[str, list[dict[str, Any]]]:
    """Every device command the exhibit publishes on its embedded broker for ``seconds``, by device (the
    broker is tried until it answers: a bare port probe would be logged by it as a broken client)."""
    heard: dict[str, list[dict[str, Any]]] = {}
    deadline = time.monotonic() + 30.0
    while True:
        try:
            async with aiomqtt.Client("127.0.0.1", port, identifier="template-test") as client:
                await client.subscribe(f"exhibit/{exhibit_id}/devices/+/set")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(seconds):
                        async for message in client.messages:
                            device = str(message.topic).split("/")[-2]
                            heard.setdefault(device, []).append(json.loads(str(message.payload.decode())))
                return heard
        except aiomqtt.MqttError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def test_new_refuses_a_bad_name_an_unknown_template_and_an_existing_folder(tmp_path: Path):
    with pytest.raises(UserError, match="cannot be an exhibit's name"):
        create_exhibit("My Show", "osc-bridge", tmp_path)
    with pytest.raises(UserError, match="there is no template `disco`"):
        create_exhibit("show", "disco", tmp_path)
    existing = tmp_path / "show"
    existing.mkdir()
    (existing / "exhibit.yaml").write_text("mine\n", encoding="utf-8")
    with pytest.raises(UserError, match="already exists: nothing was changed"):
        create_exhibit("show", "osc-bridge", tmp_path)
    assert (existing / "exhibit.yaml").read_text(encoding="utf-8") == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["show"]  # no half-made folder left behind
    refused = run_launcher("new", "Bad Name", "--template", "osc-bridge", "--into", str(tmp_path))
    assert refused.returncode != 0 and refused.stderr.startswith("error: `Bad Name` cannot be")
