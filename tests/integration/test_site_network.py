"""The show network with real processes on a real Mosquitto: two exhibits on two nodes announce themselves,
measure their clock offsets to each other, `exhibit site` lists them with their health, and a synced GO (from an
operator's surface, and from the command line) starts the cue on both at the common site time."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import aiomqtt

from tests.support.controller_process import ROOT, ControllerProcess
from tests.support.site_peers import NodeInfo

EXHIBIT = """\
format_version: 1
id: {id}
title: {{en: Gallery {id}, zh: 展厅}}
mqtt: {{broker: embedded, prefix: exhibit}}
devices:
  wash:
    kind: mqtt
    properties:
      brightness: {{type: int, range: [0, 255], safe: 0}}
cues:
  show:
    cues:
      - {{id: "1", name: Lights up, actions: [{{set: wash.brightness, value: 200}}]}}
      - {{id: "2", name: Lights down, actions: [{{set: wash.brightness, value: 20}}]}}
"""


def start(tmp_path: Path, broker: str, exhibit: str, node: str) -> ControllerProcess:
    folder = tmp_path / exhibit
    folder.mkdir()
    (folder / "exhibit.yaml").write_text(EXHIBIT.format(id=exhibit))
    args = ["run", str(folder / "exhibit.yaml"), "--broker", broker, "--no-render", "--no-reload", "--no-console"]
    return ControllerProcess([*args, "--node", node, "--state-dir", str(folder / "state")], folder / "run.log")


def site(broker: str, *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "launcher.py"), "site", "--broker", broker, *words],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def site_report(broker: str, *words: str) -> subprocess.CompletedProcess[str]:
    """``exhibit report --site``: the site's report as the analytics commands word it."""
    command = [sys.executable, str(ROOT / "launcher.py"), "report", "--site", "--broker", broker, *words]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)


async def fired(port: int, count: int, timeout: float = 15.0) -> list[dict]:
    reports: list[dict] = []
    async with aiomqtt.Client("127.0.0.1", port, identifier="fired-watch") as client:
        await client.subscribe("exhibit/site/nodes/+/fired", qos=1)
        async with asyncio.timeout(timeout):
            async for message in client.messages:
                reports.append(json.loads(bytes(message.payload)))
                if len(reports) >= count:
                    return reports
    return reports


async def test_two_nodes_are_listed_and_a_synced_go_starts_on_both(mosquitto, tmp_path: Path):
    processes = [
        start(tmp_path, mosquitto.url, "north-hall", "north"),
        start(tmp_path, mosquitto.url, "south-hall", "south"),
    ]
    try:
        async with NodeInfo(mosquitto.port) as nodes:
            for name, peer in (("north", "south"), ("south", "north")):
                for _ in range(200):
                    info = nodes.info.get(name, {})
                    if peer in info.get("offsets_ms", {}):
                        break
                    await asyncio.sleep(0.1)
                assert peer in info.get("offsets_ms", {}), info  # measured over the broker
                assert info["reference"] == "north" and info["mode"] == "running" and info["role"] == "alone"
                assert abs(info["offsets_ms"][peer]) < 50  # one machine, one clock: only the round trip's error

        listing = site(mosquitto.url)
        assert listing.returncode == 0, listing.stderr
        lines = listing.stdout.splitlines()
        assert lines[0].split()[:4] == ["NODE", "EXHIBIT", "ROLE", "MODE"]
        north = next(line for line in lines if line.startswith("north "))
        assert "north-hall" in north and "running" in north and north.rstrip().endswith("yes")
        as_json = json.loads(site(mosquitto.url, "--json").stdout)
        assert set(as_json) == {"north", "south"} and as_json["south"]["exhibit"] == "south-hall"

        # From an operator's surface on one node: MQTT control of north-hall, to every node.
        watching = asyncio.create_task(fired(mosquitto.port, 2))
        await asyncio.sleep(0.5)
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="operator") as client:
            await client.publish(
                "exhibit/north-hall/control/site/go", json.dumps({"nodes": "*", "cue_list": "show", "lead": 1.0}), qos=1
            )
        reports = await watching
        assert {r["node"] for r in reports} == {"north", "south"} and all(r["ok"] for r in reports), reports
        assert max(r["at"] for r in reports) - min(r["at"] for r in reports) < 0.1  # seconds apart if unsynced

        # From the command line, cue 2 on south only.
        result = site(mosquitto.url, "go", "--nodes", "south", "--cue-list", "show", "--cue", "2", "--lead", "0.5")
        assert result.returncode == 0, result.stdout + result.stderr
        sent = json.loads(result.stdout)
        assert [r["node"] for r in sent["reports"]] == ["south"] and sent["reference"] == "north"
        assert sent["reports"][0]["at"] >= sent["command"]["start_at"] - 0.01  # never before the common start

        processes[1].kill()  # its Last Will says so
        listing = site(mosquitto.url)
        south = next(line for line in listing.stdout.splitlines() if line.startswith("south "))
        assert south.rstrip().endswith("no")
    except BaseException:
        for process in processes:
            print(process.output()[-3000:])
        raise
    finally:
        for process in processes:
            process.close()


async def test_the_site_report_puts_every_exhibits_last_day_side_by_side(mosquitto, tmp_path: Path):
    summaries = {
        "north-hall": {"exhibit": "north-hall", "k": 5, "suppressed": True, "occupancy_peak": 2, "interactions": {}},
        "south-hall": {
            "exhibit": "south-hall", "k": 5, "suppressed": False, "visitors": 40, "stopped": 10, "attraction": 0.25,
            "holding_median_s": 12, "holding_p90_s": 48, "occupancy_mean": 0.7, "occupancy_peak": 5,
            "interactions": {"plinth.button": 9}, "simulated": False,
        },
    }  # fmt: skip
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="halls") as client:
        for exhibit, summary in summaries.items():
            await client.publish(f"exhibit/{exhibit}/analytics/today", json.dumps(summary), qos=1, retain=True)
    out = tmp_path / "site.html"
    done = site(mosquitto.url, "report", "--out", str(out))
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    assert "<td>&lt; 5</td>" in page.split("north-hall")[1].split("</tr>")[0]  # fewer than k: no figure
    south = page.split("south-hall")[1].split("</tr>")[0]
    assert "<td>40</td>" in south and "<td>25 %</td>" in south and "<td>12 s</td>" in south and "<td>9</td>" in south
    total = page.split("全站 Site")[1].split("</tr>")[0]
    assert "<th>40</th>" in total and "<th>25 %</th>" in total and "<th>5</th>" in total
    assert "SIMULATED" not in page and "http" not in page.replace("http-equiv", "")

    # `exhibit report --site` writes the same page (the words for it)
    same = tmp_path / "same.html"
    done = site_report(mosquitto.url, "--out", str(same))
    assert done.returncode == 0, done.stderr
    without_time = re.compile(r"Generated [^<]*")
    assert without_time.sub("", same.read_text(encoding="utf-8")) == without_time.sub("", page)
    mixed = site_report(mosquitto.url, "canal-lanterns")
    assert mixed.returncode != 0 and "leave out EXHIBIT" in mixed.stderr, mixed.stderr
