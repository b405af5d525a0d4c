"""The one MQTT connection of an exhibit process, over aiomqtt (paho-mqtt 2).

- retained ``<prefix>/<exhibit>/status``: ``online`` once connected, ``offline``
  on a clean stop and, through the Last Will, when the process dies;
- reconnects with capped, jittered back-off; an absent broker is said once;
- a stable client id with a persistent session (``clean_session=False``), so
  the broker queues QoS 1 messages for our subscriptions while we are away;
- a bounded outbox for discrete messages (cues, triggers): kept in order while
  the broker is away, the oldest dropped (counted, logged) when full, sent
  before anything else on reconnect; the one in flight when the connection
  dropped is sent again (QoS 1 is at-least-once: receivers de-duplicate);
- delivers an incoming message only to the handlers whose filter matches its
  topic. Brokers such as amqtt 0.12.1 send retained messages for topics a
  client never subscribed to; those are counted and dropped here;
- a fast path (:meth:`MqttLink.send`) for continuous values: published at once through
  paho, the acknowledgement reported by callback, no task or future per message;
- username/password and TLS (with client certificates) from :class:`MqttSecurity`;
  secrets come from the environment or a file, never from the exhibit file.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import aiomqtt
import paho.mqtt.client as mqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.client import topic_matches_sub
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.mqtt.security import resolve_credentials
from engine.clock import Clock, MonotonicClock
from engine.health import ComponentHealth
from engine.model import MqttSecurity
from engine.reconnect import Backoff, Reconnect

log = logging.getLogger("devices.mqtt")

MessageHandler = Callable[[aiomqtt.Message], None]
ConnectHook = Callable[[], Awaitable[None]]
Settled = Callable[[bool], None]
"""Told once what became of a message :meth:`MqttLink.send` published: True acknowledged, False lost."""

OUTBOX_LIMIT = 1000
"""Discrete messages kept while the broker is away; the oldest go first beyond this."""
CONGESTED_PACKETS = 2048
"""Packets waiting for the socket beyond which QoS 0 steps are declined (:class:`Congested`)."""
MAX_INFLIGHT = 0
"""No limit in paho on QoS 1 messages awaiting acknowledgement. Its default, 20, throttles 512 fixtures
to a fraction of 44 Hz, and any limit makes paho scan every unacknowledged message on each PUBACK
(``_update_inflight``). The bound is ours: each device keeps at most one command in flight."""


SESSION_EXPIRY = 24 * 3600
"""MQTT 5 (a node of a show network): seconds the broker keeps our session and queued messages while we are away,
as ``clean_session=False`` does for MQTT 3.1.1."""


class Fence(Protocol):
    """What a node of a show network lets out (``devices/site``): only the node that drives the devices publishes
    outside the site's own topics, and only once it has read the broker's claim after (re)connecting."""

    def allows(self, topic: str) -> bool: ...

    async def wait_ready(self) -> None: ...


class NotConnected(Exception):
    """The broker is not reachable right now; the caller keeps its data for later."""


class Congested(NotConnected):
    """The connection is backed up: a QoS 0 step of a moving value is declined rather than queued."""


class Dropped(NotConnected):
    """A discrete message was pushed out of the full outbox before the broker came back."""


def _read_disconnect_reason(client: aiomqtt.Client) -> None:
    """aiomqtt keeps why it disconnected in a future that only its message iterator reads;
    when our session task notices first, read it so asyncio does not warn that it was never read."""
    reason = getattr(client, "_disconnected", None)
    if isinstance(reason, asyncio.Future) and reason.done() and not reason.cancelled():
        reason.exception()


@dataclass(frozen=True)
class Topics:
    """The exhibit's topic scheme: ``<prefix>/<exhibit>/...``."""

    prefix: str
    exhibit: str

    @property
    def status(self) -> str:
        return f"{self.prefix}/{self.exhibit}/status"

    def device(self, device: str, leaf: str) -> str:
        return f"{self.prefix}/{self.exhibit}/devices/{device}/{leaf}"

    @property
    def health_summary(self) -> str:
        return f"{self.prefix}/{self.exhibit}/health"

    def health(self, component: str) -> str:
        return f"{self.prefix}/{self.exhibit}/health/{component}"


@dataclass
class Outgoing:
    """A discrete message waiting in the outbox; ``delivered`` says True once acknowledged,
    False if it was dropped."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    delivered: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def settle(self, delivered: bool) -> None:
        if not self.delivered.done():
            self.delivered.set_result(delivered)


class MqttLink:
    name = "mqtt"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        topics: Topics,
        keepalive: int = 10,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
        security: MqttSecurity | None = None,
        security_base: Path | None = None,
        outbox_limit: int = OUTBOX_LIMIT,
        publish_timeout: float = 5.0,
        health: ComponentHealth | None = None,
        log_as: logging.Logger | None = None,
    ) -> None:
        self.log = log_as or log
        """Where this link says what happens to it (a second link of the process says it under its own name)."""
        self.host, self.port = host, port
        self.client_id = client_id
        self.topics = topics
        self.keepalive = keepalive
        self.backoff = backoff or Backoff(initial=0.25, cap=5.0, stable_after=5.0)
        self.health = health
        self.last_error: str | None = None
        self.clock = clock or MonotonicClock()
        self.username, self._password, self._tls = (
            resolve_credentials(security, security_base) if security else (None, None, None)
        )
        self.outbox_limit = outbox_limit
        self.publish_timeout = publish_timeout
        self.connected = asyncio.Event()
        self.unsolicited = 0
        """Messages the broker sent on topics we did not subscribe to (dropped)."""
        self.connections = 0
        self.connected_at: float | None = None
        """``clock.now()`` when the latest connection was accepted."""
        self.dropped = 0
        """Discrete messages pushed out of the full outbox, ever."""
        self._burst_dropped = 0
        self._outbox: deque[Outgoing] = deque()
        self._inflight: Outgoing | None = None
        self._outbox_ready = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._lost = asyncio.Event()
        self._settle: dict[int, Settled] = {}
        """What to tell when the broker acknowledges a message :meth:`send` published, by message id."""
        self._aiomqtt_on_publish: Callable[..., None] = lambda *_: None
        self._aiomqtt_waiting: Mapping[int, object] = {}
        """aiomqtt's publishes awaiting acknowledgement: only those are passed to its on_publish."""
        self._subscriptions: dict[str, list[MessageHandler]] = {}
        self._connect_hooks: list[ConnectHook] = []
        self._disconnect_hooks: list[Callable[[], None]] = []
        self._stopping = asyncio.Event()
        self._rng = random.Random()
        self.fence: Fence | None = None
        """Set by a node with a role in a show network: MQTT 5, and nothing leaves but what the fence allows."""
        self.fenced = 0
        """Discrete messages the fence held back (this node did not drive the devices)."""
        self._publish_properties: Properties | None = None
        self.presence: Callable[[], bytes] = lambda: b"online"
        """What the retained status topic says while connected: ``online``, or ``safe-mode`` after repeated crashes."""

    def say_presence(self) -> None:
        """The status changed while connected: say it again (retained)."""
        if self.connected.is_set():
            self.enqueue(self.topics.status, self.presence(), qos=1, retain=True)

    def identify(self, **values: str) -> None:
        """MQTT 5 user properties sent with every message from now on (a node's name and epoch)."""
        properties = Properties(PacketTypes.PUBLISH)
        properties.UserProperty = list(values.items())
        self._publish_properties = properties

    def _blocked(self, topic: str) -> bool:
        return self.fence is not None and not self.fence.allows(topic)

    async def refresh(self) -> None:
        """Say the status and run the connect hooks again (every device re-sends its state): a node that has
        just taken over the devices."""
        if not self.connected.is_set():
            return
        self.say_presence()
        for hook in self._connect_hooks:
            await self._run_hook(hook)

    @property
    def address(self) -> str:
        return f"{'mqtts' if self._tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def outbox(self) -> list[Outgoing]:
        """Discrete messages not yet acknowledged, in the order they will go (in flight first)."""
        return ([self._inflight] if self._inflight else []) + list(self._outbox)

    def subscribe(self, topic_filter: str, handler: MessageHandler) -> None:
        """Call ``handler`` for messages matching ``topic_filter`` (active from the next connect)."""
        self._subscriptions.setdefault(topic_filter, []).append(handler)

    def on_connect(self, hook: ConnectHook) -> None:
        """Run ``hook`` after every (re)connection, e.g. to re-publish retained state."""
        self._connect_hooks.append(hook)

    def on_disconnect(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` whenever an established connection is lost."""
        self._disconnect_hooks.append(hook)

    def enqueue(self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False) -> asyncio.Future[bool]:
        """Queue a discrete message: sent in order, kept while the broker is away. Never blocks;
        the future says True once the broker acknowledged it, False if the full outbox dropped it."""
        data = payload.encode() if isinstance(payload, str) else payload
        message = Outgoing(topic, data, qos, retain)
        if self._blocked(topic):
            self.fenced += 1
            message.settle(False)
            return message.delivered
        if len(self._outbox) >= self.outbox_limit:
            self._drop_oldest()
        self._outbox.append(message)
        self._outbox_ready.set()
        return message.delivered

    def _drop_oldest(self) -> None:
        self._outbox.popleft().settle(False)
        self.dropped += 1
        self._burst_dropped += 1
        if self._burst_dropped == 1:
            self.log.warning(
                "MQTT outbox full (%d discrete messages): dropping the oldest until the broker at %s is back",
                self.outbox_limit,
                self.address,
            )

    async def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout: float = 5.0,
        discrete: bool = False,
    ) -> None:
        """Publish and, for QoS 1, wait for the broker's acknowledgement.

        A continuous value (``discrete=False``) raises :class:`NotConnected` while the broker is
        away, so the caller can coalesce it with newer values. A discrete one goes through the
        outbox and waits, across reconnects, until acknowledged (:class:`Dropped` if dropped);
        cancelling the wait leaves it queued.
        """
        if discrete:
            if not await asyncio.shield(self.enqueue(topic, payload, qos=qos, retain=retain)):
                raise Dropped(f"dropped from the full outbox ({self.outbox_limit}) before the broker came back")
            return
        client = self._client
        if client is None or not self.connected.is_set():
            raise NotConnected(f"not connected to {self.address}")
        if self._blocked(topic):
            raise NotConnected("this node does not drive the devices now (it tracks the node that does)")
        if qos == 0:
            self.send(topic, payload, qos=0, retain=retain)  # nothing to wait for (see _tune_paho)
            return
        properties = self._publish_properties
        await self._unless_lost(
            client.publish(topic, payload, qos=qos, retain=retain, timeout=timeout, properties=properties)
        )

    def send(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False, settled: Settled | None = None
    ) -> None:
        """Publish now without waiting: the fast path for continuous values, thousands a second.

        Raises :class:`NotConnected` while the broker is away (:class:`Congested` for QoS 0 while the
        socket is backed up), so the caller keeps the value. For QoS 1,
        ``settled(True)`` is called when the broker acknowledges, ``settled(False)`` if the connection is
        lost first (the caller sends it again after reconnecting); QoS 0 is settled on the next loop turn.
        No task or future is made per message: paho writes it and its acknowledgement comes back through
        :meth:`_acknowledged`.
        """
        client = self._client
        if client is None or not self.connected.is_set():
            raise NotConnected(f"not connected to {self.address}")
        if self._blocked(topic):
            raise NotConnected("this node does not drive the devices now (it tracks the node that does)")
        paho = client._client
        if qos == 0 and len(paho._out_packet) > CONGESTED_PACKETS:
            raise Congested(f"{len(paho._out_packet)} packets wait for the socket to {self.address}")
        info = paho.publish(topic, payload, qos, retain, self._publish_properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise NotConnected(f"paho could not publish on {topic} ({mqtt.error_string(info.rc)})")
        if settled is None:
            return
        if qos == 0:
            asyncio.get_running_loop().call_soon(settled, True)
        else:
            self._settle[info.mid] = settled

    def _acknowledged(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        """paho's on_publish (also called for every QoS 0 message written): aiomqtt's own waiters
        first, then what :meth:`send` asked to be told."""
        if mid in self._aiomqtt_waiting:
            self._aiomqtt_on_publish(client, userdata, mid, reason, properties)
        settled = self._settle.pop(mid, None)
        if settled is not None:
            settled(True)

    def _tune_paho(self, client: aiomqtt.Client) -> None:
        """Four changes to the paho client inside aiomqtt that make thousands of messages a second cheap
        (private attributes of aiomqtt 2.x and paho 2.x, both pinned below 3 in pyproject.toml):

        - TCP_NODELAY on its socket (below);
        - paho logs every packet at DEBUG through the logger aiomqtt gives it; the level checks alone
          cost a tenth of a core at 20,000 packets a second, so it logs only when DEBUG is on;
        - paho calls ``on_publish`` for every QoS 0 packet it writes, building a reason code and an
          MQTT 5 properties object each time (two thirds of the cost of a QoS 0 message). Nothing here
          waits for that: every QoS 0 message goes through paho directly, never ``aiomqtt.publish``,
          so ``on_publish`` is switched off while paho writes and stays on for acknowledgements;
        - ``on_publish`` also settles what :meth:`send` published (:meth:`_acknowledged`).
        """
        paho = client._client
        sock = paho.socket()
        if isinstance(sock, socket.socket):  # also an SSLSocket; paho's other socket-likes are not TCP
            # paho leaves Nagle on. With QoS 1 the broker's PUBACKs carry TCP's acknowledgements back; a QoS 0
            # stream has none, so Nagle waits out the peer's 40 ms delayed ACK: a 40 ms stall now and then.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not client._logger.isEnabledFor(logging.DEBUG):
            paho.disable_logger()
        write = paho.loop_write

        def write_without_qos0_callbacks() -> mqtt.MQTTErrorCode:
            on_publish = paho.on_publish
            paho.on_publish = None
            try:
                return write()
            finally:
                paho.on_publish = on_publish

        paho.loop_write = write_without_qos0_callbacks  # type: ignore[method-assign]
        original = client._client.on_publish
        assert original is not None, "aiomqtt sets paho's on_publish"
        self._aiomqtt_on_publish = original
        self._aiomqtt_waiting = client._pending_publishes
        client._client.on_publish = self._acknowledged

    def _settle_lost(self) -> None:
        """The connection is gone: nothing unacknowledged will be acknowledged by this session."""
        waiting, self._settle = self._settle, {}
        for settled in waiting.values():
            settled(False)

    async def _unless_lost(self, call: Coroutine[Any, Any, None]) -> None:
        """Await ``call`` but give up as soon as the connection drops: aiomqtt would otherwise
        wait for an acknowledgement that can no longer come until its timeout."""
        lost = self._lost
        publishing = asyncio.ensure_future(call)
        losing = asyncio.ensure_future(lost.wait())
        try:
            done, _ = await asyncio.wait({publishing, losing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            losing.cancel()
            publishing.cancel()
        if publishing not in done:
            raise NotConnected(f"lost {self.address} before the broker acknowledged")
        try:
            publishing.result()
        except aiomqtt.MqttError as exc:
            raise NotConnected(str(exc)) from exc

    async def start(self) -> None:
        """Nothing to acquire up front: an absent broker is waited for, never fatal."""
        self._set_health("offline", f"connecting to {self.address}")

    async def run(self) -> None:
        reconnect = Reconnect(self.backoff, self.clock, self._rng)
        said_waiting = False
        while not self._stopping.is_set():
            client = self._make_client()
            try:
                async with client:
                    self._tune_paho(client)
                    self._client, self._lost = client, asyncio.Event()
                    reconnect.up()
                    said_waiting = False
                    await self._serve(client)
                    return  # a clean stop: leaving the context sends DISCONNECT, so no Last Will
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc) or type(exc).__name__
                said_waiting = self._say_lost(exc, said_waiting)
            finally:
                was_connected = self.connected.is_set()
                self.connected.clear()
                self._lost.set()
                if was_connected and not self._stopping.is_set():
                    for lost in self._disconnect_hooks:
                        lost()
                self._client = None
                self._settle_lost()
                _read_disconnect_reason(client)
            await reconnect.wait()

    @property
    def never_connected(self) -> bool:
        """True until the broker first accepted this link."""
        return self.connections == 0

    def _set_health(self, status: Literal["ok", "degraded", "offline"], reason: str = "") -> None:
        if self.health is not None:
            self.health.set(status, reason)
            self.health.figure("connections", self.connections)
            self.health.figure("dropped", self.dropped)

    def _make_client(self) -> aiomqtt.Client:
        if self.fence is not None:  # MQTT 5: every message says which node sent it, at which epoch
            connect = Properties(PacketTypes.CONNECT)
            connect.SessionExpiryInterval = SESSION_EXPIRY
            session: dict[str, Any] = {
                "protocol": aiomqtt.ProtocolVersion.V5,
                "clean_start": False,
                "properties": connect,
            }
        else:
            session = {"clean_session": False}  # the broker keeps our subscriptions, queues QoS 1 while we are away
        return aiomqtt.Client(
            self.host,
            self.port,
            identifier=self.client_id,
            **session,
            keepalive=self.keepalive,
            timeout=5.0,
            max_inflight_messages=MAX_INFLIGHT,
            username=self.username,
            password=self._password,
            tls_context=self._tls,
            # In a show network with a backup the exhibit's status is the driving node's to say: a backup that dies
            # must not say `offline` for the exhibit its primary still runs (its own node topic says it is gone).
            will=None if self.fence is not None else aiomqtt.Will(self.topics.status, b"offline", qos=1, retain=True),
        )

    def _say_lost(self, exc: aiomqtt.MqttError, said_waiting: bool) -> bool:
        """Log a lost or absent broker once per outage; returns the new ``said_waiting``."""
        refused = isinstance(exc, MqttConnectError) and not self.connected.is_set()
        self._set_health("offline", f"{'refused by' if refused else 'no broker at'} {self.address} ({exc})")
        if self.connected.is_set():
            self.log.warning("lost the MQTT broker at %s (%s); reconnecting", self.address, exc)
        elif said_waiting:
            return True
        elif isinstance(exc, MqttConnectError):
            self.log.error(
                "the MQTT broker at %s refused %s (%s): check the exhibit's mqtt security settings; retrying",
                self.address,
                self.client_id,
                exc,
            )
        else:
            self.log.warning(
                "waiting for the MQTT broker at %s (%s); the exhibit runs and will connect when it appears",
                self.address,
                exc,
            )
        return not self.connected.is_set()

    async def _serve(self, client: aiomqtt.Client) -> None:
        reader = asyncio.create_task(self._read(client))
        session = asyncio.create_task(self._session(client))
        stopping = asyncio.create_task(self._stopping.wait())
        tasks = {reader, session, stopping}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in (reader, session):
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _session(self, client: aiomqtt.Client) -> None:
        """Announce, subscribe, send what waited, then keep the outbox moving."""
        for topic_filter in self._subscriptions:
            await client.subscribe(topic_filter, qos=1, timeout=self.publish_timeout)
        if self.fence is not None:
            await self.fence.wait_ready()  # has another node taken over while we were away? nothing goes out before
        if not self._blocked(self.topics.status):
            await client.publish(
                self.topics.status,
                self.presence(),
                qos=1,
                retain=True,
                timeout=self.publish_timeout,
                properties=self._publish_properties,
            )
        await self._flush(client)  # what waited goes before anything new
        self._announce()
        for hook in self._connect_hooks:
            await self._run_hook(hook)
        while True:
            self._outbox_ready.clear()
            await self._flush(client)
            await self._outbox_ready.wait()

    def _announce(self) -> None:
        self.connections += 1
        self.connected_at = self.clock.now()
        self.connected.set()
        self._set_health("ok")
        self.log.info(
            "%s the MQTT broker at %s as %s",
            "connected to" if self.connections == 1 else "reconnected to",
            self.address,
            self.client_id,
        )

    async def _run_hook(self, hook: ConnectHook) -> None:
        try:
            await hook()
        except NotConnected as exc:
            if self._blocked(self.topics.status):  # a node that tracks: it re-publishes when it takes over
                return
            self.log.warning("re-publishing after connecting was cut short (%s); it runs again on reconnect", exc)
        except Exception:
            log.exception("MQTT connect hook %s failed", getattr(hook, "__qualname__", hook))

    async def _flush(self, client: aiomqtt.Client) -> None:
        """Send the outbox in order, one acknowledged message at a time. A message stays
        ``_inflight`` until acknowledged, so a connection lost meanwhile sends it again."""
        while self._inflight is not None or self._outbox:
            if self._inflight is None:
                self._inflight = self._outbox.popleft()
            message = self._inflight
            properties = self._publish_properties
            if self._blocked(message.topic):  # queued while this node drove; another has taken over since
                self.fenced += 1
                self._inflight = None
                message.settle(False)
                continue
            if message.qos == 0:
                client._client.publish(message.topic, message.payload, 0, message.retain, properties)  # see _tune_paho
            else:
                await client.publish(
                    message.topic,
                    message.payload,
                    qos=message.qos,
                    retain=message.retain,
                    timeout=self.publish_timeout,
                    properties=properties,
                )
            self._inflight = None
            message.settle(True)
        if self._burst_dropped:
            self.log.warning(
                "the MQTT outbox dropped %d discrete messages while the broker was away", self._burst_dropped
            )
            self._burst_dropped = 0

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self.dispatch(message)
        raise aiomqtt.MqttError("the broker closed the connection")

    def dispatch(self, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        handlers = [h for f, hs in self._subscriptions.items() if topic_matches_sub(f, topic) for h in hs]
        if not handlers:
            self.unsolicited += 1
            if self.unsolicited == 1:
                self.log.info("ignoring a message on %s: this client never subscribed to it", topic)
            return
        for handler in handlers:
            try:
                handler(message)
            except Exception:
                log.exception("handler for %s failed", topic)

    async def close(self, timeout: float) -> None:
        """Publish ``offline`` (retained) and disconnect cleanly."""
        if self.connected.is_set() and not self._blocked(self.topics.status):
            try:
                await self.publish(self.topics.status, b"offline", retain=True, timeout=timeout)
                self.log.info("published offline on %s", self.topics.status)
            except NotConnected as exc:
                self.log.warning("could not publish offline (%s); the Last Will says it instead", exc)
        self._stopping.set()
        if self.health is not None:
            self.health.stopped()
