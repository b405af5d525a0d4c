"""The console's live link, ``GET /api/v1/ws``: protocol events out, ``watch``/``unwatch``/``command``
in. See :mod:`engine.control.protocol` for the events.

Server to client: ``hello`` first, then the whole current state, then each change; replies to
commands on ``reply`` (with the client's ``id``); a mistake in what the client sent on ``error``.
Client to server::

    {"op": "watch", "signals": ["controls.wash"]}      at most 64 per client
    {"op": "unwatch", "signals": ["controls.wash"]}
    {"op": "command", "id": 7, "name": "go", "params": {}, "csrf": "..."}   csrf: sessions only

Each client has one event-hub mailbox (the latest state wins, so a slow tablet skips values instead of
falling behind) and one writer task. A client that stops reading is dropped once a send has waited
``SEND_TIMEOUT``: nothing buffers without bound. An event sent to many clients is encoded once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from content.console.context import BAD_CSRF, CONTEXT, MAX_BODY, ConsoleContext, Principal, dumps, loads
from content.console.security import csrf_matches, require
from engine.control.commands import Actor
from engine.control.hub import Subscription
from engine.control.idle import idle_turn
from engine.control.protocol import VERSION, event

log = logging.getLogger("content.console.websocket")

WATCH_LIMIT = 64
SEND_TIMEOUT = 5.0
SEND_INTERVAL = 0.02
"""Clients get state and signal changes from one shared sender, at once when it has been quiet and then at
most this often (50 Hz: as smooth as a value readout needs); what changes in between waits in each client's
latest-wins mailbox. One wake of one task sends to every client, instead of a task per client woken per
change: 20 tablets plotting a 1 kHz fader would otherwise cost 20,000 frames and task switches a second on
the loop the cues run on. Replies are never held back."""
SEND_BUDGET = 0.01
"""The share of the loop's time the sends may take: with many clients the sender paces itself slower
(a send costs a system call per client), so the console's cost to the show stays the same however many
tablets watch. 20 clients plotting get about 20 updates a second (a 30 s plot on a tablet is about 600
pixels wide: that fills it); a few get 50."""
SLOWEST_INTERVAL = 0.1
"""However many clients, each still gets 10 updates a second."""
SPACING = 0.0005
"""Between two clients' sends in a tick."""
CHECK_INTERVAL = 1.0
"""The sender looks at least this often, with nothing new, for clients that stopped reading."""
BACKLOG = 32 * 1024
"""Bytes a client may have waiting in its connection before the tick passes it by (its mailbox keeps the
latest state meanwhile, so a slow tablet never makes the others wait)."""
HEARTBEAT = 20.0
CLOSE_LOGGED_OUT = 4401
"""The close code when the session ends (logout, user removed): the page shows the login again."""


class EventEncoder:
    """JSON text of protocol events, encoded once for all clients: the hub gives every subscriber the
    same ``data`` object, so (topic, that object) is the key. The object is held while cached, so its
    id cannot be reused by another. A few hundred entries cover one send to every client; more would only
    keep large frames (a long text signal) alive."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._cache: OrderedDict[tuple[str, int], tuple[Any, str, bytes]] = OrderedDict()

    def encode(self, item: dict[str, Any]) -> str:
        return self._entry(item)[1]

    def frame(self, item: dict[str, Any]) -> bytes:
        """The whole WebSocket text frame (RFC 6455, server to client: unmasked, uncompressed) of ``item``,
        built once and written as it is to every client."""
        return self._entry(item)[2]

    def _entry(self, item: dict[str, Any]) -> tuple[Any, str, bytes]:
        data = item.get("data")
        key = (str(item.get("topic")), id(data))
        hit = self._cache.get(key)
        if hit is not None and hit[0] is data:
            return hit
        text = dumps(item)
        entry = (data, text, text_frame(text))
        self._cache[key] = entry
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return entry


def text_frame(text: str) -> bytes:
    payload = text.encode("utf-8")
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


class Flusher:
    """The shared sender: when a mailbox gets something, every client's mailbox goes out, at once after a
    quiet spell and then at most every :attr:`interval`."""

    def __init__(self, encoder: EventEncoder) -> None:
        self.encoder = encoder
        self.clients: dict[ConsoleSocket, Subscription] = {}
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.cost = 0.0
        """Seconds one tick's sends take (smoothed)."""

    def add(self, client: ConsoleSocket, sub: Subscription) -> None:
        self.clients[client] = sub
        sub.on_put = self._changed.set
        self._changed.set()  # the hello's state is waiting
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, client: ConsoleSocket) -> None:
        self.clients.pop(client, None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.clients:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CHECK_INTERVAL):
                    await self._changed.wait()
            self._changed.clear()
            tick, spent = loop.time(), 0.0
            for client, sub in list(self.clients.items()):
                # One client at a time, on a turn the control path leaves idle, and spaced out: a datagram or
                # a cue waits for one client's frame at most, and the sends do not all land just as the
                # control path hands its packet to the broker (which may wait for this core).
                await idle_turn(SPACING)
                started = time.perf_counter()
                client.flush(sub, loop.time())
                spent += time.perf_counter() - started
            self.cost += (spent - self.cost) / 4  # smoothed: one tick the OS interrupted does not set the pace
            await asyncio.sleep(max(0.0, tick + self.interval - loop.time()))

    @property
    def interval(self) -> float:
        """Until the next tick: :data:`SEND_INTERVAL`, or longer so that sending stays within
        :data:`SEND_BUDGET` of the loop's time (at most :data:`SLOWEST_INTERVAL`)."""
        return min(SLOWEST_INTERVAL, max(SEND_INTERVAL, self.cost / SEND_BUDGET))


ENCODER = web.AppKey("console_encoder", EventEncoder)
FLUSHER = web.AppKey("console_flusher", Flusher)


def setup_websocket(app: web.Application) -> None:
    app[ENCODER] = EventEncoder()
    app[FLUSHER] = Flusher(app[ENCODER])


async def websocket(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    who = require(ctx, request)  # before the upgrade: a stranger gets a 401, not a socket
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=MAX_BODY, compress=False)
    await ws.prepare(request)
    client = ConsoleSocket(ctx, ws, who, request.remote or "", request.app[ENCODER])
    client.transport = request.transport
    await client.serve(request.app[FLUSHER])
    return ws


class ConsoleSocket:
    def __init__(
        self, ctx: ConsoleContext, ws: web.WebSocketResponse, who: Principal, address: str, encoder: EventEncoder
    ) -> None:
        self.ctx, self.ws, self.who, self.address, self.encoder = ctx, ws, who, address, encoder
        self._sending = asyncio.Lock()
        self.transport: asyncio.BaseTransport | None = None
        self._backed_up_since: float | None = None

    async def serve(self, flusher: Flusher) -> None:
        hub = self.ctx.runtime.events
        sub = hub.subscribe()  # the whole current state waits in it, to follow the hello
        self.ctx.sockets[self.ws] = self.who
        try:
            await self._send(dumps(event("hello", self._hello())))
            flusher.add(self, sub)
            async for message in self.ws:
                if message.type == WSMsgType.TEXT:
                    await self._receive(sub, message.data)
                elif message.type == WSMsgType.BINARY:
                    await self._error("", "bad_request", "send JSON text / 请发送 JSON 文本")
        except (ConnectionError, TimeoutError):
            pass
        finally:
            flusher.remove(self)
            sub.close()
            self.ctx.sockets.pop(self.ws, None)
            if not self.ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.ws.close(), SEND_TIMEOUT)

    def _hello(self) -> dict[str, Any]:
        exhibit = self.ctx.runtime.exhibit
        title = {"en": exhibit.title.en, "zh": exhibit.title.zh}
        return {
            "user": self.who.name,
            "role": self.who.role,
            "protocol": VERSION,
            "exhibit": {"id": exhibit.id, "title": title},
        }

    # --- out ------------------------------------------------------------------------------------

    async def _send(self, text: str) -> None:
        async with self._sending, asyncio.timeout(SEND_TIMEOUT):
            await self.ws.send_str(text)

    def flush(self, sub: Subscription, now: float) -> None:
        """Send what ``sub`` holds, unless this client is still busy with earlier frames: then its mailbox
        keeps the latest state for the next time, and a client that reads nothing for ``SEND_TIMEOUT`` is
        dropped. The frames, built once for every client, go straight to the connection: no task, lock or
        timer per frame (aiohttp's own sends are whole frames too, so they never interleave)."""
        transport = self.transport
        if self.ws.closed or not isinstance(transport, asyncio.WriteTransport) or transport.is_closing():
            return
        if transport.get_write_buffer_size() > BACKLOG or self._sending.locked():
            if self._backed_up_since is None:
                self._backed_up_since = now
            elif now - self._backed_up_since > SEND_TIMEOUT:
                log.warning(
                    "a console client at %s stopped reading and was dropped / 控制台客户端 %s 未读取消息，已断开",
                    self.address,
                    self.address,
                )
                self._abort()
            return
        self._backed_up_since = None
        frames = [self.encoder.frame(item) for item in sub.take()]
        if frames:
            transport.write(frames[0] if len(frames) == 1 else b"".join(frames))  # one system call a client

    def _abort(self) -> None:
        # A close frame would queue behind what the client does not read: drop the connection instead.
        if isinstance(self.transport, asyncio.WriteTransport):
            self.transport.abort()

    async def _error(self, op: str, code: str, message: str, **more: Any) -> None:
        await self._send(dumps(event("error", {"op": op, "error": message, "code": code, **more})))

    async def _reply(self, ident: Any, body: dict[str, Any]) -> None:
        await self._send(dumps(event("reply", {"id": ident, **body})))

    # --- in -------------------------------------------------------------------------------------

    async def _receive(self, sub: Subscription, text: str) -> None:
        try:
            message = loads(text)
        except (ValueError, RecursionError):
            await self._error("", "bad_request", "the message is not valid JSON / 消息不是有效的 JSON")
            return
        if not isinstance(message, dict):
            await self._error("", "bad_request", "a message must be a JSON object / 消息必须是 JSON 对象")
            return
        op = message.get("op")
        if op in ("watch", "unwatch"):
            await self._watch(sub, str(op), message.get("signals"))
        elif op == "command":
            await self._command(message)
        else:
            await self._error(str(op)[:40], "bad_request", "`op` must be watch, unwatch or command / 未知操作")

    async def _watch(self, sub: Subscription, op: str, names: Any) -> None:
        if not (isinstance(names, list) and all(isinstance(name, str) for name in names)):
            await self._error(op, "bad_request", "`signals` must be a list of signal names / signals 必须是信号名列表")
            return
        hub = self.ctx.runtime.events
        for name in names:
            if op == "unwatch":
                hub.unwatch(sub, name)
            elif name in sub.signals:
                continue
            elif len(sub.signals) >= WATCH_LIMIT:
                await self._error(
                    op,
                    "conflict",
                    f"at most {WATCH_LIMIT} signals per client / 每个客户端最多关注 {WATCH_LIMIT} 个信号",
                    signal=name,
                )
            elif not hub.watch(sub, name):
                await self._error(
                    op, "not_found", f"there is no signal `{name[:100]}` / 没有信号“{name[:100]}”", signal=name[:100]
                )

    async def _command(self, message: dict[str, Any]) -> None:
        ident = message.get("id")
        name, params = message.get("name"), message.get("params") or {}
        if not isinstance(name, str) or not isinstance(params, dict):
            await self._reply(
                ident, _failure("bad_request", "`name` must be text and `params` an object / 命令格式错误")
            )
            return
        if self.who.session is not None:
            if self.ctx.sessions.get(self.who.session) is None:
                await self._reply(
                    ident, _failure("unauthorized", "your session has ended: log in again / 会话已结束，请重新登录")
                )
                await self.ws.close(code=CLOSE_LOGGED_OUT, message=b"logged out")
                return
            if not csrf_matches(self.who, message.get("csrf")):
                await self._reply(ident, _failure("forbidden", BAD_CSRF))
                return
        actor = Actor(self.who.name, self.who.role, self.who.via, self.address)
        reply = self.ctx.runtime.control.execute(name, params, actor)
        await self._reply(ident, reply.as_dict())


def _failure(code: str, message: str) -> dict[str, Any]:
    return {"status": "error", "error": message, "code": code}


def still_allowed(ctx: ConsoleContext, who: Principal) -> bool:
    """Whether ``who`` may still hold a socket: the session has not ended, the token not been removed."""
    if who.session is not None:
        return ctx.sessions.get(who.session) is not None
    return who.token is None or ctx.accounts.check_token(who.token) is not None


_closing: set[asyncio.Task[None]] = set()
"""Closes under way (a task must be referenced until it ends)."""


def close_sockets_of(ctx: ConsoleContext, session: str) -> None:
    """End the live links of a session that logged out."""
    for ws, who in list(ctx.sockets.items()):
        if who.session == session:
            end_socket(ws)


def end_socket(ws: web.WebSocketResponse) -> None:
    """Close ``ws`` soon, saying its session or token ended."""
    task = asyncio.get_running_loop().create_task(_close(ws, CLOSE_LOGGED_OUT, b"logged out"))
    _closing.add(task)
    task.add_done_callback(_closing.discard)


async def close_sockets(ctx: ConsoleContext, timeout: float) -> None:
    """Close every live link (the exhibit stops): ``going away``, within ``timeout``."""
    sockets = list(ctx.sockets)
    if sockets:
        await asyncio.gather(*(_close(ws, WSCloseCode.GOING_AWAY, b"the exhibit stops", timeout) for ws in sockets))


async def _close(ws: web.WebSocketResponse, code: int, message: bytes, timeout: float = SEND_TIMEOUT) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(code=code, message=message), timeout)
