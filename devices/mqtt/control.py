"""MQTT control: the operator's commands, and the show's state kept retained, over the exhibit's one
MQTT link (no second client; the link reconnects and subscribes again by itself).

Commands (the same table as the console and OSC, ``engine/control/commands.py``)::

    <prefix>/<id>/control/<command>   {"cue_list": "main", "id": 7}   (empty payload: no parameters)
    <prefix>/<id>/control/reply       {"command": "go", "id": 7, "status": "ok", "data": {...}}  (QoS 1, not retained)

``<command>`` is a command's name, which is also its path: ``go``, ``panic``, ``estop/reset``,
``playhead/next``... The payload is a JSON object of the command's parameters; ``id``, if given,
is not a parameter: it comes back in the reply so a client can pair them. Commands run with the
operator role: who may publish them is the broker's business (a Mosquitto ACL), not ours.

Never fired, only counted (health figures) and logged once per kind:

- a retained message on a control topic: a GO left on the broker must not fire at every start.
  An empty message on a topic that had one is someone clearing it (``mosquitto_pub -r -n``), not a GO;
- a command the broker kept for us while the exhibit was away (our persistent session delivers it
  before the link says it is connected): pressed minutes ago, it would fire out of the blue;
- a payload that is not a JSON object, or a command that does not exist: answered with an error.

State: every state topic of the event protocol, retained (QoS 1), on ``<prefix>/<id>/show/<topic>``
with the WebSocket's payload ``{"v": 1, "topic": ..., "data": ...}``, when it changes and again after
every (re)connection; control actions (``audit``) on ``<prefix>/<id>/show/audit``, not retained. At a
clean stop ``show/show`` is left saying the show no longer runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

import aiomqtt

from devices.mqtt.link import MqttLink, NotConnected, Topics
from engine.control.commands import COMMANDS, Actor, Reply
from engine.control.hub import Subscription
from engine.control.protocol import event
from engine.health import ComponentHealth
from engine.model import StoreType
from engine.registry import ServiceSpec

if TYPE_CHECKING:
    from engine.exhibit import ExhibitBase
    from engine.runtime import Runtime

log = logging.getLogger("devices.mqtt.control")

MAX_PAYLOAD = 16_384
"""Bytes; a command's parameters are a few names and numbers."""
NOT_PUBLISHED = ("log", "reply")
"""Event topics that stay off MQTT: the log is the console's, replies go on ``control/reply``."""

CONTROL_FIGURES: dict[str, StoreType] = {"commands": "int", "malformed": "int", "retained": "int", "stale": "int"}
CONTROL_MEANINGS = {
    "commands": "commands received over MQTT and run (whatever their result)",
    "malformed": "control messages that were not a JSON object or named no command (answered with an error)",
    "retained": "retained control messages ignored (a command left on the broker never fires)",
    "stale": "commands the broker kept while the exhibit was away, ignored on reconnection",
}

# What the log says the first time each kind of ignored or refused message arrives.
FIRST_TIME = {
    "retained": "忽略了代理上保留的控制消息 / ignored a retained control message on %s: it does not fire; "
    "clear it with `mosquitto_pub -r -n -t %s`",
    "stale": "忽略了展品离线期间排队的控制命令 / ignored a command on %s that the broker kept while the exhibit "
    "was away (%s); send it again if it is still wanted",
    "json": "控制消息不是 JSON / a control message on %s is not JSON (%s); answered with an error",
    "object": "控制消息不是 JSON 对象 / a control message on %s is not a JSON object (%s); answered with an error",
    "size": "控制消息过大 / a control message on %s is too large (%s); answered with an error",
    "command": "没有该命令 / a control message on %s names no command (%s); answered with an error",
}


class Malformed(ValueError):
    """A control payload that is not a JSON object of parameters."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def read_params(payload: bytes) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """The parameters in ``payload`` and, apart, its ``id`` (``()`` without one, ``(id,)`` with).
    An empty payload has no parameters. Raises :class:`Malformed`."""
    if len(payload) > MAX_PAYLOAD:
        raise Malformed("size", f"the payload is over {MAX_PAYLOAD} bytes / 消息内容超过 {MAX_PAYLOAD} 字节")
    try:
        text = payload.decode("utf-8").strip()
        params = json.loads(text) if text else {}
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise Malformed("json", "the payload is not JSON / 消息内容不是有效的 JSON") from None
    if not isinstance(params, dict):
        raise Malformed(
            "object", "the payload must be a JSON object of parameters, like {} / 消息内容必须是 JSON 对象，例如 {}"
        )
    request_id = (params.pop("id"),) if "id" in params else ()
    return params, request_id


def no_show(locked: bool) -> dict[str, Any]:
    """``show`` as the protocol says it with no show running (``engine/control/protocol.py``)."""
    return {"running": False, "panic": False, "open": None, "locked": locked}


class MqttControlService:
    """Takes commands from ``control/...`` and keeps ``show/...`` up to date, on the exhibit's link."""

    name = "mqtt_control"

    def __init__(self, runtime: Runtime, link: MqttLink, topics: Topics, health: ComponentHealth) -> None:
        self.runtime, self.link, self.health = runtime, link, health
        self.base = f"{topics.prefix}/{topics.exhibit}"
        self.control = f"{self.base}/control/"
        self.reply_topic = f"{self.control}reply"
        self.counts = dict.fromkeys(CONTROL_FIGURES, 0)
        self._said: set[str] = set()
        self._retained_topics: set[str] = set()
        """Control topics with a retained message seen at subscription: an empty message there clears it."""
        self._events: Subscription | None = None
        self._closed = False
        link.subscribe(f"{self.control}#", self._on_message)
        link.on_connect(self._connected)
        link.on_disconnect(self._lost)

    # --- commands -------------------------------------------------------------------------

    def _on_message(self, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        name = topic[len(self.control) :]
        if name == "reply":
            return  # our own replies: the control topics' subtree holds them too
        payload = bytes(message.payload) if isinstance(message.payload, bytes | bytearray) else b""
        if message.retain:
            self._retained_topics.add(topic)
            self._count("retained", topic, topic)
            return
        if not payload and topic in self._retained_topics:
            self._retained_topics.discard(topic)  # someone cleared the retained message: that is no command
            log.info("保留的控制消息已清除 / the retained control message on %s was cleared", topic)
            return
        if not self.link.connected.is_set():
            self._count("stale", topic, "queued in our persistent session")
            return
        try:
            params, request_id = read_params(payload)
        except Malformed as exc:
            self._count(exc.kind, topic, str(exc))
            self._reply(name, (), Reply(False, error=str(exc), code="bad_request"))
            return
        if name not in COMMANDS:
            self._count("command", topic, f"`{name}`")  # the controller answers not_found (and audits it)
        self.counts["commands"] += 1
        self.health.figure("commands", self.counts["commands"])
        actor = Actor(name="mqtt", role="operator", via="mqtt", address=topic)
        self._reply(name, request_id, self.runtime.control.execute(name, params, actor))

    def _count(self, kind: str, topic: str, detail: str) -> None:
        figure = kind if kind in ("retained", "stale") else "malformed"
        self.counts[figure] += 1
        self.health.figure(figure, self.counts[figure])
        if kind not in self._said:
            self._said.add(kind)
            log.warning(FIRST_TIME[kind], topic, detail)

    def _reply(self, name: str, request_id: tuple[Any, ...], reply: Reply) -> None:
        body = {"command": name, **({"id": request_id[0]} if request_id else {}), **reply.as_dict()}
        # If the connection dropped since the command arrived, the reply is lost with it; the command ran,
        # and what it did shows on show/... after reconnection.
        with contextlib.suppress(NotConnected):
            self.link.send(self.reply_topic, _json(body), qos=1, retain=False)

    # --- state ----------------------------------------------------------------------------

    async def start(self) -> None:
        # Before the event hub runs, so its first full state reaches us too.
        self._events = self.runtime.events.subscribe(replay=False)
        self.health.set("offline", f"waiting for the MQTT broker at {self.link.address}", expected=True)

    async def run(self) -> None:
        assert self._events is not None, "start() subscribes"
        while not self._closed:
            for item in await self._events.next():
                if not self._closed:
                    self._publish(item)

    def _publish(self, item: dict[str, Any]) -> None:
        topic = item["topic"]
        if topic in NOT_PUBLISHED or topic.startswith("signal/"):
            return
        # While the broker is away: state goes out again on reconnection, an audit line is in the audit log.
        with contextlib.suppress(NotConnected):
            # A subject a reload removed (data null) clears its retained message: an empty retained payload.
            body = "" if item["data"] is None else _json(item)
            self.link.send(f"{self.base}/show/{topic}", body, qos=1, retain=topic != "audit")

    async def _connected(self) -> None:
        self.health.set("ok")
        if self._closed:
            return
        # A broker that restarted without persistence forgot the retained state: say it all again.
        for topic, data in list(self.runtime.events.state.items()):
            self._publish(event(topic, data))

    def _lost(self) -> None:
        self.health.set("offline", f"the MQTT broker at {self.link.address} is away")

    async def close(self, timeout: float) -> None:
        """Stop publishing, and leave ``show/show`` saying the show no longer runs (the link, closed
        after us, says ``offline`` on its status topic)."""
        self._closed = True
        if self._events is not None:
            self._events.close()
        if self.link.connected.is_set():
            body = event("show", no_show(self.runtime.control.locked))
            try:
                await self.link.publish(f"{self.base}/show/show", _json(body), qos=1, retain=True, timeout=timeout)
            except NotConnected as exc:
                log.warning("could not say on MQTT that the show stopped (%s)", exc)
        self.health.stopped()


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, default=str)


def _applies(exhibit: ExhibitBase) -> bool:
    return exhibit.control.mqtt.enabled


def _build(runtime: Runtime) -> MqttControlService | None:
    try:
        link = runtime.context.resources.get(MqttLink)
        topics = runtime.context.resources.get(Topics)
    except LookupError:  # this run has no MQTT link
        return None
    health = runtime.context.health_of(MqttControlService.name, "service", CONTROL_FIGURES)
    for figure in CONTROL_FIGURES:
        health.figure(figure, 0)
    return MqttControlService(runtime, link, topics, health)


CONTROL = ServiceSpec(
    MqttControlService.name,
    order=25,  # after the link (20), which it subscribes through
    applies=_applies,
    build=_build,
    figures=CONTROL_FIGURES,
    meanings=CONTROL_MEANINGS,
)
