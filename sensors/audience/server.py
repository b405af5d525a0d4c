"""The audience's web server: the page, its assets and its WebSocket, in a process of its own.

A thousand phones tapping twice a second are two thousand messages a second to parse and count: in a process of
its own that work never holds up the show's loop, which receives only the crowd's signals, ``rate`` times a
second (``("frame", t, signals, health)`` replies, see :mod:`engine.worker_process`). The show's settings (a vote
opened, input paused) come back as :class:`SetProps` commands.

It serves nothing but the page: ``GET <path>`` (the page, which sets the phone's session cookie),
``GET <path><asset>`` for the page's own files, and ``GET <path>ws`` (the WebSocket). There is no route to the
console's API, no login and no control: anything else is 404. Every message is checked
(:mod:`sensors.audience.protocol`); what fails is dropped and counted, and a phone that sends too fast is held to
``messages_per_s`` (a token bucket), the excess dropped and counted; one that keeps sending garbage or flooding
is disconnected. Past ``max_phones`` connections, a phone is told the room is full.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import math
import multiprocessing
import queue
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, TypeGuard

from engine.priority import idle_priority
from sensors.audience.crowd import Crowd
from sensors.audience.model import AudienceSensorConfig, Label
from sensors.audience.protocol import COOKIE, LANGUAGES, MAX_MESSAGE, WS_PATH
from sensors.audience.tls import server_context

log = logging.getLogger("sensors.audience")

STATIC = Path(__file__).parent / "static"
ASSETS = {"audience.js": "text/javascript", "audience.css": "text/css"}
"""The page's own files, the only ones served beside it."""
STATE_EVERY = 2.0
"""Seconds between state messages to every phone (the count of phones) when nothing changed."""
STRIKES = 20
"""Malformed messages a phone may send before it is disconnected."""
FLOOD = 50
"""Messages over its rate a phone may send before it is disconnected."""
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class ServerSettings:
    config: AudienceSensorConfig
    title: Label
    tls: tuple[str, str] | None = None
    """The certificate and key files (absolute): the page is served over HTTPS, its WebSocket over WSS."""


@dataclass(frozen=True)
class SetProps:
    """The show set properties of the audience (``paused``, ``<vote>.open``, ``<vote>.results``)."""

    values: dict[str, Any]


@dataclass(frozen=True)
class StopServing:
    """Close every connection and the server, and exit."""


class TokenBucket:
    """A token bucket: ``rate`` messages a second, bursts of twice that."""

    def __init__(self, rate: float) -> None:
        self.rate, self.capacity = rate, 2 * rate
        self.tokens, self.at = self.capacity, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class AudienceServer:
    """The page and its WebSocket, in an aiohttp application, feeding a :class:`Crowd`."""

    def __init__(self, settings: ServerSettings, replies: Queue[Any]) -> None:
        self.config, self.title = settings.config, settings.title
        self.secure = settings.tls is not None
        self.replies = replies
        self.crowd = Crowd(self.config)
        self.sockets: set[Any] = set()
        self.refused = 0
        self.protocol_dropped = 0
        self._received: deque[int] = deque(
            [0] * max(1, round(self.config.rate)), maxlen=max(1, round(self.config.rate))
        )
        self._tick_received = 0
        self._changed = asyncio.Event()
        self._page = (STATIC / "index.html").read_bytes()
        self._full = (STATIC / "full.html").read_bytes()
        self._full_headers = HEADERS | {"Content-Security-Policy": inline_styles_allowed(self._full)}

    # --- HTTP -------------------------------------------------------------------------------------------

    def app(self) -> Any:
        from aiohttp import web

        app = web.Application(client_max_size=1024)
        path = self.config.path
        app.router.add_get(path, self.page)
        for asset in ASSETS:
            app.router.add_get(path + asset, self.asset)
        app.router.add_get(path + WS_PATH, self.socket)
        return app

    async def page(self, request: Any) -> Any:
        from aiohttp import web

        if len(self.sockets) >= self.config.max_phones:
            self.refused += 1
            return web.Response(body=self._full, status=503, content_type="text/html", headers=self._full_headers)
        response = web.Response(body=self._page, content_type="text/html", charset="utf-8", headers=HEADERS)
        if not _session_of(request):
            response.set_cookie(
                COOKIE, secrets.token_urlsafe(16), httponly=True, samesite="Strict", secure=self.secure, path="/"
            )
        return response

    async def asset(self, request: Any) -> Any:
        from aiohttp import web

        name = request.path.rsplit("/", 1)[-1]
        body = (STATIC / name).read_bytes()
        return web.Response(body=body, content_type=ASSETS[name], charset="utf-8", headers=HEADERS)

    # --- the WebSocket -----------------------------------------------------------------------------------

    async def socket(self, request: Any) -> Any:
        from aiohttp import WSMsgType, web

        if not _same_origin(request):
            self.refused += 1
            raise web.HTTPForbidden(text="cross-origin")
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE, heartbeat=20.0, compress=False)
        await ws.prepare(request)
        if len(self.sockets) >= self.config.max_phones:
            self.refused += 1
            await ws.send_str('{"t":"full"}')
            await ws.close(code=1013, message=b"the room is full")
            return ws
        session = _session_of(request) or secrets.token_urlsafe(16)
        self.sockets.add(ws)
        self.crowd.join(session)
        bucket, strikes, flooded = TokenBucket(self.config.messages_per_s), 0, 0
        try:
            await ws.send_str(json.dumps(self._hello(session), ensure_ascii=False))
            await ws.send_str(json.dumps(self.crowd.state(), ensure_ascii=False))
            async for message in ws:
                self._tick_received += 1
                if message.type != WSMsgType.TEXT:
                    strikes += 1
                    self.protocol_dropped += 1
                elif not bucket.take():
                    flooded += 1
                    self.protocol_dropped += 1
                elif (answer := self.handle(session, message.data)) is False:
                    strikes += 1
                elif isinstance(answer, dict):
                    await ws.send_str(json.dumps(answer))
                if strikes >= STRIKES or flooded >= FLOOD:
                    await ws.close(code=1008, message=b"too many bad or too fast messages")
                    break
        finally:
            self.sockets.discard(ws)
            self.crowd.leave(session)
        return ws

    def _hello(self, session: str) -> dict[str, Any]:
        offers = []
        for name, offer in self.config.offers.items():
            label = offer.label or Label(zh=name, en=name)
            item: dict[str, Any] = {"id": name, "type": offer.type, "label": label.model_dump()}
            if offer.type == "vote":
                item["choices"] = [{"id": c, "label": words.model_dump()} for c, words in offer.choices.items()]
                item["open"] = self.crowd.votes[name].open
                item["voted"] = self.crowd.ballot(session, name)
            elif offer.type == "slider":
                low, high = offer.range
                item["range"] = [low, high]
                item["step"] = offer.step or (high - low) / 100
            offers.append(item)
        return {"t": "hello", "session": session, "offers": offers, "title": self.title.model_dump()}

    def handle(self, session: str, text: str) -> bool | dict[str, Any]:
        """One message from a phone: False if malformed (counted), a reply to send, or True."""
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(kind := message.get("t"), str):
            self.protocol_dropped += 1
            return False
        offer = message.get("id")
        if kind == "lang":
            value = message.get("value")
            return self.crowd.language(session, value) if value in LANGUAGES else self._malformed()
        if not isinstance(offer, str):
            return self._malformed()
        if kind == "tap":
            return self.crowd.tap(session, offer) or True
        if kind == "vote" and isinstance(choice := message.get("choice"), str):
            ok, why = self.crowd.vote(session, offer, choice)
            if why == "invalid":
                return False  # the crowd counted it as dropped
            return {"t": "voted", "id": offer, "choice": choice, "ok": ok, "why": why}
        if kind == "slide" and _number(value := message.get("value")):
            return self.crowd.slide(session, offer, float(value)) or True
        if kind == "motion" and _number(energy := message.get("energy")):
            return self.crowd.motion(session, offer, float(energy), time.monotonic()) or True
        return self._malformed()

    def _malformed(self) -> bool:
        self.protocol_dropped += 1
        return False

    # --- the show's side ---------------------------------------------------------------------------------

    def set(self, values: dict[str, Any]) -> None:
        self.crowd.set(values)
        self._changed.set()

    async def tick(self) -> None:
        """``rate`` times a second: the crowd's signals to the show."""
        period = 1.0 / self.config.rate
        next_at = time.monotonic()
        while True:
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            now = time.monotonic()
            if next_at < now - period:
                next_at = now  # fell behind: carry on from now, no burst
            self._received.append(self._tick_received)
            self._tick_received = 0
            health = {
                "connections": len(self.sockets),
                "messages_per_s": float(sum(self._received)),
                "dropped": self.crowd.dropped + self.protocol_dropped,
                "refused": self.refused,
            }
            self.replies.put(("frame", now, self.crowd.frame(now), health))

    async def tell_phones(self) -> None:
        """The state to every phone: at once when the show changes it, else every few seconds."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STATE_EVERY):
                    await self._changed.wait()
            self._changed.clear()
            text = json.dumps(self.crowd.state(), ensure_ascii=False)
            for ws in list(self.sockets):
                with contextlib.suppress(Exception):  # a phone that went away meanwhile
                    await ws.send_str(text)


def inline_styles_allowed(page: bytes) -> str:
    """The policy for a standalone page (“the room is full”) whose styles are inline: exactly those, by hash."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(style).digest()).decode() + "'"
        for style in re.findall(rb"<style>(.*?)</style>", page, flags=re.DOTALL)
    ]
    return HEADERS["Content-Security-Policy"] + "; style-src 'self' " + " ".join(hashes)


def _session_of(request: Any) -> str:
    session = request.cookies.get(COOKIE, "")
    return session if 16 <= len(session) <= 64 and session.replace("-", "").replace("_", "").isalnum() else ""


def _same_origin(request: Any) -> bool:
    """A browser says where the page that opens the socket came from: only the audience page may (a test client
    or a phone app that sends no Origin is let in: it has no other site's cookie to misuse)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin.split("://", 1)[-1].rstrip("/") == request.host


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


NICENESS = 10
"""Where the idle scheduling class is not there: a lower priority than the show's."""


def server_main(commands: Queue[Any], replies: Queue[Any], settings: ServerSettings) -> None:
    """The audience process's entry point (see :mod:`engine.worker_process`). It runs in the idle scheduling class,
    so the show's control path always comes first (a nice value left it 1.14x slower with 1,000 phones tapping; the
    idle class, 0.98x). The price: where the machine's cores are all kept busy by other work, the phones wait, their
    messages held in their sockets, and the crowd's signals come late (they go stale, which health shows)."""
    idle_priority(NICENESS)
    try:
        asyncio.run(_serve(commands, replies, settings))
    except OSError as exc:  # the port is taken, or the address is not this computer's
        replies.put(
            ("fatal", f"the audience page cannot listen on {settings.config.host}:{settings.config.port}: {exc}")
        )
    except Exception as exc:
        replies.put(("fatal", f"{type(exc).__name__}: {exc}"))
        raise


async def _serve(commands: Queue[Any], replies: Queue[Any], settings: ServerSettings) -> None:
    from aiohttp import web

    server = AudienceServer(settings, replies)
    runner = web.AppRunner(server.app(), access_log=None, handle_signals=False)
    await runner.setup()
    config = settings.config
    tls = None if settings.tls is None else server_context(*map(Path, settings.tls))
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True, ssl_context=tls)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else config.port
    replies.put(("ready", {"port": port, "started": time.monotonic()}))
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(server.tick()), asyncio.create_task(server.tell_phones())]
    try:
        while True:
            command = await loop.run_in_executor(None, _next, commands)
            if isinstance(command, StopServing):
                break
            if isinstance(command, SetProps):
                server.set(command.values)
    finally:
        for task in tasks:
            task.cancel()
        for ws in list(server.sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"the exhibit is closing")
        await runner.cleanup()


def _next(commands: Queue[Any]) -> Any:
    """The next command; :class:`StopServing` when the controller has gone (its end of the queue closed)."""
    while True:
        try:
            return commands.get(timeout=1.0)
        except queue.Empty:
            parent = multiprocessing.parent_process()
            if parent is not None and not parent.is_alive():
                return StopServing()
        except (EOFError, OSError):
            return StopServing()
