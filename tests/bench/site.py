"""``launcher.py bench``: the show network (issue 16). Every node is a real ``launcher.py run`` process on a private
Mosquitto, watched by one MQTT 5 client in this process (device commands with the ``node`` and ``epoch`` user
properties every node of a show network sends, the nodes' retained announcements, their synced cues' reports):

* ``takeover_ms``: a primary and a backup (``--role``, the default ``--takeover-after``) on one exhibit; from just
  before the driving node's SIGKILL to the other node's first device command. The killed node is started again (it
  joins as backup) and the next round kills the node that drives then; baseline: ``takeover_after`` itself, the
  heartbeat silence a backup waits for by design.
* ``restart_to_safe_ms``: one node alone, its show running; SIGKILLed and at once started again with the same
  command and state folder (systemd's ``Restart=on-failure`` without its ``RestartSec`` delay); from just before the
  kill to the last of the exhibit's devices having its safe state again. Baseline: a bare Python process (paho-mqtt)
  spawned the same way that connects and publishes the same safe states.
* ``sync_cue_skew_ms``: four nodes (no role) on this one machine, one synced GO (``<site>/cue``) at a common start
  time; the spread of the wall times at which the four started it (their ``fired`` reports), median over rounds.
  Baseline: four bare Python processes (paho-mqtt) that get the same kind of message and sleep until its start time.

Shape only is tested; no timing here fails a build.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiomqtt
from aiomqtt import ProtocolVersion

from engine.authority import TAKEOVER_AFTER
from tests.bench.procs import BenchError, Children, start_mosquitto
from tests.bench.results import Figure, figure, verdict

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[2]
EXHIBIT_ID = "bench-site"
SITE = "exhibit/site"
BARE_SITE = "bench/site"
"""Where the bare synced-cue listeners get their cues and report: not the nodes' topics, so the runs cannot mix."""
CUE_LIST = "together"
SAFE: dict[str, dict[str, Any]] = {
    "wash": {"brightness": 0},
    "spot": {"level": 0},
    "boat": {"speed": 0, "enabled": False},
}
"""Each device's safe state as the exhibit below declares it (the motor profile's: stopped and disabled)."""
TAKEOVER_SLACK_MS = 500.0
RESTART_LIMIT_MS = 5000.0
SKEW_LIMIT_MS = 5.0
RESTART_SEC = 2.0
"""``RestartSec=`` of the systemd unit ``exhibit service install`` writes: not in ``restart_to_safe_ms``."""
SETTLE_S = 1.0
"""After a backup (or a node started again) announced itself, before the next kill: it has heard the heartbeat."""
CUE_GAP_S = 0.5
"""Between the nodes' start time and the bare listeners' in one round: the two never wake together."""

EXHIBIT = """\
format_version: 1
id: {exhibit_id}
title: {{en: Show network bench, zh: 展演网络基准}}
mqtt: {{broker: embedded, prefix: exhibit}}

devices:
  wash:
    kind: mqtt
    properties:
      brightness: {{type: int, range: [0, 255], safe: 0}}
  spot:
    kind: mqtt
    properties:
      level: {{type: float, range: [0, 1], safe: 0}}
  boat:
    kind: mqtt
    profile: {{profile: motor, soft_limits: [0, 360], max_speed: 20, max_accel: 10}}

cues:
  {cue_list}:
    cues:
      - {{id: "1", name: Together, actions: [{{set: spot.level, value: 1}}]}}
  {dusk}:
    cues:
      - id: "1"
        name: A slow dusk
        actions:
          - {{set: wash.brightness, value: 250}}
          - {{set: spot.level, value: 1}}
          - {{arm: boat}}
          - {{set: boat.enabled, value: true}}
          - {{set: boat.speed, value: 5}}
        fade: 20s

timelines:
  breath:
    loop: true
    tracks:
      wash.brightness: [[0, 20], [1, 220, ease-in-out], [2, 20, ease-in-out]]
      spot.level: [[0, 0.2], [1, 0.8, ease-in-out], [2, 0.2, ease-in-out]]
{show}"""
"""Three MQTT devices, a cue list with one cue for the synced GOs and one that fades them up and sets the boat
turning. A primary and its backup run one file (a backup whose file differs neither follows nor takes over); the
synced-cue nodes, which have no role, each run their own exhibit (``bench-site-n1`` ...), as rooms of one site do:
nodes without a role that ran one exhibit on one broker would share its MQTT client id and throw each other off."""
BREATHING = """
states:
  mode:
    initial: attract
    states:
      attract:
        enter: [{timeline: breath}, {arm: boat}, {set: boat.enabled, value: true}, {set: boat.speed, value: 5}]
"""
"""The show the takeover's and the synced cues' nodes run: the devices kept moving from the start (the wash and the
spot breathe, the boat turns). Not the restarted node's: started again, it would send the show's first values in
the same batch as the safe state, which would never go out on its own (see :data:`SOLO`)."""
SOLO = f"{EXHIBIT_ID}-solo"
"""The exhibit of the node that is killed and started again: its devices moved by the dusk cue (a GO from the bench
over MQTT), which a restart does not fire again, as in tests/integration/test_crash_recovery.py."""
DUSK = "dusk"

BARE_SAFE = """\
import json, sys
import paho.mqtt.client as mqtt
port, prefix, safe = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bare-safe")
client.connect("127.0.0.1", port)
client.loop_start()
sent = [client.publish(f"{prefix}/devices/{name}/set", json.dumps(state), qos=1) for name, state in safe.items()]
for message in sent:
    message.wait_for_publish(10)
client.disconnect()
client.loop_stop()
"""
"""The restart baseline: what a process must do at the least to make the devices safe (start, connect, publish)."""

BARE_NODE = """\
import json, sys, threading, time
import paho.mqtt.client as mqtt
port, site, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def fire(data):
    start = float(data["start_at"])
    time.sleep(max(0.0, start - time.time()))
    at = time.time()
    report = {"id": data["id"], "node": name, "at": at, "late_ms": max(0.0, at - start) * 1000, "ok": True}
    client.publish(f"{site}/nodes/{name}/fired", json.dumps(report), qos=1)

def on_connect(client, userdata, flags, reason, properties):
    client.subscribe(f"{site}/cue", qos=1)

def on_subscribe(client, userdata, mid, reasons, properties):
    print("ready", flush=True)

def on_message(client, userdata, message):
    data = json.loads(message.payload)
    if name in data.get("nodes", []):
        threading.Thread(target=fire, args=(data,), daemon=True).start()

client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bare-{name}")
client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
client.connect("127.0.0.1", port)
client.loop_forever()
"""
"""The synced-cue baseline: a listener that sleeps in a thread of its own until the start time (site time is this
machine's wall clock), then reports as a node does."""


@dataclass(frozen=True)
class SitePlan:
    takeovers: int
    """Kills of the driving node (primary, then the backup that took over, ...)."""
    restarts: int
    """Kill-and-restart rounds of a node alone (a fresh state folder every two: a third crash within five
    minutes would start safe mode)."""
    cues: int
    """Synced GO rounds on the four nodes (and as many on the bare listeners)."""
    nodes: int = 4
    lead_s: float = 2.0
    """From sending a synced GO to its start time."""
    settle_s: float = 8.0
    """After the last node announced itself, before the first GO: the clock pings have settled."""
    takeover_after: float = TAKEOVER_AFTER


QUICK_SITE = SitePlan(takeovers=2, restarts=2, cues=3)
FULL_SITE = SitePlan(takeovers=3, restarts=3, cues=5)


@dataclass(frozen=True)
class SiteResults:
    takeover_ms: tuple[float, ...]
    takeover_epochs: tuple[int, ...]
    """The epoch of each takeover's first command (one more each time)."""
    takeover_after: float
    restart_ms: tuple[float, ...]
    restart_bare_ms: tuple[float, ...]
    restart_modes: tuple[str, ...]
    """The mode each restarted node announced (``running``; ``safe-mode`` would mean a crash loop)."""
    skew_ms: tuple[float, ...]
    skew_bare_ms: tuple[float, ...]
    late_ms: tuple[float, ...]
    """Per round, the latest node's start after the start time (its own ``late_ms``)."""
    nodes: int
    lead_s: float
    offsets_ms: tuple[float, ...]
    """Per GO, the largest ``clock_offset_ms`` (a node's offset to the site's reference node, as its latest
    announcement said when the GO was sent) by size: on one machine the true offsets are 0."""
    failed_gos: tuple[str, ...] = ()
    """Nodes' reports of a synced GO that did not run (``ok: false``), with their error."""


def run_site(plan: SitePlan, mosquitto: str) -> SiteResults:
    """Takeover, restart and synced-cue figures; every child process is stopped and every temp file removed."""
    with tempfile.TemporaryDirectory(prefix="exhibit-bench-site-") as tmp:
        children = Children(Path(tmp))
        try:
            port = start_mosquitto(children, mosquitto)
            log.info("site: mosquitto listening on 127.0.0.1:%d", port)
            return asyncio.run(measure_site(children, port, plan))
        finally:
            children.stop_all()


async def measure_site(children: Children, port: int, plan: SitePlan) -> SiteResults:
    async with SiteWatch(port) as watch:
        nodes = Nodes(children, port, watch)
        takeover_ms, epochs = await measure_takeovers(nodes, plan)
        restart_ms, modes = await measure_restarts(nodes, plan)
        restart_bare_ms = await measure_bare_restarts(nodes, plan)
        sync = await measure_sync(nodes, plan)
    return SiteResults(
        takeover_ms=tuple(takeover_ms),
        takeover_epochs=tuple(epochs),
        takeover_after=plan.takeover_after,
        restart_ms=tuple(restart_ms),
        restart_bare_ms=tuple(restart_bare_ms),
        restart_modes=tuple(modes),
        nodes=plan.nodes,
        lead_s=plan.lead_s,
        **sync,
    )


# --- watching the site and the devices ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Heard:
    at: float
    """``time.monotonic()`` on arrival."""
    device: str
    node: str | None
    """The ``node`` user property (None: a node without a role, or a bare process)."""
    epoch: int | None
    command: dict[str, Any]


@dataclass
class SiteWatch:
    """One MQTT 5 client on the devices' command topics, the nodes' announcements and their synced cues' reports
    (the nodes' and the bare listeners'); it also sends the synced GOs."""

    port: int
    commands: list[Heard] = field(default_factory=list)
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    info_at: dict[str, float] = field(default_factory=dict)
    """When each node's latest announcement arrived (monotonic): a retained one from a dead process is older."""
    fired: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """Synced cue id -> node -> its report."""

    async def __aenter__(self) -> SiteWatch:
        self.client = aiomqtt.Client(
            "127.0.0.1", self.port, identifier=f"bench-site-watch-{secrets.token_hex(3)}", protocol=ProtocolVersion.V5
        )
        await self.client.__aenter__()
        for exhibit in (EXHIBIT_ID, SOLO):
            await self.client.subscribe(f"exhibit/{exhibit}/devices/+/set", qos=1)
        for topic in (f"{SITE}/nodes/+/info", f"{SITE}/nodes/+/fired"):
            await self.client.subscribe(topic, qos=1)
        await self.client.subscribe(f"{BARE_SITE}/nodes/+/fired", qos=1)
        self.task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.client.__aexit__(None, None, None)

    async def _read(self) -> None:
        async for message in self.client.messages:
            at = time.monotonic()
            parts = message.topic.value.split("/")
            payload = bytes(message.payload or b"")
            if parts[-1] == "set":
                if message.retain:
                    continue  # kept from before: not a command sent now
                properties = dict(getattr(message.properties, "UserProperty", None) or [])
                epoch = properties.get("epoch")
                self.commands.append(
                    Heard(at, parts[-2], properties.get("node"), None if epoch is None else int(epoch), _load(payload))
                )
            elif parts[-1] == "info":
                if payload:
                    self.info[parts[-2]] = _load(payload)
                    self.info_at[parts[-2]] = at
                else:
                    self.info.pop(parts[-2], None)
            elif parts[-1] == "fired":
                report = _load(payload)
                self.fired.setdefault(str(report.get("id")), {})[parts[-2]] = report

    def announced(self, node: str, since: float, **expected: Any) -> bool:
        """``node`` announced itself after ``since`` (monotonic) and its latest announcement says ``expected``."""
        info = self.info.get(node)
        fresh = self.info_at.get(node, -1.0) > since
        return info is not None and fresh and all(info.get(key) == value for key, value in expected.items())

    def heard(self, node: str | None, after: float, count: int) -> bool:
        """At least ``count`` commands from ``node`` (None: from anyone) after ``after``."""
        return len(self.heard_from(node, after)) >= count

    def all_safe(self, after: float) -> bool:
        return len(self.safe_at(after)) == len(SAFE)

    def all_fired(self, count: int, *cues: str) -> bool:
        """Each of ``cues`` reported by ``count`` nodes (or bare listeners)."""
        return all(len(self.fired.get(cue, {})) == count for cue in cues)

    def heard_from(self, node: str | None, after: float) -> list[Heard]:
        return [c for c in self.commands if c.at > after and (node is None or c.node == node)]

    def safe_at(self, after: float) -> dict[str, float]:
        """When each device first had its safe state from the commands heard after ``after`` (applied in turn)."""
        state: dict[str, dict[str, Any]] = {name: {} for name in SAFE}
        safe: dict[str, float] = {}
        for heard in self.heard_from(None, after):
            if heard.device not in SAFE or heard.device in safe:
                continue
            state[heard.device].update(heard.command)
            if all(state[heard.device].get(key) == value for key, value in SAFE[heard.device].items()):
                safe[heard.device] = heard.at
        return safe

    async def go(self, site: str, nodes: list[str], start_at: float) -> str:
        """A synced GO of the one cue on ``site``'s topic, as ``launcher.py site go`` sends it (with a start in site
        time, which on this one machine is the wall clock); returns its id."""
        cue = {
            "id": secrets.token_hex(6),
            "nodes": nodes,
            "cue_list": CUE_LIST,
            "cue": "1",  # the one cue each time (after the first GO the list's standby would be its end)
            "start_at": start_at,
            "from": "bench",
        }
        await self.client.publish(f"{site}/cue", json.dumps(cue), qos=1)
        return str(cue["id"])


def _load(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


# --- the nodes --------------------------------------------------------------------------------------------------


class Nodes:
    """``launcher.py run`` processes of the bench's exhibit, each with its own name, copy and state folder."""

    def __init__(self, children: Children, port: int, watch: SiteWatch) -> None:
        self.children, self.port, self.watch = children, port, watch
        self.started = 0

    def argv(
        self,
        node: str,
        *,
        exhibit: str = EXHIBIT_ID,
        breathing: bool = True,
        state: str | None = None,
        role: str | None = None,
        takeover_after: float = TAKEOVER_AFTER,
    ) -> list[str]:
        """``launcher.py run`` of ``exhibit`` (one file per exhibit) as ``node`` with its state folder ``state``
        (default: the node's name)."""
        path = self.children.workdir / f"{exhibit}.yaml"
        if not path.exists():
            text = EXHIBIT.format(exhibit_id=exhibit, cue_list=CUE_LIST, dusk=DUSK, show=BREATHING if breathing else "")
            path.write_text(text, encoding="utf-8")
        argv = [sys.executable, "launcher.py", "run", str(path), "--broker", f"mqtt://127.0.0.1:{self.port}"]
        argv += ["--no-render", "--no-reload", "--no-console", "--node", node]
        argv += ["--state-dir", str(self.children.workdir / f"state-{state or node}")]
        if role is not None:
            argv += ["--role", role, "--takeover-after", f"{takeover_after:g}"]
        return argv

    def start(self, argv: list[str]) -> str:
        """Start a node; returns its name among the children (each start its own, so each keeps its log)."""
        self.started += 1
        name = f"{argv[argv.index('--node') + 1]}-{self.started}"
        self.children.start(name, argv, cwd=ROOT)
        return name

    def kill(self, name: str) -> float:
        """SIGKILL, as a crash or a power cut; returns ``time.monotonic()`` from just before the signal."""
        proc = self.children.procs.pop(name)
        killed = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        return killed

    async def stop(self, *names: str) -> None:
        """SIGTERM to all at once (each stops cleanly, its devices safe), then wait for each."""
        for name in names:
            proc = self.children.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for name in names:
            await asyncio.to_thread(self.children.stop, name)

    async def until(self, what: str, done: Callable[[], bool], timeout: float, *names: str) -> None:
        """Wait for ``done()``; a BenchError with the nodes' output if it is not so in ``timeout`` or one of
        ``names`` exits first."""
        deadline = time.monotonic() + timeout
        while not done():
            ended = next((n for n in names if self.children.procs[n].poll() is not None), None)
            if ended is not None or time.monotonic() > deadline:
                why = f"site bench: {what}: {f'{ended} exited' if ended else f'not within {timeout:g} s'}"
                culprit = ended or (names[-1] if names else None)
                raise self.children.failed(culprit, why) if culprit else BenchError(why)
            await asyncio.sleep(0.01)


# --- takeover -----------------------------------------------------------------------------------------------------


async def measure_takeovers(nodes: Nodes, plan: SitePlan) -> tuple[list[float], list[int]]:
    """Per round, from just before the driving node's SIGKILL to the other node's first device command."""
    watch = nodes.watch
    roles = {"alpha": "primary", "bravo": "backup"}
    argv = {node: nodes.argv(node, role=role, takeover_after=plan.takeover_after) for node, role in roles.items()}
    began = time.monotonic()
    running = {"alpha": nodes.start(argv["alpha"])}
    await nodes.until("the primary drives", lambda: watch.announced("alpha", began, driving=True), 30, running["alpha"])
    began = time.monotonic()
    running["bravo"] = nodes.start(argv["bravo"])
    await nodes.until(
        "the backup tracks", lambda: watch.announced("bravo", began, mode="tracking"), 30, running["bravo"]
    )
    driver, spare = "alpha", "bravo"
    ms: list[float] = []
    epochs: list[int] = []
    try:
        for index in range(plan.takeovers):
            now = time.monotonic()
            await asyncio.sleep(SETTLE_S)  # the spare has heard the driver's heartbeat (and its show) by now
            await nodes.until(f"{driver} drives the devices", partial(watch.heard, driver, now, 10), 10)
            killed = nodes.kill(running.pop(driver))
            await nodes.until(
                f"{spare} takes over from {driver}",
                partial(watch.heard, spare, killed, 1),
                plan.takeover_after + 15,
                running[spare],
            )
            first = watch.heard_from(spare, killed)[0]
            ms.append((first.at - killed) * 1000)
            epochs.append(first.epoch or 0)
            log.info("site: %s took over in %.0f ms (epoch %s)", spare, ms[-1], first.epoch)
            if index + 1 < plan.takeovers:  # the killed node comes back, as systemd restarts it: as backup
                began = time.monotonic()
                running[driver] = nodes.start(argv[driver])
                await nodes.until(
                    f"{driver} is back as backup",
                    partial(watch.announced, driver, began, mode="tracking"),
                    30,
                    running[driver],
                )
                driver, spare = spare, driver
    finally:
        await nodes.stop(*running.values())
    return ms, epochs


# --- crash restart to safe ----------------------------------------------------------------------------------------


async def measure_restarts(nodes: Nodes, plan: SitePlan) -> tuple[list[float], list[str]]:
    """Per round, from just before the node's SIGKILL to every device safe again after it was started again."""
    watch = nodes.watch
    ms: list[float] = []
    modes: list[str] = []
    name: str | None = None
    folder = -1
    try:
        for index in range(plan.restarts):
            argv = nodes.argv("solo", exhibit=SOLO, breathing=False, state=f"solo-{index // 2}")
            if index // 2 != folder:  # a fresh state folder: start the node afresh first
                if name is not None:
                    await nodes.stop(name)
                folder = index // 2
                began = time.monotonic()
                name = nodes.start(argv)
                await nodes.until("the node runs", partial(watch.announced, "solo", began, mode="running"), 30, name)
            assert name is not None
            await dusk(nodes, name)
            killed = nodes.kill(name)
            name = nodes.start(argv)  # at once: systemd's Restart=on-failure, without RestartSec
            await nodes.until("every device safe after the restart", partial(watch.all_safe, killed), 30, name)
            ms.append((max(watch.safe_at(killed).values()) - killed) * 1000)
            await nodes.until("the node announces itself", partial(watch.announced, "solo", killed), 30, name)
            modes.append(str(watch.info["solo"].get("mode")))
            log.info("site: every device safe %.0f ms after the kill (restarted in %s)", ms[-1], modes[-1])
    finally:
        if name is not None:
            await nodes.stop(name)
    return ms, modes


async def dusk(nodes: Nodes, name: str) -> None:
    """GO the dusk cue on the node alone (over MQTT, as an operator's surface does) and wait until its fade is
    under way; sent again while no command comes (the node's MQTT link may not have subscribed yet)."""
    for _ in range(10):
        sent = time.monotonic()
        await nodes.watch.client.publish(
            f"exhibit/{SOLO}/control/go", json.dumps({"cue_list": DUSK, "cue": "1", "id": 1}), qos=1
        )
        with contextlib.suppress(BenchError):
            await nodes.until("the dusk cue's fade", partial(nodes.watch.heard, None, sent, 20), 2.0, name)
            return
    raise nodes.children.failed(name, "site bench: the node alone never faded its devices up on a GO")


async def measure_bare_restarts(nodes: Nodes, plan: SitePlan) -> list[float]:
    """Per round, from just before a bare process is spawned to every device's safe state heard."""
    watch = nodes.watch
    ms: list[float] = []
    for index in range(plan.restarts):
        name = f"bare-safe-{index}"
        argv = [sys.executable, "-c", BARE_SAFE, str(nodes.port), f"exhibit/{SOLO}", json.dumps(SAFE)]
        spawned = time.monotonic()
        nodes.children.start(name, argv)
        await nodes.until("the bare process's safe states", partial(watch.all_safe, spawned), 15)
        ms.append((max(watch.safe_at(spawned).values()) - spawned) * 1000)
        await asyncio.to_thread(nodes.children.finish, name, 10.0)
        nodes.children.procs.pop(name, None)
    return ms


# --- synced cues --------------------------------------------------------------------------------------------------


async def measure_sync(nodes: Nodes, plan: SitePlan) -> dict[str, Any]:
    """Synced GOs on ``plan.nodes`` nodes and on as many bare listeners, alternately first; the spread of each
    round's start times."""
    watch, children = nodes.watch, nodes.children
    names = [f"n{i}" for i in range(1, plan.nodes + 1)]
    began = time.monotonic()
    running = [nodes.start(nodes.argv(node, exhibit=f"{EXHIBIT_ID}-{node}")) for node in names]
    bare = [f"bare-{node}" for node in names]
    try:
        for name, node in zip(bare, names, strict=True):
            children.start(name, [sys.executable, "-c", BARE_NODE, str(nodes.port), BARE_SITE, node], pipes=True)
        for name in bare:
            await asyncio.to_thread(children.wait_ready, name, 15.0)
        await nodes.until(
            f"all {plan.nodes} nodes announce themselves",
            lambda: all(watch.announced(node, began, mode="running") for node in names),
            60,
            *running,
        )
        await asyncio.sleep(plan.settle_s)  # clock offsets measured (quick pings at first)
        offsets: list[float] = []
        skew: list[float] = []
        skew_bare: list[float] = []
        late: list[float] = []
        failed: list[str] = []
        for index in range(plan.cues):
            start = time.time() + plan.lead_s
            offsets.append(max((float(watch.info[node].get("clock_offset_ms", 0.0)) for node in names), key=abs))
            nodes_first = index % 2 == 0  # alternately first: neither always has the quieter machine
            ours = await watch.go(SITE, names, start if nodes_first else start + CUE_GAP_S)
            theirs = await watch.go(BARE_SITE, names, start + CUE_GAP_S if nodes_first else start)
            await nodes.until(
                "every node's and every bare listener's report of a synced GO",
                partial(watch.all_fired, plan.nodes, ours, theirs),
                plan.lead_s + CUE_GAP_S + 15,
                *running,
            )
            reports = watch.fired[ours]
            failed += [f"{node}: {r.get('error')}" for node, r in sorted(reports.items()) if not r.get("ok")]
            skew.append(spread(reports))
            skew_bare.append(spread(watch.fired[theirs]))
            late.append(max(float(r.get("late_ms", 0.0)) for r in reports.values()))
            log.info("site: synced GO spread %.2f ms (bare %.2f ms)", skew[-1], skew_bare[-1])
    finally:
        await nodes.stop(*running, *(name for name in bare if name in children.procs))
    return {
        "skew_ms": tuple(skew),
        "skew_bare_ms": tuple(skew_bare),
        "late_ms": tuple(late),
        "offsets_ms": tuple(offsets),
        "failed_gos": tuple(failed),
    }


def spread(reports: dict[str, dict[str, Any]]) -> float:
    """Milliseconds from the first node's start to the last's (wall times, one machine: one clock)."""
    at = [float(report["at"]) for report in reports.values()]
    return (max(at) - min(at)) * 1000


# --- figures ------------------------------------------------------------------------------------------------------


def median(values: tuple[float, ...]) -> float:
    return statistics.median(values) if values else float("nan")


def site_figures(site: SiteResults) -> dict[str, Figure]:
    return {
        "takeover_ms": figure(median(site.takeover_ms), site.takeover_after * 1000, "ms"),
        "restart_to_safe_ms": figure(median(site.restart_ms), median(site.restart_bare_ms), "ms"),
        "sync_cue_skew_ms": figure(median(site.skew_ms), median(site.skew_bare_ms), "ms"),
    }


def runs(values: tuple[float, ...], digits: int = 0) -> str:
    shown = ", ".join(f"{value:.{digits}f}" for value in values)
    return f"runs {shown} ms; worst {max(values, default=float('nan')):.{digits}f} ms"


def site_samples(site: SiteResults) -> list[str]:
    """How the show network's figures were taken, so a reader can judge them."""
    devices = ", ".join(f"{name} {json.dumps(state)}" for name, state in SAFE.items())
    offsets = ", ".join(f"{value:g}" for value in site.offsets_ms)
    restarts = ", ".join(site.restart_modes)
    late = ", ".join(f"{value:.2f}" for value in site.late_ms)
    lines = [
        "site: every node a `launcher.py run --no-render --no-reload --no-console` process on a private Mosquitto "
        f"with {len(SAFE)} MQTT devices (wash, spot, a motor profile's boat); arrival timed by one MQTT 5 client in "
        "the bench's process (the node and epoch user properties of each command)",
        f"takeover_ms: {len(site.takeover_ms)} SIGKILLs of the driving node (a primary, then the backup that took "
        "over, the killed node started again as backup in between), the devices kept moving by a looping timeline, "
        f"with --takeover-after {site.takeover_after:g} (the default; the driver's heartbeat every takeover_after/6); "
        "from just before the SIGKILL to the other node's first device command; median reported "
        f"(epochs {', '.join(map(str, site.takeover_epochs))}); baseline: takeover_after itself, the heartbeat "
        "silence a backup waits for by design",
        f"  {runs(site.takeover_ms)}",
        f"restart_to_safe_ms: {len(site.restart_ms)} SIGKILLs of a node alone, started again at once with the same "
        "command and state folder (as systemd's Restart=on-failure does, but without its "
        f"RestartSec={RESTART_SEC:g}, which is not counted: add {RESTART_SEC * 1000:g} ms for the installed service); "
        f"from just before the kill to the last of its devices ({devices}) having its safe state again; its devices "
        "were moving (the dusk cue's 20 s fade, a GO over MQTT; a restart fires no cue); the restarted node announced "
        f"itself {restarts}; median reported; baseline: a bare Python process "
        "(paho-mqtt) spawned the same way that connects and publishes the same safe states",
        f"  engine:   {runs(site.restart_ms)}",
        f"  baseline: {runs(site.restart_bare_ms)}",
        f"sync_cue_skew_ms: {len(site.skew_ms)} synced GOs (<site>/cue, the cue list's one cue, start "
        f"{site.lead_s:g} s ahead) on {site.nodes} nodes (no role) on this one machine; the spread of the wall times "
        "at which they started the GO (their fired reports), median reported; per GO the largest clock offset a node "
        f"announced (to the reference node; truly 0 here) {offsets} ms; the latest node's late_ms per GO {late}; "
        f"baseline: {site.nodes} bare Python processes (paho-mqtt) sent the same kind of GO, each sleeping in a "
        f"thread until the start time, {CUE_GAP_S:g} s before or after the nodes' (alternately)",
        f"  engine:   {runs(site.skew_ms, 2)}",
        f"  baseline: {runs(site.skew_bare_ms, 2)}",
    ]
    if site.failed_gos:
        lines.append(f"  GOs that did not run: {'; '.join(site.failed_gos)}")
    return lines


def site_targets(results: dict[str, Figure], site: SiteResults) -> list[str]:
    takeover, restart, skew = results["takeover_ms"], results["restart_to_safe_ms"], results["sync_cue_skew_ms"]
    takeover_limit = site.takeover_after * 1000 + TAKEOVER_SLACK_MS
    return [
        f"target: takeover_ms at most takeover_after + {TAKEOVER_SLACK_MS:g} ms; restart_to_safe_ms at most "
        f"{RESTART_LIMIT_MS:,.0f} ms; sync_cue_skew_ms at most {SKEW_LIMIT_MS:g} ms",
        f"  takeover_ms at most {takeover_limit:,.0f} ms: {verdict(takeover['value'] <= takeover_limit)} "
        f"({takeover['value']:.0f} ms; worst {max(site.takeover_ms):.0f} ms)",
        f"  restart_to_safe_ms at most {RESTART_LIMIT_MS:,.0f} ms: {verdict(restart['value'] <= RESTART_LIMIT_MS)} "
        f"({restart['value']:.0f} ms, without systemd's RestartSec={RESTART_SEC:g}; worst {max(site.restart_ms):.0f} "
        "ms)",
        f"  sync_cue_skew_ms at most {SKEW_LIMIT_MS:g} ms: {verdict(skew['value'] <= SKEW_LIMIT_MS)} "
        f"({skew['value']:.2f} ms; worst {max(site.skew_ms):.2f} ms)",
    ]
