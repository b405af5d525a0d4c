"""The show network: every exhibit announces itself under the site prefix, measures its clock against the other
nodes, starts synced cues at a common site time and, with a role (``--role primary|backup``), takes part in
backup takeover (:mod:`engine.authority` decides; this service carries it over MQTT).

It has its own MQTT connection to the exhibit's broker, so that its Last Will says *this node* is gone
(``<site>/nodes/<node>/status``) while the exhibit's link keeps its own (``<prefix>/<id>/status``). With a role
the exhibit's link speaks MQTT 5 and names the node and its epoch in every message (user properties ``node`` and
``epoch``), and lets nothing out but while this node drives the devices (:class:`NodeFence`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import time
from importlib import metadata
from typing import TYPE_CHECKING, Any

import aiomqtt

from devices.mqtt.link import MqttLink, NotConnected, Topics
from devices.site.clock_sync import ClockSync
from devices.site.topics import SiteTopics
from engine.authority import Authority, Claim
from engine.control.commands import Actor
from engine.model import StoreType
from engine.show_memory import ShowMemory, capture, follow

if TYPE_CHECKING:
    from engine.runtime import Runtime

log = logging.getLogger("devices.site")
link_log = logging.getLogger("devices.site.link")
link_log.setLevel(logging.ERROR)  # the exhibit's own link already says when the broker comes and goes

ANNOUNCE_EVERY = 2.0
PING_EVERY = 1.0
SYNC_EVERY = 0.1
"""Seconds between two looks at the show, to send (the driving node) or keep to (a backup)."""
BARRIER_TIMEOUT = 3.0
SPIN = 0.003
"""The last seconds before a synced cue are waited for on the clock itself, not on the event loop's timer."""

SITE_FIGURES: dict[str, StoreType] = {"nodes": "int", "epoch": "int", "driving": "bool", "takeovers": "int"}
SITE_MEANINGS = {
    "nodes": "nodes of the show network online",
    "epoch": "the epoch of the claim that drives this exhibit's devices",
    "driving": "whether this node drives the devices",
    "takeovers": "times this node took over the devices",
}


def version() -> str:
    try:
        return metadata.version("exhibit-controller")
    except metadata.PackageNotFoundError:
        return "unknown"


def file_hash(runtime: Runtime) -> str:
    """SHA-256 of the exhibit file (of its model where it came from no file): a backup follows only the same."""
    path = runtime.options.exhibit_file
    data = path.read_bytes() if path is not None and path.is_file() else runtime.exhibit.model_dump_json().encode()
    return hashlib.sha256(data).hexdigest()


class NodeFence:
    """The exhibit link's gate on a node with a role: the site's topics always; the rest only while driving."""

    def __init__(self, prefix: str, authority: Authority) -> None:
        self.prefix = prefix + "/"
        self.authority = authority
        self.ready = asyncio.Event()

    def allows(self, topic: str) -> bool:
        return topic.startswith(self.prefix) or self.authority.may_send()

    async def wait_ready(self) -> None:
        await self.ready.wait()


class SiteService:
    name = "site"

    def __init__(self, runtime: Runtime, link: MqttLink, site_link: MqttLink, topics: SiteTopics) -> None:
        self.runtime = runtime
        self.link = link
        self.site_link = site_link
        self.topics = topics
        self.view = runtime.site
        self.view.file_hash = file_hash(runtime)
        self.authority = runtime.authority
        self.clock_sync = ClockSync()
        self.health = runtime.context.health_of("site", "service", SITE_FIGURES)
        self.started = time.time()
        self.fence: NodeFence | None = None
        self._barrier = ""
        self._barrier_heard = asyncio.Event()
        self._announce_now = asyncio.Event()
        self._announced: dict[str, Any] | None = None
        self._sent_show: str | None = None
        self._followed: tuple[Claim, ShowMemory, dict[str, list[Any]]] | None = None
        self._follow_gos: dict[str, int] | None = None
        self._claimed: Claim | None = None
        self._stopping = False
        self._timers: set[asyncio.TimerHandle] = set()
        self.fired: list[dict[str, Any]] = []
        """Synced cues started here (the last hundred): id, wall time, whether the GO ran."""
        if self.authority is not None:
            self.fence = NodeFence(topics.prefix, self.authority)
            link.fence = self.fence
            link.identify(node=self.view.node, epoch="0")
            self.authority.listeners.append(self._authority_changed)
        self._subscribe()
        site_link.on_connect(self._connected)
        site_link.on_disconnect(self._disconnected)
        runtime.control.listeners.append(self._after_command)

    # --- wiring ------------------------------------------------------------------------

    def _subscribe(self) -> None:
        t = self.topics
        self.site_link.subscribe(t.all_info, self._on_info)
        self.site_link.subscribe(t.all_status, self._on_status)
        self.site_link.subscribe(t.node_topic("ping"), self._on_ping)
        self.site_link.subscribe(t.node_topic("pong"), self._on_pong)
        self.site_link.subscribe(t.node_topic("barrier"), self._on_barrier)
        self.site_link.subscribe(t.cue, self._on_cue)
        self.site_link.subscribe(f"{self.runtime.exhibit.mqtt.prefix}/+/analytics/today", self._on_analytics)
        if self.authority is not None:
            self.site_link.subscribe(t.exhibit_topic("lease"), self._on_claim)
            self.site_link.subscribe(t.exhibit_topic("heartbeat"), self._on_claim)
            self.site_link.subscribe(t.exhibit_topic("show"), self._on_show)
            self.site_link.subscribe(t.exhibit_topic("request"), self._on_request)

    async def start(self) -> None:
        await self.site_link.start()
        self.health.set("offline", f"connecting to {self.site_link.address}")

    async def run(self) -> None:
        self.view.send_cue = self.send_cue
        async with asyncio.TaskGroup() as tasks:
            loops = [
                tasks.create_task(self._announce_loop()),
                tasks.create_task(self._ping_loop()),
                tasks.create_task(self._show_loop()),
            ]
            if self.authority is not None:
                loops += [tasks.create_task(self._takeover_loop()), tasks.create_task(self._heartbeat_loop())]
            await self.site_link.run()  # returns after close()
            for loop in loops:
                loop.cancel()

    async def close(self, timeout: float) -> None:
        self._stopping = True
        self.view.send_cue = None
        for timer in self._timers:
            timer.cancel()
        await self.site_link.close(timeout)

    # --- connection --------------------------------------------------------------------------

    async def _connected(self) -> None:
        """After every (re)connection: read the broker's claim before anything else goes out (a barrier: our own
        message comes back after the retained ones of the subscriptions made before it)."""
        self._barrier = secrets.token_hex(4)
        self._barrier_heard.clear()
        try:  # at once, not through the outbox: it is flushed only after this hook returns
            self.site_link.send(self.topics.node_topic("barrier"), self._barrier, qos=1)
        except NotConnected:
            return  # lost again already: the next connection runs this again
        try:
            async with asyncio.timeout(BARRIER_TIMEOUT):
                await self._barrier_heard.wait()
        except TimeoutError:
            log.warning("the site barrier did not come back within %g s; going on", BARRIER_TIMEOUT)
        self.health.set("ok")
        if self.authority is not None:
            self.authority.synced(self.runtime.clock.now())
            if self.authority.driving and self._claimed is not None:
                self._publish_claim(self._claimed)  # our lease again, in case the broker lost it
        self._announce_now.set()

    def _disconnected(self) -> None:
        self.health.set("offline", f"lost the broker at {self.site_link.address}")
        if self.authority is not None:
            self.authority.lost_broker()

    def _on_barrier(self, message: aiomqtt.Message) -> None:
        if bytes(message.payload).decode() == self._barrier:
            self._barrier_heard.set()

    # --- who drives --------------------------------------------------------------------------

    def _on_claim(self, message: aiomqtt.Message) -> None:
        assert self.authority is not None
        data = _json(message)
        if data is None:
            return
        try:
            claim = Claim(int(data["epoch"]), str(data["node"]))
        except (KeyError, TypeError, ValueError):
            return
        self.authority.heard(claim, self.runtime.clock.now())

    def _authority_changed(self) -> None:
        authority = self.authority
        assert authority is not None and self.fence is not None
        if authority.ready:
            self.fence.ready.set()
        else:
            self.fence.ready.clear()
        holder = authority.holder
        if authority.driving and holder is not None and holder != self._claimed:
            self._claimed = holder
            self.link.identify(node=holder.node, epoch=str(holder.epoch))
            self._publish_claim(holder)
            self._follow_gos = None
            asyncio.get_running_loop().create_task(self.link.refresh())  # every device sends its state now
        if not authority.driving:
            self._claimed = None
        self.health.figure("epoch", authority.epoch)
        self.health.figure("driving", authority.driving)
        self.health.figure("takeovers", authority.takeovers)
        for listener in list(self.runtime.mode_listeners):
            listener()
        self._announce_now.set()

    def _publish_claim(self, claim: Claim) -> None:
        payload = json.dumps({"node": claim.node, "epoch": claim.epoch, "since": time.time()})
        self.site_link.enqueue(self.topics.exhibit_topic("lease"), payload, qos=1, retain=True)
        self._heartbeat()

    def _heartbeat(self) -> None:
        holder = self.authority.holder if self.authority else None
        if holder is None:
            return
        payload = json.dumps({"node": holder.node, "epoch": holder.epoch, "t": time.time()})
        with contextlib.suppress(NotConnected):
            self.site_link.send(self.topics.exhibit_topic("heartbeat"), payload, qos=0)

    async def _heartbeat_loop(self) -> None:
        assert self.authority is not None
        every = self.authority.takeover_after / 6
        while True:
            await asyncio.sleep(every)
            if self.authority.driving:
                self._heartbeat()

    async def _takeover_loop(self) -> None:
        authority = self.authority
        assert authority is not None
        said_conflict = ""
        while True:
            await asyncio.sleep(0.05)
            now = self.runtime.clock.now()
            if not authority.due(now) or self.runtime.safe_mode:
                continue
            holder = authority.holder
            conflict = self._hash_conflict(holder.node if holder else None)
            if conflict:
                if conflict != said_conflict:
                    said_conflict = conflict
                    log.error("%s", conflict)
                    self.health.set("degraded", conflict)
                continue
            if holder is None:
                why = "no node drives this exhibit"
            elif holder.node == authority.node:
                why = "its own claim from before a restart"
            else:
                why = f"{holder.node}'s heartbeat has been silent for over {authority.takeover_after:g} s"
            authority.take_over(now, why)

    def _hash_conflict(self, node: str | None) -> str:
        """A sentence when ``node`` runs another version of the exhibit file: a backup never follows nor takes over
        from it."""
        if node is None or node == self.view.node:
            return ""
        theirs = self.view.nodes.get(node, {}).get("file_hash")
        if theirs is None or theirs == self.view.file_hash:
            return ""
        return (
            f"展品文件与节点 {node} 不同 / the exhibit file differs from node {node}'s "
            f"({str(theirs)[:12]} there, {self.view.file_hash[:12]} here): this node neither follows nor takes over"
        )

    # --- following the show -----------------------------------------------------------------

    def _show_state(self) -> tuple[ShowMemory, dict[str, list[Any]]] | None:
        show = self.runtime.show
        if show is None:
            return None
        gos = {
            name: [c.gos, c.cues[c.playhead - 1].id if c.playhead > 0 else None] for name, c in show.cue_lists.items()
        }
        return capture(show, self.runtime.safety), gos

    async def _show_loop(self) -> None:
        while True:
            await asyncio.sleep(SYNC_EVERY)
            authority = self.authority
            if authority is None:
                continue
            if authority.driving:
                self._send_show()
            elif self._followed is not None:
                self._keep_to_show()

    def _send_show(self) -> None:
        state = self._show_state()
        holder = self.authority.holder if self.authority else None
        if state is None or holder is None:
            return
        memory, gos = state
        payload = json.dumps({"node": holder.node, "epoch": holder.epoch, "show": memory.as_dict(), "gos": gos})
        if payload != self._sent_show:
            self._sent_show = payload
            self.site_link.enqueue(self.topics.exhibit_topic("show"), payload, qos=1, retain=True)

    def _on_show(self, message: aiomqtt.Message) -> None:
        data = _json(message)
        if data is None or self.authority is None:
            return
        try:
            claim = Claim(int(data["epoch"]), str(data["node"]))
            memory = ShowMemory.from_dict(data["show"])
            gos = {str(k): list(v) for k, v in dict(data.get("gos", {})).items()}
        except (KeyError, TypeError, ValueError):
            return
        if claim.node == self.view.node:
            return
        if self._followed is None or self._followed[0] != claim:
            self._follow_gos = None  # another node, or a new epoch: its GO counts start afresh
        self._followed = (claim, memory, gos)
        if not self.authority.driving:
            self._keep_to_show()

    def _keep_to_show(self) -> None:
        """A backup: keep to the driving node's show (states, variables, e-stop, armed, standby) and repeat its GOs
        on this node's model, so that a takeover carries on from where it was."""
        show = self.runtime.show
        if show is None or self._followed is None or self.authority is None:
            return
        claim, memory, gos = self._followed
        if (
            self.authority.holder is not None
            and claim.outranks(self.authority.holder) is False
            and claim != self.authority.holder
        ):
            return  # the show of a node that no longer drives
        if self._hash_conflict(claim.node):
            return
        counts = self._follow_gos
        if counts is None:  # the first show heard of this node: where it is now, no GO repeated
            self._follow_gos = {name: int(v[0]) for name, v in gos.items()}
        else:
            for name, (count, cue_id) in gos.items():
                cue_list = show.cue_lists.get(name)
                if cue_list is not None and int(count) > counts.get(name, 0) and cue_id is not None:
                    with contextlib.suppress(KeyError):
                        cue_list.follow_go(str(cue_id))
                counts[name] = int(count)
        if capture(show, self.runtime.safety) != memory:
            follow(show, self.runtime.safety, memory)

    def _after_command(self, name: str, reply: Any) -> None:
        """An e-stop or PANIC pressed on a backup also goes to the node that drives the devices."""
        authority = self.authority
        if authority is None or authority.driving or name not in ("estop", "panic") or not reply.ok:
            return
        payload = json.dumps({"command": name, "from": self.view.node})
        self.site_link.enqueue(self.topics.exhibit_topic("request"), payload, qos=1)

    def _on_request(self, message: aiomqtt.Message) -> None:
        data = _json(message)
        if data is None or self.authority is None or not self.authority.driving or message.retain:
            return
        command = data.get("command")
        if command in ("estop", "panic"):
            actor = Actor(f"site:{data.get('from', '?')}", "operator", "site")
            self.runtime.control.execute(str(command), {}, actor)

    # --- nodes, clocks and synced cues --------------------------------------------------

    def _on_info(self, message: aiomqtt.Message) -> None:
        node = self.topics.node_of(message.topic.value)
        data = _json(message)
        if data is None:
            self.view.nodes.pop(node, None)
            return
        entry = self.view.nodes.setdefault(node, {})
        online = entry.get("online")
        entry.clear()
        entry.update(data)
        if online is not None:
            entry["online"] = online

    def _on_analytics(self, message: aiomqtt.Message) -> None:
        """Every exhibit's visitor figures on the broker, for the site's view (k-anonymous already)."""
        exhibit = message.topic.value.split("/")[-3]
        data = _json(message)
        if data is None:
            self.view.analytics.pop(exhibit, None)
        else:
            self.view.analytics[exhibit] = data

    def _on_status(self, message: aiomqtt.Message) -> None:
        node = self.topics.node_of(message.topic.value)
        online = bytes(message.payload).decode() == "online"
        self.view.nodes.setdefault(node, {"node": node})["online"] = online
        if not online:
            self.clock_sync.forget(node)
        self._choose_reference()
        self.health.figure("nodes", sum(1 for n in self.view.nodes.values() if n.get("online")))

    def _choose_reference(self) -> None:
        online = [name for name, n in self.view.nodes.items() if n.get("online")] + [self.view.node]
        self.view.reference = min(online)

    def _on_ping(self, message: aiomqtt.Message) -> None:
        data = _json(message)
        if data is None or "from" not in data:
            return
        answer = json.dumps({"from": self.view.node, "t0": data.get("t0"), "t1": time.time()})
        with contextlib.suppress(NotConnected):
            self.site_link.send(self.topics.node_topic("pong", str(data["from"])), answer, qos=0)

    def _on_pong(self, message: aiomqtt.Message) -> None:
        t2 = time.time()
        data = _json(message)
        try:
            peer, t0, t1 = str(data["from"]), float(data["t0"]), float(data["t1"])  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            return
        self.clock_sync.answered(peer, t0, t1, t2)
        self.view.offsets = self.clock_sync.offsets()

    async def _ping_loop(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(0.1 if rounds < 20 else PING_EVERY)  # quick at first: offsets known within seconds
            rounds += 1
            ping = json.dumps({"from": self.view.node, "t0": time.time()})
            for name, node in list(self.view.nodes.items()):
                if name != self.view.node and node.get("online"):
                    with contextlib.suppress(NotConnected):
                        self.site_link.send(self.topics.node_topic("ping", name), ping, qos=0)

    def info(self) -> dict[str, Any]:
        authority = self.authority
        offsets = self.view.offsets
        return {
            "node": self.view.node,
            "version": version(),
            "exhibit": self.runtime.exhibit.id,
            "file_hash": self.view.file_hash,
            "role": authority.role if authority else "alone",
            "mode": self.runtime.mode,
            "driving": authority.driving if authority else True,
            "epoch": authority.epoch if authority else 0,
            "health": self.runtime.health.status,
            "problems": sorted(f"{c.name}: {c.status}" for c in self.runtime.health if c.in_use and not c.ok),
            "reference": self.view.reference,
            "clock_offset_ms": round(self.view.site_offset() * 1000, 1),
            "offsets_ms": {peer: round(value * 1000, 1) for peer, value in sorted(offsets.items())},
            "started": round(self.started, 3),
        }

    async def _announce_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ANNOUNCE_EVERY):
                    await self._announce_now.wait()
            self._announce_now.clear()
            if not self.site_link.connected.is_set():
                continue
            info = self.info()
            if info != self._announced:
                self._announced = info
                self.site_link.enqueue(self.topics.node_topic("info"), json.dumps(info), qos=1, retain=True)

    def send_cue(self, nodes: list[str], cue_list: str | None, cue: str | None, lead: float) -> dict[str, Any]:
        command = {
            "id": secrets.token_hex(6),
            "nodes": nodes,
            "cue_list": cue_list,
            "cue": cue,
            "start_at": time.time() + self.view.site_offset() + lead,
            "from": self.view.node,
        }
        self.site_link.enqueue(self.topics.cue, json.dumps(command), qos=1)
        return {"id": command["id"], "start_at": command["start_at"], "nodes": nodes}

    def _on_cue(self, message: aiomqtt.Message) -> None:
        data = _json(message)
        if data is None or message.retain:
            return
        nodes = data.get("nodes") or []
        if "*" not in nodes and self.view.node not in nodes:
            return
        try:
            start = float(data["start_at"]) - self.view.site_offset()
        except (KeyError, TypeError, ValueError):
            return
        delay = start - time.time()
        loop = asyncio.get_running_loop()
        timer = loop.call_later(max(0.0, delay - SPIN), self._start_cue, data, start)
        self._timers.add(timer)

    def _start_cue(self, data: dict[str, Any], start: float) -> None:
        self._timers = {t for t in self._timers if not t.cancelled() and t.when() > asyncio.get_running_loop().time()}
        remaining = start - time.time()
        if 0 < remaining <= SPIN:
            time.sleep(remaining)  # at most a few milliseconds: the event loop's timer is coarser than the target
        started = time.time()
        params = {k: data[k] for k in ("cue_list", "cue") if data.get(k) is not None}
        reply = self.runtime.control.execute("go", params, Actor(f"site:{data.get('from', '?')}", "operator", "site"))
        report = {
            "id": data.get("id"),
            "node": self.view.node,
            "at": started,
            "late_ms": round(max(0.0, started - start) * 1000, 2),
            "ok": reply.ok,
            "error": reply.error,
        }
        self.fired = [*self.fired[-99:], report]
        self.site_link.enqueue(self.topics.node_topic("fired"), json.dumps(report), qos=1)


def _json(message: aiomqtt.Message) -> dict[str, Any] | None:
    try:
        data = json.loads(bytes(message.payload or b""))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def build_site(runtime: Runtime) -> SiteService:
    link = runtime.context.resources.get(MqttLink)
    view = runtime.site
    topics = SiteTopics(view.prefix, runtime.exhibit.id, view.node)
    settings = runtime.exhibit.mqtt
    site_link = MqttLink(
        link.host,
        link.port,
        client_id=f"site-{view.node}-{runtime.exhibit.id}",
        topics=Topics(f"{view.prefix}/nodes", view.node),  # its status topic is the node's, with the Last Will
        keepalive=min(settings.keepalive, 5),
        security=settings.security,
        security_base=runtime.context.base_dir,
        log_as=link_log,
    )
    return SiteService(runtime, link, site_link, topics)
